package main

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/arrowexec/exectest"
	"github.com/riffle-dev/riffle/ml"
)

// TestGraphStates: the graph view's states come from the runtime's time
// counters. A source feeding an operator stuck in Process fills the queue
// between them and blocks: backpressured; the stuck operator works
// (busy, though it moves no rows); the sink after it waits for input
// (idle). The ratios of each subtask sum to 1 and its seconds are the
// counters'.
func TestGraphStates(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	schema := arrow.NewSchema([]arrow.Field{{Name: "x", Type: arrow.PrimitiveTypes.Int64}}, nil)
	var batches []arrow.RecordBatch
	for i := range 20 {
		b := array.NewInt64Builder(mem)
		b.Append(int64(i))
		col := b.NewArray()
		batches = append(batches, array.NewRecordBatch(schema, []arrow.Array{col}, 1))
		col.Release()
		b.Release()
	}
	src := exectest.NewSource(schema, batches)
	for _, b := range batches {
		b.Release()
	}
	defer src.Release()
	entered, release := make(chan struct{}), make(chan struct{})
	first := true
	stuck := &exectest.Func{Fn: func(_ *arrowexec.Task, b arrow.RecordBatch) (arrow.RecordBatch, error) {
		if first {
			first = false
			close(entered)
			<-release
		}
		b.Retain()
		return b, nil
	}}
	sink := exectest.NewSink()
	defer sink.Release()
	g := arrowexec.NewGraph()
	s := g.AddSource("source", src, 1)
	op := g.Add("stuck", stuck, 1, s.Forward())
	g.Add("sink", sink, 1, op.Forward())
	// Unchained: the states of three nodes with queues between them are
	// checked (a chain runs in one goroutine and accounts on its head).
	j, err := g.Compile(arrowexec.RunOptions{Mem: mem, QueueDepth: 2, DisableChaining: true})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- j.Run(context.Background()) }()
	<-entered
	// The source blocks once the queue into the stuck operator is full.
	// The deadline only turns a regression into a failure instead of a
	// hang until the suite's timeout; it shapes nothing.
	giveUp := time.After(2 * time.Minute)
	for !j.OutputBlocked("source")[0] {
		runtime.Gosched()
		select {
		case err := <-done:
			t.Fatalf("job ended: %v", err)
		case <-giveUp:
			close(release)
			t.Fatalf("the source never blocked on the full queue into the stuck operator (queue fill %v)", j.OutputFill("source"))
		default:
		}
	}
	var rs rates
	rs.add(takeSample(j, nil))
	rs.add(takeSample(j, nil))
	g2 := readGraph(j, &rs)
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"source": stateBackpressured, "stuck": stateBusy, "sink": stateIdle}
	for _, n := range g2.Nodes {
		if n.State != want[n.Name] {
			t.Errorf("node %s: state %s, want %s (%+v)", n.Name, n.State, want[n.Name], n.Subtasks)
		}
		for _, st := range n.Subtasks {
			if sum := st.BusyRatio + st.BackpressureRatio + st.IdleRatio; sum < 0.999 || sum > 1.001 {
				t.Errorf("node %s/%d: ratios sum to %v", n.Name, st.Subtask, sum)
			}
			if st.BusySeconds < 0 || st.BackpressureSeconds < 0 || st.IdleSeconds < 0 {
				t.Errorf("node %s/%d: negative seconds %+v", n.Name, st.Subtask, st)
			}
		}
	}
	// After the run the counters hold every wait: the source was blocked,
	// the sink waited.
	if m := j.Metrics("source")[0]; m.BackpressureNanos.Load() == 0 {
		t.Error("the source accounted no backpressure")
	}
	if m := j.Metrics("sink")[0]; m.IdleNanos.Load() == 0 {
		t.Error("the sink accounted no idle time")
	}
	if got := len(sink.All()); got != 20 {
		t.Errorf("sink got %d batches, want 20", got)
	}
}

// TestPrequentialCurve: the sampled curve skips samples with nothing
// scored or nothing new, and past curvePoints drops every second point:
// it keeps the first and the newest, in order, evenly thinned.
func TestPrequentialCurve(t *testing.T) {
	var c preqCurve
	at := time.Unix(1700000000, 0)
	stats := func(events int64) *ml.PrequentialStats {
		p := &ml.PrequentialStats{K: 10}
		p.Counts.Events, p.Model.Events = events, events/2
		p.HR = float64(events) / 1e6
		return p
	}
	c.add(at, &ml.PrequentialStats{K: 10}) // nothing scored
	const n = 3*curvePoints + 7
	for i := range n {
		c.add(at.Add(time.Duration(i)*time.Second), stats(int64(10*(i+1))))
		c.add(at.Add(time.Duration(i)*time.Second), stats(int64(10*(i+1)))) // nothing new
	}
	pts := c.points()
	if len(pts) > curvePoints || len(pts) <= curvePoints/2 {
		t.Fatalf("%d points, want at most %d and more than half", len(pts), curvePoints)
	}
	if pts[0].Events != 10 || pts[len(pts)-1].Events != 10*n || pts[len(pts)-1].HR != float64(10*n)/1e6 {
		t.Fatalf("first %+v, last %+v", pts[0], pts[len(pts)-1])
	}
	gap := pts[1].Events - pts[0].Events
	for i := 1; i < len(pts)-1; i++ {
		if d := pts[i].Events - pts[i-1].Events; d != gap {
			t.Fatalf("points %d and %d are %d events apart, the first two %d", i-1, i, d, gap)
		}
	}
	if pts[len(pts)-1].Events <= pts[len(pts)-2].Events {
		t.Fatal("the newest point is out of order")
	}
}
