package arrowexec_test

import (
	"context"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/riffle-dev/riffle/arrowexec"
)

// TestInputWatermarks: a union of a source that ends and one that stays
// open at event time 199 shows, per input channel, the ended input at
// MaxWatermark and the open one at 199, which is the union's watermark.
func TestInputWatermarks(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	g, _, cleanup := fastSlowUnion(mem, (*arrowexec.Node).Rebalance)
	defer cleanup()
	u := g.Node("union")
	if ins := u.Inputs(); len(ins) != 2 || ins[0].From.Name() != "fast" || ins[1].Kind != arrowexec.Rebalance {
		t.Fatalf("Inputs() = %+v", ins)
	}
	job, err := g.Compile(arrowexec.RunOptions{Mem: mem})
	if err != nil {
		t.Fatal(err)
	}
	if job.InputWatermarks("fast") != nil || job.InputWatermarks("nope") != nil {
		t.Fatal("InputWatermarks of a source or an unknown node is not nil")
	}
	done := make(chan error, 1)
	go func() { done <- job.Run(context.Background()) }()
	deadline := time.Now().Add(time.Minute)
	var ws []arrowexec.InputWatermark
	for {
		ws = job.InputWatermarks("union")[0]
		if ws[0].Ended && ws[1].Watermark == 199 && job.Metrics("union")[0].Watermark.Load() == 199 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("union's inputs never showed fast ended and slow at 199: %+v", ws)
		}
		time.Sleep(time.Millisecond)
	}
	want := []arrowexec.InputWatermark{
		{Edge: 0, From: "fast", FromSubtask: 0, Watermark: arrowexec.MaxWatermark, Ended: true},
		{Edge: 1, From: "slow", FromSubtask: 0, Watermark: 199},
	}
	for i := range want {
		got := ws[i]
		if got.Capacity <= 0 || got.Queued < 0 || got.Queued > got.Capacity {
			t.Errorf("input %d: queue %d of %d", i, got.Queued, got.Capacity)
		}
		got.Queued, got.Capacity = 0, 0
		if got != want[i] {
			t.Errorf("input %d: %+v, want %+v", i, got, want[i])
		}
	}
	// Inputs folds the same channels per edge.
	edges := job.Inputs("union")[0]
	wantEdges := []arrowexec.InputStatus{
		{From: "fast", Edge: 0, Channels: 1, Watermark: arrowexec.MaxWatermark, SlowestSubtask: -1, Ended: true},
		{From: "slow", Edge: 1, Channels: 1, Watermark: 199, SlowestSubtask: 0},
	}
	for i := range wantEdges {
		got := edges[i]
		got.Queued, got.Capacity = 0, 0
		if got != wantEdges[i] {
			t.Errorf("edge %d: %+v, want %+v", i, got, wantEdges[i])
		}
	}
	for _, node := range []string{"fast", "union", "sink"} {
		fill := job.OutputFill(node)
		if len(fill) != 1 || fill[0] < 0 || fill[0] > 1 {
			t.Errorf("OutputFill(%s) = %v", node, fill)
		}
	}
	job.Stop(true)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
