package sinks_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/internal/oracle"
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

// segmentedInput makes n random rows (seeded) in nseg segments of random
// batches, released, and the allocator checked, when the test ends.
func segmentedInput(t *testing.T, seed1, seed2 uint64, n, nseg int) (*memory.CheckedAllocator, *arrow.Schema, [][]any, [][]arrow.RecordBatch) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	t.Cleanup(func() { mem.AssertSize(t, 0) })
	schema := testSchema()
	rng := rand.New(rand.NewPCG(seed1, seed2))
	rows := randomRows(rng, n)
	segs := segments(rng, mem, schema, rows, nseg)
	t.Cleanup(func() {
		for _, s := range segs {
			releaseAll(s)
		}
	})
	return mem, schema, rows, segs
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
// and after each notification only rows before its barrier. Parts stay
// open across checkpoints (recovery truncates them, and gives an open
// Parquet part its committed footer).
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
			mem, schema, rows, segs := segmentedInput(t, 5, 5, 3000, 3)
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
			faulty.FS = &faultFS{FS: sinks.OSFS, op: "rename", after: 1}
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
	for _, c := range []struct {
		f        sinks.Format
		partSize int64 // 0: twoPhaseOpts'
	}{{sinks.Parquet, 0}, {sinks.JSONL, 0}, {sinks.Parquet, 1 << 30}} {
		f := c.f
		for _, p2 := range []int{1, 3} {
			t.Run(fmt.Sprintf("%s/part-size-%d/2->%d", f, c.partSize, p2), func(t *testing.T) {
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
				if c.partSize != 0 {
					opts.PartSize = c.partSize
				}
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
					if c.partSize != 0 && !hasOpenFooter(t, blobs[s]) {
						t.Fatalf("subtask %d: no open Parquet part at checkpoint 2", s)
					}
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
				checkPublishedRows(t, mem, dir, f, rows)
			})
		}
	}
}

// publishedRows reads every published file in dir (in name order) with the
// package's Go readers.
func publishedRows(t *testing.T, mem memory.Allocator, dir string, f sinks.Format) [][]any {
	t.Helper()
	var rows [][]any
	for _, n := range listDir(t, dir) {
		if strings.HasPrefix(n, ".") || !strings.HasSuffix(n, "."+f.Ext()) {
			continue
		}
		p := filepath.Join(dir, n)
		switch f {
		case sinks.Parquet:
			rows = append(rows, readParquetRows(t, mem, p)...)
		case sinks.CSV:
			rows = append(rows, readCSVRows(t, p)...)
		case sinks.JSONL:
			rows = append(rows, readJSONLRows(t, p)...)
		}
	}
	return rows
}

// checkPublishedRows checks that the published files of dir hold exactly
// want (every column, any row order).
func checkPublishedRows(t *testing.T, mem memory.Allocator, dir string, f sinks.Format, want [][]any) {
	t.Helper()
	got := publishedRows(t, mem, dir, f)
	if f == sinks.CSV {
		compareRows(t, "published "+string(f), got, crlfToLF(want), cmpOpts{emptyIsNull: true})
		return
	}
	compareRows(t, "published "+string(f), got, want, cmpOpts{})
}

// rowGroupRows returns the row count of every row group of a Parquet file,
// read with parquet/file.
func rowGroupRows(t *testing.T, path string) []int64 {
	t.Helper()
	r, err := file.OpenParquetFile(path, false)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	defer r.Close()
	var out []int64
	for i := 0; i < r.NumRowGroups(); i++ {
		out = append(out, r.MetaData().RowGroup(i).NumRows())
	}
	return out
}

// publishedParquet returns the published Parquet files of dir, and checks
// that none has an empty row group.
func publishedParquet(t *testing.T, dir string) []string {
	t.Helper()
	var ps []string
	for _, n := range listDir(t, dir) {
		if strings.HasPrefix(n, ".") || !strings.HasSuffix(n, ".parquet") {
			continue
		}
		p := filepath.Join(dir, n)
		for i, rows := range rowGroupRows(t, p) {
			if rows == 0 {
				t.Errorf("%s: row group %d is empty", p, i)
			}
		}
		ps = append(ps, p)
	}
	return ps
}

// openParts returns the open parts a snapshot records, reading the state's
// JSON generically.
func openParts(t *testing.T, blob []byte) []map[string]any {
	t.Helper()
	var st struct {
		Writers []struct {
			Open map[string]any `json:"open"`
		} `json:"writers"`
	}
	if err := json.Unmarshal(blob, &st); err != nil {
		t.Fatal(err)
	}
	var open []map[string]any
	for _, w := range st.Writers {
		if w.Open != nil {
			open = append(open, w.Open)
		}
	}
	return open
}

// carriedRows decodes the rows a snapshot carries in open row groups (the
// state's "carry" fields, Arrow IPC streams).
func carriedRows(t *testing.T, mem memory.Allocator, blob []byte) [][]any {
	t.Helper()
	var st struct {
		Writers []struct {
			Carry []byte `json:"carry"`
		} `json:"writers"`
	}
	if err := json.Unmarshal(blob, &st); err != nil {
		t.Fatal(err)
	}
	var rows [][]any
	for _, w := range st.Writers {
		if len(w.Carry) == 0 {
			continue
		}
		r, err := ipc.NewReader(bytes.NewReader(w.Carry), ipc.WithAllocator(mem))
		if err != nil {
			t.Fatal(err)
		}
		for r.Next() {
			rows = append(rows, arrowRows(t, r.RecordBatch().Columns())...)
		}
		if err := r.Err(); err != nil {
			t.Fatal(err)
		}
		r.Release()
	}
	return rows
}

// hasOpenFooter reports whether a snapshot records an open part with a
// committed footer (an open Parquet part).
func hasOpenFooter(t *testing.T, blob []byte) bool {
	t.Helper()
	for _, p := range openParts(t, blob) {
		if p["footer"] != nil {
			return true
		}
	}
	return false
}

// TestTwoPhaseParquetSpansCheckpoints: a Parquet part stays open across
// checkpoints, so the number of parts follows PartSize, not the number of
// checkpoints. With a PartSize larger than the output, 50 checkpoints make
// one part, which nothing publishes before Finish closes it; with a small
// PartSize every part but the last reached PartSize.
func TestTwoPhaseParquetSpansCheckpoints(t *testing.T) {
	defer sinks.SetMaxCarry(0)() // barriers cut the row group: see TestTwoPhaseParquetCarry
	for _, c := range []struct {
		name     string
		partSize int64
	}{{"one-part", 1 << 30}, {"rolling", 64 << 10}} {
		t.Run(c.name, func(t *testing.T) {
			const nchk = 50
			mem, schema, rows, segs := segmentedInput(t, 31, 7, 5000, nchk)
			dir := t.TempDir()
			opts := twoPhaseOpts(dir, sinks.Parquet)
			opts.PartSize = c.partSize
			opts.Parquet.RowGroupRows = 1 << 20
			spec, err := sinks.NewFile(opts)
			if err != nil {
				t.Fatal(err)
			}
			op, err := spec.New(task(mem, schema, 0, 1))
			if err != nil {
				t.Fatal(err)
			}
			r := &sinkRun{t: t, op: op}
			if err := op.Open(context.Background()); err != nil {
				t.Fatal(err)
			}
			open := 0
			for i, s := range segs {
				r.process(s)
				if hasOpenFooter(t, r.snapshot(uint64(i+1))) {
					open++
				}
				if err := r.notify(uint64(i + 1)); err != nil {
					t.Fatal(err)
				}
				if c.partSize == 1<<30 && len(spec.Published()) > 0 {
					t.Fatalf("checkpoint %d published %v: the only part is still open", i+1, spec.Published())
				}
			}
			r.finish()
			parts := spec.Published()
			// Every barrier finds a part open, but one that the barrier's
			// row group fills up to PartSize is closed there.
			if open < nchk-len(parts) || c.partSize == 1<<30 && open != nchk {
				t.Errorf("%d of %d snapshots have an open Parquet part (%d parts)", open, nchk, len(parts))
			}
			paths := publishedParquet(t, dir)
			if len(paths) != len(parts) {
				t.Fatalf("%d files in %s, %d published", len(paths), dir, len(parts))
			}
			switch c.partSize {
			case 1 << 30:
				if len(parts) != 1 {
					t.Fatalf("%d parts after %d checkpoints, want 1", len(parts), nchk)
				}
			default:
				if len(parts) < 2 || len(parts) > nchk/4 {
					t.Fatalf("%d parts after %d checkpoints with PartSize %d", len(parts), nchk, c.partSize)
				}
				for _, p := range parts[:len(parts)-1] {
					if p.Bytes < c.partSize {
						t.Errorf("%s: %d bytes, closed before PartSize %d", p.Path, p.Bytes, c.partSize)
					}
				}
			}
			var total int64
			for _, p := range parts {
				fi, err := os.Stat(p.Path)
				if err != nil {
					t.Fatal(err)
				}
				if fi.Size() != p.Bytes {
					t.Errorf("%s: %d bytes, PartInfo says %d", p.Path, fi.Size(), p.Bytes)
				}
				total += p.Rows
			}
			if total != int64(len(rows)) {
				t.Errorf("PartInfo rows %d, want %d", total, len(rows))
			}
			checkPublishedRows(t, mem, dir, sinks.Parquet, rows)
		})
	}
}

// crashFS fails every mutating operation after the first `after` (a crash at
// that point: the failing operation and everything after it do not
// happen).
type crashFS struct {
	sinks.FS
	after, calls int
}

var errCrash = errors.New("injected crash")

func (c *crashFS) step() error {
	c.calls++
	if c.calls > c.after {
		return errCrash
	}
	return nil
}

func (c *crashFS) Create(name string) (sinks.File, error) {
	if err := c.step(); err != nil {
		return nil, err
	}
	return c.FS.Create(name)
}

func (c *crashFS) Append(name string) (sinks.File, error) {
	if err := c.step(); err != nil {
		return nil, err
	}
	f, err := c.FS.Append(name)
	if err != nil {
		return nil, err
	}
	return &crashFile{File: f, fs: c}, nil
}

func (c *crashFS) Rename(a, b string) error {
	if err := c.step(); err != nil {
		return err
	}
	return c.FS.Rename(a, b)
}

func (c *crashFS) Remove(name string) error {
	if err := c.step(); err != nil {
		return err
	}
	return c.FS.Remove(name)
}

func (c *crashFS) Truncate(name string, size int64) error {
	if err := c.step(); err != nil {
		return err
	}
	return c.FS.Truncate(name, size)
}

func (c *crashFS) SyncDir(dir string) error {
	if err := c.step(); err != nil {
		return err
	}
	return c.FS.SyncDir(dir)
}

type crashFile struct {
	sinks.File
	fs *crashFS
}

func (f *crashFile) Write(p []byte) (int, error) {
	if err := f.fs.step(); err != nil {
		return 0, err
	}
	return f.File.Write(p)
}

// TestTwoPhaseParquetRecoverOpenPart: a Parquet part open at checkpoint k
// is recovered as the rows before barrier k when more rows were written
// after the barrier and the subtask crashed; when Finish closed and
// published it after the barrier, it is kept as it is (published output
// never changes) and the replay's copies of its later rows are dropped.
// Either way the output ends exactly once. Recovery that crashes at any
// step and runs again, or runs twice, gives the same file; the recovered
// part reads back with arrow-go, and with pyarrow and DuckDB when the
// Python oracle is available.
func TestTwoPhaseParquetRecoverOpenPart(t *testing.T) {
	defer sinks.SetMaxCarry(0)() // barriers cut the row group: see TestTwoPhaseParquetCarry
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	schema := testSchema()
	rng := rand.New(rand.NewPCG(41, 3))
	rows := randomRows(rng, 3000)
	const k = 4 // crash after checkpoint k; segment k follows its barrier
	segs := segments(rng, mem, schema, rows, k+2)
	defer func() {
		for _, s := range segs {
			releaseAll(s)
		}
	}()
	per := (len(rows) + k + 1) / (k + 2)
	committed := rows[:k*per]
	for _, after := range []string{"crash", "finish"} {
		t.Run(after, func(t *testing.T) {
			dir := t.TempDir()
			opts := twoPhaseOpts(dir, sinks.Parquet)
			opts.PartSize = 1 << 30
			r, err := openSink(t, opts, mem, schema, 0, 1, nil)
			if err != nil {
				t.Fatal(err)
			}
			var blob []byte
			for e := 1; e <= k; e++ {
				r.process(segs[e-1])
				blob = r.snapshot(uint64(e))
				if !hasOpenFooter(t, blob) {
					t.Fatalf("checkpoint %d: no open Parquet part in the snapshot", e)
				}
				if err := r.notify(uint64(e)); err != nil {
					t.Fatal(err)
				}
			}
			// Rows after barrier k: a RowGroupRows-sized row group of them
			// reaches the file before the crash.
			r.process(segs[k])
			if after == "finish" {
				r.finish() // publishes the part with segment k too
				if got := publishedIDs(t, mem, dir, sinks.Parquet); len(got) != (k+1)*per {
					t.Fatalf("finish published %d rows, want %d", len(got), (k+1)*per)
				}
			} else {
				r.crash()
			}
			// Recovery crashes at every step in turn, then completes.
			for n := 0; ; n++ {
				o := opts
				o.FS = &crashFS{FS: sinks.OSFS, after: n}
				r2, err := openSink(t, o, mem, schema, 0, 1, restoreFrom(k, blob))
				if err == nil {
					r2.crash()
					t.Logf("recovery crashed at each of its first %d steps, then completed", n)
					break
				}
				if !errors.Is(err, errCrash) {
					t.Fatal(err)
				}
				if n > 20 {
					t.Fatal("recovery still crashing after 20 steps")
				}
			}
			paths := publishedParquet(t, dir)
			if len(paths) != 1 {
				t.Fatalf("published %v, want 1 part", paths)
			}
			want := committed
			if after == "finish" {
				want = rows[:(k+1)*per]
			}
			checkPublishedRows(t, mem, dir, sinks.Parquet, want)
			if h := hidden(listDir(t, dir)); len(h) > 0 {
				t.Fatalf("left in progress: %v", h)
			}
			// A second recovery leaves the recovered file as it is.
			before, err := os.ReadFile(paths[0])
			if err != nil {
				t.Fatal(err)
			}
			fi0, _ := os.Stat(paths[0])
			r3, err := openSink(t, opts, mem, schema, 0, 1, restoreFrom(k, blob))
			if err != nil {
				t.Fatal(err)
			}
			r3.crash()
			again, err := os.ReadFile(paths[0])
			if err != nil {
				t.Fatal(err)
			}
			fi1, _ := os.Stat(paths[0])
			if !bytes.Equal(before, again) || !fi1.ModTime().Equal(fi0.ModTime()) {
				t.Fatalf("second recovery rewrote %s", paths[0])
			}
			t.Run("oracle", func(t *testing.T) {
				oracle.Python(t)
				pa := oracle.PyArrowRead(t, dir, oracle.Parquet)
				compareRows(t, "pyarrow dataset", reorder(t, pa), want, cmpOpts{})
				duck := oracle.DuckDB(t, duckSelect+fmt.Sprintf("read_parquet('%s')", paths[0]))
				compareRows(t, "duckdb", duck.Rows, want, cmpOpts{})
			})
			// The run resumes: replay from the barrier, finish.
			r4, err := openSink(t, opts, mem, schema, 0, 1, restoreFrom(k, blob))
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range segs[k:] {
				r4.process(s)
			}
			r4.finish()
			checkExactlyOnce(t, mem, dir, sinks.Parquet, ids(rows))
			checkPublishedRows(t, mem, dir, sinks.Parquet, rows)
		})
	}
}

// TestTwoPhaseRandom: random input, batch sizes, PartSize, row group
// limits, carry bounds, checkpoint and notification points and crash
// point; sometimes a recovery that crashes midway first. After recovery the
// published files and the rows the checkpoint carried must hold exactly the
// input rows before the restored checkpoint's barrier (every column), and
// after replaying the rest and finishing, the files hold the whole input
// exactly once. The restored checkpoint is the last one taken (its
// notification may not have arrived) or, when that one was not notified,
// the one before.
func TestTwoPhaseRandom(t *testing.T) {
	iters := map[sinks.Format]int{sinks.Parquet: 60, sinks.CSV: 12, sinks.JSONL: 12}
	for _, f := range []sinks.Format{sinks.Parquet, sinks.CSV, sinks.JSONL} {
		openRestored := 0 // runs restoring a checkpoint with an open part or carried rows
		defer func() {
			t.Logf("%s: %d of %d runs restored an open part", f, openRestored, iters[f])
			if f == sinks.Parquet && openRestored < iters[f]/4 {
				t.Errorf("only %d of %d Parquet runs restored an open part: the test misses its point", openRestored, iters[f])
			}
		}()
		for it := 0; it < iters[f]; it++ {
			t.Run(fmt.Sprintf("%s/%d", f, it), func(t *testing.T) {
				mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
				defer mem.AssertSize(t, 0)
				schema := testSchema()
				rng := rand.New(rand.NewPCG(uint64(it), 77))
				rows := randomRows(rng, 100+rng.IntN(3000))
				batches := splitBatches(rng, mem, schema, rows, 1+rng.IntN(300))
				defer releaseAll(batches)
				dir := t.TempDir()
				opts := twoPhaseOpts(dir, f)
				opts.NoSync = rng.IntN(4) != 0
				opts.PartSize = 1 << (10 + rng.IntN(12)) // 1 KiB .. 2 MiB
				opts.Parquet.RowGroupRows = []int64{37, 500, 1 << 20}[rng.IntN(3)]
				if rng.IntN(3) == 0 {
					opts.Parquet.RowGroupBytes = 1 << (8 + rng.IntN(8))
				}
				// Barriers cut the open row group, carry it up to 4 KiB,
				// or up to the default bound.
				carry := []int64{0, 4 << 10, -1}[it%3]
				if carry >= 0 {
					defer sinks.SetMaxCarry(carry)()
				}
				chkEvery := 1 + rng.IntN(len(batches)/3+1)
				crashAt := rng.IntN(len(batches) + 1)

				type ckpt struct {
					blob    []byte
					rows    int // rows before its barrier
					batches int // batches before its barrier
				}
				ckpts := map[uint64]ckpt{}
				var last, notified uint64
				r, err := openSink(t, opts, mem, schema, 0, 1, nil)
				if err != nil {
					t.Fatal(err)
				}
				n := 0
				for i, b := range batches[:crashAt] {
					r.process([]arrow.RecordBatch{b})
					n += int(b.NumRows())
					if rng.IntN(chkEvery) == 0 {
						last++
						ckpts[last] = ckpt{r.snapshot(last), n, i + 1}
					}
					if notified < last && rng.IntN(2) == 0 {
						notified = last
						if err := r.notify(notified); err != nil {
							t.Fatal(err)
						}
						// Nothing after the notified barrier is visible.
						for _, id := range publishedIDs(t, mem, dir, f) {
							if id >= int64(ckpts[notified].rows) {
								t.Fatalf("after checkpoint %d: row %d published, only rows below %d are committed", notified, id, ckpts[notified].rows)
							}
						}
					}
				}
				r.crash()
				from := last
				if notified < last && rng.IntN(2) == 0 {
					from = last - 1
				}
				var restore *arrowexec.RestoreState
				if from > 0 {
					restore = restoreFrom(from, ckpts[from].blob)
					if len(openParts(t, ckpts[from].blob)) > 0 || len(carriedRows(t, mem, ckpts[from].blob)) > 0 {
						openRestored++
					}
				}
				if rng.IntN(2) == 0 {
					o := opts
					o.FS = &crashFS{FS: sinks.OSFS, after: rng.IntN(6)}
					if r2, err := openSink(t, o, mem, schema, 0, 1, restore); err == nil {
						r2.crash()
					} else if !errors.Is(err, errCrash) {
						t.Fatal(err)
					}
				}
				r3, err := openSink(t, opts, mem, schema, 0, 1, restore)
				if err != nil {
					t.Fatal(err)
				}
				c := ckpts[from]
				// The files hold the rows before the barrier but those
				// the checkpoint carried, which the restored run writes
				// again (into a part not published yet).
				var carried [][]any
				if from > 0 {
					carried = carriedRows(t, mem, ckpts[from].blob)
				}
				if carry == 0 && len(carried) > 0 {
					t.Fatalf("checkpoint %d carries %d rows with carrying off", from, len(carried))
				}
				if f == sinks.CSV {
					compareRows(t, "published and carried", append(publishedRows(t, mem, dir, f), carried...), crlfToLF(rows[:c.rows]), cmpOpts{emptyIsNull: true})
				} else {
					compareRows(t, "published and carried", append(publishedRows(t, mem, dir, f), carried...), rows[:c.rows], cmpOpts{})
				}
				if f == sinks.Parquet {
					publishedParquet(t, dir)
				}
				for _, b := range batches[c.batches:] {
					r3.process([]arrow.RecordBatch{b})
				}
				r3.finish()
				checkExactlyOnce(t, mem, dir, f, ids(rows))
				checkPublishedRows(t, mem, dir, f, rows)
				if f == sinks.Parquet {
					publishedParquet(t, dir)
				}
			})
		}
	}
}

// TestTwoPhaseParquetFullAtBarrier: a Parquet part that reaches PartSize
// when the barrier writes its row group (a buffered row group counts only
// its flushed pages before) is closed at the barrier, so the checkpoint's
// completion publishes it, with exactly the rows before the barrier.
func TestTwoPhaseParquetFullAtBarrier(t *testing.T) {
	defer sinks.SetMaxCarry(0)() // barriers cut the row group: see TestTwoPhaseParquetCarry
	mem, schema, rows, segs := segmentedInput(t, 51, 1, 600, 2)
	dir := t.TempDir()
	opts := twoPhaseOpts(dir, sinks.Parquet)
	opts.PartSize = 4 << 10
	opts.Parquet.RowGroupRows = 1 << 20
	r, err := openSink(t, opts, mem, schema, 0, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.process(segs[0])
	if names := listDir(t, dir); len(names) != 1 || len(hidden(names)) != 1 {
		t.Fatalf("before the barrier: %v, want the one open part (in progress)", names)
	}
	blob := r.snapshot(1)
	if len(openParts(t, blob)) != 0 {
		t.Fatalf("full part left open at the barrier: %s", blob)
	}
	r.process(segs[1])
	if err := r.notify(1); err != nil {
		t.Fatal(err)
	}
	checkPublishedRows(t, mem, dir, sinks.Parquet, rows[:300])
	r.finish()
	checkPublishedRows(t, mem, dir, sinks.Parquet, rows)
}

// TestTwoPhaseParquetCarry: with checkpoints far more frequent than row
// groups fill, a barrier carries the open row group's rows in the
// checkpoint instead of cutting it, so row groups, like parts, do not follow
// the checkpoint interval: 50 checkpoints over 5000 rows make one part of
// one row group (TestTwoPhaseParquetSpansCheckpoints, with carrying off,
// gets a row group per checkpoint). Past the carry bound a barrier cuts the
// row group. Crashes restore at another parallelism: the carried rows are
// written again, once.
func TestTwoPhaseParquetCarry(t *testing.T) {
	const nchk = 50
	mem, schema, rows, segs := segmentedInput(t, 61, 5, 5000, nchk)
	run := func(t *testing.T, carry int64) []int64 { // carry < 0: the default bound
		if carry >= 0 {
			defer sinks.SetMaxCarry(carry)()
		}
		dir := t.TempDir()
		opts := twoPhaseOpts(dir, sinks.Parquet)
		opts.PartSize = 1 << 30
		opts.Parquet.RowGroupRows = 1 << 20
		r, err := openSink(t, opts, mem, schema, 0, 1, nil)
		if err != nil {
			t.Fatal(err)
		}
		for i, s := range segs {
			r.process(s)
			blob := r.snapshot(uint64(i + 1))
			if err := r.notify(uint64(i + 1)); err != nil {
				t.Fatal(err)
			}
			// What the checkpoint holds (files and carry) is the input
			// so far.
			per := (len(rows) + nchk - 1) / nchk
			got := append(publishedRows(t, mem, dir, sinks.Parquet), carriedRows(t, mem, blob)...)
			if o := openParts(t, blob); len(o) == 1 {
				got = append(got, committedOpenRows(t, mem, dir, o[0])...)
			}
			compareRows(t, fmt.Sprintf("checkpoint %d", i+1), got, rows[:min((i+1)*per, len(rows))], cmpOpts{})
		}
		r.finish()
		checkPublishedRows(t, mem, dir, sinks.Parquet, rows)
		paths := publishedParquet(t, dir)
		if len(paths) != 1 {
			t.Fatalf("published %v, want one part", paths)
		}
		return rowGroupRows(t, paths[0])
	}
	t.Run("one-row-group", func(t *testing.T) {
		if rg := run(t, -1); len(rg) != 1 {
			t.Errorf("row groups %v, want one of %d rows", rg, len(rows))
		}
	})
	t.Run("bounded", func(t *testing.T) {
		// About 40 bytes a row: a 16 KiB bound carries a few hundred rows.
		rg := run(t, 16<<10)
		if len(rg) < 5 || len(rg) >= nchk {
			t.Errorf("row groups %v: want fewer than one per checkpoint, more than with no bound", rg)
		}
	})
	t.Run("finished-after-checkpoint", func(t *testing.T) {
		// A barrier carries the open row group, then the part is
		// finished and published: right away (a stop after a final
		// checkpoint), or after more rows. A run restoring the
		// checkpoint keeps the part as it is (published output never
		// changes) and drops the carried rows and the replay's copies
		// of the later ones. Either way the replay makes the output
		// exactly once.
		for _, more := range []bool{false, true} {
			for _, closed := range []bool{false, true} {
				t.Run(fmt.Sprintf("more-rows=%v/row-group-closed=%v", more, closed), func(t *testing.T) {
					dir := t.TempDir()
					opts := twoPhaseOpts(dir, sinks.Parquet)
					opts.PartSize = 1 << 30
					opts.Parquet.RowGroupRows = 1 << 20
					n := 1
					if closed {
						// 300 rows: row groups of 130 and 130 are
						// written, 40 rows are open.
						opts.Parquet.RowGroupRows = 130
						n = 3
					}
					r, err := openSink(t, opts, mem, schema, 0, 1, nil)
					if err != nil {
						t.Fatal(err)
					}
					for _, s := range segs[:n] {
						r.process(s)
					}
					blob := r.snapshot(3)
					if c, o := len(carriedRows(t, mem, blob)), len(openParts(t, blob)); c == 0 || closed != (o == 1) {
						t.Fatalf("checkpoint 3: %d rows carried, %d open parts", c, o)
					}
					if more {
						r.process(segs[n])
					}
					r.finish()
					content := map[string]string{}
					for _, p := range publishedParquet(t, dir) {
						b, err := os.ReadFile(p)
						if err != nil {
							t.Fatal(err)
						}
						content[p] = string(b)
					}
					r2, err := openSink(t, opts, mem, schema, 0, 1, restoreFrom(3, blob))
					if err != nil {
						t.Fatal(err)
					}
					per := (len(rows) + nchk - 1) / nchk
					for p, c := range content {
						if b, err := os.ReadFile(p); err != nil || string(b) != c {
							t.Fatalf("recovery changed published %s (%v)", p, err)
						}
					}
					r2.process(segs[n])
					r2.finish()
					checkExactlyOnce(t, mem, dir, sinks.Parquet, ids(rows[:(n+1)*per]))
				})
			}
		}
	})
	t.Run("rescale", func(t *testing.T) {
		for _, p2 := range []int{1, 3} {
			t.Run(fmt.Sprint(p2), func(t *testing.T) {
				dir := t.TempDir()
				opts := twoPhaseOpts(dir, sinks.Parquet)
				opts.PartSize = 1 << 30
				opts.Parquet.RowGroupRows = 1 << 20
				// Two subtasks write segments 0-19 and 20-39, take
				// checkpoint 1 after 10 of theirs, write one more and
				// crash.
				var blobs [2][]byte
				for st := 0; st < 2; st++ {
					r, err := openSink(t, opts, mem, schema, st, 2, nil)
					if err != nil {
						t.Fatal(err)
					}
					for _, s := range segs[st*20 : st*20+10] {
						r.process(s)
					}
					blobs[st] = r.snapshot(1)
					if len(carriedRows(t, mem, blobs[st])) == 0 {
						t.Fatalf("subtask %d: checkpoint carries no rows", st)
					}
					r.process(segs[st*20+10])
					r.crash()
				}
				restore := restoreFrom(1, blobs[0], blobs[1])
				var rs []*sinkRun
				for st := 0; st < p2; st++ {
					r, err := openSink(t, opts, mem, schema, st, p2, restore)
					if err != nil {
						t.Fatal(err)
					}
					rs = append(rs, r)
				}
				var want [][]any
				per := (len(rows) + nchk - 1) / nchk
				for st := 0; st < 2; st++ {
					for i, s := range segs[st*20 : st*20+20] {
						if i >= 10 {
							rs[(st+i)%p2].process(s)
						}
					}
					want = append(want, rows[st*20*per:(st*20+20)*per]...)
				}
				for _, r := range rs {
					r.finish()
				}
				checkExactlyOnce(t, mem, dir, sinks.Parquet, ids(want))
				checkPublishedRows(t, mem, dir, sinks.Parquet, want)
			})
		}
	})
}

// committedOpenRows reads the rows an open Parquet part commits: its first
// bytes bytes followed by its committed footer.
func committedOpenRows(t *testing.T, mem memory.Allocator, dir string, open map[string]any) [][]any {
	t.Helper()
	seq := int(open["seq"].(float64))
	n := int64(open["bytes"].(float64))
	footer, err := base64.StdEncoding.DecodeString(open["footer"].(string))
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf(".part-%05d-%05d.parquet.inprogress", 0, seq)))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "committed.parquet")
	if err := os.WriteFile(p, append(data[:n:n], footer...), 0o644); err != nil {
		t.Fatal(err)
	}
	return readParquetRows(t, mem, p)
}
