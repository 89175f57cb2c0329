package arrowexec_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
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

// commitLog is what a two-phase-commit sink made visible: every committed
// u, per sink node. A commit is idempotent, as publishing a file is: a
// token committed twice counts once.
type commitLog struct {
	mu        sync.Mutex
	tokens    map[string]bool
	committed map[string][]int64
	wms       map[string][]int64 // watermarks seen, per node/subtask
	schemas   map[string]*arrow.Schema
}

func newCommitLog() *commitLog {
	return &commitLog{tokens: map[string]bool{}, committed: map[string][]int64{}, wms: map[string][]int64{}, schemas: map[string]*arrow.Schema{}}
}

func (l *commitLog) commit(node, token string, us []int64) {
	l.mu.Lock()
	if !l.tokens[token] {
		l.tokens[token] = true
		l.committed[node] = append(l.committed[node], us...)
	}
	l.mu.Unlock()
}

// tpcSink is a two-phase-commit sink of the u column: rows since the last
// barrier are pre-committed at a barrier (kept in the snapshot), committed
// when that checkpoint completes, and committed at once at the end of
// input. A restored subtask 0 commits what the restored checkpoint
// pre-committed for every previous subtask.
type tpcSink struct {
	log *commitLog
	run int // tells the tokens of two runs apart
}

func (s tpcSink) Schema([]*arrow.Schema) (*arrow.Schema, error) { return nil, nil }
func (s tpcSink) New(t *arrowexec.Task) (arrowexec.Operator, error) {
	return &tpcOp{log: s.log, run: s.run, t: t, pending: map[uint64][]int64{}}, nil
}

type tpcOp struct {
	log     *commitLog
	run     int
	t       *arrowexec.Task
	open    []int64
	pending map[uint64][]int64
}

func encodeUs(id uint64, token string, us []int64) string {
	parts := []string{strconv.FormatUint(id, 10), token}
	for _, u := range us {
		parts = append(parts, strconv.FormatInt(u, 10))
	}
	return strings.Join(parts, " ")
}

func (o *tpcOp) Open(context.Context) error {
	rs := o.t.Restore
	if rs == nil || o.t.Subtask != 0 {
		return nil
	}
	for _, blob := range rs.Operator {
		for _, line := range strings.Split(string(blob), "\n") {
			f := strings.Fields(line)
			if len(f) == 0 {
				continue
			}
			id, err := strconv.ParseUint(f[0], 10, 64)
			if err != nil {
				return err
			}
			if id > rs.CheckpointID {
				continue
			}
			var us []int64
			for _, s := range f[2:] {
				u, err := strconv.ParseInt(s, 10, 64)
				if err != nil {
					return err
				}
				us = append(us, u)
			}
			o.log.commit(o.t.Node, f[1], us)
		}
	}
	return nil
}

func (o *tpcOp) token(id uint64) string {
	return fmt.Sprintf("%d/%s/%d/%d", o.run, o.t.Node, o.t.Subtask, id)
}

func (o *tpcOp) Process(_ context.Context, _ int, b arrow.RecordBatch, _ arrowexec.Emitter) error {
	o.log.mu.Lock()
	o.log.schemas[o.t.Node] = b.Schema()
	o.log.mu.Unlock()
	o.open = append(o.open, b.Column(0).(*array.Int64).Int64Values()...)
	return nil
}

func (o *tpcOp) OnWatermark(_ context.Context, wm int64, _ arrowexec.Emitter) error {
	key := fmt.Sprintf("%s/%d", o.t.Node, o.t.Subtask)
	o.log.mu.Lock()
	o.log.wms[key] = append(o.log.wms[key], wm)
	o.log.mu.Unlock()
	return nil
}

func (o *tpcOp) SnapshotState(_ context.Context, id uint64) (arrowexec.SubtaskSnapshot, error) {
	o.pending[id] = o.open
	o.open = nil
	var lines []string
	for _, pid := range slices.Sorted(func(yield func(uint64) bool) {
		for k := range o.pending {
			if !yield(k) {
				return
			}
		}
	}) {
		lines = append(lines, encodeUs(pid, o.token(pid), o.pending[pid]))
	}
	return arrowexec.SubtaskSnapshot{Operator: []byte(strings.Join(lines, "\n"))}, nil
}

func (o *tpcOp) NotifyCheckpointComplete(_ context.Context, id uint64) error {
	for pid, us := range o.pending {
		if pid <= id {
			o.log.commit(o.t.Node, o.token(pid), us)
			delete(o.pending, pid)
		}
	}
	return nil
}

func (o *tpcOp) Finish(context.Context, arrowexec.Emitter) error {
	if o.t.Suspended() {
		return nil
	}
	for pid, us := range o.pending {
		o.log.commit(o.t.Node, o.token(pid), us)
		delete(o.pending, pid)
	}
	o.log.commit(o.t.Node, o.token(0)+"/end", o.open)
	o.open = nil
	return nil
}
func (o *tpcOp) Close() error { return nil }

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
func sideGraph(src arrowexec.Source, log *commitLog, run, p, q, r int) *arrowexec.Graph {
	g := arrowexec.NewGraph()
	s := g.AddSource("src", src, 1)
	sp := g.Add("split", splitSpec{}, p, s.Rebalance())
	g.Add("main", tpcSink{log, run}, q, sp.HashBy("k"))
	g.Add("side", tpcSink{log, run}, r, sp.Side("x").HashBy("k"))
	return g
}

// checkSplit checks that the sinks committed exactly the rows of 0..n-1
// that belong to them, each once.
func checkSplit(t *testing.T, log *commitLog, n int) {
	t.Helper()
	log.mu.Lock()
	defer log.mu.Unlock()
	for _, node := range []string{"main", "side"} {
		got := slices.Clone(log.committed[node])
		slices.Sort(got)
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
			log := newCommitLog()
			g := sideGraph(exectest.NewReplay(sideIn, bs, 2, 10), log, 1, c[0], c[1], c[2])
			job, err := g.Compile(arrowexec.RunOptions{Mem: mem, QueueDepth: 2})
			if err != nil {
				t.Fatal(err)
			}
			if err := job.Run(context.Background()); err != nil {
				t.Fatal(err)
			}
			checkSplit(t, log, 1000)
			if !log.schemas["side"].Equal(sideXOut) {
				t.Fatalf("side schema %v", log.schemas["side"])
			}
			for sub := 0; sub < c[2]; sub++ {
				wms := log.wms[fmt.Sprintf("side/%d", sub)]
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
		{func(g *arrowexec.Graph, sp *arrowexec.Node) { g.Add("s", tpcSink{}, 1, sp.Side("late").Rebalance()) }, `"split" has no side output "late" (have ["x"])`},
		{func(g *arrowexec.Graph, sp *arrowexec.Node) { g.Add("s", tpcSink{}, 1, sp.Side("x").HashBy("ts")) }, `hash edge "split.x" -> "s": unknown key column "ts"`},
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
			log := newCommitLog()
			var mu sync.Mutex
			snaps := map[uint64]map[string]map[int]arrowexec.SubtaskSnapshot{}
			arrived := make(chan struct{}, 64)
			onSnap := func(node string, sub int, id uint64, s arrowexec.SubtaskSnapshot) error {
				mu.Lock()
				if snaps[id] == nil {
					snaps[id] = map[string]map[int]arrowexec.SubtaskSnapshot{}
				}
				if snaps[id][node] == nil {
					snaps[id][node] = map[int]arrowexec.SubtaskSnapshot{}
				}
				snaps[id][node][sub] = s
				mu.Unlock()
				arrived <- struct{}{}
				return nil
			}
			subtasks := func(p [3]int) int { return 1 + p[0] + p[1] + p[2] }
			// Run 1: checkpoints 1..3 at a quarter, half and three
			// quarters of the held part; those up to c.from complete
			// (3 is only pre-committed), then a crash.
			src1 := exectest.NewReplay(sideIn, bs, 2, 10)
			src1.Gated = true
			g1 := sideGraph(src1, log, 1, c.p1[0], c.p1[1], c.p1[2])
			job1, err := g1.Compile(arrowexec.RunOptions{Mem: mem, QueueDepth: 2, OnSnapshot: onSnap})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- job1.Run(ctx) }()
			hold := len(bs) * 2 / 3
			upTo := func(p int) {
				src1.SetLimit(p)
				for src1.Served() < p {
					time.Sleep(100 * time.Microsecond) // polls the source's position
				}
			}
			rng := rand.New(rand.NewPCG(uint64(c.from), 7))
			for id := uint64(1); id <= 3; id++ {
				upTo(int(id)*hold/4 + rng.IntN(3))
				if err := job1.TriggerCheckpoint(ctx, arrowexec.Barrier{ID: id}); err != nil {
					t.Fatal(err)
				}
				for range subtasks(c.p1) {
					select {
					case <-arrived:
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
			mu.Lock()
			cp := snaps[c.from]
			mu.Unlock()
			g2 := sideGraph(exectest.NewReplay(sideIn, bs, 2, 10), log, 2, c.p2[0], c.p2[1], c.p2[2])
			restore := func(node string, sub, par int) *arrowexec.RestoreState {
				rs := &arrowexec.RestoreState{CheckpointID: c.from}
				for i := 0; i < len(cp[node]); i++ {
					rs.Operator = append(rs.Operator, cp[node][i].Operator)
				}
				return rs
			}
			job2, err := g2.Compile(arrowexec.RunOptions{Mem: mem, QueueDepth: 2, Restore: restore})
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
