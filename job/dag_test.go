package job_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/arrowexec/expr"
	"github.com/riffle-dev/riffle/internal/gen"
	"github.com/riffle-dev/riffle/internal/oracle"
	"github.com/riffle-dev/riffle/job"
)

// TestDAGUnion runs a DAG job (two named sources, a union, a filter and an
// aggregate, two sinks) at several parallelisms: each sink's output equals
// DuckDB's answer over UNION ALL of the two files.
func TestDAGUnion(t *testing.T) {
	oracle.Python(t)
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.parquet"), filepath.Join(dir, "b.parquet")
	for i, p := range []string{a, b} {
		if err := gen.WriteFile(context.Background(), p, gen.Options{Rows: int64(20_000 + 7_000*i), Users: 300, Items: 150, Seed: int64(11 + i), RowGroupRows: 4_000}, nil); err != nil {
			t.Fatal(err)
		}
	}
	both := fmt.Sprintf("(SELECT * FROM read_parquet('%s') UNION ALL SELECT * FROM read_parquet('%s'))", a, b)
	wantAgg := canon(oracle.DuckDB(t, fmt.Sprintf(`SELECT item_id, count(*) AS n, sum(weight) AS w, count(DISTINCT user_id) AS users
FROM %s WHERE event_type <> 'view' GROUP BY ALL`, both)).Strings())
	wantRows := canon(oracle.DuckDB(t, fmt.Sprintf(`SELECT user_id, item_id, event_type, weight, event_time FROM %s WHERE event_type <> 'view'`, both)).Strings())
	for _, p := range []int{1, 2, 3} {
		t.Run(fmt.Sprintf("p=%d", p), func(t *testing.T) {
			out, rows := filepath.Join(dir, fmt.Sprintf("agg-%d", p)), filepath.Join(dir, fmt.Sprintf("rows-%d", p))
			yml := fmt.Sprintf(`name: dag
sources:
  clicks: {parquet: {path: %s}}
  more: {parquet: {path: %s}}
steps:
  - name: all
    union: {}
    inputs: [clicks, more]
  - name: buys
    filter: "event_type <> 'view'"
  - aggregate:
      group_by: [item_id]
      aggs: ["count(*) AS n", "sum(weight) AS w", "count_distinct(user_id) AS users"]
sinks:
  - file: {path: %s}
  - from: buys
    file: {path: %s}
`, a, b, out, rows)
			plan := runJob(t, yml, p)
			if !plan.Bounded || plan.OutputSchema().NumFields() != 4 {
				t.Fatalf("bounded %v, output schema %v", plan.Bounded, plan.OutputSchema())
			}
			got := canon(oracle.DuckDB(t, fmt.Sprintf("SELECT * FROM read_parquet('%s/*.parquet')", out)).Strings())
			compareNamedRows(t, "aggregate", got, wantAgg)
			got = canon(oracle.DuckDB(t, fmt.Sprintf("SELECT user_id, item_id, event_type, weight, event_time FROM read_parquet('%s/*.parquet')", rows)).Strings())
			compareNamedRows(t, "rows", got, wantRows)
		})
	}
}

func compareNamedRows(t *testing.T, what string, got, want [][]string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d rows, DuckDB has %d", what, len(got), len(want))
	}
	for i := range want {
		if !rowsClose(got[i], want[i]) {
			t.Fatalf("%s: row %d:\n got %v\nwant %v", what, i, got[i], want[i])
		}
	}
}

// TestDAGErrors: a bad DAG fails at plan time (or parse time) naming the
// line of the culprit.
func TestDAGErrors(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.parquet")
	if err := gen.WriteFile(context.Background(), in, gen.Options{Rows: 100, Users: 10, Items: 10, Seed: 1}, nil); err != nil {
		t.Fatal(err)
	}
	src := "  a: {parquet: {path: " + in + "}}\n  b: {parquet: {path: " + in + "}}\n"
	proj := `  - name: p
    project: {user_id: user_id}
    inputs: [b]
`
	for _, c := range []struct {
		name, body, want string
	}{
		{"cycle", "sources:\n" + src + `steps:
  - name: x
    filter: "weight > 1"
    inputs: [y]
  - name: y
    union: {}
    inputs: [a, b, x]
sinks:
  - file: {path: out}
`, `d.yaml:10: step 2 (y): inputs: cycle x -> y -> x`},
		{"unknown input", "sources:\n" + src + `steps:
  - union: {}
    inputs: [a, c]
sinks:
  - file: {path: out}
`, `d.yaml:6: step 1 (union-1): inputs: unknown input "c" (have a, b, union-1)`},
		{"unused source", "sources:\n" + src + `steps:
  - filter: "weight > 1"
    inputs: [a]
sinks:
  - file: {path: out}
`, `d.yaml:3: sources: "b" is read by no step or sink`},
		{"union schemas", "sources:\n" + src + "steps:\n" + proj + `  - union: {}
    inputs: [a, p]
sinks:
  - file: {path: out}
`, `d.yaml:8: step 2 (union): union: input 2 does not match input 1: 1 columns (user_id int64)`},
		{"unknown from", "sources:\n" + src + `steps:
  - union: {}
    inputs: [a, b]
sinks:
  - from: nowhere
    file: {path: out}
`, `d.yaml:8: sinks: 1: from: unknown input "nowhere"`},
		{"side of a non-window", "sources:\n" + src + `steps:
  - union: {}
    inputs: [a, b]
sinks:
  - from: union-1.late
    file: {path: out}
`, `d.yaml:8: sinks: 1: from: "union-1" has no side output "late"`},
		{"first step of several sources", "sources:\n" + src + `steps:
  - filter: "weight > 1"
sinks:
  - file: {path: out}
`, `d.yaml:5: step 1: the job has 2 sources: name the ones this step reads`},
		{"union in a linear job", "source: {parquet: {path: " + in + "}}\n" + `steps:
  - union: {}
sink:
  file: {path: out}
`, `d.yaml:3: step 1: inputs and union need a job with named sources`},
	} {
		t.Run(c.name, func(t *testing.T) {
			spec, err := job.Parse("d.yaml", []byte(c.body))
			if err == nil {
				_, err = spec.Plan(job.Options{Parallelism: 1, NoSync: true})
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v\nwant %q", err, c.want)
			}
		})
	}
}

// TestDAGGoAPI builds a DAG job as a job.Spec in Go (no YAML): two named
// sources, a union and a filter reading it by name, a sink reading the
// union: the sink gets DuckDB's UNION ALL.
func TestDAGGoAPI(t *testing.T) {
	oracle.Python(t)
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.parquet"), filepath.Join(dir, "b.parquet")
	for i, p := range []string{a, b} {
		if err := gen.WriteFile(context.Background(), p, gen.Options{Rows: int64(3_000 + 1_000*i), Users: 50, Items: 40, Seed: int64(31 + i)}, nil); err != nil {
			t.Fatal(err)
		}
	}
	f, err := expr.Parse("weight > 1")
	if err != nil {
		t.Fatal(err)
	}
	out, heavy := filepath.Join(dir, "all"), filepath.Join(dir, "heavy")
	spec := &job.Spec{
		File: "api",
		Sources: []job.NamedSource{
			{Name: "a", SourceSpec: job.SourceSpec{Parquet: &job.ParquetSpec{Path: a}}},
			{Name: "b", SourceSpec: job.SourceSpec{Parquet: &job.ParquetSpec{Path: b}}},
		},
		Steps: []job.Step{
			{Kind: job.StepUnion, Name: "all", Inputs: []string{"a", "b"}},
			{Kind: job.StepFilter, Filter: f, Inputs: []string{"all"}},
		},
		Sinks: []job.SinkSpec{
			{From: "all", File: &job.FileSinkSpec{Path: out, Format: "parquet"}},
			{File: &job.FileSinkSpec{Path: heavy, Format: "parquet"}},
		},
	}
	plan, err := spec.Plan(job.Options{Parallelism: 2, NoSync: true})
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
	both := fmt.Sprintf("(SELECT * FROM read_parquet('%s') UNION ALL SELECT * FROM read_parquet('%s'))", a, b)
	for _, c := range []struct{ dir, where string }{{out, "true"}, {heavy, "weight > 1"}} {
		want := canon(oracle.DuckDB(t, fmt.Sprintf("SELECT * FROM %s WHERE %s", both, c.where)).Strings())
		got := canon(oracle.DuckDB(t, fmt.Sprintf("SELECT * FROM read_parquet('%s/*.parquet')", c.dir)).Strings())
		compareNamedRows(t, c.dir, got, want)
	}
}
