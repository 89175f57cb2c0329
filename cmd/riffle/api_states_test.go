package main

import (
	"context"
	"runtime"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/arrowexec/exectest"
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
	j, err := g.Compile(arrowexec.RunOptions{Mem: mem, QueueDepth: 2})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- j.Run(context.Background()) }()
	<-entered
	// The source blocks once the queue into the stuck operator is full.
	for !j.OutputBlocked("source")[0] {
		runtime.Gosched()
		select {
		case err := <-done:
			t.Fatalf("job ended: %v", err)
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
