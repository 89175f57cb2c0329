package nexbench

import (
	"context"
	"fmt"
	"testing"

	"github.com/riffle-dev/riffle/internal/oracle"
)

// TestQueriesAgainstDuckDB runs every query of examples/nexmark from the
// generator and from Parquet, at parallelism 1 and 3, and compares its
// output with DuckDB's answer to the query's SQL over the same events.
func TestQueriesAgainstDuckDB(t *testing.T) {
	py := oracle.Python(t)
	dir := t.TempDir()
	qs := Queries()
	if len(qs) == 0 {
		t.Fatal("no queries embedded")
	}
	for _, q := range qs {
		if !Checked(q) {
			t.Errorf("%s has no oracle SQL", q)
			continue
		}
		for _, c := range []struct {
			src string
			par int
		}{{SourceGen, 1}, {SourceGen, 3}, {SourceParquet, 2}} {
			t.Run(fmt.Sprintf("%s/%s/p%d", q, c.src, c.par), func(t *testing.T) {
				cfg := Config{Query: q, Events: 60_000, Seed: 7, Parallelism: c.par, Source: c.src, Dir: dir}
				rows, err := Check(context.Background(), cfg, py)
				if err != nil {
					t.Fatal(err)
				}
				if rows == 0 {
					t.Fatalf("%s: no rows to compare", q)
				}
				res, err := Run(context.Background(), cfg)
				if err != nil {
					t.Fatal(err)
				}
				if res.Rows != rows {
					t.Fatalf("%s: the counting run saw %d rows, the checked one %d", q, res.Rows, rows)
				}
			})
		}
	}
}

// TestQ5Ties runs q5 at 1M events (seed 1), where one window has two
// auctions tied for the most bids: both must come out (Flink's q5 gives 55
// rows there, as DuckDB does).
func TestQ5Ties(t *testing.T) {
	if testing.Short() {
		t.Skip("1M events")
	}
	py := oracle.Python(t)
	rows, err := Check(context.Background(), Config{Query: "q5", Events: 1_000_000, Seed: 1, Dir: t.TempDir()}, py)
	if err != nil {
		t.Fatal(err)
	}
	if rows != 55 {
		t.Fatalf("q5 at 1M events: %d rows agree with DuckDB, want the 55 that Flink makes", rows)
	}
}
