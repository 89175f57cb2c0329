package sinks_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/sinks"
)

// twoPhaseOpts makes parts roll every few hundred rows, fsyncs on.
func twoPhaseOpts(dir string, f sinks.Format) sinks.FileOptions {
	o := smallParts(dir, f)
	o.Commit = sinks.CommitOnCheckpoint
	o.NoSync = false
	return o
}

// publishedIDs reads the ids of every published file in dir, in name order.
func publishedIDs(t *testing.T, mem memory.Allocator, dir string, f sinks.Format) []int64 {
	t.Helper()
	var ids []int64
	for _, n := range listDir(t, dir) {
		if strings.HasPrefix(n, ".") || !strings.HasSuffix(n, "."+f.Ext()) {
			continue
		}
		p := filepath.Join(dir, n)
		var rows [][]any
		switch f {
		case sinks.Parquet:
			rows = readParquetRows(t, mem, p)
		case sinks.CSV:
			rows = readCSVRows(t, p)
		case sinks.JSONL:
			rows = readJSONLRows(t, p)
		}
		for _, r := range rows {
			switch v := r[0].(type) {
			case int64:
				ids = append(ids, v)
			case string:
				id, err := strconv.ParseInt(v, 10, 64)
				if err != nil {
					t.Fatalf("%s: id %q", p, v)
				}
				ids = append(ids, id)
			default:
				t.Fatalf("%s: id %v (%T)", p, r[0], r[0])
			}
		}
	}
	return ids
}

// checkExactlyOnce checks that the published files hold every id in want
// exactly once and that nothing is left in progress.
func checkExactlyOnce(t *testing.T, mem memory.Allocator, dir string, f sinks.Format, want []int64) {
	t.Helper()
	got := publishedIDs(t, mem, dir, f)
	slices.Sort(got)
	w := slices.Clone(want)
	slices.Sort(w)
	if !slices.Equal(got, w) {
		dup, miss := 0, 0
		seen := map[int64]int{}
		for _, id := range got {
			seen[id]++
		}
		for _, id := range w {
			switch seen[id] {
			case 0:
				miss++
			case 1:
			default:
				dup++
			}
		}
		t.Fatalf("published %d rows, want %d: %d ids missing, %d duplicated", len(got), len(w), miss, dup)
	}
	if h := hidden(listDir(t, dir)); len(h) > 0 {
		t.Fatalf("left in progress: %v", h)
	}
}

// sinkRun drives one sink subtask step by step.
type sinkRun struct {
	t  *testing.T
	op arrowexec.Operator
}

func openSink(t *testing.T, opts sinks.FileOptions, mem memory.Allocator, schema *arrow.Schema, subtask, par int, restore *arrowexec.RestoreState) (*sinkRun, error) {
	t.Helper()
	spec, err := sinks.NewFile(opts)
	if err != nil {
		t.Fatal(err)
	}
	tk := task(mem, schema, subtask, par)
	tk.Restore = restore
	op, err := spec.New(tk)
	if err != nil {
		t.Fatal(err)
	}
	r := &sinkRun{t: t, op: op}
	if err := op.Open(context.Background()); err != nil {
		op.Close()
		return nil, err
	}
	return r, nil
}

func (r *sinkRun) process(bs []arrow.RecordBatch) {
	r.t.Helper()
	for _, b := range bs {
		if err := r.op.Process(context.Background(), 0, b, nil); err != nil {
			r.t.Fatal(err)
		}
	}
}

func (r *sinkRun) snapshot(id uint64) []byte {
	r.t.Helper()
	snap, err := r.op.(arrowexec.Checkpointer).SnapshotState(context.Background(), id)
	if err != nil {
		r.t.Fatal(err)
	}
	return snap.Operator
}

func (r *sinkRun) notify(id uint64) error {
	return r.op.(arrowexec.CheckpointListener).NotifyCheckpointComplete(context.Background(), id)
}

// crash ends the subtask the way a failure does: Close without Finish
// (which, in CommitOnCheckpoint mode, drops unflushed buffers and keeps
// in-progress files, like a killed process).
func (r *sinkRun) crash() { r.op.Close() }

func (r *sinkRun) finish() {
	r.t.Helper()
	if err := r.op.Finish(context.Background(), nil); err != nil {
		r.t.Fatal(err)
	}
	if err := r.op.Close(); err != nil {
		r.t.Fatal(err)
	}
}

func restoreFrom(id uint64, blobs ...[]byte) *arrowexec.RestoreState {
	if id == 0 {
		return nil
	}
	return &arrowexec.RestoreState{CheckpointID: id, Operator: blobs}
}

// segments splits rows into n segments of random batches.
func segments(rng *rand.Rand, mem memory.Allocator, schema *arrow.Schema, rows [][]any, n int) [][]arrow.RecordBatch {
	out := make([][]arrow.RecordBatch, n)
	per := (len(rows) + n - 1) / n
	for i := range out {
		lo, hi := min(i*per, len(rows)), min((i+1)*per, len(rows))
		out[i] = splitBatches(rng, mem, schema, rows[lo:hi], 60)
	}
	return out
}

func ids(rows [][]any) []int64 {
	out := make([]int64, len(rows))
	for i, r := range rows {
		out[i] = r[0].(int64)
	}
	return out
}

// TestTwoPhaseCrashes drives one sink subtask through checkpoints (rows,
// barrier, more rows, completion notification, ...) and crashes it after
// every step; it then recovers from every checkpoint that may be the latest
// complete one at that point (the last barrier's, whose notification may
// not have arrived, or the one before) and replays the rows after it, as
// the sources would. The published files must hold every row exactly once,
// and after each notification only rows before its barrier. Text parts stay
// open across checkpoints (recovery truncates them), Parquet parts close at
// barriers.
func TestTwoPhaseCrashes(t *testing.T) {
	const nchk = 4
	for _, f := range []sinks.Format{sinks.Parquet, sinks.CSV, sinks.JSONL} {
		mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
		schema := testSchema()
		rng := rand.New(rand.NewPCG(11, 2))
		rows := randomRows(rng, 2400)
		// Checkpoint e's barrier follows chunk 2e-2: it covers chunks
		// 0..2e-2; chunk 2e-1 arrives before its notification.
		chunks := segments(rng, mem, schema, rows, 2*nchk)
		per := (len(rows) + 2*nchk - 1) / (2 * nchk)
		covered := func(e uint64) int {
			if e == 0 {
				return 0
			}
			return int(2*e - 1)
		}
		for crashAfter := 0; crashAfter < 4*nchk; crashAfter++ {
			lastSnap := uint64((crashAfter + 3) / 4)
			notified := uint64((crashAfter + 1) / 4)
			candidates := []uint64{lastSnap}
			if notified < lastSnap {
				candidates = append(candidates, lastSnap-1)
			}
			for _, from := range candidates {
				t.Run(fmt.Sprintf("%s/crash-after-step-%d/restore-%d", f, crashAfter, from), func(t *testing.T) {
					dir := t.TempDir()
					opts := twoPhaseOpts(dir, f)
					r, err := openSink(t, opts, mem, schema, 0, 1, nil)
					if err != nil {
						t.Fatal(err)
					}
					blobs := map[uint64][]byte{}
					for step := 0; step <= crashAfter; step++ {
						e := uint64(step/4 + 1)
						switch step % 4 {
						case 0:
							r.process(chunks[2*(e-1)])
						case 1:
							blobs[e] = r.snapshot(e)
						case 2:
							r.process(chunks[2*(e-1)+1])
						case 3:
							if err := r.notify(e); err != nil {
								t.Fatal(err)
							}
							limit := int64(min(covered(e)*per, len(rows)))
							for _, got := range publishedIDs(t, mem, dir, f) {
								if got >= limit {
									t.Fatalf("after checkpoint %d: row %d published, only rows below %d are committed", e, got, limit)
								}
							}
						}
					}
					r.crash()
					r2, err := openSink(t, opts, mem, schema, 0, 1, restoreFrom(from, blobs[from]))
					if err != nil {
						t.Fatal(err)
					}
					for c := covered(from); c < len(chunks); c++ {
						r2.process(chunks[c])
					}
					r2.finish()
					checkExactlyOnce(t, mem, dir, f, ids(rows))
				})
			}
		}
		for _, c := range chunks {
			releaseAll(c)
		}
		mem.AssertSize(t, 0)
	}
}

// TestTwoPhaseFaults: a publish that fails midway (notification) and a
// recovery that fails midway are completed by the next recovery.
func TestTwoPhaseFaults(t *testing.T) {
	for _, f := range []sinks.Format{sinks.Parquet, sinks.CSV} {
		t.Run(string(f), func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			schema := testSchema()
			rng := rand.New(rand.NewPCG(5, 5))
			rows := randomRows(rng, 3000)
			segs := segments(rng, mem, schema, rows, 3)
			defer func() {
				for _, s := range segs {
					releaseAll(s)
				}
			}()
			dir := t.TempDir()
			opts := twoPhaseOpts(dir, f)
			r, _ := openSink(t, opts, mem, schema, 0, 1, nil)
			r.process(segs[0])
			b1 := r.snapshot(1)
			if err := r.notify(1); err != nil {
				t.Fatal(err)
			}
			r.process(segs[1])
			b2 := r.snapshot(2)
			r.crash()
			// The notification of 2 is published by a subtask whose renames
			// fail after the first: recovery crashes halfway.
			faulty := opts
			faulty.FS = &faultFS{FS: sinks.OSFS{}, op: "rename", after: 1}
			if _, err := openSink(t, faulty, mem, schema, 0, 1, restoreFrom(2, b2)); err == nil {
				t.Fatal("recovery with failing renames succeeded")
			}
			// Recover again, crash before any new checkpoint, recover again.
			r2, err := openSink(t, opts, mem, schema, 0, 1, restoreFrom(2, b2))
			if err != nil {
				t.Fatal(err)
			}
			r2.process(segs[2][:len(segs[2])/2])
			r2.crash()
			r3, err := openSink(t, opts, mem, schema, 0, 1, restoreFrom(2, b2))
			if err != nil {
				t.Fatal(err)
			}
			r3.process(segs[2])
			r3.finish()
			checkExactlyOnce(t, mem, dir, f, ids(rows))
			_ = b1
		})
	}
}

// TestTwoPhaseRescale: two subtasks checkpoint, crash, and restore at
// parallelism 3 and 1. Before that, a run at parallelism 3 restored the
// same checkpoint and crashed after two of its subtasks had finished
// (published): its files, under an old subtask number and a new one, are
// discarded by the later restore.
func TestTwoPhaseRescale(t *testing.T) {
	for _, f := range []sinks.Format{sinks.Parquet, sinks.JSONL} {
		for _, p2 := range []int{1, 3} {
			t.Run(fmt.Sprintf("%s/2->%d", f, p2), func(t *testing.T) {
				mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
				defer mem.AssertSize(t, 0)
				schema := testSchema()
				rng := rand.New(rand.NewPCG(9, uint64(p2)))
				rows := randomRows(rng, 4000)
				// Old subtask s writes rows[s*2000:(s+1)*2000] in 3 segments.
				var segs [2][][]arrow.RecordBatch
				for s := range segs {
					segs[s] = segments(rng, mem, schema, rows[s*2000:(s+1)*2000], 3)
				}
				defer func() {
					for s := range segs {
						for _, b := range segs[s] {
							releaseAll(b)
						}
					}
				}()
				dir := t.TempDir()
				opts := twoPhaseOpts(dir, f)
				var blobs [2][]byte
				for s := 0; s < 2; s++ {
					r, _ := openSink(t, opts, mem, schema, s, 2, nil)
					r.process(segs[s][0])
					_ = r.snapshot(1)
					if err := r.notify(1); err != nil {
						t.Fatal(err)
					}
					r.process(segs[s][1])
					blobs[s] = r.snapshot(2)
					r.process(segs[s][2][:1]) // after the barrier: discarded
					r.crash()
				}
				restore := restoreFrom(2, blobs[0], blobs[1])
				// A run at parallelism 3 restores, its subtask 2 writes and
				// finishes (publishes), the others crash.
				var runs []*sinkRun
				for s := 0; s < 3; s++ {
					r, err := openSink(t, opts, mem, schema, s, 3, restore)
					if err != nil {
						t.Fatal(err)
					}
					runs = append(runs, r)
				}
				runs[2].process(segs[0][2])
				runs[2].finish()
				runs[1].process(segs[1][2])
				runs[1].finish()
				runs[0].process(segs[1][2])
				runs[0].crash()
				// The real recovery at p2 replays segment 3 of both old
				// subtasks, spread over its subtasks.
				var rs []*sinkRun
				for s := 0; s < p2; s++ {
					r, err := openSink(t, opts, mem, schema, s, p2, restore)
					if err != nil {
						t.Fatal(err)
					}
					rs = append(rs, r)
				}
				for s := 0; s < 2; s++ {
					rs[s%p2].process(segs[s][2])
				}
				for _, r := range rs {
					r.finish()
				}
				checkExactlyOnce(t, mem, dir, f, ids(rows))
			})
		}
	}
}
