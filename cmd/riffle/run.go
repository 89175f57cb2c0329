package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/riffle-dev/riffle/arrowexec"
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
flush and publish. A second signal cancels at once.`)
	par := f.Int("parallelism", 0, "subtasks per node (0: the job file's, else GOMAXPROCS)")
	out := f.String("output", "", "override the file sink's output directory")
	brokers := f.String("brokers", "", "override the job's Kafka brokers (host:port,...)")
	embedded := f.String("embedded-kafka", "", "start an in-process Kafka-compatible broker with these topics (topic:partitions,...) and use it")
	if err := f.parse(e, args); err != nil {
		return err
	}
	if f.NArg() != 1 {
		f.Usage()
		return usageError{fmt.Errorf("want exactly one job file, have %d arguments", f.NArg())}
	}
	spec, err := job.ReadFile(f.Arg(0))
	if err != nil {
		return usageError{err}
	}
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
		e.log.Info("embedded Kafka-compatible broker started", "brokers", addr)
		*brokers = addr
	}
	plan, err := spec.PlanContext(ctx, job.Options{Parallelism: *par, OutputDir: *out, Brokers: *brokers})
	if err != nil {
		return usageError{err}
	}
	var (
		mu  sync.Mutex
		cur *arrowexec.Job
	)
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	interrupted := false
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
			interrupted = true
			cancel()
		}
	}()
	attach := metricsHook(ctx, e, f, spec.Name)
	_, err = runPlan(ctx, e, f.showProgress(e), plan, func(j *arrowexec.Job) {
		mu.Lock()
		cur = j
		mu.Unlock()
		if attach != nil {
			attach(j)
		}
	})
	if err != nil && interrupted && errors.Is(err, context.Canceled) {
		return errInterrupted
	}
	return err
}
