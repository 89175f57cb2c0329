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
	// A Gram refresh never falls inside these tests: Online does not
	// restore its refresh counters (see TestStreamRestoreBitwise).
	o.Update = &UpdateOptions{Every: 97, RetrainGrowth: 3, GramRefresh: 1 << 30}
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
		w := e.weight + 1
		switch e.ev {
		case "purchase":
			w = e.weight + 4
		case "cart":
			w = e.weight + 2
		}
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
// never stopped (dense indices and Gram matrices are restored exactly).
func TestStreamRestoreBitwise(t *testing.T) {
	for _, str := range []bool{false, true} {
		t.Run(fmt.Sprintf("string=%v", str), func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			schema, kind := evSchemaInt, idInt64
			if str {
				schema, kind = evSchemaStr, idString
			}
			rng := rand.New(rand.NewPCG(31, 32))
			evs := genEvents(rng, 2500, 70, 35)
			half := 1400
			ref := newStreamHarness(t, mem, schema, streamOptions(t), nil, "")
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

			h := newStreamHarness(t, mem, schema, streamOptions(t), moved, "")
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
		if v := h.spec.ModelVersion(); v != want {
			t.Fatalf("%s: ModelVersion %d, want %d (published in this run)", what, v, want)
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
		if st := l.Stats(); st.Users != on.NumUsers() || st.Items != on.NumItems() || st.Interactions != on.NumInteractions() {
			t.Fatalf("%s: live stats %+v, model %d users, %d items, %d interactions", what, st, on.NumUsers(), on.NumItems(), on.NumInteractions())
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
