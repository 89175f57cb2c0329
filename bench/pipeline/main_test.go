package main

import (
	"fmt"
	"math"
	"path/filepath"
	"strconv"
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
	if err := run("pipeline", queries, rows, 2, 1, dir, "", plot); err != nil {
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

// TestETLQueriesMatchDuckDB: every query of the ETL set gives the same rows
// in riffle as its SQL in DuckDB, on generated events (floats within 1e-9
// relative: the engines sum in different orders), so that the benchmark
// compares equal work.
func TestETLQueriesMatchDuckDB(t *testing.T) {
	python := oracle.Python(t)
	const rows = 200_000
	dir := t.TempDir()
	env, stop, err := benchenv.Setup(rows, 2, dir, "")
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	for _, q := range etlQueries {
		t.Run(q.name, func(t *testing.T) {
			if _, err := timeRiffle(env.Input, dir, q, 2, nil); err != nil {
				t.Fatal(err)
			}
			if _, _, err := timeDuckDB(python, env.Input, dir, q, 2); err != nil {
				t.Fatal(err)
			}
			read := func(path string) [][]string {
				return oracle.DuckDBStrings(t, fmt.Sprintf("SET TimeZone='UTC'; SELECT * FROM read_parquet('%s') ORDER BY ALL", path))
			}
			got, want := read(filepath.Join(dir, "out-riffle", "*.parquet")), read(filepath.Join(dir, "out-duckdb.parquet"))
			if len(got) != len(want) || len(want) == 0 {
				t.Fatalf("riffle %d rows, DuckDB %d", len(got), len(want))
			}
			for r := range want {
				if len(got[r]) != len(want[r]) {
					t.Fatalf("row %d: riffle %v, DuckDB %v", r, got[r], want[r])
				}
				for c := range want[r] {
					if !sameValue(got[r][c], want[r][c]) {
						t.Fatalf("row %d column %d: riffle %v, DuckDB %v", r, c, got[r], want[r])
					}
				}
			}
		})
	}
}

// sameValue compares two rendered values, numbers within 1e-9 relative.
func sameValue(a, b string) bool {
	if a == b {
		return true
	}
	x, err1 := strconv.ParseFloat(a, 64)
	y, err2 := strconv.ParseFloat(b, 64)
	return err1 == nil && err2 == nil && math.Abs(x-y) <= 1e-9*math.Max(1, math.Abs(y))
}
