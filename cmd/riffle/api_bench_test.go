package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/arrowexec/exectest"
	"github.com/riffle-dev/riffle/windows"
)

// benchSchema is the synthetic job's rows: a key and an event time (ms).
var benchSchema = arrow.NewSchema([]arrow.Field{{Name: "k", Type: arrow.PrimitiveTypes.Int64}, {Name: "t", Type: arrow.PrimitiveTypes.Int64}}, nil)

// pacedSource emits, on every subtask, one batch of rows rows every
// period (keys 0..999, event times rising 1 ms per row), until the job
// stops. It reports the largest event time as its watermark.
type pacedSource struct {
	rows   int
	period time.Duration
	// hold, once set, parks every reader until release closes (a job
	// that keeps its state and does nothing).
	hold    atomic.Bool
	release chan struct{}
}

func (s *pacedSource) Schema() *arrow.Schema { return benchSchema }

func (s *pacedSource) Open(_ context.Context, t *arrowexec.Task) (arrowexec.SourceReader, error) {
	return &pacedReader{s: s, mem: t.Mem, next: time.Now(), wm: arrowexec.MinWatermark, ts: int64(t.Subtask)}, nil
}

type pacedReader struct {
	s    *pacedSource
	mem  memory.Allocator
	next time.Time
	ts   int64
	wm   int64
}

func (r *pacedReader) Next(ctx context.Context) (arrow.RecordBatch, error) {
	if r.s.hold.Load() {
		select {
		case <-r.s.release:
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		}
	}
	if d := time.Until(r.next); d > 0 {
		select {
		case <-time.After(d): // the input's pace, not a test's timing
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		}
	}
	r.next = r.next.Add(r.s.period)
	kb, tb := array.NewInt64Builder(r.mem), array.NewInt64Builder(r.mem)
	defer kb.Release()
	defer tb.Release()
	for i := range r.s.rows {
		kb.Append(int64(i % 1000))
		tb.Append(r.ts)
		r.ts++
	}
	r.wm = r.ts - 1
	k, ts := kb.NewArray(), tb.NewArray()
	defer k.Release()
	defer ts.Release()
	return array.NewRecordBatch(benchSchema, []arrow.Array{k, ts}, int64(r.s.rows)), nil
}

func (r *pacedReader) CurrentWatermark() (int64, bool) { return r.wm, false }
func (r *pacedReader) Close() error                    { return nil }

// discard is a sink that drops what it gets.
type discard struct{}

func (discard) Schema([]*arrow.Schema) (*arrow.Schema, error)   { return nil, nil }
func (discard) New(*arrowexec.Task) (arrowexec.Operator, error) { return discardOp{}, nil }

type discardOp struct{}

func (discardOp) Open(context.Context) error { return nil }
func (discardOp) Process(context.Context, int, arrow.RecordBatch, arrowexec.Emitter) error {
	return nil
}
func (discardOp) Finish(context.Context, arrowexec.Emitter) error { return nil }
func (discardOp) Close() error                                    { return nil }

// benchGraph is a job of nodes nodes with par subtasks each: a paced
// source, identity operators behind alternating hash and forward
// exchanges, a tumbling window and a sink.
func benchGraph(b *testing.B, nodes, par int, src *pacedSource) *arrowexec.Graph {
	g := arrowexec.NewGraph()
	cur := g.AddSource("source", src, par)
	for i := 1; i < nodes-2; i++ {
		in := cur.Forward()
		if i%2 == 1 {
			in = cur.HashBy("k")
		}
		cur = g.Add(fmt.Sprintf("op-%d", i), exectest.Identity(), par, in)
	}
	ws, err := windows.New(windows.Options{Kind: windows.Tumbling, Size: time.Minute, Keys: []string{"k"}, Time: "t",
		Aggs: []windows.Agg{{Func: windows.Count, As: "n"}}})
	if err != nil {
		b.Fatal(err)
	}
	w := g.Add("window", ws, par, cur.HashBy("k"))
	g.Add("sink", discard{}, par, w.Forward())
	return g
}

// BenchmarkAdminAPI measures the latency of the web view's API for a
// running job of 20 nodes × 16 subtasks (a paced source, 17 identity
// operators behind alternating hash and forward exchanges, a window and a
// sink): each iteration is one poll of the page, the five GET views in
// turn over loopback HTTP, twenty polls a second. The job is "busy" (every source subtask emits
// 256 rows every 10 ms: 409,600 rows/s offered, more than 2 cores carry
// through 20 nodes, so the job saturates the machine) or "quiet" (16 rows
// every 100 ms). It reports the p50, p99 and maximum latency of one view,
// p50 and p99 of the two large views, and the bytes a poll reads. A
// benchmark reports; nothing here asserts a time.
func BenchmarkAdminAPI(b *testing.B) {
	b.Run("busy", func(b *testing.B) { benchAdminAPI(b, &pacedSource{rows: 256, period: 10 * time.Millisecond}) })
	b.Run("quiet", func(b *testing.B) { benchAdminAPI(b, &pacedSource{rows: 16, period: 100 * time.Millisecond}) })
}

// startBenchJob runs the 20 × 16 job over src with an admin server
// following it, and returns once rows reach the window and two rate
// samples exist.
func startBenchJob(b *testing.B, src *pacedSource) *adminServer {
	const nodes, par = 20, 16
	src.release = make(chan struct{})
	g := benchGraph(b, nodes, par, src)
	j, err := g.Compile(arrowexec.RunOptions{Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	runErr := make(chan error, 1)
	go func() { runErr <- j.Run(context.Background()) }()
	b.Cleanup(func() {
		close(src.release)
		j.Stop(false)
		if err := <-runErr; err != nil {
			b.Error(err)
		}
	})
	a, err := startAdmin("127.0.0.1:0", "", slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { a.Close(true) })
	st := newJobStatus("bench")
	st.attach(nil, j, nil)
	a.follow(st, false)
	// Rows flow through every operator (the window's input counts) and
	// two rate samples exist.
	for deadline := time.Now().Add(time.Minute); ; {
		var in int64
		for _, m := range j.Metrics("window") {
			in += m.RowsIn.Load()
		}
		if prev, last := a.rates.get(); in > 0 && prev != nil && last != nil {
			return a
		}
		if time.Now().After(deadline) {
			b.Fatal("no rows reached the window within a minute")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func benchAdminAPI(b *testing.B, src *pacedSource) {
	a := startBenchJob(b, src)
	j, _ := a.running()
	views := []string{"/api/job", "/api/graph", "/api/watermarks", "/api/checkpoints", "/api/recommender"}
	client := &http.Client{}
	var lat []time.Duration
	per := map[string][]time.Duration{}
	var bytes atomic.Int64
	// Twenty polls a second: twenty times the page's pace, as twenty
	// open pages would poll.
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		<-tick.C
		for _, v := range views {
			t0 := time.Now()
			resp, err := client.Get("http://" + a.addr + v)
			if err != nil {
				b.Fatal(err)
			}
			n, err := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != http.StatusOK {
				b.Fatalf("%s: %d %v", v, resp.StatusCode, err)
			}
			d := time.Since(t0)
			lat = append(lat, d)
			per[v] = append(per[v], d)
			bytes.Add(n)
		}
	}
	b.StopTimer()
	q := func(lat []time.Duration, p float64) float64 {
		slices.Sort(lat)
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Microseconds()) / 1000
	}
	b.ReportMetric(q(lat, 0.5), "p50-ms")
	b.ReportMetric(q(lat, 0.99), "p99-ms")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-ms")
	for _, v := range []string{"/api/job", "/api/graph", "/api/watermarks"} {
		name := v[len("/api/"):]
		b.ReportMetric(q(per[v], 0.5), name+"-p50-ms")
		b.ReportMetric(q(per[v], 0.99), name+"-p99-ms")
	}
	b.ReportMetric(float64(bytes.Load())/float64(b.N), "bytes/poll")
	var rows int64
	for _, m := range j.Metrics("source") {
		rows += m.RowsOut.Load()
	}
	b.ReportMetric(float64(rows), "source-rows")
}

// BenchmarkAdminAPIViews measures the CPU cost of computing the two
// large views (what the sampler does once a second while someone polls,
// and a request does when nobody polled lately) for the 20 × 16 job, held
// still once rows reached its window (its sources parked, its state and
// watermarks kept), so that nothing else runs: reading the counters, the
// watermarks and the answer for the window, and encoding the JSON.
func BenchmarkAdminAPIViews(b *testing.B) {
	src := &pacedSource{rows: 256, period: 10 * time.Millisecond}
	a := startBenchJob(b, src)
	src.hold.Store(true)
	j, p := a.running()
	for _, v := range []struct {
		name string
		read func() any
	}{{"graph", func() any { return readGraph(j, &a.rates) }}, {"watermarks", func() any { return readWatermarks(j, p) }}} {
		b.Run(v.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := json.Marshal(v.read()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
