package job_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/riffle-dev/riffle/arrowexec/ops"
	"github.com/riffle-dev/riffle/internal/gen"
	"github.com/riffle-dev/riffle/internal/oracle"
	"github.com/riffle-dev/riffle/job"
)

// stepCases pair sort, limit, distinct and unnest steps with the SQL
// DuckDB runs on the same input; ordered cases compare rows in order (their
// ORDER BY is total), the others as multisets.
var stepCases = []struct {
	name, steps, sql string
	ordered          bool
	lists            bool // reads the input with the list column l
}{
	{"sort", `
  - sort: [a DESC NULLS FIRST, s, id]`,
		`SELECT * FROM input ORDER BY a DESC NULLS FIRST, s NULLS LAST, id`, true, false},
	{"sort-nulls-last-default", `
  - filter: "id % 3 != 0"
  - sort: [f DESC, id DESC]
  - project: {id: id, f: f, a: a}`,
		`SELECT id, f, a FROM input WHERE id % 3 != 0 ORDER BY f DESC NULLS LAST, id DESC`, true, false},
	{"top-n", `
  - sort: ["s NULLS FIRST", f, id]
  - limit: 25`,
		`SELECT * FROM input ORDER BY s NULLS FIRST, f NULLS LAST, id LIMIT 25`, true, false},
	{"top-n-then-filter", `
  - sort: [id]
  - limit: 60
  - filter: "a > 0"`,
		`SELECT * FROM (SELECT * FROM input ORDER BY id LIMIT 60) WHERE a > 0 ORDER BY id`, true, false},
	{"distinct-columns", `
  - distinct: [a, s]`,
		`SELECT DISTINCT a, s FROM input`, false, false},
	{"distinct-all", `
  - project: {a: a, b: a % 2 = 0, s: s}
  - distinct: {}`,
		`SELECT DISTINCT a, a % 2 = 0 AS b, s FROM input`, false, false},
	{"unnest", `
  - unnest: l
  - filter: "l IS NULL OR l > -20"`,
		`SELECT * FROM (SELECT id, a, f, s, UNNEST(l) AS l FROM input) WHERE l IS NULL OR l > -20`, false, true},
}

// TestStepsMatchDuckDB runs each step over random rows with NULLs (written
// by DuckDB) at several parallelisms and batch sizes, and compares the
// output, read back by DuckDB, with DuckDB's answer.
func TestStepsMatchDuckDB(t *testing.T) {
	oracle.Python(t)
	dir := t.TempDir()
	lists := filepath.Join(dir, "lists.parquet")
	oracle.DuckDB(t, fmt.Sprintf(`SELECT setseed(0.25);
COPY (SELECT i AS id,
  CASE WHEN random() < 0.2 THEN NULL ELSE (random() * 9)::INTEGER - 4 END AS a,
  CASE WHEN random() < 0.2 THEN NULL ELSE round(random() * 8 - 4, 1) END AS f,
  CASE WHEN random() < 0.2 THEN NULL ELSE ['', 'a', 'ab', 'b', 'B', 'zz'][(random() * 5)::INTEGER + 1] END AS s,
  CASE WHEN random() < 0.15 THEN NULL WHEN random() < 0.2 THEN []::INTEGER[]
       ELSE [(random() * 100)::INTEGER - 50, CASE WHEN random() < 0.3 THEN NULL ELSE i %% 7 END] END AS l
FROM range(3000) t(i)) TO '%s' (FORMAT parquet, ROW_GROUP_SIZE 700)`, lists))
	plain := filepath.Join(dir, "in.parquet")
	oracle.DuckDB(t, fmt.Sprintf(`COPY (SELECT * EXCLUDE (l) FROM read_parquet('%s')) TO '%s' (FORMAT parquet, ROW_GROUP_SIZE 700)`, lists, plain))
	for _, c := range stepCases {
		input := plain
		if c.lists {
			input = lists
		}
		want := oracle.DuckDB(t, fmt.Sprintf("CREATE VIEW input AS SELECT * FROM read_parquet('%s'); %s", input, c.sql)).Strings()
		if !c.ordered {
			want = canon(want)
		}
		for _, run := range []struct{ p, batch int }{{1, 4096}, {2, 7}, {3, 100}} {
			t.Run(fmt.Sprintf("%s/p=%d/batch=%d", c.name, run.p, run.batch), func(t *testing.T) {
				out := filepath.Join(dir, fmt.Sprintf("%s-%d", c.name, run.p))
				yml := fmt.Sprintf("name: %s\nsource:\n  parquet:\n    path: %s\n    batch_size: %d\nsteps:%s\nsink:\n  file:\n    path: %s\n    format: parquet\n", c.name, input, run.batch, c.steps, out)
				if c.lists {
					spec, err := job.Parse("test.yaml", []byte(yml))
					if err != nil {
						t.Fatal(err)
					}
					if _, err := spec.Plan(job.Options{Parallelism: run.p, NoSync: true}); err != nil && strings.Contains(err.Error(), "nested type") {
						// ops' TestLimitAndUnnestMatchDuckDB covers unnest meanwhile.
						t.Skipf("the Parquet source does not read list columns yet (issue 14 item 1): %v", err)
					}
				}
				runJob(t, yml, run.p)
				got := oracle.DuckDB(t, fmt.Sprintf("SELECT * FROM read_parquet('%s/*.parquet')", out)).Strings()
				if !c.ordered {
					got = canon(got)
				}
				if len(got) != len(want) {
					t.Fatalf("%d rows, DuckDB has %d", len(got), len(want))
				}
				for i := range want {
					if !rowsClose(got[i], want[i]) {
						t.Fatalf("row %d:\n got %v\nwant %v", i, got[i], want[i])
					}
				}
			})
		}
	}
}

// TestSortLimitPlansTopN: a sort followed by a limit plans a partial and a
// final top-N (heaps of N rows), not a full sort; apart, a full sort.
func TestSortLimitPlansTopN(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.parquet")
	if err := gen.WriteFile(context.Background(), in, gen.Options{Rows: 10, Seed: 1}, nil); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		steps string
		want  map[string]int64 // node -> limit of its *ops.Sort
	}{
		{"  - sort: [weight DESC]\n  - limit: 7\n", map[string]int64{"sort-1-partial": 7, "sort-1": 7}},
		{"  - sort: [weight DESC]\n  - filter: \"weight > 0\"\n  - limit: 7\n", map[string]int64{"sort-1": -1}},
	} {
		y := fmt.Sprintf("source:\n  parquet: {path: %s}\nsteps:\n%ssink:\n  file: {path: %s}\n", in, c.steps, filepath.Join(dir, "out"))
		spec, err := job.Parse("job.yaml", []byte(y))
		if err != nil {
			t.Fatal(err)
		}
		plan, err := spec.Plan(job.Options{Parallelism: 2, ExplainOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		for name, limit := range c.want {
			n := plan.Graph.Node(name)
			if n == nil {
				t.Fatalf("%s: no node %s", c.steps, name)
			}
			s, ok := n.Spec().(*ops.Sort)
			if !ok || s.Limit != limit {
				t.Fatalf("%s: node %s is %#v, want a sort with limit %d", c.steps, name, n.Spec(), limit)
			}
		}
		if n := plan.Graph.Node("sort-1"); n.Parallelism() != 1 {
			t.Fatalf("%s: final sort at parallelism %d", c.steps, n.Parallelism())
		}
	}
}
