package metrics_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/internal/gen"
	"github.com/riffle-dev/riffle/internal/metrics"
	"github.com/riffle-dev/riffle/internal/oracle"
	"github.com/riffle-dev/riffle/job"
)

// TestRowsAgainstDuckDB runs a Parquet job (filter, group-by, file sink)
// at parallelism 2 and checks the scraped row counters against DuckDB
// over the same file: the source's rows in are the file's rows, the
// filter's rows out the rows its predicate keeps, the sink's rows in the
// groups; the parts published are the files on disk.
func TestRowsAgainstDuckDB(t *testing.T) {
	oracle.Python(t)
	dir := t.TempDir()
	input := filepath.Join(dir, "events.parquet")
	if err := gen.WriteFile(context.Background(), input, gen.Options{Rows: 50000, Seed: 5, Items: 300}, nil); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	yml := fmt.Sprintf(`name: rows
parallelism: 2
source:
  parquet: {path: %s}
steps:
  - filter: "weight > 2"
  - aggregate: {group_by: [item_id], aggs: ["count(*) AS n"]}
sink:
  file: {path: %s, format: parquet}
`, input, out)
	spec, err := job.Parse("rows.yaml", []byte(yml))
	if err != nil {
		t.Fatal(err)
	}
	plan, err := spec.Plan(job.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	j, err := plan.Graph.Compile(arrowexec.RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	runToEnd(t, j)
	files, err := plan.Commit()
	if err != nil {
		t.Fatal(err)
	}
	c := &metrics.Collector{}
	c.SetJob("rows", j)
	fams := families(t, c)
	r := oracle.DuckDB(t, fmt.Sprintf(`SELECT count(*), count(*) FILTER (WHERE weight > 2), count(DISTINCT item_id) FILTER (WHERE weight > 2)
FROM read_parquet('%s')`, input)).Strings()[0]
	num := func(s string) float64 {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	all, kept, groups := num(r[0]), num(r[1]), num(r[2])
	// The filter may be pushed into the scan (then the source emits the
	// kept rows): the source's rows in are the rows it emitted, what the
	// first operator after it receives.
	src := plan.SourceNode
	srcOut, _ := value(fams, "riffle_rows_out_total", map[string]string{"node": src})
	if srcOut != all && srcOut != kept {
		t.Errorf("source emitted %v rows; the file has %v, %v pass the filter", srcOut, all, kept)
	}
	if v, _ := value(fams, "riffle_rows_in_total", map[string]string{"node": plan.SinkNode}); v != groups {
		t.Errorf("sink received %v rows, DuckDB counts %v groups", v, groups)
	}
	var filterOut float64
	found := false
	for _, n := range j.Graph().Nodes() {
		if n.Name() == "filter-1" {
			filterOut, found = value(fams, "riffle_rows_out_total", map[string]string{"node": n.Name()})
		}
	}
	if found && filterOut != kept {
		t.Errorf("filter emitted %v rows, DuckDB keeps %v", filterOut, kept)
	}
	if !found && srcOut != kept {
		t.Errorf("filter pushed into the scan, yet the source emitted %v rows, DuckDB keeps %v", srcOut, kept)
	}
	if v, _ := value(fams, "riffle_sink_parts_published_total", map[string]string{"node": plan.SinkNode}); v != float64(len(files)) || len(files) == 0 {
		t.Errorf("riffle_sink_parts_published_total = %v, %d files committed", v, len(files))
	}
	lint(t, c)
}
