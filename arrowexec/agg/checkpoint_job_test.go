package agg

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/riffle-dev/riffle/arrowexec"
)

// The job test runs the aggregate in the arrowexec runtime, in the graph
// job/plan.go builds (source -> Single behind a hash exchange, or source ->
// Partial -> hash -> Final; global aggregates behind a rebalance at
// parallelism 1), with checkpoint barriers injected while the job runs.

// splitSource serves fixed batches from nSplits splits (batch i belongs to
// split i % nSplits, like the partitions of a topic); subtask s reads the
// splits j with j % parallelism == s, so the source rescales. Its state is
// the position of each of its splits: "split:pos,...".
type splitSource struct {
	schema  *arrow.Schema
	batches []arrow.RecordBatch
	nSplits int
	delay   time.Duration
	// gate, if set, holds the source (all its subtasks together) at the
	// number of batches the test allows: a checkpoint triggered once
	// they were served lands where the test chose, however fast the
	// machine.
	gate *gate
}

// gate counts the batches a splitSource served and holds it at a limit.
type gate struct{ limit, served atomic.Int64 }

func (s *splitSource) Schema() *arrow.Schema { return s.schema }

func (s *splitSource) Open(ctx context.Context, t *arrowexec.Task) (arrowexec.SourceReader, error) {
	pos := map[int]int{}
	if rs := t.Restore; rs != nil {
		for _, blob := range rs.Operator {
			for _, f := range strings.Split(string(blob), ",") {
				if f == "" {
					continue
				}
				var sp, p int
				if _, err := fmt.Sscanf(f, "%d:%d", &sp, &p); err != nil {
					return nil, err
				}
				pos[sp] = p
			}
		}
	}
	r := &splitReader{src: s}
	for sp := t.Subtask; sp < s.nSplits; sp += t.Parallelism {
		r.splits = append(r.splits, sp)
		r.pos = append(r.pos, pos[sp])
	}
	return r, nil
}

type splitReader struct {
	src    *splitSource
	splits []int
	pos    []int // next batch index within the split
	turn   int
}

func (r *splitReader) Next(ctx context.Context) (arrow.RecordBatch, error) {
	for range r.splits {
		i := r.turn % len(r.splits)
		r.turn++
		b := r.splits[i] + r.pos[i]*r.src.nSplits
		if b >= len(r.src.batches) {
			continue
		}
		if g := r.src.gate; g != nil && g.served.Load() >= g.limit.Load() {
			// Held: no data, so the runtime injects barriers.
			time.Sleep(100 * time.Microsecond)
			return nil, nil
		}
		r.pos[i]++
		time.Sleep(r.src.delay)
		if g := r.src.gate; g != nil {
			g.served.Add(1)
		}
		rec := r.src.batches[b]
		rec.Retain()
		return rec, nil
	}
	return nil, io.EOF
}

func (r *splitReader) SnapshotState(context.Context, uint64) (arrowexec.SubtaskSnapshot, error) {
	var sb strings.Builder
	for i, sp := range r.splits {
		fmt.Fprintf(&sb, "%d:%d,", sp, r.pos[i])
	}
	return arrowexec.SubtaskSnapshot{Operator: []byte(sb.String())}, nil
}

func (r *splitReader) Close() error { return nil }

// sinkSpec keeps every batch it receives.
type sinkSpec struct {
	mu      sync.Mutex
	batches []arrow.RecordBatch
}

func (s *sinkSpec) Schema([]*arrow.Schema) (*arrow.Schema, error)   { return nil, nil }
func (s *sinkSpec) New(*arrowexec.Task) (arrowexec.Operator, error) { return sinkOp{s}, nil }

func (s *sinkSpec) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	releaseAll(s.batches)
	s.batches = nil
}

type sinkOp struct{ s *sinkSpec }

func (o sinkOp) Open(context.Context) error { return nil }
func (o sinkOp) Process(_ context.Context, _ int, b arrow.RecordBatch, _ arrowexec.Emitter) error {
	b.Retain()
	o.s.mu.Lock()
	o.s.batches = append(o.s.batches, b)
	o.s.mu.Unlock()
	return nil
}
func (o sinkOp) Finish(context.Context, arrowexec.Emitter) error { return nil }
func (o sinkOp) Close() error                                    { return nil }

// jobPlan is one configuration of the aggregate job.
type jobPlan struct {
	gb      []string
	aggs    []Agg
	twoStep bool
	maxPar  int
}

// graph builds the job as job/plan.go does, with the source at srcPar and
// keyed aggregate nodes at aggPar.
func (jp jobPlan) graph(t testing.TB, src *splitSource, sink *sinkSpec, srcPar, aggPar int) *arrowexec.Graph {
	g := arrowexec.NewGraph()
	g.SetMaxParallelism(jp.maxPar)
	s := g.AddSource("source", src, srcPar)
	exchange := func(from *arrowexec.Node) (arrowexec.Input, int) {
		if len(jp.gb) == 0 {
			return from.Rebalance(), 1
		}
		return from.HashBy(jp.gb...), aggPar
	}
	var cur *arrowexec.Node
	if jp.twoStep {
		partial, err := New(Options{GroupBy: jp.gb, Aggs: jp.aggs, Mode: Partial})
		if err != nil {
			t.Fatal(err)
		}
		final, err := New(Options{GroupBy: jp.gb, Aggs: jp.aggs, Mode: Final})
		if err != nil {
			t.Fatal(err)
		}
		pn := g.Add("agg-1-partial", partial, srcPar, s.Forward())
		xin, xpar := exchange(pn)
		cur = g.Add("agg-1", final, xpar, xin)
	} else {
		single, err := New(Options{GroupBy: jp.gb, Aggs: jp.aggs, Mode: Single})
		if err != nil {
			t.Fatal(err)
		}
		xin, xpar := exchange(s)
		cur = g.Add("agg-1", single, xpar, xin)
	}
	g.Add("sink", sink, cur.Parallelism(), cur.Forward())
	return g
}

// checkpoints collects the snapshots of one run by checkpoint and node.
type checkpoints struct {
	mu       sync.Mutex
	total    int // subtasks in the job
	snaps    map[uint64]map[string]map[int]arrowexec.SubtaskSnapshot
	count    map[uint64]int
	complete []uint64
	onDone   func(id uint64)
}

func newCheckpoints(g *arrowexec.Graph) *checkpoints {
	c := &checkpoints{snaps: map[uint64]map[string]map[int]arrowexec.SubtaskSnapshot{}, count: map[uint64]int{}}
	for _, n := range g.Nodes() {
		c.total += n.Parallelism()
	}
	return c
}

func (c *checkpoints) onSnapshot(node string, sub int, id uint64, snap arrowexec.SubtaskSnapshot) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.snaps[id] == nil {
		c.snaps[id] = map[string]map[int]arrowexec.SubtaskSnapshot{}
	}
	if c.snaps[id][node] == nil {
		c.snaps[id][node] = map[int]arrowexec.SubtaskSnapshot{}
	}
	c.snaps[id][node][sub] = snap
	c.count[id]++
	if c.count[id] == c.total {
		c.complete = append(c.complete, id)
		if c.onDone != nil {
			c.onDone(id)
		}
	}
	return nil
}

// restore returns the Restore function of a run restoring checkpoint id
// (redistributed like the checkpoint coordinator does, restoreStates).
func (c *checkpoints) restore(t testing.TB, id uint64, maxPar int) func(node string, sub, par int) *arrowexec.RestoreState {
	return func(node string, sub, par int) *arrowexec.RestoreState {
		old := c.snaps[id][node]
		snaps := make([]arrowexec.SubtaskSnapshot, len(old))
		for i := range snaps {
			snaps[i] = old[i]
		}
		return restoreStates(t, snaps, maxPar, par)[sub]
	}
}

// trigger injects barriers 1, 2, ... at random intervals until the sources
// finish or ctx ends.
// triggerGated lets src's gate serve a random number of batches more,
// waits until they were served, and triggers the next checkpoint, until
// the source is let to its end (or ctx is done): every checkpoint lands
// at a point of the input the test chose, not where a timer fell.
func triggerGated(ctx context.Context, job *arrowexec.Job, src *splitSource, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 98))
	g, total := src.gate, int64(len(src.batches))
	for id := uint64(1); ; id++ {
		lim := min(total, g.limit.Load()+1+rng.Int64N(total/8+1))
		g.limit.Store(lim)
		for g.served.Load() < lim {
			select {
			case <-ctx.Done():
				return
			case <-time.After(100 * time.Microsecond):
			}
		}
		if err := job.TriggerCheckpoint(ctx, arrowexec.Barrier{ID: id}); err != nil || lim == total {
			return
		}
	}
}

func trigger(ctx context.Context, job *arrowexec.Job, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 99))
	for id := uint64(1); ; id++ {
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Duration(300+rng.IntN(2000)) * time.Microsecond):
		}
		if err := job.TriggerCheckpoint(ctx, arrowexec.Barrier{ID: id}); err != nil {
			return
		}
	}
}

// TestJobCrashRestore: the aggregate job runs with checkpoints, crashes
// right after checkpoint k (its output is dropped), and restarts from that
// checkpoint with other source and aggregate parallelisms, replaying the
// input after it. The sink must receive exactly the oracle's result.
func TestJobCrashRestore(t *testing.T) {
	iters := 16
	if testing.Short() {
		iters = 6
	}
	restoredState := 0
	for it := range iters {
		rng := rand.New(rand.NewPCG(77, uint64(it)))
		jp := jobPlan{gb: groupBys[rng.IntN(len(groupBys))], twoStep: it%2 == 1, maxPar: []int{8, 128}[rng.IntN(2)]}
		jp.aggs = allAggs()
		if jp.twoStep {
			jp.aggs = decomposable(jp.aggs)
		}
		n := 1000 + rng.IntN(3000)
		card := []int{3, 100, 2000}[rng.IntN(3)]
		cols := genData(rng, n, card)
		t.Run(fmt.Sprintf("%d/twostep=%v/by=%s/rows=%d/card=%d", it, jp.twoStep, strings.Join(jp.gb, ","), n, card), func(t *testing.T) {
			if testJobCrash(t, rng, jp, cols) {
				restoredState++
			}
		})
	}
	if restoredState == 0 {
		t.Fatal("no run restored aggregate state from a checkpoint")
	}
}

func testJobCrash(t *testing.T, rng *rand.Rand, jp jobPlan, cols []column) (restored bool) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rec := record(mem, cols)
	defer rec.Release()
	batches := randomBatches(rng, rec, 10+rng.IntN(60))
	defer releaseAll(batches)
	src := &splitSource{schema: rec.Schema(), batches: batches, nSplits: 4, gate: &gate{}}
	want := project(oracle(cols, jp.gb, allAggs()), len(jp.gb), allAggs(), jp.aggs)

	// Run 1: crash right after checkpoint crashAt completed; the gated
	// source lets the checkpoints land mid-input.
	crashAt := uint64(1 + rng.IntN(4))
	sink1 := &sinkSpec{}
	defer sink1.release()
	g1 := jp.graph(t, src, sink1, 1+rng.IntN(4), 1+rng.IntN(4))
	cps := newCheckpoints(g1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cps.onDone = func(id uint64) {
		if id == crashAt {
			cancel()
		}
	}
	job, err := g1.Compile(arrowexec.RunOptions{Mem: mem, QueueDepth: 2, OnSnapshot: cps.onSnapshot})
	if err != nil {
		t.Fatal(err)
	}
	go triggerGated(ctx, job, src, rng.Uint64())
	if err := job.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("run 1: %v", err)
	}
	cancel()

	// Run 2 from the newest complete checkpoint (crashAt, unless the job
	// finished first), at other parallelisms.
	cps.mu.Lock()
	var from uint64
	for _, id := range cps.complete {
		from = max(from, id)
	}
	cps.mu.Unlock()
	opts := arrowexec.RunOptions{Mem: mem, QueueDepth: 2}
	if from > 0 {
		opts.Restore = cps.restore(t, from, jp.maxPar)
		for node, subs := range cps.snaps[from] {
			for _, s := range subs {
				if strings.HasPrefix(node, "agg") && (len(s.Operator) > 0 || len(s.KeyGroups) > 0) {
					restored = true
				}
			}
		}
	}
	sink2 := &sinkSpec{}
	defer sink2.release()
	src2 := &splitSource{schema: rec.Schema(), batches: batches, nSplits: 4} // not held
	g2 := jp.graph(t, src2, sink2, 1+rng.IntN(4), 1+rng.IntN(4))
	cps2 := newCheckpoints(g2)
	opts.OnSnapshot = cps2.onSnapshot // checkpoints keep running after the restore
	job2, err := g2.Compile(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	go trigger(ctx2, job2, rng.Uint64())
	if err := job2.Run(ctx2); err != nil {
		t.Fatalf("run 2 (from checkpoint %d): %v", from, err)
	}
	cancel2()
	outSchema := g2.Node("agg-1").Schema()
	check(t, fmt.Sprintf("restored from checkpoint %d", from), sink2.batches, want, len(jp.gb), MaxBatchSize, outSchema)
	t.Logf("crash after checkpoint %d, restored from %d (%d checkpoints complete in run 2)", crashAt, from, len(cps2.complete))
	return restored
}
