package joins

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/state"
	"github.com/riffle-dev/riffle/windows"
)

// The test inputs: two streams with different column types (the right
// time is int64 ms, the left a timestamp), nullable value columns and a
// few null keys.
var (
	leftSchema = arrow.NewSchema([]arrow.Field{
		{Name: "k", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "lt", Type: &arrow.TimestampType{Unit: arrow.Millisecond, TimeZone: "UTC"}},
		{Name: "id", Type: arrow.PrimitiveTypes.Int64},
		{Name: "s", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "b", Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
	}, nil)
	rightSchema = arrow.NewSchema([]arrow.Field{
		{Name: "k", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "rt", Type: arrow.PrimitiveTypes.Int64},
		{Name: "id", Type: arrow.PrimitiveTypes.Int64},
		{Name: "f", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "n", Type: arrow.PrimitiveTypes.Int32},
		{Name: "bin", Type: arrow.BinaryTypes.Binary, Nullable: true},
	}, nil)
)

// ev is one input row: its side, key (-1: null), time and id.
type ev struct {
	side int
	k    int64
	t    int64
	id   int64
}

// genEvents makes n events per side over keys keys, times advancing by
// step per event with up to disorder ms of disorder, interleaved at
// random (runs of one side of random length).
func genEvents(rng *rand.Rand, n, keys int, step, disorder int64) []ev {
	var sides [2][]ev
	for s := range 2 {
		for i := 0; i < n; i++ {
			k := rng.Int64N(int64(keys))
			if rng.IntN(50) == 0 {
				k = -1
			}
			sides[s] = append(sides[s], ev{side: s, k: k, t: int64(i)*step + rng.Int64N(disorder+1), id: int64(s*1_000_000 + i)})
		}
	}
	var out []ev
	var pos [2]int
	for pos[0] < n || pos[1] < n {
		s := rng.IntN(2)
		if pos[s] >= n {
			s = 1 - s
		}
		run := 1 + rng.IntN(30)
		for ; run > 0 && pos[s] < n; run-- {
			out = append(out, sides[s][pos[s]])
			pos[s]++
		}
	}
	return out
}

// batch builds the batch of evs (all of one side).
func batch(mem memory.Allocator, evs []ev) arrow.RecordBatch {
	side := evs[0].side
	if side == 0 {
		b := array.NewRecordBuilder(mem, leftSchema)
		defer b.Release()
		for _, e := range evs {
			if e.k < 0 {
				b.Field(0).AppendNull()
			} else {
				b.Field(0).(*array.Int64Builder).Append(e.k)
			}
			b.Field(1).(*array.TimestampBuilder).Append(arrow.Timestamp(e.t))
			b.Field(2).(*array.Int64Builder).Append(e.id)
			if e.id%7 == 0 {
				b.Field(3).AppendNull()
			} else {
				b.Field(3).(*array.StringBuilder).Append(strings.Repeat("x", int(e.id%5)) + fmt.Sprint(e.id))
			}
			if e.id%5 == 0 {
				b.Field(4).AppendNull()
			} else {
				b.Field(4).(*array.BooleanBuilder).Append(e.id%3 == 0)
			}
		}
		return b.NewRecordBatch()
	}
	b := array.NewRecordBuilder(mem, rightSchema)
	defer b.Release()
	for _, e := range evs {
		if e.k < 0 {
			b.Field(0).AppendNull()
		} else {
			b.Field(0).(*array.Int64Builder).Append(e.k)
		}
		b.Field(1).(*array.Int64Builder).Append(e.t)
		b.Field(2).(*array.Int64Builder).Append(e.id)
		if e.id%6 == 0 {
			b.Field(3).AppendNull()
		} else {
			b.Field(3).(*array.Float64Builder).Append(float64(e.id) / 3)
		}
		b.Field(4).(*array.Int32Builder).Append(int32(e.id % 1000))
		if e.id%4 == 0 {
			b.Field(5).AppendNull()
		} else {
			b.Field(5).(*array.BinaryBuilder).Append([]byte{byte(e.id), 0, byte(e.id >> 8)})
		}
	}
	return b.NewRecordBatch()
}

// rowStrings formats every row of b as its columns' ValueStr joined by
// '|', from column lo to hi.
func rowStrings(b arrow.RecordBatch, lo, hi int) []string {
	out := make([]string, b.NumRows())
	for i := range out {
		var parts []string
		for c := lo; c < hi; c++ {
			parts = append(parts, b.Column(c).ValueStr(i))
		}
		out[i] = strings.Join(parts, "|")
	}
	return out
}

// evString formats one input row as rowStrings formats output columns.
func evString(mem memory.Allocator, e ev) string {
	b := batch(mem, []ev{e})
	defer b.Release()
	return rowStrings(b, 0, int(b.NumCols()))[0]
}

// oracle is the brute-force nested-loop join of evs under o.
func oracle(mem memory.Allocator, o Options, evs []ev) []string {
	var left, right []ev
	for _, e := range evs {
		if e.side == 0 {
			left = append(left, e)
		} else {
			right = append(right, e)
		}
	}
	size, slide := o.Size.Milliseconds(), o.Slide.Milliseconds()
	if slide == 0 {
		slide = size
	}
	rstr := make([]string, len(right))
	for j, r := range right {
		rstr[j] = evString(mem, r)
	}
	var out []string
	for _, l := range left {
		ls := evString(mem, l)
		for j, r := range right {
			if l.k < 0 || r.k < 0 || l.k != r.k {
				continue
			}
			rs := rstr[j]
			switch o.Type {
			case Regular:
				out = append(out, ls+"|"+rs)
			case Interval:
				if d := r.t - l.t; d >= o.Lower.Milliseconds() && d <= o.Upper.Milliseconds() {
					out = append(out, ls+"|"+rs)
				}
			case Window:
				// Every window start (a multiple of slide) with both
				// times in [start, start+size).
				for start := l.t - floorMod(l.t, slide); start > l.t-size; start -= slide {
					if r.t >= start && r.t < start+size {
						out = append(out, fmt.Sprintf("%s|%s|%s|%s", ls, rs, winStr(mem, start), winStr(mem, start+size)))
					}
				}
			}
		}
	}
	slices.Sort(out)
	return out
}

// winStr formats a window bound as the output's window columns do.
func winStr(mem memory.Allocator, v int64) string {
	b := array.NewTimestampBuilder(mem, windows.WindowTime)
	defer b.Release()
	b.Append(arrow.Timestamp(v))
	a := b.NewArray()
	defer a.Release()
	return a.ValueStr(0)
}

// collector gathers emitted rows as strings (and late rows by side).
type collector struct {
	rows []string
	late [2][]arrow.RecordBatch
	wire bool // whether the late outputs are wired
}

func (c *collector) Emit(_ context.Context, b arrow.RecordBatch) error {
	c.rows = append(c.rows, rowStrings(b, 0, int(b.NumCols()))...)
	b.Release()
	return nil
}

func (c *collector) EmitSide(_ context.Context, name string, b arrow.RecordBatch) error {
	switch name {
	case LateLeft:
		c.late[0] = append(c.late[0], b)
	case LateRight:
		c.late[1] = append(c.late[1], b)
	default:
		b.Release()
		return fmt.Errorf("collector: unknown side output %q", name)
	}
	return nil
}

func (c *collector) SideWired(name string) bool { return c.wire }

func (c *collector) release() {
	for _, l := range c.late {
		for _, b := range l {
			b.Release()
		}
	}
}

// cluster drives par subtasks of a join by hand as the runtime would:
// every batch split by key group (the hash exchange), every watermark to
// every subtask.
type cluster struct {
	t    testing.TB
	mem  memory.Allocator
	spec *Spec
	ops  []*operator
	out  *collector
	dirs []string // snapshot directory per subtask (files mode), or nil
	ctx  context.Context
}

func newCluster(t testing.TB, mem memory.Allocator, o Options, par int, rs func(sub int) *arrowexec.RestoreState, snapRoot string) *cluster {
	spec, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	c := &cluster{t: t, mem: mem, spec: spec, out: &collector{}, ctx: context.Background()}
	for sub := 0; sub < par; sub++ {
		task := &arrowexec.Task{Node: "join", Subtask: sub, Parallelism: par, MaxParallelism: 128, Mem: mem,
			Inputs: []*arrow.Schema{leftSchema, rightSchema}}
		if rs != nil {
			task.Restore = rs(sub)
		}
		if snapRoot != "" {
			dir := filepath.Join(snapRoot, fmt.Sprint(sub))
			c.dirs = append(c.dirs, dir)
			task.SnapshotDir = func(uint64) (string, error) { return dir, os.MkdirAll(dir, 0o755) }
		}
		op, err := spec.New(task)
		if err != nil {
			t.Fatal(err)
		}
		if err := op.Open(c.ctx); err != nil {
			t.Fatal(err)
		}
		c.ops = append(c.ops, op.(*operator))
	}
	return c
}

// process routes b (of side) to the subtasks owning its keys.
func (c *cluster) process(side int, b arrow.RecordBatch) {
	keys := c.spec.opts.LeftKeys
	if side == 1 {
		keys = c.spec.opts.RightKeys
	}
	var cols []arrow.Array
	for _, k := range keys {
		cols = append(cols, b.Column(b.Schema().FieldIndices(k)[0]))
	}
	hashes := make([]uint64, b.NumRows())
	if err := arrowexec.HashColumns(cols, hashes); err != nil {
		c.t.Fatal(err)
	}
	par := len(c.ops)
	idx := make([][]int32, par)
	for i, h := range hashes {
		sub := arrowexec.SubtaskOfKeyGroup(arrowexec.KeyGroupOf(h, 128), 128, par)
		idx[sub] = append(idx[sub], int32(i))
	}
	for sub, rows := range idx {
		if len(rows) == 0 {
			continue
		}
		part, err := arrowexec.TakeRecord(c.mem, b, rows)
		if err != nil {
			c.t.Fatal(err)
		}
		err = c.ops[sub].Process(c.ctx, side, part, c.out)
		part.Release()
		if err != nil {
			c.t.Fatal(err)
		}
	}
}

func (c *cluster) watermark(wm int64) {
	for _, op := range c.ops {
		if err := op.OnWatermark(c.ctx, wm, c.out); err != nil {
			c.t.Fatal(err)
		}
	}
}

func (c *cluster) finish() {
	c.watermark(arrowexec.MaxWatermark)
	for _, op := range c.ops {
		if err := op.Finish(c.ctx, c.out); err != nil {
			c.t.Fatal(err)
		}
	}
	c.close()
}

func (c *cluster) close() {
	for _, op := range c.ops {
		if err := op.Close(); err != nil {
			c.t.Fatal(err)
		}
		if err := op.Close(); err != nil { // safe twice
			c.t.Fatal(err)
		}
	}
}

// step is one batch of the input and the watermark after it.
type step struct {
	side int
	b    arrow.RecordBatch
	wm   int64
}

// steps cuts evs into batches of random sizes up to maxBatch (runs of one
// side), each followed by the watermark min over sides of (largest time
// seen - lag).
func steps(mem memory.Allocator, rng *rand.Rand, evs []ev, maxBatch int, lag int64) []step {
	var out []step
	maxT := [2]int64{arrowexec.MinWatermark, arrowexec.MinWatermark}
	for i := 0; i < len(evs); {
		j := i + 1
		limit := i + 1 + rng.IntN(maxBatch)
		for j < len(evs) && j < limit && evs[j].side == evs[i].side {
			j++
		}
		for _, e := range evs[i:j] {
			maxT[e.side] = max(maxT[e.side], e.t)
		}
		wm := arrowexec.MinWatermark
		if maxT[0] > arrowexec.MinWatermark && maxT[1] > arrowexec.MinWatermark {
			wm = min(maxT[0], maxT[1]) - lag
		}
		out = append(out, step{side: evs[i].side, b: batch(mem, evs[i:j]), wm: wm})
		i = j
	}
	return out
}

func releaseSteps(ss []step) {
	for _, s := range ss {
		s.b.Release()
	}
}

// backends are the state backends the tests run under.
func backend(t testing.TB, name string) state.Backend {
	if name == "pebble" {
		be, err := state.NewPebbleBackend(state.PebbleOptions{Dir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		return be
	}
	return nil // memory
}

// runJoin runs the whole input through par subtasks; with crashAt >= 0 it
// checkpoints after step crashAt (asynchronously: the snapshot is written
// after a few more steps, whose output is then lost with the crash),
// and restores into par2 subtasks that replay the input from there. It
// returns the emitted rows, sorted.
func runJoin(t *testing.T, mem memory.Allocator, o Options, ss []step, par, crashAt, par2 int, files bool) []string {
	snapRoot := ""
	if files {
		snapRoot = t.TempDir()
	}
	c := newCluster(t, mem, o, par, nil, snapRoot)
	for i, s := range ss {
		c.process(s.side, s.b)
		c.watermark(s.wm)
		if i != crashAt {
			continue
		}
		var completes []func(context.Context) (arrowexec.SubtaskSnapshot, error)
		for _, op := range c.ops {
			f, err := op.SnapshotStateAsync(c.ctx, 1)
			if err != nil {
				t.Fatal(err)
			}
			completes = append(completes, f)
		}
		committed := len(c.out.rows)
		// Go on (output lost in the crash) before writing the snapshots.
		for _, s := range ss[i+1 : min(i+4, len(ss))] {
			c.process(s.side, s.b)
			c.watermark(s.wm)
		}
		var snaps []arrowexec.SubtaskSnapshot
		for _, f := range completes {
			snap, err := f(c.ctx)
			if err != nil {
				t.Fatal(err)
			}
			snaps = append(snaps, snap)
		}
		c.close()
		kept := slices.Clone(c.out.rows[:committed])
		c.out.release()
		ops := make([][]byte, len(snaps))
		for j, s := range snaps {
			ops[j] = s.Operator
		}
		wm := ss[i].wm
		rs := func(sub int) *arrowexec.RestoreState {
			lo, hi := arrowexec.KeyGroupRange(128, par2, sub)
			r := &arrowexec.RestoreState{CheckpointID: 1, KeyGroups: map[int][]byte{}, Operator: ops, Dirs: c.dirs, Watermark: wm}
			for _, s := range snaps {
				for kg, b := range s.KeyGroups {
					if kg >= lo && kg < hi {
						r.KeyGroups[kg] = b
					}
				}
			}
			return r
		}
		c2 := newCluster(t, mem, o, par2, rs, "")
		for _, s := range ss[i+1:] {
			c2.process(s.side, s.b)
			c2.watermark(s.wm)
		}
		c2.finish()
		c2.out.release()
		out := append(kept, c2.out.rows...)
		slices.Sort(out)
		return out
	}
	c.finish()
	c.out.release()
	out := c.out.rows
	slices.Sort(out)
	return out
}

// sameRows fails t with the first differences between got and want
// (sorted multisets).
func sameRows(t *testing.T, got, want []string) {
	t.Helper()
	if slices.Equal(got, want) {
		return
	}
	gm := map[string]int{}
	for _, r := range got {
		gm[r]++
	}
	for _, r := range want {
		gm[r]--
	}
	var diffs []string
	for r, n := range gm {
		switch {
		case n > 0:
			diffs = append(diffs, fmt.Sprintf("extra x%d: %s", n, r))
		case n < 0:
			diffs = append(diffs, fmt.Sprintf("missing x%d: %s", -n, r))
		}
	}
	slices.Sort(diffs)
	if len(diffs) > 10 {
		diffs = append(diffs[:10], fmt.Sprintf("... %d more", len(diffs)-10))
	}
	t.Fatalf("%d rows, want %d:\n%s", len(got), len(want), strings.Join(diffs, "\n"))
}
