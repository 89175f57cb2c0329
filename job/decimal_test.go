package job_test

import (
	"fmt"
	"math"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/riffle-dev/riffle/internal/oracle"
)

// TestDecimalJobMatchesDuckDB runs decimal arithmetic, casts, round and
// exact aggregates in a job over a pandas-written decimal file and writes
// Parquet: the output read back by pyarrow and DuckDB has DuckDB's types
// (decimal(38,2) sums, decimal(p,s) products) and DuckDB's values for the
// same query on the input, at parallelism 1 and 3 (Partial and Final
// aggregates behind an exchange).
func TestDecimalJobMatchesDuckDB(t *testing.T) {
	py := oracle.Python(t)
	in := filepath.Join(t.TempDir(), "sales.parquet")
	script := `
import sys, random, decimal
import pyarrow as pa, pandas as pd
rng = random.Random(9)
n = 4000
def price(): return None if rng.random() < 0.1 else decimal.Decimal(rng.randint(-500, 200000)).scaleb(-2)
pd.DataFrame({
  'cat': pd.array([rng.choice(['books', 'toys', 'garden', None]) for _ in range(n)], dtype='string'),
  'price': pd.Series([price() for _ in range(n)], dtype=pd.ArrowDtype(pa.decimal128(9, 2))),
  'rate': pd.Series([None if rng.random() < 0.1 else decimal.Decimal(rng.randint(0, 999)).scaleb(-3) for _ in range(n)], dtype=pd.ArrowDtype(pa.decimal128(4, 3))),
  'qty': pd.array([None if rng.random() < 0.1 else rng.randint(0, 50) for _ in range(n)], dtype='Int32'),
}).to_parquet(sys.argv[1], index=False)
`
	if out, err := exec.Command(py, "-c", script, in).CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	query := `SELECT cat, sum(amount)::VARCHAR, sum(price)::VARCHAR, avg(price), min(taxed)::VARCHAR, max(taxed)::VARCHAR, sum(r1)::VARCHAR, count(*),
  (sum(price * 2) FILTER (WHERE qty > 3))::VARCHAR
FROM (SELECT cat, price, qty, price * qty AS amount, round(price * (1 + rate), 1) AS taxed, CAST(price AS decimal(10,1)) AS r1
      FROM read_parquet('%s') WHERE price > 10.5) GROUP BY cat`
	want := canon(oracle.DuckDB(t, fmt.Sprintf(query, in)).Strings())
	wantTypes := oracle.DuckDB(t, fmt.Sprintf(`SELECT typeof(sum(amount)), typeof(sum(price)), typeof(min(taxed)), typeof(sum(r1))
FROM (SELECT price, price * qty AS amount, round(price * (1 + rate), 1) AS taxed, CAST(price AS decimal(10,1)) AS r1 FROM read_parquet('%s'))`, in)).Strings()[0]
	for _, p := range []int{1, 3} {
		t.Run(fmt.Sprintf("p=%d", p), func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out")
			runJob(t, fmt.Sprintf(`name: decimals
source:
  parquet: {path: "%s", batch_size: 300}
steps:
  - filter: "price > 10.5"
  - project: {cat: cat, price: price, qty: qty, amount: price * qty, taxed: "round(price * (1 + rate), 1)", r1: "CAST(price AS decimal(10,1))"}
  - aggregate:
      group_by: [cat]
      aggs: [sum(amount) AS revenue, sum(price) AS sp, avg(price) AS ap, min(taxed) AS lo, max(taxed) AS hi, sum(r1) AS s1, count(*) AS n, "sum(price * 2) FILTER (WHERE qty > 3) AS s2"]
sink:
  file: {path: %s, format: parquet}
`, in, out), p)
			files := filepath.Join(out, "*.parquet")
			got := canon(oracle.DuckDB(t, fmt.Sprintf(`SELECT cat, revenue::VARCHAR, sp::VARCHAR, ap, lo::VARCHAR, hi::VARCHAR, s1::VARCHAR, n, s2::VARCHAR FROM read_parquet('%s')`, files)).Strings())
			if len(got) != len(want) {
				t.Fatalf("%d groups, DuckDB %d", len(got), len(want))
			}
			for r := range want {
				for i := range want[r] {
					// Exact, but avg (column 3): float64 within 1e-12.
					if g, w := got[r][i], want[r][i]; g != w && (i != 3 || !floatClose(g, w, 1e-12)) {
						t.Fatalf("group %d column %d: %s, DuckDB %s\n got %v\nwant %v", r, i, g, w, got[r], want[r])
					}
				}
			}
			gotTypes := oracle.DuckDB(t, fmt.Sprintf(`SELECT typeof(revenue), typeof(sp), typeof(lo), typeof(s1) FROM read_parquet('%s') LIMIT 1`, files)).Strings()[0]
			if fmt.Sprint(gotTypes) != fmt.Sprint(wantTypes) {
				t.Errorf("output types %v, DuckDB computes %v", gotTypes, wantTypes)
			}
			pa := oracle.PyArrowRead(t, out, oracle.Parquet)
			if fmt.Sprint(pa.Types[1:3]) != "[decimal128(38, 2) decimal128(38, 2)]" {
				t.Errorf("pyarrow reads %v %v", pa.Columns, pa.Types)
			}
		})
	}
}

func floatClose(a, b string, rel float64) bool {
	x, err1 := strconv.ParseFloat(a, 64)
	y, err2 := strconv.ParseFloat(b, 64)
	return err1 == nil && err2 == nil && math.Abs(x-y) <= rel*math.Abs(y)
}

// TestDecimal256Job reads a pyarrow decimal256(50,2) column through the
// Parquet source, filters on it, sums it (decimal256(76,2)) and takes its
// extremes per key, and writes Parquet; pyarrow reads the output and
// Python's decimal module checks types and values against the input.
func TestDecimal256Job(t *testing.T) {
	py := oracle.Python(t)
	dir := t.TempDir()
	in := filepath.Join(dir, "wide.parquet")
	gen := `
import sys, random, decimal
from decimal import Decimal as D
import pyarrow as pa, pyarrow.parquet as pq
decimal.getcontext().prec = 100
rng = random.Random(13)
n = 3000
pq.write_table(pa.table({
  'k': pa.array([rng.randint(0, 9) for _ in range(n)], pa.int64()),
  'v': pa.array([None if rng.random() < 0.1 else D(rng.randint(-10**35, 10**35)).scaleb(-2) for _ in range(n)], pa.decimal256(50, 2)),
}), sys.argv[1], row_group_size=700)
`
	if out, err := exec.Command(py, "-c", gen, in).CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	out := filepath.Join(dir, "out")
	runJob(t, fmt.Sprintf(`name: wide
source:
  parquet: {path: "%s", batch_size: 256}
steps:
  - filter: "v > -1e32"
  - aggregate:
      group_by: [k]
      aggs: [sum(v) AS s, min(v) AS lo, max(v) AS hi, count(v) AS n]
sink:
  file: {path: %s, format: parquet}
`, in, out), 2)
	check := `
import sys, glob, decimal
from decimal import Decimal as D
import pyarrow as pa, pyarrow.parquet as pq
decimal.getcontext().prec = 100
src = pq.read_table(sys.argv[1]).to_pylist()
got = pa.concat_tables([pq.read_table(f) for f in glob.glob(sys.argv[2] + '/*.parquet')])
types = {f.name: str(f.type) for f in got.schema}
assert types['s'] == 'decimal256(76, 2)' and types['lo'] == 'decimal256(50, 2)', types
want = {}
for r in src:
    v = r['v']
    if v is None or v <= D("-1e32"): continue
    w = want.setdefault(r['k'], [D(0), v, v, 0])
    w[0] += v; w[1] = min(w[1], v); w[2] = max(w[2], v); w[3] += 1
rows = {r['k']: [r['s'], r['lo'], r['hi'], r['n']] for r in got.to_pylist()}
assert rows == want, (rows, want)
print('ok')
`
	if res, err := exec.Command(py, "-c", check, in, out).CombinedOutput(); err != nil || string(res) != "ok\n" {
		t.Fatalf("%v\n%s", err, res)
	}
}
