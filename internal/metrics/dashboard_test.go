package metrics_test

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/riffle-dev/riffle/internal/metrics"
)

// seriesRef finds the series names in a PromQL expression: riffle's, the
// Go runtime's and the process's (the families /metrics serves).
var seriesRef = regexp.MustCompile(`\b(?:riffle|go|process)_[a-zA-Z0-9_]+`)

// exprs returns every PromQL expression of a Grafana dashboard: panel
// targets (rows' nested panels too) and template variable queries.
func exprs(t *testing.T, v any, out *[]string) {
	t.Helper()
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if s, ok := x.(string); ok && (k == "expr" || k == "definition") {
				*out = append(*out, s)
				continue
			}
			exprs(t, x, out)
		}
	case []any:
		for _, x := range v {
			exprs(t, x, out)
		}
	}
}

// TestDashboard: every expression of deploy/grafana/riffle.json queries
// at least one series, every series it names is one the registry
// describes (a histogram's _bucket, _sum and _count of a described
// histogram), and every riffle series the registry describes is on the
// dashboard.
func TestDashboard(t *testing.T) {
	data, err := os.ReadFile("../../deploy/grafana/riffle.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash map[string]any
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatalf("riffle.json: %v", err)
	}
	described := map[string]bool{}
	for _, n := range metrics.DescribedNames(&metrics.Collector{}) {
		described[n] = true
	}
	var all []string
	exprs(t, dash, &all)
	if len(all) < 10 {
		t.Fatalf("only %d expressions found", len(all))
	}
	used := map[string]bool{}
	for _, e := range all {
		refs := seriesRef.FindAllString(e, -1)
		if len(refs) == 0 {
			t.Errorf("expression queries no series: %s", e)
		}
		for _, r := range refs {
			name := r
			if !described[name] {
				for _, suf := range []string{"_bucket", "_sum", "_count"} {
					if base, ok := strings.CutSuffix(r, suf); ok && described[base] {
						name = base
					}
				}
			}
			if !described[name] {
				t.Errorf("%s: no such series is exported (in %s)", r, e)
			}
			used[name] = true
		}
	}
	for n := range described {
		if strings.HasPrefix(n, "riffle_") && !used[n] {
			t.Errorf("%s is exported but on no panel", n)
		}
	}
}
