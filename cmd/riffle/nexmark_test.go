package main

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/riffle-dev/riffle/internal/oracle"
)

// TestNexmarkGen: nexmark gen writes one file per table whose row counts
// are the tables' shares of the event numbers (1, 3 and 46 of every 50),
// and rejects bad arguments.
func TestNexmarkGen(t *testing.T) {
	dir := t.TempDir()
	if code, _, errOut := runCLI(t, "nexmark", "gen", "--events", "10007", dir); code != exitOK {
		t.Fatalf("nexmark gen: exit %d: %s", code, errOut)
	}
	// 10007 = 200 epochs of 50 + 7 (1 person, 3 auctions, 3 bids).
	for tab, want := range map[string]string{"person": "201", "auction": "603", "bid": "9203"} {
		q := fmt.Sprintf("SELECT count(*) FROM read_parquet('%s')", filepath.Join(dir, tab+".parquet"))
		if n := oracle.DuckDB(t, q).Strings()[0][0]; n != want {
			t.Errorf("%s.parquet has %s rows, want %s", tab, n, want)
		}
	}
	for _, args := range [][]string{
		{"nexmark"}, {"nexmark", "gen"}, {"nexmark", "gen", "--events", "0", dir},
		{"nexmark", "gen", "--tables", "bids,asks", dir}, {"nexmark", "gen", "--brokers", "127.0.0.1:1", dir},
	} {
		if code, _, errOut := runCLI(t, args...); code != exitUsage {
			t.Errorf("%q: exit code %d, want %d (stderr %q)", args, code, exitUsage, errOut)
		}
	}
}
