package ml

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/arrowexec/expr"
	"github.com/riffle-dev/riffle/state"
)

// streamHarness drives the streaming operator (one subtask) as the
// runtime does.
type streamHarness struct {
	t        testing.TB
	mem      memory.Allocator
	schema   *arrow.Schema
	spec     *RecommendSpec
	op       *streamOp
	out      collector
	snapDirs string
	snapID   uint64
}

func streamOptions(t testing.TB) RecommendOptions {
	o := testOptions(t)
	// GramRefresh 130: exact Gram recomputations fall inside these tests
	// (several per run), so a restore that did not bring back the refresh
	// counters would continue differently (TestStreamRestoreBitwise).
	o.Update = &UpdateOptions{Every: 97, RetrainGrowth: 3, GramRefresh: 130}
	o.Checkpointed = true
	return o
}

func newStreamHarness(t testing.TB, mem memory.Allocator, schema *arrow.Schema, o RecommendOptions, restore *arrowexec.RestoreState, snapDirs string) *streamHarness {
	t.Helper()
	spec, err := NewRecommend(o)
	if err != nil {
		t.Fatal(err)
	}
	out, err := spec.Schema([]*arrow.Schema{schema})
	if err != nil {
		t.Fatal(err)
	}
	h := &streamHarness{t: t, mem: mem, schema: schema, spec: spec, snapDirs: snapDirs}
	task := &arrowexec.Task{Node: "recommend", Subtask: 0, Parallelism: 1, MaxParallelism: 16, Mem: mem,
		Inputs: []*arrow.Schema{schema}, Output: out, Restore: restore}
	if restore != nil {
		h.snapID = restore.CheckpointID
	}
	if snapDirs != "" {
		task.SnapshotDir = func(id uint64) (string, error) {
			d := filepath.Join(snapDirs, fmt.Sprintf("chk-%d", id), "0")
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
	h.op = op.(*streamOp)
	return h
}

// feed sends evs in batches of sizes drawn from sizes (cycled).
func (h *streamHarness) feed(evs []event, sizes ...int) error {
	for lo, j := 0, 0; lo < len(evs); j++ {
		bs := sizes[j%len(sizes)]
		b := toBatch(h.mem, h.schema, evs[lo:min(lo+bs, len(evs))])
		err := h.op.Process(context.Background(), 0, b, &h.out)
		b.Release()
		if err != nil {
			return err
		}
		lo += bs
	}
	return nil
}

// barrier takes checkpoint n's synchronous part; the returned function
// completes it (the asynchronous part) and returns what a restore gets.
func (h *streamHarness) barrier() (uint64, func() *arrowexec.RestoreState) {
	h.snapID++
	id := h.snapID
	c, err := h.op.SnapshotStateAsync(context.Background(), id)
	if err != nil {
		h.t.Fatal(err)
	}
	return id, func() *arrowexec.RestoreState {
		s, err := c(context.Background())
		if err != nil {
			h.t.Fatal(err)
		}
		r := &arrowexec.RestoreState{CheckpointID: id, KeyGroups: s.KeyGroups, Operator: [][]byte{s.Operator}}
		if h.snapDirs != "" {
			r.Dirs = []string{filepath.Join(h.snapDirs, fmt.Sprintf("chk-%d", id), "0")}
		}
		return r
	}
}

// checkpoint takes a whole checkpoint; complete says whether it also
// completes (NotifyCheckpointComplete).
func (h *streamHarness) checkpoint(complete bool) *arrowexec.RestoreState {
	id, c := h.barrier()
	r := c()
	if complete {
		if err := h.op.NotifyCheckpointComplete(context.Background(), id); err != nil {
			h.t.Fatal(err)
		}
	}
	return r
}

func (h *streamHarness) close() {
	if err := h.op.Close(); err != nil {
		h.t.Error(err)
	}
	h.out.release()
}

// lists returns the lists of a list state by formatted key.
func lists(t testing.TB, l *state.List[[]byte], kind idKind) map[string][]string {
	out := map[string][]string{}
	err := l.Range(func(e state.Entry, vals [][]byte) bool {
		k := strings.Trim(formatKey(kind, e.Key), `"`)
		for _, v := range vals {
			out[k] = append(out[k], fmt.Sprintf("%08x|%x", binary.LittleEndian.Uint32(v), v[4:]))
		}
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// wantLists is the brute-force oracle of the stored histories: each
// user's (item's) accepted events in input order, with the weight the
// CASE expression gives, computed here.
func wantLists(evs []event) (users, items map[string][]string) {
	users, items = map[string][]string{}, map[string][]string{}
	for _, e := range evs {
		w := caseWeight(e)
		if e.null != "" || math.IsNaN(w) || w < 0 {
			continue
		}
		bits := math.Float32bits(float32(w))
		u, i := fmt.Sprint(e.user), fmt.Sprint(e.item)
		users[u] = append(users[u], fmt.Sprintf("%08x|%x", bits, int64Key(e.item)))
		items[i] = append(items[i], fmt.Sprintf("%08x|%x", bits, int64Key(e.user)))
	}
	return users, items
}

// caseWeight is the weight weightCase gives e, computed here.
func caseWeight(e event) float64 {
	switch e.ev {
	case "purchase":
		return e.weight + 4
	case "cart":
		return e.weight + 2
	}
	return e.weight + 1
}

func sameLists(t *testing.T, what string, got, want map[string][]string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d keys stored, want %d", what, len(got), len(want))
	}
	for k, w := range want {
		if !slices.Equal(got[k], w) {
			t.Fatalf("%s %s: stored %d interactions %v, want %d %v", what, k, len(got[k]), got[k], len(w), w)
		}
	}
}

// modelFactors returns the live model's factors by formatted id.
func modelFactors(on *Online, uk, ik idKind) (users, items map[string][]float32) {
	users, items = map[string][]float32{}, map[string][]float32{}
	for u := range int32(on.NumUsers()) {
		users[strings.Trim(formatKey(uk, on.UserKey(u)), `"`)] = slices.Clone(on.UserVector(u))
	}
	for i := range int32(on.NumItems()) {
		items[strings.Trim(formatKey(ik, on.ItemKey(i)), `"`)] = slices.Clone(on.ItemVector(i))
	}
	return users, items
}

func sameBits(t *testing.T, what string, got, want map[string][]float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d rows, want %d", what, len(got), len(want))
	}
	for k, w := range want {
		g, ok := got[k]
		if !ok || len(g) != len(w) {
			t.Fatalf("%s %s: missing or of another length", what, k)
		}
		for j := range w {
			if math.Float32bits(g[j]) != math.Float32bits(w[j]) {
				t.Fatalf("%s %s: factor %d is %v, want %v (bitwise)", what, k, j, g[j], w[j])
			}
		}
	}
}

// TestStreamHistoriesExactlyOnce: a run interrupted by restores (from
// the last checkpoint, with the events processed after it replayed, as
// a source rewinds) stores, for every user and every item, exactly the
// input's accepted interactions in input order (brute force), with the
// memory and the Pebble backend, bad rows dead-lettered; the factors in
// the state are the live model's.
func TestStreamHistoriesExactlyOnce(t *testing.T) {
	for _, pebble := range []bool{false, true} {
		t.Run(fmt.Sprintf("pebble=%v", pebble), func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			rng := rand.New(rand.NewPCG(11, 12))
			evs := genEvents(rng, 3000, 80, 40)
			// Bad rows: dead-lettered, never in the lists or the model.
			var all []event
			for j, e := range evs {
				all = append(all, e)
				if j%250 == 3 {
					all = append(all, event{user: e.user, item: e.item, ev: "view", weight: -5})
				}
				if j%333 == 7 {
					all = append(all, event{user: 999999, item: e.item, ev: "view", null: "item"})
				}
			}
			dirs := t.TempDir()
			opts := func() RecommendOptions {
				o := streamOptions(t)
				o.OnError, o.DeadLetterPath = OnErrorDeadLetter, t.TempDir()
				if pebble {
					be, err := state.NewPebbleBackend(state.PebbleOptions{Dir: t.TempDir()})
					if err != nil {
						t.Fatal(err)
					}
					o.Backend = be
				}
				return o
			}
			h := newStreamHarness(t, mem, evSchemaInt, opts(), nil, dirs)
			pos, last := 0, 0 // next event; position at the last checkpoint
			var snap *arrowexec.RestoreState
			for pos < len(all) {
				n := min(1+rng.IntN(400), len(all)-pos)
				if err := h.feed(all[pos:pos+n], 1+rng.IntN(64)); err != nil {
					t.Fatal(err)
				}
				pos += n
				switch rng.IntN(3) {
				case 0:
					snap, last = h.checkpoint(true), pos
				case 1:
					// Crash: restore the last checkpoint and replay from it.
					h.close()
					h = newStreamHarness(t, mem, evSchemaInt, opts(), snap, dirs)
					pos = last
				}
			}
			h.checkpoint(true)
			defer h.close()
			wu, wi := wantLists(evs)
			sameLists(t, "user", lists(t, h.op.inter, idInt64), wu)
			sameLists(t, "item", lists(t, h.op.itemIntr, idInt64), wi)
			liveU, liveI := modelFactors(h.op.online, idInt64, idInt64)
			su, err := storedFactors(h.op.user, idInt64, true)
			if err != nil {
				t.Fatal(err)
			}
			si, err := storedFactors(h.op.item, idInt64, false)
			if err != nil {
				t.Fatal(err)
			}
			sameBits(t, "stored user", su, liveU)
			sameBits(t, "stored item", si, liveI)
		})
	}
}

// TestStreamBadRowsUntouched: bad rows (NULL ids, negative or NaN
// weights) added to the same batches leave the model bitwise as it is
// without them.
func TestStreamBadRowsUntouched(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rng := rand.New(rand.NewPCG(21, 22))
	evs := genEvents(rng, 2000, 60, 30)
	run := func(bad bool) (map[string][]float32, map[string][]float32, map[string][]string) {
		o := streamOptions(t)
		o.OnError, o.DeadLetterPath = OnErrorDeadLetter, t.TempDir()
		h := newStreamHarness(t, mem, evSchemaInt, o, nil, "")
		defer h.close()
		for lo := 0; lo < len(evs); lo += 40 {
			b := slices.Clone(evs[lo:min(lo+40, len(evs))])
			if bad {
				b = append(b, event{user: 424242, item: 1000, weight: math.NaN(), ev: "view"},
					event{user: 7, item: 1000, weight: -3, ev: "view"}, event{item: 1000, null: "user"}, event{user: 5, null: "item"},
					event{user: 8, item: 1000, weight: -1, ev: "view"}) // weight 1 - 1 = 0
			}
			if err := h.feed(b, len(b)); err != nil {
				t.Fatal(err)
			}
			if lo%400 == 0 {
				h.checkpoint(true)
			}
		}
		h.checkpoint(true)
		u, i := modelFactors(h.op.online, idInt64, idInt64)
		var dead map[string][]string
		if bad {
			ents, _ := os.ReadDir(o.DeadLetterPath)
			dead = map[string][]string{}
			for _, e := range ents {
				data, err := os.ReadFile(filepath.Join(o.DeadLetterPath, e.Name()))
				if err != nil {
					t.Fatal(err)
				}
				dead[e.Name()] = strings.Split(strings.TrimSpace(string(data)), "\n")
			}
		}
		return u, i, dead
	}
	wu, wi, _ := run(false)
	gu, gi, dead := run(true)
	sameBits(t, "user", gu, wu)
	sameBits(t, "item", gi, wi)
	lines := dead["recommend-0.jsonl"]
	if want := 5 * ((len(evs) + 39) / 40); len(lines) != want {
		t.Fatalf("%d dead-lettered rows, want %d", len(lines), want)
	}
	for _, want := range []string{"weight is NaN", "negative", "user id (uid) is NULL", "item id (iid) is NULL", "weight is 0"} {
		if !strings.Contains(strings.Join(lines[:5], "\n"), want) {
			t.Fatalf("dead letters %v: no reason %q", lines[:5], want)
		}
	}
}

// TestStreamRestoreBitwise: a checkpoint of the streaming operator,
// restored by the batch operator at parallelism 3 and checkpointed again
// there (the key groups redistributed), then restored by the streaming
// operator, gives the snapshot's factors bitwise; and the restored run,
// fed the rest of the input, ends with bitwise the model of the run that
// never stopped, Gram matrices included (dense indices, Gram matrices and
// their refresh counters are restored exactly).
func TestStreamRestoreBitwise(t *testing.T) {
	for _, c := range []struct {
		str    bool
		growth float64
	}{{false, 3}, {true, 3}, {false, 0}} {
		str := c.str
		// growth 0: no full retrain resets the Gram refresh counters
		// after the restore, so a wrong counter shows in the Grams.
		t.Run(fmt.Sprintf("string=%v/retrain_growth=%v", str, c.growth), func(t *testing.T) {
			so := streamOptions(t)
			so.Update.RetrainGrowth = c.growth
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			schema, kind := evSchemaInt, idInt64
			if str {
				schema, kind = evSchemaStr, idString
			}
			rng := rand.New(rand.NewPCG(31, 32))
			evs := genEvents(rng, 2500, 70, 35)
			half := 1400
			ref := newStreamHarness(t, mem, schema, so, nil, "")
			defer ref.close()
			if err := ref.feed(evs[:half], 33); err != nil {
				t.Fatal(err)
			}
			snap := ref.checkpoint(true)
			atSnapU, atSnapI := modelFactors(ref.op.online, kind, kind)
			if err := ref.feed(evs[half:], 33); err != nil {
				t.Fatal(err)
			}
			ref.checkpoint(true)
			wantU, wantI := modelFactors(ref.op.online, kind, kind)

			bo := testOptions(t)
			batch := newHarness(t, mem, schema, bo, 3, snap)
			moved := batch.snapshot()
			bu, bi := batch.factors()
			batch.close()
			sameBits(t, "user (batch operator, p=3)", bu, atSnapU)
			sameBits(t, "item (batch operator, p=3)", bi, atSnapI)

			h := newStreamHarness(t, mem, schema, so, moved, "")
			defer h.close()
			gu, gi := modelFactors(h.op.online, kind, kind)
			sameBits(t, "restored user", gu, atSnapU)
			sameBits(t, "restored item", gi, atSnapI)
			if err := h.feed(evs[half:], 33); err != nil {
				t.Fatal(err)
			}
			h.checkpoint(true)
			gu, gi = modelFactors(h.op.online, kind, kind)
			sameBits(t, "continued user", gu, wantU)
			sameBits(t, "continued item", gi, wantI)
			// The Gram matrices too: exact recomputations (GramRefresh)
			// fell at the same updates as in the run that never stopped.
			if !slices.Equal(h.op.online.UserGram(), ref.op.online.UserGram()) || !slices.Equal(h.op.online.ItemGram(), ref.op.online.ItemGram()) {
				t.Fatal("continued Gram matrices differ from the uninterrupted run's")
			}
		})
	}
}

// exportFactors reads a published version's user or item factors.
func exportFactors(t *testing.T, root string, v int64, dir string) map[string][]float32 {
	t.Helper()
	m, err := ReadManifest(nil, root, v)
	if err != nil {
		t.Fatal(err)
	}
	e := &Export{Root: root, Version: v, Manifest: m, dir: filepath.Join(root, VersionName(v)), mem: memory.NewGoAllocator()}
	f, err := e.ReadFactors(context.Background(), dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]float32{}
	for j, id := range f.IDs {
		out[id] = f.Factors[j*f.K : (j+1)*f.K]
	}
	return out
}

// exportState lists the version directories, the temporary entries and
// LATEST under root.
func exportState(t *testing.T, root string) (versions []int64, temps []string, latest int64) {
	t.Helper()
	versions, err := versionsOnDisk(nil, root)
	if err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(root)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), exportTempPrefix) {
			temps = append(temps, e.Name())
		}
	}
	if latest, err = ReadLatest(nil, root); err != nil {
		t.Fatal(err)
	}
	return versions, temps, latest
}

// TestStreamExportTwoPhase: a version is staged at a barrier and
// published when its checkpoint completes, holding the model as of that
// barrier; a version staged at a checkpoint that never completed is
// never published (the restore removes it); one whose checkpoint
// completed but whose publication a crash cut off is published by the
// restore, once; one already published is not published again.
func TestStreamExportTwoPhase(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rng := rand.New(rand.NewPCG(41, 42))
	evs := genEvents(rng, 2400, 60, 30)
	root := t.TempDir()
	opts := func() RecommendOptions {
		o := streamOptions(t)
		o.Export = &ExportOptions{Path: root, Embeddings: true, Retain: 10}
		return o
	}
	check := func(what string, wantVersions []int64, wantLatest int64) {
		t.Helper()
		vs, temps, latest := exportState(t, root)
		if !slices.Equal(vs, wantVersions) || len(temps) != 0 || latest != wantLatest {
			t.Fatalf("%s: versions %v, temporary %v, LATEST %d; want versions %v, none temporary, LATEST %d",
				what, vs, temps, latest, wantVersions, wantLatest)
		}
	}
	h := newStreamHarness(t, mem, evSchemaInt, opts(), nil, "")
	if err := h.feed(evs[:800], 50); err != nil {
		t.Fatal(err)
	}
	ck1 := h.checkpoint(true)
	atU, atI := modelFactors(h.op.online, idInt64, idInt64)
	check("after checkpoint 1", []int64{1}, 1)
	modelVersion := func(h *streamHarness, what string, want int64) {
		t.Helper()
		if st, _ := h.spec.Stats(); st.LastExport != want {
			t.Fatalf("%s: Stats().LastExport %d, want %d (published in this run)", what, st.LastExport, want)
		}
	}
	modelVersion(h, "after checkpoint 1", 1)
	sameBits(t, "v1 user", exportFactors(t, root, 1, UserFactorsDir), atU)
	sameBits(t, "v1 item", exportFactors(t, root, 1, ItemFactorsDir), atI)
	if m, _ := ReadManifest(nil, root, 1); m.Checkpoint != 1 || m.ChangedOnly {
		t.Fatalf("v1 manifest: checkpoint %d changed_only %v, want 1, false", m.Checkpoint, m.ChangedOnly)
	}

	// Checkpoint 2 is taken (v2 staged, written) but never completes.
	if err := h.feed(evs[800:1600], 50); err != nil {
		t.Fatal(err)
	}
	h.checkpoint(false)
	if vs, temps, latest := exportState(t, root); !slices.Equal(vs, []int64{1}) || len(temps) != 1 || latest != 1 {
		t.Fatalf("checkpoint 2 not complete: versions %v, temporary %v, LATEST %d; want v1 only and one staged", vs, temps, latest)
	}
	modelVersion(h, "checkpoint 2 not complete", 1)
	h.close()
	// Restore checkpoint 1: the staged v2 goes, unpublished.
	h = newStreamHarness(t, mem, evSchemaInt, opts(), ck1, "")
	check("restored from checkpoint 1", []int64{1}, 1)
	modelVersion(h, "restored from checkpoint 1", 1) // its staged v1 is published (again) at the restore
	if err := h.feed(evs[800:1600], 50); err != nil {
		t.Fatal(err)
	}
	id, complete := h.barrier()
	atU, atI = modelFactors(h.op.online, idInt64, idInt64)
	// What arrives after the barrier is not in the version.
	if err := h.feed(evs[1600:1700], 50); err != nil {
		t.Fatal(err)
	}
	ck3 := complete() // complete everywhere, but the crash comes before the notice
	h.close()
	h = newStreamHarness(t, mem, evSchemaInt, opts(), ck3, "")
	check("restored from checkpoint 3", []int64{1, 2}, 2)
	modelVersion(h, "restored from checkpoint 3", 2)
	sameBits(t, "v2 user", exportFactors(t, root, 2, UserFactorsDir), atU)
	sameBits(t, "v2 item", exportFactors(t, root, 2, ItemFactorsDir), atI)
	if m, _ := ReadManifest(nil, root, 2); m.Checkpoint != id {
		t.Fatalf("v2 manifest: checkpoint %d, want %d", m.Checkpoint, id)
	}
	created := func(v int64) string {
		m, err := ReadManifest(nil, root, v)
		if err != nil {
			t.Fatal(err)
		}
		return m.Created.String()
	}
	c2 := created(2)
	// Restoring checkpoint 3 again publishes nothing twice.
	h.close()
	h = newStreamHarness(t, mem, evSchemaInt, opts(), ck3, "")
	check("restored from checkpoint 3 again", []int64{1, 2}, 2)
	if created(2) != c2 {
		t.Fatal("v2 was written again by the second restore")
	}
	if err := h.feed(evs[1600:], 50); err != nil {
		t.Fatal(err)
	}
	ck4 := h.checkpoint(true)
	check("after checkpoint 4", []int64{1, 2, 3}, 3)
	modelVersion(h, "after checkpoint 4", 3)
	c3 := created(3)
	h.close()
	h = newStreamHarness(t, mem, evSchemaInt, opts(), ck4, "")
	defer h.close()
	check("restored from checkpoint 4", []int64{1, 2, 3}, 3)
	if created(3) != c3 {
		t.Fatal("v3 was written again by the restore")
	}
	h.checkpoint(true)
	check("after checkpoint 5", []int64{1, 2, 3, 4}, 4)
	modelVersion(h, "after checkpoint 5", 4)
}

// TestStreamExportChangedOnly: with export_changed_only, a version holds
// the users of the interactions since the previous version (brute
// force) and every item; every full_every-th version holds every user.
func TestStreamExportChangedOnly(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rng := rand.New(rand.NewPCG(51, 52))
	evs := genEvents(rng, 2000, 80, 30)
	root := t.TempDir()
	o := streamOptions(t)
	o.Update.RetrainGrowth = 0 // a full retrain changes every user
	o.Update.ExportChangedOnly, o.Update.FullEvery = true, 3
	o.Export = &ExportOptions{Path: root, Embeddings: true, Retain: 10}
	h := newStreamHarness(t, mem, evSchemaInt, o, nil, "")
	defer h.close()
	allUsers, allItems := map[string]bool{}, map[string]bool{}
	cuts := []int{0, 700, 760, 1100, 1130, 2000}
	for v := 1; v < len(cuts); v++ {
		since := map[string]bool{}
		for _, e := range evs[cuts[v-1]:cuts[v]] {
			since[fmt.Sprint(e.user)], allUsers[fmt.Sprint(e.user)], allItems[fmt.Sprint(e.item)] = true, true, true
		}
		if err := h.feed(evs[cuts[v-1]:cuts[v]], 37); err != nil {
			t.Fatal(err)
		}
		h.checkpoint(true)
		m, err := ReadManifest(nil, root, int64(v))
		if err != nil {
			t.Fatal(err)
		}
		full := v%3 == 1
		want := since
		if full {
			want = allUsers
		}
		gotU := exportFactors(t, root, int64(v), UserFactorsDir)
		gotI := exportFactors(t, root, int64(v), ItemFactorsDir)
		if m.ChangedOnly == full || (!full && m.Since != int64(v-1)) || len(gotU) != len(want) || len(gotI) != len(allItems) || m.Users != len(want) {
			t.Fatalf("v%d: changed_only %v since %d, %d users (manifest %d), %d items; want full %v, %d users, %d items",
				v, m.ChangedOnly, m.Since, len(gotU), m.Users, len(gotI), full, len(want), len(allItems))
		}
		for u := range want {
			if _, ok := gotU[u]; !ok {
				t.Fatalf("v%d: user %s missing", v, u)
			}
		}
	}
}

// TestStreamFinish: at the end of bounded input the operator applies
// what is pending, exports a version and emits every user's top-K (the
// batch operator's schema and invariants; each score the dot product of
// the stored factors); restored after that, it emits nothing again.
func TestStreamFinish(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rng := rand.New(rand.NewPCG(61, 62))
	evs := genEvents(rng, 1500, 50, 30)
	root := t.TempDir()
	o := streamOptions(t)
	o.Export = &ExportOptions{Path: root}
	h := newStreamHarness(t, mem, evSchemaInt, o, nil, "")
	defer h.close()
	if err := h.feed(evs, 41); err != nil {
		t.Fatal(err)
	}
	if err := h.op.Finish(context.Background(), &h.out); err != nil {
		t.Fatal(err)
	}
	rows := rowsOf(h.out.batches)
	checkLists(t, rows, evs, o.K, false)
	su, _ := storedFactors(h.op.user, idInt64, true)
	si, _ := storedFactors(h.op.item, idInt64, false)
	for _, r := range rows {
		var dot float64
		for j, x := range su[r.user] {
			dot += float64(x) * float64(si[r.item][j])
		}
		if math.Abs(dot-float64(r.score)) > 1e-4*max(1, math.Abs(dot)) || r.version != 1 {
			t.Fatalf("user %s item %s: score %v (version %d), factors give %v (version 1)", r.user, r.item, r.score, r.version, dot)
		}
	}
	if vs, temps, latest := exportState(t, root); !slices.Equal(vs, []int64{1}) || len(temps) != 0 || latest != 1 {
		t.Fatalf("export: versions %v, temporary %v, LATEST %d; want v1", vs, temps, latest)
	}
	done := h.checkpoint(true)
	again := newStreamHarness(t, mem, evSchemaInt, o, done, "")
	defer again.close()
	if err := again.op.Finish(context.Background(), &again.out); err != nil {
		t.Fatal(err)
	}
	if len(again.out.batches) != 0 {
		t.Fatalf("restored after the end, the operator emitted %d batches again", len(again.out.batches))
	}
	if vs, _, _ := exportState(t, root); !slices.Equal(vs, []int64{1}) {
		t.Fatalf("restored after the end: versions %v, want v1 only", vs)
	}
}

// TestStreamNumericalTrouble: after training, a new user whose only
// interaction has a weight so large that its confidence overflows fails
// its solve: the update rolls it back, logs it by id, and it is neither
// in the state's factors nor in the export; the other users are.
func TestStreamNumericalTrouble(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rng := rand.New(rand.NewPCG(71, 72))
	evs := genEvents(rng, 1000, 40, 30)
	root := t.TempDir()
	var logs bytes.Buffer
	o := streamOptions(t)
	o.Weight = expr.MustParse("w + 1")
	o.Export = &ExportOptions{Path: root, Embeddings: true}
	o.Log = slog.New(slog.NewTextHandler(&logs, nil))
	h := newStreamHarness(t, mem, evSchemaInt, o, nil, "")
	defer h.close()
	if err := h.feed(evs, 100); err != nil {
		t.Fatal(err)
	}
	h.checkpoint(true)
	if err := h.feed([]event{{user: 777777, item: evs[0].item, ev: "view", weight: 3e38}}, 1); err != nil {
		t.Fatal(err)
	}
	h.checkpoint(true)
	if !strings.Contains(logs.String(), "numerical trouble") || !strings.Contains(logs.String(), "777777") {
		t.Fatalf("no warning naming user 777777:\n%s", logs.String())
	}
	if h.op.failed == 0 {
		t.Fatal("no failed row counted")
	}
	su, err := storedFactors(h.op.user, idInt64, true)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := su["777777"]; ok || len(su) != 40 {
		t.Fatalf("state: %d users stored, the failed one among them: %v", len(su), ok)
	}
	v, _ := ReadLatest(nil, root)
	eu := exportFactors(t, root, v, UserFactorsDir)
	if _, ok := eu["777777"]; ok || len(eu) != 40 {
		t.Fatalf("export v%d: %d users, the failed one among them: %v", v, len(eu), ok)
	}
}

// TestStreamLive: the spec's serving copy follows the operator: after a
// restore and after each update it answers a user's top-K as brute force
// over the model's factors does (scores x_u·y_i over the items the user
// does not have); with serve off there is none.
func TestStreamLive(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rng := rand.New(rand.NewPCG(81, 82))
	evs := genEvents(rng, 2000, 50, 40)
	o := streamOptions(t)
	o.Update.Serve = true
	check := func(h *streamHarness, what string) {
		t.Helper()
		l := h.spec.Live()
		if l == nil {
			t.Fatalf("%s: no serving copy", what)
		}
		on := h.op.online
		if st, _ := h.spec.Stats(); st.Users != on.NumUsers() || st.Items != on.NumItems() || st.Interactions != on.NumInteractions() {
			t.Fatalf("%s: recommend stats %+v, model %d users, %d items, %d interactions", what, st, on.NumUsers(), on.NumItems(), on.NumInteractions())
		}
		for u := range int32(on.NumUsers()) {
			id := strings.Trim(formatKey(idInt64, on.UserKey(u)), `"`)
			got, err := l.Recommend(context.Background(), id, o.K, false)
			if err != nil {
				t.Fatalf("%s: user %s: %v", what, id, err)
			}
			seen, _ := on.UserItems(u)
			type cand struct {
				item  int32
				score float32
			}
			var all []cand
			for i := range int32(on.NumItems()) {
				if !slices.Contains(seen, i) {
					var s float32
					for j, x := range on.UserVector(u) {
						s += x * on.ItemVector(i)[j]
					}
					all = append(all, cand{i, s})
				}
			}
			slices.SortStableFunc(all, func(a, b cand) int {
				if a.score != b.score {
					if a.score > b.score {
						return -1
					}
					return 1
				}
				return 0
			})
			if len(got.Items) != min(o.K, len(all)) {
				t.Fatalf("%s: user %s: %d items, want %d", what, id, len(got.Items), min(o.K, len(all)))
			}
			for j, it := range got.Items {
				want := all[j]
				if math.Abs(float64(got.Scores[j]-want.score)) > 1e-4*max(1, math.Abs(float64(want.score))) {
					t.Fatalf("%s: user %s rank %d: item %v score %v, brute force %v (item %s)", what, id, j+1, it, got.Scores[j],
						want.score, formatKey(idInt64, on.ItemKey(want.item)))
				}
			}
		}
	}
	h := newStreamHarness(t, mem, evSchemaInt, o, nil, "")
	if h.spec.Live() == nil {
		t.Fatal("no serving copy after Open")
	}
	if err := h.feed(evs[:1000], 64); err != nil {
		t.Fatal(err)
	}
	check(h, "after the updates")
	snap := h.checkpoint(true)
	check(h, "after the barrier's update")
	h.close()
	r := newStreamHarness(t, mem, evSchemaInt, o, snap, "")
	defer r.close()
	check(r, "after a restore")
	if err := r.feed(evs[1000:], 64); err != nil {
		t.Fatal(err)
	}
	r.checkpoint(true)
	check(r, "after more updates")

	o.Update.Serve = false
	off := newStreamHarness(t, mem, evSchemaInt, o, nil, "")
	defer off.close()
	if off.spec.Live() != nil {
		t.Fatal("serve: false, yet a serving copy")
	}
}

// TestStreamSnapshotWhileProcessing: the snapshot's asynchronous part
// (scoring and writing the staged version, writing the state's view)
// runs while the operator goes on updating the model (run with -race);
// the version holds the model as of the barrier, and the restored state
// has the lists as of the barrier.
func TestStreamSnapshotWhileProcessing(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rng := rand.New(rand.NewPCG(91, 92))
	evs := genEvents(rng, 3000, 60, 30)
	root := t.TempDir()
	o := streamOptions(t)
	o.Update.Serve = true
	o.Export = &ExportOptions{Path: root, Embeddings: true}
	h := newStreamHarness(t, mem, evSchemaInt, o, nil, "")
	defer h.close()
	if err := h.feed(evs[:1500], 50); err != nil {
		t.Fatal(err)
	}
	id, complete := h.barrier()
	atU, atI := modelFactors(h.op.online, idInt64, idInt64)
	done := make(chan *arrowexec.RestoreState)
	go func() { done <- complete() }()
	if err := h.feed(evs[1500:], 50); err != nil {
		t.Fatal(err)
	}
	snap := <-done
	if err := h.op.NotifyCheckpointComplete(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	sameBits(t, "v1 user", exportFactors(t, root, 1, UserFactorsDir), atU)
	sameBits(t, "v1 item", exportFactors(t, root, 1, ItemFactorsDir), atI)
	r := newStreamHarness(t, mem, evSchemaInt, o, snap, "")
	defer r.close()
	wu, wi := wantLists(evs[:1500])
	sameLists(t, "user", lists(t, r.op.inter, idInt64), wu)
	sameLists(t, "item", lists(t, r.op.itemIntr, idInt64), wi)
}

// TestByDenseIndex: rows come out ordered by dense index whether the
// indices are a permutation of 0..n-1 (placed directly) or not (gaps
// left by rows never solved: sorted), as a plain sort orders them.
func TestByDenseIndex(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, c := range []struct{ n, span int }{{0, 0}, {1, 1}, {50, 50}, {50, 80}, {50, 10}} {
		idx := make([]uint32, c.n)
		if c.span == c.n {
			for j, p := range rng.Perm(c.n) {
				idx[j] = uint32(p)
			}
		} else {
			for j := range idx {
				idx[j] = uint32(rng.IntN(c.span)) // gaps, repeats
			}
		}
		want := slices.Clone(idx)
		slices.Sort(want)
		got := byDenseIndex(slices.Clone(idx), func(x uint32) uint32 { return x })
		if !slices.Equal(got, want) {
			t.Fatalf("n %d span %d: %v, want %v", c.n, c.span, got, want)
		}
	}
}

// cappedLists is the oracle of the stored lists under MaxHistory n: each
// user's newest n accepted events (wantLists' entries), and each item's
// entries of the events kept, in input order.
func cappedLists(evs []event, n int) (users, items map[string][]string) {
	wu, _ := wantLists(evs)
	// Positions of each user's events in the input, to keep the newest n.
	var acc []event
	for _, e := range evs {
		if lu, _ := wantLists([]event{e}); len(lu) == 1 {
			acc = append(acc, e)
		}
	}
	seen := map[string]int{}
	users, items = map[string][]string{}, map[string][]string{}
	for _, e := range acc {
		u := fmt.Sprint(e.user)
		seen[u]++
		if len(wu[u])-seen[u] >= n { // a newer n follow: dropped
			continue
		}
		lu, li := wantLists([]event{e})
		users[u] = append(users[u], lu[u]...)
		i := fmt.Sprint(e.item)
		items[i] = append(items[i], li[i]...)
	}
	return users, items
}

// TestStreamMaxHistory: with update max_history n, the stored lists
// after each checkpoint are the oracle's (each user's newest n accepted
// interactions, each item's entries of those), the model's histories
// hold those and nothing else, and a run restored from a mid-stream
// checkpoint ends bitwise like the uninterrupted one (factors, Grams).
// Restoring state written without the cap trims it on open.
func TestStreamMaxHistory(t *testing.T) {
	const n = 6
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rng := rand.New(rand.NewPCG(61, 62))
	evs := genEvents(rng, 2500, 60, 30)
	opts := func(cap int) RecommendOptions {
		o := streamOptions(t)
		o.Update.MaxHistory = cap
		return o
	}
	half := 1300
	ref := newStreamHarness(t, mem, evSchemaInt, opts(n), nil, "")
	defer ref.close()
	if err := ref.feed(evs[:half], 41); err != nil {
		t.Fatal(err)
	}
	snap := ref.checkpoint(true)
	wu, wi := cappedLists(evs[:half], n)
	sameLists(t, "user (half)", lists(t, ref.op.inter, idInt64), wu)
	sameLists(t, "item (half)", lists(t, ref.op.itemIntr, idInt64), wi)
	if err := ref.feed(evs[half:], 41); err != nil {
		t.Fatal(err)
	}
	ref.checkpoint(true)
	wu, wi = cappedLists(evs, n)
	sameLists(t, "user", lists(t, ref.op.inter, idInt64), wu)
	sameLists(t, "item", lists(t, ref.op.itemIntr, idInt64), wi)
	// The model's pairs are the kept interactions' (weights summed).
	on := ref.op.online
	pairs := 0
	for u, l := range wu {
		id, _ := strconv.ParseInt(u, 10, 64)
		ui, ok := on.UserIndex(int64Key(id))
		if !ok {
			t.Fatalf("user %s not in the model", u)
		}
		want := map[string]float32{}
		for _, e := range l {
			var bits uint32
			var item []byte
			fmt.Sscanf(e, "%08x|%x", &bits, &item)
			want[string(item)] += math.Float32frombits(bits)
		}
		idx, w := on.UserItems(ui)
		if len(idx) != len(want) {
			t.Fatalf("user %s: %d items in the model, %d kept", u, len(idx), len(want))
		}
		for j, i := range idx {
			if want[string(on.ItemKey(i))] != w[j] {
				t.Fatalf("user %s item %x: model weight %v, kept %v", u, on.ItemKey(i), w[j], want[string(on.ItemKey(i))])
			}
		}
		pairs += len(want)
	}
	if on.NumInteractions() != int64(pairs) {
		t.Fatalf("model holds %d pairs, the kept interactions %d", on.NumInteractions(), pairs)
	}
	wantU, wantI := modelFactors(on, idInt64, idInt64)

	h := newStreamHarness(t, mem, evSchemaInt, opts(n), snap, "")
	defer h.close()
	if err := h.feed(evs[half:], 41); err != nil {
		t.Fatal(err)
	}
	h.checkpoint(true)
	gu, gi := modelFactors(h.op.online, idInt64, idInt64)
	sameBits(t, "restored and continued user", gu, wantU)
	sameBits(t, "restored and continued item", gi, wantI)
	if !slices.Equal(h.op.online.UserGram(), on.UserGram()) || !slices.Equal(h.op.online.ItemGram(), on.ItemGram()) {
		t.Fatal("restored and continued Gram matrices differ")
	}
	sameLists(t, "user (restored)", lists(t, h.op.inter, idInt64), wu)

	// State written without a cap, restored with one: trimmed on open.
	free := newStreamHarness(t, mem, evSchemaInt, opts(0), nil, "")
	if err := free.feed(evs, 41); err != nil {
		t.Fatal(err)
	}
	uncapped := free.checkpoint(true)
	free.close()
	capped := newStreamHarness(t, mem, evSchemaInt, opts(n), uncapped, "")
	defer capped.close()
	sameLists(t, "user (uncapped state restored with a cap)", lists(t, capped.op.inter, idInt64), wu)
	sameLists(t, "item (uncapped state restored with a cap)", lists(t, capped.op.itemIntr, idInt64), wi)
}

// acceptedWeights lists the accepted events in input order with the
// weight the CASE expression gives them (wantLists' rule).
func acceptedWeights(evs []event) (acc []event, ws []float32) {
	for _, e := range evs {
		w := e.weight + 1
		switch e.ev {
		case "purchase":
			w = e.weight + 4
		case "cart":
			w = e.weight + 2
		}
		if e.null != "" || math.IsNaN(w) || w <= 0 {
			continue
		}
		acc, ws = append(acc, e), append(ws, float32(w))
	}
	return acc, ws
}

// TestStreamHalfLife: with update half_life H the stored lists hold
// each accepted interaction's weight inflated as w·2^((t−base)/H) for
// its sequence number t (brute force, after a rebase moved the base); a
// model trained from scratch on the decayed weights w·2^(−(T−t)/H) (T
// the interactions applied) equals the operator's model retrained on
// its inflated weights with the scaled α, within float rounding; and a
// run restored from a mid-stream checkpoint continues bitwise like the
// uninterrupted one.
func TestStreamHalfLife(t *testing.T) {
	const hl = 40 // a rebase (every 32 half-lives: 1280 interactions) falls inside
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rng := rand.New(rand.NewPCG(71, 72))
	evs := genEvents(rng, 2500, 50, 30)
	for j := range evs {
		evs[j].weight = float64(rng.IntN(4)) // no zero weight after the CASE (+1 at least)
	}
	opts := streamOptions(t)
	opts.Update.HalfLife = hl
	opts.Update.RetrainGrowth = 0
	// Checkpoints before and after the rebase.
	cuts := []int{1100, 1800}
	ref := newStreamHarness(t, mem, evSchemaInt, opts, nil, "")
	defer ref.close()
	var snaps []*arrowexec.RestoreState
	from := 0
	for _, c := range cuts {
		if err := ref.feed(evs[from:c], 37); err != nil {
			t.Fatal(err)
		}
		snaps, from = append(snaps, ref.checkpoint(true)), c
	}
	if err := ref.feed(evs[from:], 37); err != nil {
		t.Fatal(err)
	}
	ref.checkpoint(true)
	base := ref.op.sm.DecayBase
	acc, ws := acceptedWeights(evs)
	if base != DecayRebase*hl || ref.op.sm.Applied != int64(len(acc)) {
		t.Fatalf("base %d after %d interactions (%d accepted), want one rebase to %d", base, ref.op.sm.Applied, len(acc), DecayRebase*hl)
	}
	wu, wi := map[string][]string{}, map[string][]string{}
	for seq, e := range acc {
		bits := math.Float32bits(float32(float64(ws[seq]) * math.Exp2(float64(int64(seq)-base)/hl)))
		u, i := fmt.Sprint(e.user), fmt.Sprint(e.item)
		wu[u] = append(wu[u], fmt.Sprintf("%08x|%x", bits, int64Key(e.item)))
		wi[i] = append(wi[i], fmt.Sprintf("%08x|%x", bits, int64Key(e.user)))
	}
	sameLists(t, "user", lists(t, ref.op.inter, idInt64), wu)
	sameLists(t, "item", lists(t, ref.op.itemIntr, idInt64), wi)
	wantU, wantI := modelFactors(ref.op.online, idInt64, idInt64)

	// Restore mid-stream (before and after the rebase) and continue:
	// bitwise the uninterrupted run.
	for j, snap := range snaps {
		h := newStreamHarness(t, mem, evSchemaInt, opts, snap, "")
		// The same update boundaries as the uninterrupted run: its later
		// checkpoints too.
		from := cuts[j]
		for _, c := range cuts[j+1:] {
			if err := h.feed(evs[from:c], 37); err != nil {
				t.Fatal(err)
			}
			h.checkpoint(true)
			from = c
		}
		if err := h.feed(evs[from:], 37); err != nil {
			t.Fatal(err)
		}
		h.checkpoint(true)
		gu, gi := modelFactors(h.op.online, idInt64, idInt64)
		sameBits(t, fmt.Sprintf("restored at %d and continued: user", cuts[j]), gu, wantU)
		sameBits(t, fmt.Sprintf("restored at %d and continued: item", cuts[j]), gi, wantI)
		sameLists(t, "user (restored)", lists(t, h.op.inter, idInt64), wu)
		h.close()
	}

	// State of a run without half_life, restored with one whose 32
	// half-lives passed many times over: rebased at once (its weights as
	// old as the stream's first interaction underflow), and it goes on.
	opts0 := streamOptions(t)
	opts0.Update.RetrainGrowth = 0
	old := newStreamHarness(t, mem, evSchemaInt, opts0, nil, "")
	if err := old.feed(evs[:2000], 37); err != nil {
		t.Fatal(err)
	}
	oldSnap := old.checkpoint(true)
	old.close()
	opts10 := opts
	up := *opts.Update
	up.HalfLife = 10
	opts10.Update = &up
	late := newStreamHarness(t, mem, evSchemaInt, opts10, oldSnap, "")
	if want := (int64(2000) / (DecayRebase * 10)) * DecayRebase * 10; late.op.sm.DecayBase != want {
		t.Fatalf("base %d after restoring 2000 undecayed interactions with half_life 10, want %d", late.op.sm.DecayBase, want)
	}
	if err := late.feed(evs[2000:], 37); err != nil {
		t.Fatal(err)
	}
	late.checkpoint(true)
	late.close()

	// From scratch on the decayed weights, rows in the same dense order;
	// both retrained with exact solves (CG's few steps at this small λ
	// would amplify the float rounding in which the two differ).
	on := ref.op.online
	on.cfg.Solver = SolverCholesky
	fresh := sameRows(t, on)
	T := int64(len(acc))
	var decayed []Interaction
	for seq, e := range acc {
		decayed = append(decayed, Interaction{User: int64Key(e.user), Item: int64Key(e.item),
			Weight: float32(float64(ws[seq]) * math.Exp2(-float64(T-int64(seq))/hl))})
	}
	fresh.AddHistory(decayed)
	ctx := context.Background()
	for _, m := range []*Online{on, fresh} {
		if err := m.Retrain(ctx, false); err != nil {
			t.Fatal(err)
		}
	}
	worst := userFactorGap(on, fresh)
	t.Logf("from scratch on the decayed weights vs the inflated weights with α scaled: largest user factor difference %.2g", worst)
	if worst > 1e-3 {
		t.Fatalf("models differ by %.2g (relative)", worst)
	}
	// And the decay matters: without it the model is another one.
	plain := sameRows(t, on)
	for seq, e := range acc {
		plain.AddHistory([]Interaction{{User: int64Key(e.user), Item: int64Key(e.item), Weight: ws[seq]}})
	}
	if err := plain.Retrain(ctx, false); err != nil {
		t.Fatal(err)
	}
	diff := userFactorGap(on, plain)
	if diff < 100*worst || diff < 1e-2 {
		t.Fatalf("the undecayed model differs by only %.2g (decayed vs from scratch: %.2g)", diff, worst)
	}
}

// sameRows returns an empty-history Online with on's config and on's
// users and items in on's dense order (factors copied).
func sameRows(t *testing.T, on *Online) *Online {
	t.Helper()
	m, err := NewOnline(OnlineOptions{Config: on.Config()})
	if err != nil {
		t.Fatal(err)
	}
	for u := int32(0); u < int32(on.NumUsers()); u++ {
		m.SetUser(on.UserKey(u), on.UserVector(u))
	}
	for i := int32(0); i < int32(on.NumItems()); i++ {
		m.SetItem(on.ItemKey(i), on.ItemVector(i))
	}
	return m
}

// userFactorGap is the largest relative difference between a's and b's
// user factors (same dense indices).
func userFactorGap(a, b *Online) float64 {
	worst := 0.0
	for u := int32(0); u < int32(a.NumUsers()); u++ {
		x, y := a.UserVector(u), b.UserVector(u)
		for j := range x {
			worst = max(worst, math.Abs(float64(x[j]-y[j]))/(1+math.Abs(float64(y[j]))))
		}
	}
	return worst
}

// prequentialOptions are streamOptions updating every 100 interactions
// with the live prequential meter pq.
func prequentialOptions(t testing.TB, pq PrequentialOptions) RecommendOptions {
	o := streamOptions(t)
	o.Update.Every = 100
	o.Update.Prequential = &pq
	return o
}

// TestStreamPrequentialLive: the operator's live prequential figures
// (Stats) equal a PrequentialMeter run offline over the same stream in the
// same batches against an Online driven as the operator drives it (first
// batch: a full training, not scored; then Observe before each Apply, and
// a warm retrain whenever the pairs grew RetrainGrowth times), bit for bit;
// and the update counters count what the offline run did.
func TestStreamPrequentialLive(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rng := rand.New(rand.NewPCG(95, 96))
	evs := genEvents(rng, 2000, 60, 45)
	pq := PrequentialOptions{K: 5, Window: 70}
	o := prequentialOptions(t, pq)
	o.Update.RetrainGrowth = 1.5
	h := newStreamHarness(t, mem, evSchemaInt, o, nil, "")
	defer h.close()
	if err := h.feed(evs, 100); err != nil { // an update after every batch
		t.Fatal(err)
	}
	got, ok := h.spec.Stats()
	if !ok || got.Prequential == nil {
		t.Fatalf("no live prequential figures: %+v %v", got, ok)
	}

	// The oracle.
	on, err := NewOnline(OnlineOptions{Config: o.Config, GramRefresh: o.Update.GramRefresh})
	if err != nil {
		t.Fatal(err)
	}
	meter, err := NewPrequentialMeter(pq, 1)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var base int64
	var full, newUsers, newItems int64
	for lo := 0; lo < len(evs); lo += 100 {
		var batch []Interaction
		for _, e := range evs[lo:min(lo+100, len(evs))] {
			batch = append(batch, Interaction{User: int64Key(e.user), Item: int64Key(e.item), Weight: float32(caseWeight(e))})
		}
		if lo == 0 {
			on.AddHistory(batch)
			if err := on.Retrain(ctx, false); err != nil {
				t.Fatal(err)
			}
			base, full = on.NumInteractions(), 1
			newUsers, newItems = int64(on.NumUsers()), int64(on.NumItems())
			continue
		}
		if err := meter.Observe(on, batch); err != nil {
			t.Fatal(err)
		}
		st, err := on.Apply(ctx, batch)
		if err != nil || st.Failed != nil {
			t.Fatal(err, st.Failed)
		}
		newUsers, newItems = newUsers+int64(st.NewUsers), newItems+int64(st.NewItems)
		if float64(on.NumInteractions()) >= o.Update.RetrainGrowth*float64(base) {
			if err := on.Retrain(ctx, true); err != nil {
				t.Fatal(err)
			}
			base = on.NumInteractions()
			full++
		}
	}
	want := prequentialStats(meter)
	if *got.Prequential != *want {
		t.Fatalf("live prequential\n%+v\nwant (offline)\n%+v", *got.Prequential, *want)
	}
	if want.Counts.Warm < 500 || want.Counts.ColdUsers == 0 || want.Recent.Events != 70 || full < 2 {
		t.Fatalf("the stream should have many warm events, some cold users, a full window and a retrain: %+v, %d full trainings", want, full)
	}
	if want.HR <= want.Popularity.HR() {
		t.Logf("model HR@5 %.3f not above popularity's %.3f on this stream", want.HR, want.Popularity.HR())
	}
	if got.Updates != int64(len(evs)/100) || got.Applied != int64(len(evs)) || got.FullTrainings != full || got.Interactions != on.NumInteractions() ||
		got.Users != on.NumUsers() || got.Items != on.NumItems() || got.NewUsers != newUsers || got.NewItems != newItems || got.FailedRows != 0 {
		t.Fatalf("stats %+v; offline: %d full trainings, %d pairs, %d users, %d items", got, full, on.NumInteractions(), on.NumUsers(), on.NumItems())
	}
}

// TestStreamPrequentialRestore: a job restored from a checkpoint taken
// mid-stream ends with the live prequential figures of the run that never
// stopped, bit for bit (counts, sums, the Recent window, which has wrapped
// at the checkpoint, and Every's sample position); a meter whose options
// changed starts from zero.
func TestStreamPrequentialRestore(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rng := rand.New(rand.NewPCG(97, 98))
	evs := genEvents(rng, 2400, 60, 45)
	o := prequentialOptions(t, PrequentialOptions{K: 5, Window: 70, Every: 3})
	half := 1300
	ref := newStreamHarness(t, mem, evSchemaInt, o, nil, "")
	defer ref.close()
	if err := ref.feed(evs[:half], 100); err != nil {
		t.Fatal(err)
	}
	snap := ref.checkpoint(true)
	mid, _ := ref.spec.Stats()
	if w := ref.op.meter.windows[0]; mid.Prequential.Counts.Warm <= 70 || w.next == 0 || mid.Prequential.Counts.Below == 0 {
		t.Fatalf("at the checkpoint the window should have wrapped and Every skipped events: %+v, next %d", *mid.Prequential, w.next)
	}
	if err := ref.feed(evs[half:], 100); err != nil {
		t.Fatal(err)
	}
	ref.checkpoint(true)
	want, _ := ref.spec.Stats()

	h := newStreamHarness(t, mem, evSchemaInt, o, snap, "")
	defer h.close()
	if got, _ := h.spec.Stats(); *got.Prequential != *mid.Prequential {
		t.Fatalf("restored figures\n%+v\nwant (at the checkpoint)\n%+v", *got.Prequential, *mid.Prequential)
	}
	if err := h.feed(evs[half:], 100); err != nil {
		t.Fatal(err)
	}
	h.checkpoint(true)
	got, _ := h.spec.Stats()
	if *got.Prequential != *want.Prequential {
		t.Fatalf("figures after the restore\n%+v\nwant (uninterrupted)\n%+v", *got.Prequential, *want.Prequential)
	}
	if !slices.Equal(h.op.meter.windows[0].ranks, ref.op.meter.windows[0].ranks) || h.op.meter.windows[0].next != ref.op.meter.windows[0].next {
		t.Fatal("the Recent window's ranks differ from the uninterrupted run's")
	}

	// Other options: the checkpoint's figures do not apply.
	o2 := o
	u2 := *o.Update
	pq2 := PrequentialOptions{K: 10, Window: 70, Every: 3}
	u2.Prequential = &pq2
	o2.Update = &u2
	h2 := newStreamHarness(t, mem, evSchemaInt, o2, snap, "")
	defer h2.close()
	if got, _ := h2.spec.Stats(); got.Prequential.Counts != (PrequentialCounts{}) {
		t.Fatalf("a meter with other options restored %+v", got.Prequential.Counts)
	}
}
