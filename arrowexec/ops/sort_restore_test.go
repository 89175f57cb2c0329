package ops_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/arrowexec/ops"
)

// collect keeps the ids (column 0) of emitted batches.
type collect struct{ ids []int64 }

func (c *collect) Emit(_ context.Context, b arrow.RecordBatch) error {
	c.ids = append(c.ids, b.Column(0).(*array.Int64).Int64Values()...)
	b.Release()
	return nil
}

// runOp feeds bs to a fresh operator of spec restored from blobs (nil: a
// fresh start), then snapshots it after the first cut batches (snap) or
// finishes it.
func runOp(t *testing.T, mem memory.Allocator, spec arrowexec.Spec, bs []arrow.RecordBatch, blobs [][]byte, par, sub int, finish bool) (snap []byte, out []int64) {
	t.Helper()
	task := &arrowexec.Task{Mem: mem, Parallelism: par, Subtask: sub, Inputs: []*arrow.Schema{stepsSchema}}
	if blobs != nil {
		task.Restore = &arrowexec.RestoreState{CheckpointID: 1, Operator: blobs}
	}
	op, err := spec.New(task)
	if err != nil {
		t.Fatal(err)
	}
	defer op.Close()
	ctx := context.Background()
	if err := op.Open(ctx); err != nil {
		t.Fatal(err)
	}
	var c collect
	for _, b := range bs {
		if err := op.Process(ctx, 0, b, &c); err != nil {
			t.Fatal(err)
		}
	}
	if finish {
		if err := op.Finish(ctx, &c); err != nil {
			t.Fatal(err)
		}
		return nil, c.ids
	}
	s, err := op.(arrowexec.Checkpointer).SnapshotState(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	return s.Operator, c.ids
}

// TestSortTopNLimitRestore: a sort, top-N or limit snapshotted after some
// batches and restored (on one subtask, from the states of two) into a
// run that gets the rest gives what one uninterrupted run gives.
func TestSortTopNLimitRestore(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rng := rand.New(rand.NewPCG(3, 4))
	bs := stepsRows(rng, mem, 900, 50)
	defer releaseAll(bs)
	keys := []ops.SortKey{{Column: "f", Desc: true}, {Column: "s", NullsFirst: true}, {Column: "id"}}
	for _, c := range []struct {
		name string
		spec func() arrowexec.Spec
	}{
		{"sort", func() arrowexec.Spec { return ops.NewSort(keys) }},
		{"top-40", func() arrowexec.Spec { return ops.NewTopN(keys, 40) }},
		{"limit-130", func() arrowexec.Spec { return ops.NewLimit(130) }},
	} {
		for _, cut := range []int{0, 3, 11, 18} {
			t.Run(fmt.Sprintf("%s/cut=%d", c.name, cut), func(t *testing.T) {
				bind := func() arrowexec.Spec {
					s := c.spec()
					if _, err := s.Schema([]*arrow.Schema{stepsSchema}); err != nil {
						t.Fatal(err)
					}
					return s
				}
				_, want := runOp(t, mem, bind(), bs, nil, 1, 0, true)
				// Two subtasks before the checkpoint (even and odd batches
				// of the first cut), one after it.
				var even, odd []arrow.RecordBatch
				for i, b := range bs[:cut] {
					if i%2 == 0 {
						even = append(even, b)
					} else {
						odd = append(odd, b)
					}
				}
				s0, out0 := runOp(t, mem, bind(), even, nil, 2, 0, false)
				s1, out1 := runOp(t, mem, bind(), odd, nil, 2, 1, false)
				_, rest := runOp(t, mem, bind(), bs[cut:], [][]byte{s0, s1}, 1, 0, true)
				got := append(append(out0, out1...), rest...)
				if c.name == "limit-130" {
					// Before the checkpoint two partial limits sent up to
					// 130 rows each; the restored one sends what is left
					// of 130 after their sum (none once it reached 130).
					restRows := 0
					for _, b := range bs[cut:] {
						restRows += int(b.NumRows())
					}
					if wantRest := min(restRows, 130-min(130, len(out0)+len(out1))); len(rest) != wantRest || len(want) != 130 {
						t.Fatalf("limit: restored run sent %d rows, want %d (uninterrupted: %d)", len(rest), wantRest, len(want))
					}
					return
				}
				if !slices.Equal(got, want) {
					t.Fatalf("ids %v\nwant %v", got[:min(10, len(got))], want[:min(10, len(want))])
				}
			})
		}
	}
}
