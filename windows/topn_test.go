package windows

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/riffle-dev/riffle/arrowexec"
)

// topSink formats the ranked rows it receives.
type topSink struct{ rows *[]string }

func (s topSink) Emit(_ context.Context, b arrow.RecordBatch) error {
	defer b.Release()
	k := b.Column(0).(*array.String)
	ws := b.Column(1).(*array.Timestamp)
	n := b.Column(3).(*array.Int64)
	up := b.Column(b.Schema().FieldIndices("is_update")[0]).(*array.Boolean)
	rank := b.Column(int(b.NumCols()) - 1).(*array.Int64)
	for i := 0; i < int(b.NumRows()); i++ {
		*s.rows = append(*s.rows, fmt.Sprintf("%d #%d %s n=%d update=%v", ws.Value(i), rank.Value(i), k.Value(i), n.Value(i), up.Value(i)))
	}
	return nil
}

// TestTopNCheckpoint ranks window results with a top-N operator that is
// snapshotted and restored half way; its output must equal an
// uninterrupted one's (ordering and ties: testdata/topn.txt).
func TestTopNCheckpoint(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	ctx := context.Background()
	opts := Options{Kind: Tumbling, Size: 50 * time.Millisecond, Keys: []string{"k"}, Time: "t", AllowedLateness: 20 * time.Millisecond,
		Aggs: []Agg{{Func: Count, As: "n"}}}
	spec, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	outSchema, _ := spec.Schema([]*arrow.Schema{evSchema})
	top, err := NewTopN(TopNOptions{TopN: TopN{N: 3, By: "n"}, Keys: []string{"k"}, AllowedLateness: 20})
	if err != nil {
		t.Fatal(err)
	}
	newTop := func(rs *arrowexec.RestoreState) arrowexec.Operator {
		op, err := top.New(&arrowexec.Task{Node: "top", Parallelism: 1, MaxParallelism: 128, Mem: mem, Inputs: []*arrow.Schema{outSchema}, Restore: rs})
		if err != nil {
			t.Fatal(err)
		}
		if err := op.Open(ctx); err != nil {
			t.Fatal(err)
		}
		return op
	}
	// Window results, per step, as batches (retained until the end).
	rng := rand.New(rand.NewPCG(5, 5))
	evs := genEvents(rng, 3000, 12, 2, 60)
	type step struct {
		batches []arrow.RecordBatch
		wm      int64
	}
	var steps []step
	d := newDriver(t, mem, opts)
	col := &batchCollector{}
	maxT := int64(0)
	for lo := 0; lo < len(evs); lo += 100 {
		in := toBatches(mem, evs[lo:lo+100], 100)
		if err := d.op.Process(ctx, 0, in[0], col); err != nil {
			t.Fatal(err)
		}
		releaseBatches(in)
		for _, e := range evs[lo : lo+100] {
			maxT = max(maxT, e.t)
		}
		wm := maxT - 30
		if err := d.op.OnWatermark(ctx, wm, col); err != nil {
			t.Fatal(err)
		}
		steps = append(steps, step{col.take(), wm})
	}
	if err := d.op.OnWatermark(ctx, arrowexec.MaxWatermark, col); err != nil {
		t.Fatal(err)
	}
	steps = append(steps, step{col.take(), arrowexec.MaxWatermark})
	d.op.Close()
	defer func() {
		for _, s := range steps {
			releaseBatches(s.batches)
		}
	}()
	run := func(op arrowexec.Operator, from, to int, out *[]string) {
		for _, s := range steps[from:to] {
			for _, b := range s.batches {
				if err := op.Process(ctx, 0, b, topSink{out}); err != nil {
					t.Fatal(err)
				}
			}
			if err := op.(arrowexec.WatermarkHandler).OnWatermark(ctx, s.wm, topSink{out}); err != nil {
				t.Fatal(err)
			}
		}
	}
	var want, got []string
	ref := newTop(nil)
	run(ref, 0, len(steps), &want)
	ref.Close()
	a := newTop(nil)
	half := len(steps) / 2
	run(a, 0, half, &got)
	// Asynchronous snapshot: the view is taken at the barrier; the
	// operator goes on with the rest of the input before the snapshot is
	// written, which must not leak into it.
	complete, err := a.(arrowexec.AsyncCheckpointer).SnapshotStateAsync(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	var after []string
	run(a, half, len(steps), &after)
	snap, err := complete(ctx)
	if err != nil {
		t.Fatal(err)
	}
	a.Close()
	b := newTop(&arrowexec.RestoreState{CheckpointID: 1, KeyGroups: snap.KeyGroups, Operator: [][]byte{snap.Operator}})
	run(b, half, len(steps), &got)
	b.Close()
	if !slices.Equal(got, want) || len(want) == 0 {
		t.Fatalf("restored ranking differs:\n got %d rows %v\nwant %d rows %v", len(got), got[:min(10, len(got))], len(want), want[:min(10, len(want))])
	}
}

// batchCollector keeps emitted batches.
type batchCollector struct{ bs []arrow.RecordBatch }

func (c *batchCollector) Emit(_ context.Context, b arrow.RecordBatch) error {
	c.bs = append(c.bs, b)
	return nil
}

func (c *batchCollector) take() []arrow.RecordBatch {
	bs := c.bs
	c.bs = nil
	return bs
}
