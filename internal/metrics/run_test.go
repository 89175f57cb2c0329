package metrics_test

import (
	"context"
	"math"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/arrowexec/exectest"
	"github.com/riffle-dev/riffle/internal/metrics"
)

// families scrapes c over HTTP and parses the answer with the Prometheus
// text parser.
func families(t *testing.T, c *metrics.Collector) map[string]*dto.MetricFamily {
	t.Helper()
	body := get(t, c)
	defer body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(body)
	if err != nil {
		t.Fatalf("parsing the scrape: %v", err)
	}
	return fams
}

// value returns the value of the series of family name whose labels
// include want, summed over the matching series; ok is false when none
// matches.
func value(fams map[string]*dto.MetricFamily, name string, want map[string]string) (v float64, ok bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.Metric {
		have := map[string]string{}
		for _, l := range m.Label {
			have[l.GetName()] = l.GetValue()
		}
		for k, w := range want {
			if have[k] != w {
				continue next
			}
		}
		ok = true
		switch {
		case m.Counter != nil:
			v += m.Counter.GetValue()
		case m.Gauge != nil:
			v += m.Gauge.GetValue()
		case m.Histogram != nil:
			v += float64(m.Histogram.GetSampleCount())
		}
	}
	return v, ok
}

// lint gathers what /metrics serves and runs promlint over it.
func lint(t *testing.T, c *metrics.Collector) {
	t.Helper()
	mfs, err := metrics.Registry(c).Gather()
	if err != nil {
		t.Fatal(err)
	}
	problems, err := promlint.NewWithMetricFamilies(mfs).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

// bufferBytes sums the lengths of the distinct buffers of b's columns
// (the definition of Arrow bytes, counted here independently of
// arrowexec.BatchBytes).
func bufferBytes(b arrow.RecordBatch) int64 {
	seen := map[*memory.Buffer]bool{}
	var n int64
	var walk func(d arrow.ArrayData)
	walk = func(d arrow.ArrayData) {
		for _, buf := range d.Buffers() {
			if buf != nil && !seen[buf] {
				seen[buf] = true
				n += int64(buf.Len())
			}
		}
		for _, c := range d.Children() {
			walk(c)
		}
	}
	for _, c := range b.Columns() {
		walk(c.Data())
	}
	return n
}

// gateSink is a sink whose subtask blocks in its first Process until open
// is closed: everything upstream backs up.
type gateSink struct {
	entered chan struct{}
	open    chan struct{}
}

func (g *gateSink) Schema([]*arrow.Schema) (*arrow.Schema, error) { return nil, nil }
func (g *gateSink) New(*arrowexec.Task) (arrowexec.Operator, error) {
	return &gateOp{g: g}, nil
}

type gateOp struct {
	g    *gateSink
	seen bool
}

func (o *gateOp) Open(context.Context) error { return nil }
func (o *gateOp) Process(ctx context.Context, _ int, _ arrow.RecordBatch, _ arrowexec.Emitter) error {
	if !o.seen {
		o.seen = true
		close(o.g.entered)
		select {
		case <-o.g.open:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}
func (o *gateOp) Finish(context.Context, arrowexec.Emitter) error { return nil }
func (o *gateOp) Close() error                                    { return nil }

// TestCountersEqualTheRun runs source (2) -> identity (2) -> a sink held
// shut, so the queues in front of it fill: the scrape shows the sink's
// input queue full while it is held; once the job ran, every row, batch
// and Arrow byte counter equals an independent count of the input, the
// source was blocked by backpressure, and no subtask accounted more time
// than the run took.
func TestCountersEqualTheRun(t *testing.T) {
	mem := checkedMem(t)
	schema := arrow.NewSchema([]arrow.Field{{Name: "x", Type: arrow.PrimitiveTypes.Int64}, {Name: "s", Type: arrow.BinaryTypes.String}}, nil)
	rnd := rand.New(rand.NewPCG(1, 2))
	var (
		batches        []arrow.RecordBatch
		rows, arrowLen int64
	)
	for i := 0; i < 40; i++ {
		n := 1 + rnd.IntN(500)
		xb := array.NewInt64Builder(mem)
		sb := array.NewStringBuilder(mem)
		for r := 0; r < n; r++ {
			xb.Append(rnd.Int64())
			sb.Append(strconv.Itoa(r))
		}
		x, s := xb.NewArray(), sb.NewArray()
		b := array.NewRecordBatch(schema, []arrow.Array{x, s}, int64(n))
		x.Release()
		s.Release()
		xb.Release()
		sb.Release()
		rows += int64(n)
		arrowLen += bufferBytes(b)
		batches = append(batches, b)
	}
	src := ownedSource(t, schema, batches)
	gate := &gateSink{entered: make(chan struct{}), open: make(chan struct{})}
	g := arrowexec.NewGraph()
	s := g.AddSource("src", src, 2)
	id := g.Add("id", exectest.Identity(), 2, s.Forward())
	g.Add("sink", gate, 1, id.Rebalance())
	// Unchained: each node's own busy and backpressure time is checked (a
	// chain accounts its time on its head).
	j := compile(t, g, arrowexec.RunOptions{Mem: mem, QueueDepth: 2, DisableChaining: true})
	c := &metrics.Collector{}
	c.SetJob("demo", j)
	began := time.Now()
	done := start(j)
	<-gate.entered
	// Held: the sink's queues fill (2 channels of 2 messages).
	full := func() bool {
		q := j.Inputs("sink")[0][0]
		return q.Queued == q.Capacity
	}
	giveUp := time.After(2 * time.Minute)
	for !full() {
		select {
		case err := <-done:
			t.Fatalf("job ended while its sink was held: %v", err)
		case <-giveUp:
			t.Fatal("the queue into the held sink did not fill within 2 minutes")
		case <-time.After(time.Millisecond):
		}
	}
	fams := families(t, c)
	q, _ := value(fams, "riffle_input_queue_messages", map[string]string{"node": "sink", "input": "id"})
	qc, _ := value(fams, "riffle_input_queue_capacity_messages", map[string]string{"node": "sink", "input": "id"})
	if q != 4 || qc != 4 {
		t.Errorf("held sink: queue %v of %v, want 4 of 4", q, qc)
	}
	close(gate.open)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	wall := time.Since(began).Seconds()
	fams = families(t, c)
	for _, c := range []struct {
		name, node string
		want       float64
	}{
		{"riffle_rows_in_total", "src", float64(rows)},
		{"riffle_rows_out_total", "src", float64(rows)},
		{"riffle_rows_in_total", "id", float64(rows)},
		{"riffle_rows_out_total", "id", float64(rows)},
		{"riffle_rows_in_total", "sink", float64(rows)},
		{"riffle_batches_in_total", "src", float64(len(batches))},
		{"riffle_batches_out_total", "id", float64(len(batches))},
		{"riffle_batches_in_total", "sink", float64(len(batches))},
		{"riffle_bytes_in_total", "src", float64(arrowLen)},
		{"riffle_bytes_out_total", "id", float64(arrowLen)},
		{"riffle_bytes_in_total", "sink", float64(arrowLen)},
	} {
		if v, _ := value(fams, c.name, map[string]string{"job": "demo", "node": c.node}); v != c.want {
			t.Errorf("%s{node=%q} = %v, want %v", c.name, c.node, v, c.want)
		}
	}
	if v, _ := value(fams, "riffle_backpressure_seconds_total", map[string]string{"node": "id"}); v <= 0 {
		t.Errorf("the operator in front of the held sink shows no backpressure (%v s)", v)
	}
	if v, _ := value(fams, "riffle_busy_seconds_total", map[string]string{"node": "sink"}); v <= 0 {
		t.Errorf("the sink, held in Process, shows no busy time (%v s)", v)
	}
	for _, node := range []string{"src", "id", "sink"} {
		for sub := 0; sub < 2; sub++ {
			l := map[string]string{"node": node, "subtask": strconv.Itoa(sub)}
			var sum float64
			for _, n := range []string{"riffle_busy_seconds_total", "riffle_backpressure_seconds_total", "riffle_idle_seconds_total"} {
				v, _ := value(fams, n, l)
				sum += v
			}
			if sum > wall {
				t.Errorf("%s/%d accounted %.3f s in a run of %.3f s", node, sub, sum, wall)
			}
		}
	}
	lint(t, c)
}

// TestInputWatermarks: an operator with two inputs reports each input's
// watermark and idleness; an input whose source read nothing is idle.
func TestInputWatermarks(t *testing.T) {
	mem := checkedMem(t)
	schema := arrow.NewSchema([]arrow.Field{{Name: "t", Type: arrow.PrimitiveTypes.Int64}}, nil)
	a := ownedSource(t, schema, []arrow.RecordBatch{int64Batch(mem, schema, []int64{5000, 7000})})
	a.EventTime = 0
	empty := exectest.NewSource(schema, nil)
	empty.EventTime = 0
	defer empty.Release()
	sink := testSink(t)
	g := arrowexec.NewGraph()
	sa := g.AddSource("a", a, 1)
	se := g.AddSource("b", empty, 1)
	u := g.Add("union", exectest.Identity(), 1, sa.Forward(), se.Forward())
	g.Add("sink", sink, 1, u.Forward())
	j := compile(t, g, arrowexec.RunOptions{Mem: mem, HoldAtEnd: true})
	c := &metrics.Collector{}
	c.SetJob("demo", j)
	done := start(j)
	<-j.SourcesAtEnd()
	for sink.LastWatermark(0) != 7000 {
		select {
		case err := <-done:
			t.Fatalf("job ended: %v", err)
		case <-time.After(time.Millisecond):
		}
	}
	fams := families(t, c)
	j.Stop(false)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if v, ok := value(fams, "riffle_input_watermark_seconds", map[string]string{"node": "union", "input": "a"}); !ok || v != 7 {
		t.Errorf("input a watermark %v (%v), want 7", v, ok)
	}
	if _, ok := value(fams, "riffle_input_watermark_seconds", map[string]string{"node": "union", "input": "b"}); ok {
		t.Errorf("input b, which read nothing, has a watermark")
	}
	for in, want := range map[string]float64{"a": 0, "b": 1} {
		if v, ok := value(fams, "riffle_input_idle", map[string]string{"node": "union", "input": in}); !ok || v != want {
			t.Errorf("input %s idle %v (%v), want %v", in, v, ok, want)
		}
	}
	lint(t, c)
}

// TestSameUpstreamTwice: an operator fed twice by one node reports each
// edge under its own input label, so the scrape is well formed.
func TestSameUpstreamTwice(t *testing.T) {
	mem := checkedMem(t)
	schema := arrow.NewSchema([]arrow.Field{{Name: "x", Type: arrow.PrimitiveTypes.Int64}}, nil)
	src := exectest.NewSource(schema, nil)
	defer src.Release()
	sink := testSink(t)
	g := arrowexec.NewGraph()
	s := g.AddSource("src", src, 1)
	g.Add("sink", sink, 1, s.Forward(), s.Forward())
	j := compile(t, g, arrowexec.RunOptions{Mem: mem})
	runToEnd(t, j)
	c := &metrics.Collector{}
	c.SetJob("twice", j)
	fams := families(t, c)
	for _, in := range []string{"src#0", "src#1"} {
		if _, ok := value(fams, "riffle_input_queue_capacity_messages", map[string]string{"input": in}); !ok {
			t.Errorf("no series for input %s", in)
		}
	}
	lint(t, c)
}

// TestNoDuplicateNames: every descriptor the collector describes has a
// name of its own.
func TestNoDuplicateNames(t *testing.T) {
	seen := map[string]bool{}
	for _, n := range metrics.DescribedNames(&metrics.Collector{}) {
		if seen[n] {
			t.Errorf("%s described twice", n)
		}
		seen[n] = true
	}
	if len(seen) == 0 {
		t.Fatal("nothing described")
	}
}

// batchRowsDesc is a series of the test's own operator, not listed in
// metrics.Reported: the hook exports it all the same.
var batchRowsDesc = &arrowexec.MetricDesc{Name: "riffle_test_batch_rows", Help: "Rows per batch a test operator saw.",
	Kind: arrowexec.HistogramKind, PerSubtask: true, Labels: []string{"kind"}}

// histSpec is an identity operator that observes every batch's rows in a
// histogram and reports it through arrowexec.MetricsReporter.
type histSpec struct{}

func (histSpec) Schema(in []*arrow.Schema) (*arrow.Schema, error) { return in[0], nil }
func (histSpec) New(*arrowexec.Task) (arrowexec.Operator, error) {
	return &histOp{h: arrowexec.NewHistogram(10, 100, 1000)}, nil
}

type histOp struct{ h *arrowexec.Histogram }

func (o *histOp) Open(context.Context) error { return nil }
func (o *histOp) Process(ctx context.Context, _ int, b arrow.RecordBatch, out arrowexec.Emitter) error {
	o.h.Observe(float64(b.NumRows()))
	b.Retain()
	return out.Emit(ctx, b)
}
func (o *histOp) Finish(context.Context, arrowexec.Emitter) error { return nil }
func (o *histOp) Close() error                                    { return nil }
func (o *histOp) ReportMetrics(emit func(arrowexec.Metric)) {
	s := o.h.Snapshot()
	emit(arrowexec.Metric{Desc: batchRowsDesc, LabelValues: []string{"data"}, Histogram: &s})
}

// TestReporterHook: an operator's own histogram, reported through the
// hook, is scraped per subtask with the count, sum and buckets of the
// batches it saw (counted independently from the input).
func TestReporterHook(t *testing.T) {
	mem := checkedMem(t)
	schema := arrow.NewSchema([]arrow.Field{{Name: "x", Type: arrow.PrimitiveTypes.Int64}}, nil)
	sizes := []int{5, 50, 500, 5000, 7, 70}
	batches := zeroBatches(mem, schema, sizes...)
	src := ownedSource(t, schema, batches)
	sink := testSink(t)
	g := arrowexec.NewGraph()
	s := g.AddSource("src", src, 1)
	h := g.Add("hist", histSpec{}, 1, s.Forward())
	g.Add("sink", sink, 1, h.Forward())
	j := compile(t, g, arrowexec.RunOptions{Mem: mem})
	runToEnd(t, j)
	c := &metrics.Collector{}
	c.SetJob("hook", j)
	fams := families(t, c)
	f := fams["riffle_test_batch_rows"]
	if f == nil || len(f.Metric) != 1 {
		t.Fatalf("riffle_test_batch_rows: %v", f)
	}
	m := f.Metric[0]
	labels := map[string]string{}
	for _, l := range m.Label {
		labels[l.GetName()] = l.GetValue()
	}
	if labels["job"] != "hook" || labels["node"] != "hist" || labels["subtask"] != "0" || labels["kind"] != "data" {
		t.Errorf("labels %v", labels)
	}
	var sum float64
	le := map[float64]uint64{math.Inf(1): uint64(len(sizes))}
	for _, n := range sizes {
		sum += float64(n)
		for _, bound := range []float64{10, 100, 1000} {
			if float64(n) <= bound {
				le[bound]++
			}
		}
	}
	hs := m.Histogram
	if hs.GetSampleCount() != uint64(len(sizes)) || hs.GetSampleSum() != sum {
		t.Errorf("count %d sum %v, want %d and %v", hs.GetSampleCount(), hs.GetSampleSum(), len(sizes), sum)
	}
	for _, b := range hs.Bucket {
		if b.GetCumulativeCount() != le[b.GetUpperBound()] {
			t.Errorf("bucket le=%v: %d, want %d", b.GetUpperBound(), b.GetCumulativeCount(), le[b.GetUpperBound()])
		}
	}
	lint(t, c)
}
