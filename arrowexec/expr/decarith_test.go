package expr

import (
	"fmt"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/memory"

	duck "github.com/riffle-dev/riffle/internal/oracle"
)

// decArithScript writes decimals of several precisions (magnitudes kept
// small enough that no capped result overflows: overflow has its own
// test), integers of several widths, floats with many digits and ties,
// and valid decimal strings, all with NULLs.
const decArithScript = `
import sys, random, decimal
import pyarrow as pa, pyarrow.parquet as pq
rng = random.Random(17)
n = 3000
def dec(scale, big):
    if rng.random() < 0.12: return None
    q = decimal.Decimal(1).scaleb(-scale)
    if rng.random() < 0.1: return decimal.Decimal(0).quantize(q)
    if rng.random() < 0.2:
        return decimal.Decimal(rng.choice(['5', '0.25', '-2.5', '2.5', '-0.05', '1.5', '-7.5', '0.5'])).quantize(q)
    return (decimal.Decimal(rng.randint(-big, big)) * q).quantize(q)
def ints(lo, hi):
    return [None if rng.random() < 0.12 else rng.randint(lo, hi) for _ in range(n)]
def flt():
    if rng.random() < 0.12: return None
    r = rng.random()
    if r < 0.3: return rng.randint(-4000, 4000) / 8        # ties at scales 1, 2
    if r < 0.5: return round(rng.uniform(-1000, 1000), 3)  # 2.675-like
    return rng.uniform(-1e6, 1e6)
def txt():
    if rng.random() < 0.12: return None
    return rng.choice(['1.005', ' -2.5 ', '1e2', '+3', '.5', '5.', '-0.0005', '12.3456', '1E-50', '0',
                       '123456.78951', '-999.9995', '0.00049999999999999999999999999'])
cols = {
  'id': pa.array(range(n), pa.int64()),
  'a': pa.array([dec(2, 10**8) for _ in range(n)], pa.decimal128(12, 2)),
  'b': pa.array([dec(4, 10**10) for _ in range(n)], pa.decimal128(20, 4)),
  'c': pa.array([dec(10, 10**20) for _ in range(n)], pa.decimal128(38, 10)),
  'e': pa.array([dec(0, 10**8) for _ in range(n)], pa.decimal128(18, 0)),
  'g': pa.array([dec(1, 9999) for _ in range(n)], pa.decimal128(4, 1)),
  'h': pa.array([dec(6, 10**11) for _ in range(n)], pa.decimal128(18, 6)),
  'z': pa.array([dec(2, 3) for _ in range(n)], pa.decimal128(10, 2)),
  'x8': pa.array(ints(-128, 127), pa.int8()),
  'x32': pa.array(ints(-10**6, 10**6), pa.int32()),
  'x64': pa.array(ints(-10**6, 10**6), pa.int64()),
  'u64': pa.array(ints(0, 10**6), pa.uint64()),
  'f': pa.array([flt() for _ in range(n)], pa.float64()),
  's': pa.array([txt() for _ in range(n)], pa.string()),
}
pq.write_table(pa.table(cols), sys.argv[1])
`

var decArithCases = []string{
	// + - with equal and different scales, integers, literals.
	"a + a", "a - a", "a + b", "b - a", "a + c", "c - b", "e + e", "e - g", "h + h", "h - a", "g + g",
	"a + x32", "x64 - a", "x8 + g", "u64 + a", "e + x64", "a + 1", "a - 0.05", "1.5 + g", "c + 2147483648",
	// * with every path: int64, capped at 18, int128.
	"a * g", "g * g", "a * a", "h * g", "e * e", "a * b", "c * g", "x32 * a", "a * 1.5", "g * x8", "u64 * g",
	// % (x % 0 is NULL in both).
	"a % z", "b % g", "c % a", "x32 % g", "e % z",
	// / and floats are float64.
	"a / (b + 10000000)", "c / (g + 1000)", "a + f", "f * b", "a * 2.5e-7",
	"-a", "-c", "-(a - b)", "(a + b) * g", "a * b + c", "abs(a - b)", "abs(c)",
	"round(a, 1)", "round(c, 3)", "round(b)", "round(a, -2)", "round(g, -1)", "round(a, 5)", "round(h, 5)", "round(c, -12)",
	// CAST to decimal from decimals, integers, floats and strings.
	"CAST(a AS decimal(10,1))", "CAST(a AS decimal(14,4))", "CAST(b AS decimal(38,2))", "CAST(b AS decimal(18,0))",
	"CAST(c AS decimal(28,3))", "CAST(c AS decimal(38,12))", "CAST(h AS decimal(18,2))", "a::decimal(20,2)",
	"CAST(x64 AS decimal(18,2))", "CAST(x32 AS decimal(38,0))", "CAST(x8 AS decimal(5,2))", "CAST(u64 AS decimal(7,0))",
	"CAST(f AS decimal(10,2))", "CAST(f AS decimal(9,1))", "CAST(f AS decimal(38,10))", "CAST(f AS decimal(12,0))",
	"CAST(s AS decimal(12,3))", "CAST(s AS decimal(38,30))", "CAST(s AS decimal(18,0))",
	"CAST(a + b AS float64)", "a * b > c", "a + 1 = b",
	// Decimals through CASE, coalesce and nullif (blend kernels).
	"a / NULLIF(z, 0)", "CASE WHEN x32 > 0 THEN a END", "CASE WHEN x32 > 0 THEN a ELSE a * 2 END", "coalesce(a, a + 1)", "coalesce(a, b)", "CASE WHEN x32 > 0 THEN a ELSE x32 END", "coalesce(z, h)",
}

// riffleTypeName prints a result type as DuckDB's typeof does.
func riffleTypeName(t arrow.DataType) string {
	switch t := t.(type) {
	case *arrow.Decimal128Type:
		return fmt.Sprintf("DECIMAL(%d,%d)", t.Precision, t.Scale)
	case *arrow.Float64Type:
		return "DOUBLE"
	case *arrow.Int64Type:
		return "BIGINT"
	case *arrow.BooleanType:
		return "BOOLEAN"
	}
	return t.String()
}

// TestDecimalArithDuckDB evaluates decimal arithmetic and casts to
// decimal on a pyarrow-written file, whole and sliced, and compares the
// result type and every row with DuckDB (decimals compared as DuckDB's
// VARCHAR text, all scale digits).
func TestDecimalArithDuckDB(t *testing.T) {
	checkFileCasesTyped(t, decArithScript, decArithCases, true)
}

// TestDecimalOverflow: results beyond a capped precision (18 from
// operands of at most 18 digits, or 38), and casts out of range, are
// runtime errors naming the expression, where DuckDB raises one too; the
// same values one step inside the range are not.
func TestDecimalOverflow(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	for _, tc := range []struct {
		x, y   string
		px, sx int32
		py, sy int32
		expr   string
		fails  bool
	}{
		{"999999999999999999", "1", 18, 0, 18, 0, "x + y", true},
		{"999999999999999998", "1", 18, 0, 18, 0, "x + y", false},
		{"-999999999999999999", "1", 18, 0, 18, 0, "x - y", true},
		{"9", "9", 18, 17, 18, 17, "x + y", true},
		{"4", "4", 18, 17, 18, 17, "x + y", false},
		{"500000000000000000", "10", 18, 0, 18, 0, "x * y", true},
		{"99999999999999999", "10", 18, 0, 18, 0, "x * y", false},
		{"10000000000000000000000000000000000000", "10", 38, 0, 2, 0, "x * y", true},
		{"10000000000000000000000000000000000000", "15", 38, 0, 2, 0, "x * y", true},
		{"1000000000000000000000000000000000000", "15", 38, 0, 2, 0, "x * y", false},
		{"99999999999999999999999999999999999999", "-1", 38, 0, 38, 0, "x - y", true},
		{"-99999999999999999999999999999999999999", "1", 38, 0, 38, 0, "x - y", true},
		{"99999999999999999999999999999999999999", "-99999999999999999999999999999999999999", 38, 0, 38, 0, "x * y", true},
		{"1.5", "9.5", 38, 37, 38, 0, "x + y", true},
		{"12345.6", "0", 10, 1, 1, 0, "CAST(x AS decimal(5,1))", true},
		{"1234.56", "0", 10, 2, 1, 0, "CAST(x AS decimal(5,1))", false},
		{"99999.99", "0", 10, 2, 1, 0, "CAST(x AS decimal(6,1))", true},
	} {
		name := tc.expr + " " + tc.x + "," + tc.y
		sc := arrow.NewSchema([]arrow.Field{
			{Name: "x", Type: &arrow.Decimal128Type{Precision: tc.px, Scale: tc.sx}},
			{Name: "y", Type: &arrow.Decimal128Type{Precision: tc.py, Scale: tc.sy}},
		}, nil)
		bld := array.NewRecordBuilder(mem, sc)
		xv, err := decimal128.FromString(tc.x, tc.px, tc.sx)
		if err != nil {
			t.Fatal(err)
		}
		yv, err := decimal128.FromString(tc.y, tc.py, tc.sy)
		if err != nil {
			t.Fatal(err)
		}
		bld.Field(0).(*array.Decimal128Builder).Append(xv)
		bld.Field(1).(*array.Decimal128Builder).Append(yv)
		rec := bld.NewRecordBatch()
		bld.Release()
		q := fmt.Sprintf("SELECT %s FROM (SELECT %s::decimal(%d,%d) AS x, %s::decimal(%d,%d) AS y)", tc.expr, tc.x, tc.px, tc.sx, tc.y, tc.py, tc.sy)
		if msg := duck.DuckDBError(t, q); (msg != "") != tc.fails {
			t.Fatalf("%s: DuckDB says %s, the case expects failure=%v", name, msg, tc.fails)
		}
		e, err := Parse(tc.expr)
		if err != nil {
			t.Fatal(err)
		}
		b, err := Bind(e, sc)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got, err := b.Eval(mem, rec)
		switch {
		case tc.fails && err == nil:
			t.Errorf("%s: no error, got %s", name, renderValue(got, 0))
		case tc.fails && !strings.Contains(err.Error(), tc.expr):
			t.Errorf("%s: error %q does not name the expression", name, err)
		case !tc.fails && err != nil:
			t.Errorf("%s: %v", name, err)
		}
		if got != nil {
			got.Release()
		}
		rec.Release()
	}
}
