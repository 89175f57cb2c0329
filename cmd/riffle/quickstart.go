package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/riffle-dev/riffle/examples"
	"github.com/riffle-dev/riffle/internal/gen"
	"github.com/riffle-dev/riffle/job"
)

func init() {
	register(command{name: "quickstart", short: "generate data and run the example backfill (no setup needed)", run: runQuickstart})
}

func runQuickstart(ctx context.Context, e *env, args []string) error {
	f := newFlags(e, "quickstart", "[flags]", `
Generates a seeded interaction data set, runs the example job
examples/item-stats.yaml over it as a parallel backfill, and writes the
results as Parquet under --dir. Everything is embedded: no services, no
downloads.`)
	dir := f.String("dir", "riffle-quickstart", "working directory for data and results")
	rows := f.Int64("rows", 2_000_000, "rows of interaction data to generate")
	par := f.Int("parallelism", 0, "subtasks per node (0: GOMAXPROCS)")
	if err := f.parse(e, args); err != nil {
		return err
	}
	if f.NArg() != 0 {
		return usageError{fmt.Errorf("unexpected arguments %q", f.Args())}
	}
	progress := f.showProgress(e)
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		return err
	}
	events := filepath.Join(*dir, "events.parquet")
	began := time.Now()
	e.log.Info("quickstart: generating interactions", "rows", *rows, "path", events)
	var bar *progressBar
	var done atomic.Int64
	if progress {
		bar = startProgress(e.stderr, "gen", *rows, 0, func() (int64, int64) { return done.Load(), 0 })
	}
	err := gen.WriteFile(ctx, events, gen.Options{Rows: *rows, Seed: 1}, func(n int64) { done.Store(n) })
	bar.Stop()
	if err != nil {
		return err
	}
	data, err := examples.Jobs.ReadFile("item-stats.yaml")
	if err != nil {
		return err
	}
	spec, err := job.Parse("examples/item-stats.yaml", data)
	if err != nil {
		return err
	}
	spec.Source.Parquet.Path = events
	out := filepath.Join(*dir, "item-stats")
	if err := os.RemoveAll(out); err != nil {
		return err
	}
	plan, err := spec.PlanContext(ctx, job.Options{Parallelism: *par, OutputDir: out})
	if err != nil {
		return err
	}
	res, err := runPlan(ctx, e, progress, plan, nil)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "\nriffle quickstart: %d events -> %d item rows in %d files under %s (%s total)\n",
		res.RowsIn, res.RowsOut, len(res.Files), out, time.Since(began).Round(time.Millisecond))
	fmt.Fprintf(e.stdout, "Read them with DuckDB, pyarrow or pandas, e.g.:\n  duckdb -c \"SELECT * FROM '%s/*.parquet' ORDER BY events DESC LIMIT 10\"\n", out)
	return nil
}
