package job_test

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/riffle-dev/riffle/internal/oracle"
)

// dictJobScript writes a string column as dictionary pages over several
// row groups (a.parquet), one whose dictionary outgrows its page limit so
// the writer falls back to plain pages mid-chunk (b.parquet), NULLs in
// both.
const dictJobScript = `
import sys, random
import pyarrow as pa, pyarrow.parquet as pq
d = sys.argv[1]
random.seed(5)
n = 4000
few = ['cart', 'view', 'purchase', 'héllo', '', 'Abc', 'x%y']
many = few + ['w%04d' % i for i in range(1500)]
def table(vals, base, p):
    return pa.table({
      'id': pa.array(range(base, base + n), pa.int64()),
      's': pa.array([None if random.random() < p else random.choice(vals) for _ in range(n)], pa.string()),
      'v': pa.array([random.randint(-5, 50) for _ in range(n)], pa.int64()),
    })
pq.write_table(table(few, 0, 0.1), d + '/a.parquet', row_group_size=900, data_page_size=256)
pq.write_table(table(many, n, 0.05), d + '/b.parquet', row_group_size=3000, data_page_size=512, dictionary_pagesize_limit=3000)
`

// TestDictionaryStringsMatchDuckDB runs jobs whose filters, projections
// and aggregate keys use a string column that the source reads
// dictionary-encoded (checked on the plan), at parallelism 1 and 3 (the
// hash exchange), writing Parquet, CSV and JSONL, and compares with DuckDB.
func TestDictionaryStringsMatchDuckDB(t *testing.T) {
	py := oracle.Python(t)
	in := t.TempDir()
	if out, err := exec.Command(py, "-c", dictJobScript, in).CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	glob := filepath.Join(in, "*.parquet")
	cases := []struct {
		name, steps, sql string
	}{
		{"filter-project", `
  - filter: "lower(s) LIKE '%a%' AND s <> 'view'"
  - project: {id: id, s: s, u: upper(s), l: length(s), p: "substr(s, 1, 3)", n: "s IS NULL", c: "coalesce(s, 'none')"}`,
			`SELECT id, s, upper(s), length(s), substr(s, 1, 3), s IS NULL, coalesce(s, 'none') FROM read_parquet('%s') WHERE lower(s) LIKE '%%a%%' AND s <> 'view'`},
		{"project-nulls", `
  - project: {id: id, s: s, t: "trim(s)", k: "CASE WHEN s = 'cart' THEN 'c' WHEN s LIKE 'w%' THEN 'w' ELSE upper(s) END", x: "concat(s, '-', v)"}`,
			`SELECT id, s, trim(s), CASE WHEN s = 'cart' THEN 'c' WHEN s LIKE 'w%%' THEN 'w' ELSE upper(s) END, concat(s, '-', v) FROM read_parquet('%s')`},
		{"aggregate", `
  - filter: "regexp_matches(s, '^(cart|purchase|w0)') OR s IS NULL OR starts_with(s, 'h')"
  - aggregate:
      group_by: [s, "substr(s, 1, 2) AS p"]
      aggs: ["count(*) AS n", "sum(v) AS sv", "count(*) FILTER (WHERE s = 'cart') AS carts"]`,
			`SELECT s, substr(s, 1, 2), count(*), sum(v), count(*) FILTER (WHERE s = 'cart') FROM read_parquet('%s') WHERE regexp_matches(s, '^(cart|purchase|w0)') OR s IS NULL OR starts_with(s, 'h') GROUP BY ALL`},
		{"filter-plain-aggregate", `
  - filter: "regexp_matches(s, 'c|w00') AND s NOT LIKE '%y'"
  - aggregate:
      group_by: [v]
      aggs: ["count(*) AS n", "sum(id) AS si"]`,
			`SELECT v, count(*), sum(id) FROM read_parquet('%s') WHERE regexp_matches(s, 'c|w00') AND s NOT LIKE '%%y' GROUP BY ALL`},
	}
	for _, c := range cases {
		want := canon(oracle.DuckDB(t, fmt.Sprintf(c.sql, glob)).Strings())
		for _, format := range []string{"parquet", "csv", "jsonl"} {
			for _, p := range []int{1, 3} {
				t.Run(fmt.Sprintf("%s/%s/p=%d", c.name, format, p), func(t *testing.T) {
					out := filepath.Join(t.TempDir(), "out")
					yml := fmt.Sprintf(`name: dict
source:
  parquet: {path: "%s", batch_size: 300}
steps:%s
sink:
  file: {path: %s, format: %s}
`, glob, c.steps, out, format)
					plan := runJob(t, yml, p)
					if f, ok := plan.Parquet.Schema().FieldsByName("s"); !ok || f[0].Type.ID() != arrow.DICTIONARY {
						t.Fatalf("source reads s as %v, want dictionary-encoded", f)
					}
					read := fmt.Sprintf("read_parquet('%s/*.parquet')", out)
					switch format {
					case "csv":
						read = fmt.Sprintf("read_csv('%s/*.csv', header=true, all_varchar=true, allow_quoted_nulls=false)", out)
					case "jsonl":
						read = fmt.Sprintf("read_json('%s/*.jsonl')", out)
					}
					got := canon(oracle.DuckDB(t, "SELECT * FROM "+read).Strings())
					compareRows(t, got, want, make([]float64, len(want[0])))
				})
			}
		}
	}
}
