package main

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/riffle-dev/riffle/internal/gen"
)

func init() {
	register(command{name: "gen", short: "generate seeded interaction data to Parquet", run: runGen})
}

func runGen(ctx context.Context, e *env, args []string) error {
	f := newFlags(e, "gen", "[flags] OUT.parquet", `
Writes synthetic user-item interactions (user_id, item_id, event_type,
weight, event_time) to one Parquet file: Zipf item popularity and user
activity, a daily cycle, time-ordered with bounded disorder. The same seed
gives the same file on any machine. --latent-factors N draws each event's
item from a planted rank-N preference model instead (user and item topic
vectors, popularity and noise mixed in; internal/gen/doc.go), so a
recommender has structure to learn: see riffle eval.`)
	f.addProgress()
	rows := f.Int64("rows", gen.DefaultRows, "number of rows, at least 1 (tested up to 100M)")
	users := f.Int64("users", gen.DefaultUsers, "distinct users")
	items := f.Int64("items", gen.DefaultItems, "distinct items")
	seed := f.Int64("seed", 1, "random seed")
	start := f.String("start", gen.DefaultStart.Format(time.RFC3339), "first event time (RFC 3339)")
	span := f.Duration("span", gen.DefaultSpan, "time covered by the events")
	disorder := f.Duration("disorder", gen.DefaultDisorder, "maximum out-of-orderness of event_time")
	zipf := f.Float64("zipf", gen.DefaultZipfS, "Zipf exponent of item popularity")
	latent := f.Int("latent-factors", 0, "draw items from a planted low-rank preference model of this rank (0: popularity only)")
	latentNoise := f.Float64("latent-noise", gen.DefaultLatentNoise, "with --latent-factors: share of events with a uniformly random item")
	latentPop := f.Float64("latent-popularity", gen.DefaultLatentPopularity, "with --latent-factors: share of events drawn from popularity alone")
	if err := f.parse(e, args); err != nil {
		return err
	}
	if f.NArg() != 1 {
		f.Usage()
		return usageError{fmt.Errorf("want exactly one output path, have %d arguments", f.NArg())}
	}
	t0, err := time.Parse(time.RFC3339, *start)
	if err != nil {
		return usageError{fmt.Errorf("--start: %v", err)}
	}
	if *rows < 1 {
		return usageError{fmt.Errorf("--rows %d: must be positive", *rows)}
	}
	out := f.Arg(0)
	opts := gen.Options{Rows: *rows, Users: *users, Items: *items, Seed: *seed, Start: t0, Span: *span, Disorder: *disorder, ZipfS: *zipf}
	if *disorder == 0 {
		opts.Disorder = gen.NoDisorder
	}
	opts.LatentFactors, opts.LatentNoise, opts.LatentPopularity = *latent, *latentNoise, *latentPop
	if *latentNoise == 0 {
		opts.LatentNoise = -1 // none
	}
	if *latentPop == 0 {
		opts.LatentPopularity = -1
	}
	var done atomic.Int64
	var bar *progressBar
	if f.showProgress(e) {
		bar = startProgress(e.stderr, "gen", *rows, 0, func() (int64, int64) { return done.Load(), 0 })
	}
	began := time.Now()
	err = gen.WriteFile(ctx, out, opts, func(n int64) { done.Store(n) })
	bar.Stop()
	if err != nil {
		return err
	}
	abs, _ := filepath.Abs(out)
	e.log.Info("generated", "rows", *rows, "path", abs, "seed", *seed, "elapsed", time.Since(began).Round(time.Millisecond))
	return nil
}
