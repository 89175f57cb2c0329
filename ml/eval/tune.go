package eval

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
)

// Params are the hyperparameters Tune searches.
type Params struct {
	Factors        int     `json:"factors"`
	Regularization float64 `json:"regularization"`
	Alpha          float64 `json:"alpha"`
	Iterations     int     `json:"iterations"`
}

func (p Params) String() string {
	return fmt.Sprintf("factors=%d regularization=%g alpha=%g iterations=%d", p.Factors, p.Regularization, p.Alpha, p.Iterations)
}

// Grid is the search space of Tune: every combination of the lists, in
// the order factors, regularization, alpha, iterations (the last varying
// fastest).
type Grid struct {
	Factors        []int
	Regularization []float64
	Alpha          []float64
	Iterations     []int
	// Samples > 0 makes a random search: that many distinct settings drawn
	// from the grid with Seed (all of them when the grid is smaller), in
	// grid order; 0 tries the whole grid.
	Samples int
	Seed    uint64
}

// Settings lists the settings Tune tries, in order.
func (g Grid) Settings() ([]Params, error) {
	if len(g.Factors) == 0 || len(g.Regularization) == 0 || len(g.Alpha) == 0 || len(g.Iterations) == 0 {
		return nil, errors.New("eval: tune grid: every list needs at least one value")
	}
	var all []Params
	for _, f := range g.Factors {
		for _, r := range g.Regularization {
			for _, a := range g.Alpha {
				for _, it := range g.Iterations {
					all = append(all, Params{Factors: f, Regularization: r, Alpha: a, Iterations: it})
				}
			}
		}
	}
	if g.Samples <= 0 || g.Samples >= len(all) {
		return all, nil
	}
	// The first Samples positions of a seeded permutation, in grid order.
	rng := rand.New(rand.NewPCG(g.Seed, 0x7475_6e65))
	pick := rng.Perm(len(all))[:g.Samples]
	keep := make([]bool, len(all))
	for _, p := range pick {
		keep[p] = true
	}
	var out []Params
	for i, p := range all {
		if keep[i] {
			out = append(out, p)
		}
	}
	return out, nil
}

// Trial is one setting's figures on the validation split.
type Trial struct {
	Params     Params  `json:"params"`
	Validation *Result `json:"validation"`
	// Score is the validation NDCG at the first (smallest) K.
	Score float64 `json:"score"`
}

// TuneResult is what Tune found.
type TuneResult struct {
	Trials []Trial `json:"trials"`
	Best   Params  `json:"best"`
	// Test is the best setting trained on the whole train split and
	// evaluated on the test split.
	Test *Result `json:"test"`
	// Validation describes the validation split.
	Validation SplitStats `json:"validation_split"`
}

// Tune selects hyperparameters by validation NDCG at the smallest K of ks
// (the first best in grid order wins a tie): for every setting of g it
// fits newTrainer(setting) on the validation split's train part (s's train
// rows split again with s's protocol) and evaluates it on the validation
// split's test part; then it fits the best setting on s's train split and
// evaluates it on s's test split. progress, if not nil, is called after each
// trial.
func Tune(ctx context.Context, d *Dataset, s *Split, testPercent int, g Grid, newTrainer func(Params) Trainer, ks []int, threads int, progress func(Trial)) (*TuneResult, error) {
	settings, err := g.Settings()
	if err != nil {
		return nil, err
	}
	val, err := s.Validation(d, testPercent)
	if err != nil {
		return nil, err
	}
	if val.Stats.EvalUsers == 0 {
		return nil, fmt.Errorf("eval: tune: the validation split of %s has no user to evaluate", s.Protocol)
	}
	out := &TuneResult{Validation: val.Stats}
	bestScore := -1.0
	for _, p := range settings {
		tr := newTrainer(p)
		m, err := tr.Fit(ctx, val.Train)
		if err != nil {
			return nil, fmt.Errorf("eval: tune %v: %w", p, err)
		}
		res, err := Evaluate(ctx, val, m, tr.Name(), ks, threads)
		if err != nil {
			return nil, fmt.Errorf("eval: tune %v: %w", p, err)
		}
		t := Trial{Params: p, Validation: res, Score: res.AtK[0].NDCG}
		out.Trials = append(out.Trials, t)
		if t.Score > bestScore {
			bestScore, out.Best = t.Score, p
		}
		if progress != nil {
			progress(t)
		}
	}
	tr := newTrainer(out.Best)
	m, err := tr.Fit(ctx, s.Train)
	if err != nil {
		return nil, fmt.Errorf("eval: tune: best %v: %w", out.Best, err)
	}
	if out.Test, err = Evaluate(ctx, s, m, tr.Name(), ks, threads); err != nil {
		return nil, err
	}
	return out, nil
}
