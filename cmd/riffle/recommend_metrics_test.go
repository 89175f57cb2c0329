package main

import (
	"fmt"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	kafkago "github.com/segmentio/kafka-go"

	"github.com/riffle-dev/riffle/internal/kafkatest"
	"github.com/riffle-dev/riffle/ml"
)

// scrape reads addr's /metrics with the Prometheus text parser.
func scrape(t *testing.T, addr string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parsing /metrics: %v", err)
	}
	return fams
}

// series returns the one series of family name whose labels include
// want (nil when none).
func series(fams map[string]*dto.MetricFamily, name string, want map[string]string) *dto.Metric {
	f := fams[name]
	if f == nil {
		return nil
	}
next:
	for _, m := range f.Metric {
		have := map[string]string{}
		for _, l := range m.Label {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if have[k] != v {
				continue next
			}
		}
		return m
	}
	return nil
}

func seriesValue(m *dto.Metric) (float64, bool) {
	switch {
	case m == nil:
		return 0, false
	case m.Counter != nil:
		return m.Counter.GetValue(), true
	case m.Gauge != nil:
		return m.Gauge.GetValue(), true
	}
	return 0, false
}

// writeRecsJob writes dir/NAME.yaml: a recommend step (4 factors, top 5)
// with the extra lines given, over topic's user_id and item_id, its lists
// to dir/NAME-out.
func writeRecsJob(t *testing.T, dir, name, brokers, topic string, extra ...string) string {
	t.Helper()
	var more strings.Builder
	for _, l := range extra {
		more.WriteString("\n      " + l)
	}
	path := filepath.Join(dir, name+".yaml")
	if err := os.WriteFile(path, []byte(fmt.Sprintf(`name: %s
source:
  kafka:
    brokers: %s
    topic: %s
    start: earliest
    max_batch_delay: 20ms
    fields:
      - {name: user_id, type: int64, required: true}
      - {name: item_id, type: int64, required: true}
steps:
  - recommend:
      user: user_id
      item: item_id
      factors: 4
      k: 5
      seed: 1%s
sink:
  file: {path: %s, format: parquet}
`, name, brokers, topic, more.String(), filepath.Join(dir, name+"-out"))), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestRecommendMetrics runs a streaming recommend job (embedded broker,
// export at every update, the live prequential meter, serving), waits for
// it to apply every event produced, asks it for recommendations, and then
// checks that its /metrics series equal the step's statistics of
// /api/recommender read at the same moment (both read twice, around the
// scrape, and equal: nothing moves once the input is applied).
func TestRecommendMetrics(t *testing.T) {
	const topic, events = "recmetrics", 600
	brokers := embeddedBroker(t, map[string]int{topic: 1})
	var msgs []kafkago.Message
	for i := range events {
		u, it := i%40, 100+(i*7+i/40*3)%60
		msgs = append(msgs, kafkago.Message{Value: []byte(fmt.Sprintf(`{"user_id":%d,"item_id":%d}`, u, it))})
	}
	const chunk = 100 // produced one after the other is applied: several updates
	kafkatest.Produce(t, brokers, topic, msgs[:chunk])
	dir := t.TempDir()
	jobFile := writeRecsJob(t, dir, "recmetrics", brokers, topic, "export: {path: "+filepath.Join(dir, "export")+"}",
		"update: {every: 1, prequential: {k: 5, window: 50}}")
	admin := freeAddr(t)
	done, stderr := startCLI(t, "run", "--admin-addr", admin, "--progress", "never", jobFile)
	api := "http://" + admin
	recStats := func() ml.RecommendStats {
		var r apiRecommender
		if code := apiCall(t, "GET", api+"/api/recommender", "", "", "", &r); code != 200 || r.Stats == nil {
			return ml.RecommendStats{}
		}
		return *r.Stats
	}
	for n := chunk; ; n += chunk {
		waitFor(t, fmt.Sprintf("%d events applied", n), done, stderr, func() bool {
			st := recStats()
			return st.Applied == int64(n) && st.Pending == 0 && st.LastExport > 0 && st.Serving != nil
		})
		if n == events {
			break
		}
		kafkatest.Produce(t, brokers, topic, msgs[n:n+chunk])
	}
	for u := range 5 {
		var ans struct{}
		if code := apiCall(t, "GET", fmt.Sprintf("%s/recommend?user=%d&k=5", api, u), "", "", "", &ans); code != 200 {
			t.Fatalf("GET /recommend?user=%d: %d", u, code)
		}
	}
	var st ml.RecommendStats
	var fams map[string]*dto.MetricFamily
	for {
		before := recStats()
		fams = scrape(t, admin)
		st = recStats()
		if reflect.DeepEqual(before, st) {
			break
		}
	}
	// The prequential curve of /api/recommender ends at the figures of the
	// stats once the sampler has seen them, and riffle status prints both.
	var rec apiRecommender
	waitFor(t, "the curve to reach the last update", done, stderr, func() bool {
		rec = apiRecommender{}
		c := &rec.PrequentialCurve
		return apiCall(t, "GET", api+"/api/recommender", "", "", "", &rec) == 200 && len(*c) > 0 &&
			(*c)[len(*c)-1].Events == st.Prequential.Counts.Events
	})
	c := rec.PrequentialCurve
	last := c[len(c)-1]
	if p := st.Prequential; last.Warm != p.Model.Events || last.HR != p.HR || last.NDCG != p.NDCG || last.RecentHR != p.RecentHR ||
		last.RecentNDCG != p.RecentNDCG || last.Recent != p.Recent.Events || last.PopularityHR != p.Popularity.HR() {
		t.Fatalf("the curve's last point %+v, stats %+v", last, *p)
	}
	for i := 1; i < len(c); i++ {
		if c[i].Events <= c[i-1].Events || c[i].At.Before(c[i-1].At) {
			t.Fatalf("curve points %d and %d out of order: %+v %+v", i-1, i, c[i-1], c[i])
		}
	}
	code, out, errOut := runCLI(t, "status", "--addr", admin)
	if code != exitOK {
		t.Fatalf("riffle status: %d %s", code, errOut)
	}
	p := st.Prequential
	for _, want := range []string{
		fmt.Sprintf("live prequential @5: HR %.4f, NDCG %.4f over %d scored events", p.HR, p.NDCG, p.Model.Events),
		fmt.Sprintf("the last %d: HR %.4f, NDCG %.4f", p.Recent.Events, p.RecentHR, p.RecentNDCG),
	} {
		if !strings.Contains(out, want) {
			t.Errorf("riffle status lacks %q:\n%s", want, out)
		}
	}
	if !regexp.MustCompile(`\nTIME +EVENTS +SCORED +HR +NDCG +RECENT HR +RECENT NDCG\n`).MatchString(out) {
		t.Errorf("riffle status prints no curve:\n%s", out)
	}
	// The curve's newest point is its last row.
	lines := strings.Split(strings.TrimSpace(out), "\n")
	wantRow := fmt.Sprintf("%d %d %.4f %.4f %.4f %.4f", last.Events, last.Warm, last.HR, last.NDCG, last.RecentHR, last.RecentNDCG)
	if f := strings.Fields(lines[len(lines)-1]); len(f) != 7 || strings.Join(f[1:], " ") != wantRow {
		t.Errorf("riffle status's last row %q, want the newest point %q", lines[len(lines)-1], wantRow)
	}
	if code := apiCall(t, "POST", api+"/api/stop", "", "application/json", "{}", nil); code != http.StatusAccepted {
		t.Fatalf("POST /api/stop: %d", code)
	}
	if code := <-done; code != exitOK {
		t.Fatalf("run: code %d\n%s", code, stderr)
	}

	l := st.Serving
	node := map[string]string{"job": "recmetrics", "node": "recommend-1"}
	with := func(kv ...string) map[string]string {
		m := map[string]string{"job": "recmetrics", "node": "recommend-1"}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	p, l = st.Prequential, st.Serving
	if p == nil || l == nil || p.Counts.Warm == 0 || l.Queries != 5 {
		t.Fatalf("the job should meter and serve: %+v", st)
	}
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"riffle_recommend_updates_total", node, float64(st.Updates)},
		{"riffle_recommend_full_trainings_total", node, float64(st.FullTrainings)},
		{"riffle_recommend_interactions_applied_total", node, events},
		{"riffle_recommend_pending_interactions", node, 0},
		{"riffle_recommend_pairs", node, float64(st.Interactions)},
		{"riffle_recommend_users", node, float64(st.Users)},
		{"riffle_recommend_items", node, float64(st.Items)},
		{"riffle_recommend_new_users_total", node, float64(st.NewUsers)},
		{"riffle_recommend_new_items_total", node, float64(st.NewItems)},
		{"riffle_recommend_failed_rows_total", node, float64(st.FailedRows)},
		{"riffle_recommend_last_update_timestamp_seconds", node, float64(st.LastUpdate.UnixNano()) / 1e9},
		{"riffle_recommend_export_version", node, float64(st.LastExport)},
		{"riffle_recommend_export_timestamp_seconds", node, float64(st.LastExportTime.UnixNano()) / 1e9},
		{"riffle_recommend_prequential_k", node, 5},
		{"riffle_recommend_prequential_hit_ratio", with("model", "model", "over", "stream"), p.HR},
		{"riffle_recommend_prequential_ndcg", with("model", "model", "over", "stream"), p.NDCG},
		{"riffle_recommend_prequential_hit_ratio", with("model", "model", "over", "window"), p.RecentHR},
		{"riffle_recommend_prequential_ndcg", with("model", "model", "over", "window"), p.RecentNDCG},
		{"riffle_recommend_prequential_hit_ratio", with("model", "popularity", "over", "stream"), p.Popularity.HR()},
		{"riffle_recommend_prequential_ndcg", with("model", "popularity", "over", "stream"), p.Popularity.NDCG()},
		{"riffle_recommend_prequential_scored_events", with("over", "stream"), float64(p.Model.Events)},
		{"riffle_recommend_prequential_scored_events", with("over", "window"), float64(p.Recent.Events)},
		{"riffle_recommend_prequential_events_total", with("class", "warm"), float64(p.Counts.Warm)},
		{"riffle_recommend_prequential_events_total", with("class", "repeat"), float64(p.Counts.Repeats)},
		{"riffle_recommend_prequential_events_total", with("class", "cold_user"), float64(p.Counts.ColdUsers)},
		{"riffle_recommend_prequential_events_total", with("class", "cold_item"), float64(p.Counts.ColdItems)},
		{"riffle_recommend_serving_queries_total", node, float64(l.Queries)},
		{"riffle_recommend_serving_syncs_total", node, float64(l.Syncs)},
	} {
		got, ok := seriesValue(series(fams, c.name, c.labels))
		if !ok || got != c.want {
			t.Errorf("%s%v = %v (present %v), want %v", c.name, c.labels, got, ok, c.want)
		}
	}
	if age, ok := seriesValue(series(fams, "riffle_recommend_export_age_seconds", node)); !ok || age < 0 {
		t.Errorf("export age %v (%v)", age, ok)
	}
	// The update durations: one observation per update, summing to the
	// total update time.
	h := series(fams, "riffle_recommend_update_duration_seconds", node).GetHistogram()
	if h == nil || h.GetSampleCount() != uint64(st.Updates) || math.Abs(h.GetSampleSum()-st.UpdateTime.Seconds()) > 1e-6*max(1, st.UpdateTime.Seconds()) {
		t.Errorf("update duration histogram %v, want %d updates summing to %v", h, st.Updates, st.UpdateTime)
	}
	// The serving latencies: the buckets of LiveStats, cumulated.
	lh := series(fams, "riffle_recommend_serving_latency_seconds", node).GetHistogram()
	if lh == nil || lh.GetSampleCount() != l.Queries || math.Abs(lh.GetSampleSum()-l.LatencySum.Seconds()) > 1e-9 {
		t.Fatalf("serving latency histogram %v, want %d queries summing to %v", lh, l.Queries, l.LatencySum)
	}
	var cum uint64
	for j, b := range lh.Bucket {
		if j >= len(ml.LiveLatencyBuckets) {
			break
		}
		cum += l.Latency[j]
		if b.GetUpperBound() != ml.LiveLatencyBuckets[j].Seconds() || b.GetCumulativeCount() != cum {
			t.Errorf("latency bucket %d: le %v count %d, want le %v count %d", j, b.GetUpperBound(), b.GetCumulativeCount(),
				ml.LiveLatencyBuckets[j].Seconds(), cum)
		}
	}
}
