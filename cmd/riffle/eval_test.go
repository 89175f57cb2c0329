package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/riffle-dev/riffle/internal/chart"
	"github.com/riffle-dev/riffle/internal/oracle"
	"github.com/riffle-dev/riffle/job"
	"github.com/riffle-dev/riffle/ml"
)

func readEvalJSON(t *testing.T, path string) evalReport {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var rep evalReport
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return rep
}

// genSmallEvents writes 20,000 seeded events with planted structure
// (1,000 users, 300 items) to dir/events.parquet.
func genSmallEvents(t *testing.T, dir string) string {
	t.Helper()
	pq := filepath.Join(dir, "events.parquet")
	if code, _, errOut := runCLI(t, "gen", "--rows", "20000", "--users", "1000", "--items", "300", "--seed", "4",
		"--latent-factors", "8", "--progress", "never", pq); code != exitOK {
		t.Fatalf("gen: code %d: %s", code, errOut)
	}
	return pq
}

// TestEvalEndToEnd: riffle gen --latent-factors, then riffle eval over every
// protocol, reading Parquet and (converted by DuckDB) CSV: the same figures
// from both, the planted structure visible (iALS > popularity > random),
// and --tune reporting its trials and the best setting's test figures.
func TestEvalEndToEnd(t *testing.T) {
	dir := t.TempDir()
	pq := filepath.Join(dir, "events.parquet")
	if code, _, errOut := runCLI(t, "gen", "--rows", "60000", "--users", "3000", "--items", "800", "--seed", "4",
		"--latent-factors", "8", "--progress", "never", pq); code != exitOK {
		t.Fatalf("gen: code %d: %s", code, errOut)
	}
	common := []string{"--protocol", "all", "--k", "5,10", "--factors", "10", "--iterations", "8", "--threads", "2", "--seed", "3"}
	jsonPQ := filepath.Join(dir, "pq.json")
	code, out, errOut := runCLI(t, append(append([]string{"eval"}, common...), "--json", jsonPQ, pq)...)
	if code != exitOK {
		t.Fatalf("eval: code %d: %s", code, errOut)
	}
	for _, want := range []string{"global-time:", "user-time:", "leave-last-out:", "NDCG", "popularity", "random", "ials"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	rep := readEvalJSON(t, jsonPQ)
	if rep.Rows != 60000 || len(rep.Protocols) != 3 {
		t.Fatalf("report: %d rows, %d protocols", rep.Rows, len(rep.Protocols))
	}
	for _, pr := range rep.Protocols {
		ndcg := map[string]float64{}
		for _, r := range pr.Results {
			a, ok := r.At(10)
			if !ok {
				t.Fatalf("%s %s: no K=10", pr.Protocol, r.Model)
			}
			ndcg[r.Model] = a.NDCG
		}
		t.Logf("%s NDCG@10: %v", pr.Protocol, ndcg)
		if !(ndcg["ials"] > ndcg["popularity"] && ndcg["popularity"] > ndcg["random"]) {
			t.Errorf("%s: want ials > popularity > random, have %v", pr.Protocol, ndcg)
		}
	}

	// The same rows as CSV, written by DuckDB (times as epoch milliseconds).
	csvPath := filepath.Join(dir, "events.csv")
	oracle.DuckDB(t, fmt.Sprintf(`COPY (SELECT user_id, item_id, event_type, weight, epoch_ms(event_time) AS event_time
		FROM read_parquet('%s')) TO '%s' (HEADER, DELIMITER ',')`, pq, csvPath))
	jsonCSV := filepath.Join(dir, "csv.json")
	if code, _, errOut := runCLI(t, append(append([]string{"eval"}, common...), "--json", jsonCSV, csvPath)...); code != exitOK {
		t.Fatalf("eval csv: code %d: %s", code, errOut)
	}
	repCSV := readEvalJSON(t, jsonCSV)
	if !reflect.DeepEqual(rep.Protocols, repCSV.Protocols) {
		t.Errorf("CSV and Parquet give different figures:\n%+v\n%+v", rep.Protocols, repCSV.Protocols)
	}

	// --tune over a 2×1×2×1 grid.
	jsonTune := filepath.Join(dir, "tune.json")
	code, out, errOut = runCLI(t, "eval", "--protocol", "user-time", "--k", "10", "--threads", "2", "--tune",
		"--tune-factors", "4,10", "--tune-regularization", "0.1", "--tune-alpha", "1,3", "--tune-iterations", "6",
		"--json", jsonTune, pq)
	if code != exitOK {
		t.Fatalf("eval --tune: code %d: %s", code, errOut)
	}
	tr := readEvalJSON(t, jsonTune).Protocols[0].Tune
	if tr == nil || len(tr.Trials) != 4 {
		t.Fatalf("tune report: %+v", tr)
	}
	best := tr.Trials[0]
	for _, x := range tr.Trials[1:] {
		if x.Score > best.Score {
			best = x
		}
	}
	if best.Params != tr.Best || tr.Test == nil || tr.Test.Model != "ials (tuned)" {
		t.Errorf("best %v (score %v), report says %v; test %+v", best.Params, best.Score, tr.Best, tr.Test)
	}
	if !strings.Contains(out, "best factors=") || !strings.Contains(out, "ials (tuned)") {
		t.Errorf("table lacks the tuned row:\n%s", out)
	}
}

func TestEvalErrors(t *testing.T) {
	dir := t.TempDir()
	pq := filepath.Join(dir, "events.parquet")
	if code, _, errOut := runCLI(t, "gen", "--rows", "2000", "--users", "50", "--items", "40", "--progress", "never", pq); code != exitOK {
		t.Fatalf("gen: code %d: %s", code, errOut)
	}
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"eval"}, exitUsage, "want exactly one input file"},
		{[]string{"eval", "--protocol", "random-split", pq}, exitUsage, "unknown protocol"},
		{[]string{"eval", "--k", "0", pq}, exitUsage, "must be positive"},
		{[]string{"eval", "--factors", "0", pq}, exitUsage, "factors"},
		{[]string{"eval", "--tune", "--tune-alpha", "x", pq}, exitUsage, "--tune-alpha"},
		{[]string{"eval", "--user", "nobody", pq}, exitFailure, `column "nobody"`},
		{[]string{"eval", "--weight", "event_type", pq}, exitFailure, "weight"},
		{[]string{"eval", "--weight", "weight - 3", pq}, exitFailure, "must be finite and non-negative"},
		{[]string{"eval", filepath.Join(dir, "missing.parquet")}, exitFailure, "missing.parquet"},
	} {
		code, _, errOut := runCLI(t, c.args...)
		if code != c.code || !strings.Contains(errOut, c.want) {
			t.Errorf("%v: code %d, stderr %q; want code %d and %q", c.args, code, errOut, c.code, c.want)
		}
	}
}

// TestEvalPrequential: riffle eval --protocol prequential on a planted
// file prints the four models and the cold users, writes the same figures
// to --json and a curve of 20 buckets whose events add up to the warm
// events, and the incremental model ranks above popularity.
func TestEvalPrequential(t *testing.T) {
	dir := t.TempDir()
	pq := genSmallEvents(t, dir)
	js, curve := filepath.Join(dir, "p.json"), filepath.Join(dir, "curve.csv")
	code, out, errOut := runCLI(t, "eval", "--protocol", "prequential", "--factors", "10", "--iterations", "8", "--threads", "2",
		"--batch", "200", "--retrain-every", "2000", "--json", js, "--curve", curve, pq)
	if code != exitOK {
		t.Fatalf("eval: code %d: %s", code, errOut)
	}
	for _, want := range []string{"prequential:", "incremental", "retrain", "frozen", "popularity (cold users)", "NDCG@10"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	p := readEvalJSON(t, js).Prequential
	if p == nil || len(p.Models) != 4 || p.Models[0].Model != "incremental" || p.Models[3].Model != "popularity" {
		t.Fatalf("report: %+v", p)
	}
	if p.Models[0].NDCG <= p.Models[3].NDCG {
		t.Errorf("incremental NDCG@10 %.4f not above popularity's %.4f", p.Models[0].NDCG, p.Models[3].NDCG)
	}
	b, err := os.ReadFile(curve)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 21 {
		t.Fatalf("curve has %d lines, want a header and 20 buckets", len(lines))
	}
	var events int64
	for _, l := range lines[1:] {
		var bucket, from, to int
		var t0, t1, n int64
		if _, err := fmt.Sscanf(strings.Join(strings.Split(l, ",")[:6], " "), "%d %d %d %d %d %d", &bucket, &from, &to, &t0, &t1, &n); err != nil {
			t.Fatalf("curve line %q: %v", l, err)
		}
		events += n
	}
	if events != p.Counts.Warm {
		t.Errorf("curve events add up to %d, warm events %d", events, p.Counts.Warm)
	}
	if code, _, _ := runCLI(t, "eval", "--protocol", "prequential", "--kafka-topic", "x", pq); code != exitUsage {
		t.Errorf("--kafka-topic without --kafka-brokers: code %d, want usage", code)
	}
}

// TestEvalPlot: riffle eval --plot draws a chart per protocol and metric,
// the training loss and the prequential curves; each PNG is a drawn chart
// with every series' color, and the CSV beside it holds exactly the
// figures of the --json report (metric@K per model, the loss per
// iteration, the prequential curve per model over the replay).
func TestEvalPlot(t *testing.T) {
	dir := t.TempDir()
	pq := genSmallEvents(t, dir)
	js, plots := filepath.Join(dir, "p.json"), filepath.Join(dir, "plots")
	code, _, errOut := runCLI(t, "eval", "--protocol", "global-time,prequential", "--k", "10,1,20,5", "--factors", "10", "--iterations", "6",
		"--threads", "2", "--batch", "500", "--retrain-every", "4000", "--json", js, "--plot", plots, pq)
	if code != exitOK {
		t.Fatalf("eval: code %d: %s", code, errOut)
	}
	rep := readEvalJSON(t, js)
	if len(rep.Protocols) != 1 || rep.Prequential == nil {
		t.Fatalf("report: %d protocols, prequential %v", len(rep.Protocols), rep.Prequential != nil)
	}
	lines := func(name string, series int) []chart.Series {
		t.Helper()
		if err := chart.Check(filepath.Join(plots, name+".png"), series); err != nil {
			t.Fatal(err)
		}
		s, err := chart.ReadLines(filepath.Join(plots, name+".csv"))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	pr := rep.Protocols[0]
	for _, m := range evalMetrics {
		got := lines("global-time-"+m.name, len(pr.Results))
		var want []chart.Series
		for _, r := range pr.Results {
			s := chart.Series{Name: r.Model}
			for _, k := range []int{1, 5, 10, 20} {
				a, ok := r.At(k)
				if !ok {
					t.Fatalf("%s: no K=%d", r.Model, k)
				}
				s.X, s.Y = append(s.X, float64(a.K)), append(s.Y, m.value(a))
			}
			want = append(want, s)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: CSV\n%v\nreport\n%v", m.name, got, want)
		}
	}
	// The metric picked for each chart is the one named: NDCG@1 = HR@1 =
	// MAP@1 for every model, and recall@20 >= recall@1.
	ndcg, hr, rec := lines("global-time-ndcg", 3), lines("global-time-hr", 3), lines("global-time-recall", 3)
	for i := range ndcg {
		if ndcg[i].Y[0] != hr[i].Y[0] || rec[i].Y[3] < rec[i].Y[0] {
			t.Errorf("%s: NDCG@1 %v HR@1 %v recall@1 %v recall@20 %v", ndcg[i].Name, ndcg[i].Y[0], hr[i].Y[0], rec[i].Y[0], rec[i].Y[3])
		}
	}

	loss := lines("global-time-loss", 1)
	if len(pr.Loss) != 6 || !reflect.DeepEqual(loss[0].Y, pr.Loss) || !reflect.DeepEqual(loss[0].X, []float64{1, 2, 3, 4, 5, 6}) {
		t.Fatalf("loss CSV %v, report %v", loss, pr.Loss)
	}
	if pr.Loss[5] >= pr.Loss[0] {
		t.Errorf("loss did not fall over training: %v", pr.Loss)
	}

	p := rep.Prequential
	for _, m := range []string{"hr", "ndcg"} {
		got := lines("prequential-"+m, len(p.Models))
		if len(got) != len(p.Models) {
			t.Fatalf("prequential %s: %d series, %d models", m, len(got), len(p.Models))
		}
		for j, s := range got {
			if s.Name != p.Models[j].Model {
				t.Errorf("series %d is %s, model %s", j, s.Name, p.Models[j].Model)
			}
			var x, y []float64
			var events int64
			weighted := 0.0
			for _, c := range p.Curve {
				if c.Events > 0 {
					v := c.HR[j]
					if m == "ndcg" {
						v = c.NDCG[j]
					}
					x, y = append(x, float64(c.To)), append(y, v)
					events += c.Events
					weighted += v * float64(c.Events)
				}
			}
			if !reflect.DeepEqual(s.X, x) || !reflect.DeepEqual(s.Y, y) {
				t.Errorf("prequential %s %s: CSV %v %v, report %v %v", m, s.Name, s.X, s.Y, x, y)
			}
			// The curve's event-weighted mean is the model's overall figure.
			want := p.Models[j].HR
			if m == "ndcg" {
				want = p.Models[j].NDCG
			}
			if events != p.Models[j].Events || math.Abs(weighted/float64(events)-want) > 1e-9 {
				t.Errorf("prequential %s %s: curve mean %v over %d events, overall %v over %d", m, s.Name, weighted/float64(events), events, want, p.Models[j].Events)
			}
		}
	}
	entries, err := os.ReadDir(plots)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2*(len(evalMetrics)+1+2) {
		t.Errorf("%d files in --plot directory, want %d", len(entries), 2*(len(evalMetrics)+1+2))
	}
}

// TestAlphaDefault: a recommend step that gives no alpha (regularization)
// trains with the alpha (regularization) riffle eval uses when --alpha is not given (ml.DefaultAlpha: a
// stored weight counts), and an explicit alpha 0 stays 0.
func TestAlphaDefault(t *testing.T) {
	dir := t.TempDir()
	pq := genSmallEvents(t, dir)
	js := filepath.Join(dir, "e.json")
	if code, _, errOut := runCLI(t, "eval", "--protocol", "user-time", "--k", "10", "--factors", "4", "--iterations", "2",
		"--threads", "1", "--json", js, pq); code != exitOK {
		t.Fatalf("eval: code %d: %s", code, errOut)
	}
	evalModel := readEvalJSON(t, js).Model
	evalAlpha := evalModel.Alpha
	step := func(extra string) ml.Config {
		p, err := job.Parse("r.yaml", []byte(fmt.Sprintf(`name: r
source:
  parquet: {path: %s}
steps:
  - recommend: {user: user_id, item: item_id, factors: 4, k: 10%s}
sink:
  file: {path: %s}
`, pq, extra, filepath.Join(dir, "out"))))
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range p.Steps {
			if s.Recommend != nil {
				return s.Recommend.Options.Config
			}
		}
		t.Fatal("no recommend step")
		return ml.Config{}
	}
	if got := step("").Alpha; got != evalAlpha || got != ml.DefaultAlpha {
		t.Errorf("recommend step without alpha: %v; riffle eval without --alpha: %v; ml.DefaultAlpha %v", got, evalAlpha, ml.DefaultAlpha)
	}
	if got := step(", alpha: 0").Alpha; got != 0 {
		t.Errorf("alpha: 0 parsed as %v", got)
	}
	if got := step("").Regularization; got != evalModel.Regularization || got != ml.DefaultRegularization {
		t.Errorf("recommend step without regularization: %v; riffle eval without --regularization: %v; ml.DefaultRegularization %v",
			got, evalModel.Regularization, ml.DefaultRegularization)
	}
	if got := step(", regularization: 0").Regularization; got != 0 {
		t.Errorf("regularization: 0 parsed as %v", got)
	}
}
