package deps_test

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const mod = "github.com/riffle-dev/riffle/"

// Layers of riffle, by import path below the module (a path covers its
// subpackages). The dataflow core (arrowexec, expr) has its own test in
// arrowexec/deps_test.go.
var (
	operators  = []string{"windows", "ml", "arrowexec/ops", "arrowexec/agg"}
	connectors = []string{"sources", "sinks"}
	storage    = []string{"state", "checkpoint"}
	// Only these know every layer: they plan and run jobs.
	assemblers = []string{"job", "cmd", "bench"}
)

// pendingEdges are the imports that break a rule today, each with what
// removes it. The test fails on any other violation, and on an entry
// here that no longer exists (delete it then): the list only shrinks.
var pendingEdges = map[string]string{
	"ml/eval -> sources": "ml/eval.ReadFile reads the evaluation data set with the Parquet and CSV sources; it belongs to job or cmd",
}

// pending returns the pendingEdges key covering pkg -> dep ("A -> B"
// covers A and its subpackages importing B or its subpackages), or "".
func pending(rel, drel string) string {
	for k := range pendingEdges {
		a, b, _ := strings.Cut(k, " -> ")
		if (rel == a || strings.HasPrefix(rel, a+"/")) && (drel == b || strings.HasPrefix(drel, b+"/")) {
			return k
		}
	}
	return ""
}

func under(pkg string, layer []string) (string, bool) {
	rel, ok := strings.CutPrefix(pkg, mod)
	if !ok {
		return "", false
	}
	for _, l := range layer {
		if rel == l || strings.HasPrefix(rel, l+"/") {
			return rel, true
		}
	}
	return rel, false
}

// TestLayers checks, for every package of the module, the packages it is
// built from (go list -deps: tests excluded) against the rules:
// operators never import connectors, connectors never import operators,
// state and checkpoints import neither, and only job, cmd and bench import
// job, cmd or bench.
func TestLayers(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}}{{range .Deps}} {{.}}{{end}}`, mod+"...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	type rule struct {
		name      string
		from      []string
		forbidden []string
	}
	rules := []rule{
		{"operators never import connectors", operators, connectors},
		{"connectors never import operators", connectors, operators},
		{"state and checkpoints import neither operators nor connectors", storage, slices.Concat(operators, connectors)},
	}
	seen := map[string]bool{}
	checked := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		pkg, deps := f[0], f[1:]
		rel, _ := strings.CutPrefix(pkg, mod)
		_, assembler := under(pkg, assemblers)
		for _, dep := range deps {
			drel, ok := strings.CutPrefix(dep, mod)
			if !ok {
				continue
			}
			var broken []string
			for _, r := range rules {
				if _, in := under(pkg, r.from); !in {
					continue
				}
				if _, bad := under(dep, r.forbidden); bad {
					broken = append(broken, r.name)
				}
			}
			if _, isAssembler := under(dep, assemblers); isAssembler && !assembler {
				broken = append(broken, "only job, cmd and bench know every layer")
			}
			if len(broken) == 0 {
				continue
			}
			if k := pending(rel, drel); k != "" {
				seen[k] = true
				continue
			}
			t.Errorf("%s depends on %s: %s", rel, drel, strings.Join(broken, "; "))
		}
		checked++
	}
	if checked < 20 {
		t.Fatalf("go list returned %d packages; the module's packages are missing", checked)
	}
	for edge, why := range pendingEdges {
		if !seen[edge] {
			t.Errorf("pending edge %q no longer exists (%s): delete it from pendingEdges", edge, why)
		}
	}
}
