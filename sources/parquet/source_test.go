package parquet

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	pq "github.com/apache/arrow-go/v18/parquet"

	"github.com/riffle-dev/riffle/arrowexec"
)

// dataset is a directory of Parquet files and the oracle: every row written,
// ordered by id.
type dataset struct {
	dir       string
	sc        *arrow.Schema
	want      arrow.RecordBatch
	maxRGRows int64
}

func (d *dataset) release() { d.want.Release() }

// newDataset writes three files with random row-group sizes, page versions,
// page sizes and encodings, plus files the directory walk must skip.
func newDataset(t testing.TB, seed uint64, mem memory.Allocator) *dataset {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 1))
	dir := t.TempDir()
	sc := allTypesSchema()
	d := &dataset{dir: dir, sc: sc}
	var all []arrow.RecordBatch
	var id int64
	files := []struct {
		name string
		opts []pq.WriterProperty
	}{
		{"a.parquet", []pq.WriterProperty{pq.WithDataPageSize(512), pq.WithDictionaryPageSizeLimit(256), pq.WithBatchSize(64)}}, // many pages; dictionary falls back to plain mid-chunk
		{"sub/b.parquet", []pq.WriterProperty{pq.WithDataPageVersion(pq.DataPageV2), pq.WithDictionaryDefault(false)}},
		{"c.parquet", nil},
	}
	for _, f := range files {
		var recs []arrow.RecordBatch
		for g := 0; g < 2+rng.IntN(4); g++ {
			n := rng.IntN(600)
			if g == 0 {
				n++ // no file starts with an empty row group
			}
			r := randomRecord(rng, mem, sc, id, n, 0.15)
			id += int64(n)
			d.maxRGRows = max(d.maxRGRows, int64(n))
			recs = append(recs, r)
		}
		writeFile(t, filepath.Join(dir, f.name), sc, recs, f.opts...)
		all = append(all, recs...)
	}
	// Noise the directory walk must skip.
	for _, junk := range []string{"_SUCCESS", ".hidden.parquet", "_tmp/x.parquet", ".git/y.parquet", "notes.txt"} {
		p := filepath.Join(dir, junk)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte("not parquet"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tbl := array.NewTableFromRecords(sc, all)
	defer tbl.Release()
	for _, r := range all {
		r.Release()
	}
	d.want = concatTable(t, tbl, mem)
	return d
}

func concatTable(t testing.TB, tbl arrow.Table, mem memory.Allocator) arrow.RecordBatch {
	cols := make([]arrow.Array, tbl.NumCols())
	for i := range cols {
		a, err := array.Concatenate(tbl.Column(i).Data().Chunks(), mem)
		if err != nil {
			t.Fatal(err)
		}
		cols[i] = a
	}
	r := array.NewRecordBatch(tbl.Schema(), cols, tbl.NumRows())
	for _, c := range cols {
		c.Release()
	}
	return r
}

// verify checks that the batches of all subtasks together hold every row of
// want exactly once (projected to the source schema) and that no batch is
// larger than bs.
func verify(t *testing.T, want arrow.RecordBatch, got [][]arrow.RecordBatch, sc *arrow.Schema, bs int) {
	t.Helper()
	idCol := sc.FieldIndices("id")[0]
	seen := make([]bool, want.NumRows())
	for sub, bs0 := range got {
		for _, b := range bs0 {
			if !b.Schema().Equal(sc) {
				t.Fatalf("subtask %d: batch schema %s, want %s", sub, b.Schema(), sc)
			}
			n := int(b.NumRows())
			if n == 0 || n > bs {
				t.Fatalf("subtask %d: batch of %d rows, batch size %d", sub, n, bs)
			}
			ids := b.Column(idCol).(*array.Int64).Int64Values()
			id0 := int(ids[0])
			for i, id := range ids {
				if int(id) != id0+i {
					t.Fatalf("subtask %d: ids not consecutive in batch: %v", sub, ids)
				}
				if seen[id] {
					t.Fatalf("row id %d read twice", id)
				}
				seen[id] = true
			}
			for c, f := range sc.Fields() {
				w := want.Column(want.Schema().FieldIndices(f.Name)[0])
				if !array.SliceEqual(b.Column(c), 0, int64(n), w, int64(id0), int64(id0+n)) {
					ws := array.NewSlice(w, int64(id0), int64(id0+n))
					defer ws.Release()
					t.Fatalf("column %s rows [%d, %d):\n got %v\nwant %v", f.Name, id0, id0+n, b.Column(c), ws)
				}
			}
		}
	}
	for id, ok := range seen {
		if !ok {
			t.Fatalf("row id %d never read", id)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	d := newDataset(t, 1, mem)
	defer d.release()

	for _, dec := range []string{DecoderArrow, DecoderParquetGo} {
		for _, bs := range []int{1, 7, 1024, 65536} {
			for _, par := range []int{1, 2, 4} {
				t.Run(fmt.Sprintf("%s/batch=%d/par=%d", dec, bs, par), func(t *testing.T) {
					src, err := New(Options{Paths: []string{d.dir}, BatchSize: bs, Decoder: dec})
					if err != nil {
						t.Fatal(err)
					}
					if src.Decoder() != dec {
						t.Fatalf("decoder %s, want %s", src.Decoder(), dec)
					}
					if !src.Schema().Equal(d.sc) {
						t.Fatalf("schema\n%s\nwant\n%s", src.Schema(), d.sc)
					}
					files, _, pruned, rows, bytes := src.Stats()
					if files != 3 || pruned != 0 || rows != d.want.NumRows() {
						t.Fatalf("stats: files %d pruned %d rows %d, want 3, 0, %d", files, pruned, rows, d.want.NumRows())
					}
					got, ms := readAll(t, src, mem, par)
					defer releaseBatches(got)
					verify(t, d.want, got, src.Schema(), bs)

					var bytesIn int64
					var perSub []int64
					for i, m := range ms {
						bytesIn += m.BytesIn.Load()
						var n int64
						for _, b := range got[i] {
							n += b.NumRows()
						}
						perSub = append(perSub, n)
					}
					if bytesIn != bytes {
						t.Errorf("BytesIn sum %d, want Stats bytes %d", bytesIn, bytes)
					}
					// Greedy largest-first assignment: subtasks differ by at
					// most one row group.
					if spread := slices.Max(perSub) - slices.Min(perSub); spread > d.maxRGRows {
						t.Errorf("unbalanced split %v (largest row group %d)", perSub, d.maxRGRows)
					}
				})
			}
		}
	}
}

func TestProjection(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	d := newDataset(t, 2, mem)
	defer d.release()
	cols := []string{"text", "ts_ms", "id", "b"}
	for _, dec := range []string{DecoderArrow, DecoderParquetGo} {
		t.Run(dec, func(t *testing.T) {
			src, err := New(Options{Paths: []string{d.dir}, Columns: cols, BatchSize: 100, Decoder: dec})
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, f := range src.Schema().Fields() {
				names = append(names, f.Name)
			}
			if !slices.Equal(names, cols) {
				t.Fatalf("schema columns %v, want %v", names, cols)
			}
			// Only the projected column chunks count as work.
			_, _, _, _, bytes := src.Stats()
			full, _ := New(Options{Paths: []string{d.dir}})
			_, _, _, _, fullBytes := full.Stats()
			if bytes <= 0 || bytes >= fullBytes {
				t.Fatalf("projected bytes %d, all columns %d", bytes, fullBytes)
			}
			got, _ := readAll(t, src, mem, 2)
			defer releaseBatches(got)
			verify(t, d.want, got, src.Schema(), 100)
		})
	}
}

func TestSplitDeterministic(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	for iter := 0; iter < 50; iter++ {
		items := make([]workItem, rng.IntN(40))
		var maxRows int64
		for i := range items {
			items[i] = workItem{group: i, rows: rng.Int64N(1000)}
			maxRows = max(maxRows, items[i].rows)
		}
		p := 1 + rng.IntN(6)
		a, b := split(items, p), split(slices.Clone(items), p)
		var seen []int
		var loads []int64
		for s := range a {
			if !slices.EqualFunc(a[s], b[s], func(x, y workItem) bool { return x == y }) {
				t.Fatalf("split not deterministic")
			}
			var load int64
			for i, it := range a[s] {
				if i > 0 && it.group <= a[s][i-1].group {
					t.Fatalf("subtask %d items out of order", s)
				}
				seen = append(seen, it.group)
				load += it.rows
			}
			loads = append(loads, load)
		}
		slices.Sort(seen)
		if len(seen) != len(items) || (len(seen) > 0 && seen[len(seen)-1] != len(items)-1) {
			t.Fatalf("split lost or duplicated items: %v", seen)
		}
		if len(items) > 0 && slices.Max(loads)-slices.Min(loads) > maxRows {
			t.Fatalf("unbalanced: %v", loads)
		}
	}
}

func TestResolvePaths(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	d := newDataset(t, 4, mem)
	defer d.release()
	want := []string{filepath.Join(d.dir, "a.parquet"), filepath.Join(d.dir, "c.parquet"), filepath.Join(d.dir, "sub/b.parquet")}
	for _, paths := range [][]string{
		{d.dir},
		{filepath.Join(d.dir, "*.parquet"), filepath.Join(d.dir, "sub")},
		{filepath.Join(d.dir, "sub/b.parquet"), filepath.Join(d.dir, "?.parquet"), filepath.Join(d.dir, "a.parquet")},
	} {
		got, err := resolvePaths(paths)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) {
			t.Errorf("resolvePaths(%v) = %v, want %v", paths, got, want)
		}
	}
}

func TestRestore(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	d := newDataset(t, 5, mem)
	defer d.release()
	for _, dec := range []string{DecoderArrow, DecoderParquetGo} {
		for _, pp := range [][2]int{{2, 3}, {3, 1}, {1, 1}} {
			t.Run(fmt.Sprintf("%s/%d->%d", dec, pp[0], pp[1]), func(t *testing.T) {
				src, err := New(Options{Paths: []string{d.dir}, BatchSize: 97, Decoder: dec})
				if err != nil {
					t.Fatal(err)
				}
				ctx := context.Background()
				// First run: each subtask reads a few batches, then snapshots.
				var got [][]arrow.RecordBatch
				states := make([][]byte, pp[0])
				for i := 0; i < pp[0]; i++ {
					r, err := src.Open(ctx, &arrowexec.Task{Subtask: i, Parallelism: pp[0], Mem: mem})
					if err != nil {
						t.Fatal(err)
					}
					got = append(got, drain(t, r, 3+2*i))
					snap, err := r.(*Reader).SnapshotState(ctx, 1)
					if err != nil {
						t.Fatal(err)
					}
					states[i] = snap.Operator
					// Rows read after the snapshot are lost with the crash.
					lost := drain(t, r, 2)
					releaseBatches([][]arrow.RecordBatch{lost})
					r.Close()
				}
				// Second run restores with another parallelism.
				for i := 0; i < pp[1]; i++ {
					r, err := src.Open(ctx, &arrowexec.Task{Subtask: i, Parallelism: pp[1], Mem: mem,
						Restore: &arrowexec.RestoreState{CheckpointID: 1, Operator: states}})
					if err != nil {
						t.Fatal(err)
					}
					got = append(got, drain(t, r, -1))
					r.Close()
				}
				defer releaseBatches(got)
				verify(t, d.want, got, src.Schema(), 97)
			})
		}
	}
}

func TestSeek(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	d := newDataset(t, 6, mem)
	defer d.release()
	for _, dec := range []string{DecoderArrow, DecoderParquetGo} {
		t.Run(dec, func(t *testing.T) {
			src, err := New(Options{Paths: []string{d.dir}, BatchSize: 50, Decoder: dec})
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			task := &arrowexec.Task{Parallelism: 1, Mem: mem}
			// Read k batches, remember the position, read everything else;
			// a new reader seeking to the position must produce the same rest.
			for _, k := range []int{1, 5, 12, 40} {
				r, _ := src.Open(ctx, task)
				head := drain(t, r, k)
				pos := r.(*Reader).Position()
				rest := drain(t, r, -1)
				r.Close()

				r2, _ := src.Open(ctx, task)
				if err := r2.(*Reader).Seek(pos); err != nil {
					t.Fatal(err)
				}
				rest2 := drain(t, r2, -1)
				r2.Close()
				if len(rest) != len(rest2) {
					t.Fatalf("k=%d: %d batches after seek, want %d", k, len(rest2), len(rest))
				}
				for i := range rest {
					if !array.RecordEqual(rest[i], rest2[i]) {
						t.Fatalf("k=%d: batch %d differs after seek to %+v", k, i, pos)
					}
				}
				all := [][]arrow.RecordBatch{head, rest}
				verify(t, d.want, all, src.Schema(), 50)
				releaseBatches(append(all, rest2))
			}
		})
	}
}

// TestConcurrentSubtasks runs the subtasks of one Source at the same time,
// as the runtime does (run with -race).
func TestConcurrentSubtasks(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	d := newDataset(t, 8, mem)
	defer d.release()
	for _, dec := range []string{DecoderArrow, DecoderParquetGo} {
		src, err := New(Options{Paths: []string{d.dir}, BatchSize: 333, Decoder: dec})
		if err != nil {
			t.Fatal(err)
		}
		const par = 4
		got := make([][]arrow.RecordBatch, par)
		errs := make([]error, par)
		var wg sync.WaitGroup
		for i := 0; i < par; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r, err := src.Open(context.Background(), &arrowexec.Task{Subtask: i, Parallelism: par, Mem: mem})
				if err != nil {
					errs[i] = err
					return
				}
				defer r.Close()
				for {
					b, err := r.Next(context.Background())
					if err == io.EOF {
						return
					}
					if err != nil {
						errs[i] = err
						return
					}
					got[i] = append(got[i], b)
				}
			}()
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		verify(t, d.want, got, src.Schema(), 333)
		releaseBatches(got)
	}
}

func TestCancel(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	d := newDataset(t, 7, mem)
	defer d.release()
	src, err := New(Options{Paths: []string{d.dir}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r, _ := src.Open(ctx, &arrowexec.Task{Parallelism: 1, Mem: mem})
	defer r.Close()
	cancel()
	if _, err := r.Next(ctx); err != context.Canceled {
		t.Fatalf("Next after cancel: %v", err)
	}
}
