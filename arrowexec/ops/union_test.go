package ops_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/arrowexec/exectest"
	"github.com/riffle-dev/riffle/arrowexec/ops"
)

var unionIn = arrow.NewSchema([]arrow.Field{
	{Name: "u", Type: arrow.PrimitiveTypes.Int64}, {Name: "k", Type: arrow.PrimitiveTypes.Int64}, {Name: "ts", Type: arrow.PrimitiveTypes.Int64}}, nil)

// unionBatches returns rows u = lo..hi-1, k = u mod 7, ts = tsOff + u, in
// batches of per rows.
func unionBatches(mem memory.Allocator, lo, hi, per int, tsOff int64) []arrow.RecordBatch {
	var out []arrow.RecordBatch
	for a := lo; a < hi; a += per {
		b := array.NewRecordBuilder(mem, unionIn)
		for u := a; u < min(hi, a+per); u++ {
			b.Field(0).(*array.Int64Builder).Append(int64(u))
			b.Field(1).(*array.Int64Builder).Append(int64(u % 7))
			b.Field(2).(*array.Int64Builder).Append(tsOff + int64(u))
		}
		out = append(out, b.NewRecordBatch())
		b.Release()
	}
	return out
}

func releaseAll(bs []arrow.RecordBatch) {
	for _, b := range bs {
		b.Release()
	}
}

func TestUnionSchema(t *testing.T) {
	f := func(name string, dt arrow.DataType, null bool) arrow.Field {
		return arrow.Field{Name: name, Type: dt, Nullable: null}
	}
	a := arrow.NewSchema([]arrow.Field{f("a", arrow.PrimitiveTypes.Int64, false), f("b", arrow.BinaryTypes.String, false)}, nil)
	aNull := arrow.NewSchema([]arrow.Field{f("a", arrow.PrimitiveTypes.Int64, true), f("b", arrow.BinaryTypes.String, false)}, nil)
	got, err := ops.NewUnion().Schema([]*arrow.Schema{a, aNull, a})
	if err != nil || !got.Equal(aNull) {
		t.Fatalf("schema %v, %v; want %v", got, err, aNull)
	}
	for _, c := range []struct {
		in   []*arrow.Schema
		want string
	}{
		{[]*arrow.Schema{a}, "union: want at least 2 inputs, got 1"},
		{[]*arrow.Schema{a, arrow.NewSchema([]arrow.Field{f("a", arrow.PrimitiveTypes.Int64, false)}, nil)}, "union: input 2 does not match input 1: 1 columns (a int64), want 2 (a int64, b utf8)"},
		{[]*arrow.Schema{a, a, arrow.NewSchema([]arrow.Field{f("a", arrow.PrimitiveTypes.Int64, false), f("b", arrow.PrimitiveTypes.Int64, false)}, nil)}, "union: input 3 does not match input 1: column 2 is b int64, want b utf8"},
		{[]*arrow.Schema{a, arrow.NewSchema([]arrow.Field{f("a", arrow.PrimitiveTypes.Int64, false), f("c", arrow.BinaryTypes.String, false)}, nil)}, "column 2 is c utf8, want b utf8"},
	} {
		if _, err := ops.NewUnion().Schema(c.in); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Fatalf("Schema: %v, want %q", err, c.want)
		}
	}
}

// unionGraph is a(1), b(1) -> union(p, rebalanced) -> sink(q, hash by k).
func unionGraph(a, b arrowexec.Source, log *exectest.CommitLog, run, p, q int) *arrowexec.Graph {
	g := arrowexec.NewGraph()
	sa := g.AddSource("a", a, 1)
	sb := g.AddSource("b", b, 1)
	u := g.Add("union", ops.NewUnion(), p, sa.Rebalance(), sb.Rebalance())
	g.Add("sink", exectest.TwoPhase{Log: log, Run: run}, q, u.HashBy("k"))
	return g
}

// TestUnionWatermarkIsMinimum holds input b back while input a runs to
// its end: the union's watermark must follow b (the minimum over its
// inputs), never a's, until b ends too.
func TestUnionWatermarkIsMinimum(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	as := unionBatches(mem, 0, 500, 20, 100_000) // a's event times are far ahead
	bs := unionBatches(mem, 500, 1000, 20, 0)
	defer releaseAll(as)
	defer releaseAll(bs)
	a := exectest.NewReplay(unionIn, as, 2, 0)
	b := exectest.NewReplay(unionIn, bs, 2, 0)
	b.Gated = true
	log := exectest.NewCommitLog()
	job, err := unionGraph(a, b, log, 1, 2, 2).Compile(arrowexec.RunOptions{Mem: mem, QueueDepth: 2})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- job.Run(context.Background()) }()
	a.ServeUpTo(t, len(as))
	b.ServeUpTo(t, len(bs))
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	bMax := int64(999) // b's largest event time, lag 0
	for sub := range 2 {
		wms := log.Watermarks("sink", sub)
		if len(wms) == 0 || wms[len(wms)-1] != arrowexec.MaxWatermark {
			t.Fatalf("sink %d: watermarks %v, want MaxWatermark last", sub, wms)
		}
		for _, wm := range wms[:len(wms)-1] {
			if wm > bMax {
				t.Fatalf("sink %d: watermark %d passed input b's %d: not the minimum over the inputs (%v)", sub, wm, bMax, wms)
			}
		}
	}
	if got := log.Committed("sink"); len(got) != 1000 {
		t.Fatalf("%d rows, want 1000", len(got))
	}
}

// TestUnionExactlyOnce crashes a union of two sources after checkpoints
// (barriers aligned across both inputs; those up to c.from completed) and
// restores it from checkpoint c.from at other parallelisms: the sink
// commits every row of both inputs exactly once (UNION ALL).
func TestUnionExactlyOnce(t *testing.T) {
	for _, c := range []struct {
		p1, p2 [2]int
		from   uint64
	}{{[2]int{1, 2}, [2]int{3, 1}, 3}, {[2]int{2, 1}, [2]int{1, 3}, 1}, {[2]int{3, 3}, [2]int{2, 2}, 2}} {
		t.Run(fmt.Sprintf("%v-to-%v/from=%d", c.p1, c.p2, c.from), func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			as := unionBatches(mem, 0, 2000, 25, 0)
			bs := unionBatches(mem, 2000, 3500, 15, 0)
			defer releaseAll(as)
			defer releaseAll(bs)
			log := exectest.NewCommitLog()
			snaps := exectest.NewSnapshots()
			a1, b1 := exectest.NewReplay(unionIn, as, 2, 5), exectest.NewReplay(unionIn, bs, 2, 5)
			a1.Gated, b1.Gated = true, true
			job1, err := unionGraph(a1, b1, log, 1, c.p1[0], c.p1[1]).Compile(arrowexec.RunOptions{Mem: mem, QueueDepth: 2, OnSnapshot: snaps.OnSnapshot})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- job1.Run(ctx) }()
			subtasks := 2 + c.p1[0] + c.p1[1]
			for id := uint64(1); id <= 3; id++ {
				// The two inputs advance unevenly between barriers, and
				// the barrier goes in while their rows are in flight.
				a1.SetLimit(int(id) * len(as) / 5)
				b1.SetLimit(int(id) * len(bs) / 6)
				if err := job1.TriggerCheckpoint(ctx, arrowexec.Barrier{ID: id}); err != nil {
					t.Fatal(err)
				}
				for range subtasks {
					select {
					case <-snaps.Arrived():
					case <-time.After(30 * time.Second):
						t.Fatalf("checkpoint %d: not every subtask snapshotted", id)
					}
				}
				if id < 3 && id <= c.from {
					job1.NotifyCheckpointComplete(id)
				}
			}
			a1.ServeUpTo(t, len(as)*4/5)
			cancel()
			if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
				t.Fatal(err)
			}
			g2 := unionGraph(exectest.NewReplay(unionIn, as, 2, 5), exectest.NewReplay(unionIn, bs, 2, 5), log, 2, c.p2[0], c.p2[1])
			job2, err := g2.Compile(arrowexec.RunOptions{Mem: mem, QueueDepth: 2, Restore: snaps.Restore(c.from)})
			if err != nil {
				t.Fatal(err)
			}
			if err := job2.Run(context.Background()); err != nil {
				t.Fatal(err)
			}
			got := log.Committed("sink")
			want := make([]int64, 3500)
			for i := range want {
				want[i] = int64(i)
			}
			if !slices.Equal(got, want) {
				t.Fatalf("committed %d rows, want %d (each of 0..3499 once)", len(got), len(want))
			}
		})
	}
}
