package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/riffle-dev/riffle/internal/chart"
	"github.com/riffle-dev/riffle/ml"
	"github.com/riffle-dev/riffle/ml/eval"
)

// implicitPython returns the project's Python when it has implicit, or
// skips the test.
func implicitPython(t *testing.T) (python, dir string) {
	t.Helper()
	python, dir, _, err := setup("", t.TempDir())
	if err != nil {
		t.Skip(err)
	}
	if out, err := exec.Command(python, "-c", "import implicit, threadpoolctl").CombinedOutput(); err != nil {
		t.Skipf("implicit not importable in %s: %v %s", python, err, out)
	}
	return python, dir
}

// smallDataset draws rows from 4 user groups, each preferring its own
// quarter of the items, with times in row order.
func smallDataset(t *testing.T, users, items, rows int) *eval.Dataset {
	t.Helper()
	r := rand.New(rand.NewPCG(1, 2))
	us, is, ts := make([]int64, rows), make([]int64, rows), make([]int64, rows)
	ws := make([]float32, rows)
	for j := range rows {
		u := r.IntN(users)
		i := r.IntN(items)
		if r.Float64() < 0.8 {
			i = (u%4)*(items/4) + r.IntN(items/4)
		}
		us[j], is[j], ws[j], ts[j] = int64(u), int64(i), float32(1+r.IntN(5)), int64(j)
	}
	d, err := eval.NewDataset(us, is, ws, ts)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestImplicitFactorsReadBack: implicit's factors, read back into an
// ml.Model, rank the first users' items as implicit's own recommend does;
// the same factors with the users' rows shifted by one do not (the check
// can fail).
func TestImplicitFactorsReadBack(t *testing.T) {
	python, dir := implicitPython(t)
	d := smallDataset(t, 300, 400, 9000)
	s, err := eval.NewSplit(d, eval.UserTime, eval.DefaultTestPercent)
	if err != nil {
		t.Fatal(err)
	}
	cfg := ml.Config{Factors: 8, Regularization: 0.05, Alpha: 1, Iterations: 5, CGSteps: 3, Solver: ml.SolverCG, Threads: 2}
	ctx := context.Background()
	models, agree, err := implicitModels(ctx, python, dir+"/t", s.Train, cfg, []string{"1", "2"}, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(models) != 2 || agree < minAgreement {
		t.Fatalf("%d models, agreement %v", len(models), agree)
	}
	m := *models[0]
	m.UserFactors = append(m.UserFactors[cfg.Factors:], m.UserFactors[:cfg.Factors]...)
	shifted, err := agreement(ctx, &m, s.Train, dir+"/t-1-check.i32", min(checkUsers, s.Train.NumUsers), 10, 2)
	if err != nil {
		t.Fatal(err)
	}
	if shifted >= minAgreement {
		t.Fatalf("factors of the wrong users agree at %v", shifted)
	}
}

// TestQualityTable: every protocol has a row for each model, each with a
// figure per K, and the NDCG bars drawn beside the table are its means.
func TestQualityTable(t *testing.T) {
	python, dir := implicitPython(t)
	d := smallDataset(t, 200, 120, 6000)
	var out strings.Builder
	cfg := ml.Config{Factors: 8, Regularization: 0.05, Alpha: 1, Iterations: 5, CGSteps: 3, Solver: ml.SolverCG, Threads: 2}
	bars, err := runQuality(context.Background(), &out, python, dir, d, cfg, 2, []int{10, 20})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range eval.Protocols {
		for _, model := range []string{"riffle", "implicit", "popularity"} {
			found := false
			for _, line := range strings.Split(out.String(), "\n") {
				if strings.HasPrefix(line, "| "+string(p)+" (") && strings.Contains(line, "| "+model+" |") && strings.Count(line, "|") == 7 {
					found = true
				}
			}
			if !found {
				t.Errorf("no %s row for %s:\n%s", model, p, out.String())
			}
		}
	}
	if len(bars) != 2 {
		t.Fatalf("%d charts, want one per K", len(bars))
	}
	plot := t.TempDir()
	for i, b := range bars {
		name := fmt.Sprintf("ndcg-%d", 10*(i+1))
		if _, err := b.Write(plot, name); err != nil {
			t.Fatal(err)
		}
		if err := chart.Check(filepath.Join(plot, name+".png"), 3); err != nil {
			t.Error(err)
		}
		for g, p := range b.Groups {
			for _, s := range b.Series {
				// The table's NDCG@K cell of this protocol and model: columns
				// protocol, model, then NDCG and Recall per K.
				cell := ""
				for _, line := range strings.Split(out.String(), "\n") {
					cells := strings.Split(line, "|")
					if strings.HasPrefix(line, "| "+p+" (") && len(cells) == 8 && strings.TrimSpace(cells[2]) == s.Name {
						cell = strings.TrimSpace(cells[3+2*i])
					}
				}
				if mean, _, _ := strings.Cut(cell, " ±"); mean != fmt.Sprintf("%.4f", s.Values[g]) {
					t.Errorf("NDCG@%d %s %s: bar %v, table %q", 10*(i+1), p, s.Name, s.Values[g], cell)
				}
			}
		}
	}
}
