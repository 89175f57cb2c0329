package job

import (
	"errors"
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/arrowexec/expr"
	"github.com/riffle-dev/riffle/ml"
)

// RecommendStep is a recommend step (package ml, "The recommend
// operator"):
//
//	steps:
//	  - recommend:
//	      user: user_id               # id columns: integers or strings
//	      item: item_id
//	      weight: "CASE WHEN event_type = 'purchase' THEN 4 ELSE 1 END"   # optional, default 1
//	      factors: 64
//	      regularization: 0.05
//	      alpha: 1.0
//	      iterations: 15
//	      seed: 1
//	      k: 10                       # top-K per user, the user's own items excluded
//	      export: {path: out/recs, format: parquet, embeddings: true, retain: 5}   # optional; format csv or jsonl for text lists
//	      state: {backend: pebble, dir: /var/tmp/riffle}   # optional, default memory
//	      # optional: solver (cg | cholesky), cg_steps, frequency_scaled,
//	      # threads, on_error (fail | dead-letter), dead_letter_path
//
// The step's output (to the sink) is user_id, item_id, rank, score,
// model_version.
type RecommendStep struct {
	Options ml.RecommendOptions
}

type rawRecommend struct {
	User            string   `yaml:"user"`
	Item            string   `yaml:"item"`
	Weight          string   `yaml:"weight"`
	Factors         *int     `yaml:"factors"`
	Regularization  *float64 `yaml:"regularization"`
	Alpha           *float64 `yaml:"alpha"`
	Iterations      *int     `yaml:"iterations"`
	Seed            int64    `yaml:"seed"`
	K               *int     `yaml:"k"`
	Solver          string   `yaml:"solver"`
	CGSteps         *int     `yaml:"cg_steps"`
	FrequencyScaled bool     `yaml:"frequency_scaled"`
	Threads         int      `yaml:"threads"`
	OnError         string   `yaml:"on_error"`
	DeadLetterPath  string   `yaml:"dead_letter_path"`
	Export          *struct {
		Path       string `yaml:"path"`
		Format     string `yaml:"format"`
		Embeddings bool   `yaml:"embeddings"`
		Retain     *int   `yaml:"retain"`
	} `yaml:"export"`
	State *rawState `yaml:"state"`
}

func init() {
	knownKeys["rawRecommend"] = "user, item, weight, factors, regularization, alpha, iterations, seed, k, solver, cg_steps, frequency_scaled, threads, on_error, dead_letter_path, export, state"
}

func parseRecommendStep(file string, num int, val *yaml.Node) (*RecommendStep, error) {
	failAt := func(line int, format string, args ...any) (*RecommendStep, error) {
		return nil, &Error{File: file, Line: line, Msg: fmt.Sprintf("step %d: recommend: ", num) + fmt.Sprintf(format, args...)}
	}
	if val.Kind != yaml.MappingNode {
		return failAt(val.Line, "want a mapping (e.g. {user: user_id, item: item_id, factors: 64, k: 10})")
	}
	var raw rawRecommend
	if err := decodeStrict(file, val, &raw); err != nil {
		return nil, err
	}
	line := func(key string) int { return keyLine(val, key) }
	o := ml.RecommendOptions{User: raw.User, Item: raw.Item, OnError: strings.ToLower(raw.OnError), DeadLetterPath: raw.DeadLetterPath}
	if o.User == "" {
		return failAt(val.Line, "user: the user id column is required")
	}
	if o.Item == "" {
		return failAt(val.Line, "item: the item id column is required")
	}
	if raw.Weight != "" {
		e, err := expr.Parse(raw.Weight)
		if err != nil {
			return failAt(line("weight"), "weight: %v", err)
		}
		o.Weight = e
	}
	switch {
	case raw.Factors == nil:
		return failAt(val.Line, "factors: required (the embedding dimension, e.g. 64)")
	case *raw.Factors <= 0:
		return failAt(line("factors"), "factors must be > 0, got %d", *raw.Factors)
	case raw.K == nil:
		return failAt(val.Line, "k: required (recommendations per user, e.g. 10)")
	case *raw.K <= 0:
		return failAt(line("k"), "k must be > 0, got %d", *raw.K)
	}
	c := ml.Config{Factors: *raw.Factors, Seed: raw.Seed, Threads: raw.Threads, FrequencyScaled: raw.FrequencyScaled}
	o.K = *raw.K
	if raw.Regularization != nil {
		if *raw.Regularization < 0 {
			return failAt(line("regularization"), "regularization must be ≥ 0, got %v", *raw.Regularization)
		}
		c.Regularization = *raw.Regularization
	}
	if raw.Alpha != nil {
		if *raw.Alpha < 0 {
			return failAt(line("alpha"), "alpha must be ≥ 0, got %v", *raw.Alpha)
		}
		c.Alpha = *raw.Alpha
	}
	if raw.Iterations != nil {
		if *raw.Iterations <= 0 {
			return failAt(line("iterations"), "iterations must be > 0, got %d", *raw.Iterations)
		}
		c.Iterations = *raw.Iterations
	}
	if raw.CGSteps != nil {
		if *raw.CGSteps <= 0 {
			return failAt(line("cg_steps"), "cg_steps must be > 0, got %d", *raw.CGSteps)
		}
		c.CGSteps = *raw.CGSteps
	}
	switch strings.ToLower(raw.Solver) {
	case "", "cg":
	case "cholesky":
		c.Solver = ml.SolverCholesky
	default:
		return failAt(line("solver"), "unknown solver %q (want cg or cholesky)", raw.Solver)
	}
	if err := c.Validate(); err != nil {
		return failAt(val.Line, "%v", strings.TrimPrefix(err.Error(), "ml: "))
	}
	o.Config = c
	if e := raw.Export; e != nil {
		o.Export = &ml.ExportOptions{Path: e.Path, Format: strings.ToLower(e.Format), Embeddings: e.Embeddings}
		if e.Retain != nil {
			if *e.Retain <= 0 {
				return failAt(line("export"), "export: retain must be > 0, got %d", *e.Retain)
			}
			o.Export.Retain = *e.Retain
		}
		if err := o.Export.Validate(); err != nil {
			return failAt(line("export"), "export: %v", strings.TrimPrefix(err.Error(), "ml: export: "))
		}
	}
	if raw.State != nil {
		be, err := raw.State.backend()
		if err != nil {
			return failAt(line("state"), "%v", err)
		}
		o.Backend = be
	}
	if err := o.Validate(); err != nil {
		return failAt(val.Line, "%v", strings.TrimPrefix(err.Error(), "ml: recommend: "))
	}
	return &RecommendStep{Options: o}, nil
}

// planRecommend adds the recommend operator behind a hash exchange on the
// user column, at the job's parallelism.
func planRecommend(g *arrowexec.Graph, name string, in arrowexec.Input, par int, r *RecommendStep) (*arrowexec.Node, error) {
	if r == nil {
		return nil, errors.New("recommend step without a spec")
	}
	spec, err := ml.NewRecommend(r.Options)
	if err != nil {
		return nil, err
	}
	return g.Add(name, spec, par, in.From.HashBy(r.Options.User)), nil
}
