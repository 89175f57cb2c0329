package parquet

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/riffle-dev/riffle/internal/oracle"
)

// dictScript writes string columns the ways writers do: a: dictionary
// pages only, small pages (many pages per chunk); b: a dictionary that
// outgrows its page limit, so the writer falls back to plain pages in the
// middle of a chunk; c: no dictionary at all; d: a pandas categorical (an
// Arrow dictionary in the file's schema). NULLs in every column.
const dictScript = `
import sys, random
import pyarrow as pa, pyarrow.parquet as pq
d = sys.argv[1]
random.seed(7)
n = 3000
few = ['cart', 'view', 'purchase', 'héllo', '', 'x%y']
def pick(vals, p):
    return [None if random.random() < p else random.choice(vals) for _ in range(n)]
many = ['w%05d' % i for i in range(2500)]
t = pa.table({
  'id': pa.array(range(n), pa.int64()),
  's': pa.array(pick(few, 0.1), pa.string()),
})
pq.write_table(t, d + '/a.parquet', row_group_size=1100, data_page_size=200, use_dictionary=True)
t = pa.table({
  'id': pa.array(range(n, 2*n), pa.int64()),
  's': pa.array(pick(many, 0.05), pa.string()),
})
pq.write_table(t, d + '/b.parquet', row_group_size=2000, data_page_size=300, dictionary_pagesize_limit=2000, use_dictionary=True)
t = pa.table({
  'id': pa.array(range(2*n, 3*n), pa.int64()),
  's': pa.array(pick(few, 0.2), pa.string()),
})
pq.write_table(t, d + '/c.parquet', use_dictionary=False)
t = pa.table({
  'id': pa.array(range(3*n, 4*n), pa.int64()),
  's': pa.array(pick(few, 0.3), pa.string()).dictionary_encode(),
})
pq.write_table(t, d + '/d.parquet', row_group_size=700)
`

// TestDictionaryColumn reads string columns dictionary-encoded from files
// with dictionary pages, a dictionary that falls back to plain pages
// mid-chunk, plain pages only and a categorical, alone and as one glob,
// with both decoders, several batch sizes and parallelism, and checks
// every row against DuckDB.
func TestDictionaryColumn(t *testing.T) {
	dir := t.TempDir()
	if out, err := exec.Command(oracle.Python(t), "-c", dictScript, dir).CombinedOutput(); err != nil {
		t.Fatalf("writing files: %v\n%s", err, out)
	}
	for _, file := range []string{"a", "b", "c", "d", "*"} {
		path := filepath.Join(dir, file+".parquet")
		want := map[int64]string{}
		for _, r := range oracle.DuckDB(t, fmt.Sprintf(`SELECT id, coalesce(s, '<NULL>') FROM read_parquet('%s')`, path)).Rows {
			want[r[0].(int64)] = r[1].(string)
		}
		for _, dec := range []string{DecoderParquetGo, DecoderArrow} {
			for _, bs := range []int{1, 97, 4096} {
				for _, par := range []int{1, 2} {
					t.Run(fmt.Sprintf("%s/%s/bs=%d/p=%d", file, dec, bs, par), func(t *testing.T) {
						src, err := New(Options{Paths: []string{path}, Decoder: dec, BatchSize: bs, Dictionary: []string{"s"}})
						if err != nil {
							if dec == DecoderParquetGo && file == "*" || file == "d" {
								t.Skip(err) // files with differing schemas use the arrow decoder
							}
							t.Fatal(err)
						}
						wt := dictType(arrow.BinaryTypes.String)
						if got := src.Schema().Field(1).Type; !arrow.TypeEqual(got, wt) {
							t.Fatalf("schema type %s, want %s", got, wt)
						}
						mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
						defer mem.AssertSize(t, 0)
						parts, _ := readAll(t, src, mem, par)
						defer releaseBatches(parts)
						seen := 0
						for _, bs := range parts {
							for _, b := range bs {
								ids := b.Column(0).(*array.Int64)
								d, ok := b.Column(1).(*array.Dictionary)
								if !ok || !arrow.TypeEqual(d.DataType(), wt) {
									t.Fatalf("column is %s, want %s", b.Column(1).DataType(), wt)
								}
								vals := d.Dictionary().(*array.String)
								for r := 0; r < d.Len(); r++ {
									got := "<NULL>"
									if d.IsValid(r) {
										got = vals.Value(d.GetValueIndex(r))
									}
									if w, ok := want[ids.Value(r)]; !ok || got != w {
										t.Fatalf("id %d: %q, DuckDB %q", ids.Value(r), got, w)
									}
									seen++
								}
							}
						}
						if seen != len(want) {
							t.Fatalf("%d rows, DuckDB %d", seen, len(want))
						}
					})
				}
			}
		}
	}
}

// TestDictionaryShared checks that the batches of one column chunk with
// dictionary pages share one dictionary (no per-batch copy) and that a
// column that is not a string is refused.
func TestDictionaryShared(t *testing.T) {
	dir := t.TempDir()
	if out, err := exec.Command(oracle.Python(t), "-c", dictScript, dir).CombinedOutput(); err != nil {
		t.Fatalf("writing files: %v\n%s", err, out)
	}
	if _, err := New(Options{Paths: []string{filepath.Join(dir, "a.parquet")}, Dictionary: []string{"id"}}); err == nil {
		t.Fatal("dictionary int64 column accepted")
	}
	src, err := New(Options{Paths: []string{filepath.Join(dir, "a.parquet")}, Decoder: DecoderParquetGo, BatchSize: 100, Dictionary: []string{"s"}})
	if err != nil {
		t.Fatal(err)
	}
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	parts, _ := readAll(t, src, mem, 1)
	defer releaseBatches(parts)
	dicts := map[*array.Data]bool{}
	for _, b := range parts[0] {
		dicts[b.Column(1).(*array.Dictionary).Dictionary().Data().(*array.Data)] = true
	}
	// 3000 rows in row groups of 1100: three chunks, three dictionaries.
	if len(parts[0]) < 30 || len(dicts) != 3 {
		t.Fatalf("%d batches with %d distinct dictionaries, want 30+ batches sharing 3", len(parts[0]), len(dicts))
	}
}

// TestDictionaryFallback checks that file b holds both kinds of batches:
// ones sharing the chunk's dictionary and identity-encoded ones from the
// plain pages the writer fell back to (so TestDictionaryColumn covers the
// switch inside a chunk).
func TestDictionaryFallback(t *testing.T) {
	dir := t.TempDir()
	if out, err := exec.Command(oracle.Python(t), "-c", dictScript, dir).CombinedOutput(); err != nil {
		t.Fatalf("writing files: %v\n%s", err, out)
	}
	src, err := New(Options{Paths: []string{filepath.Join(dir, "b.parquet")}, Decoder: DecoderParquetGo, BatchSize: 64, Dictionary: []string{"s"}})
	if err != nil {
		t.Fatal(err)
	}
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	parts, _ := readAll(t, src, mem, 1)
	defer releaseBatches(parts)
	shared, identity := 0, 0
	for _, b := range parts[0] {
		if d := b.Column(1).(*array.Dictionary); d.Dictionary().Len() == d.Len() {
			identity++
		} else {
			shared++
		}
	}
	if shared == 0 || identity == 0 {
		t.Fatalf("%d batches sharing a dictionary, %d identity-encoded: want both", shared, identity)
	}
}
