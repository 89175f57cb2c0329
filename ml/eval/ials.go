package eval

import (
	"context"

	"github.com/riffle-dev/riffle/ml"
)

// IALS trains package ml's implicit-feedback matrix factorization. Its
// models rank with ml.Model.TopK (score descending, ties by item index).
type IALS struct {
	Config ml.Config
	// Progress, if not nil, is called after each iteration with the loss.
	Progress func(iter int, loss float64)
}

// Name implements Trainer.
func (IALS) Name() string { return "ials" }

// Fit implements Trainer.
func (t IALS) Fit(ctx context.Context, train *Interactions) (Model, error) {
	m, err := ml.Train(ctx, t.Config, train, t.Progress)
	if err != nil {
		return nil, err
	}
	return m, nil
}

// IALSTrainer returns the Tune trainer factory for iALS: base with the
// setting's factors, regularization, alpha and iterations.
func IALSTrainer(base ml.Config) func(Params) Trainer {
	return func(p Params) Trainer {
		c := base
		c.Factors, c.Regularization, c.Alpha, c.Iterations = p.Factors, p.Regularization, p.Alpha, p.Iterations
		return IALS{Config: c}
	}
}

// ParamsOf returns the hyperparameters of c that Tune searches.
func ParamsOf(c ml.Config) Params {
	return Params{Factors: c.Factors, Regularization: c.Regularization, Alpha: c.Alpha, Iterations: c.Iterations}
}
