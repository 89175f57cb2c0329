package job_test

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/internal/gen"
	"github.com/riffle-dev/riffle/internal/oracle"
	"github.com/riffle-dev/riffle/job"
)

// e2eCases pair a job (steps) with the SQL DuckDB runs on the same input.
var e2eCases = []struct {
	name  string
	steps string
	sql   string // over the table "input"
}{
	{
		name: "filter-groupby",
		steps: `
  - filter: "event_type IN ('click', 'cart', 'purchase') AND weight > 1"
  - aggregate:
      group_by: [item_id]
      aggs: ["count(*) AS n", "sum(weight) AS total", "avg(weight) AS mean", "min(event_time) AS first", "max(user_id) AS top_user"]`,
		sql: `SELECT item_id, count(*) AS n, sum(weight) AS total, avg(weight) AS mean, min(event_time) AS first, max(user_id) AS top_user
FROM input WHERE event_type IN ('click', 'cart', 'purchase') AND weight > 1 GROUP BY item_id`,
	},
	{
		name: "project-distinct",
		steps: `
  - project:
      bucket: user_id % 17
      kind: event_type
      w: weight * 2 + 1
  - aggregate:
      group_by: [bucket, kind]
      aggs: ["count_distinct(w) AS dw", "sum(w) AS sw", "count(*) AS n"]`,
		sql: `SELECT user_id % 17 AS bucket, event_type AS kind, count(DISTINCT weight * 2 + 1) AS dw, sum(weight * 2 + 1) AS sw, count(*) AS n
FROM input GROUP BY ALL`,
	},
	{
		// String comparisons pushed into the scan, the rest kept in the step.
		name: "pushed-string-filters",
		steps: `
  - filter: "event_type != 'view' AND NOT (event_type IN ('cart')) AND weight >= 2"
  - filter: "'click' = event_type OR user_id % 3 = 0"
  - aggregate:
      group_by: [user_id]
      aggs: ["count(*) AS n", "max(item_id) AS top"]`,
		sql: `SELECT user_id, count(*) AS n, max(item_id) AS top FROM input
WHERE event_type != 'view' AND NOT (event_type IN ('cart')) AND weight >= 2 AND ('click' = event_type OR user_id % 3 = 0) GROUP BY user_id`,
	},
	{
		name: "global",
		steps: `
  - filter: "item_id < 50 OR event_type = 'purchase'"
  - aggregate:
      aggs: ["count(*) AS n", "sum(item_id) AS s", "count_distinct(user_id) AS users"]`,
		sql: `SELECT count(*) AS n, sum(item_id) AS s, count(DISTINCT user_id) AS users FROM input WHERE item_id < 50 OR event_type = 'purchase'`,
	},
}

// TestBackfillMatchesDuckDB runs each job over generated Parquet at several
// parallelisms and compares the output files, read by DuckDB, with DuckDB's
// answer to the same query on the input.
func TestBackfillMatchesDuckDB(t *testing.T) {
	oracle.Python(t) // skip early (or fail under RIFFLE_REQUIRE_ORACLE) without the venv
	dir := t.TempDir()
	input := filepath.Join(dir, "events.parquet")
	if err := gen.WriteFile(context.Background(), input, gen.Options{Rows: 300_000, Users: 2000, Items: 500, Seed: 42, RowGroupRows: 40_000}, nil); err != nil {
		t.Fatal(err)
	}
	for _, c := range e2eCases {
		want := canon(oracle.DuckDB(t, fmt.Sprintf("CREATE VIEW input AS SELECT * FROM read_parquet('%s'); %s", input, c.sql)).Strings())
		for _, p := range []int{1, 2, 4} {
			t.Run(fmt.Sprintf("%s/p=%d", c.name, p), func(t *testing.T) {
				out := filepath.Join(dir, fmt.Sprintf("%s-%d", c.name, p))
				yml := fmt.Sprintf("name: %s\nsource:\n  parquet:\n    path: %s\nsteps:%s\nsink:\n  file:\n    path: %s\n    format: parquet\n", c.name, input, c.steps, out)
				runAndCompare(t, yml, p, out, want)
			})
		}
	}
}

// runJob parses the job file yml, plans it at parallelism p, runs it on a
// checked allocator (every byte released at the end) and commits its
// output.
func runJob(t *testing.T, yml string, p int) *job.Plan {
	t.Helper()
	spec, err := job.Parse("test.yaml", []byte(yml))
	if err != nil {
		t.Fatal(err)
	}
	plan, err := spec.Plan(job.Options{Parallelism: p, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	j, err := plan.Graph.Compile(arrowexec.RunOptions{Mem: mem})
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	mem.AssertSize(t, 0)
	if _, err := plan.Commit(); err != nil {
		t.Fatal(err)
	}
	return plan
}

// runAndCompare runs the bounded job file yml at parallelism p (runJob)
// and compares its output (Parquet files in out) with want, as DuckDB
// reads it.
func runAndCompare(t *testing.T, yml string, p int, out string, want [][]string) {
	t.Helper()
	if plan := runJob(t, yml, p); !plan.Bounded {
		t.Fatal("plan is not bounded")
	}
	got := canon(oracle.DuckDB(t, fmt.Sprintf("SELECT * FROM read_parquet('%s/*.parquet')", out)).Strings())
	if len(got) != len(want) {
		t.Fatalf("%d rows, DuckDB has %d", len(got), len(want))
	}
	for i := range want {
		if !rowsClose(got[i], want[i]) {
			t.Fatalf("row %d:\n got %v\nwant %v", i, got[i], want[i])
		}
	}
}

// canon sorts rows so that output order does not matter.
func canon(rows [][]string) [][]string {
	slices.SortFunc(rows, func(a, b []string) int { return strings.Compare(strings.Join(a, "\x00"), strings.Join(b, "\x00")) })
	return rows
}

// rowsClose compares rows cell by cell; floats agree to 1e-9 relative
// (summation order differs between engines).
func rowsClose(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] == b[i] {
			continue
		}
		x, err1 := strconv.ParseFloat(a[i], 64)
		y, err2 := strconv.ParseFloat(b[i], 64)
		if err1 != nil || err2 != nil || math.Abs(x-y) > 1e-9*math.Max(1, math.Abs(y)) {
			return false
		}
	}
	return true
}
