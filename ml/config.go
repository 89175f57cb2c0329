package ml

import (
	"fmt"
	"math"
	"runtime"
)

// Solver picks how each row's normal equations are solved.
type Solver int

const (
	// SolverCG runs Config.CGSteps conjugate-gradient steps warm-started
	// from the row's current factor (Takács et al. 2011), never forming
	// the K×K matrix: O(CGSteps·(K² + n·K)) per row with n interactions.
	SolverCG Solver = iota
	// SolverCholesky forms (YᵀC_uY + λ_u I) in float64 and solves it
	// exactly: O(n·K² + K³) per row.
	SolverCholesky
)

func (s Solver) String() string {
	switch s {
	case SolverCG:
		return "cg"
	case SolverCholesky:
		return "cholesky"
	}
	return fmt.Sprintf("Solver(%d)", int(s))
}

// Config holds iALS hyperparameters. The zero value of each optional field
// takes the default written next to it (see EnsureDefaults).
type Config struct {
	Factors int // K, the embedding dimension (required, > 0)

	// Regularization is λ ≥ 0. Plain: every row gets λ‖x‖². With
	// FrequencyScaled, row u gets λ_u‖x_u‖² where
	//
	//	λ_u = λ · ((N + α·Σ_{i∈I_u} w_ui) / N)^ν
	//
	// N being the number of columns (items when solving users, users when
	// solving items) and ν = FrequencyExponent. N + αΣw = Σ_i c_ui is the
	// row's total confidence mass in the loss, so this is Rendle et al.
	// 2022's λ(|I_u| + α₀|I|)^ν carried over to Hu et al.'s weighting,
	// normalised by an empty row's mass so that λ keeps the meaning it has
	// in the plain variant (an empty row gets exactly λ).
	Regularization    float64
	FrequencyScaled   bool
	FrequencyExponent float64 // ν, default 1

	// Alpha scales confidence: c = 1 + Alpha·w for a stored weight w, 1 for
	// every pair not stored (whose preference is 0). Must be ≥ 0. 0 is a
	// valid value (every stored pair weighs as much as an unstored one, the
	// weights ignored), so the zero Config keeps it; a job's recommend step
	// and riffle eval leave it out as DefaultAlpha.
	Alpha float64

	Iterations int     // full sweeps (users then items), default 15
	Solver     Solver  // default SolverCG
	CGSteps    int     // CG steps per row and half-epoch, default 3
	Seed       int64   // initialisation seed
	Threads    int     // worker goroutines, default GOMAXPROCS
	InitScale  float64 // initial factors uniform in [0, InitScale), default 0.01
}

// DefaultAlpha is α where a job's recommend step or riffle eval does not
// give one: confidence 1 + w, so a stored weight counts.
const DefaultAlpha = 1.0

// DefaultRegularization is λ where a job's recommend step or riffle eval
// does not give one. The zero Config keeps 0 (no regularization), a valid
// value.
const DefaultRegularization = 0.05

// EnsureDefaults returns c with zero optional fields set to their defaults.
func (c Config) EnsureDefaults() Config {
	if c.FrequencyExponent == 0 {
		c.FrequencyExponent = 1
	}
	if c.Iterations == 0 {
		c.Iterations = 15
	}
	if c.CGSteps == 0 {
		c.CGSteps = 3
	}
	if c.Threads <= 0 {
		c.Threads = runtime.GOMAXPROCS(0)
	}
	if c.InitScale == 0 {
		c.InitScale = 0.01
	}
	return c
}

// Validate reports the first bad hyperparameter (after defaults).
func (c Config) Validate() error {
	c = c.EnsureDefaults()
	bad := func(v float64) bool { return math.IsNaN(v) || math.IsInf(v, 0) }
	switch {
	case c.Factors <= 0:
		return fmt.Errorf("ml: factors must be > 0, got %d", c.Factors)
	case c.Factors > 4096:
		return fmt.Errorf("ml: factors must be ≤ 4096, got %d", c.Factors)
	case c.Regularization < 0 || bad(c.Regularization):
		return fmt.Errorf("ml: regularization must be a finite value ≥ 0, got %v", c.Regularization)
	case c.FrequencyExponent < 0 || bad(c.FrequencyExponent):
		return fmt.Errorf("ml: frequency exponent must be a finite value ≥ 0, got %v", c.FrequencyExponent)
	case c.Alpha < 0 || bad(c.Alpha):
		return fmt.Errorf("ml: alpha must be a finite value ≥ 0, got %v", c.Alpha)
	case c.Iterations < 0:
		return fmt.Errorf("ml: iterations must be ≥ 0, got %d", c.Iterations)
	case c.Solver != SolverCG && c.Solver != SolverCholesky:
		return fmt.Errorf("ml: unknown solver %v", c.Solver)
	case c.CGSteps < 0:
		return fmt.Errorf("ml: cg steps must be ≥ 0, got %d", c.CGSteps)
	case c.InitScale < 0 || bad(c.InitScale):
		return fmt.Errorf("ml: init scale must be a finite value ≥ 0, got %v", c.InitScale)
	}
	return nil
}

// rowLambda is λ_u for a row with weight sum wsum among n columns.
func (c Config) rowLambda(wsum float64, n int) float64 {
	if !c.FrequencyScaled || n == 0 {
		return c.Regularization
	}
	return c.Regularization * math.Pow((float64(n)+c.Alpha*wsum)/float64(n), c.FrequencyExponent)
}
