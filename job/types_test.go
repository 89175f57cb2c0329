package job_test

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/riffle-dev/riffle/internal/oracle"
)

// typesScript writes two files of one input as a data engineer gets them:
// pandas.parquet by pandas (a categorical: dictionary<int8, utf8>, a
// string[pyarrow] column: large_utf8, a decimal price, qty) and
// pyarrow.parquet by pyarrow (plain utf8 for both, the same decimal, no
// qty), NULLs in every column.
const typesScript = `
import sys, random, decimal
import pyarrow as pa, pyarrow.parquet as pq, pandas as pd
d = sys.argv[1]
rng = random.Random(3)
def pick(xs): return None if rng.random() < 0.15 else rng.choice(xs)
cats = ['books', 'toys', 'garden', 'food']
names = ['n%d' % i for i in range(40)]
def price(): return None if rng.random() < 0.15 else decimal.Decimal(rng.randint(0, 2000)).scaleb(-2)
n = 3000
df = pd.DataFrame({
  'cat': pd.Categorical([pick(cats) for _ in range(n)]),
  'name': pd.array([pick(names) for _ in range(n)], dtype='string[pyarrow]'),
  'price': pd.Series([price() for _ in range(n)], dtype=pd.ArrowDtype(pa.decimal128(9, 2))),
  'qty': pd.array([None if rng.random() < 0.15 else rng.randint(0, 9) for _ in range(n)], dtype='Int64'),
})
df.to_parquet(d + '/pandas.parquet', index=False)
pq.write_table(pa.table({
  'name': pa.array([pick(names) for _ in range(n)], pa.string()),
  'cat': pa.array([pick(cats) for _ in range(n)], pa.string()),
  'price': pa.array([price() for _ in range(n)], pa.decimal128(9, 2)),
}), d + '/pyarrow.parquet', row_group_size=700)
`

// TestParquetTypesMatchDuckDB filters on a decimal, a categorical and a
// large_string column, groups by the categorical and aggregates, over a
// glob of a pandas file (categorical, large_string, decimal) and a pyarrow
// file whose schema differs compatibly, and over the pandas file alone
// (its categorical and large_string read as utf8 by the source), compared with
// DuckDB on the same files (union_by_name).
func TestParquetTypesMatchDuckDB(t *testing.T) {
	py := oracle.Python(t)
	dir := t.TempDir()
	in := filepath.Join(dir, "in")
	if out, err := exec.Command("mkdir", in).CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	if out, err := exec.Command(py, "-c", typesScript, in).CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, input := range []string{filepath.Join(in, "*.parquet"), filepath.Join(in, "pandas.parquet")} {
		want := canon(oracle.DuckDB(t, fmt.Sprintf(`SELECT cat, count(*), count(qty), sum(qty), count(DISTINCT name), min(name), max(name), count(price)
FROM read_parquet('%s', union_by_name=true)
WHERE price > 5 AND price <= 17.5 AND cat <> 'toys' AND name IS NOT NULL GROUP BY cat`, input)).Strings())
		for _, p := range []int{1, 3} {
			t.Run(fmt.Sprintf("%s/p=%d", filepath.Base(input), p), func(t *testing.T) {
				out := filepath.Join(t.TempDir(), "out")
				yml := fmt.Sprintf(`name: types
source:
  parquet: {path: "%s", batch_size: 256}
steps:
  - filter: "price > 5 AND price <= 17.5 AND cat <> 'toys' AND name IS NOT NULL"
  - aggregate:
      group_by: [cat]
      aggs: [count(*) AS n, count(qty) AS nq, sum(qty) AS sq, count_distinct(name) AS dn, min(name) AS mn, max(name) AS mx, "count(price) AS np"]
sink:
  file: {path: %s, format: parquet}
`, input, out)
				runJob(t, yml, p)
				got := canon(oracle.DuckDB(t, fmt.Sprintf(`SELECT cat, n, nq, sq, dn, mn, mx, np FROM read_parquet('%s/*.parquet')`, out)).Strings())
				compareRows(t, got, want, make([]float64, 8))
			})
		}
	}
}
