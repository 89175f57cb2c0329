package main

import (
	"context"
	"fmt"
	"os"
	"runtime/pprof"
	"time"

	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/job"
)

func init() {
	register(command{name: "backfill", short: "run a YAML job over bounded Parquet input to files", run: runBackfill})
}

func runBackfill(ctx context.Context, e *env, args []string) error {
	f := newFlags(e, "backfill", "[flags] JOB.yaml", `
Runs a job file over its bounded Parquet input and writes the sink's files.
Output files appear atomically, and only when the job succeeds. See
examples/ for job files.`)
	par := f.Int("parallelism", 0, "subtasks per node (0: the job file's, else GOMAXPROCS)")
	out := f.String("output", "", "override the sink's output directory")
	cpuprofile := f.String("cpuprofile", "", "write a CPU profile to this file")
	if err := f.parse(e, args); err != nil {
		return err
	}
	if *cpuprofile != "" {
		stop, err := startCPUProfile(*cpuprofile)
		if err != nil {
			return usageError{err}
		}
		defer stop()
	}
	if f.NArg() != 1 {
		f.Usage()
		return usageError{fmt.Errorf("want exactly one job file, have %d arguments", f.NArg())}
	}
	if *par < 0 {
		return usageError{fmt.Errorf("--parallelism %d: must be >= 0", *par)}
	}
	spec, err := job.ReadFile(f.Arg(0))
	if err != nil {
		return usageError{err}
	}
	_, err = runBackfillSpec(ctx, e, f.showProgress(e), spec, job.Options{Parallelism: *par, OutputDir: *out})
	return err
}

// backfillResult summarizes a finished backfill.
type backfillResult struct {
	RowsIn, RowsOut int64
	Files           []string
	Elapsed         time.Duration
}

func runBackfillSpec(ctx context.Context, e *env, progress bool, spec *job.Spec, o job.Options) (*backfillResult, error) {
	plan, err := spec.Plan(o)
	if err != nil {
		return nil, usageError{err}
	}
	nfiles, rgs, pruned, rows, bytes := plan.Parquet.Stats()
	e.log.Info("backfill planned", "job", spec.Name, "files", nfiles, "row_groups", rgs, "row_groups_pruned", pruned,
		"rows", rows, "bytes", bytes, "parallelism", plan.Graph.Node(plan.SourceNode).Parallelism(), "decoder", plan.Parquet.Decoder())
	j, err := plan.Graph.Compile(arrowexec.RunOptions{Log: e.log})
	if err != nil {
		return nil, usageError{err}
	}
	srcMetrics := j.Metrics(plan.SourceNode)
	sinkMetrics := j.Metrics(plan.SinkNode)
	sum := func(ms []*arrowexec.TaskMetrics, f func(*arrowexec.TaskMetrics) int64) int64 {
		var n int64
		for _, m := range ms {
			n += f(m)
		}
		return n
	}
	var bar *progressBar
	if progress {
		bar = startProgress(e.stderr, "backfill", rows, bytes, func() (int64, int64) {
			return sum(srcMetrics, func(m *arrowexec.TaskMetrics) int64 { return m.RowsIn.Load() }),
				sum(srcMetrics, func(m *arrowexec.TaskMetrics) int64 { return m.BytesIn.Load() })
		})
	}
	began := time.Now()
	err = j.Run(ctx)
	bar.Stop()
	if err != nil {
		if aerr := plan.Abort(); aerr != nil {
			e.log.Warn("backfill: removing staged output", "err", aerr)
		}
		return nil, err
	}
	files, err := plan.Commit()
	if err != nil {
		return nil, err
	}
	res := &backfillResult{
		RowsIn:  sum(srcMetrics, func(m *arrowexec.TaskMetrics) int64 { return m.RowsIn.Load() }),
		RowsOut: sum(sinkMetrics, func(m *arrowexec.TaskMetrics) int64 { return m.RowsIn.Load() }),
		Elapsed: time.Since(began),
	}
	res.Files = files
	e.log.Info("backfill done", "job", spec.Name, "rows_in", res.RowsIn, "rows_out", res.RowsOut, "files", len(res.Files),
		"elapsed", res.Elapsed.Round(time.Millisecond), "rows_per_sec", int64(float64(res.RowsIn)/res.Elapsed.Seconds()))
	return res, nil
}

func startCPUProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}
