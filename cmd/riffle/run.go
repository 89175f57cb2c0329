package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/checkpoint"
	"github.com/riffle-dev/riffle/internal/embedkafka"
	"github.com/riffle-dev/riffle/job"
)

func init() {
	register(command{name: "run", short: "run a YAML job continuously (Kafka, hybrid) until stopped", run: runRun, ownSignals: true})
}

func runRun(_ context.Context, e *env, args []string) error {
	f := newFlags(e, "run", "[flags] JOB.yaml", `
Runs a job file: a continuous job over Kafka (or a hybrid Parquet-then-Kafka
source) runs until stopped; a bounded one until its input ends.

SIGINT or SIGTERM stops it gracefully: sources stop after their current
batch and the final watermark flushes open windows, operators finish, sinks
flush and publish. A second signal cancels at once.

With --checkpoint-dir the job is exactly-once: every --checkpoint-interval
a checkpoint of its state and source positions is written to the directory,
and file sinks publish their parts only once the checkpoint that covers
them is complete. A restart resumes from the newest complete checkpoint (or
from --from, a checkpoint or savepoint directory), also after a crash or
kill -9. SIGINT or SIGTERM then stops with a final checkpoint (open windows
stay open, in the checkpoint); a second signal exits at once, and a restart
resumes from the last complete checkpoint.

An unbounded job logs a progress line every --progress-interval: rows in
and out (with their rates), the watermark, windows fired, parts published
and dead letters. --admin-addr serves a web view of the job at / (graph,
watermarks and why a window has not fired, checkpoints, recommender), its
JSON API under /api/ (docs/API.md; 'riffle status --addr' prints it), GET
/status (the progress line as JSON, with uptime, the last error,
per-source-subtask rows and watermarks, and the checkpoints and savepoints
taken) and GET /metrics (Prometheus, as --metrics-addr serves it) for every
job, and with --checkpoint-dir POST /savepoint?dir=D[&stop=true] (see
'riffle savepoint'). --admin-token guards the POST actions (savepoint,
stop).

A job whose recommend step learns on a stream serves its live model: GET
/recommend?user=ID&k=N[&fallback=popular] and GET /similar?item=ID&k=N
answer JSON on the admin address, or without --admin-addr on 127.0.0.1 at a
free port it logs (see 'riffle recommend --addr').`)
	f.addProgress()
	f.addMetrics()
	par := f.Int("parallelism", 0, "subtasks per node (0: the job file's, else GOMAXPROCS)")
	out := f.String("output", "", "override the file sink's output directory")
	brokers := f.String("brokers", "", "override the job's Kafka brokers (host:port,...)")
	embedded := f.String("embedded-kafka", "", "start an in-process Kafka-compatible broker with these topics (topic:partitions,...) and use it; its address is logged for producers")
	progressEvery := f.Duration("progress-interval", 10*time.Second, "log a progress line this often for an unbounded job (0: never; --progress never also turns it off)")
	retry := f.Duration("kafka-retry-timeout", 0, "how long a running job retries an unreachable Kafka broker before failing (overrides retry_timeout; 0: the job file's, default 5m)")
	var ck checkpointFlags
	ck.register(f)
	if err := f.parse(e, args); err != nil {
		return err
	}
	if f.NArg() != 1 {
		f.Usage()
		return usageError{fmt.Errorf("want exactly one job file, have %d arguments", f.NArg())}
	}
	if err := ck.validate(); err != nil {
		return usageError{err}
	}
	data, err := os.ReadFile(f.Arg(0))
	if err != nil {
		return usageError{fmt.Errorf("job: %w", err)}
	}
	spec, err := job.Parse(f.Arg(0), data)
	if err != nil {
		return usageError{err}
	}
	if *progressEvery < 0 {
		return usageError{fmt.Errorf("--progress-interval %v: must not be negative", *progressEvery)}
	}
	if err := makeOutputDirs(spec); err != nil {
		return err
	}
	brokersFlag := "--brokers"
	if *embedded != "" {
		brokersFlag = "--embedded-kafka"
	}
	if err := checkOverrides(spec, *out, *brokers+*embedded, brokersFlag); err != nil {
		return usageError{err}
	}
	st := newJobStatus(spec.Name)
	if f.progress != "never" {
		st.progressEvery = *progressEvery
	}
	e.log = st.logger(e.log)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if *embedded != "" {
		topics, err := parseTopics(*embedded)
		if err != nil {
			return usageError{fmt.Errorf("--embedded-kafka: %w", err)}
		}
		addr, stop, err := embedkafka.Start(ctx, topics)
		if err != nil {
			return err
		}
		defer stop()
		e.log.Info("embedded Kafka-compatible broker started: produce into it with 'riffle produce --brokers "+addr+"'", "brokers", addr, "topics", *embedded)
		*brokers = addr
	}
	if *retry < 0 {
		return usageError{fmt.Errorf("--kafka-retry-timeout %v: must not be negative", *retry)}
	}
	jo := job.Options{Parallelism: *par, OutputDir: *out, Brokers: *brokers, KafkaRetryTimeout: *retry}
	if ck.dir != "" {
		return runCheckpointed(ctx, cancel, e, f, spec, data, jo, &ck, "", st)
	}
	plan, err := spec.PlanContext(ctx, jo)
	if err != nil {
		return usageError{err}
	}
	admin, err := adminFor(spec, ck.adminAddr, ck.adminToken, e.log)
	if err != nil {
		return err
	}
	if admin != nil {
		admin.follow(st, false)
		admin.serveFrom(servedRecommend(spec, plan))
		defer admin.Close(false)
	}
	mc := runMetrics(ctx, e, f, admin)
	var (
		mu  sync.Mutex
		cur *arrowexec.Job
	)
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	// Written by the signal goroutine, read once the job returned.
	var interrupted atomic.Bool
	go func() {
		n := 0
		for sig := range sigs {
			n++
			mu.Lock()
			j := cur
			mu.Unlock()
			if n == 1 && j != nil {
				e.log.Info("stopping gracefully: draining sources, flushing sinks (signal again to cancel)", "signal", sig.String())
				j.Stop(true)
				continue
			}
			e.log.Warn("cancelling", "signal", sig.String())
			interrupted.Store(true)
			cancel()
		}
	}()
	attach := attachMetrics(mc, spec.Name)
	defer st.startProgressLine(e.log)()
	_, err = runPlan(ctx, e, f.showProgress(e), plan, func(j *arrowexec.Job) {
		mu.Lock()
		cur = j
		mu.Unlock()
		st.attach(plan, j, nil)
		if attach != nil {
			attach(j)
		}
	})
	st.jobEnded(err)
	if err != nil && interrupted.Load() && errors.Is(err, context.Canceled) {
		return errInterrupted
	}
	return err
}

// checkpointFlags are run's exactly-once flags.
type checkpointFlags struct {
	dir       string
	interval  time.Duration
	from      string
	retain    int
	adminAddr string
	// adminToken guards the admin endpoint's POST actions.
	adminToken string
	// allowFreshStart: start fresh when every checkpoint is unusable.
	allowFreshStart bool
	f               *flags
}

func (c *checkpointFlags) register(f *flags) {
	c.f = f
	f.StringVar(&c.dir, "checkpoint-dir", "", "write checkpoints here and resume from the newest one: exactly-once file output")
	f.DurationVar(&c.interval, "checkpoint-interval", checkpoint.DefaultInterval, "time between two checkpoints (with --checkpoint-dir)")
	f.StringVar(&c.from, "from", "", "resume from this checkpoint or savepoint directory instead of the newest checkpoint (with --checkpoint-dir)")
	f.IntVar(&c.retain, "retain", checkpoint.DefaultRetain, "complete checkpoints to keep in --checkpoint-dir (savepoints are never removed)")
	f.BoolVar(&c.allowFreshStart, "allow-fresh-start", false, "when every checkpoint in --checkpoint-dir is unusable (corrupt), start over from the job's configured start instead of refusing (the input is processed and published again)")
	f.StringVar(&c.adminToken, "admin-token", "", "require this token (Authorization: Bearer TOKEN) for the admin endpoint's POST actions: savepoints and stop")
	f.StringVar(&c.adminAddr, "admin-addr", "", "serve the admin endpoint on this address, e.g. 127.0.0.1:9465 (:9465 listens on 127.0.0.1 too; 0.0.0.0:9465 on every interface): the web view at /, its JSON API under /api/, GET /status, GET /metrics, savepoints with --checkpoint-dir, and GET /recommend and /similar for a recommend step on a stream (which without this flag serves on 127.0.0.1 at a free port, logged)")
}

func (c *checkpointFlags) validate() error {
	if c.dir == "" {
		switch {
		case c.from != "":
			return errors.New("--from needs --checkpoint-dir (checkpoints taken after the restore go there)")
		}
		for _, name := range []string{"checkpoint-interval", "retain"} {
			if c.f != nil && c.f.isSet(name) {
				return fmt.Errorf("--%s needs --checkpoint-dir (without it the job takes no checkpoints)", name)
			}
		}
		return nil
	}
	if c.interval <= 0 {
		return fmt.Errorf("--checkpoint-interval %v: must be positive", c.interval)
	}
	if fi, err := os.Stat(c.dir); err == nil && !fi.IsDir() {
		return fmt.Errorf("--checkpoint-dir %s: not a directory", c.dir)
	}
	if c.from != "" {
		fi, err := os.Stat(c.from)
		switch {
		case err != nil:
			return fmt.Errorf("--from: %w", err)
		case !fi.IsDir():
			return fmt.Errorf("--from %s: not a checkpoint or savepoint directory", c.from)
		}
	}
	if c.retain < 1 {
		return fmt.Errorf("--retain %d: must be at least 1", c.retain)
	}
	return nil
}

// runCheckpointed runs spec with exactly-once checkpoints (checkpoint.Run).
// The first signal stops it with a final checkpoint; a second one returns
// at once (the process exits; a restart resumes from the last complete
// checkpoint, as after a crash).
//
// With savepointAtEnd (riffle backfill --savepoint) the job is bounded: its
// input is held at the end, without the final watermark, and the job stops
// with a savepoint there, whose path is printed.
//
// st follows the job (progress line, /status).
func runCheckpointed(ctx context.Context, cancel context.CancelFunc, e *env, f *flags, spec *job.Spec, data []byte, jo job.Options, ck *checkpointFlags, savepointAtEnd string, st *jobStatus) error {
	jo.Checkpointed = true
	jo.CheckpointInterval = ck.interval
	fps, err := job.FingerprintsOf(data)
	if err != nil {
		return usageError{fmt.Errorf("%s: %w", spec.File, err)}
	}
	if k := spec.Sink.Kafka; k != nil && k.Delivery != "exactly-once" {
		e.log.Warn("the Kafka sink is at-least-once: after a restore it sends again what it sent after the checkpoint (delivery: exactly-once avoids that)")
	}
	var plan *job.Plan
	build := func(restored *checkpoint.Checkpoint) (*arrowexec.Graph, error) {
		if restored != nil {
			attrs := []any{"checkpoint", restored.Path, "id", restored.ID(), "watermark", checkpoint.FormatWatermark(restored.Manifest.Watermark)}
			for _, sp := range restored.Manifest.Sources {
				attrs = append(attrs, fmt.Sprintf("%s/%d", sp.Node, sp.Subtask), string(sp.Position))
			}
			e.log.Info("resuming from checkpoint", attrs...)
		}
		p, err := spec.PlanContext(ctx, jo)
		if err != nil {
			return nil, usageError{err}
		}
		if savepointAtEnd != "" && !p.Bounded {
			return nil, usageError{fmt.Errorf("%s: --savepoint is for bounded input; the source is unbounded (stop a running job with 'riffle savepoint --stop')", spec.File)}
		}
		plan = p
		e.log.Info("job planned", "job", spec.Name, "parallelism", p.Graph.Node(p.SourceNode).Parallelism(),
			"checkpoint_dir", ck.dir, "checkpoint_interval", ck.interval)
		return p.Graph, nil
	}
	admin, err := adminFor(spec, ck.adminAddr, ck.adminToken, e.log)
	if err != nil {
		return err
	}
	if admin != nil {
		admin.follow(st, true)
	}
	interrupted := false
	defer func() {
		if admin != nil {
			admin.Close(interrupted)
		}
	}()
	mc := runMetrics(ctx, e, f, admin)
	attach := attachMetrics(mc, spec.Name)
	var (
		mu    sync.Mutex
		cur   *arrowexec.Job
		coord *checkpoint.Coordinator
		bar   *progressBar
	)
	defer func() { bar.Stop() }()
	cfg := checkpoint.RunConfig{
		Options: checkpoint.Options{
			Dir: ck.dir, Interval: ck.interval, Retain: ck.retain,
			JobFingerprint: fps.Job, SourceFingerprint: fps.Source, Log: e.log,
		},
		From:           ck.from,
		SavepointAtEnd: savepointAtEnd,
		RunOptions:     arrowexec.RunOptions{Log: e.log},
		OnStart: func(c *checkpoint.Coordinator, j *arrowexec.Job) {
			mu.Lock()
			cur, coord = j, c
			bar = planProgress(e, f.showProgress(e), plan, j)
			mu.Unlock()
			st.attach(plan, j, c)
			if admin != nil {
				admin.setCoordinator(c)
				admin.serveFrom(servedRecommend(spec, plan))
			}
			if attach != nil {
				attach(j)
				mc.SetCoordinator(c)
			}
		},
	}
	cfg.AllowFreshStart = ck.allowFreshStart
	runCtx, stopRun := context.WithCancel(ctx)
	defer stopRun()
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	defer st.startProgressLine(e.log)()
	began := time.Now()
	done := make(chan error, 1)
	go func() { done <- checkpoint.Run(runCtx, cfg, build) }()
	for n := 0; ; {
		select {
		case err = <-done:
			st.jobEnded(err)
		case sig := <-sigs:
			n++
			if n == 1 {
				e.log.Info("stopping with a final checkpoint (signal again to exit at once)", "signal", sig.String())
				stopRun()
				continue
			}
			e.log.Warn("exiting without a final checkpoint; a restart resumes from the last complete one", "signal", sig.String())
			cancel()
			interrupted = true
			return errInterrupted
		}
		break
	}
	if err != nil {
		var ue usageError
		if errors.As(err, &ue) || errors.Is(err, checkpoint.ErrFingerprintMismatch) || errors.Is(err, checkpoint.ErrIncompatible) || errors.Is(err, checkpoint.ErrInvalidOptions) {
			return usageError{err}
		}
		if errors.Is(err, checkpoint.ErrUnusableCheckpoints) {
			return fmt.Errorf("%w (inspect them with 'riffle checkpoints list %s'; --allow-fresh-start starts over)", err, ck.dir)
		}
		return err
	}
	attrs := []any{"job", spec.Name, "elapsed", time.Since(began).Round(time.Millisecond)}
	mu.Lock()
	if j := cur; j != nil && plan != nil {
		attrs = append(attrs, summaryAttrs(readStatus(plan, j))...)
	}
	if coord != nil {
		cs := coord.Stats()
		attrs = append(attrs, "checkpoints", cs.Completed, "last_checkpoint", cs.LastPath)
	}
	var savepoint string
	if coord != nil && savepointAtEnd != "" {
		savepoint = coord.Stats().LastPath
	}
	mu.Unlock()
	e.log.Info("job stopped", attrs...)
	if savepoint != "" {
		fmt.Fprintf(e.stdout, "savepoint: %s\n", savepoint)
	}
	return nil
}
