package ops_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/arrowexec/exectest"
	"github.com/riffle-dev/riffle/arrowexec/ops"
	"github.com/riffle-dev/riffle/internal/oracle"
)

// These tests check sort, top-N, limit and unnest against DuckDB: random
// rows with NULLs (and NaN, -0, ±Inf, empty strings, empty and NULL lists)
// are written to Parquet, run through the operators across batch sizes and
// parallelism, written back to Parquet, and both files are read by DuckDB,
// one with the query's ORDER BY / LIMIT / UNNEST.

var stepsSchema = arrow.NewSchema([]arrow.Field{
	{Name: "id", Type: arrow.PrimitiveTypes.Int64},
	{Name: "i", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
	{Name: "f", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: "s", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "b", Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
	{Name: "ts", Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}, Nullable: true},
	{Name: "u", Type: arrow.PrimitiveTypes.Uint16, Nullable: true},
	{Name: "l", Type: arrow.ListOf(arrow.PrimitiveTypes.Int64), Nullable: true},
}, nil)

var stepsStrings = []string{"", "a", "ab", "abc", "b", "B", "a b", "é", "zz"}
var stepsFloats = []float64{0, math.Copysign(0, -1), 1.5, -1.5, 2, math.Inf(1), math.Inf(-1), math.NaN(), -1e300}

// stepsRows returns n random rows (id = first..first+n-1) in batches of per.
func stepsRows(rng *rand.Rand, mem memory.Allocator, n, per int) []arrow.RecordBatch {
	var out []arrow.RecordBatch
	nullP := 0.2
	for lo := 0; lo < n; lo += per {
		rb := array.NewRecordBuilder(mem, stepsSchema)
		for r := lo; r < min(n, lo+per); r++ {
			rb.Field(0).(*array.Int64Builder).Append(int64(r))
			for c := 1; c < stepsSchema.NumFields(); c++ {
				fb := rb.Field(c)
				if rng.Float64() < nullP {
					fb.AppendNull()
					continue
				}
				switch fb := fb.(type) {
				case *array.Int32Builder:
					fb.Append(int32(rng.IntN(9) - 4))
				case *array.Float64Builder:
					fb.Append(stepsFloats[rng.IntN(len(stepsFloats))])
				case *array.StringBuilder:
					fb.Append(stepsStrings[rng.IntN(len(stepsStrings))])
				case *array.BooleanBuilder:
					fb.Append(rng.IntN(2) == 0)
				case *array.TimestampBuilder:
					fb.Append(arrow.Timestamp(rng.Int64N(5)*1_000_000 - 2_000_000))
				case *array.Uint16Builder:
					fb.Append(uint16(rng.IntN(5) * 20000))
				case *array.ListBuilder:
					fb.Append(true)
					vb := fb.ValueBuilder().(*array.Int64Builder)
					for range rng.IntN(4) {
						if rng.IntN(5) == 0 {
							vb.AppendNull()
						} else {
							vb.Append(rng.Int64N(100) - 50)
						}
					}
				}
			}
		}
		out = append(out, rb.NewRecordBatch())
		rb.Release()
	}
	return out
}

func writeParquet(t *testing.T, path string, schema *arrow.Schema, bs []arrow.RecordBatch) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w, err := pqarrow.NewFileWriter(schema, f, parquet.NewWriterProperties(), pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bs {
		if err := w.WriteBuffered(b); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// runSteps runs src (parallelism p) -> build -> collecting sink and
// returns the sink's batches, subtask 0 first.
func runSteps(t *testing.T, mem memory.Allocator, schema *arrow.Schema, in []arrow.RecordBatch, p int,
	build func(g *arrowexec.Graph, src *arrowexec.Node) *arrowexec.Node) ([]arrow.RecordBatch, func()) {
	t.Helper()
	src := exectest.NewSource(schema, in)
	defer src.Release()
	g := arrowexec.NewGraph()
	sn := g.AddSource("src", src, p)
	last := build(g, sn)
	sink := exectest.NewSink()
	g.Add("sink", sink, last.Parallelism(), last.Forward())
	job, err := g.Compile(arrowexec.RunOptions{Mem: mem, QueueDepth: 2})
	if err != nil {
		t.Fatal(err)
	}
	if err := job.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	return sink.All(), sink.Release
}

// duckRows reads a Parquet file through DuckDB, rows as strings, in file
// order (DuckDB preserves insertion order of a scan), -0 as 0.
func duckRows(t *testing.T, query string) [][]string {
	t.Helper()
	rows := oracle.DuckDBStrings(t, query)
	for _, r := range rows {
		for j, v := range r {
			if v == "-0" {
				// DuckDB's ORDER BY returns a -0 key as 0; riffle keeps
				// the value as it came. They are equal keys.
				r[j] = "0"
			}
		}
	}
	return rows
}

func project(rows [][]string, cols []int) []string {
	out := make([]string, len(rows))
	for i, r := range rows {
		var parts []string
		for _, c := range cols {
			parts = append(parts, r[c])
		}
		out[i] = strings.Join(parts, "|")
	}
	return out
}

func multiset(rows [][]string) []string {
	out := project(rows, nil)
	for i, r := range rows {
		out[i] = strings.Join(r, "|")
	}
	slices.Sort(out)
	return out
}

func randomKeys(rng *rand.Rand) []ops.SortKey {
	cols := []string{"i", "f", "s", "b", "ts", "u"}
	rng.Shuffle(len(cols), func(a, b int) { cols[a], cols[b] = cols[b], cols[a] })
	keys := make([]ops.SortKey, 1+rng.IntN(3))
	for j := range keys {
		keys[j] = ops.SortKey{Column: cols[j], Desc: rng.IntN(2) == 0, NullsFirst: rng.IntN(3) == 0}
	}
	if rng.IntN(2) == 0 {
		keys = append(keys, ops.SortKey{Column: "id", Desc: rng.IntN(2) == 0}) // a total order
	}
	return keys
}

func orderBy(keys []ops.SortKey) string {
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k.Column
		if k.Desc {
			parts[i] += " DESC"
		}
		if k.NullsFirst {
			parts[i] += " NULLS FIRST"
		} else {
			parts[i] += " NULLS LAST"
		}
	}
	return strings.Join(parts, ", ")
}

// TestSortTopNMatchDuckDB compares sort and top-N with DuckDB's ORDER BY
// and ORDER BY ... LIMIT: the key columns row by row (rows with equal keys
// may come in any order), and every row as a multiset (sort) or a subset
// of the input (top-N). With id among the keys the order is total and
// whole rows must match.
func TestSortTopNMatchDuckDB(t *testing.T) {
	oracle.Python(t)
	dir := t.TempDir()
	for trial := range 8 {
		rng := rand.New(rand.NewPCG(uint64(trial), 7))
		mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
		n := []int{0, 1, 37, 500, 2000}[rng.IntN(5)]
		if trial < 2 {
			n = 1500
		}
		per := []int{1, 7, 64, 1000}[rng.IntN(4)]
		p := 1 + rng.IntN(3)
		keys := randomKeys(rng)
		limit := int64(-1)
		if trial%2 == 1 {
			limit = []int64{0, 1, 10, 300, 5000}[rng.IntN(5)]
		}
		name := fmt.Sprintf("trial%d-n%d-per%d-p%d-limit%d-%s", trial, n, per, p, limit, orderBy(keys))
		t.Run(name, func(t *testing.T) {
			defer mem.AssertSize(t, 0)
			in := stepsRows(rng, mem, n, per)
			defer releaseAll(in)
			inPath := filepath.Join(dir, fmt.Sprintf("in%d.parquet", trial))
			writeParquet(t, inPath, stepsSchema, in)
			out, release := runSteps(t, mem, stepsSchema, in, p, func(g *arrowexec.Graph, src *arrowexec.Node) *arrowexec.Node {
				if limit < 0 {
					return g.Add("sort", ops.NewSort(keys), 1, src.Rebalance())
				}
				part := g.Add("top-partial", ops.NewTopN(keys, limit), p, src.Forward())
				return g.Add("top", ops.NewTopN(keys, limit), 1, part.Rebalance())
			})
			defer release()
			outPath := filepath.Join(dir, fmt.Sprintf("out%d.parquet", trial))
			writeParquet(t, outPath, stepsSchema, out)

			cols := "id, i, f, s, b, ts, u, l"
			q := fmt.Sprintf("SELECT %s FROM read_parquet('%s') ORDER BY %s", cols, inPath, orderBy(keys))
			if limit >= 0 {
				q += fmt.Sprintf(" LIMIT %d", limit)
			}
			want := duckRows(t, q)
			got := duckRows(t, fmt.Sprintf("SELECT %s FROM read_parquet('%s')", cols, outPath))
			if len(got) != len(want) {
				t.Fatalf("%d rows, DuckDB %d", len(got), len(want))
			}
			names := strings.Split(cols, ", ")
			var keyCols []int
			for _, k := range keys {
				keyCols = append(keyCols, slices.Index(names, k.Column))
			}
			gk, wk := project(got, keyCols), project(want, keyCols)
			for r := range gk {
				if gk[r] != wk[r] {
					t.Fatalf("row %d: keys %s, DuckDB %s", r, gk[r], wk[r])
				}
			}
			allCols := []int{0, 1, 2, 3, 4, 5, 6, 7}
			total := keys[len(keys)-1].Column == "id"
			switch {
			case total || limit < 0:
				if total && !slices.EqualFunc(got, want, slices.Equal) {
					t.Fatalf("rows differ from DuckDB's in order: %s", firstDiff(project(got, allCols), project(want, allCols)))
				}
				if g, w := multiset(got), multiset(want); !slices.Equal(g, w) {
					t.Fatalf("rows differ from DuckDB's as a multiset: %s", firstDiff(g, w))
				}
			default:
				all := multiset(duckRows(t, fmt.Sprintf("SELECT %s FROM read_parquet('%s')", cols, inPath)))
				for _, r := range multiset(got) {
					if _, ok := slices.BinarySearch(all, r); !ok {
						t.Fatalf("row %s is not in the input", r)
					}
				}
			}
		})
	}
}

// TestLimitAndUnnestMatchDuckDB checks limit (partial + final) by count
// and membership, and unnest by multiset against DuckDB's UNNEST.
func TestLimitAndUnnestMatchDuckDB(t *testing.T) {
	oracle.Python(t)
	dir := t.TempDir()
	for trial := range 4 {
		rng := rand.New(rand.NewPCG(uint64(trial), 11))
		mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
		n := []int{0, 3, 600, 1200}[trial]
		per := []int{1, 5, 64, 333}[rng.IntN(4)]
		p := 1 + rng.IntN(3)
		limit := []int64{0, 2, 50, 10000}[rng.IntN(4)]
		t.Run(fmt.Sprintf("n%d-per%d-p%d-limit%d", n, per, p, limit), func(t *testing.T) {
			defer mem.AssertSize(t, 0)
			in := stepsRows(rng, mem, n, per)
			defer releaseAll(in)
			inPath := filepath.Join(dir, fmt.Sprintf("in%d.parquet", trial))
			writeParquet(t, inPath, stepsSchema, in)
			cols := "id, i, f, s, b, ts, u, l"

			out, release := runSteps(t, mem, stepsSchema, in, p, func(g *arrowexec.Graph, src *arrowexec.Node) *arrowexec.Node {
				part := g.Add("limit-partial", ops.NewLimit(limit), p, src.Forward())
				return g.Add("limit", ops.NewLimit(limit), 1, part.Rebalance())
			})
			outPath := filepath.Join(dir, fmt.Sprintf("limit%d.parquet", trial))
			writeParquet(t, outPath, stepsSchema, out)
			release()
			got := multiset(duckRows(t, fmt.Sprintf("SELECT %s FROM read_parquet('%s')", cols, outPath)))
			all := multiset(duckRows(t, fmt.Sprintf("SELECT %s FROM read_parquet('%s')", cols, inPath)))
			if want := min(int(limit), len(all)); len(got) != want {
				t.Fatalf("limit %d: %d rows, want %d", limit, len(got), want)
			}
			for _, r := range got {
				if _, ok := slices.BinarySearch(all, r); !ok {
					t.Fatalf("row %s is not in the input", r)
				}
			}

			un := ops.NewUnnest("l")
			outSchema, err := un.Schema([]*arrow.Schema{stepsSchema})
			if err != nil {
				t.Fatal(err)
			}
			out, release = runSteps(t, mem, stepsSchema, in, p, func(g *arrowexec.Graph, src *arrowexec.Node) *arrowexec.Node {
				return g.Add("unnest", ops.NewUnnest("l"), p, src.Forward())
			})
			outPath = filepath.Join(dir, fmt.Sprintf("unnest%d.parquet", trial))
			writeParquet(t, outPath, outSchema, out)
			release()
			gotU := multiset(duckRows(t, fmt.Sprintf("SELECT %s FROM read_parquet('%s')", cols, outPath)))
			wantU := multiset(duckRows(t, fmt.Sprintf("SELECT id, i, f, s, b, ts, u, UNNEST(l) AS l FROM read_parquet('%s')", inPath)))
			if !slices.Equal(gotU, wantU) {
				t.Fatalf("unnest: %d rows, DuckDB %d; first differences: %v", len(gotU), len(wantU), firstDiff(gotU, wantU))
			}
		})
	}
}

func firstDiff(a, b []string) string {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return fmt.Sprintf("%q vs %q", a[i], b[i])
		}
	}
	return "one is a prefix of the other"
}

func TestParseSortKey(t *testing.T) {
	for in, want := range map[string]ops.SortKey{
		"a":                      {Column: "a"},
		"a asc":                  {Column: "a"},
		"a DESC":                 {Column: "a", Desc: true},
		"a desc nulls first":     {Column: "a", Desc: true, NullsFirst: true},
		"a NULLS LAST":           {Column: "a"},
		"  x   Asc  Nulls First": {Column: "x", NullsFirst: true},
	} {
		got, err := ops.ParseSortKey(in)
		if err != nil || got != want {
			t.Errorf("ParseSortKey(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "a DOWN", "a NULLS", "a NULLS MIDDLE", "a b c"} {
		if _, err := ops.ParseSortKey(bad); err == nil {
			t.Errorf("ParseSortKey(%q): no error", bad)
		}
	}
}
