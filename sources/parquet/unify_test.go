package parquet

import (
	"encoding/hex"
	"fmt"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/riffle-dev/riffle/internal/oracle"
)

// unifyScript writes three files whose schemas differ compatibly: a.parquet
// by pyarrow (utf8, dictionary<int32, utf8>, int32, binary), b.parquet by
// pandas (large_utf8 from string[pyarrow], a categorical: dictionary<int8,
// utf8>, no v and bin, an extra float column w) and c.parquet by pyarrow
// (large_utf8, plain utf8 for cat, int64 v, large_binary, an extra column
// note, columns in another order). NULLs everywhere but id.
const unifyScript = `
import sys, random
import pyarrow as pa, pyarrow.parquet as pq, pandas as pd
d = sys.argv[1]
rng = random.Random(7)
words = ['alpha', 'beta', '', 'ünï', 'gamma']
def s(): return None if rng.random() < 0.2 else rng.choice(words)
def i(): return None if rng.random() < 0.2 else rng.randint(-1000, 1000)
def b(): return None if rng.random() < 0.2 else bytes(rng.randint(0, 255) for _ in range(rng.randint(0, 4)))
n = 300
a = pa.table({
  'id': pa.array(range(0, n), pa.int64()),
  'name': pa.array([s() for _ in range(n)], pa.string()),
  'cat': pa.array([s() for _ in range(n)], pa.string()).dictionary_encode(),
  'v': pa.array([i() for _ in range(n)], pa.int32()),
  'bin': pa.array([b() for _ in range(n)], pa.binary()),
})
pq.write_table(a, d + '/a.parquet', row_group_size=128)
df = pd.DataFrame({
  'id': pd.array(range(n, 2*n), dtype='int64'),
  'name': pd.array([s() for _ in range(n)], dtype='string[pyarrow]'),
  'cat': pd.Categorical([s() for _ in range(n)]),
  'w': [None if rng.random() < 0.2 else rng.random() for _ in range(n)],
})
df.to_parquet(d + '/b.parquet', index=False)
c = pa.table({
  'note': pa.array([s() for _ in range(n)], pa.string()),
  'v': pa.array([i() for _ in range(n)], pa.int64()),
  'id': pa.array(range(2*n, 3*n), pa.int64()),
  'bin': pa.array([b() for _ in range(n)], pa.large_binary()),
  'cat': pa.array([s() for _ in range(n)], pa.string()),
  'name': pa.array([s() for _ in range(n)], pa.large_string()),
})
pq.write_table(c, d + '/c.parquet', row_group_size=100)
`

func writeUnifyFiles(t testing.TB, dir string) {
	t.Helper()
	py := oracle.Python(t)
	if out, err := exec.Command(py, "-c", unifyScript, dir).CombinedOutput(); err != nil {
		t.Fatalf("writing files: %v\n%s", err, out)
	}
}

// cell renders value i of a for comparison with DuckDB: binary as upper-case
// hex (DuckDB's hex()), NULL as "NULL".
func cell(a arrow.Array, i int) string {
	if a.IsNull(i) {
		return "NULL"
	}
	switch a := a.(type) {
	case *array.Int64:
		return strconv.FormatInt(a.Value(i), 10)
	case *array.Float64:
		return strconv.FormatFloat(a.Value(i), 'g', -1, 64)
	case *array.String:
		return a.Value(i)
	case *array.LargeString:
		return a.Value(i)
	case *array.Binary:
		return strings.ToUpper(hex.EncodeToString(a.Value(i)))
	case *array.LargeBinary:
		return strings.ToUpper(hex.EncodeToString(a.Value(i)))
	}
	return fmt.Sprintf("unexpected %s", a.DataType())
}

// TestUnionByName reads a glob over files written by pyarrow and pandas
// whose schemas differ compatibly and compares every row with DuckDB's
// read_parquet(union_by_name=true) on the same files, over projections,
// parallelism and batch sizes.
func TestUnionByName(t *testing.T) {
	dir := t.TempDir()
	writeUnifyFiles(t, dir)
	glob := filepath.Join(dir, "*.parquet")

	want := oracle.DuckDB(t, fmt.Sprintf(
		`SELECT * REPLACE (hex(bin) AS bin) FROM read_parquet('%s', union_by_name=true) ORDER BY id`, glob))
	src, err := New(Options{Paths: []string{glob}})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range src.Schema().Fields() {
		names = append(names, f.Name)
	}
	if strings.Join(names, ",") != strings.Join(want.Columns, ",") {
		t.Fatalf("columns %v, DuckDB %v", names, want.Columns)
	}
	wantTypes := map[string]arrow.DataType{
		"id": arrow.PrimitiveTypes.Int64, "name": arrow.BinaryTypes.String, "cat": arrow.BinaryTypes.String,
		"v": arrow.PrimitiveTypes.Int64, "bin": arrow.BinaryTypes.Binary, "w": arrow.PrimitiveTypes.Float64,
		"note": arrow.BinaryTypes.String,
	}
	for _, f := range src.Schema().Fields() {
		if !arrow.TypeEqual(f.Type, wantTypes[f.Name]) || (f.Name != "id" && !f.Nullable) {
			t.Errorf("column %s: %s nullable=%v, want %s nullable", f.Name, f.Type, f.Nullable, wantTypes[f.Name])
		}
	}

	for _, cols := range [][]string{nil, {"w", "id", "name", "note"}, {"id", "cat", "v"}} {
		for _, par := range []int{1, 3} {
			for _, bs := range []int{7, 1000} {
				t.Run(fmt.Sprintf("cols=%v/p=%d/bs=%d", cols, par, bs), func(t *testing.T) {
					mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
					defer mem.AssertSize(t, 0)
					s, err := New(Options{Paths: []string{glob}, Columns: cols, BatchSize: bs})
					if err != nil {
						t.Fatal(err)
					}
					got := unifiedRows(t, s, mem, par)
					if len(got) != len(want.Rows) {
						t.Fatalf("%d rows, DuckDB %d", len(got), len(want.Rows))
					}
					wantS := want.Strings()
					for i, row := range got {
						for j, f := range s.Schema().Fields() {
							k := slicesIndex(want.Columns, f.Name)
							if row[j] != wantS[i][k] {
								t.Fatalf("row %d column %s: %q, DuckDB %q", i, f.Name, row[j], wantS[i][k])
							}
						}
					}
				})
			}
		}
	}
}

func slicesIndex(xs []string, x string) int {
	for i, v := range xs {
		if v == x {
			return i
		}
	}
	return -1
}

// unifiedRows reads every row with par subtasks, renders it with cell and
// sorts the rows by id (the column named "id").
func unifiedRows(t *testing.T, s *Source, mem memory.Allocator, par int) [][]string {
	t.Helper()
	batches, _ := readAll(t, s, mem, par)
	defer releaseBatches(batches)
	idCol := s.Schema().FieldIndices("id")[0]
	type row struct {
		id    int64
		cells []string
	}
	var rows []row
	for _, sub := range batches {
		for _, b := range sub {
			for _, f := range b.Schema().Fields() {
				if f.Type.ID() == arrow.DICTIONARY {
					t.Fatalf("column %s left dictionary-encoded in a unified scan", f.Name)
				}
			}
			for i := 0; i < int(b.NumRows()); i++ {
				r := row{id: b.Column(idCol).(*array.Int64).Value(i)}
				for _, c := range b.Columns() {
					r.cells = append(r.cells, cell(c, i))
				}
				rows = append(rows, r)
			}
		}
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].id < rows[j].id })
	out := make([][]string, len(rows))
	for i, r := range rows {
		out[i] = r.cells
	}
	return out
}

// TestUnionByNameIncompatible: a column that is an integer in one file and a
// string in another fails New, naming the column and both files.
func TestUnionByNameIncompatible(t *testing.T) {
	dir := t.TempDir()
	py := oracle.Python(t)
	script := `
import sys, pyarrow as pa, pyarrow.parquet as pq
d = sys.argv[1]
pq.write_table(pa.table({'id': pa.array([1, None], pa.int64()), 'v': pa.array([1, 2], pa.int64())}), d + '/a.parquet')
pq.write_table(pa.table({'id': pa.array([3], pa.int64()), 'v': pa.array(['x'], pa.string())}), d + '/b.parquet')
`
	if out, err := exec.Command(py, "-c", script, dir).CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	_, err := New(Options{Paths: []string{dir}})
	if err == nil {
		t.Fatal("int64 and utf8 unified")
	}
	for _, s := range []string{`"v"`, "a.parquet", "b.parquet", "int64", "utf8"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not name %s", err, s)
		}
	}
	// DuckDB's union_by_name would read both as VARCHAR; riffle refuses on
	// purpose (issue 14: an incompatible difference fails naming both files).
	if _, err := New(Options{Paths: []string{filepath.Join(dir, "a.parquet")}}); err != nil {
		t.Fatalf("one file alone: %v", err)
	}
}

// TestDictionaryFilePrunes: a single pandas-style file with a categorical
// (read decoded, through the arrow decoder) still prunes row groups by
// statistics, and reads the categorical as utf8.
func TestDictionaryFilePrunes(t *testing.T) {
	dir := t.TempDir()
	py := oracle.Python(t)
	script := `
import sys, pyarrow as pa, pyarrow.parquet as pq
t = pa.table({'id': pa.array(range(200), pa.int64()),
              'cat': pa.array([None if i % 7 == 0 else 'c%d' % (i % 3) for i in range(200)]).dictionary_encode()})
pq.write_table(t, sys.argv[1] + '/d.parquet', row_group_size=50)
`
	if out, err := exec.Command(py, "-c", script, dir).CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	src, err := New(Options{Paths: []string{dir}, Predicates: []Predicate{{Column: "id", Op: ">=", Value: int64(120)}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, rgs, pruned, rows, _ := src.Stats(); rgs != 4 || pruned != 2 || rows != 100 {
		t.Fatalf("Stats: %d row groups, %d pruned, %d rows; want 4, 2, 100", rgs, pruned, rows)
	}
	if ty := src.Schema().Field(1).Type; !arrow.TypeEqual(ty, arrow.BinaryTypes.String) {
		t.Fatalf("cat read as %s, want utf8", ty)
	}
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rows := unifiedRows(t, src, mem, 2)
	for i, r := range rows {
		k := 100 + i
		want := "NULL"
		if k%7 != 0 {
			want = fmt.Sprintf("c%d", k%3)
		}
		if r[0] != strconv.Itoa(k) || r[1] != want {
			t.Fatalf("row %d: %v, want [%d %s]", i, r, k, want)
		}
	}
}
