package agg

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/riffle-dev/riffle/arrowexec"
)

// Checkpoint tests drive operators directly, as subtasks of a simulated
// job: input batches are routed to subtasks the way the planner's edges
// route them (arrowexec.PartitionRecord for hash exchanges, round robin
// for the Forward edge into Partial), snapshots are redistributed the way
// the checkpoint coordinator does it (restoreStates), and every result is
// compared with the brute-force oracle over the whole input.

// fixture returns a checked allocator (asserted empty when t ends) and a
// record of genData(n, card) rows from it (released when t ends).
func fixture(t *testing.T, seed uint64, n, card int) (memory.Allocator, arrow.RecordBatch) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	t.Cleanup(func() { mem.AssertSize(t, 0) })
	rec := record(mem, genData(rand.New(rand.NewPCG(seed, seed)), n, card))
	t.Cleanup(rec.Release)
	return mem, rec
}

// restoreStates turns the snapshots of every old subtask of one node into
// the RestoreState of each of newPar new subtasks, like
// checkpoint.Checkpoint.RestoreState: every operator blob for everybody,
// the key groups each subtask owns now. It fails the test when two old
// subtasks wrote the same key group (the coordinator would keep only one).
func restoreStates(t testing.TB, snaps []arrowexec.SubtaskSnapshot, maxPar, newPar int) []*arrowexec.RestoreState {
	t.Helper()
	owner := map[int]int{}
	ops := make([][]byte, len(snaps))
	for i, s := range snaps {
		ops[i] = s.Operator
		for kg := range s.KeyGroups {
			if kg < 0 || kg >= maxPar {
				t.Fatalf("subtask %d snapshot holds key group %d, max parallelism %d", i, kg, maxPar)
			}
			if j, ok := owner[kg]; ok {
				t.Fatalf("key group %d snapshotted by subtasks %d and %d", kg, j, i)
			}
			owner[kg] = i
		}
	}
	out := make([]*arrowexec.RestoreState, newPar)
	for sub := range out {
		rs := &arrowexec.RestoreState{CheckpointID: 7, Operator: ops, KeyGroups: map[int][]byte{}}
		lo, hi := arrowexec.KeyGroupRange(maxPar, newPar, sub)
		for kg, i := range owner {
			if kg >= lo && kg < hi {
				rs.KeyGroups[kg] = snaps[i].KeyGroups[kg]
			}
		}
		out[sub] = rs
	}
	return out
}

// stageHashMask, when not 0, is the hashMask of the operators newStage
// makes: forced hash collisions (see TestCollisions).
var stageHashMask uint64

// stage is one node of the simulated job: par subtasks of spec.
type stage struct {
	spec   *Spec
	in     *arrow.Schema
	keyIdx []int // hash exchange by these input columns; nil: round robin
	maxPar int
	ops    []*operator
	rr     int
	out    collector
	part   []uint64
}

func newStage(t testing.TB, mem memory.Allocator, spec *Spec, in *arrow.Schema, keyed bool, par, maxPar int, restore []*arrowexec.RestoreState) *stage {
	t.Helper()
	s := &stage{spec: spec, in: in, maxPar: maxPar}
	if keyed {
		for _, k := range spec.opts.GroupBy {
			i, err := columnIndex(in, k)
			if err != nil {
				t.Fatal(err)
			}
			s.keyIdx = append(s.keyIdx, i)
		}
	}
	for sub := range par {
		task := &arrowexec.Task{Node: "agg", Subtask: sub, Parallelism: par, MaxParallelism: maxPar, Mem: mem, Inputs: []*arrow.Schema{in}}
		if restore != nil {
			task.Restore = restore[sub]
		}
		op, err := spec.New(task)
		if err != nil {
			t.Fatal(err)
		}
		s.ops = append(s.ops, op.(*operator))
		if stageHashMask != 0 {
			op.(*operator).hashMask = stageHashMask // before Open: restores group too
		}
		if err := op.Open(context.Background()); err != nil {
			s.close()
			t.Fatal(err)
		}
	}
	return s
}

func (s *stage) push(t testing.TB, mem memory.Allocator, b arrow.RecordBatch) {
	t.Helper()
	ctx := context.Background()
	if s.keyIdx == nil || len(s.ops) == 1 {
		op := s.ops[s.rr%len(s.ops)]
		s.rr++
		if err := op.Process(ctx, 0, b, &s.out); err != nil {
			t.Fatal(err)
		}
		return
	}
	parts, err := arrowexec.PartitionRecord(mem, b, s.keyIdx, s.maxPar, len(s.ops), s.part)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range parts {
		if p == nil {
			continue
		}
		err := s.ops[i].Process(ctx, 0, p, &s.out)
		p.Release()
		if err != nil {
			t.Fatal(err)
		}
	}
}

func (s *stage) snapshot(t testing.TB) []arrowexec.SubtaskSnapshot {
	t.Helper()
	var snaps []arrowexec.SubtaskSnapshot
	for _, op := range s.ops {
		snap, err := op.SnapshotState(context.Background(), 7)
		if err != nil {
			t.Fatal(err)
		}
		snaps = append(snaps, snap)
	}
	return snaps
}

func (s *stage) finish(t testing.TB) []arrow.RecordBatch {
	t.Helper()
	for _, op := range s.ops {
		if err := op.Finish(context.Background(), &s.out); err != nil {
			t.Fatal(err)
		}
	}
	return s.out.batches
}

func (s *stage) close() {
	for _, op := range s.ops {
		op.Close()
	}
	s.out.release()
}

// randomBatches cuts rec into batches of random sizes (views).
func randomBatches(rng *rand.Rand, rec arrow.RecordBatch, maxSize int) []arrow.RecordBatch {
	var out []arrow.RecordBatch
	for lo := int64(0); lo < rec.NumRows(); {
		hi := min(lo+1+rng.Int64N(int64(maxSize)), rec.NumRows())
		out = append(out, rec.NewSlice(lo, hi))
		lo = hi
	}
	return out
}

func decomposable(aggs []Agg) []Agg {
	var dec []Agg
	for _, a := range aggs {
		if Decomposable([]Agg{a}) {
			dec = append(dec, a)
		}
	}
	return dec
}

// TestSnapshotRoundTrip: the state of every aggregate function over keys
// of every type, with NULL keys and values, survives snapshot and restore
// (twice), in every mode, also when empty and with forced hash collisions.
func TestSnapshotRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	defer func() { stageHashMask = 0 }()
	for _, n := range []int{0, 3000} {
		data := genData(rng, n, 300)
		for _, mask := range []uint64{0, 0xff} {
			stageHashMask = mask
			for _, gb := range groupBys {
				t.Run(fmt.Sprintf("rows=%d/by=%s/mask=%#x", n, strings.Join(gb, ","), mask), func(t *testing.T) {
					testRoundTrip(t, data, gb)
				})
			}
		}
	}
}

// roundTrip snapshots the operators of s, restores them into a new stage
// of the same parallelism, snapshots and restores that one again, and
// returns the last stage.
func roundTrip(t *testing.T, mem memory.Allocator, s *stage) *stage {
	t.Helper()
	keyed := s.keyIdx != nil
	for range 2 {
		snaps := s.snapshot(t)
		s.close()
		s = newStage(t, mem, s.spec, s.in, keyed, len(s.ops), s.maxPar, restoreStates(t, snaps, s.maxPar, len(s.ops)))
	}
	return s
}

func testRoundTrip(t *testing.T, cols []column, gb []string) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rec := record(mem, cols)
	defer rec.Release()
	batches := split(rec, 500)
	defer releaseAll(batches)
	const maxPar = 16

	// Single, with every function.
	aggs := allAggs()
	want := oracle(cols, gb, aggs)
	spec, err := New(Options{GroupBy: gb, Aggs: aggs})
	if err != nil {
		t.Fatal(err)
	}
	s := newStage(t, mem, spec, rec.Schema(), len(gb) > 0, 1, maxPar, nil)
	for _, b := range batches {
		s.push(t, mem, b)
	}
	s = roundTrip(t, mem, s)
	schema, _ := spec.Schema([]*arrow.Schema{rec.Schema()})
	check(t, "single", s.finish(t), want, len(gb), MaxBatchSize, schema)
	s.close()

	// Partial, then Final.
	dec := decomposable(aggs)
	want = project(want, len(gb), aggs, dec)
	pspec, _ := New(Options{GroupBy: gb, Aggs: dec, Mode: Partial})
	fspec, _ := New(Options{GroupBy: gb, Aggs: dec, Mode: Final})
	ps := newStage(t, mem, pspec, rec.Schema(), false, 1, maxPar, nil)
	defer func() { ps.close() }()
	for _, b := range batches {
		ps.push(t, mem, b)
	}
	ps = roundTrip(t, mem, ps)
	pschema, _ := pspec.Schema([]*arrow.Schema{rec.Schema()})
	fs := newStage(t, mem, fspec, pschema, len(gb) > 0, 1, maxPar, nil)
	defer func() { fs.close() }()
	for _, b := range ps.finish(t) {
		for _, sb := range split(b, 200) {
			fs.push(t, mem, sb)
			sb.Release()
		}
	}
	fs = roundTrip(t, mem, fs)
	fschema, _ := fspec.Schema([]*arrow.Schema{pschema})
	check(t, "partial->final", fs.finish(t), want, len(gb), MaxBatchSize, fschema)
}

// TestSnapshotAfterFinish: a finished subtask still answers checkpoints
// (arrowexec.Checkpointer); what Finish emitted is not state any more, so
// a restored aggregate emits nothing again, not even the one row of a
// global aggregate.
func TestSnapshotAfterFinish(t *testing.T) {
	mem, rec := fixture(t, 5, 500, 20)
	for _, gb := range [][]string{nil, {"k_utf8"}} {
		for _, mode := range []Mode{Single, Partial} {
			spec, err := New(Options{GroupBy: gb, Aggs: []Agg{{Func: Count}, {Func: Sum, Column: "v_i64"}}, Mode: mode})
			if err != nil {
				t.Fatal(err)
			}
			s := newStage(t, mem, spec, rec.Schema(), len(gb) > 0, 1, 16, nil)
			s.push(t, mem, rec)
			if out := s.finish(t); len(out) == 0 {
				t.Fatalf("by %v, %s: nothing emitted", gb, mode)
			}
			snaps := s.snapshot(t)
			s.close()
			if len(snaps[0].KeyGroups) > 0 || (len(gb) > 0) != (snaps[0].Operator == nil) {
				t.Fatalf("by %v, %s: snapshot after Finish holds %d key groups, operator state %q", gb, mode, len(snaps[0].KeyGroups), snaps[0].Operator)
			}
			pars := []int{1, 2, 3}
			if len(gb) == 0 {
				// A global aggregate runs at parallelism 1 (a subtask
				// without state emits the row of an empty group).
				pars = pars[:1]
			}
			for _, p := range pars {
				r := newStage(t, mem, spec, rec.Schema(), len(gb) > 0, p, 16, restoreStates(t, snaps, 16, p))
				out := r.finish(t)
				r.close()
				if len(out) > 0 {
					t.Fatalf("by %v, %s, parallelism %d: a restored finished aggregate emitted %d batches", gb, mode, p, len(out))
				}
			}
		}
	}
}

// TestRestoredFinishedPartialGetsInput: a global Partial subtask whose own
// input had ended snapshots "finished"; restored (its old sources' splits
// now read by someone else, live splits handed to it), it aggregates and
// emits what it gets after the restore. Seen in the coordinator test: the
// rows a restored finished Partial received were lost.
func TestRestoredFinishedPartialGetsInput(t *testing.T) {
	mem, rec := fixture(t, 6, 300, 20)
	spec, err := New(Options{Aggs: []Agg{{Func: Count}}, Mode: Partial})
	if err != nil {
		t.Fatal(err)
	}
	s := newStage(t, mem, spec, rec.Schema(), false, 1, 16, nil)
	s.push(t, mem, rec)
	if out := s.finish(t); len(out) == 0 {
		t.Fatal("nothing emitted")
	}
	snaps := s.snapshot(t)
	s.close()
	r := newStage(t, mem, spec, rec.Schema(), false, 1, 16, restoreStates(t, snaps, 16, 1))
	r.push(t, mem, rec)
	out := r.finish(t)
	defer r.close()
	var n int64
	for _, b := range out {
		for i := 0; i < int(b.NumRows()); i++ {
			n += b.Column(0).(*array.Int64).Value(i)
		}
	}
	if n != rec.NumRows() {
		t.Fatalf("the restored Partial emitted a count of %d for the %d rows it got after the restore", n, rec.NumRows())
	}
}

// TestSnapshotNotHashPartitioned: a keyed aggregate whose input is not
// hash-partitioned by its keys (so that two subtasks can hold one key group)
// fails the checkpoint rather than losing state.
func TestSnapshotNotHashPartitioned(t *testing.T) {
	mem, rec := fixture(t, 3, 400, 50)
	spec, _ := New(Options{GroupBy: []string{"k_int64"}, Aggs: []Agg{{Func: Count}}})
	s := newStage(t, mem, spec, rec.Schema(), false, 2, 16, nil) // round robin
	defer s.close()
	s.push(t, mem, rec)
	if _, err := s.ops[0].SnapshotState(context.Background(), 1); err == nil || !strings.Contains(err.Error(), "hash exchange") {
		t.Fatalf("snapshot of a keyed aggregate fed round robin: %v, want an error", err)
	}
}

// TestRestoreMismatch: state restored into an aggregate with other
// aggregates fails with an error rather than producing garbage.
func TestRestoreMismatch(t *testing.T) {
	mem, rec := fixture(t, 1, 100, 10)
	spec, _ := New(Options{GroupBy: []string{"k_int64"}, Aggs: []Agg{{Func: Sum, Column: "v_i64"}}})
	s := newStage(t, mem, spec, rec.Schema(), true, 1, 16, nil)
	s.push(t, mem, rec)
	snaps := s.snapshot(t)
	s.close()
	other, _ := New(Options{GroupBy: []string{"k_int64"}, Aggs: []Agg{{Func: Sum, Column: "v_f64"}}})
	op, err := other.New(&arrowexec.Task{Parallelism: 1, MaxParallelism: 16, Mem: mem, Inputs: []*arrow.Schema{rec.Schema()},
		Restore: restoreStates(t, snaps, 16, 1)[0]})
	if err != nil {
		t.Fatal(err)
	}
	defer op.Close()
	if err := op.Open(context.Background()); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Fatalf("restore into another aggregate: %v, want a mismatch error", err)
	}
}

// TestCheckpointRescale is the randomized crash test: random input, random
// batch sizes, checkpoints at random points; after each checkpoint the job
// "crashes" (its operators are closed, their output dropped) and restarts
// from that checkpoint at another parallelism (1..4), replaying the input
// after the checkpoint. The final result must equal the oracle over the
// whole input. Three pipelines: Single behind a hash exchange;
// Partial -> hash -> Final with the checkpoints in the raw rows (Partial
// state); Final alone over partial states (Final state).
func TestCheckpointRescale(t *testing.T) {
	iters := 60
	if testing.Short() {
		iters = 15
	}
	restored := 0
	for it := range iters {
		rng := rand.New(rand.NewPCG(2026, uint64(it)))
		gb := groupBys[rng.IntN(len(groupBys))]
		path := []string{"single", "partial-final", "final"}[it%3]
		n := 200 + rng.IntN(3000)
		card := []int{1, 7, 100, 2000}[rng.IntN(4)]
		cols := genData(rng, n, card)
		t.Run(fmt.Sprintf("%d/%s/by=%s/rows=%d/card=%d", it, path, strings.Join(gb, ","), n, card), func(t *testing.T) {
			restored += testRescale(t, rng, cols, gb, path)
		})
	}
	if restored == 0 {
		t.Fatal("no run restored any state")
	}
}

func testRescale(t *testing.T, rng *rand.Rand, cols []column, gb []string, path string) (restores int) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rec := record(mem, cols)
	defer rec.Release()
	maxPar := []int{4, 16, 128}[rng.IntN(3)]
	keyed := len(gb) > 0
	// par picks the parallelism of a keyed node (a global aggregate runs
	// at parallelism 1, as the planner makes it).
	par := func(keyedNode bool) int {
		if keyedNode && !keyed {
			return 1
		}
		return 1 + rng.IntN(4)
	}
	aggs := allAggs()
	if path != "single" {
		aggs = decomposable(aggs)
	}
	want := project(oracle(cols, gb, allAggs()), len(gb), allAggs(), aggs)
	mustNew := func(mode Mode) *Spec {
		s, err := New(Options{GroupBy: gb, Aggs: aggs, Mode: mode, BatchSize: 1 + rng.IntN(MaxBatchSize)})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	single := mustNew(Single)
	var pspec, fspec *Spec
	var pschema *arrow.Schema
	if path != "single" {
		pspec, fspec = mustNew(Partial), mustNew(Final)
		pschema, _ = pspec.Schema([]*arrow.Schema{rec.Schema()})
	}
	outSchema, _ := single.Schema([]*arrow.Schema{rec.Schema()})

	// The input of the checkpointed stages, and the stages.
	var (
		input  []arrow.RecordBatch
		stages []*stage
		build  func(restore [][]*arrowexec.RestoreState) []*stage
	)
	raw := randomBatches(rng, rec, 1+rng.IntN(400))
	defer releaseAll(raw)
	switch path {
	case "single":
		input = raw
		build = func(rs [][]*arrowexec.RestoreState) []*stage {
			p := par(true)
			return []*stage{newStage(t, mem, single, rec.Schema(), true, p, maxPar, at(rs, 0, p))}
		}
	case "partial-final":
		input = raw
		build = func(rs [][]*arrowexec.RestoreState) []*stage {
			pp, fp := par(false), par(true)
			return []*stage{
				newStage(t, mem, pspec, rec.Schema(), false, pp, maxPar, at(rs, 0, pp)),
				newStage(t, mem, fspec, pschema, true, fp, maxPar, at(rs, 1, fp)),
			}
		}
	case "final":
		// Partial states of three partial subtasks over the whole input,
		// re-cut at random.
		ps := newStage(t, mem, pspec, rec.Schema(), false, 3, maxPar, nil)
		for _, b := range raw {
			ps.push(t, mem, b)
		}
		for _, b := range ps.finish(t) {
			input = append(input, randomBatches(rng, b, 1+rng.IntN(300))...)
		}
		ps.close()
		defer releaseAll(input)
		rng.Shuffle(len(input), func(i, j int) { input[i], input[j] = input[j], input[i] })
		build = func(rs [][]*arrowexec.RestoreState) []*stage {
			p := par(true)
			return []*stage{newStage(t, mem, fspec, pschema, true, p, maxPar, at(rs, 0, p))}
		}
	}
	defer func() {
		for _, s := range stages {
			s.close()
		}
	}()

	// Checkpoints at random cuts; a crash and a rescaled restore after each.
	cuts := []int{}
	for range rng.IntN(4) {
		cuts = append(cuts, rng.IntN(len(input)+1))
	}
	slices.Sort(cuts)
	cuts = append(cuts, len(input))
	stages = build(nil)
	pos := 0
	for ci, cut := range cuts {
		for _, b := range input[pos:cut] {
			stages[0].push(t, mem, b)
		}
		pos = cut
		if ci == len(cuts)-1 {
			break
		}
		var rs [][]*arrowexec.RestoreState
		var next []*stage
		snaps := make([][]arrowexec.SubtaskSnapshot, len(stages))
		for i, s := range stages {
			snaps[i] = s.snapshot(t)
			s.close()
		}
		stages = nil
		for range 2 { // a restore may fail and be retried from the same checkpoint
			for _, s := range next {
				s.close()
			}
			next = nil
			rs = rs[:0]
			for i := range snaps {
				// The new parallelism is only known in build; restore
				// states are made for every candidate parallelism.
				byPar := make([]*arrowexec.RestoreState, 0)
				for p := 1; p <= 4; p++ {
					byPar = append(byPar, restoreStates(t, snaps[i], maxPar, p)...)
				}
				rs = append(rs, byPar)
			}
			next = build(rs)
		}
		stages = next
		restores++
	}
	// End of input: partials emit their states into the final stage.
	if path == "partial-final" {
		for _, b := range stages[0].finish(t) {
			stages[1].push(t, mem, b)
		}
	}
	check(t, path, stages[len(stages)-1].finish(t), want, len(gb), MaxBatchSize, outSchema)
	return restores
}

// at selects, from restore states made for parallelism 1..4 in turn (see
// testRescale), those of stage i at parallelism p; nil for a fresh start.
func at(rs [][]*arrowexec.RestoreState, i, p int) []*arrowexec.RestoreState {
	if rs == nil {
		return nil
	}
	off := p * (p - 1) / 2 // 1 + 2 + ... + (p-1)
	return rs[i][off : off+p]
}
