package arrowexec_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencyDirection keeps the dataflow core free of connectors, state
// backends and ML: those plug into arrowexec, never the other way round.
func TestDependencyDirection(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	forbidden := []string{
		"github.com/riffle-dev/riffle/sources",
		"github.com/riffle-dev/riffle/sinks",
		"github.com/riffle-dev/riffle/state",
		"github.com/riffle-dev/riffle/checkpoint",
		"github.com/riffle-dev/riffle/windows",
		"github.com/riffle-dev/riffle/ml",
		"github.com/riffle-dev/riffle/job",
		"github.com/segmentio/kafka-go",
		"github.com/cockroachdb/pebble",
		"github.com/parquet-go/parquet-go",
		"gonum.org/v1/gonum",
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, f := range forbidden {
			if dep == f || strings.HasPrefix(dep, f+"/") {
				t.Errorf("arrowexec depends on %s", dep)
			}
		}
	}
}
