package main

import (
	"fmt"
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
	table, err := benchenv.Table(plot, "recommender", len(factors))
	if err != nil {
		t.Fatal(err)
	}
	label := func(row []string) string { return "generated K=" + row[2] }
	if err := benchenv.CheckBars(plot, "recommender-fit", table, []string{"riffle", "implicit"}, []int{4, 5}, "%.3f", label); err != nil {
		t.Error(err)
	}
	if err := benchenv.CheckBars(plot, "recommender-topk", table, []string{"riffle", "implicit"}, []int{9, 10}, "%.2f", label); err != nil {
		t.Error(err)
	}
	ui, err := ml.SkewedInteractions(users, items, nnz, 1)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	var totals []float64
	for _, f := range factors {
		names, totals = append(names, fmt.Sprintf("generated K=%d", f)), append(totals, float64(iters*ui.NNZ()))
	}
	if err := benchenv.CheckRates(plot, "recommender-throughput", names, totals, 1e6); err != nil {
		t.Error(err)
	}
}
