package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/riffle-dev/riffle/bench/nexmark/nexbench"
	"github.com/riffle-dev/riffle/internal/oracle"
)

// TestBenchNexmarkCheck runs riffle bench nexmark --check for every query
// at a small size: each query's output against DuckDB on the same events.
func TestBenchNexmarkCheck(t *testing.T) {
	oracle.Python(t)
	for _, q := range nexbench.Queries() {
		t.Run(q, func(t *testing.T) {
			code, out, errOut := runCLI(t, "bench", "nexmark", "--query", q, "--events", "40000", "--seed", "3", "--check")
			if code != exitOK {
				t.Fatalf("exit %d\n%s", code, errOut)
			}
			if want := fmt.Sprintf("%s: ", q); !strings.HasPrefix(out, want) || !strings.Contains(out, "agree with DuckDB") {
				t.Fatalf("output %q", out)
			}
		})
	}
	code, out, _ := runCLI(t, "bench", "nexmark", "--query", "q2", "--events", "40000", "--json")
	if code != exitOK || !strings.Contains(out, `"rows":`) {
		t.Fatalf("--json: exit %d, %q", code, out)
	}
	if code, _, errOut := runCLI(t, "bench", "nexmark", "--query", "q9", "--events", "1000"); code == exitOK || !strings.Contains(errOut, "no query") {
		t.Fatalf("unknown query: exit %d, %q", code, errOut)
	}
}
