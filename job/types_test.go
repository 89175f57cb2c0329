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

// TestListsPassThrough reads a pyarrow file with list columns (NULL lists,
// empty lists, NULL elements), filters on another column and writes the
// lists unchanged: DuckDB finds the output equal to the input's filtered
// rows, both ways.
func TestListsPassThrough(t *testing.T) {
	py := oracle.Python(t)
	dir := t.TempDir()
	in := filepath.Join(dir, "lists.parquet")
	script := `
import sys, random, pyarrow as pa, pyarrow.parquet as pq
rng = random.Random(5)
def lst(f):
    r = rng.random()
    if r < 0.1: return None
    if r < 0.2: return []
    return [None if rng.random() < 0.1 else f() for _ in range(rng.randint(1, 4))]
n = 1500
pq.write_table(pa.table({
  'id': pa.array(range(n), pa.int64()),
  'tags': pa.array([lst(lambda: rng.choice(['a', 'bb', ''])) for _ in range(n)], pa.list_(pa.string())),
  'xs': pa.array([lst(lambda: rng.randint(-9, 9)) for _ in range(n)], pa.large_list(pa.int32())),
}), sys.argv[1], row_group_size=400)
`
	if out, err := exec.Command(py, "-c", script, in).CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, p := range []int{1, 3} {
		out := filepath.Join(t.TempDir(), "out")
		runJob(t, fmt.Sprintf(`name: lists
source:
  parquet: {path: %s, batch_size: 100}
steps:
  - filter: "id %% 3 <> 0"
sink:
  file: {path: %s, format: parquet}
`, in, out), p)
		diff := oracle.DuckDBStrings(t, fmt.Sprintf(`
WITH want AS (SELECT id, tags, xs FROM read_parquet('%s') WHERE id %% 3 <> 0),
     got AS (SELECT id, tags, xs FROM read_parquet('%s/*.parquet'))
SELECT (SELECT count(*) FROM got), (SELECT count(*) FROM want),
       (SELECT count(*) FROM (SELECT * FROM got EXCEPT ALL SELECT * FROM want)),
       (SELECT count(*) FROM (SELECT * FROM want EXCEPT ALL SELECT * FROM got))`, in, out))
		if g := diff[0]; g[0] != "1000" || g[1] != "1000" || g[2] != "0" || g[3] != "0" {
			t.Fatalf("p=%d: got %s rows, want %s; %s rows only in riffle's output, %s only in DuckDB's", p, g[0], g[1], g[2], g[3])
		}
	}
}
