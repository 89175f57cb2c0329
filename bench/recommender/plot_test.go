package main

import (
	"fmt"
	"math"
	"path/filepath"
	"testing"

	"github.com/riffle-dev/riffle/bench/internal/benchenv"
	"github.com/riffle-dev/riffle/ml"
)

// TestPlot: the timing run with --plot writes its Markdown table and
// charts beside it: each bar is the table's figure for that setting and
// engine, and riffle's per-iteration throughput curve integrates to the
// interactions it trained on, once per iteration.
func TestPlot(t *testing.T) {
	_, dir := implicitPython(t)
	plot := t.TempDir()
	const users, items, nnz, iters = 3000, 400, 60_000, 3
	cfg := ml.Config{Regularization: 0.05, Alpha: 1, CGSteps: 3, Solver: ml.SolverCG, Seed: 1, Threads: 2}
	factors := []int{8, 16}
	if err := run(cfg, factors, iters, iters, users, items, nnz, 10, 1, filepath.Join(dir, "absent.csv"), dir, "", plot); err != nil {
		t.Fatal(err)
	}
	table, err := benchenv.MarkdownRows(filepath.Join(plot, "recommender.md"))
	if err != nil {
		t.Fatal(err)
	}
	if len(table) != len(factors) {
		t.Fatalf("%d table rows, want %d", len(table), len(factors))
	}
	label := func(row []string) string { return "generated K=" + row[2] }
	if err := benchenv.CheckBars(plot, "recommender-fit", table, []string{"riffle", "implicit"}, []int{4, 5}, "%.3f", label); err != nil {
		t.Error(err)
	}
	if err := benchenv.CheckBars(plot, "recommender-topk", table, []string{"riffle", "implicit"}, []int{9, 10}, "%.2f", label); err != nil {
		t.Error(err)
	}
	curves, err := benchenv.Curves(plot, "recommender-throughput", len(factors))
	if err != nil {
		t.Fatal(err)
	}
	ui, err := ml.SkewedInteractions(users, items, nnz, 1)
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range curves {
		if want := fmt.Sprintf("generated K=%d", factors[i]); c.Name != want || len(c.X) != iters {
			t.Fatalf("curve %q with %d points, want %q with %d", c.Name, len(c.X), want, iters)
		}
		area, err := benchenv.Area(c)
		if err != nil {
			t.Fatal(err)
		}
		if want := float64(iters * ui.NNZ()); math.Abs(area*1e6-want) > 1e-6*want {
			t.Errorf("%s: throughput integrates to %.1f interactions, want %d iterations × %d", c.Name, area, iters, ui.NNZ())
		}
	}
}
