package expr

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	duck "github.com/riffle-dev/riffle/internal/oracle"
)

// decScript writes dec.parquet with pyarrow: decimals of three precisions
// (values near the comparison literals, so ties and half-way roundings
// occur), an integer and a float column, all with NULLs.
const decScript = `
import sys, random, decimal
import pyarrow as pa, pyarrow.parquet as pq
rng = random.Random(11)
n = 2000
def dec(scale, big):
    if rng.random() < 0.15: return None
    q = decimal.Decimal(1).scaleb(-scale)
    if rng.random() < 0.3:
        return decimal.Decimal(rng.choice(['5', '5.25', '0.1', '-2.5', '2.5', '0', '-0.05', '5.249', '99'])).quantize(q)
    return (decimal.Decimal(rng.randint(-big, big)) * q).quantize(q)
cols = {
  'id': pa.array(range(n), pa.int64()),
  'd1': pa.array([dec(2, 1500) for _ in range(n)], pa.decimal128(12, 2)),
  'd2': pa.array([dec(4, 150000) for _ in range(n)], pa.decimal128(20, 4)),
  'd3': pa.array([dec(10, 10**12) for _ in range(n)], pa.decimal128(38, 10)),
  'i': pa.array([None if rng.random() < 0.15 else rng.randint(-10, 10) for _ in range(n)], pa.int64()),
  'f': pa.array([None if rng.random() < 0.15 else rng.randint(-40, 40) / 4 for _ in range(n)], pa.float64()),
}
for c in ['d1', 'd2', 'd3']:
    cols[c] = cols[c].cast(cols[c].type)  # fail loudly on a value out of precision
pq.write_table(pa.table(cols), sys.argv[1])
`

// decCases are evaluated by riffle and by DuckDB (after replacing riffle's
// type names with DuckDB's) on the same file.
var decCases = []string{
	"d1 > 5", "d1 >= 5", "d1 = 5", "d1 <> 5", "d1 < 5", "d1 <= 5",
	"d1 > 5.25", "d1 = 5.25", "d1 <= 5.25", "d1 = 0.1", "d1 < -0.05", "d1 > 5.249", "d1 = 5.249", "d1 <> 5.249",
	"5 < d1", "d1 > 1e40", "d1 < -1e40", "d1 > 99999999999",
	"d2 > 5.25", "d2 = 2.5", "d3 < 0.1", "d3 >= -2.5",
	"d1 < d2", "d1 = d2", "d2 >= d1", "d3 <> d1", "d3 > d2",
	"d1 > i", "d1 = i", "i <= d2", "d3 > i",
	"d1 > f", "d1 = f", "f >= d2",
	"d1 IS NULL", "d1 > 5 AND d2 < 0",
	"CAST(d1 AS float64)", "CAST(d2 AS float64)", "CAST(d3 AS float64)",
	"CAST(d1 AS int64)", "CAST(d2 AS int32)", "CAST(d3 AS int64)",
	"CAST(d1 AS string)", "CAST(d3 AS string)",
}

var duckTypeNames = strings.NewReplacer("float64", "DOUBLE", "int64", "BIGINT", "int32", "INTEGER", "string", "VARCHAR")

func readParquetRecord(t *testing.T, mem memory.Allocator, path string) arrow.RecordBatch {
	t.Helper()
	f, err := file.OpenParquetFile(path, false)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := pqarrow.NewFileReader(f, pqarrow.ArrowReadProperties{}, mem)
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := r.ReadTable(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer tbl.Release()
	cols := make([]arrow.Array, tbl.NumCols())
	for i := range cols {
		c := tbl.Column(i).Data().Chunks()
		if len(c) != 1 {
			t.Fatalf("column %d: %d chunks", i, len(c))
		}
		cols[i] = c[0]
	}
	return array.NewRecordBatch(tbl.Schema(), cols, tbl.NumRows())
}

func renderValue(a arrow.Array, i int) string {
	if a.IsNull(i) {
		return "NULL"
	}
	switch a := a.(type) {
	case *array.Boolean:
		return strconv.FormatBool(a.Value(i))
	case *array.Float64:
		return strconv.FormatFloat(a.Value(i), 'g', -1, 64)
	case *array.Int64:
		return strconv.FormatInt(a.Value(i), 10)
	case *array.Int32:
		return strconv.FormatInt(int64(a.Value(i)), 10)
	case *array.String:
		return a.Value(i)
	case *array.Decimal128:
		return a.Value(i).ToString(a.DataType().(*arrow.Decimal128Type).Scale)
	}
	return "?" + a.DataType().String()
}

// TestDecimalDuckDB evaluates comparisons and casts of decimal columns and
// compares every row with DuckDB on the same pyarrow-written file.
func TestDecimalDuckDB(t *testing.T) {
	checkFileCases(t, decScript, decCases)
}

// checkFileCases writes a Parquet file with the pyarrow script (argument:
// the path; it must have an id column), evaluates each expression of cases
// over it, whole and sliced (array offsets), and compares every row with
// DuckDB's result for the same text (riffle's type names replaced).
func checkFileCases(t *testing.T, script string, cases []string) {
	t.Helper()
	checkFileCasesTyped(t, script, cases, false)
}

// checkFileCasesTyped is checkFileCases that, when typed, also compares
// each result type with DuckDB's typeof (riffleTypeName) and compares
// decimal results as DuckDB's VARCHAR text (all scale digits).
func checkFileCasesTyped(t *testing.T, script string, cases []string, typed bool) {
	t.Helper()
	py := duck.Python(t)
	path := filepath.Join(t.TempDir(), "in.parquet")
	if out, err := exec.Command(py, "-c", script, path).CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rec := readParquetRecord(t, mem, path)
	defer rec.Release()
	var types []string
	if typed {
		var tsel []string
		for k, c := range cases {
			tsel = append(tsel, fmt.Sprintf("typeof(%s) AS t%d", duckTypeNames.Replace(c), k))
		}
		types = duck.DuckDB(t, fmt.Sprintf("SELECT %s FROM read_parquet('%s') LIMIT 1", strings.Join(tsel, ", "), path)).Strings()[0]
	}
	var sel []string
	for k, c := range cases {
		c = duckTypeNames.Replace(c)
		if typed && strings.HasPrefix(types[k], "DECIMAL") {
			c = "(" + c + ")::VARCHAR"
		}
		sel = append(sel, fmt.Sprintf("%s AS c%d", c, k))
	}
	want := duck.DuckDB(t, fmt.Sprintf("SELECT %s FROM read_parquet('%s') ORDER BY id", strings.Join(sel, ", "), path)).Strings()
	if len(want) != int(rec.NumRows()) {
		t.Fatalf("DuckDB %d rows, file %d", len(want), rec.NumRows())
	}
	for k, src := range cases {
		e, err := Parse(src)
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		b, err := Bind(e, rec.Schema())
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		if typed {
			if got := riffleTypeName(b.Type()); got != types[k] {
				t.Errorf("%s: type %s, DuckDB %s", src, got, types[k])
			}
		}
		for _, off := range []int{0, 3} {
			r := rec.NewSlice(int64(off), rec.NumRows())
			got, err := b.Eval(mem, r)
			if err != nil {
				t.Fatalf("%s: %v", src, err)
			}
			for i := 0; i < got.Len(); i++ {
				if g := renderValue(got, i); g != want[i+off][k] {
					t.Errorf("%s (offset %d) row %d: %s, DuckDB %s", src, off, i+off, g, want[i+off][k])
					break
				}
			}
			got.Release()
			r.Release()
		}
	}
}

// TestDecimalErrors: a product needing a scale beyond 38, arithmetic
// with a string and a decimal type beyond 38 digits are refused at bind
// (or parse) time, and a cast to int64 that overflows is a runtime error naming the
// value.
func TestDecimalErrors(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	dt := &arrow.Decimal128Type{Precision: 38, Scale: 0}
	sc := arrow.NewSchema([]arrow.Field{{Name: "d", Type: dt, Nullable: true}}, nil)
	bld := array.NewRecordBuilder(mem, sc)
	defer bld.Release()
	n, err := decimal128.FromString("100000000000000000000", 38, 0)
	if err != nil {
		t.Fatal(err)
	}
	bld.Field(0).(*array.Decimal128Builder).Append(n)
	rec := bld.NewRecordBatch()
	defer rec.Release()
	for src, msg := range map[string]string{
		"CAST(d AS decimal(38,20)) * CAST(d AS decimal(38,20))": "needs scale 40",
		"d + 'x'":                  "cannot apply +",
		"CAST(d AS decimal(39,2))": "precision must be 1 to 38",
		"CAST(d AS date)":          "cannot cast",
	} {
		e, err := Parse(src)
		if err == nil {
			_, err = Bind(e, sc)
		}
		if err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("%s: %v, want %q", src, err, msg)
		}
	}
	e, _ := Parse("CAST(d AS int64)")
	b, err := Bind(e, sc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Eval(mem, rec); err == nil || !strings.Contains(err.Error(), "100000000000000000000 out of range") {
		t.Fatalf("overflowing cast: %v", err)
	}
}

// BenchmarkDecimalCompare compares a 64Ki-row decimal(12,2) column (5%
// NULL) with a literal, an int64 comparison on the same values alongside.
//
//	go test -run '^$' -bench DecimalCompare -count 3 ./arrowexec/expr
func BenchmarkDecimalCompare(b *testing.B) {
	mem := memory.NewGoAllocator()
	sc := arrow.NewSchema([]arrow.Field{
		{Name: "price", Type: &arrow.Decimal128Type{Precision: 12, Scale: 2}, Nullable: true},
		{Name: "cents", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "wide", Type: &arrow.Decimal128Type{Precision: 20, Scale: 4}, Nullable: true},
	}, nil)
	rng := rand.New(rand.NewPCG(5, 6))
	bld := array.NewRecordBuilder(mem, sc)
	for i := 0; i < benchRows; i++ {
		if rng.IntN(20) == 0 {
			for f := 0; f < 3; f++ {
				bld.Field(f).AppendNull()
			}
			continue
		}
		v := rng.Int64N(200000) - 1000
		bld.Field(0).(*array.Decimal128Builder).Append(decimal128.FromI64(v))
		bld.Field(1).(*array.Int64Builder).Append(v)
		bld.Field(2).(*array.Decimal128Builder).Append(decimal128.FromI64(v * 77))
	}
	rec := bld.NewRecordBatch()
	bld.Release()
	defer rec.Release()
	for _, src := range []string{"price > 5", "price <= 5.25", "cents > 500", "price < wide", "CAST(price AS float64)",
		"price + price", "price * 3", "price - 1.5", "price + wide", "cents + cents", "CAST(cents AS decimal(20,2))"} {
		e, err := Parse(src)
		if err != nil {
			b.Fatal(err)
		}
		bd, err := Bind(e, sc)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(src, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				a, err := bd.Eval(mem, rec)
				if err != nil {
					b.Fatal(err)
				}
				a.Release()
			}
			b.ReportMetric(float64(benchRows)*float64(b.N)/b.Elapsed().Seconds()/1e6, "Mvalues/s")
		})
	}
}
