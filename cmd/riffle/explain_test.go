package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/riffle-dev/riffle/internal/oracle"
)

// TestExplainPushdown writes a Parquet file of 10 row groups with pyarrow
// (x sorted, so row groups have disjoint ranges) and explains a job that
// filters on x and reads two of four columns: the row groups explain says
// are pruned must be the ones whose statistics (read by pyarrow) exclude
// the predicate, the columns read the ones the steps name, every node of the
// pipeline listed with its exchange, and nothing written to the output.
func TestExplainPushdown(t *testing.T) {
	py := oracle.Python(t)
	dir := t.TempDir()
	in := filepath.Join(dir, "in.parquet")
	script := fmt.Sprintf(`
import pyarrow as pa, pyarrow.parquet as pq
n = 10000
t = pa.table({"x": list(range(n)), "k": [i %% 7 for i in range(n)], "s": [str(i) for i in range(n)], "w": [i * 0.5 for i in range(n)]})
pq.write_table(t, %q, row_group_size=1000)
md = pq.ParquetFile(%q).metadata
print(sum(1 for g in range(md.num_row_groups) if md.row_group(g).column(0).statistics.max <= 6500), md.num_row_groups)
`, in, in)
	out, err := exec.Command(py, "-c", script).Output()
	if err != nil {
		t.Fatalf("pyarrow: %v", err)
	}
	var wantPruned, groups int
	if _, err := fmt.Sscan(string(out), &wantPruned, &groups); err != nil {
		t.Fatal(err)
	}
	outDir := filepath.Join(dir, "out")
	jobFile := filepath.Join(dir, "job.yaml")
	yaml := fmt.Sprintf(`name: explain-check
source:
  parquet: {path: %s}
steps:
  - filter: "x > 6500"
  - aggregate:
      group_by: [k]
      aggs: ["count(*) AS n"]
sink:
  file: {path: %s, format: csv}
`, in, outDir)
	if err := os.WriteFile(jobFile, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	code, text, errOut := runCLI(t, "explain", jobFile, "--parallelism", "2")
	if code != exitOK {
		t.Fatalf("explain: exit %d: %s", code, errOut)
	}
	m := regexp.MustCompile(`(\d+) of (\d+) pruned`).FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("no pruning line in:\n%s", text)
	}
	if got, _ := strconv.Atoi(m[1]); got != wantPruned || m[2] != strconv.Itoa(groups) {
		t.Errorf("explain says %s of %s row groups pruned, pyarrow's statistics %d of %d:\n%s", m[1], m[2], wantPruned, groups, text)
	}
	if !strings.Contains(text, "reads 2 of 4 columns: x, k") {
		t.Errorf("columns read: want x, k of 4:\n%s", text)
	}
	// Forward edges chain; the hash exchange before the final aggregate
	// is a boundary.
	for _, chain := range []string{"source -> filter-1 -> aggregate-2-partial\n", "aggregate-2 -> sink\n"} {
		if !strings.Contains(text, "chain (one goroutine per subtask): "+chain) {
			t.Errorf("chain %q missing:\n%s", chain, text)
		}
	}
	for _, node := range []string{"source ", "filter-1 ", "aggregate-2-partial ", "aggregate-2 ", "sink "} {
		if !strings.Contains(text, "\n  "+node) {
			t.Errorf("node %q missing:\n%s", node, text)
		}
	}
	if !strings.Contains(text, "<- aggregate-2-partial (hash by k)") {
		t.Errorf("the final aggregate's input is not a hash exchange on k:\n%s", text)
	}
	if _, err := os.Stat(outDir); !os.IsNotExist(err) {
		t.Errorf("explain touched the output directory: %v", err)
	}
}
