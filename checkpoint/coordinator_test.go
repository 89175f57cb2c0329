package checkpoint_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/arrowexec/exectest"
	"github.com/riffle-dev/riffle/checkpoint"
	"github.com/riffle-dev/riffle/state"
)

const fingerprint = "test-job"

// keyedGraph is src (parallelism 2) -> Pebble counter (p) -> in-memory
// key group counter (p, sink), hash-partitioned by key, MaxParallelism 16.
func keyedGraph(t testing.TB, src *seqSource, p int, res *results) *arrowexec.Graph {
	g := arrowexec.NewGraph()
	g.SetMaxParallelism(16)
	s := g.AddSource("src", src, 2)
	pc := g.Add("pebble", &pebbleCount{backend: newPebble(t), res: res}, p, s.HashBy("k"))
	g.Add("mem", &memCount{res: res, sink: true}, p, pc.HashBy("k"))
	return g
}

// TestCheckpointsComplete: every checkpoint on disk is complete (every
// subtask of every node, sinks included) and consistent (the rows the
// sources had emitted before the barrier equal the rows every later stage
// had counted), only the newest Retain are kept, and no staging directory
// is left behind.
func TestCheckpointsComplete(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	dir := t.TempDir()
	gate := make(chan struct{})
	src := &seqSource{Batches: 400, Rows: 40, Keys: 100, GateAt: 200, Gate: gate, Delay: 20 * time.Microsecond}
	g := arrowexec.NewGraph()
	g.SetMaxParallelism(16)
	s := g.AddSource("src", src, 2)
	c1 := g.Add("c1", rowCounter{}, 3, s.HashBy("k"))
	c2 := g.Add("c2", rowCounter{}, 2, c1.Rebalance())
	g.Add("sink", rowCounter{sink: true}, 1, c2.Rebalance())
	log, _ := newLog()
	r := start(t, g, nil, checkpoint.Options{Dir: dir, Interval: 2 * time.Millisecond, Retain: 3, JobFingerprint: fingerprint, Log: log}, mem)
	r.waitCompleted(t, 5)
	close(gate)
	jobErr, coordErr := r.wait(t)
	if jobErr != nil || coordErr != nil {
		t.Fatalf("job: %v, coordinator: %v", jobErr, coordErr)
	}
	st := r.c.Stats()
	checkHistory(t, r.c.History(), st)
	infos, err := checkpoint.List(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != 3 {
		t.Fatalf("%d checkpoints kept, want 3 (Retain): %+v", len(infos), infos)
	}
	for i, inf := range infos {
		if inf.InProgress || inf.Err != nil {
			t.Fatalf("checkpoint %d: in progress %v, err %v", inf.ID, inf.InProgress, inf.Err)
		}
		if i == len(infos)-1 && inf.ID != st.LastID {
			t.Fatalf("newest kept checkpoint %d, last completed %d", inf.ID, st.LastID)
		}
		c, err := checkpoint.Load(inf.Path)
		if err != nil {
			t.Fatal(err)
		}
		sums := map[string]int64{}
		for _, nm := range c.Manifest.Nodes {
			if len(nm.Subtasks) != nm.Parallelism {
				t.Fatalf("checkpoint %d node %s: %d subtasks, parallelism %d", inf.ID, nm.Name, len(nm.Subtasks), nm.Parallelism)
			}
			for sub := range nm.Subtasks {
				rs := c.RestoreState(nm.Name, sub, nm.Parallelism)
				blob := rs.Operator[sub]
				if len(blob) == 0 {
					t.Fatalf("checkpoint %d: no state for %s/%d", inf.ID, nm.Name, sub)
				}
				if nm.Name == "src" {
					var p struct{ Next int }
					if err := json.Unmarshal(blob, &p); err != nil {
						t.Fatal(err)
					}
					sums["src"] += int64(p.Next * src.Rows)
					continue
				}
				n, err := strconv.ParseInt(string(blob), 10, 64)
				if err != nil {
					t.Fatal(err)
				}
				sums[nm.Name] += n
			}
		}
		if sums["src"] != sums["c1"] || sums["c1"] != sums["c2"] || sums["c2"] != sums["sink"] {
			t.Errorf("checkpoint %d: rows before the barrier differ: %v", inf.ID, sums)
		}
		if len(c.Manifest.Sources) != 2 || !strings.Contains(string(c.Manifest.Sources[1].Position), `"subtask":1`) {
			t.Errorf("checkpoint %d: source positions %+v", inf.ID, c.Manifest.Sources)
		}
	}
	for _, n := range dirNames(t, dir) {
		if strings.HasSuffix(n, ".inprogress") {
			t.Errorf("staging directory %s left behind", n)
		}
	}
	t.Logf("stats %+v", st)
}

// TestRestoreRedistributes: a job with Pebble keyed state (files through
// Task.SnapshotDir) and in-memory key group state at parallelism 3 crashes
// after some checkpoints; restored from the latest at parallelism 2 and 5,
// it ends with every key's count exact: each key group was restored by
// exactly the subtask that owns it now, and the sources resumed from the
// checkpointed positions.
func TestRestoreRedistributes(t *testing.T) {
	for _, p2 := range []int{2, 5} {
		t.Run(fmt.Sprintf("3->%d", p2), func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			dir := t.TempDir()
			log, _ := newLog()
			opts := checkpoint.Options{Dir: dir, Interval: 2 * time.Millisecond, JobFingerprint: fingerprint, Log: log}
			gate := make(chan struct{})
			src := &seqSource{Batches: 300, Rows: 64, Keys: 500, GateAt: 250, Gate: gate, Delay: 100 * time.Microsecond}
			r := start(t, keyedGraph(t, src, 3, nil), nil, opts, mem)
			r.waitCompleted(t, 2)
			r.crash()

			chk, err := checkpoint.Latest(dir)
			if err != nil {
				t.Fatal(err)
			}
			var pos struct{ Next int }
			_ = json.Unmarshal(chk.Manifest.Sources[0].Position, &pos)
			t.Logf("restoring checkpoint %d (source 0 at batch %d of %d)", chk.ID(), pos.Next, src.Batches)

			res := newResults()
			src2 := &seqSource{Batches: src.Batches, Rows: src.Rows, Keys: src.Keys}
			r2 := start(t, keyedGraph(t, src2, p2, res), chk, opts, mem)
			for _, n := range dirNames(t, dir) {
				if strings.HasSuffix(n, ".inprogress") {
					t.Errorf("staging directory %s of the crashed run not removed", n)
				}
			}
			if jobErr, coordErr := r2.wait(t); jobErr != nil || coordErr != nil {
				t.Fatalf("job: %v, coordinator: %v", jobErr, coordErr)
			}
			want := src.expected(t, 2)
			res.check(t, "pebble", want)
			res.check(t, "mem", want)
		})
	}
}

// TestSavepoint: a savepoint goes to its own directory, is not removed by
// retention, and stop-with-savepoint ends the job at the savepoint: a job
// restored from it (at another parallelism) ends with exact counts.
func TestSavepoint(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	dir, spDir := t.TempDir(), t.TempDir()
	log, _ := newLog()
	opts := checkpoint.Options{Dir: dir, Interval: 2 * time.Millisecond, Retain: 1, JobFingerprint: fingerprint, Log: log}
	gate := make(chan struct{})
	src := &seqSource{Batches: 300, Rows: 64, Keys: 500, GateAt: 200, Gate: gate, Delay: 100 * time.Microsecond}
	r := start(t, keyedGraph(t, src, 3, nil), nil, opts, mem)
	ctx := context.Background()
	sp1 := filepath.Join(spDir, "sp1")
	path, err := r.c.TriggerSavepoint(ctx, sp1)
	if err != nil || path != sp1 {
		t.Fatalf("savepoint: %q, %v", path, err)
	}
	if _, err := r.c.TriggerSavepoint(ctx, sp1); err == nil {
		t.Fatal("savepoint into an existing directory succeeded")
	}
	n := r.c.Stats().Completed
	r.waitCompleted(t, n+3)
	c1, err := checkpoint.Load(sp1)
	if err != nil {
		t.Fatalf("savepoint after retention: %v", err)
	}
	if !c1.Manifest.Savepoint {
		t.Fatal("manifest does not say savepoint")
	}
	if infos := completeInfos(t, dir); len(infos) != 1 {
		t.Fatalf("%d checkpoints in %s, want 1 (Retain)", len(infos), dir)
	}
	sp2 := filepath.Join(spDir, "sp2")
	if _, err := r.c.StopWithSavepoint(ctx, sp2); err != nil {
		t.Fatal(err)
	}
	if jobErr, coordErr := r.wait(t); jobErr != nil || coordErr != nil {
		t.Fatalf("job: %v, coordinator: %v", jobErr, coordErr)
	}
	chk, err := checkpoint.Load(sp2)
	if err != nil {
		t.Fatal(err)
	}
	if chk.ID() <= c1.ID() {
		t.Fatalf("savepoint ids %d then %d", c1.ID(), chk.ID())
	}
	res := newResults()
	src2 := &seqSource{Batches: src.Batches, Rows: src.Rows, Keys: src.Keys}
	r2 := start(t, keyedGraph(t, src2, 5, res), chk, opts, mem)
	if jobErr, coordErr := r2.wait(t); jobErr != nil || coordErr != nil {
		t.Fatalf("job: %v, coordinator: %v", jobErr, coordErr)
	}
	want := src.expected(t, 2)
	res.check(t, "pebble", want)
	res.check(t, "mem", want)
}

// TestRunGracefulStop: checkpoint.Run stops on ctx cancellation with a
// final checkpoint; a second Run resumes from Latest and ends exact.
func TestRunGracefulStop(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	dir := t.TempDir()
	log, _ := newLog()
	src := &seqSource{Batches: 300, Rows: 64, Keys: 500, GateAt: 150, Gate: make(chan struct{}), Delay: 100 * time.Microsecond}
	cfg := checkpoint.RunConfig{
		Options:    checkpoint.Options{Dir: dir, Interval: 5 * time.Millisecond, JobFingerprint: fingerprint, Log: log},
		RunOptions: arrowexec.RunOptions{Mem: mem},
	}
	ctx, cancel := context.WithCancel(context.Background())
	var coord *checkpoint.Coordinator
	started := make(chan struct{})
	cfg.OnStart = func(c *checkpoint.Coordinator, _ *arrowexec.Job) { coord = c; close(started) }
	done := make(chan error, 1)
	go func() {
		done <- checkpoint.Run(ctx, cfg, func(from *checkpoint.Checkpoint) (*arrowexec.Graph, error) {
			if from != nil {
				return nil, errors.New("first run restored something")
			}
			return keyedGraph(t, src, 3, nil), nil
		})
	}()
	<-started
	exectest.WaitFor(t, "2 completed checkpoints", func() bool { return coord.Stats().Completed >= 2 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	final := coord.Stats().LastID
	res := newResults()
	cfg.OnStart = nil
	err := checkpoint.Run(context.Background(), cfg, func(from *checkpoint.Checkpoint) (*arrowexec.Graph, error) {
		if from == nil || from.ID() != final {
			return nil, fmt.Errorf("restored %v, want the final checkpoint %d", from, final)
		}
		return keyedGraph(t, &seqSource{Batches: src.Batches, Rows: src.Rows, Keys: src.Keys}, 4, res), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := src.expected(t, 2)
	res.check(t, "pebble", want)
	res.check(t, "mem", want)
}

// TestRestoreRefusesOtherJob: a checkpoint is not restored into a job with
// another fingerprint or MaxParallelism.
func TestRestoreRefusesOtherJob(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	dir := makeCheckpoints(t, mem, 1)
	chk, err := checkpoint.Latest(dir)
	if err != nil {
		t.Fatal(err)
	}
	src := &seqSource{Batches: 1, Rows: 1, Keys: 1}
	c, _ := checkpoint.NewCoordinator(checkpoint.Options{Dir: t.TempDir(), JobFingerprint: "another-job"})
	_, err = c.RunOptions(keyedGraph(t, src, 2, nil), chk, arrowexec.RunOptions{})
	if !errors.Is(err, checkpoint.ErrFingerprintMismatch) || !strings.Contains(err.Error(), "another-job") {
		t.Fatalf("got %v, want ErrFingerprintMismatch naming the job", err)
	}
	c, _ = checkpoint.NewCoordinator(checkpoint.Options{Dir: t.TempDir(), JobFingerprint: fingerprint})
	g := keyedGraph(t, src, 2, nil)
	g.SetMaxParallelism(32)
	if _, err = c.RunOptions(g, chk, arrowexec.RunOptions{}); !errors.Is(err, checkpoint.ErrIncompatible) {
		t.Fatalf("got %v, want ErrIncompatible", err)
	}
}

// makeCheckpoints runs the keyed job until n checkpoints completed,
// crashes it, and returns the checkpoint directory (Retain 10).
func makeCheckpoints(t testing.TB, mem memory.Allocator, n int64) string {
	dir := t.TempDir()
	log, _ := newLog()
	opts := checkpoint.Options{Dir: dir, Interval: 2 * time.Millisecond, Retain: 10, JobFingerprint: fingerprint, Log: log}
	src := &seqSource{Batches: 300, Rows: 64, Keys: 500, GateAt: 150, Gate: make(chan struct{}), Delay: 50 * time.Microsecond}
	r := start(t, keyedGraph(t, src, 3, nil), nil, opts, mem)
	r.waitCompleted(t, n)
	r.crash()
	return dir
}

// TestCorruptCheckpointSkipped: a newest checkpoint with a flipped byte in
// a state file, a truncated or altered manifest, or a missing file is
// skipped with a log line naming it and the reason; the previous one is
// used, and a job restored from it ends exact.
func TestCorruptCheckpointSkipped(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	base := makeCheckpoints(t, mem, 3)
	infos := completeInfos(t, base)
	if len(infos) < 2 {
		t.Fatalf("%d checkpoints", len(infos))
	}
	newest, prev := infos[len(infos)-1], infos[len(infos)-2]

	flip := func(t *testing.T, name string) {
		data, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		data[len(data)/2] ^= 0x40
		if err := os.WriteFile(name, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	stateFile := func(t *testing.T, chk string) string {
		m, _ := filepath.Glob(filepath.Join(chk, "pebble", "*", "kg-*.state"))
		if len(m) == 0 {
			t.Fatal("no Pebble state file in the checkpoint")
		}
		return m[0]
	}
	cases := []struct {
		name   string
		break_ func(t *testing.T, chk string)
		reason string
	}{
		{"flipped byte in state file", func(t *testing.T, chk string) { flip(t, stateFile(t, chk)) }, "checksum mismatch"},
		{"flipped byte in key group blobs", func(t *testing.T, chk string) {
			flip(t, filepath.Join(chk, "mem", "0", checkpoint.KeyGroupFileName))
		}, "checksum mismatch"},
		{"flipped byte in manifest", func(t *testing.T, chk string) { flip(t, filepath.Join(chk, checkpoint.ManifestName)) }, "MANIFEST"},
		{"truncated manifest", func(t *testing.T, chk string) {
			name := filepath.Join(chk, checkpoint.ManifestName)
			fi, _ := os.Stat(name)
			if err := os.Truncate(name, fi.Size()/2); err != nil {
				t.Fatal(err)
			}
		}, "truncated"},
		{"unparsable manifest", func(t *testing.T, chk string) {
			os.WriteFile(filepath.Join(chk, checkpoint.ManifestName), []byte("{"), 0o644)
		}, "no checksum"},
		{"missing manifest", func(t *testing.T, chk string) { os.Remove(filepath.Join(chk, checkpoint.ManifestName)) }, "missing"},
		{"deleted state file", func(t *testing.T, chk string) { os.Remove(stateFile(t, chk)) }, "missing"},
		{"truncated state file", func(t *testing.T, chk string) {
			name := stateFile(t, chk)
			fi, _ := os.Stat(name)
			os.Truncate(name, fi.Size()-1)
		}, "size"},
		{"deleted operator file", func(t *testing.T, chk string) {
			os.Remove(filepath.Join(chk, "src", "1", checkpoint.OperatorFileName))
		}, "missing"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			copyDir(t, base, dir)
			chk := filepath.Join(dir, filepath.Base(newest.Path))
			tc.break_(t, chk)
			log, lb := newLog()
			c, err := checkpoint.LatestFS(nil, log, dir)
			if err != nil {
				t.Fatal(err)
			}
			if c.ID() != prev.ID {
				t.Fatalf("Latest returned checkpoint %d, want %d", c.ID(), prev.ID)
			}
			line := lb.String()
			for _, want := range []string{"level=WARN msg=\"checkpoint: skipping unusable checkpoint\"", "checkpoint=" + chk, tc.reason,
				"level=WARN msg=\"checkpoint: falling back to an older checkpoint", "checkpoint=" + filepath.Join(dir, filepath.Base(prev.Path))} {
				if !strings.Contains(line, want) {
					t.Fatalf("log %q does not contain %q", line, want)
				}
			}
			if _, err := checkpoint.Load(chk); !checkpoint.IsCorruption(err) {
				t.Fatalf("Load of the broken checkpoint: %v, want a corruption error", err)
			}
			// List verifies every file too: the broken one is corrupt with
			// the reason, the others are fine.
			infos, err := checkpoint.List(dir)
			if err != nil {
				t.Fatal(err)
			}
			for _, inf := range infos {
				switch {
				case inf.Path == chk && (!checkpoint.IsCorruption(inf.Err) || !strings.Contains(inf.Err.Error(), tc.reason)):
					t.Fatalf("List: broken checkpoint %s has error %v, want a corruption error saying %q", chk, inf.Err, tc.reason)
				case inf.Path != chk && inf.Err != nil:
					t.Fatalf("List: intact checkpoint %s has error %v", inf.Path, inf.Err)
				}
			}
			if one, err := checkpoint.List(chk); err != nil || len(one) != 1 || one[0].Path != chk || one[0].Err == nil {
				t.Fatalf("List of the broken checkpoint itself: %+v, %v; want it, corrupt", one, err)
			}
			if i > 0 {
				return
			}
			// The previous checkpoint restores exactly.
			res := newResults()
			src := &seqSource{Batches: 300, Rows: 64, Keys: 500}
			r := start(t, keyedGraph(t, src, 2, res), c, checkpoint.Options{Dir: dir, Interval: 5 * time.Millisecond, JobFingerprint: fingerprint, Log: log}, mem)
			if jobErr, coordErr := r.wait(t); jobErr != nil || coordErr != nil {
				t.Fatalf("job: %v, coordinator: %v", jobErr, coordErr)
			}
			want := src.expected(t, 2)
			res.check(t, "pebble", want)
			res.check(t, "mem", want)
		})
	}
	t.Run("all corrupt", func(t *testing.T) {
		dir := t.TempDir()
		copyDir(t, base, dir)
		for _, inf := range infos {
			os.Remove(filepath.Join(dir, filepath.Base(inf.Path), checkpoint.ManifestName))
		}
		log, _ := newLog()
		_, err := checkpoint.LatestFS(nil, log, dir)
		if !errors.Is(err, checkpoint.ErrNoCheckpoint) || !errors.Is(err, checkpoint.ErrUnusableCheckpoints) || !checkpoint.IsCorruption(err) {
			t.Fatalf("got %v, want ErrNoCheckpoint and ErrUnusableCheckpoints wrapping the corruption", err)
		}
		if _, err := checkpoint.LatestFS(nil, log, t.TempDir()); !errors.Is(err, checkpoint.ErrNoCheckpoint) || errors.Is(err, checkpoint.ErrUnusableCheckpoints) {
			t.Fatalf("empty directory: got %v, want ErrNoCheckpoint only", err)
		}
	})
}

// TestDiskFullAbandonsCheckpoint: a write failing with ENOSPC while a
// checkpoint is written abandons it (staging directory removed, logged);
// the previous checkpoint stays intact and the next ones succeed.
func TestDiskFullAbandonsCheckpoint(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	dir := t.TempDir()
	log, lb := newLog()
	fs := &checkpoint.ErrorFS{Inject: func(op checkpoint.Op, path string) error {
		if op == checkpoint.OpWrite && strings.Contains(path, "chk-3.inprogress") {
			return checkpoint.ErrDiskFull
		}
		return nil
	}}
	opts := checkpoint.Options{Dir: dir, Interval: 2 * time.Millisecond, Retain: 10, JobFingerprint: fingerprint, Log: log, FS: fs}
	src := &seqSource{Batches: 300, Rows: 64, Keys: 500, GateAt: 150, Gate: make(chan struct{}), Delay: 50 * time.Microsecond}
	r := start(t, keyedGraph(t, src, 3, nil), nil, opts, mem)
	r.waitCompleted(t, 4)
	r.crash()
	st := r.c.Stats()
	if st.Failed != 1 {
		t.Fatalf("stats %+v, want exactly 1 failed", st)
	}
	checkHistory(t, r.c.History(), st)
	for _, h := range r.c.History() {
		if (h.ID == 3) != (h.Status == "failed") || (h.ID == 3 && !strings.Contains(h.Error, "no space left on device")) {
			t.Fatalf("history %+v: want checkpoint 3, and only it, failed with the disk full", h)
		}
	}
	names := dirNames(t, dir)
	for _, n := range names {
		if strings.HasPrefix(n, "chk-3") {
			t.Fatalf("failed checkpoint left %s (dir: %v)", n, names)
		}
	}
	if !strings.Contains(lb.String(), "checkpoint: failed, abandoned") || !strings.Contains(lb.String(), "no space left on device") {
		t.Fatalf("log does not report the failure:\n%s", lb.String())
	}
	if _, err := checkpoint.Load(filepath.Join(dir, "chk-2")); err != nil {
		t.Fatalf("previous checkpoint damaged: %v", err)
	}
	if c, err := checkpoint.Latest(dir); err != nil || c.ID() < 4 {
		t.Fatalf("latest %v, %v: want a checkpoint after the failed one", c, err)
	}
}

// TestFailedRenameFailsJob: when every checkpoint fails (rename refused),
// the job fails after TolerableFailures with an error saying why; the last
// good checkpoint stays intact and no staging directory is left.
func TestFailedRenameFailsJob(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	dir := t.TempDir()
	log, _ := newLog()
	renameErr := errors.New("injected rename failure")
	fs := &checkpoint.ErrorFS{Inject: checkpoint.InjectAfter(checkpoint.OpRename, "chk-*.inprogress", 1, -1, renameErr)}
	src := &seqSource{Batches: 300, Rows: 64, Keys: 500, GateAt: 150, Gate: make(chan struct{}), Delay: 50 * time.Microsecond}
	cfg := checkpoint.RunConfig{
		Options:    checkpoint.Options{Dir: dir, Interval: 2 * time.Millisecond, TolerableFailures: 2, JobFingerprint: fingerprint, Log: log, FS: fs},
		RunOptions: arrowexec.RunOptions{Mem: mem},
	}
	err := checkpoint.Run(context.Background(), cfg, func(*checkpoint.Checkpoint) (*arrowexec.Graph, error) {
		return keyedGraph(t, src, 3, nil), nil
	})
	if !errors.Is(err, checkpoint.ErrTooManyFailures) || !errors.Is(err, renameErr) {
		t.Fatalf("got %v, want ErrTooManyFailures wrapping the rename failure", err)
	}
	t.Log(err)
	names := dirNames(t, dir)
	if len(names) != 2 || names[0] != checkpoint.LockName || names[1] != "chk-1" {
		t.Fatalf("checkpoint dir holds %v, want only the lock file and chk-1", names)
	}
	if _, err := checkpoint.Load(filepath.Join(dir, "chk-1")); err != nil {
		t.Fatalf("last good checkpoint damaged: %v", err)
	}
}

// TestSnapshotDirFailureFailsJob: when an operator cannot get its snapshot
// directory (disk full), the job fails naming the operator; the previous
// checkpoint stays intact.
func TestSnapshotDirFailureFailsJob(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	dir := t.TempDir()
	log, _ := newLog()
	fs := &checkpoint.ErrorFS{Inject: func(op checkpoint.Op, path string) error {
		if op == checkpoint.OpMkdirAll && strings.Contains(path, "chk-2.inprogress") {
			return checkpoint.ErrDiskFull
		}
		return nil
	}}
	src := &seqSource{Batches: 300, Rows: 64, Keys: 500, GateAt: 150, Gate: make(chan struct{}), Delay: 50 * time.Microsecond}
	r := start(t, keyedGraph(t, src, 3, nil), nil, checkpoint.Options{Dir: dir, Interval: 2 * time.Millisecond, JobFingerprint: fingerprint, Log: log, FS: fs}, mem)
	jobErr, coordErr := r.wait(t)
	var te *arrowexec.TaskError
	if !errors.As(jobErr, &te) || te.Node != "pebble" || !strings.Contains(jobErr.Error(), "no space left") {
		t.Fatalf("job error %v, want a TaskError of node pebble saying the disk is full", jobErr)
	}
	if coordErr != nil {
		t.Fatal(coordErr)
	}
	if _, err := checkpoint.Load(filepath.Join(dir, "chk-1")); err != nil {
		t.Fatalf("previous checkpoint damaged: %v", err)
	}
}

// TestInspect prints a summary and a listing.
func TestInspect(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	dir := makeCheckpoints(t, mem, 2)
	chk, err := checkpoint.Latest(dir)
	if err != nil {
		t.Fatal(err)
	}
	s, err := checkpoint.Inspect(chk.Path)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := checkpoint.WriteSummary(&b, s); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		fmt.Sprintf("checkpoint %d", chk.ID()), "job fingerprint  " + fingerprint, "max parallelism  16",
		"src     source", "pebble  operator  3", `src/1  {"subtask":1,"next":`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
	infos, err := checkpoint.List(dir)
	if err != nil {
		t.Fatal(err)
	}
	b.Reset()
	if err := checkpoint.PrintList(&b, dir); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "complete") || strings.Count(b.String(), "\n") != len(infos)+1 {
		t.Errorf("listing:\n%s", b.String())
	}
	t.Logf("\n%s\n%s", out, b.String())
}

var _ = state.OSFS

// completeInfos lists the complete checkpoints in dir.
func completeInfos(t testing.TB, dir string) []checkpoint.Info {
	t.Helper()
	infos, err := checkpoint.List(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []checkpoint.Info
	for _, inf := range infos {
		if !inf.InProgress {
			out = append(out, inf)
		}
	}
	return out
}

// slowSnap's first snapshot waits until release is closed (the test
// closes it once the coordinator abandoned the checkpoint: past its
// timeout, however slow the machine), then writes a file into its
// snapshot directory, late.
type slowSnap struct{ release <-chan struct{} }

func (s slowSnap) Schema(in []*arrow.Schema) (*arrow.Schema, error) { return nil, nil }
func (s slowSnap) New(t *arrowexec.Task) (arrowexec.Operator, error) {
	return &slowSnapOp{t: t, release: s.release}, nil
}

type slowSnapOp struct {
	t       *arrowexec.Task
	release <-chan struct{}
	n       int
}

func (o *slowSnapOp) Open(context.Context) error { return nil }
func (o *slowSnapOp) Process(context.Context, int, arrow.RecordBatch, arrowexec.Emitter) error {
	return nil
}
func (o *slowSnapOp) Finish(context.Context, arrowexec.Emitter) error { return nil }
func (o *slowSnapOp) Close() error                                    { return nil }
func (o *slowSnapOp) SnapshotState(ctx context.Context, id uint64) (arrowexec.SubtaskSnapshot, error) {
	if o.n++; o.n == 1 {
		select {
		case <-o.release:
		case <-ctx.Done():
			return arrowexec.SubtaskSnapshot{}, ctx.Err()
		}
	}
	dir, err := o.t.SnapshotDir(id)
	if err != nil {
		return arrowexec.SubtaskSnapshot{}, err
	}
	return arrowexec.SubtaskSnapshot{}, os.WriteFile(filepath.Join(dir, "data"), []byte("x"), 0o644)
}

// TestTimeoutAbandons: a checkpoint not complete within Timeout is
// abandoned (triggers meanwhile are skipped); the subtask that reports late
// still gets its directory, the staging directory is removed after its
// report, and later checkpoints complete.
func TestTimeoutAbandons(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	dir := t.TempDir()
	log, lb := newLog()
	src := &seqSource{Batches: 100, Rows: 10, Keys: 10, GateAt: 50, Gate: make(chan struct{}), Delay: 50 * time.Microsecond}
	g := arrowexec.NewGraph()
	s := g.AddSource("src", src, 1)
	release := make(chan struct{})
	g.Add("slow", slowSnap{release: release}, 1, s.Forward())
	// A timeout long enough that only the held snapshot misses it, even
	// on a loaded machine.
	const timeout = time.Second
	r := start(t, g, nil, checkpoint.Options{Dir: dir, Interval: 5 * time.Millisecond, Timeout: timeout, JobFingerprint: fingerprint, Log: log}, mem)
	exectest.WaitFor(t, "checkpoint 1 abandoned", func() bool { return r.c.Stats().Abandoned >= 1 })
	close(release)
	r.waitCompleted(t, 2)
	r.crash()
	st := r.c.Stats()
	if st.Abandoned < 1 || st.Skipped < 1 {
		t.Fatalf("stats %+v: want an abandoned checkpoint and skipped triggers", st)
	}
	checkHistory(t, r.c.History(), st)
	if h := r.c.History()[0]; h.ID != 1 || h.Status != "abandoned" || !strings.Contains(h.Error, "not complete within") || h.Duration < timeout {
		t.Fatalf("first history record %+v: want checkpoint 1 abandoned after the %v timeout", h, timeout)
	}
	if !strings.Contains(lb.String(), "checkpoint: abandoned, not complete within timeout") {
		t.Fatalf("abandonment not logged:\n%s", lb.String())
	}
	for _, n := range dirNames(t, dir) {
		if n == "chk-1" || n == "chk-1.inprogress" {
			t.Fatalf("abandoned checkpoint 1 left %s", n)
		}
	}
	if c, err := checkpoint.Latest(dir); err != nil || c.ID() < 2 {
		t.Fatalf("latest %v, %v", c, err)
	}
}

// checkHistory checks a coordinator's history against its counters: one
// record per completed, failed and abandoned checkpoint (a run short
// enough to keep all of them), ids rising, the last completed one as
// Stats says, completed ones with a size and an alignment within their
// duration.
func checkHistory(t *testing.T, h []checkpoint.Record, st checkpoint.Stats) {
	t.Helper()
	n := map[string]int64{}
	var last checkpoint.Record
	for i, r := range h {
		n[r.Status]++
		if i > 0 && r.ID <= h[i-1].ID {
			t.Fatalf("history ids not rising: %+v", h)
		}
		if r.Status == "completed" {
			last = r
			if r.Bytes <= 0 || r.Aligned <= 0 || r.Aligned > r.Duration || r.Error != "" {
				t.Fatalf("completed record %+v", r)
			}
		} else if r.Error == "" {
			t.Fatalf("%s record without an error: %+v", r.Status, r)
		}
	}
	// The run's end may abandon the checkpoint in flight ("coordinator
	// stopped"): at least Stats' abandoned ones.
	if n["completed"] != st.Completed || n["failed"] != st.Failed || n["abandoned"] < st.Abandoned {
		t.Fatalf("history counts %v, stats %+v", n, st)
	}
	if last.ID != st.LastID || last.Bytes != st.LastBytes || last.Path != st.LastPath {
		t.Fatalf("last completed record %+v, stats %+v", last, st)
	}
}
