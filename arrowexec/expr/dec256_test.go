package expr

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"

	duck "github.com/riffle-dev/riffle/internal/oracle"
)

// dec256Script writes decimal256 columns with pyarrow (d: decimal256(40,3)
// with values of up to 30 digits, e: decimal256(20,2), w: decimal256(60,0)
// with values beyond 38 digits) and prints, per case, Python's decimal
// result of every row (the oracle: DuckDB has no decimal256).
const dec256Script = `
import sys, json, random, decimal
from decimal import Decimal as D
import pyarrow as pa, pyarrow.parquet as pq
decimal.getcontext().prec = 100
rng = random.Random(31)
n = 1500
def val(scale, digits):
    if rng.random() < 0.1: return None
    q = D(1).scaleb(-scale)
    if rng.random() < 0.2: return D(rng.choice(['5.25', '-2.5', '0', '5.249', '7'])).quantize(q)
    return (D(rng.randint(-10**digits, 10**digits)) * q).quantize(q)
d = [val(3, 30) for _ in range(n)]
e = [val(2, 17) for _ in range(n)]
pq.write_table(pa.table({
  'd': pa.array(d, pa.decimal256(40, 3)),
  'e': pa.array(e, pa.decimal256(20, 2)),
  'w': pa.array([D(10)**50 * (i + 1) for i in range(n)], pa.decimal256(60, 0)),
}), sys.argv[1])
def fmt(x, s): return 'NULL' if x is None else format(x.quantize(D(1).scaleb(-s)), 'f')
def rnd(x, s): return 'NULL' if x is None else format(x.quantize(D(1).scaleb(-s), rounding=decimal.ROUND_HALF_UP), 'f')
def b(x): return 'NULL' if x is None else ('true' if x else 'false')
both = lambda f: [None if x is None or y is None else f(x, y) for x, y in zip(d, e)]
print(json.dumps({
  'd > 5.25': [b(None if x is None else x > D('5.25')) for x in d],
  'd <= 7': [b(None if x is None else x <= 7) for x in d],
  'd = e': [b(v) for v in both(lambda x, y: x == y)],
  'e < d': [b(v) for v in both(lambda x, y: y < x)],
  'd + e': [fmt(v, 3) for v in both(lambda x, y: x + y)],
  'd * 2': [fmt(None if x is None else x * 2, 3) for x in d],
  'CAST(d AS decimal(38,1))': [rnd(x, 1) for x in d],
  'CAST(e AS decimal(20,0))': [rnd(x, 0) for x in e],
  'CAST(d AS float64) > 0': [b(None if x is None else x > 0) for x in d],
  'CAST(d AS string)': [fmt(x, 3) for x in d],
}))
`

// TestDecimal256 reads decimal256 columns (as decimal128: values up to 38
// digits) and compares, adds, multiplies and casts them, against Python's
// decimal module row by row; a value beyond 38 digits is a runtime error
// naming the column.
func TestDecimal256(t *testing.T) {
	py := duck.Python(t)
	path := filepath.Join(t.TempDir(), "d256.parquet")
	out, err := exec.Command(py, "-c", dec256Script, path).Output()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var want map[string][]string
	if err := json.Unmarshal(out, &want); err != nil {
		t.Fatal(err)
	}
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rec := readParquetRecord(t, mem, path)
	defer rec.Release()
	for src, rows := range want {
		e, err := Parse(src)
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		b, err := Bind(e, rec.Schema())
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		got, err := b.Eval(mem, rec)
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		for i, w := range rows {
			if g := renderValue(got, i); g != w {
				t.Errorf("%s row %d: %s, Python %s", src, i, g, w)
				break
			}
		}
		got.Release()
	}
	e, _ := Parse("w > 0")
	b, err := Bind(e, rec.Schema())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Eval(mem, rec); err == nil || !strings.Contains(err.Error(), `column "w" row 0`) {
		t.Fatalf("w > 0 over 51-digit values: %v, want an error naming the column", err)
	}
}
