package notebooks

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/riffle-dev/riffle/internal/oracle"
)

func notebooks(t *testing.T) []string {
	t.Helper()
	paths, err := filepath.Glob("*.ipynb")
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) == 0 {
		t.Fatal("no notebooks")
	}
	return paths
}

// TestNotebooksStripped: committed notebooks carry no outputs or
// execution counts (checked here in Go, so it runs without Python).
func TestNotebooksStripped(t *testing.T) {
	for _, path := range notebooks(t) {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var nb struct {
			Cells []struct {
				CellType       string            `json:"cell_type"`
				Outputs        []json.RawMessage `json:"outputs"`
				ExecutionCount *int              `json:"execution_count"`
			} `json:"cells"`
		}
		if err := json.Unmarshal(b, &nb); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if len(nb.Cells) == 0 {
			t.Errorf("%s: no cells", path)
		}
		for i, c := range nb.Cells {
			if c.CellType == "code" && (len(c.Outputs) > 0 || c.ExecutionCount != nil) {
				t.Errorf("%s: code cell %d has outputs or an execution count: strip with notebooks/run.py --strip", path, i)
			}
		}
	}
}

// TestNotebooks executes every notebook top to bottom with a freshly
// built riffle; a cell that raises (an assert on riffle's output among
// them) fails the notebook. Executed copies are kept in the test's
// temporary directory, or in $RIFFLE_NOTEBOOK_OUT when set.
func TestNotebooks(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	python := oracle.Python(t)
	if out, err := exec.Command(python, "-c", "import nbclient, nbformat, ipykernel, matplotlib").CombinedOutput(); err != nil {
		if os.Getenv(oracle.RequireEnv) == "1" {
			t.Fatalf("%s cannot run notebooks (run scripts/python-env.sh): %v: %s", python, err, out)
		}
		t.Skipf("%s cannot run notebooks (run scripts/python-env.sh): %v: %s", python, err, out)
	}
	bin := filepath.Join(t.TempDir(), "riffle")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/riffle").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v: %s", err, out)
	}
	out := os.Getenv("RIFFLE_NOTEBOOK_OUT")
	if out == "" {
		out = t.TempDir()
	}
	for _, path := range notebooks(t) {
		t.Run(strings.TrimSuffix(path, ".ipynb"), func(t *testing.T) {
			cmd := exec.Command(python, "run.py", "--out", out, path)
			cmd.Env = append(os.Environ(), "RIFFLE_BIN="+bin)
			b, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("%s: %v\n%s", path, err, b)
			}
			t.Logf("%s", strings.TrimSpace(lastLine(string(b))))
		})
	}
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}
