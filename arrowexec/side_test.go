package arrowexec_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/arrowexec/exectest"
)

// Rows of the side-output tests: a unique id u, a key k and an event time
// ts. The splitter sends rows with u%3 == 0 to its side output "x", as
// (u, k) only, and the others to its main output unchanged.
var (
	sideIn   = arrow.NewSchema([]arrow.Field{{Name: "u", Type: arrow.PrimitiveTypes.Int64}, {Name: "k", Type: arrow.PrimitiveTypes.Int64}, {Name: "ts", Type: arrow.PrimitiveTypes.Int64}}, nil)
	sideXOut = arrow.NewSchema([]arrow.Field{{Name: "u", Type: arrow.PrimitiveTypes.Int64}, {Name: "k", Type: arrow.PrimitiveTypes.Int64}}, nil)
)

type splitSpec struct{}

func (splitSpec) Schema(in []*arrow.Schema) (*arrow.Schema, error) { return in[0], nil }
func (splitSpec) SideOutputs([]*arrow.Schema) ([]arrowexec.SideOutput, error) {
	return []arrowexec.SideOutput{{Name: "x", Schema: sideXOut}}, nil
}
func (splitSpec) New(t *arrowexec.Task) (arrowexec.Operator, error) { return &splitOp{t: t}, nil }

type splitOp struct{ t *arrowexec.Task }

func (o *splitOp) Open(context.Context) error { return nil }
func (o *splitOp) Process(ctx context.Context, _ int, b arrow.RecordBatch, out arrowexec.Emitter) error {
	var main, side []int32
	for i, u := range b.Column(0).(*array.Int64).Int64Values() {
		if u%3 == 0 {
			side = append(side, int32(i))
		} else {
			main = append(main, int32(i))
		}
	}
	m, err := arrowexec.TakeRecord(o.t.Mem, b, main)
	if err != nil {
		return err
	}
	if err := out.Emit(ctx, m); err != nil {
		return err
	}
	x := arrowexec.Side(out, "x")
	if x == nil {
		return nil
	}
	s, err := arrowexec.TakeRecord(o.t.Mem, b, side)
	if err != nil {
		return err
	}
	proj := array.NewRecordBatch(sideXOut, s.Columns()[:2], s.NumRows())
	s.Release()
	return x.Emit(ctx, proj)
}
func (o *splitOp) Finish(context.Context, arrowexec.Emitter) error { return nil }
func (o *splitOp) Close() error                                    { return nil }

func sideBatches(mem memory.Allocator, n, per int) []arrow.RecordBatch {
	var out []arrow.RecordBatch
	for lo := 0; lo < n; lo += per {
		b := array.NewRecordBuilder(mem, sideIn)
		for u := lo; u < min(n, lo+per); u++ {
			b.Field(0).(*array.Int64Builder).Append(int64(u))
			b.Field(1).(*array.Int64Builder).Append(int64(u*7919) % 13)
			b.Field(2).(*array.Int64Builder).Append(int64(u))
		}
		out = append(out, b.NewRecordBatch())
		b.Release()
	}
	return out
}

// sideGraph is src(1) -> split(p, rebalance); split's main output ->
// main(q, hash by k); its side output x -> late(r, hash by k).
func sideGraph(src arrowexec.Source, log *exectest.CommitLog, run, p, q, r int) *arrowexec.Graph {
	g := arrowexec.NewGraph()
	s := g.AddSource("src", src, 1)
	sp := g.Add("split", splitSpec{}, p, s.Rebalance())
	g.Add("main", exectest.TwoPhase{Log: log, Run: run}, q, sp.HashBy("k"))
	g.Add("side", exectest.TwoPhase{Log: log, Run: run}, r, sp.Side("x").HashBy("k"))
	return g
}

// checkSplit checks that the sinks committed exactly the rows of 0..n-1
// that belong to them, each once.
func checkSplit(t *testing.T, log *exectest.CommitLog, n int) {
	t.Helper()
	for _, node := range []string{"main", "side"} {
		got := log.Committed(node)
		var want []int64
		for u := int64(0); u < int64(n); u++ {
			if (u%3 == 0) == (node == "side") {
				want = append(want, u)
			}
		}
		if !slices.Equal(got, want) {
			missing, dup := 0, 0
			cnt := map[int64]int{}
			for _, u := range got {
				cnt[u]++
			}
			for _, u := range want {
				if cnt[u] == 0 {
					missing++
				}
			}
			for _, c := range cnt {
				if c > 1 {
					dup++
				}
			}
			t.Fatalf("%s committed %d rows, want %d (%d missing, %d duplicated)", node, len(got), len(want), missing, dup)
		}
	}
}

// TestSideOutput runs a node with a side output wired through its own hash
// exchange at several parallelisms: the side sink gets exactly the side
// rows, in the side schema, and the watermarks of the main edge
// (non-decreasing, ending at MaxWatermark).
func TestSideOutput(t *testing.T) {
	for _, c := range [][3]int{{1, 1, 1}, {2, 3, 1}, {3, 1, 2}} {
		t.Run(fmt.Sprint(c), func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			bs := sideBatches(mem, 1000, 37)
			defer func() {
				for _, b := range bs {
					b.Release()
				}
			}()
			log := exectest.NewCommitLog()
			g := sideGraph(exectest.NewReplay(sideIn, bs, 2, 10), log, 1, c[0], c[1], c[2])
			job, err := g.Compile(arrowexec.RunOptions{Mem: mem, QueueDepth: 2})
			if err != nil {
				t.Fatal(err)
			}
			if err := job.Run(context.Background()); err != nil {
				t.Fatal(err)
			}
			checkSplit(t, log, 1000)
			if !log.Schema("side").Equal(sideXOut) {
				t.Fatalf("side schema %v", log.Schema("side"))
			}
			for sub := 0; sub < c[2]; sub++ {
				wms := log.Watermarks("side", sub)
				if len(wms) < 2 || wms[len(wms)-1] != arrowexec.MaxWatermark || !slices.IsSorted(wms) {
					t.Fatalf("side subtask %d watermarks %v: want a rising sequence ending at MaxWatermark", sub, wms)
				}
			}
		})
	}
}

// TestSideOutputPlanErrors: an edge from a side output the node does not
// declare, or a hash key the side schema lacks, fails Build naming it.
func TestSideOutputPlanErrors(t *testing.T) {
	src := exectest.NewReplay(sideIn, nil, 2, 0)
	for _, c := range []struct {
		wire func(g *arrowexec.Graph, sp *arrowexec.Node)
		want string
	}{
		{func(g *arrowexec.Graph, sp *arrowexec.Node) {
			g.Add("s", exectest.TwoPhase{}, 1, sp.Side("late").Rebalance())
		}, `"split" has no side output "late" (have ["x"])`},
		{func(g *arrowexec.Graph, sp *arrowexec.Node) {
			g.Add("s", exectest.TwoPhase{}, 1, sp.Side("x").HashBy("ts"))
		}, `hash edge "split.x" -> "s": unknown key column "ts"`},
	} {
		g := arrowexec.NewGraph()
		s := g.AddSource("src", src, 1)
		sp := g.Add("split", splitSpec{}, 1, s.Forward())
		c.wire(g, sp)
		if err := g.Build(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Fatalf("Build: %v, want %q", err, c.want)
		}
	}
}

// TestSideOutputExactlyOnce crashes a job with a side edge after
// checkpoints (some completed, the last only pre-committed) and restores
// it from each at other parallelisms: the side and main sinks commit every
// row of theirs exactly once.
func TestSideOutputExactlyOnce(t *testing.T) {
	for _, c := range []struct {
		p1, p2 [3]int
		from   uint64
	}{{[3]int{1, 2, 1}, [3]int{3, 1, 2}, 3}, {[3]int{2, 1, 3}, [3]int{1, 2, 1}, 1}, {[3]int{3, 3, 2}, [3]int{2, 2, 3}, 2}} {
		t.Run(fmt.Sprintf("%v-to-%v/from=%d", c.p1, c.p2, c.from), func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			const n = 3000
			bs := sideBatches(mem, n, 25)
			defer func() {
				for _, b := range bs {
					b.Release()
				}
			}()
			log := exectest.NewCommitLog()
			snaps := exectest.NewSnapshots()
			subtasks := func(p [3]int) int { return 1 + p[0] + p[1] + p[2] }
			// Run 1: checkpoints 1..3 at a quarter, half and three
			// quarters of the held part; those up to c.from complete
			// (3 is only pre-committed), then a crash.
			src1 := exectest.NewReplay(sideIn, bs, 2, 10)
			src1.Gated = true
			g1 := sideGraph(src1, log, 1, c.p1[0], c.p1[1], c.p1[2])
			job1, err := g1.Compile(arrowexec.RunOptions{Mem: mem, QueueDepth: 2, OnSnapshot: snaps.OnSnapshot})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- job1.Run(ctx) }()
			hold := len(bs) * 2 / 3
			upTo := func(p int) { src1.ServeUpTo(t, p) }
			rng := rand.New(rand.NewPCG(uint64(c.from), 7))
			for id := uint64(1); id <= 3; id++ {
				upTo(int(id)*hold/4 + rng.IntN(3))
				if err := job1.TriggerCheckpoint(ctx, arrowexec.Barrier{ID: id}); err != nil {
					t.Fatal(err)
				}
				for range subtasks(c.p1) {
					select {
					case <-snaps.Arrived():
					case <-time.After(30 * time.Second):
						t.Fatalf("checkpoint %d: not every subtask snapshotted", id)
					}
				}
				if id < 3 && id <= c.from {
					// A restore uses the newest completed checkpoint.
					job1.NotifyCheckpointComplete(id)
				}
			}
			upTo(hold)
			cancel()
			if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
				t.Fatal(err)
			}
			// Run 2 restores from checkpoint c.from and runs to the end.
			g2 := sideGraph(exectest.NewReplay(sideIn, bs, 2, 10), log, 2, c.p2[0], c.p2[1], c.p2[2])
			job2, err := g2.Compile(arrowexec.RunOptions{Mem: mem, QueueDepth: 2, Restore: snaps.Restore(c.from)})
			if err != nil {
				t.Fatal(err)
			}
			if err := job2.Run(context.Background()); err != nil {
				t.Fatal(err)
			}
			checkSplit(t, log, n)
		})
	}
}
