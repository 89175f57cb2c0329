package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/examples"
	"github.com/riffle-dev/riffle/internal/embedkafka"
	"github.com/riffle-dev/riffle/internal/gen"
	"github.com/riffle-dev/riffle/internal/metrics"
	"github.com/riffle-dev/riffle/job"
	"github.com/riffle-dev/riffle/ml"
	"github.com/riffle-dev/riffle/ml/eval"
	ksink "github.com/riffle-dev/riffle/sinks/kafka"
	"github.com/riffle-dev/riffle/sources/parquet"
)

func init() {
	register(command{name: "quickstart", short: "generate data and run the example backfill (no setup needed)", run: runQuickstart})
}

func runQuickstart(ctx context.Context, e *env, args []string) error {
	f := newFlags(e, "quickstart", "[flags]", `
Generates a seeded interaction data set (items drawn from a planted
low-rank preference model), runs the example job examples/item-stats.yaml
over it as a parallel backfill, and writes the results as Parquet under
--dir. Then it runs examples/recs.yaml, which trains the recommender on the
same events and exports top-10 per user under --dir/recs, prints three
users' recommendations, and evaluates the model against popularity on a
user-time split (package ml/eval, as riffle eval does). Then it starts an in-process
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
	// A planted rank-8 preference model draws the items, so the
	// recommender has structure to learn.
	err := gen.WriteFile(ctx, events, gen.Options{Rows: *rows, Seed: 1, LatentFactors: 8}, func(n int64) { done.Store(n) })
	bar.Stop()
	if err != nil {
		return err
	}
	spec, err := exampleJob("item-stats.yaml")
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
	if err := quickstartRecs(ctx, e, mc, *dir, events, *par, progress); err != nil {
		return fmt.Errorf("recommender part: %w", err)
	}
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

// quickstartRecs runs examples/recs.yaml over the generated events (the
// export goes to dir/recs, the lists the sink receives to dir/recs-out),
// prints the exported lists of the three most active users, and
// evaluates the step's hyperparameters against popularity on a user-time
// split of the same events, printing the table and the riffle eval
// command that gives it.
func quickstartRecs(ctx context.Context, e *env, mc *metrics.Collector, dir, events string, par int, progress bool) error {
	spec, err := exampleJob("recs.yaml")
	if err != nil {
		return err
	}
	var rec *ml.RecommendOptions
	for _, st := range spec.Steps {
		if st.Recommend != nil {
			rec = &st.Recommend.Options
		}
	}
	if rec == nil || rec.Export == nil {
		return errors.New("examples/recs.yaml: no recommend step with an export")
	}
	spec.Source.Parquet.Path = events
	exportDir, out := filepath.Join(dir, "recs"), filepath.Join(dir, "recs-out")
	rec.Export.Path = exportDir
	for _, d := range []string{exportDir, out} {
		if err := os.RemoveAll(d); err != nil {
			return err
		}
	}
	plan, err := spec.PlanContext(ctx, job.Options{Parallelism: par, OutputDir: out})
	if err != nil {
		return err
	}
	res, err := runPlan(ctx, e, progress, plan, attachMetrics(mc, spec.Name))
	if err != nil {
		return err
	}
	ex, err := ml.OpenLatest(exportDir)
	if err != nil {
		return err
	}
	m := ex.Manifest
	fmt.Fprintf(e.stdout, "riffle quickstart, recommender: %s -> iALS (%d factors, %d iterations) on %d users x %d items, %d interactions; top-%d per user exported to %s (%s)\n",
		eventsRead(res), m.Config.Factors, m.Config.Iterations, m.Users, m.Items, m.Interactions, m.K,
		filepath.Join(exportDir, ml.VersionName(ex.Version)), res.Elapsed.Round(time.Millisecond))

	weight := ""
	if rec.Weight != nil {
		weight = rec.Weight.String()
	}
	cols := eval.Columns{User: rec.User, Item: rec.Item, Weight: weight, Time: "event_time"}
	d, err := eval.ReadFile(ctx, events, cols)
	if err != nil {
		return err
	}
	users := mostActive(d, 3)
	answers, err := answerUsers(ctx, ex, users, m.K, true)
	if err != nil {
		return err
	}
	shown := make([]recAnswer, 0, len(users))
	for _, u := range users {
		a, ok := answers[u]
		if !ok {
			return fmt.Errorf("%s: user %s has no recommendations", exportDir, u)
		}
		shown = append(shown, a)
	}
	fmt.Fprintf(e.stdout, "\nThe three most active users' recommendations (riffle recommend --from %s --user ID answers the same):\n", exportDir)
	printAnswers(e.stdout, shown)

	ks := []int{m.K}
	pr, _, err := evalProtocol(ctx, e, d, eval.UserTime, eval.DefaultTestPercent,
		[]eval.Trainer{eval.IALS{Config: rec.Config}, eval.Popularity{}}, ks, rec.Config.Threads)
	if err != nil {
		return err
	}
	c := rec.Config.EnsureDefaults()
	fmt.Fprintf(e.stdout, "\nThe same hyperparameters evaluated against popularity (each user's last %d%% of events held out):\n", eval.DefaultTestPercent)
	printEval(e.stdout, &evalReport{Input: events, Rows: d.Len(), Users: d.UserIDs.Len(), Items: d.ItemIDs.Len(),
		Model: eval.ParamsOf(c), Protocols: []protocolReport{pr}})
	fmt.Fprintf(e.stdout, "(riffle eval --protocol user-time --k %d --user %s --item %s --weight %q --time %s --factors %d --regularization %g --alpha %g --iterations %d --cg-steps %d --seed %d %s\n gives this table, and the random baseline.)\n\n",
		m.K, cols.User, cols.Item, cols.Weight, cols.Time, c.Factors, c.Regularization, c.Alpha, c.Iterations, c.CGSteps, c.Seed, events)
	return nil
}

// mostActive returns the ids of the n users with the most rows in d, most
// first (ties by ascending id).
func mostActive(d *eval.Dataset, n int) []string {
	counts := make([]int, d.UserIDs.Len())
	for _, u := range d.Users {
		counts[u]++
	}
	idx := make([]int32, len(counts))
	for i := range idx {
		idx[i] = int32(i)
	}
	slices.SortStableFunc(idx, func(a, b int32) int { return counts[b] - counts[a] })
	out := make([]string, 0, n)
	for _, u := range idx[:min(n, len(idx))] {
		out = append(out, d.UserIDs.String(u))
	}
	return out
}

// exampleJob parses the embedded job file examples/name.
func exampleJob(name string) (*job.Spec, error) {
	data, err := examples.Jobs.ReadFile(name)
	if err != nil {
		return nil, err
	}
	return job.Parse("examples/"+name, data)
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
	spec, err := exampleJob("live-item-stats.yaml")
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
