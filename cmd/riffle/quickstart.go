package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/examples"
	"github.com/riffle-dev/riffle/internal/embedkafka"
	"github.com/riffle-dev/riffle/internal/gen"
	"github.com/riffle-dev/riffle/internal/metrics"
	"github.com/riffle-dev/riffle/job"
	ksink "github.com/riffle-dev/riffle/sinks/kafka"
	"github.com/riffle-dev/riffle/sources/parquet"
)

func init() {
	register(command{name: "quickstart", short: "generate data and run the example backfill (no setup needed)", run: runQuickstart})
}

func runQuickstart(ctx context.Context, e *env, args []string) error {
	f := newFlags(e, "quickstart", "[flags]", `
Generates a seeded interaction data set, runs the example job
examples/item-stats.yaml over it as a parallel backfill, and writes the
results as Parquet under --dir. Then it starts an in-process
Kafka-compatible broker, runs the continuous twin of that job
(examples/live-item-stats.yaml) while replaying events into its topic, and
stops it gracefully. Everything is embedded: no services, no downloads.
With --metrics-addr both jobs are served to Prometheus in turn.`)
	f.addProgress()
	f.addMetrics()
	dir := f.String("dir", "riffle-quickstart", "working directory for data and results")
	rows := f.Int64("rows", 2_000_000, "rows of interaction data to generate")
	par := f.Int("parallelism", 0, "subtasks per node (0: GOMAXPROCS)")
	streamRows := f.Int64("stream-rows", 300_000, "events to replay through the embedded broker for the continuous job (0: skip it)")
	if err := f.parse(e, args); err != nil {
		return err
	}
	if f.NArg() != 0 {
		return usageError{fmt.Errorf("unexpected arguments %q", f.Args())}
	}
	progress := f.showProgress(e)
	mc := metricsCollector(ctx, e, f)
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
	res, err := runPlan(ctx, e, progress, plan, attachMetrics(mc, spec.Name))
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "\nriffle quickstart, batch: %s -> %d item rows in %d files under %s (%s)\n",
		eventsRead(res), res.RowsOut, len(res.Files), out, res.Elapsed.Round(time.Millisecond))
	if *streamRows > 0 {
		live, err := quickstartStream(ctx, e, mc, *dir, events, *streamRows, *par)
		if err != nil {
			return fmt.Errorf("streaming part: %w", err)
		}
		fmt.Fprintf(e.stdout, "riffle quickstart, stream: %s through an embedded Kafka-compatible broker -> %d item rows under %s (%s)\n",
			eventsRead(live), live.RowsOut, filepath.Join(*dir, "live-item-stats"), live.Elapsed.Round(time.Millisecond))
	}
	fmt.Fprintf(e.stdout, "Total %s. %s", time.Since(began).Round(time.Millisecond), readHint(out, "events"))
	return nil
}

// attachMetrics returns the callback that reports a job under name to c
// (nil without a collector).
func attachMetrics(c *metrics.Collector, name string) func(*arrowexec.Job) {
	if c == nil {
		return nil
	}
	return func(j *arrowexec.Job) { c.SetJob(name, j) }
}

// eventsRead says how many events a quickstart job read: those scanned
// and, when a filter pushed into the scan dropped some, those it kept;
// and the dead letters.
func eventsRead(r *runResult) string {
	s := fmt.Sprintf("%d events", r.RowsIn)
	if r.RowsScanned > r.RowsIn {
		s = fmt.Sprintf("%d events scanned (%d kept by the filter pushed into the scan)", r.RowsScanned, r.RowsIn)
	}
	if r.DeadLetters > 0 {
		s += fmt.Sprintf(" (%d bad messages to the dead-letter file)", r.DeadLetters)
	}
	return s
}

// readHint tells how to look at the Parquet files under dir with what this
// machine has: the duckdb command, the Python environment the project
// installs (.venv, scripts/test.sh), or else the SQL and a pyarrow line.
func readHint(dir, orderBy string) string {
	query := fmt.Sprintf("SELECT * FROM '%s/*.parquet' ORDER BY %s DESC LIMIT 10", dir, orderBy)
	if _, err := exec.LookPath("duckdb"); err == nil {
		return fmt.Sprintf("Read the results with DuckDB, pyarrow or pandas, e.g.:\n  duckdb -c \"%s\"\n", query)
	}
	py := filepath.Join(".venv", "bin", "python")
	if _, err := os.Stat(py); err == nil {
		return fmt.Sprintf("Read the results with DuckDB (in the project's Python environment), pyarrow or pandas, e.g.:\n  %s -c \"import duckdb; duckdb.sql(\\\"%s\\\").show()\"\n", py, query)
	}
	return fmt.Sprintf("Read the results with DuckDB, pyarrow or pandas (pip install duckdb), e.g. the SQL\n  %s\nor\n  python3 -c \"import pyarrow.parquet as pq; print(pq.read_table('%s').to_pandas().nlargest(10, '%s'))\"\n", query, dir, orderBy)
}

// quickstartStream runs examples/live-item-stats.yaml as a continuous job
// against an in-process Kafka-compatible broker, replays the first rows of
// the generated events into its topic while the job runs, and stops the
// job gracefully once it has read them all.
func quickstartStream(ctx context.Context, e *env, mc *metrics.Collector, dir, events string, rows int64, par int) (*runResult, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	brokers, stop, err := embedkafka.Start(ctx, map[string]int{"events": 3})
	if err != nil {
		return nil, err
	}
	defer stop()
	e.log.Info("quickstart: embedded Kafka-compatible broker started", "brokers", brokers)
	data, err := examples.Jobs.ReadFile("live-item-stats.yaml")
	if err != nil {
		return nil, err
	}
	spec, err := job.Parse("examples/live-item-stats.yaml", data)
	if err != nil {
		return nil, err
	}
	spec.Source.Kafka.DeadLetterPath = filepath.Join(dir, "dead-letters.jsonl")
	out := filepath.Join(dir, "live-item-stats")
	if err := os.RemoveAll(out); err != nil {
		return nil, err
	}
	plan, err := spec.PlanContext(ctx, job.Options{Parallelism: par, OutputDir: out, Brokers: brokers})
	if err != nil {
		return nil, err
	}
	started := make(chan *arrowexec.Job, 1)
	type result struct {
		res *runResult
		err error
	}
	done := make(chan result, 1)
	attach := attachMetrics(mc, spec.Name)
	go func() {
		res, err := runPlan(ctx, e, false, plan, func(j *arrowexec.Job) {
			if attach != nil {
				attach(j)
			}
			started <- j
		})
		done <- result{res, err}
	}()
	var j *arrowexec.Job
	select {
	case j = <-started:
	case r := <-done:
		return nil, r.err
	}
	produced, err := replay(ctx, events, brokers, "events", rows, 200_000)
	if err != nil {
		cancel()
		<-done
		return nil, err
	}
	e.log.Info("quickstart: replayed events into the topic", "messages", produced)
	// Wait until the job has read everything, then stop it gracefully.
	for {
		var read int64
		for _, m := range j.Metrics(plan.SourceNode) {
			read += m.RowsIn.Load()
		}
		if read >= produced {
			break
		}
		select {
		case r := <-done:
			return r.res, r.err
		case <-time.After(50 * time.Millisecond):
		}
	}
	j.Stop(true)
	r := <-done
	return r.res, r.err
}

// replay produces the first rows of a Parquet file into a topic at rate
// messages per second, stamped with their event times.
func replay(ctx context.Context, path, brokers, topic string, rows int64, rate float64) (int64, error) {
	src, err := parquet.New(parquet.Options{Paths: []string{path}})
	if err != nil {
		return 0, err
	}
	st, err := ksink.Produce(ctx, ksink.ProduceOptions{Brokers: []string{brokers}, Topic: topic, Rate: rate, KeyColumn: "user_id", TimestampColumn: "event_time"}, src.Batches(ctx, memory.DefaultAllocator, rows))
	return st.Messages, err
}
