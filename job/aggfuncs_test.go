package job_test

import (
	"encoding/json"
	"fmt"
	"math"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/riffle-dev/riffle/internal/oracle"
)

// aggCase is one aggregate of the library, as riffle writes it (job) and
// as DuckDB computes it (sql), compared with a relative tolerance tol (0:
// 1e-9, float summation order).
type aggCase struct {
	job, sql string
	name     string // output column
	tol      float64
	// out wraps the output column in DuckDB when reading riffle's file
	// (e.g. epoch_ms for timestamps); "" reads it as is.
	out string
}

// aggCases are checked in the aggregate step and in tumbling windows.
var aggCases = []aggCase{
	{job: "count(*) AS n", sql: "count(*)", name: "n"},
	{job: "count(x) AS cx", sql: "count(x)", name: "cx"},
	{job: "sum(i) AS si", sql: "sum(i)", name: "si"},
	{job: "sum(x) AS sx", sql: "sum(x)", name: "sx"},
	{job: "avg(x) AS ax", sql: "avg(x)", name: "ax"},
	{job: "min(x) AS mnx", sql: "min(x)", name: "mnx"},
	{job: "max(i) AS mxi", sql: "max(i)", name: "mxi"},
	{job: "min(ts) AS first_ts", sql: "epoch_ms(min(ts))", name: "first_ts", out: "epoch_ms(first_ts)"},
	{job: "count_distinct(name) AS dn", sql: "count(DISTINCT name)", name: "dn"},
	{job: "min(name) AS mns", sql: "min(name)", name: "mns"},
	{job: "max(name) AS mxs", sql: "max(name)", name: "mxs"},
	// HyperLogLog p=14 against the exact count: tens of distinct values
	// per group, where two values share a register now and then (about
	// n^2/2^15 of them: the estimate is one short), so the bound is 3%
	// (about 4 standard errors) or 1, whichever is larger.
	{job: "approx_distinct(i) AS ad", sql: "count(DISTINCT i)", name: "ad", tol: 0.03},
	// Expressions and FILTER.
	{job: "sum(price * qty) AS rev", sql: "sum(price * qty)", name: "rev"},
	{job: "count(*) FILTER (WHERE b) AS nb", sql: "count(*) FILTER (WHERE b)", name: "nb"},
	{job: "sum(x) FILTER (WHERE i > 0) AS sxp", sql: "sum(x) FILTER (WHERE i > 0)", name: "sxp"},
	{job: "max(abs(i) + 1) FILTER (WHERE name LIKE 'n1%') AS mf", sql: "max(abs(i) + 1) FILTER (WHERE name LIKE 'n1%')", name: "mf"},
	{job: "bool_and(b) AS ba", sql: "bool_and(b)", name: "ba"},
	{job: "min(b) AS mnb", sql: "min(b)", name: "mnb"},
	{job: "max(b) AS mxb", sql: "max(b)", name: "mxb"},
	{job: "bool_or(i > 900) AS bo", sql: "bool_or(i > 900)", name: "bo"},
	{job: "var_samp(x) AS vs", sql: "var_samp(x)", name: "vs"},
	{job: "var_pop(i) AS vp", sql: "var_pop(i)", name: "vp"},
	{job: "stddev(x) AS sd", sql: "stddev(x)", name: "sd"},
	{job: "stddev_pop(price * qty) AS sdp", sql: "stddev_pop(price * qty)", name: "sdp"},
	{job: "variance(x) FILTER (WHERE k = 3) AS vf", sql: "variance(x) FILTER (WHERE k = 3)", name: "vf"},
	// Quantiles: DuckDB's quantile_cont (its quantile is _disc). Exact in
	// the aggregate step; in windows a sketch, exact up to agg.KLLK values
	// per window (here about 15).
	{job: "median(x) AS med", sql: "median(x)", name: "med"},
	{job: "quantile(i, 0.9) AS q9", sql: "quantile_cont(i, 0.9)", name: "q9"},
	{job: "quantile_cont(price * qty, 0.25) FILTER (WHERE b) AS q25", sql: "quantile_cont(price * qty, 0.25) FILTER (WHERE b)", name: "q25"},
	{job: "quantile(x, 0) AS q0", sql: "quantile_cont(x, 0)", name: "q0"},
	{job: "quantile(x, 1) AS q1", sql: "quantile_cont(x, 1)", name: "q1"},
	// arg_max, arg_min: rows with a NULL x or y are skipped. The ordering
	// column u is a random double: no ties, whose winner depends on the
	// order rows arrive in.
	{job: "arg_min(x, u) AS amx", sql: "arg_min(x, u)", name: "amx"},
	{job: "arg_max(b, u) AS amb", sql: "arg_max(b, u)", name: "amb"},
	{job: "arg_min(ts, u) AS amt", sql: "epoch_ms(arg_min(ts, u))", name: "amt", out: "epoch_ms(amt)"},
	{job: "arg_max(i, -u) FILTER (WHERE k > 5) AS amf", sql: "arg_max(i, -u) FILTER (WHERE k > 5)", name: "amf"},
	// first(x, t), last(x, t): x of the row with the least (greatest) t,
	// also a NULL x.
	{job: "last(i, u) AS lu", sql: "last(i ORDER BY u) FILTER (WHERE u IS NOT NULL)", name: "lu"},
	{job: "first(k * 2, u) FILTER (WHERE b) AS fkf", sql: "first(k * 2 ORDER BY u) FILTER (WHERE b AND u IS NOT NULL)", name: "fkf"},
}

// windowOnlyCases run in the window step only: first and last by the
// window's time column.
var windowOnlyCases = []aggCase{
	{job: "first(x) AS wfx", sql: "first(x ORDER BY ts)", name: "wfx"},
	{job: "last(i) AS wli", sql: "last(i ORDER BY ts)", name: "wli"},
	{job: "last(price) FILTER (WHERE b) AS wlp", sql: "last(price ORDER BY ts) FILTER (WHERE b)", name: "wlp"},
}

// aggOnlyCases run in the aggregate step only (the window step lacks them).
// The ordering column u of arg_max and friends is a random double: no ties,
// whose winner depends on the order rows arrive in (see collect.go).
var aggOnlyCases = []aggCase{
	// arg_*, first and last over or by strings (the window step holds
	// numbers, booleans and temporal values only), first and last by a
	// column.
	{job: "arg_max(name, u) AS amn", sql: "arg_max(name, u)", name: "amn"},
	{job: "max_by(k, name || x) AS mbk", sql: "arg_max(k, name || x)", name: "mbk"},
	{job: "first(x, ts) AS fx", sql: "first(x ORDER BY ts)", name: "fx"},
	{job: "last(name, ts) AS ln", sql: "last(name ORDER BY ts)", name: "ln"},
	// list keeps NULLs; its order is the order of arrival: compared sorted.
	{job: "list(i) AS li", sql: "list_sort(list(i))", name: "li", out: "list_sort(li)"},
	{job: "list(name) AS lname", sql: "list_sort(list(name))", name: "lname", out: "list_sort(lname)"},
}

// writeNullData writes n seeded random rows with NULLs in every column but
// ts to a Parquet file, with DuckDB.
func writeNullData(t *testing.T, path string, n int) {
	oracle.DuckDB(t, fmt.Sprintf(`SELECT setseed(0.42);
COPY (SELECT
  CASE WHEN random() < 0.1 THEN NULL ELSE (random() * 20)::BIGINT END AS k,
  CASE WHEN random() < 0.1 THEN NULL ELSE 's' || (random() * 4)::INT END AS s,
  CASE WHEN random() < 0.2 THEN NULL ELSE round(random() * 200 - 100, 3) END AS x,
  CASE WHEN random() < 0.2 THEN NULL ELSE (random() * 2000 - 1000)::BIGINT END AS i,
  CASE WHEN random() < 0.2 THEN NULL ELSE random() < 0.5 END AS b,
  CASE WHEN random() < 0.2 THEN NULL ELSE 'n' || (random() * 300)::INT END AS name,
  CASE WHEN random() < 0.1 THEN NULL ELSE round(random() * 100, 2) END AS price,
  (random() * 10)::BIGINT AS qty,
  CASE WHEN random() < 0.1 THEN NULL ELSE random() END AS u,
  -- distinct event times (a permutation of the milliseconds of 3 days),
  -- so that first and last by time have no ties
  TIMESTAMP '2026-01-01' + to_milliseconds((range * 160190003) %% 259200000) AS ts
FROM range(%d)) TO '%s' (FORMAT parquet, ROW_GROUP_SIZE 3000)`, n, path))
}

// aggLists returns the job's aggregates (quoted), DuckDB's, the output
// columns to read back and the tolerances of the columns, after nkeys key
// columns.
func aggLists(cases []aggCase, nkeys int) (jobAggs, sqlAggs, outCols []string, tol []float64) {
	tol = make([]float64, nkeys)
	for _, c := range cases {
		jobAggs = append(jobAggs, strconv.Quote(c.job))
		sqlAggs = append(sqlAggs, c.sql+" AS "+c.name)
		o := c.name
		if c.out != "" {
			o = c.out
		}
		outCols = append(outCols, o)
		tol = append(tol, c.tol)
	}
	return jobAggs, sqlAggs, outCols, tol
}

// compareRows compares canonical rows cell by cell: equal strings, or
// numbers within 1e-9 relative of DuckDB's, or, where tol[i] > 0, within
// max(1, tol[i] * |DuckDB's|) (estimates of counts).
func compareRows(t *testing.T, got, want [][]string, tol []float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d rows, DuckDB has %d", len(got), len(want))
	}
	for r := range want {
		for i := range want[r] {
			a, b := got[r][i], want[r][i]
			if a == b {
				continue
			}
			x, err1 := strconv.ParseFloat(a, 64)
			y, err2 := strconv.ParseFloat(b, 64)
			bound := 1e-9 * math.Max(1, math.Abs(y))
			if i < len(tol) && tol[i] > 0 {
				bound = math.Max(1, tol[i]*math.Abs(y))
			}
			if err1 != nil || err2 != nil || math.Abs(x-y) > bound {
				t.Fatalf("row %d column %d: got %s, DuckDB %s\n got %v\nwant %v", r, i, a, b, got[r], want[r])
			}
		}
	}
}

// TestAggregateFunctionsMatchDuckDB runs every aggregate of the library,
// over expressions and with FILTER, grouped by plain and computed keys, in
// the aggregate step at several parallelisms and batch sizes, and compares
// with DuckDB on the same random data with NULLs.
func TestAggregateFunctionsMatchDuckDB(t *testing.T) {
	oracle.Python(t)
	dir := t.TempDir()
	input := filepath.Join(dir, "in.parquet")
	writeNullData(t, input, 20_000)
	jobAggs, sqlAggs, outCols, tol := aggLists(append(append([]aggCase(nil), aggCases...), aggOnlyCases...), 2)
	want := canon(oracle.DuckDB(t, fmt.Sprintf(`SELECT s, epoch_ms(date_trunc('day', ts)) AS day, %s FROM read_parquet('%s') GROUP BY ALL`,
		strings.Join(sqlAggs, ", "), input)).Strings())
	for _, p := range []int{1, 3} {
		for _, bs := range []int{97, 4096} {
			t.Run(fmt.Sprintf("p=%d/batch=%d", p, bs), func(t *testing.T) {
				out := filepath.Join(dir, fmt.Sprintf("agg-%d-%d", p, bs))
				yml := fmt.Sprintf(`name: aggs
source:
  parquet: {path: %s, batch_size: %d}
steps:
  - aggregate:
      group_by: [s, "date_trunc('day', ts) AS day"]
      aggs: [%s]
sink:
  file: {path: %s, format: parquet}
`, input, bs, strings.Join(jobAggs, ", "), out)
				runJob(t, yml, p)
				got := canon(oracle.DuckDB(t, fmt.Sprintf(`SELECT s, epoch_ms(day), %s FROM read_parquet('%s/*.parquet')`, strings.Join(outCols, ", "), out)).Strings())
				compareRows(t, got, want, tol)
				// pyarrow reads the list columns too: a list(i) per group
				// of count(*) values, NULLs included.
				pa := oracle.PyArrowRead(t, out, oracle.Parquet)
				if i := slices.Index(pa.Columns, "li"); i < 0 || pa.Types[i] != "list<element: int64>" && pa.Types[i] != "list<item: int64>" {
					t.Fatalf("pyarrow reads columns %v of types %v", pa.Columns, pa.Types)
				}
				ns, lists := pa.Column(t, "n"), pa.Column(t, "li")
				for r := range ns {
					var l []any
					if err := json.Unmarshal([]byte(oracle.Format(lists[r])), &l); err != nil || fmt.Sprint(len(l)) != oracle.Format(ns[r]) {
						t.Fatalf("row %d: pyarrow reads a list of %d values (%v) for a group of %v rows", r, len(l), err, ns[r])
					}
				}
			})
		}
	}
}

// TestWindowFunctionsMatchDuckDB runs the aggregates of the library in a
// tumbling window keyed by a plain and a computed key, at several
// parallelisms and batch sizes, against DuckDB's GROUP BY window start.
func TestWindowFunctionsMatchDuckDB(t *testing.T) {
	oracle.Python(t)
	dir := t.TempDir()
	input := filepath.Join(dir, "in.parquet")
	writeNullData(t, input, 20_000)
	jobAggs, sqlAggs, outCols, tol := aggLists(append(append([]aggCase(nil), aggCases...), windowOnlyCases...), 3)
	want := canon(oracle.DuckDB(t, fmt.Sprintf(`SELECT s, k %% 3 AS km, epoch_ms(ts) // 3600000 * 3600000 AS ws, %s FROM read_parquet('%s') GROUP BY ALL`,
		strings.Join(sqlAggs, ", "), input)).Strings())
	for _, p := range []int{1, 3} {
		for _, bs := range []int{97, 4096} {
			t.Run(fmt.Sprintf("p=%d/batch=%d", p, bs), func(t *testing.T) {
				out := filepath.Join(dir, fmt.Sprintf("win-%d-%d", p, bs))
				yml := fmt.Sprintf(`name: wins
source:
  parquet: {path: %s, batch_size: %d}
  watermark: {column: ts, max_out_of_orderness: 100h}
steps:
  - window:
      type: tumbling
      size: 1h
      key: [s, "k %% 3 AS km"]
      time: ts
      aggs: [%s]
sink:
  file: {path: %s, format: parquet}
`, input, bs, strings.Join(jobAggs, ", "), out)
				runJob(t, yml, p)
				got := canon(oracle.DuckDB(t, fmt.Sprintf(`SELECT s, km, epoch_ms(window_start), %s FROM read_parquet('%s/*.parquet') WHERE NOT is_update`, strings.Join(outCols, ", "), out)).Strings())
				compareRows(t, got, want, tol)
			})
		}
	}
}

// stringTypesScript writes a Parquet file whose string columns come in
// the three types writers choose: s utf8, ls large_utf8 (pandas'
// string[pyarrow]), ds dictionary<int32, utf8> (a categorical), with NULLs,
// empty strings and prefixes of each other, and a key k and event time ts.
const stringTypesScript = `
import sys, random, datetime
import pyarrow as pa, pyarrow.parquet as pq
rng = random.Random(11)
n = 6000
def word():
    if rng.random() < 0.15: return None
    return ''.join(rng.choice('abzé') for _ in range(rng.randint(0, 5)))
t0 = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
ts = sorted(t0 + datetime.timedelta(milliseconds=rng.randint(0, 6 * 3600 * 1000)) for _ in range(n))
pq.write_table(pa.table({
  'k': pa.array([rng.randint(0, 5) for _ in range(n)], pa.int64()),
  's': pa.array([word() for _ in range(n)], pa.string()),
  'ls': pa.array([word() for _ in range(n)], pa.large_string()),
  'ds': pa.array([word() for _ in range(n)], pa.string()).dictionary_encode(),
  'ts': pa.array(ts, pa.timestamp('ms', tz='UTC')),
}), sys.argv[1], row_group_size=1000)
`

// TestWindowStringMinMaxMatchDuckDB takes min and max of utf8, large_utf8
// and dictionary-encoded string columns (the source reads the latter two
// as utf8) in tumbling, sliding and session windows and compares them with
// DuckDB's on the same file.
func TestWindowStringMinMaxMatchDuckDB(t *testing.T) {
	py := oracle.Python(t)
	dir := t.TempDir()
	input := filepath.Join(dir, "strings.parquet")
	if out, err := exec.Command(py, "-c", stringTypesScript, input).CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	aggs := "min(s) AS mn_s, max(s) AS mx_s, min(ls) AS mn_ls, max(ls) AS mx_ls, min(ds) AS mn_ds, max(ds) AS mx_ds, count(*) AS n"
	const cols = "mn_s, mx_s, mn_ls, mx_ls, mn_ds, mx_ds, n"
	// Sessions: a new one starts where an event is more than 10 s after
	// the key's previous one.
	sessions := fmt.Sprintf(`SELECT k, epoch_ms(min(ts)) AS ws, %s FROM (
  SELECT *, sum(CASE WHEN prev IS NULL OR ts > prev + INTERVAL 10 SECOND THEN 1 ELSE 0 END) OVER (PARTITION BY k ORDER BY ts ROWS UNBOUNDED PRECEDING) AS sid
  FROM (SELECT *, lag(ts) OVER (PARTITION BY k ORDER BY ts) AS prev FROM read_parquet('%s')))
GROUP BY k, sid`, aggs, input)
	for _, c := range []struct{ name, window, sql string }{
		{"tumbling", "type: tumbling\n      size: 10m", fmt.Sprintf(`SELECT k, epoch_ms(time_bucket(INTERVAL 10 MINUTE, ts)) AS ws, %s FROM read_parquet('%s') GROUP BY ALL`, aggs, input)},
		{"sliding", "type: sliding\n      size: 10m\n      slide: 5m", fmt.Sprintf(`SELECT k, ws, %s
FROM (SELECT *, epoch_ms(time_bucket(INTERVAL 5 MINUTE, ts)) - 300000 * i AS ws FROM read_parquet('%s'), (VALUES (0), (1)) AS v(i)) GROUP BY k, ws`, aggs, input)},
		{"session", "type: session\n      gap: 10s", sessions},
	} {
		want := canon(oracle.DuckDB(t, c.sql).Strings())
		for _, p := range []int{1, 2} {
			t.Run(fmt.Sprintf("%s/p=%d", c.name, p), func(t *testing.T) {
				out := filepath.Join(t.TempDir(), "out")
				yml := fmt.Sprintf(`name: strs
source:
  parquet: {path: %s, batch_size: 333}
  watermark: {column: ts, max_out_of_orderness: 1s}
steps:
  - window:
      %s
      key: [k]
      time: ts
      aggs: [%s]
sink:
  file: {path: %s, format: parquet}
`, input, c.window, aggs, out)
				runJob(t, yml, p)
				got := canon(oracle.DuckDB(t, fmt.Sprintf(`SELECT k, epoch_ms(window_start), %s FROM read_parquet('%s/*.parquet') WHERE NOT is_update`, cols, out)).Strings())
				compareRows(t, got, want, nil)
			})
		}
	}
}
