package agg

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	duck "github.com/riffle-dev/riffle/internal/oracle"
)

// decAggScript writes grouped decimals with NULL keys and values: a
// decimal(12,2), a decimal(18,0) and a decimal(38,10) whose values leave
// the int64 range (their sums too).
const decAggScript = `
import sys, random, decimal
import pyarrow as pa, pyarrow.parquet as pq
decimal.getcontext().prec = 80
rng = random.Random(23)
n = 6000
def dec(scale, big):
    if rng.random() < 0.1: return None
    q = decimal.Decimal(1).scaleb(-scale)
    return (decimal.Decimal(rng.randint(-big, big)) * q).quantize(q)
cols = {
  'k': pa.array([None if rng.random() < 0.05 else rng.randint(0, 40) for _ in range(n)], pa.int64()),
  'a': pa.array([dec(2, 10**10) for _ in range(n)], pa.decimal128(12, 2)),
  'e': pa.array([dec(0, 10**17) for _ in range(n)], pa.decimal128(18, 0)),
  'c': pa.array([dec(10, 10**30) for _ in range(n)], pa.decimal128(38, 10)),
  'z': pa.array([None] * n, pa.decimal128(9, 3)),
}
pq.write_table(pa.table(cols), sys.argv[1])
`

func decAggs() []Agg {
	var aggs []Agg
	for _, c := range []string{"a", "e", "c", "z"} {
		for _, f := range []Func{Sum, Avg, Min, Max} {
			aggs = append(aggs, Agg{Func: f, Column: c})
		}
	}
	return append(aggs, Agg{Func: Count})
}

func readParquetFile(t *testing.T, mem memory.Allocator, path string) arrow.RecordBatch {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tbl, err := pqarrow.ReadTable(context.Background(), f, parquet.NewReaderProperties(mem), pqarrow.ArrowReadProperties{}, mem)
	if err != nil {
		t.Fatal(err)
	}
	defer tbl.Release()
	rr := array.NewTableReader(tbl, tbl.NumRows())
	defer rr.Release()
	if !rr.Next() {
		t.Fatal("empty table")
	}
	rec := rr.RecordBatch()
	rec.Retain()
	return rec
}

// renderCell prints an output value as the DuckDB oracle does (decimals
// as DuckDB's VARCHAR text, all scale digits).
func renderCell(a arrow.Array, i int) string {
	if a.IsNull(i) {
		return "NULL"
	}
	switch a := a.(type) {
	case *array.Decimal128:
		return a.Value(i).ToString(a.DataType().(*arrow.Decimal128Type).Scale)
	case *array.Float64:
		return strconv.FormatFloat(a.Value(i), 'g', -1, 64)
	case *array.Int64:
		return strconv.FormatInt(a.Value(i), 10)
	}
	return "?" + a.DataType().String()
}

// TestDecimalAggDuckDB: sum, avg, min and max over decimal columns, in
// Single mode at several batch sizes, through Partial and Final, and across
// a snapshot and restore, against DuckDB on the same pyarrow-written file:
// result types (sum decimal(38,s), avg float64, min/max the input type)
// and every group's values (exact; avg within 1e-12 relative).
func TestDecimalAggDuckDB(t *testing.T) {
	py := duck.Python(t)
	path := filepath.Join(t.TempDir(), "dec.parquet")
	if out, err := exec.Command(py, "-c", decAggScript, path).CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	aggs := decAggs()
	var sel []string
	for _, a := range aggs {
		x := fmt.Sprintf("%s(%s)", a.Func, a.Column)
		switch {
		case a.Func == Count:
			x = "count(*)"
		case a.Func != Avg:
			x += "::VARCHAR"
		}
		sel = append(sel, x)
	}
	want := map[string][]string{}
	for _, r := range duck.DuckDB(t, fmt.Sprintf("SELECT k, %s FROM read_parquet('%s') GROUP BY k", strings.Join(sel, ", "), path)).Strings() {
		want[r[0]] = r[1:]
	}
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rec := readParquetFile(t, mem, path)
	defer rec.Release()
	in := rec.Schema()

	compare := func(t *testing.T, what string, out []arrow.RecordBatch) {
		t.Helper()
		groups := 0
		for _, b := range out {
			for i := 0; i < int(b.NumRows()); i++ {
				groups++
				key := renderCell(b.Column(0), i)
				w, ok := want[key]
				if !ok {
					t.Fatalf("%s: unexpected group %s", what, key)
				}
				for j, a := range aggs {
					col := b.Column(1 + j)
					got := renderCell(col, i)
					if a.Func == Avg && got != "NULL" && w[j] != "NULL" {
						g, _ := strconv.ParseFloat(got, 64)
						x, _ := strconv.ParseFloat(w[j], 64)
						if math.Abs(g-x) > 1e-12*math.Abs(x) {
							t.Fatalf("%s: group %s %s: %s, DuckDB %s", what, key, a.Name(), got, w[j])
						}
						continue
					}
					if got != w[j] {
						t.Fatalf("%s: group %s %s: %s, DuckDB %s", what, key, a.Name(), got, w[j])
					}
				}
			}
		}
		if groups != len(want) {
			t.Fatalf("%s: %d groups, DuckDB %d", what, groups, len(want))
		}
	}

	single := mustNew(t, Options{GroupBy: []string{"k"}, Aggs: aggs})
	sc, err := single.Schema([]*arrow.Schema{in})
	if err != nil {
		t.Fatal(err)
	}
	for j, a := range aggs {
		dt := sc.Field(1 + j).Type
		inT := &arrow.Decimal128Type{}
		if a.Column != "*" && a.Column != "" {
			inT = in.Field(in.FieldIndices(a.Column)[0]).Type.(*arrow.Decimal128Type)
		}
		var wantT arrow.DataType
		switch a.Func {
		case Sum:
			wantT = &arrow.Decimal128Type{Precision: 38, Scale: inT.Scale}
		case Avg:
			wantT = arrow.PrimitiveTypes.Float64
		case Min, Max:
			wantT = inT
		default:
			wantT = arrow.PrimitiveTypes.Int64
		}
		if !arrow.TypeEqual(dt, wantT) {
			t.Errorf("%s: type %s, want %s", a.Name(), dt, wantT)
		}
	}
	for _, size := range []int{7, 1000, 65536} {
		batches := split(rec, size)
		out := run(t, mem, single, in, batches, nil)
		compare(t, fmt.Sprintf("single batch=%d", size), out.batches)
		out.release()
		releaseAll(batches)
	}

	// Without keys (the register loops of updateGlobal).
	wantAll := duck.DuckDB(t, fmt.Sprintf("SELECT %s FROM read_parquet('%s')", strings.Join(sel, ", "), path)).Strings()[0]
	for _, size := range []int{7, 65536} {
		batches := split(rec, size)
		out := run(t, mem, mustNew(t, Options{Aggs: aggs}), in, batches, nil)
		for j, a := range aggs {
			got, w := renderCell(out.batches[0].Column(j), 0), wantAll[j]
			if a.Func == Avg && got != "NULL" {
				g, _ := strconv.ParseFloat(got, 64)
				x, _ := strconv.ParseFloat(w, 64)
				if math.Abs(g-x) <= 1e-12*math.Abs(x) {
					continue
				}
			}
			if got != w {
				t.Errorf("global batch=%d %s: %s, DuckDB %s", size, a.Name(), got, w)
			}
		}
		out.release()
		releaseAll(batches)
	}

	// Partial, then Final over the partial states.
	batches := split(rec, 500)
	defer releaseAll(batches)
	partial := run(t, mem, mustNew(t, Options{GroupBy: []string{"k"}, Aggs: aggs, Mode: Partial}), in, batches, nil)
	defer partial.release()
	final := run(t, mem, mustNew(t, Options{GroupBy: []string{"k"}, Aggs: aggs, Mode: Final}), partial.batches[0].Schema(), partial.batches, nil)
	compare(t, "partial+final", final.batches)
	final.release()

	// A snapshot and restore (twice) half way through.
	rng := rand.New(rand.NewPCG(3, 4))
	rb := randomBatches(rng, rec, 300)
	defer releaseAll(rb)
	s := newStage(t, mem, single, in, true, 2, 8, nil)
	for _, b := range rb[:len(rb)/2] {
		s.push(t, mem, b)
	}
	s = roundTrip(t, mem, s)
	for _, b := range rb[len(rb)/2:] {
		s.push(t, mem, b)
	}
	compare(t, "restored", s.finish(t))
	s.close()
}

// TestDecimalSumOverflow: a sum leaving the 128-bit range fails the
// operator naming the aggregate (DuckDB: "Overflow in HUGEINT addition");
// one beyond 38 digits but inside 128 bits is a value, as in DuckDB.
func TestDecimalSumOverflow(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	dt := &arrow.Decimal128Type{Precision: 38, Scale: 0}
	in := arrow.NewSchema([]arrow.Field{{Name: "d", Type: dt, Nullable: true}}, nil)
	for _, tc := range []struct {
		vals []string
		fail bool
	}{
		{[]string{"99999999999999999999999999999999999999", "1"}, false},
		{[]string{"99999999999999999999999999999999999999", "-5", "1"}, false},
		{[]string{"99999999999999999999999999999999999999", "99999999999999999999999999999999999999"}, true},
		{[]string{"-99999999999999999999999999999999999999", "-99999999999999999999999999999999999999"}, true},
	} {
		b := array.NewDecimal128Builder(mem, dt)
		var rows []string
		for _, v := range tc.vals {
			n, err := decimal128.FromString(v, 38, 0)
			if err != nil {
				t.Fatal(err)
			}
			b.Append(n)
			rows = append(rows, "("+v+"::DECIMAL(38,0))")
		}
		col := b.NewArray()
		b.Release()
		rec := array.NewRecordBatch(in, []arrow.Array{col}, int64(len(tc.vals)))
		col.Release()
		q := fmt.Sprintf("SELECT sum(d)::VARCHAR FROM (VALUES %s) t(d)", strings.Join(rows, ", "))
		if msg := duck.DuckDBError(t, q); (msg != "") != tc.fail {
			t.Fatalf("DuckDB on %v: error %q, the case expects failure=%v", tc.vals, msg, tc.fail)
		}
		spec := mustNew(t, Options{Aggs: []Agg{{Func: Sum, Column: "d"}}})
		err := processAll(mem, spec, in, []arrow.RecordBatch{rec})
		switch {
		case tc.fail && (err == nil || !strings.Contains(err.Error(), "sum(d)")):
			t.Errorf("%v: %v, want an overflow error naming sum(d)", tc.vals, err)
		case !tc.fail && err != nil:
			t.Errorf("%v: %v", tc.vals, err)
		case !tc.fail:
			got := run(t, mem, spec, in, []arrow.RecordBatch{rec}, nil)
			if w := duck.DuckDB(t, q).Strings()[0][0]; renderCell(got.batches[0].Column(0), 0) != w {
				t.Errorf("%v: %s, DuckDB %s", tc.vals, renderCell(got.batches[0].Column(0), 0), w)
			}
			got.release()
		}
		rec.Release()
	}
}

func mustNew(t *testing.T, o Options) *Spec {
	t.Helper()
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// dec256AggScript writes grouped decimal256(60,4) values of up to 55
// digits (sums beyond 128 bits) and prints Python's decimal results per
// group: the oracle (DuckDB has no decimal256).
const dec256AggScript = `
import sys, json, random, decimal
from decimal import Decimal as D
import pyarrow as pa, pyarrow.parquet as pq
decimal.getcontext().prec = 120
rng = random.Random(41)
n = 5000
ks = [rng.randint(0, 12) for _ in range(n)]
vs = [None if rng.random() < 0.1 else (D(rng.randint(-10**55, 10**55)) / 10**4) for _ in range(n)]
pq.write_table(pa.table({'k': pa.array(ks, pa.int64()), 'v': pa.array(vs, pa.decimal256(60, 4))}), sys.argv[1])
res = {}
for k in set(ks):
    xs = [v for kk, v in zip(ks, vs) if kk == k and v is not None]
    f = lambda x: format(x.quantize(D('0.0001')), 'f')
    res[str(k)] = [f(sum(xs)), repr(float(sum(xs) / len(xs))), f(min(xs)), f(max(xs))] if xs else ['NULL'] * 4
print(json.dumps(res))
`

// TestDecimal256Agg: sum (decimal256(76,s)), avg, min and max over
// decimal256 values whose sums leave 128 bits, in Single mode and through
// Partial and Final, against Python's decimal module.
func TestDecimal256Agg(t *testing.T) {
	py := duck.Python(t)
	path := filepath.Join(t.TempDir(), "d256.parquet")
	js, err := exec.Command(py, "-c", dec256AggScript, path).Output()
	if err != nil {
		t.Fatalf("%v\n%s", err, js)
	}
	var want map[string][]string
	if err := json.Unmarshal(js, &want); err != nil {
		t.Fatal(err)
	}
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rec := readParquetFile(t, mem, path)
	defer rec.Release()
	aggs := []Agg{{Func: Sum, Column: "v"}, {Func: Avg, Column: "v"}, {Func: Min, Column: "v"}, {Func: Max, Column: "v"}}
	check := func(what string, out []arrow.RecordBatch) {
		t.Helper()
		n := 0
		for _, b := range out {
			if st := b.Schema().Field(1).Type; !arrow.TypeEqual(st, &arrow.Decimal256Type{Precision: 76, Scale: 4}) {
				t.Fatalf("%s: sum type %s", what, st)
			}
			for i := 0; i < int(b.NumRows()); i++ {
				n++
				k := renderCell(b.Column(0), i)
				for j := range aggs {
					got := renderCell(b.Column(1+j), i)
					if d, ok := b.Column(1 + j).(*array.Decimal256); ok && !d.IsNull(i) {
						got = d.Value(i).ToString(4)
					}
					w := want[k][j]
					if j == 1 && got != "NULL" {
						g, _ := strconv.ParseFloat(got, 64)
						x, _ := strconv.ParseFloat(w, 64)
						if math.Abs(g-x) > 1e-12*math.Abs(x) {
							t.Fatalf("%s: group %s avg %s, Python %s", what, k, got, w)
						}
						continue
					}
					if got != w {
						t.Fatalf("%s: group %s %s: %s, Python %s", what, k, aggs[j].Name(), got, w)
					}
				}
			}
		}
		if n != len(want) {
			t.Fatalf("%s: %d groups, Python %d", what, n, len(want))
		}
	}
	batches := split(rec, 333)
	defer releaseAll(batches)
	single := run(t, mem, mustNew(t, Options{GroupBy: []string{"k"}, Aggs: aggs}), rec.Schema(), batches, nil)
	check("single", single.batches)
	single.release()
	partial := run(t, mem, mustNew(t, Options{GroupBy: []string{"k"}, Aggs: aggs, Mode: Partial}), rec.Schema(), batches, nil)
	defer partial.release()
	final := run(t, mem, mustNew(t, Options{GroupBy: []string{"k"}, Aggs: aggs, Mode: Final}), partial.batches[0].Schema(), partial.batches, nil)
	check("partial+final", final.batches)
	final.release()
}
