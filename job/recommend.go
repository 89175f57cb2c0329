package job

import (
	"errors"
	"fmt"
	"strings"
	"time"

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
//	      update:                     # optional: learn incrementally (the streaming operator)
//	        every: 10000              # interactions per update (default 10000)
//	        interval: 5s              # and/or: at most this much processing time pending
//	        retrain_growth: 2.0       # full retrain when the distinct interactions doubled (0: never; default 2)
//	        item_defer: 5             # re-solve a popular item once per ~1/2^5 of new events (0: at every update; default 5)
//	        max_history: 500          # keep each user's newest 500 interactions (model and state; default 0: all)
//	        half_life: 1000000        # an interaction's confidence weight halves every 1M interactions after it (default 0: no decay)
//	        serve: true               # keep a live copy for serving (default true)
//	        export_every: {checkpoints: 6}   # or {interval: 1m}; default every checkpoint
//	        export_changed_only: true # versions hold the changed users only ...
//	        full_every: 10            # ... but every 10th holds them all (default 10)
//	        prequential: {k: 10, window: 10000}   # live HR@K/NDCG@K of each update's events before it applies them,
//	                                  # in /status (optional: every: N scores one event in N, min_weight: W)
//
// The step's output (to the sink) is user_id, item_id, rank, score,
// model_version. A step with update:, or any recommend step over an
// unbounded source (with update:'s defaults), runs the streaming operator
// as one subtask: it emits its lists at the end of bounded input only;
// on a stream its outputs are exports and the live model.
type RecommendStep struct {
	Options ml.RecommendOptions
}

// rawRecommend is a recommend step's block (StepRecommend).
type rawRecommend struct {
	// User is the user id column (integer or string); required.
	User string `yaml:"user"`
	// Item is the item id column (integer or string); required.
	Item string `yaml:"item"`
	// Weight is a numeric expression giving each interaction's weight
	// (default 1); repeated (user, item) pairs add up. A NULL, negative,
	// zero, NaN or infinite weight is a bad row (on_error).
	Weight string `yaml:"weight"`
	// Factors is the embedding dimension K; required.
	Factors *int `yaml:"factors"`
	// Regularization is λ ≥ 0 (default 0).
	Regularization *float64 `yaml:"regularization"`
	// Alpha scales confidence, c = 1 + alpha·weight (default 0).
	Alpha *float64 `yaml:"alpha"`
	// Iterations is the number of full training sweeps (default 15).
	Iterations *int `yaml:"iterations"`
	// Seed seeds the initial factors (default 0): same seed, same model.
	Seed int64 `yaml:"seed"`
	// K is the number of recommendations per user; required.
	K *int `yaml:"k"`
	// Solver is cg (default: conjugate gradient, warm-started) or cholesky
	// (exact).
	Solver string `yaml:"solver"`
	// CGSteps is the conjugate-gradient steps per row and sweep (default
	// 3).
	CGSteps *int `yaml:"cg_steps"`
	// FrequencyScaled scales λ per row with its confidence mass (ml
	// package doc); default false.
	FrequencyScaled bool `yaml:"frequency_scaled"`
	// Threads is the training's worker goroutines (default GOMAXPROCS).
	Threads int `yaml:"threads"`
	// OnError is what a bad row (NULL id, bad weight) does: fail (default)
	// or dead-letter (to dead_letter_path, with the reason).
	OnError string `yaml:"on_error"`
	// DeadLetterPath is the directory of rejected rows (on_error:
	// dead-letter).
	DeadLetterPath string `yaml:"dead_letter_path"`
	// Export writes the model as versioned files (vNNNNNN/ directories
	// and a LATEST pointer) for riffle recommend --from and other readers.
	Export *struct {
		// Path is the export's root directory.
		Path string `yaml:"path"`
		// Format of the recommendation files: parquet (default), csv or
		// jsonl (factor files are Parquet).
		Format string `yaml:"format"`
		// Embeddings also writes user_factors/ and item_factors/.
		Embeddings bool `yaml:"embeddings"`
		// Retain is the number of complete versions kept (default 5).
		Retain *int `yaml:"retain"`
	} `yaml:"export"`
	// State picks the keyed-state backend of the histories and factors.
	State *rawState `yaml:"state"`
	// Update makes the step learn incrementally (always on an unbounded
	// source, with these defaults): one subtask holds the model.
	Update *rawUpdate `yaml:"update"`
}

type rawUpdate struct {
	// Every updates the model once this many interactions are pending
	// (default 10000), and at every checkpoint barrier.
	Every *int `yaml:"every"`
	// Interval also updates once the oldest pending interaction waited
	// this long (default 0: off).
	Interval time.Duration `yaml:"interval"`
	// RetrainGrowth retrains in full (warm) when the distinct (user, item)
	// pairs grew this many times since the last full training (default 2;
	// 0: never).
	RetrainGrowth *float64 `yaml:"retrain_growth"`
	// Serve keeps a live copy of the model answering GET /recommend and
	// /similar on the admin endpoint (default true).
	Serve *bool `yaml:"serve"`
	// GramRefresh recomputes the Gram matrices exactly after this many row
	// updates (default 0: as many as the side has rows).
	GramRefresh int `yaml:"gram_refresh"`
	// ItemDefer s re-solves an item with a long history (n ≥ 2^(s+1)
	// events) only about once per n/2^s new events, bounding what an
	// event on a popular item costs (0..30, default 5: once per 3–6% of
	// its history; 0: every touched item at every update).
	ItemDefer *int `yaml:"item_defer"`
	// MaxHistory keeps each user's newest max_history interactions only
	// (default 0: all).
	MaxHistory int `yaml:"max_history"`
	// HalfLife halves an interaction's confidence every half_life
	// interactions that come after it (default 0: no decay).
	HalfLife int64 `yaml:"half_life"`
	// ExportEvery spaces the exported versions (default: one per
	// checkpoint).
	ExportEvery *rawExportEvery `yaml:"export_every"`
	// ExportChangedOnly writes in a version only the users whose factors
	// changed since the previous one (every full_every-th version is
	// whole).
	ExportChangedOnly bool `yaml:"export_changed_only"`
	// FullEvery is how often a changed-only export writes every user
	// (default 10).
	FullEvery *int `yaml:"full_every"`
	// Prequential meters the live model: each update's interactions are
	// scored (HR@K, NDCG@K) before the model learns them; in the admin
	// API and /status.
	Prequential *rawPrequential `yaml:"prequential"`
}

type rawPrequential struct {
	// K is the cut-off of HR@K and NDCG@K (default 10).
	K int `yaml:"k"`
	// Window also reports the figures over the last window scored events
	// (default 0: the whole stream only).
	Window int `yaml:"window"`
	// Every scores one event in every (default 1: all) to bound the cost.
	Every int `yaml:"every"`
	// MinWeight scores only events of at least this weight (default 0).
	MinWeight float32 `yaml:"min_weight"`
}

type rawExportEvery struct {
	// Checkpoints exports at every Nth checkpoint.
	Checkpoints int `yaml:"checkpoints"`
	// Interval exports at the first checkpoint once this much time passed
	// since the last version (checkpoints or interval, not both).
	Interval time.Duration `yaml:"interval"`
}

// update turns the update: mapping into ml.UpdateOptions (defaults:
// ml.DefaultUpdate).
func (r *rawUpdate) update(failAt func(line int, format string, args ...any) error, line func(keys ...string) int) (*ml.UpdateOptions, error) {
	u := ml.DefaultUpdate()
	if r.Every != nil {
		if *r.Every <= 0 {
			return nil, failAt(line("update", "every"), "update: every must be > 0, got %d", *r.Every)
		}
		u.Every = *r.Every
	}
	if r.Interval < 0 {
		return nil, failAt(line("update", "interval"), "update: interval must be > 0, got %v", r.Interval)
	}
	u.Interval = r.Interval
	if r.RetrainGrowth != nil {
		if g := *r.RetrainGrowth; g != 0 && !(g > 1) {
			return nil, failAt(line("update", "retrain_growth"), "update: retrain_growth must be > 1 (or 0: never), got %v", g)
		}
		u.RetrainGrowth = *r.RetrainGrowth
	}
	if r.Serve != nil {
		u.Serve = *r.Serve
	}
	if r.GramRefresh < 0 {
		return nil, failAt(line("update", "gram_refresh"), "update: gram_refresh must be ≥ 0, got %d", r.GramRefresh)
	}
	u.GramRefresh = r.GramRefresh
	if r.ItemDefer != nil {
		if d := *r.ItemDefer; d < 0 || d > 30 {
			return nil, failAt(line("update", "item_defer"), "update: item_defer must be in 0..30, got %d", d)
		}
		u.ItemDefer = *r.ItemDefer
	}
	if r.MaxHistory < 0 {
		return nil, failAt(line("update", "max_history"), "update: max_history must be ≥ 0, got %d", r.MaxHistory)
	}
	u.MaxHistory = r.MaxHistory
	if r.HalfLife < 0 {
		return nil, failAt(line("update", "half_life"), "update: half_life must be ≥ 0 interactions, got %d", r.HalfLife)
	}
	u.HalfLife = r.HalfLife
	if e := r.ExportEvery; e != nil {
		switch {
		case e.Checkpoints < 0:
			return nil, failAt(line("update", "export_every", "checkpoints"), "update: export_every: checkpoints must be > 0, got %d", e.Checkpoints)
		case e.Interval < 0:
			return nil, failAt(line("update", "export_every", "interval"), "update: export_every: interval must be > 0, got %v", e.Interval)
		case e.Checkpoints > 0 && e.Interval > 0:
			return nil, failAt(line("update", "export_every"), "update: export_every takes checkpoints or interval, not both")
		case e.Checkpoints == 0 && e.Interval == 0:
			return nil, failAt(line("update", "export_every"), "update: export_every needs checkpoints: N or interval: D")
		}
		u.ExportCheckpoints, u.ExportInterval = e.Checkpoints, e.Interval
	}
	u.ExportChangedOnly = r.ExportChangedOnly
	if r.FullEvery != nil {
		if *r.FullEvery <= 0 {
			return nil, failAt(line("update", "full_every"), "update: full_every must be > 0, got %d", *r.FullEvery)
		}
		if !r.ExportChangedOnly {
			return nil, failAt(line("update", "full_every"), "update: full_every applies with export_changed_only: true only")
		}
		u.FullEvery = *r.FullEvery
	}
	if p := r.Prequential; p != nil {
		po := ml.PrequentialOptions{K: p.K, Window: p.Window, Every: p.Every, MinWeight: p.MinWeight}
		if p.K < 0 || p.Window < 0 || p.Every < 0 || !(p.MinWeight >= 0) {
			return nil, failAt(line("update", "prequential"), "update: prequential: k, window and every must be ≥ 0 and min_weight a number ≥ 0, got %+v", *p)
		}
		u.Prequential = &po
	}
	return &u, nil
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
	if raw.Update != nil {
		u, err := raw.Update.update(func(line int, format string, args ...any) error {
			_, err := failAt(line, format, args...)
			return err
		}, func(keys ...string) int { return keyLine(val, keys...) })
		if err != nil {
			return nil, err
		}
		if o.Export == nil && (raw.Update.ExportEvery != nil || raw.Update.ExportChangedOnly) {
			return failAt(line("update"), "update: export_every and export_changed_only need an export: block")
		}
		o.Update = u
	}
	if err := o.Validate(); err != nil {
		return failAt(val.Line, "%v", strings.TrimPrefix(err.Error(), "ml: recommend: "))
	}
	return &RecommendStep{Options: o}, nil
}

// planRecommend adds the recommend operator behind a hash exchange on the
// user column: the batch operator at the job's parallelism; the streaming
// one (a step with update:, or any over an unbounded source, with
// update:'s defaults) as one subtask, since its model is one object.
func planRecommend(g *arrowexec.Graph, name string, in arrowexec.Input, par int, r *RecommendStep, bounded, checkpointed bool) (*arrowexec.Node, *ml.RecommendSpec, error) {
	if r == nil {
		return nil, nil, errors.New("recommend step without a spec")
	}
	o := r.Options
	if o.Update == nil && !bounded {
		u := ml.DefaultUpdate()
		o.Update = &u
	}
	if o.Update != nil {
		par = 1
		o.Checkpointed = checkpointed
	}
	spec, err := ml.NewRecommend(o)
	if err != nil {
		return nil, nil, err
	}
	return g.Add(name, spec, par, reroute(in, arrowexec.Hash, o.User)), spec, nil
}
