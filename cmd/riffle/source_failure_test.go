package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

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
// every message read, equal to DuckDB's over the input file. The final
// offsets cannot be committed to its group (the broker is gone): the error
// reported is still the source's.
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
    group_id: fail
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

// TestCheckpointedSourceFailureResumes: a job with checkpoints whose broker
// fails every fetch for longer than the retry timeout exits with the error
// (1, a runtime failure) and keeps its checkpoints; a run restarted on the
// same checkpoint directory, once the broker works again, resumes from the
// last complete checkpoint and drains the topic (bounded). The two runs'
// output holds every input row exactly once (DuckDB EXCEPT ALL both ways).
func TestCheckpointedSourceFailureResumes(t *testing.T) {
	oracle.Python(t)
	ctx := context.Background()
	dir := t.TempDir()
	input := filepath.Join(dir, "events.parquet")
	const rows, first = 8000, 4000
	if err := gen.WriteFile(ctx, input, gen.Options{Rows: rows, Users: 100, Items: 40, Seed: 12}, nil); err != nil {
		t.Fatal(err)
	}
	c, stop, err := embedkafka.StartCluster(ctx, map[string]int{"events": 2})
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	brokers := c.ListenAddrs()[0]
	produce := func(skip, n int64) {
		t.Helper()
		pq, err := parquet.New(parquet.Options{Paths: []string{input}})
		if err != nil {
			t.Fatal(err)
		}
		seen := int64(0)
		for b, err := range pq.Batches(ctx, nil, skip+n) {
			if err != nil {
				t.Fatal(err)
			}
			lo, hi := max(skip-seen, 0), min(b.NumRows(), skip+n-seen)
			seen += b.NumRows()
			if lo >= hi {
				continue
			}
			sl := b.NewSlice(lo, hi)
			_, err = ksink.Produce(ctx, ksink.ProduceOptions{Brokers: []string{brokers}, Topic: "events", KeyColumn: "user_id"},
				func(yield func(arrow.RecordBatch, error) bool) { yield(sl, nil) })
			sl.Release()
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	out, ck := filepath.Join(dir, "out"), filepath.Join(dir, "ck")
	writeJob := func(name string, bounded bool) string {
		p := filepath.Join(dir, name+".yaml")
		yml := fmt.Sprintf(`name: resume
source:
  kafka:
    brokers: %s
    topic: events
    bounded: %v
    max_batch_delay: 20ms
    fields:
      - {name: user_id, type: int64, required: true}
      - {name: item_id, type: int64, required: true}
      - {name: event_type, type: string, required: true}
      - {name: weight, type: float64, required: true}
      - {name: event_time, type: timestamp, required: true}
sink:
  file: {path: %s, format: parquet}
`, brokers, bounded, out)
		if err := os.WriteFile(p, []byte(yml), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	produce(0, first)
	type exit struct {
		code   int
		stderr string
	}
	done := make(chan exit, 1)
	go func() {
		code, _, errOut := runCLI(t, "run", "--progress", "never", "--checkpoint-dir", ck, "--checkpoint-interval", "100ms",
			"--kafka-retry-timeout", "500ms", writeJob("live", false))
		done <- exit{code, errOut}
	}()
	// A complete checkpoint, then more messages and a broker whose
	// fetches fail.
	for {
		if m, _ := filepath.Glob(filepath.Join(ck, "chk-*", "MANIFEST")); len(m) > 0 {
			break
		}
		select {
		case e := <-done:
			t.Fatalf("the job ended before its first checkpoint: exit %d\n%s", e.code, e.stderr)
		case <-time.After(10 * time.Millisecond):
		}
	}
	produce(first, rows-first)
	heal := embedkafka.FailFetches(c)
	var e exit
	select {
	case e = <-done:
	case <-time.After(2 * time.Minute):
		t.Fatal("the job did not fail")
	}
	if e.code != exitFailure || !strings.Contains(e.stderr, "fetch failed") {
		t.Fatalf("exit %d, want %d with the fetch error:\n%s", e.code, exitFailure, e.stderr)
	}
	heal()
	if code, _, errOut := runCLI(t, "run", "--progress", "never", "--checkpoint-dir", ck, writeJob("drain", true)); code != exitOK {
		t.Fatalf("resumed run: exit %d\n%s", code, errOut)
	}
	q := fmt.Sprintf(`CREATE VIEW got AS SELECT * FROM read_parquet('%s/*.parquet');
CREATE VIEW want AS SELECT * FROM read_parquet('%s');
SELECT (SELECT count(*) FROM got), (SELECT count(*) FROM want),
       (SELECT count(*) FROM (SELECT * FROM got EXCEPT ALL SELECT * FROM want)),
       (SELECT count(*) FROM (SELECT * FROM want EXCEPT ALL SELECT * FROM got))`, out, input)
	res := oracle.DuckDB(t, q).Strings()
	if len(res) != 1 || res[0][0] != res[0][1] || res[0][2] != "0" || res[0][3] != "0" {
		t.Fatalf("got/want rows, extra, missing = %v", res)
	}
}

// TestRetryTimeoutFlags: negative retry timeouts are usage errors.
func TestRetryTimeoutFlags(t *testing.T) {
	dir := t.TempDir()
	jobFile := filepath.Join(dir, "job.yaml")
	if err := os.WriteFile(jobFile, []byte("name: x\nsource:\n  kafka: {brokers: 127.0.0.1:1, topic: t, format: raw}\nsink:\n  file: {path: out}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"run", "--kafka-retry-timeout", "-1s", jobFile},
		{"produce", "--retry-timeout", "-1s", "--brokers", "127.0.0.1:1", "--topic", "t", jobFile},
	} {
		code, _, errOut := runCLI(t, args...)
		if code != exitUsage || !strings.Contains(errOut, "retry-timeout") || !strings.Contains(errOut, "negative") {
			t.Errorf("%v: exit %d, stderr %q; want a usage error about the retry timeout", args, code, errOut)
		}
	}
}
