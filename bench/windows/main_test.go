package main

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/riffle-dev/riffle/bench/internal/benchenv"
	"github.com/riffle-dev/riffle/internal/oracle"
)

// TestPlot: with --plot the program writes its Markdown table and charts
// beside it: each bar is the table's figure for that query and engine,
// and riffle's scan throughput curve integrates to the input's rows
// (DuckDB's count of the file).
func TestPlot(t *testing.T) {
	oracle.Python(t)
	const rows = 200_000
	dir, plot := t.TempDir(), t.TempDir()
	if err := run(rows, 2, 1, dir, "", plot); err != nil {
		t.Fatal(err)
	}
	table, err := benchenv.Table(plot, "windows", len(queries))
	if err != nil {
		t.Fatal(err)
	}
	name := func(row []string) string { return row[0] }
	engines := []string{"riffle", "DuckDB"}
	if err := benchenv.CheckBars(plot, "windows-wall", table, engines, []int{1, 2}, "%.2f s", name); err != nil {
		t.Error(err)
	}
	if err := benchenv.CheckBars(plot, "windows-per-core", table, engines, []int{5, 6}, "%.2fM", name); err != nil {
		t.Error(err)
	}
	input := filepath.Join(dir, fmt.Sprintf("events-%d-seed1.parquet", rows))
	n := oracle.DuckDB(t, fmt.Sprintf(`SELECT count(*) FROM read_parquet('%s')`, input)).Rows[0][0].(int64)
	var names []string
	var totals []float64
	for _, q := range queries {
		names, totals = append(names, q.name), append(totals, float64(n))
	}
	if err := benchenv.CheckRates(plot, "windows-throughput", names, totals, 1e6); err != nil {
		t.Error(err)
	}
}
