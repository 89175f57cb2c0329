package ml

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/arrowexec/expr"
	"github.com/riffle-dev/riffle/internal/oracle"
	"github.com/riffle-dev/riffle/state"
)

// event is one input row of the recommend tests.
type event struct {
	user, item int64
	ev         string
	null       string // "user" or "item": that id is NULL
	weight     float64
}

func genEvents(rng *rand.Rand, n, users, items int) []event {
	evs := make([]event, n)
	for i := range evs {
		u := int64(rng.IntN(users))*7919 - 50000 // sparse, negative ids too
		// Each user leans towards items near its own bucket: structure to learn.
		it := int64((int(u+50000)/7919*3 + rng.IntN(items/3+1) + rng.IntN(3)*rng.IntN(items)) % items)
		kind := []string{"view", "view", "view", "cart", "purchase"}[rng.IntN(5)]
		evs[i] = event{user: u, item: it*13 + 1000, ev: kind, weight: float64(rng.IntN(4)) / 4}
	}
	return evs
}

var evSchemaInt = arrow.NewSchema([]arrow.Field{
	{Name: "uid", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	{Name: "iid", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
	{Name: "ev", Type: arrow.BinaryTypes.String},
	{Name: "w", Type: arrow.PrimitiveTypes.Float64},
}, nil)

var evSchemaStr = arrow.NewSchema([]arrow.Field{
	{Name: "uid", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "iid", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "ev", Type: arrow.BinaryTypes.String},
	{Name: "w", Type: arrow.PrimitiveTypes.Float64},
}, nil)

func strID(prefix string, v int64) string { return fmt.Sprintf("%s%d", prefix, v) }

func toBatch(mem memory.Allocator, schema *arrow.Schema, evs []event) arrow.RecordBatch {
	b := array.NewRecordBuilder(mem, schema)
	defer b.Release()
	str := schema.Field(0).Type.ID() == arrow.STRING
	for _, e := range evs {
		switch {
		case e.null == "user":
			b.Field(0).AppendNull()
		case str:
			b.Field(0).(*array.StringBuilder).Append(strID("u", e.user))
		default:
			b.Field(0).(*array.Int64Builder).Append(e.user)
		}
		switch {
		case e.null == "item":
			b.Field(1).AppendNull()
		case str:
			b.Field(1).(*array.StringBuilder).Append(strID("i", e.item))
		default:
			b.Field(1).(*array.Int32Builder).Append(int32(e.item))
		}
		b.Field(2).(*array.StringBuilder).Append(e.ev)
		b.Field(3).(*array.Float64Builder).Append(e.weight)
	}
	return b.NewRecordBatch()
}

const weightCase = "CASE WHEN ev = 'purchase' THEN 4 WHEN ev = 'cart' THEN 2 ELSE 1 END + w"

func testOptions(t testing.TB) RecommendOptions {
	return RecommendOptions{User: "uid", Item: "iid", Weight: expr.MustParse(weightCase),
		Config: Config{Factors: 8, Regularization: 0.05, Alpha: 2, Iterations: 6, Seed: 7, Threads: 2}, K: 5}
}

// collector is an Emitter keeping every batch.
type collector struct {
	mu      sync.Mutex
	batches []arrow.RecordBatch
}

func (c *collector) Emit(_ context.Context, b arrow.RecordBatch) error {
	c.mu.Lock()
	c.batches = append(c.batches, b)
	c.mu.Unlock()
	return nil
}

func (c *collector) release() {
	for _, b := range c.batches {
		b.Release()
	}
	c.batches = nil
}

// harness drives p subtasks of a recommend operator as the runtime does
// behind a hash exchange on the user column.
type harness struct {
	t      testing.TB
	mem    memory.Allocator
	schema *arrow.Schema
	spec   *RecommendSpec
	ops    []*recommendOp
	out    collector
	// snapDirs, when set, is the root of per-subtask checkpoint
	// directories (Task.SnapshotDir).
	snapDirs string
	snapID   uint64
}

func newHarness(t testing.TB, mem memory.Allocator, schema *arrow.Schema, o RecommendOptions, p int, restore *arrowexec.RestoreState) *harness {
	return newHarnessDirs(t, mem, schema, o, p, restore, "")
}

// newHarnessDirs is newHarness with checkpoint directories under
// snapDirs ("" for none).
func newHarnessDirs(t testing.TB, mem memory.Allocator, schema *arrow.Schema, o RecommendOptions, p int, restore *arrowexec.RestoreState, snapDirs string) *harness {
	spec, err := NewRecommend(o)
	if err != nil {
		t.Fatal(err)
	}
	out, err := spec.Schema([]*arrow.Schema{schema})
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, mem: mem, schema: schema, spec: spec, snapDirs: snapDirs}
	if restore != nil {
		h.snapID = restore.CheckpointID // the next checkpoints get new ids
	}
	for i := 0; i < p; i++ {
		task := &arrowexec.Task{Node: "recommend", Subtask: i, Parallelism: p, MaxParallelism: 16, Mem: mem,
			Inputs: []*arrow.Schema{schema}, Output: out}
		if restore != nil {
			lo, hi := task.KeyGroupRange()
			r := *restore
			r.KeyGroups = map[int][]byte{}
			for kg, b := range restore.KeyGroups {
				if kg >= lo && kg < hi {
					r.KeyGroups[kg] = b
				}
			}
			task.Restore = &r
		}
		if snapDirs != "" {
			task.SnapshotDir = func(id uint64) (string, error) {
				d := filepath.Join(snapDirs, fmt.Sprintf("chk-%d", id), fmt.Sprint(task.Subtask))
				return d, os.MkdirAll(d, 0o755)
			}
		}
		op, err := spec.New(task)
		if err != nil {
			t.Fatal(err)
		}
		if err := op.Open(context.Background()); err != nil {
			t.Fatal(err)
		}
		h.ops = append(h.ops, op.(*recommendOp))
	}
	return h
}

// feed routes evs to the subtasks by the hash of their user ids, in
// batches of at most bs rows, and returns the first error.
func (h *harness) feed(evs []event, bs int) error {
	for lo := 0; lo < len(evs); lo += bs {
		b := toBatch(h.mem, h.schema, evs[lo:min(lo+bs, len(evs))])
		hs := make([]uint64, b.NumRows())
		if err := arrowexec.HashColumns([]arrow.Array{b.Column(0)}, hs); err != nil {
			b.Release()
			return err
		}
		p := len(h.ops)
		for s := 0; s < p; s++ {
			var idx []int
			for r, hv := range hs {
				if arrowexec.SubtaskOfKeyGroup(arrowexec.KeyGroupOf(hv, 16), 16, p) == s {
					idx = append(idx, r)
				}
			}
			var sub []event
			for _, r := range idx {
				sub = append(sub, evs[lo+r])
			}
			if len(sub) == 0 {
				continue
			}
			sb := toBatch(h.mem, h.schema, sub)
			err := h.ops[s].Process(context.Background(), 0, sb, &h.out)
			sb.Release()
			if err != nil {
				b.Release()
				return err
			}
		}
		b.Release()
	}
	return nil
}

// finish calls Finish on every subtask concurrently (they meet there).
func (h *harness) finish() error {
	errs := make([]error, len(h.ops))
	var wg sync.WaitGroup
	for i, op := range h.ops {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = op.Finish(context.Background(), &h.out)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func (h *harness) snapshot() *arrowexec.RestoreState { return h.snapshotAsync()() }

// snapshotAsync takes every subtask's point-in-time view now and returns
// the function that completes the snapshots (writes them out).
func (h *harness) snapshotAsync() func() *arrowexec.RestoreState {
	h.snapID++
	id := h.snapID
	var completes []func(context.Context) (arrowexec.SubtaskSnapshot, error)
	for _, op := range h.ops {
		c, err := op.SnapshotStateAsync(context.Background(), id)
		if err != nil {
			h.t.Fatal(err)
		}
		completes = append(completes, c)
	}
	return func() *arrowexec.RestoreState { return h.complete(id, completes) }
}

func (h *harness) complete(id uint64, completes []func(context.Context) (arrowexec.SubtaskSnapshot, error)) *arrowexec.RestoreState {
	r := &arrowexec.RestoreState{CheckpointID: id, KeyGroups: map[int][]byte{}}
	for i, c := range completes {
		s, err := c(context.Background())
		if err != nil {
			h.t.Fatal(err)
		}
		if h.snapDirs != "" {
			r.Dirs = append(r.Dirs, filepath.Join(h.snapDirs, fmt.Sprintf("chk-%d", id), fmt.Sprint(i)))
		}
		for kg, b := range s.KeyGroups {
			r.KeyGroups[kg] = b
		}
		r.Operator = append(r.Operator, s.Operator)
	}
	return r
}

func (h *harness) close() {
	for _, op := range h.ops {
		if err := op.Close(); err != nil {
			h.t.Error(err)
		}
		op.Close()
	}
	h.out.release()
}

// factors returns the user and item factors held in the subtasks' state.
func (h *harness) factors() (users, items map[string][]float32) {
	users, items = map[string][]float32{}, map[string][]float32{}
	for _, op := range h.ops {
		u, err := storedFactors(op.user, op.b.userKind, true)
		if err != nil {
			h.t.Fatal(err)
		}
		i, err := storedFactors(op.item, op.b.itemKind, false)
		if err != nil {
			h.t.Fatal(err)
		}
		for k, v := range u {
			if _, dup := users[k]; dup {
				h.t.Fatalf("user %s stored by two subtasks", k)
			}
			users[k] = v
		}
		for k, v := range i {
			if _, dup := items[k]; dup {
				h.t.Fatalf("item %s stored by two subtasks", k)
			}
			items[k] = v
		}
	}
	return users, items
}

type recRow struct {
	user, item string
	rank       int32
	score      float32
	version    int64
}

func rowsOf(bs []arrow.RecordBatch) []recRow {
	var out []recRow
	for _, b := range bs {
		for r := 0; r < int(b.NumRows()); r++ {
			out = append(out, recRow{user: b.Column(0).ValueStr(r), item: b.Column(1).ValueStr(r),
				rank: b.Column(2).(*array.Int32).Value(r), score: b.Column(3).(*array.Float32).Value(r),
				version: b.Column(4).(*array.Int64).Value(r)})
		}
	}
	slices.SortFunc(out, func(a, b recRow) int {
		if c := strings.Compare(a.user, b.user); c != 0 {
			return c
		}
		return int(a.rank - b.rank)
	})
	return out
}

// trainOracle trains the model the operator must produce, straight from the
// events: dense ids in id order, weights from the CASE expression
// computed here in Go, duplicates summed.
func trainOracle(t *testing.T, evs []event, o RecommendOptions, str bool) (rows []recRow, users, items map[string][]float32) {
	type pair struct{ u, i int64 }
	var us, is []int64
	w := map[pair][]float32{}
	for _, e := range evs {
		if e.null != "" {
			continue
		}
		wt := 1.0
		switch e.ev {
		case "purchase":
			wt = 4
		case "cart":
			wt = 2
		}
		wt += e.weight
		k := pair{e.user, e.item}
		w[k] = append(w[k], float32(wt))
		us, is = append(us, e.user), append(is, e.item)
	}
	keyOf := func(prefix string, v int64) string {
		if str {
			return strID(prefix, v)
		}
		return fmt.Sprint(v)
	}
	// Dense order: int ids numerically, string ids by their bytes.
	order := func(prefix string, ids []int64) []int64 {
		ids = slices.Compact(slices.Sorted(slices.Values(ids)))
		if str {
			slices.SortFunc(ids, func(a, b int64) int { return strings.Compare(strID(prefix, a), strID(prefix, b)) })
		}
		return ids
	}
	uo, io := order("u", slices.Clone(us)), order("i", slices.Clone(is))
	ui, ii := map[int64]int32{}, map[int64]int32{}
	for j, u := range uo {
		ui[u] = int32(j)
	}
	for j, i := range io {
		ii[i] = int32(j)
	}
	var tu, ti []int32
	var tw []float32
	for k, ws := range w {
		slices.Sort(ws)
		for _, x := range ws {
			tu, ti, tw = append(tu, ui[k.u]), append(ti, ii[k.i]), append(tw, x)
		}
	}
	m, err := NewInteractions(len(uo), len(io), tu, ti, tw)
	if err != nil {
		t.Fatal(err)
	}
	model, err := Train(context.Background(), o.Config, m, nil)
	if err != nil {
		t.Fatal(err)
	}
	users, items = map[string][]float32{}, map[string][]float32{}
	for j, u := range uo {
		users[keyOf("u", u)] = model.UserVector(j)
	}
	for j, i := range io {
		items[keyOf("i", i)] = model.ItemVector(j)
	}
	err = model.TopK(context.Background(), nil, o.K, m, 1, func(u int32, its []int32, scores []float32) error {
		for r, it := range its {
			rows = append(rows, recRow{user: keyOf("u", uo[u]), item: keyOf("i", io[it]), rank: int32(r + 1), score: scores[r], version: 1})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(rows, func(a, b recRow) int {
		if c := strings.Compare(a.user, b.user); c != 0 {
			return c
		}
		return int(a.rank - b.rank)
	})
	return rows, users, items
}

// checkLists checks the export invariants on rows: k rows per user (or
// every item the user does not have), ranks 1..k, scores descending, no
// item the user interacted with.
func checkLists(t *testing.T, rows []recRow, evs []event, k int, str bool) {
	t.Helper()
	had := map[string]map[string]bool{}
	catalogue := map[string]bool{}
	keyOf := func(prefix string, v int64) string {
		if str {
			return strID(prefix, v)
		}
		return fmt.Sprint(v)
	}
	for _, e := range evs {
		if e.null != "" {
			continue
		}
		u := keyOf("u", e.user)
		if had[u] == nil {
			had[u] = map[string]bool{}
		}
		had[u][keyOf("i", e.item)] = true
		catalogue[keyOf("i", e.item)] = true
	}
	per := map[string][]recRow{}
	for _, r := range rows {
		per[r.user] = append(per[r.user], r)
	}
	if len(per) != len(had) {
		t.Fatalf("%d users with recommendations, %d users in the input", len(per), len(had))
	}
	for u, rs := range per {
		want := min(k, len(catalogue)-len(had[u]))
		if len(rs) != want {
			t.Fatalf("user %s: %d rows, want %d", u, len(rs), want)
		}
		for j, r := range rs {
			if r.rank != int32(j+1) {
				t.Fatalf("user %s: rank %d at position %d", u, r.rank, j)
			}
			if j > 0 && r.score > rs[j-1].score {
				t.Fatalf("user %s: scores not descending: %v after %v", u, r.score, rs[j-1].score)
			}
			if had[u][r.item] {
				t.Fatalf("user %s: recommended item %s it already has", u, r.item)
			}
		}
	}
}

func TestRecommendOperatorMatchesTrain(t *testing.T) {
	for _, str := range []bool{false, true} {
		for _, p := range []int{1, 3} {
			t.Run(fmt.Sprintf("string=%v/p=%d", str, p), func(t *testing.T) {
				mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
				defer mem.AssertSize(t, 0)
				rng := rand.New(rand.NewPCG(1, 2))
				evs := genEvents(rng, 1500, 60, 40)
				schema := evSchemaInt
				if str {
					schema = evSchemaStr
				}
				o := testOptions(t)
				h := newHarness(t, mem, schema, o, p, nil)
				defer h.close()
				if err := h.feed(evs, 100); err != nil {
					t.Fatal(err)
				}
				if err := h.finish(); err != nil {
					t.Fatal(err)
				}
				got := rowsOf(h.out.batches)
				want, wu, wi := trainOracle(t, evs, o, str)
				if len(got) != len(want) {
					t.Fatalf("%d rows, want %d", len(got), len(want))
				}
				for j := range got {
					if got[j] != want[j] {
						t.Fatalf("row %d: %+v, want %+v", j, got[j], want[j])
					}
				}
				checkLists(t, got, evs, o.K, str)
				gu, gi := h.factors()
				checkFactors(t, "user", gu, wu)
				checkFactors(t, "item", gi, wi)
			})
		}
	}
}

func checkFactors(t *testing.T, side string, got, want map[string][]float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d %ss in the state, want %d", len(got), side, len(want))
	}
	for k, w := range want {
		g := got[k]
		if len(g) != len(w) {
			t.Fatalf("%s %s: %d factors, want %d", side, k, len(g), len(w))
		}
		for j := range w {
			if math.Float32bits(g[j]) != math.Float32bits(w[j]) {
				t.Fatalf("%s %s: factor %d is %v, want %v (bitwise)", side, k, j, g[j], w[j])
			}
		}
	}
}

// TestRecommendCheckpointRestore snapshots the operator half way through
// its input (and again after training), restores at the same and at other
// parallelisms, and checks that factors and lists equal an uninterrupted
// run's bitwise; a restored finished operator does not train or emit again.
func TestRecommendCheckpointRestore(t *testing.T) {
	for _, c := range []struct {
		before, after int
		pebble, files bool
	}{{2, 2, false, false}, {1, 3, false, false}, {3, 2, false, false}, {2, 3, true, false}, {3, 1, true, true}, {2, 2, false, true}} {
		t.Run(fmt.Sprintf("p=%d->%d/pebble=%v/files=%v", c.before, c.after, c.pebble, c.files), func(t *testing.T) {
			dirs := ""
			if c.files {
				dirs = t.TempDir()
			}
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			rng := rand.New(rand.NewPCG(5, 6))
			evs := genEvents(rng, 1200, 50, 30)
			base := testOptions(t)
			// opts gives each run its own Pebble directory when asked.
			// Each run exports into a root of its own.
			var roots []string
			opts := func() RecommendOptions {
				o := base
				roots = append(roots, t.TempDir())
				o.Export = &ExportOptions{Path: roots[len(roots)-1], Embeddings: true}
				if c.pebble {
					be, err := state.NewPebbleBackend(state.PebbleOptions{Dir: t.TempDir()})
					if err != nil {
						t.Fatal(err)
					}
					o.Backend = be
				}
				return o
			}
			ref := newHarness(t, mem, evSchemaInt, opts(), 1, nil)
			defer ref.close()
			if err := ref.feed(evs, 64); err != nil {
				t.Fatal(err)
			}
			if err := ref.finish(); err != nil {
				t.Fatal(err)
			}
			wantRows := rowsOf(ref.out.batches)
			wu, wi := ref.factors()

			half := len(evs) / 2
			a := newHarnessDirs(t, mem, evSchemaInt, opts(), c.before, nil, dirs)
			if err := a.feed(evs[:half], 64); err != nil {
				t.Fatal(err)
			}
			// The view is taken at the barrier; what the subtasks
			// process before the snapshot is written must not be in it.
			complete := a.snapshotAsync()
			if err := a.feed(evs[half:half+100], 64); err != nil {
				t.Fatal(err)
			}
			snap := complete()
			a.close()
			if len(snap.KeyGroups) == 0 == !(c.files && c.pebble) {
				t.Fatalf("%d key group blobs, %d directories: want files only for Pebble with a checkpoint directory", len(snap.KeyGroups), len(snap.Dirs))
			}
			b := newHarnessDirs(t, mem, evSchemaInt, opts(), c.after, snap, dirs)
			defer b.close()
			if err := b.feed(evs[half:], 64); err != nil {
				t.Fatal(err)
			}
			if err := b.finish(); err != nil {
				t.Fatal(err)
			}
			got := rowsOf(b.out.batches)
			if !slices.Equal(got, wantRows) {
				t.Fatalf("restored run: %d rows differ from the uninterrupted run's %d", len(got), len(wantRows))
			}
			gu, gi := b.factors()
			checkFactors(t, "user", gu, wu)
			checkFactors(t, "item", gi, wi)
			sameExport(t, roots[0], roots[2]) // the reference's and the restored run's

			// A checkpoint after training restores the model itself, at
			// yet another parallelism; the restored subtasks finish
			// again without training or emitting a second time.
			done := b.snapshot()
			d := newHarnessDirs(t, mem, evSchemaInt, opts(), c.before, done, dirs)
			defer d.close()
			if err := d.finish(); err != nil {
				t.Fatal(err)
			}
			if len(d.out.batches) != 0 {
				t.Fatalf("a restored finished operator emitted %d batches again", len(d.out.batches))
			}
			du, di := d.factors()
			checkFactors(t, "user", du, wu)
			checkFactors(t, "item", di, wi)
		})
	}
}

func TestRecommendBadInput(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	good := []event{{user: 1, item: 10, ev: "view"}, {user: 2, item: 11, ev: "view"}}
	for _, c := range []struct {
		name string
		bad  event
		want string
	}{
		{"null user", event{item: 10, ev: "view", null: "user"}, "user id (uid) is NULL"},
		{"null item", event{user: 1, ev: "view", null: "item"}, "item id (iid) is NULL"},
		{"negative", event{user: 1, item: 10, ev: "view", weight: -3}, "weight -2 is negative"},
		{"nan", event{user: 1, item: 10, ev: "view", weight: math.NaN()}, "weight is NaN"},
		{"inf", event{user: 1, item: 10, ev: "view", weight: math.Inf(1)}, "weight +Inf is infinite"},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := testOptions(t)
			h := newHarness(t, mem, evSchemaInt, o, 1, nil)
			defer h.close()
			err := h.feed(append(slices.Clone(good), c.bad), 10)
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "batch 1, row 2") {
				t.Fatalf("error %v, want one naming batch 1, row 2 and %q", err, c.want)
			}
			// Dead-letter policy: the row goes to the file with its reason.
			o.OnError, o.DeadLetterPath = OnErrorDeadLetter, t.TempDir()
			d := newHarness(t, mem, evSchemaInt, o, 1, nil)
			defer d.close()
			if err := d.feed(append(slices.Clone(good), c.bad), 10); err != nil {
				t.Fatal(err)
			}
			d.ops[0].dead.close()
			data, err := os.ReadFile(filepath.Join(o.DeadLetterPath, "recommend-0.jsonl"))
			if err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimSpace(string(data)), "\n")
			if len(lines) != 1 || !strings.Contains(lines[0], c.want) || !strings.Contains(lines[0], `"row":2`) {
				t.Fatalf("dead letters %q, want one line with %q", data, c.want)
			}
		})
	}
}

func TestRecommendEmptyAndSmallCatalogue(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	o := testOptions(t)
	root := t.TempDir()
	o.Export = &ExportOptions{Path: root, Embeddings: true}
	h := newHarness(t, mem, evSchemaInt, o, 2, nil)
	defer h.close()
	if err := h.finish(); err != nil {
		t.Fatalf("empty input: %v", err)
	}
	if len(h.out.batches) != 0 {
		t.Fatalf("empty input emitted %d batches", len(h.out.batches))
	}
	// An empty model is exported, readable, with no rows.
	e, err := OpenLatest(root)
	if err != nil {
		t.Fatal(err)
	}
	if e.Version != 1 || e.Manifest.Users != 0 || e.Manifest.Items != 0 {
		t.Fatalf("empty export: %+v", e.Manifest)
	}
	for _, dir := range []string{RecommendDir, UserFactorsDir, ItemFactorsDir} {
		if tbl := oracle.PyArrowRead(t, filepath.Join(e.dir, dir), oracle.Parquet); len(tbl.Rows) != 0 {
			t.Fatalf("%s: %d rows in an empty export", dir, len(tbl.Rows))
		}
	}
	o.Export = nil
	s := newHarness(t, mem, evSchemaInt, o, 2, nil)
	defer s.close()
	if err := s.feed([]event{{user: 1, item: 1, ev: "view"}, {user: 2, item: 2, ev: "view"}}, 10); err != nil {
		t.Fatal(err)
	}
	err = s.finish()
	if err == nil || !strings.Contains(err.Error(), "k = 5 exceeds the catalogue of 2 items") {
		t.Fatalf("error %v, want k exceeds the catalogue", err)
	}
}

// TestRecommendNumericalTrouble: a weight so large that the solve
// overflows fails training with the user's id named, and nothing is
// exported.
func TestRecommendNumericalTrouble(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rng := rand.New(rand.NewPCG(8, 9))
	evs := genEvents(rng, 400, 20, 30)
	evs = append(evs, event{user: 777777, item: 1000, ev: "view", weight: 3e38})
	o := testOptions(t)
	root := t.TempDir()
	o.Export = &ExportOptions{Path: root, Embeddings: true}
	h := newHarness(t, mem, evSchemaInt, o, 2, nil)
	defer h.close()
	if err := h.feed(evs, 50); err != nil {
		t.Fatal(err)
	}
	err := h.finish()
	if !errors.Is(err, ErrNumerical) || !strings.Contains(err.Error(), "id 777777") || !strings.Contains(err.Error(), "nothing exported") {
		t.Fatalf("error %v, want numerical trouble naming user 777777", err)
	}
	if ents, _ := os.ReadDir(root); len(ents) != 0 {
		t.Fatalf("export root holds %d entries after a failed training", len(ents))
	}
	if len(h.out.batches) != 0 {
		t.Fatal("rows emitted after a failed training")
	}
}

// sameExport checks that two export roots hold the same model: the same
// LATEST version, manifest counts and input fingerprint, lists and
// factors (bitwise).
func sameExport(t *testing.T, a, b string) {
	t.Helper()
	ea, err := OpenLatest(a)
	if err != nil {
		t.Fatal(err)
	}
	eb, err := OpenLatest(b)
	if err != nil {
		t.Fatal(err)
	}
	ma, mb := *ea.Manifest, *eb.Manifest
	if ea.Version != eb.Version || ma.Fingerprint != mb.Fingerprint || ma.Users != mb.Users || ma.Items != mb.Items ||
		ma.Interactions != mb.Interactions || ma.InputRows != mb.InputRows || ma.Loss != mb.Loss {
		t.Fatalf("exports differ: %+v\n%+v", ma, mb)
	}
	ctx := context.Background()
	for _, dir := range []string{UserFactorsDir, ItemFactorsDir} {
		fa, err := ea.ReadFactors(ctx, dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		fb, err := eb.ReadFactors(ctx, dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(fa.IDs, fb.IDs) || len(fa.Factors) != len(fb.Factors) {
			t.Fatalf("%s: ids differ", dir)
		}
		for i := range fa.Factors {
			if math.Float32bits(fa.Factors[i]) != math.Float32bits(fb.Factors[i]) {
				t.Fatalf("%s: factor value %d differs: %v vs %v", dir, i, fa.Factors[i], fb.Factors[i])
			}
		}
		if dir == UserFactorsDir {
			la, err := ea.Lists(ctx, fa.IDs)
			if err != nil {
				t.Fatal(err)
			}
			lb, err := eb.Lists(ctx, fb.IDs)
			if err != nil {
				t.Fatal(err)
			}
			for _, id := range fa.IDs {
				if !slices.Equal(la[id], lb[id]) {
					t.Fatalf("user %s: lists differ: %v vs %v", id, la[id], lb[id])
				}
			}
		}
	}
}

// storedFactors reads the factors a recommend operator's state holds, by
// id (int64 ids formatted in decimal).
func storedFactors(v *state.Value[[]byte], kind idKind, user bool) (map[string][]float32, error) {
	out := map[string][]float32{}
	err := v.Range(func(e state.Entry, blob []byte) bool {
		if user {
			_, n := binary.Uvarint(blob)
			blob = blob[n:]
		}
		blob = blob[4:]
		f := make([]float32, len(blob)/4)
		for i := range f {
			f[i] = math.Float32frombits(binary.LittleEndian.Uint32(blob[4*i:]))
		}
		out[strings.Trim(formatKey(kind, e.Key), `"`)] = f
		return true
	})
	return out, err
}

// TestRecommendRetrainAfterRestore: a job restored after training that
// gets more input trains version 2 over all the interactions (the same
// model a fresh run over all of them trains), exports it as v000002 and
// emits every user's list again with model_version 2.
func TestRecommendRetrainAfterRestore(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rng := rand.New(rand.NewPCG(31, 32))
	evs := genEvents(rng, 1000, 40, 30)
	more := genEvents(rng, 300, 50, 30)
	o := testOptions(t)
	root := t.TempDir()
	o.Export = &ExportOptions{Path: root}
	a := newHarness(t, mem, evSchemaInt, o, 2, nil)
	if err := a.feed(evs, 64); err != nil {
		t.Fatal(err)
	}
	if err := a.finish(); err != nil {
		t.Fatal(err)
	}
	snap := a.snapshot()
	a.close()
	b := newHarness(t, mem, evSchemaInt, o, 3, snap)
	defer b.close()
	if err := b.feed(more, 64); err != nil {
		t.Fatal(err)
	}
	if err := b.finish(); err != nil {
		t.Fatal(err)
	}
	o.Export = nil
	ref := newHarness(t, mem, evSchemaInt, o, 1, nil)
	defer ref.close()
	if err := ref.feed(append(slices.Clone(evs), more...), 64); err != nil {
		t.Fatal(err)
	}
	if err := ref.finish(); err != nil {
		t.Fatal(err)
	}
	got, want := rowsOf(b.out.batches), rowsOf(ref.out.batches)
	if len(got) != len(want) {
		t.Fatalf("%d rows, want %d", len(got), len(want))
	}
	for i := range want {
		want[i].version = 2
		if got[i] != want[i] {
			t.Fatalf("row %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	if v, err := ReadLatest(nil, root); v != 2 || err != nil {
		t.Fatalf("LATEST v%d (%v), want v2", v, err)
	}
}
