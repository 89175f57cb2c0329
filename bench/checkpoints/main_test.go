package main

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/riffle-dev/riffle/bench/internal/benchenv"
	"github.com/riffle-dev/riffle/internal/oracle"
)

// TestPlot: with --plot the program writes its Markdown table and charts
// beside it: each bar is the table's wall time for that configuration,
// and each configuration's source throughput curve integrates to the
// input's rows (DuckDB's count of the file).
func TestPlot(t *testing.T) {
	oracle.Python(t)
	const rows = 200_000
	dir, plot := t.TempDir(), t.TempDir()
	if err := run(rows, 1, 2, dir, plot); err != nil {
		t.Fatal(err)
	}
	table, err := benchenv.Table(plot, "checkpoints", 3)
	if err != nil {
		t.Fatal(err)
	}
	if err := benchenv.CheckBars(plot, "checkpoints-wall", table, []string{"riffle"}, []int{1}, "%.2f s", func(row []string) string { return row[0] }); err != nil {
		t.Error(err)
	}
	input := filepath.Join(dir, fmt.Sprintf("events-%d-seed1.parquet", rows))
	n := float64(oracle.DuckDB(t, fmt.Sprintf(`SELECT count(*) FROM read_parquet('%s')`, input)).Rows[0][0].(int64))
	names := []string{"checkpoints none", "checkpoints every 10 s", "checkpoints every 1 s"}
	if err := benchenv.CheckRates(plot, "checkpoints-throughput", names, []float64{n, n, n}, 1e6); err != nil {
		t.Error(err)
	}
}
