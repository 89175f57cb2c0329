package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"
	"time"

	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/checkpoint"
	"github.com/riffle-dev/riffle/internal/metrics"
	"github.com/riffle-dev/riffle/job"
)

func init() {
	register(command{name: "backfill", short: "run a YAML job over bounded Parquet input to files", run: runBackfill})
}

func runBackfill(ctx context.Context, e *env, args []string) error {
	f := newFlags(e, "backfill", "[flags] JOB.yaml", `
Runs a job file over its bounded input (Parquet files, or a bounded Kafka
source) and writes the sink's files. Output files appear only when the whole
job succeeded. See examples/ for job files; use 'riffle run' for unbounded
input.

With --savepoint DIR the backfill is the first half of one job over files,
then a stream: at the end of the input no final watermark is sent, so the
windows still open stay open, and the job stops with a savepoint in DIR
holding its state and watermark (the largest event time read minus the
watermark's bound). The sink's files up to then are published: the rows of
steps without event time and the windows the files complete (an aggregate
step emits nothing, its groups stay in the savepoint). The savepoint's
path is printed. A stream job with the same steps and sink and another
source continues from it with 'riffle run STREAM.yaml --checkpoint-dir D
--from SAVEPOINT': operator state and watermark are restored, the new
source starts from its configured start (e.g. a Kafka source with start:
timestamp and start_time at the files' end).`)
	f.addProgress()
	f.addMetrics()
	par := f.Int("parallelism", 0, "subtasks per node (0: the job file's, else GOMAXPROCS)")
	out := f.String("output", "", "override the sink's output directory")
	brokers := f.String("brokers", "", "override the job's Kafka brokers (host:port,...)")
	cpuprofile := f.String("cpuprofile", "", "write a CPU profile to this file")
	savepoint := f.String("savepoint", "", "hold the input at its end and stop with a savepoint in this directory, for a stream job to continue from")
	adminAddr := f.String("admin-addr", "", "serve the web view and JSON API of the running backfill on this address, e.g. 127.0.0.1:9465 (docs/API.md)")
	adminToken := f.String("admin-token", "", "require this token (Authorization: Bearer TOKEN) for the admin endpoint's POST actions")
	if err := f.parse(e, args); err != nil {
		return err
	}
	if f.NArg() != 1 {
		f.Usage()
		return usageError{fmt.Errorf("want exactly one job file, have %d arguments", f.NArg())}
	}
	if *par < 0 {
		return usageError{fmt.Errorf("--parallelism %d: must be >= 0", *par)}
	}
	if *cpuprofile != "" {
		stop, err := startCPUProfile(*cpuprofile)
		if err != nil {
			return usageError{err}
		}
		defer stop()
	}
	if *savepoint != "" {
		data, err := os.ReadFile(f.Arg(0))
		if err != nil {
			return usageError{fmt.Errorf("job: %w", err)}
		}
		spec, err := job.Parse(f.Arg(0), data)
		if err != nil {
			return usageError{err}
		}
		if err := checkOverrides(spec, *out, *brokers, "--brokers"); err != nil {
			return usageError{err}
		}
		if err := makeOutputDirs(spec); err != nil {
			return err
		}
		if _, err := os.Stat(*savepoint); err == nil {
			return usageError{fmt.Errorf("--savepoint %s: already exists", *savepoint)}
		}
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		// No periodic checkpoints: the coordinator's directory only
		// serves the savepoint's bookkeeping.
		parent := filepath.Dir(filepath.Clean(*savepoint))
		if err := os.MkdirAll(parent, 0o755); err != nil {
			return fmt.Errorf("--savepoint: %w", err)
		}
		tmp, err := os.MkdirTemp(parent, ".riffle-backfill-")
		if err != nil {
			return fmt.Errorf("--savepoint: %w", err)
		}
		defer os.RemoveAll(tmp)
		ck := checkpointFlags{dir: tmp, interval: -1, retain: checkpoint.DefaultRetain, adminAddr: *adminAddr, adminToken: *adminToken}
		return runCheckpointed(ctx, cancel, e, f, spec, data, job.Options{Parallelism: *par, OutputDir: *out, Brokers: *brokers}, &ck, *savepoint, newJobStatus(spec.Name))
	}
	spec, err := job.ReadFile(f.Arg(0))
	if err != nil {
		return usageError{err}
	}
	if err := checkOverrides(spec, *out, *brokers, "--brokers"); err != nil {
		return usageError{err}
	}
	if err := makeOutputDirs(spec); err != nil {
		return err
	}
	plan, err := spec.PlanContext(ctx, job.Options{Parallelism: *par, OutputDir: *out, Brokers: *brokers})
	if err != nil {
		return usageError{err}
	}
	if !plan.Bounded {
		return usageError{fmt.Errorf("%s: the source is unbounded; run it with 'riffle run', or make the Kafka source bounded", f.Arg(0))}
	}
	attach := metricsHook(ctx, e, f, spec.Name)
	st := newJobStatus(spec.Name)
	if *adminAddr != "" {
		admin, err := startAdmin(*adminAddr, *adminToken, e.log)
		if err != nil {
			return usageError{fmt.Errorf("--admin-addr %s: %w", *adminAddr, err)}
		}
		defer admin.Close(false)
		admin.follow(st, false)
		// A backfill publishes its files only once its input is complete:
		// a drained stop would publish part of it as if it were all.
		admin.mu.Lock()
		admin.refuseStop = "a backfill publishes its output only when its whole input is read: cancel it with ^C (nothing is published)"
		admin.mu.Unlock()
	}
	_, err = runPlan(ctx, e, f.showProgress(e), plan, func(j *arrowexec.Job) {
		st.attach(plan, j, nil)
		if attach != nil {
			attach(j)
		}
	})
	st.jobEnded(err)
	return err
}

// metricsHook starts the Prometheus endpoint when --metrics-addr is set and
// returns the callback that attaches the compiled job to it (nil otherwise).
func metricsHook(ctx context.Context, e *env, f *flags, name string) func(*arrowexec.Job) {
	return attachMetrics(metricsCollector(ctx, e, f), name)
}

// metricsCollector starts the Prometheus endpoint when --metrics-addr is
// set and returns the collector to set jobs on (nil otherwise).
func metricsCollector(ctx context.Context, e *env, f *flags) *metrics.Collector {
	if f.metricsAddr == "" {
		return nil
	}
	c := &metrics.Collector{}
	addr, err := metrics.Serve(ctx, f.metricsAddr, c, e.log)
	if err != nil {
		e.log.Warn("metrics endpoint not started", "err", err)
		return nil
	}
	e.log.Info("serving Prometheus metrics", "url", "http://"+addr+"/metrics")
	return c
}

// runMetrics returns the collector of a run: served on --metrics-addr
// when set and on the admin endpoint's /metrics when there is one; nil
// when neither.
func runMetrics(ctx context.Context, e *env, f *flags, admin *adminServer) *metrics.Collector {
	mc := metricsCollector(ctx, e, f)
	if admin != nil {
		if mc == nil {
			mc = &metrics.Collector{}
		}
		admin.serveMetrics(mc)
	}
	return mc
}

// runResult summarizes a finished job.
type runResult struct {
	// RowsScanned counts what the source consumed (-1 when unknown);
	// RowsIn what it emitted, after filters pushed into the scan.
	RowsScanned, RowsIn, RowsOut int64
	DeadLetters                  int64
	Files                        []string
	Elapsed                      time.Duration
}

// runPlan compiles and runs a planned job. A bounded job's file output is
// committed when the job succeeds and removed when it fails. started, if
// set, receives the job once it is compiled (for graceful stops).
func runPlan(ctx context.Context, e *env, progress bool, plan *job.Plan, started func(*arrowexec.Job)) (*runResult, error) {
	spec := plan.Spec
	attrs := []any{"job", spec.Name, "parallelism", plan.Graph.Node(plan.SourceNode).Parallelism(), "bounded", plan.Bounded}
	if plan.Parquet != nil {
		nfiles, rgs, pruned, rows, bytes := plan.Parquet.Stats()
		attrs = append(attrs, "files", nfiles, "row_groups", rgs, "row_groups_pruned", pruned, "rows", rows, "bytes", bytes, "decoder", plan.Parquet.Decoder())
	}
	e.log.Info("job planned", attrs...)
	// A continuous job whose source fails (e.g. a broker gone for longer
	// than the retry timeout) stops as a graceful stop would: its sinks
	// publish what it computed, and the error is returned after that.
	j, err := plan.Graph.Compile(arrowexec.RunOptions{Log: e.log, DrainOnSourceError: !plan.Bounded})
	if err != nil {
		return nil, usageError{err}
	}
	if started != nil {
		started(j)
	}
	bar := planProgress(e, progress, plan, j)
	began := time.Now()
	err = j.Run(ctx)
	bar.Stop()
	srcErr := j.SourceError()
	if err != nil && err != srcErr {
		if aerr := plan.Abort(); aerr != nil {
			e.log.Warn("removing staged output", "err", aerr)
		}
		return nil, err
	}
	files, err := plan.Commit()
	if err != nil {
		return nil, err
	}
	if plan.Kafka != nil {
		// Everything the sources read reached the sinks: record the
		// positions with the consumer group (if any), so a restart with
		// start: committed goes on from here.
		var blobs [][]byte
		for _, s := range j.FinalSnapshots(plan.SourceNode) {
			blobs = append(blobs, s.Operator)
		}
		if err := plan.Kafka.CommitSnapshots(ctx, blobs); err != nil && srcErr == nil {
			return nil, fmt.Errorf("committing final Kafka offsets: %w", err)
		} else if err != nil {
			// The broker that failed the source is likely gone: the
			// source's error is the one to report.
			e.log.Warn("final Kafka offsets not committed", "err", err)
		}
	}
	snap := readStatus(plan, j)
	res := &runResult{
		RowsScanned: snap.RowsScanned, RowsIn: snap.RowsIn, RowsOut: snap.RowsOut, DeadLetters: snap.DeadLetters,
		Files:   files,
		Elapsed: time.Since(began),
	}
	if plan.Sink != nil && len(files) == 0 {
		for _, p := range plan.Sink.Published() {
			res.Files = append(res.Files, p.Path)
		}
	}
	snap.PartsPublished = int64(len(res.Files))
	if srcErr != nil {
		attrs = append([]any{"job", spec.Name}, summaryAttrs(snap)...)
		attrs = append(attrs, "err", srcErr)
		e.log.Error("job stopped after its source failed; what it computed is published", attrs...)
		return res, srcErr
	}
	attrs = append([]any{"job", spec.Name}, summaryAttrs(snap)...)
	attrs = append(attrs, "elapsed", res.Elapsed.Round(time.Millisecond), "rows_per_sec", int64(float64(max(res.RowsScanned, res.RowsIn))/res.Elapsed.Seconds()))
	e.log.Info("job done", attrs...)
	return res, nil
}

// sum adds f over the metrics of a node's subtasks.
func sum(ms []*arrowexec.TaskMetrics, f func(*arrowexec.TaskMetrics) int64) int64 {
	var n int64
	for _, m := range ms {
		n += f(m)
	}
	return n
}

// planProgress starts the progress bar of a bounded job (rows and bytes
// read by its source against the Parquet input's totals), or returns nil.
func planProgress(e *env, show bool, plan *job.Plan, j *arrowexec.Job) *progressBar {
	if !show || !plan.Bounded {
		return nil
	}
	var rows, bytes int64
	if plan.Parquet != nil {
		_, _, _, rows, bytes = plan.Parquet.Stats()
	}
	src := j.Metrics(plan.SourceNode)
	return startProgress(e.stderr, plan.Spec.Name, rows, bytes, func() (int64, int64) {
		return sum(src, func(m *arrowexec.TaskMetrics) int64 { return m.RowsIn.Load() }),
			sum(src, func(m *arrowexec.TaskMetrics) int64 { return m.BytesIn.Load() })
	})
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
