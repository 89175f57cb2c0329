package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/riffle-dev/riffle/checkpoint"
	"github.com/riffle-dev/riffle/internal/embedkafka"
	"github.com/riffle-dev/riffle/internal/kafkatest"
)

// idleJob is a window job over topic (2 partitions) whose partition 1
// gets one early event and then nothing: without an idle timeout it holds
// the watermark back.
func idleJobFile(t *testing.T, dir, brokers, topic, extra string) string {
	t.Helper()
	jobFile := filepath.Join(dir, "job.yaml")
	if err := os.WriteFile(jobFile, []byte(fmt.Sprintf(`name: idle
parallelism: 2
source:
  kafka:
    brokers: %s
    topic: %s
    start: earliest
    max_batch_delay: 20ms
    fields:
      - {name: item_id, type: int64, required: true}
      - {name: event_time, type: int64, required: true}
  watermark: {column: event_time, max_out_of_orderness: 5s}
steps:
  - filter: "item_id >= 0"
  - window: {type: tumbling, size: 1m, key: [item_id], time: event_time, aggs: ["count(*) AS n"]}
sink:
  file: {path: %s, format: parquet}
%s`, brokers, topic, filepath.Join(dir, "out"), extra)), 0o644); err != nil {
		t.Fatal(err)
	}
	return jobFile
}

// plantIdle writes n events to partition 0 at event times base + i*1s
// (items i%7) and one event at base+30s to partition 1, and returns every
// event time written.
func plantIdle(t *testing.T, brokers, topic string, base int64, n int) []int64 {
	t.Helper()
	var msgs []kafkago.Message
	var times []int64
	for i := range n {
		ts := base + int64(i)*1000
		times = append(times, ts)
		msgs = append(msgs, kafkago.Message{Partition: 0, Value: []byte(fmt.Sprintf(`{"item_id":%d,"event_time":%d}`, i%7, ts))})
	}
	kafkatest.Produce(t, brokers, topic, msgs)
	kafkatest.Produce(t, brokers, topic, []kafkago.Message{{Partition: 1, Value: []byte(fmt.Sprintf(`{"item_id":3,"event_time":%d}`, base+30000))}})
	return append(times, base+30000)
}

// embeddedBroker starts an in-process broker with topics for the test.
func embeddedBroker(t *testing.T, topics map[string]int) string {
	t.Helper()
	brokers, stop, err := embedkafka.Start(context.Background(), topics)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return brokers
}

// apiCall does one request and decodes the JSON answer into dst (nil:
// none); it returns the status code, 0 when nothing answers.
func apiCall(t *testing.T, method, url, token, contentType, body string, dst any) int {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0 // not listening (yet, or any more)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); strings.HasPrefix(url[strings.Index(url[7:], "/")+7:], "/api/") && ct != "application/json" {
		t.Fatalf("%s %s: Content-Type %q, body %s", method, url, ct, data)
	}
	if dst != nil {
		if err := json.Unmarshal(data, dst); err != nil {
			t.Fatalf("%s %s: %d %s: %v", method, url, resp.StatusCode, data, err)
		}
	}
	return resp.StatusCode
}

// TestAPIWhyNotFired runs a window job over a topic with a planted idle
// partition and checks the API against what was produced: the graph's
// nodes and exchanges, the rows read, each partition's largest event
// time, the watermark (partition 1's largest minus 5s minus 1ms), the
// earliest pending window end (brute force over the events), and that the
// answer names events/1 as what holds the window back; unknown paths and
// wrong methods give JSON errors; the stop action wants POST, JSON and the
// token, and then stops the job.
func TestAPIWhyNotFired(t *testing.T) {
	dir := t.TempDir()
	brokers := embeddedBroker(t, map[string]int{"events": 2})
	base := int64(1_700_000_000_000)
	times := plantIdle(t, brokers, "events", base, 600)
	admin := freeAddr(t)
	const token = "s3cret"
	done, stderr := startCLI(t, "run", "--admin-addr", admin, "--admin-token", token, "--progress", "never", idleJobFile(t, dir, brokers, "events", ""))
	api := "http://" + admin
	var g apiGraph
	waitFor(t, "every event read", done, stderr, func() bool {
		g = apiGraph{}
		return apiCall(t, "GET", api+"/api/graph", "", "", "", &g) == 200 && len(g.Nodes) > 0 && g.Nodes[0].RowsOut == int64(len(times))
	})
	var names []string
	for _, n := range g.Nodes {
		names = append(names, n.Name+"/"+n.Kind)
		if len(n.Subtasks) != n.Parallelism {
			t.Fatalf("node %s: %d subtask rows, parallelism %d", n.Name, len(n.Subtasks), n.Parallelism)
		}
	}
	if want := []string{"source/source", "filter-1/operator", "window-2/operator", "sink/sink"}; !slices.Equal(names, want) {
		t.Fatalf("nodes %v, want %v", names, want)
	}
	var ex []string
	for _, e := range g.Edges {
		ex = append(ex, fmt.Sprintf("%s>%s:%s%v", e.From, e.To, e.Exchange, e.Keys))
	}
	if want := []string{"source>filter-1:forward[]", "filter-1>window-2:hash[item_id]", "window-2>sink:forward[]"}; !slices.Equal(ex, want) {
		t.Fatalf("edges %v, want %v", ex, want)
	}
	// The forward edges are chained: the filter runs in the source's
	// goroutines, the sink in the window's.
	var chains []string
	for _, n := range g.Nodes {
		chains = append(chains, n.Name+"@"+n.Chain)
	}
	if want := []string{"source@source", "filter-1@source", "window-2@window-2", "sink@window-2"}; !slices.Equal(chains, want) {
		t.Fatalf("chains %v, want %v", chains, want)
	}
	// Partition 1's one event at base+30s holds the watermark at
	// base+30s-5s-1ms; the earliest window not yet fired is the first
	// whose end-1 is beyond it.
	wantWM := base + 30000 - 5000 - 1
	wantEnd := int64(1<<63 - 1)
	for _, ts := range times {
		if end := ts - ts%60000 + 60000; end-1 > wantWM {
			wantEnd = min(wantEnd, end)
		}
	}
	var wm apiWatermarks
	waitFor(t, "the window's watermark", done, stderr, func() bool {
		wm = apiWatermarks{}
		return apiCall(t, "GET", api+"/api/watermarks", "", "", "", &wm) == 200 && len(wm.Windows) == 1 &&
			wm.Windows[0].Watermark.MS != nil && *wm.Windows[0].Watermark.MS == wantWM
	})
	w := wm.Windows[0]
	if w.Node != "window-2" || !w.Pending || w.EarliestPendingEnd.MS == nil || *w.EarliestPendingEnd.MS != wantEnd {
		t.Fatalf("window %+v: want earliest pending end %d", w, wantEnd)
	}
	if w.Split == nil || w.Split.Split != "events/1" || !strings.Contains(w.Answer, "Kafka partition events/1") {
		t.Fatalf("why not fired: %+v (split %+v): want Kafka partition events/1 named", w, w.Split)
	}
	if len(w.HeldBy) < 2 || w.HeldBy[0].Node != "window-2" || w.HeldBy[len(w.HeldBy)-1].Node != "filter-1" {
		t.Fatalf("held_by %+v: want the chain window-2 ... filter-1", w.HeldBy)
	}
	maxEvent := map[string]int64{"events/0": times[len(times)-2], "events/1": base + 30000}
	for _, s := range wm.Sources {
		if s.Kind != "kafka-partition" || s.MaxEventTime == nil || s.MaxEventTime.MS == nil || *s.MaxEventTime.MS != maxEvent[s.Split] ||
			*s.Watermark.MS != maxEvent[s.Split]-5001 || s.Idle {
			t.Fatalf("source split %+v: want max event time %d", s, maxEvent[s.Split])
		}
	}
	inputs := 0
	for _, o := range wm.Operators {
		if o.Node == "window-2" {
			inputs++
			// 2 upstream subtasks behind a hash exchange; filter-1/1 reads
			// partition 1 and is the slowest.
			if o.From != "filter-1" || o.Channels != 2 || o.SlowestSubtask != 1 || o.Idle || o.Ended || *o.Watermark.MS != wantWM {
				t.Fatalf("window input %+v: want 2 channels, the slowest filter-1/1 at %d", o, wantWM)
			}
		}
	}
	if inputs != 2 { // one input row per window subtask
		t.Fatalf("window-2 has %d input rows, want 2", inputs)
	}
	// Bad input and safety.
	var ae apiError
	if code := apiCall(t, "GET", api+"/api/nope", "", "", "", &ae); code != 404 || !strings.Contains(ae.Error, "/api/nope") {
		t.Fatalf("unknown path: %d %+v", code, ae)
	}
	if code := apiCall(t, "GET", api+"/api/stop", "", "", "", &ae); code != 405 {
		t.Fatalf("GET /api/stop: %d %+v", code, ae)
	}
	if code := apiCall(t, "POST", api+"/api/graph", "", "", "", &ae); code != 405 {
		t.Fatalf("POST /api/graph: %d %+v", code, ae)
	}
	if code := apiCall(t, "POST", api+"/api/stop", "", "application/json", "{}", &ae); code != 401 {
		t.Fatalf("stop without the token: %d %+v", code, ae)
	}
	if code := apiCall(t, "POST", api+"/api/stop", "wrong", "application/json", "{}", &ae); code != 401 {
		t.Fatalf("stop with a wrong token: %d %+v", code, ae)
	}
	if code := apiCall(t, "POST", api+"/api/stop", token, "text/plain", "{}", &ae); code != 415 {
		t.Fatalf("stop as a form would send it: %d %+v", code, ae)
	}
	if code := apiCall(t, "POST", api+"/api/savepoint", token, "application/json", `{"dir": "/tmp/x"}`, &ae); code != 409 {
		t.Fatalf("savepoint of a job without checkpoints: %d %+v", code, ae)
	}
	if code := apiCall(t, "POST", api+"/savepoint?dir=/tmp/x", "", "", "", &ae); code != 401 {
		t.Fatalf("POST /savepoint without the token: %d %+v", code, ae)
	}
	var job apiJob
	if code := apiCall(t, "GET", api+"/api/job", "", "", "", &job); code != 200 || !job.Running || job.Ended || !job.TokenRequired || job.Checkpointed {
		t.Fatalf("job: %d %+v", code, job)
	}
	if code := apiCall(t, "POST", api+"/api/stop", token, "application/json", "{}", nil); code != http.StatusAccepted {
		t.Fatalf("stop: %d", code)
	}
	select {
	case code := <-done:
		if code != exitOK {
			t.Fatalf("run after stop: exit %d\n%s", code, stderr)
		}
	case <-time.After(time.Minute):
		t.Fatalf("the job did not stop\n%s", stderr)
	}
}

// TestAPICheckpointsAndStatus: a checkpointed job's history in the API
// matches the checkpoints on disk, a savepoint taken through the API is a
// loadable checkpoint in the history, 'riffle status' prints the job's
// nodes, the answer for its window and the history, and the stop action
// ends the job with a final checkpoint.
func TestAPICheckpointsAndStatus(t *testing.T) {
	dir := t.TempDir()
	brokers := embeddedBroker(t, map[string]int{"events": 2})
	plantIdle(t, brokers, "events", 1_700_000_000_000, 300)
	admin := freeAddr(t)
	ck := filepath.Join(dir, "ck")
	const token = "tok"
	done, stderr := startCLI(t, "run", "--admin-addr", admin, "--admin-token", token, "--checkpoint-dir", ck, "--checkpoint-interval", "100ms",
		"--retain", "100", "--progress", "never", idleJobFile(t, dir, brokers, "events", ""))
	api := "http://" + admin
	var c apiCheckpoints
	waitFor(t, "three checkpoints", done, stderr, func() bool {
		c = apiCheckpoints{}
		return apiCall(t, "GET", api+"/api/checkpoints", "", "", "", &c) == 200 && c.Completed >= 3
	})
	sp := filepath.Join(dir, "sp1")
	var spr savepointResponse
	if code := apiCall(t, "POST", api+"/api/savepoint", token, "application/json", fmt.Sprintf(`{"dir": %q}`, sp), &spr); code != 200 || spr.Path != sp {
		t.Fatalf("savepoint: %d %+v", code, spr)
	}
	if _, err := checkpoint.Load(sp); err != nil {
		t.Fatalf("the savepoint does not load: %v", err)
	}
	c = apiCheckpoints{}
	apiCall(t, "GET", api+"/api/checkpoints", "", "", "", &c)
	onDisk := map[string]bool{sp: true}
	infos, err := checkpoint.List(ck)
	if err != nil {
		t.Fatal(err)
	}
	for _, inf := range infos {
		onDisk[inf.Path] = true
	}
	completed := 0
	for _, h := range c.History {
		if h.Status != "completed" {
			continue
		}
		completed++
		if !onDisk[h.Path] || h.Bytes <= 0 || h.DurationMS <= 0 || h.AlignmentMS > h.DurationMS {
			t.Fatalf("history record %+v: not a checkpoint on disk (%v) or implausible", h, onDisk)
		}
	}
	if last := c.History[len(c.History)-1]; !last.Savepoint || last.Path != sp || completed != len(onDisk) && completed < checkpoint.HistoryLen {
		t.Fatalf("history %+v: want the savepoint last and one record per checkpoint on disk (%d)", c.History, len(onDisk))
	}
	code, out, errOut := runCLI(t, "status", "--addr", admin)
	if code != exitOK {
		t.Fatalf("riffle status: %d %s", code, errOut)
	}
	for _, want := range []string{"job idle: running", "window-2", "hash(item_id)", "events/1", "why has window-2 not fired? window window-2 ending",
		"Kafka partition events/1 holds it back", "(savepoint)", "checkpoints:"} {
		if !strings.Contains(out, want) {
			t.Fatalf("riffle status lacks %q:\n%s", want, out)
		}
	}
	var js statusView
	code, out, errOut = runCLI(t, "status", "--addr", admin, "--json")
	if code != exitOK || json.NewDecoder(bytes.NewReader([]byte(out))).Decode(&js) != nil || js.Job.Job != "idle" || len(js.Graph.Nodes) != 4 {
		t.Fatalf("riffle status --json: %d %s %s", code, out, errOut)
	}
	// riffle savepoint sends the token; without it the job refuses.
	if code, _, errOut := runCLI(t, "savepoint", "--addr", admin, "--dir", filepath.Join(dir, "sp-no-token")); code != exitFailure ||
		!strings.Contains(errOut, "401") || !strings.Contains(errOut, "--admin-token") {
		t.Fatalf("savepoint without the token: %d %s", code, errOut)
	}
	sp2 := filepath.Join(dir, "sp2")
	if code, out, errOut := runCLI(t, "savepoint", "--addr", admin, "--dir", sp2, "--token", token); code != exitOK || strings.TrimSpace(out) != sp2 {
		t.Fatalf("savepoint --token: %d %q %s", code, out, errOut)
	}
	if code := apiCall(t, "POST", api+"/api/stop", token, "application/json", "", &spr); code != 200 || !spr.Stop || !strings.HasPrefix(spr.Path, ck) {
		t.Fatalf("stop: %d %+v", code, spr)
	}
	select {
	case code := <-done:
		if code != exitOK {
			t.Fatalf("run after stop: exit %d\n%s", code, stderr)
		}
	case <-time.After(time.Minute):
		t.Fatalf("the job did not stop\n%s", stderr)
	}
	if _, err := checkpoint.Load(spr.Path); err != nil {
		t.Fatalf("the final checkpoint does not load: %v", err)
	}
	if code, _, errOut := runCLI(t, "status", "--addr", admin); code != exitFailure || !strings.Contains(errOut, "no job is running") {
		t.Fatalf("riffle status after the job: %d %s", code, errOut)
	}
}

// TestBackfillAdmin: a backfill with --admin-addr serves the admin
// endpoint while it runs (its log names the URL) and ends as without it;
// its stop action is refused in words, since a drained stop would publish
// part of the input as if it were all.
func TestBackfillAdmin(t *testing.T) {
	root, _ := filepath.Abs("../..")
	t.Chdir(root)
	out := filepath.Join(t.TempDir(), "out")
	admin := freeAddr(t)
	code, _, errOut := runCLI(t, "backfill", "--progress", "never", "--admin-addr", admin, "--output", out, "testdata/item-stats.yaml")
	if code != exitOK || !strings.Contains(errOut, "serving the admin endpoint and the web view") || !strings.Contains(errOut, "http://"+admin) {
		t.Fatalf("backfill --admin-addr: exit %d\n%s", code, errOut)
	}
	if files, _ := filepath.Glob(filepath.Join(out, "*.csv")); len(files) == 0 {
		t.Fatal("backfill --admin-addr wrote no output")
	}
	a, err := startAdmin("127.0.0.1:0", "", slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close(true)
	a.refuseStop = "a backfill publishes its output only when its whole input is read"
	var ae apiError
	if code := apiCall(t, "POST", "http://"+a.addr+"/api/stop", "", "application/json", "{}", &ae); code != http.StatusConflict || !strings.Contains(ae.Error, "backfill") {
		t.Fatalf("stop of a backfill: %d %+v", code, ae)
	}
	// Before a job is attached the views that need it say so.
	if code := apiCall(t, "GET", "http://"+a.addr+"/api/graph", "", "", "", &ae); code != http.StatusServiceUnavailable || !strings.Contains(ae.Error, "not started") {
		t.Fatalf("graph before the job: %d %+v", code, ae)
	}
}

// TestAPIWhyNotFiredEmptyPartition: a partition that never delivered a
// message holds the watermark at none; the answer names it and says it has
// been read that long without a message.
func TestAPIWhyNotFiredEmptyPartition(t *testing.T) {
	dir := t.TempDir()
	brokers := embeddedBroker(t, map[string]int{"events": 2})
	var msgs []kafkago.Message
	for i := range 50 {
		msgs = append(msgs, kafkago.Message{Partition: 0, Value: []byte(fmt.Sprintf(`{"item_id":%d,"event_time":%d}`, i%7, 1_700_000_000_000+int64(i)*1000))})
	}
	kafkatest.Produce(t, brokers, "events", msgs)
	admin := freeAddr(t)
	done, stderr := startCLI(t, "run", "--admin-addr", admin, "--progress", "never", idleJobFile(t, dir, brokers, "events", ""))
	var wm apiWatermarks
	waitFor(t, "a pending window held back by the empty partition", done, stderr, func() bool {
		wm = apiWatermarks{}
		return apiCall(t, "GET", "http://"+admin+"/api/watermarks", "", "", "", &wm) == 200 && len(wm.Windows) == 1 && wm.Windows[0].Pending &&
			wm.Windows[0].Split != nil && wm.Windows[0].Split.QuietSeconds != nil
	})
	w := wm.Windows[0]
	if w.Watermark.Text != "none" || w.Split.Split != "events/1" || w.Split.Watermark.Text != "none" ||
		!strings.Contains(w.Answer, "Kafka partition events/1 holds it back at none, with no message in the ") ||
		!strings.Contains(w.Answer, "since reading began") {
		t.Fatalf("why not fired with an empty partition: %+v (split %+v)", w, w.Split)
	}
	stopRun(t, done, stderr)
}
