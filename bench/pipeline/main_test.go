package main

import (
	"fmt"
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
	table, err := benchenv.Table(plot, "pipeline", len(queries))
	if err != nil {
		t.Fatal(err)
	}
	for name, cols := range map[string][]int{"pipeline-wall": {1, 2}, "pipeline-cpu": {4, 5}} {
		if err := benchenv.CheckBars(plot, name, table, []string{"riffle", "DuckDB"}, cols, "%.2f s", func(row []string) string { return row[0] }); err != nil {
			t.Error(err)
		}
	}
	input := filepath.Join(dir, fmt.Sprintf("events-%d-seed1.parquet", rows))
	scanned := oracle.DuckDB(t, fmt.Sprintf(`SELECT count(*) FILTER (WHERE event_type <> 'view' AND weight > 1), count(*) FROM read_parquet('%s')`, input))
	totals := []float64{float64(scanned.Rows[0][0].(int64)), float64(scanned.Rows[0][1].(int64))}
	names := []string{queries[0].name, queries[1].name}
	if err := benchenv.CheckRates(plot, "pipeline-throughput", names, totals, 1e6); err != nil {
		t.Error(err)
	}
}
