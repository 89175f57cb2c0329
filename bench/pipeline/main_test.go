package main

import (
	"fmt"
	"math"
	"path/filepath"
	"testing"

	"github.com/riffle-dev/riffle/bench/internal/benchenv"
	"github.com/riffle-dev/riffle/internal/oracle"
)

// TestPlot: with --plot the program writes its Markdown table and charts
// of it beside: each bar is the table's figure for that query and engine,
// and riffle's throughput curve of each query integrates to the rows its
// scan delivers: DuckDB's count of the input rows that pass the filter
// pushed into it.
func TestPlot(t *testing.T) {
	oracle.Python(t)
	const rows = 300_000
	dir, plot := t.TempDir(), t.TempDir()
	if err := run(rows, 2, 1, dir, "", plot); err != nil {
		t.Fatal(err)
	}
	table, err := benchenv.MarkdownRows(filepath.Join(plot, "pipeline.md"))
	if err != nil {
		t.Fatal(err)
	}
	if len(table) != len(queries) {
		t.Fatalf("%d table rows, want %d", len(table), len(queries))
	}
	for name, cols := range map[string][]int{"pipeline-wall": {1, 2}, "pipeline-cpu": {4, 5}} {
		if err := benchenv.CheckBars(plot, name, table, []string{"riffle", "DuckDB"}, cols, "%.2f s", func(row []string) string { return row[0] }); err != nil {
			t.Error(err)
		}
	}
	curves, err := benchenv.Curves(plot, "pipeline-throughput", len(queries))
	if err != nil {
		t.Fatal(err)
	}
	input := filepath.Join(dir, fmt.Sprintf("events-%d-seed1.parquet", rows))
	scanned := oracle.DuckDB(t, fmt.Sprintf(`SELECT count(*) FILTER (WHERE event_type <> 'view' AND weight > 1), count(*) FROM read_parquet('%s')`, input))
	want := []float64{float64(scanned.Rows[0][0].(int64)), float64(scanned.Rows[0][1].(int64))}
	for i, c := range curves {
		if c.Name != queries[i].name {
			t.Errorf("curve %d is %q, want %q", i, c.Name, queries[i].name)
		}
		area, err := benchenv.Area(c)
		if err != nil {
			t.Fatal(err)
		}
		if area *= 1e6; math.Abs(area-want[i]) > 1e-6*want[i] {
			t.Errorf("%s: throughput integrates to %.3f rows, DuckDB counts %v", c.Name, area, want[i])
		}
		t.Logf("%s: %d samples over %.3f s", c.Name, len(c.X), c.X[len(c.X)-1])
	}
}
