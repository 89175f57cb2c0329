package crashtest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/riffle-dev/riffle/checkpoint"
	"github.com/riffle-dev/riffle/internal/kafkatest"
	"github.com/riffle-dev/riffle/ml"
	"github.com/riffle-dev/riffle/sources/parquet"
)

// recsYAML is the recommender crash test's job: the streaming recommend
// step (Pebble state) over the crash topic, updating every 500
// interactions and exporting a version at every checkpoint.
const recsYAML = `# The recommender crash test's job (internal/crashtest).
name: crash-recs
parallelism: 2
source:
  kafka:
    brokers: %s
    topic: %s
    start: earliest
    max_batch_rows: 1000
    max_batch_delay: 50ms
    fields:
      - {name: user_id, type: int64, required: true}
      - {name: item_id, type: int64, required: true}
      - {name: event_type, type: string, required: true}
      - {name: weight, type: float64, required: true}
      - {name: event_time, type: timestamp, required: true}
steps:
  - recommend:
      user: user_id
      item: item_id
      weight: weight
      factors: 8
      iterations: 4
      regularization: 0.1
      k: 5
      seed: 1
      export: {path: %s, embeddings: true, retain: 3}
      state: {backend: pebble, dir: %s}
      update: {every: 500, export_every: {checkpoints: 1}}
sink:
  file: {path: out, format: parquet}
`

// recsNode is the recommend step's node name in the planned graph.
const recsNode = "recommend-1"

// TestCrashRecoveryRecommend: the streaming recommender under SIGKILLs
// (package doc). Every interaction is applied exactly once: after the
// kills, restarts at other parallelisms and a last run to the end of the
// topic, every user's and item's stored history equals the fault-free
// run's and the input's, as multisets. Exports: a version once published
// never changes nor comes back after retention removed it, it is
// published only by a checkpoint that completed, LATEST always names a
// complete version, and its lists are well formed (ranks 1..k, scores not
// increasing, no item the user already has, every item known).
func TestCrashRecoveryRecommend(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test: skipped with -short (builds riffle, runs it for about a minute)")
	}
	brokers := kafkatest.Brokers(t)
	began := time.Now()
	seed := crashSeed(t)
	kills := 12
	t.Logf("crash seed %d (replay with %s=%d), %d kills", seed, envSeed, seed, kills)
	rng := rand.New(rand.NewPCG(seed, 0x7265637321))

	dir, bin, input, topic := prepare(t, brokers, 11, "crash-recs")
	job := func(name string) string {
		f := filepath.Join(dir, name+".yaml")
		y := fmt.Sprintf(recsYAML, brokers, topic, filepath.Join(dir, name, "recs"), filepath.Join(dir, name, "state"))
		if err := os.WriteFile(f, []byte(y), 0o644); err != nil {
			t.Fatal(err)
		}
		return f
	}
	produced := make(chan error, 1)
	go func() { produced <- produce(brokers, topic, input) }()

	crash := newRunner(t, bin, job("crash"), filepath.Join(dir, "crash"))
	ex := &exportWatch{t: t, r: crash, root: filepath.Join(dir, "crash", "recs"), seen: map[string]string{}, gone: map[string]bool{}}
	counts := map[string]int{}
	for done := 0; done < kills; {
		var m string
		if rng.IntN(6) == 0 {
			crash.stopOnce(rng)
			m = "graceful-stop (SIGTERM)"
		} else {
			m = ex.killOnce(rng)
			done++
		}
		counts[m]++
		n := ex.check()
		t.Logf("run %2d (parallelism %d): %-24s %3d versions published so far", crash.runs, crash.lastPar, m, n)
	}
	if err := <-produced; err != nil {
		t.Fatal(err)
	}
	ends := endOffsetsOf(t, brokers, topic, dataRows)
	t.Logf("topic %s end offsets %v; runs by end: %v", topic, ends, counts)
	crash.finish(topic, ends, false)
	if n := ex.check(); n == 0 {
		t.Fatal("no export version was published")
	}
	clean := newRunner(t, bin, job("clean"), filepath.Join(dir, "clean"))
	clean.finish(topic, ends, false)

	got := readHistories(t, crash.ck)
	want := readHistories(t, clean.ck)
	oracle := inputHistories(t, input)
	compareHistories(t, "crashed run vs fault-free run", got, want)
	compareHistories(t, "fault-free run vs the input", want, oracle)
	t.Logf("recommender crash test passed: seed %d, %d kills, %d runs, %d users and %d items with identical histories, %d versions seen, %v",
		seed, kills, crash.runs, len(got.users), len(got.items), len(ex.seen), time.Since(began).Round(time.Second))
}

// exportWatch checks the export root of the crashed job after every run.
type exportWatch struct {
	t    *testing.T
	r    *runner
	root string
	seen map[string]string // published version -> hash of its _MODEL.json
	gone map[string]bool   // versions removed by retention
	// latest is the newest version LATEST named so far (0: none yet);
	// LATEST never moves back.
	latest int64
}

func isVersion(n string) bool { return strings.HasPrefix(n, "v") && len(n) == 7 }

// killOnce starts a run and kills it at a random moment, while a
// checkpoint is written, right after one completed, or right after a new
// version appeared.
func (e *exportWatch) killOnce(rng *rand.Rand) string {
	r := e.r
	r.t.Helper()
	modes := []string{"random-delay", "checkpoint-writing", "checkpoint-committed", "version-published"}
	mode := modes[rng.IntN(len(modes))]
	delay := time.Duration(50+rng.IntN(1500)) * time.Millisecond
	ckBefore, exBefore := names(r.ck), names(e.root)
	p := r.start(1 + rng.IntN(3))
	began := time.Now()
	var ok func() bool
	switch mode {
	case "checkpoint-writing":
		ok = func() bool { return appeared(r.ck, ckBefore, isStaging) }
	case "checkpoint-committed":
		ok = func() bool { return appeared(r.ck, ckBefore, isCheckpoint) }
	case "version-published":
		ok = func() bool { return appeared(e.root, exBefore, isVersion) }
	default:
		ok = func() bool { return time.Since(began) >= delay }
	}
	for !ok() {
		select {
		case err := <-p.done:
			r.failf("run %d (%s) exited by itself: %v", r.runs, mode, err)
		case <-time.After(time.Millisecond):
		}
		if time.Since(began) > eventTimeout {
			r.timeouts++
			break
		}
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		r.failf("kill: %v", err)
	}
	if err := <-p.done; err == nil {
		r.failf("run %d exited cleanly before its kill", r.runs)
	}
	return mode
}

// check verifies the export root (see TestCrashRecoveryRecommend) and
// returns how many versions were seen published so far.
func (e *exportWatch) check() int {
	e.t.Helper()
	ents, err := os.ReadDir(e.root)
	if err != nil && !os.IsNotExist(err) {
		e.r.failf("read export root: %v", err)
	}
	now := map[string]bool{}
	for _, d := range ents {
		n := d.Name()
		if !isVersion(n) {
			continue
		}
		now[n] = true
		data, err := os.ReadFile(filepath.Join(e.root, n, "_MODEL.json"))
		if err != nil {
			e.r.failf("published version %s has no readable _MODEL.json: %v", n, err)
		}
		sum := sha256.Sum256(data)
		h := hex.EncodeToString(sum[:])
		switch old, ok := e.seen[n]; {
		case e.gone[n]:
			e.r.failf("version %s was published again after retention removed it (run %d)", n, e.r.runs)
		case ok && old != h:
			e.r.failf("version %s was published twice: its _MODEL.json changed after run %d", n, e.r.runs)
		}
		e.seen[n] = h
	}
	for n := range e.seen {
		if !now[n] {
			e.gone[n] = true
		}
	}
	if _, err := os.Stat(filepath.Join(e.root, "LATEST")); os.IsNotExist(err) && e.latest == 0 {
		// A kill between the first version's rename and the first LATEST
		// leaves a version nobody points to yet: readers follow LATEST.
		return len(e.seen)
	}
	x, err := ml.OpenLatest(e.root)
	if err != nil {
		e.r.failf("after run %d LATEST does not open: %v", e.r.runs, err)
	}
	if x.Version < e.latest {
		e.r.failf("after run %d LATEST went back from version %d to %d", e.r.runs, e.latest, x.Version)
	}
	e.latest = x.Version
	if c := x.Manifest.Checkpoint; c != 0 && !checkpointCompleted(e.r.ck, c) {
		e.r.failf("version %d was published by checkpoint %d, which never completed", x.Version, c)
	}
	for _, f := range x.Manifest.Files {
		if _, err := os.Stat(filepath.Join(e.root, ml.VersionName(x.Version), f)); err != nil {
			e.r.failf("LATEST version %d lacks its file %s: %v", x.Version, f, err)
		}
	}
	checkLists(e.r, x)
	return len(e.seen)
}

// checkpointCompleted says whether checkpoint id completed: its directory
// exists, or a newer complete one does (retention removes older ones).
func checkpointCompleted(ck string, id uint64) bool {
	for _, c := range completeCheckpoints(ck) {
		if c >= id {
			return true
		}
	}
	return false
}

// checkLists checks a version's lists: for a sample of its users, ranks
// 1..n, scores not increasing, no item the user has (its seen list), every
// item in the item factors.
func checkLists(r *runner, x *ml.Export) {
	ctx := context.Background()
	uf, err := x.ReadFactors(ctx, "user_factors", nil)
	if err != nil {
		r.failf("version %d: user factors: %v", x.Version, err)
	}
	items, err := x.ReadFactors(ctx, "item_factors", nil)
	if err != nil {
		r.failf("version %d: item factors: %v", x.Version, err)
	}
	sample := uf.IDs
	if len(sample) > 200 {
		sample = sample[:200]
	}
	lists, err := x.Lists(ctx, sample)
	if err != nil {
		r.failf("version %d: lists: %v", x.Version, err)
	}
	for _, u := range sample {
		recs := lists[u]
		seen := uf.Seen[uf.Index[u]]
		for j, rc := range recs {
			switch {
			case rc.Rank != j+1:
				r.failf("version %d user %s: rank %d at position %d", x.Version, u, rc.Rank, j)
			case j > 0 && rc.Score > recs[j-1].Score:
				r.failf("version %d user %s: scores increase at rank %d", x.Version, u, rc.Rank)
			case slices.Contains(seen, rc.Item):
				r.failf("version %d user %s: recommended item %s is in the user's history", x.Version, u, rc.Item)
			}
			if _, ok := items.Index[rc.Item]; !ok {
				r.failf("version %d user %s: recommended item %s has no factors", x.Version, u, rc.Item)
			}
		}
	}
}

// histories are stored histories as sorted multisets of "partner|weight".
type histories struct {
	users, items map[string][]string
}

// readHistories reads the recommend node's stored histories from the
// newest complete checkpoint in ck.
func readHistories(t *testing.T, ck string) histories {
	t.Helper()
	c, err := checkpoint.Latest(ck)
	if err != nil {
		t.Fatal(err)
	}
	users, items, err := ml.ReadHistories(context.Background(), c.RestoreState(recsNode, 0, 1), c.Manifest.MaxParallelism)
	if err != nil {
		t.Fatalf("read the histories of checkpoint %d: %v", c.ID(), err)
	}
	h := histories{users: map[string][]string{}, items: map[string][]string{}}
	for _, side := range []struct {
		in  map[string][]ml.HistoryEntry
		out map[string][]string
	}{{users, h.users}, {items, h.items}} {
		for k, es := range side.in {
			for _, e := range es {
				side.out[k] = append(side.out[k], fmt.Sprintf("%x|%v", e.Partner, e.Weight))
			}
			slices.Sort(side.out[k])
		}
	}
	return h
}

// inputHistories is the brute-force oracle: every input row once.
func inputHistories(t *testing.T, input string) histories {
	t.Helper()
	src, err := parquet.New(parquet.Options{Paths: []string{input}})
	if err != nil {
		t.Fatal(err)
	}
	h := histories{users: map[string][]string{}, items: map[string][]string{}}
	key := func(v int64) string { return fmt.Sprintf("%x", ml.Int64Key(v)) }
	for b, err := range src.Batches(context.Background(), nil, 0) {
		if err != nil {
			t.Fatal(err)
		}
		s := b.Schema()
		col := func(name string) int { return s.FieldIndices(name)[0] }
		us := b.Column(col("user_id")).(*array.Int64)
		is := b.Column(col("item_id")).(*array.Int64)
		ws := b.Column(col("weight")).(*array.Float64)
		for i := 0; i < int(b.NumRows()); i++ {
			u, it, w := us.Value(i), is.Value(i), float32(ws.Value(i))
			h.users[string(ml.Int64Key(u))] = append(h.users[string(ml.Int64Key(u))], fmt.Sprintf("%s|%v", key(it), w))
			h.items[string(ml.Int64Key(it))] = append(h.items[string(ml.Int64Key(it))], fmt.Sprintf("%s|%v", key(u), w))
		}
		b.Release()
	}
	for _, m := range []map[string][]string{h.users, h.items} {
		for k := range m {
			slices.Sort(m[k])
		}
	}
	return h
}

func compareHistories(t *testing.T, what string, got, want histories) {
	t.Helper()
	for _, side := range []struct {
		name      string
		got, want map[string][]string
	}{{"user", got.users, want.users}, {"item", got.items, want.items}} {
		if len(side.got) != len(side.want) {
			t.Fatalf("%s: %d %ss, want %d", what, len(side.got), side.name, len(side.want))
		}
		for k, w := range side.want {
			if g := side.got[k]; !slices.Equal(g, w) {
				t.Fatalf("%s: %s %x: history of %d entries, want %d (first difference among %v vs %v)", what, side.name, k, len(g), len(w), head(g), head(w))
			}
		}
	}
}

func head(s []string) []string { return s[:min(len(s), 5)] }
