package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/internal/embedkafka"
	"github.com/riffle-dev/riffle/internal/gen"
	"github.com/riffle-dev/riffle/internal/oracle"
	"github.com/riffle-dev/riffle/job"
	ksink "github.com/riffle-dev/riffle/sinks/kafka"
	ksrc "github.com/riffle-dev/riffle/sources/kafka"
	"github.com/riffle-dev/riffle/sources/parquet"
)

// TestSourceFailureKeepsOutput: a continuous job without checkpoints reads
// every message of a topic, then its broker goes away for good. After the
// retry timeout (the command line's 300ms overriding the job file's 1h) the
// job fails with an error naming the partition and the failed step, and,
// as a graceful stop would, publishes what it computed: its aggregate over
// every message read, equal to DuckDB's over the input file.
func TestSourceFailureKeepsOutput(t *testing.T) {
	oracle.Python(t)
	ctx := context.Background()
	dir := t.TempDir()
	input := filepath.Join(dir, "events.parquet")
	if err := gen.WriteFile(ctx, input, gen.Options{Rows: 5000, Users: 100, Items: 40, Seed: 9}, nil); err != nil {
		t.Fatal(err)
	}
	brokers, stop, err := embedkafka.Start(ctx, map[string]int{"events": 2})
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	pq, err := parquet.New(parquet.Options{Paths: []string{input}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ksink.Produce(ctx, ksink.ProduceOptions{Brokers: []string{brokers}, Topic: "events", KeyColumn: "item_id"},
		pq.Batches(ctx, nil, 0)); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	spec, err := job.Parse("fail.yaml", []byte(fmt.Sprintf(`name: fail
source:
  kafka:
    brokers: %s
    topic: events
    retry_timeout: 1h
    max_batch_delay: 20ms
    fields:
      - {name: item_id, type: int64, required: true}
      - {name: weight, type: float64, required: true}
steps:
  - aggregate:
      group_by: [item_id]
      aggs: ["count(*) AS n", "sum(weight) AS w"]
sink:
  file: {path: %s, format: parquet}
`, brokers, out)))
	if err != nil {
		t.Fatal(err)
	}
	plan, err := spec.PlanContext(ctx, job.Options{KafkaRetryTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	e := &env{stdout: &bytes.Buffer{}, stderr: &logs, log: slog.New(slog.NewTextHandler(&logs, nil))}
	started := make(chan *arrowexec.Job, 1)
	type result struct {
		res *runResult
		err error
	}
	done := make(chan result, 1)
	go func() {
		res, err := runPlan(ctx, e, false, plan, func(j *arrowexec.Job) { started <- j })
		done <- result{res, err}
	}()
	j := <-started
	// Every message read, then the broker goes away.
	for read := int64(0); read < 5000; {
		select {
		case r := <-done:
			t.Fatalf("the job ended before reading everything: %v\n%s", r.err, logs.String())
		case <-time.After(10 * time.Millisecond):
		}
		read = 0
		for _, m := range j.Metrics(plan.SourceNode) {
			read += m.RowsIn.Load()
		}
	}
	stop()
	var r result
	select {
	case r = <-done:
	case <-time.After(2 * time.Minute):
		t.Fatal("the job did not fail after the retry timeout (is the command line's --kafka-retry-timeout applied?)")
	}
	var fe *ksrc.FetchError
	if !errors.As(r.err, &fe) || fe.Topic != "events" || fe.For < 300*time.Millisecond || fe.For > time.Minute {
		t.Fatalf("err = %v, want a fetch error of topic events after retrying for 300ms\n%s", r.err, logs.String())
	}
	if r.res == nil || len(r.res.Files) == 0 {
		t.Fatalf("no output published: %+v\n%s", r.res, logs.String())
	}
	got := oracle.DuckDB(t, fmt.Sprintf(`SELECT item_id, n, round(w, 6) FROM read_parquet('%s/*.parquet') ORDER BY item_id`, out)).Strings()
	want := oracle.DuckDB(t, fmt.Sprintf(`SELECT item_id, count(*), round(sum(weight), 6) FROM read_parquet('%s') GROUP BY item_id ORDER BY item_id`, input)).Strings()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("output\n%v\nwant (DuckDB over the input)\n%v", got, want)
	}
	t.Logf("%d items; error: %v", len(got), r.err)
}
