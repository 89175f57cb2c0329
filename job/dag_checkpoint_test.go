package job_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/arrowexec/exectest"
	"github.com/riffle-dev/riffle/internal/gen"
	"github.com/riffle-dev/riffle/internal/kafkatest"
	"github.com/riffle-dev/riffle/internal/oracle"
	"github.com/riffle-dev/riffle/job"
	ksink "github.com/riffle-dev/riffle/sinks/kafka"
)

// TestDAGUnionCheckpointRestore runs a DAG job (two Kafka topics, a union,
// a filter, a file sink that commits with checkpoints) continuously,
// takes checkpoint 1 while it reads, crashes it (cancel) after the
// checkpoint completed, and restores it from checkpoint 1 at another
// parallelism as a bounded run that drains the topics: the published
// output equals DuckDB's UNION ALL of the rows produced, each once.
func TestDAGUnionCheckpointRestore(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	oracle.Python(t)
	dir := t.TempDir()
	files, topics := kafkaInputs(t, brokers, dir)
	const cols = "user_id, item_id, event_type, weight, event_time"
	want := canon(oracle.DuckDB(t, fmt.Sprintf(`SELECT %s FROM (SELECT * FROM read_parquet('%s') UNION ALL SELECT * FROM read_parquet('%s')) WHERE event_type <> 'view'`,
		cols, files[0], files[1])).Strings())
	for _, c := range [][2]int{{1, 3}, {2, 1}} {
		t.Run(fmt.Sprintf("p=%d-to-%d", c[0], c[1]), func(t *testing.T) {
			out := filepath.Join(dir, fmt.Sprintf("out-%d-%d", c[0], c[1]))
			yml := func(bounded bool) string {
				return unionJob("dag-ck", brokers, topics, bounded, `  - filter: "event_type <> 'view'"
`, fmt.Sprintf("  - file: {path: %s, format: parquet}\n", out))
			}
			crashRestore(t, yml, c[0], c[1])
			got := canon(oracle.DuckDB(t, fmt.Sprintf("SELECT %s FROM read_parquet('%s/*.parquet')", cols, out)).Strings())
			compareNamedRows(t, "union", got, want)
		})
	}
}

// unionJob is a DAG job file: sources a and b read topics (bounded or
// not), a union step "all", then steps (YAML list items) and sinks.
func unionJob(name, brokers string, topics [2]string, bounded bool, steps, sinks string) string {
	src := func(topic string) string {
		return fmt.Sprintf("\n    kafka:\n      brokers: %q\n      topic: %s\n      bounded: %v\n      max_batch_rows: 100\n      start: earliest", brokers, topic, bounded) +
			indent(kafkaFields)
	}
	return fmt.Sprintf(`name: %s
sources:
  a:%s
  b:%s
steps:
  - name: all
    union: {}
    inputs: [a, b]
%ssinks:
%s`, name, src(topics[0]), src(topics[1]), steps, sinks)
}

// kafkaInputs writes two generated Parquet files (6,000 and 9,000 rows)
// and produces each to a topic of its own (2 partitions, keyed by
// item_id).
func kafkaInputs(t *testing.T, brokers, dir string) (files, topics [2]string) {
	t.Helper()
	for i := range files {
		files[i] = filepath.Join(dir, fmt.Sprintf("in-%d.parquet", i))
		if err := gen.WriteFile(context.Background(), files[i], gen.Options{Rows: int64(6_000 + 3_000*i), Users: 200, Items: 100, Seed: int64(21 + i), RowGroupRows: 2_000}, nil); err != nil {
			t.Fatal(err)
		}
		topics[i] = kafkatest.CreateTopic(t, brokers, fmt.Sprintf("dag-%d", i), 2)
		if _, err := ksink.Produce(context.Background(), ksink.ProduceOptions{Brokers: []string{brokers}, Topic: topics[i], KeyColumn: "item_id", TimestampColumn: "event_time"}, parquetRows(t, files[i])); err != nil {
			t.Fatal(err)
		}
	}
	return files, topics
}

// crashRestore runs the job file yml(false) (unbounded Kafka sources) at
// parallelism p1 with checkpoints, takes checkpoint 1 once rows flow,
// reads on and crashes (cancel), then restores checkpoint 1 into
// yml(true) (bounded: drains the topics) at parallelism p2 and runs it to
// the end.
func crashRestore(t *testing.T, yml func(bounded bool) string, p1, p2 int) {
	t.Helper()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	snaps := exectest.NewSnapshots()
	// Run 1: continuous; checkpoint 1 once rows flow; crash.
	plan1 := planYAML(t, yml(false), p1)
	j1, err := plan1.Graph.Compile(arrowexec.RunOptions{Mem: mem, OnSnapshot: snaps.OnSnapshot})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- j1.Run(ctx) }()
	waitRows(t, j1, "source-a", 300)
	t.Logf("checkpoint 1 triggered after %d + %d rows", rowsRead(j1, "source-a"), rowsRead(j1, "source-b"))
	if err := j1.TriggerCheckpoint(ctx, arrowexec.Barrier{ID: 1}); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, node := range plan1.Graph.Nodes() {
		n += node.Parallelism()
	}
	for range n {
		select {
		case <-snaps.Arrived():
		case <-time.After(time.Minute):
			t.Fatal("checkpoint 1: not every subtask snapshotted")
		}
	}
	j1.NotifyCheckpointComplete(1)
	waitRows(t, j1, "source-b", 600) // read on past the checkpoint
	t.Logf("crash after %d + %d rows", rowsRead(j1, "source-a"), rowsRead(j1, "source-b"))
	cancel()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	// Run 2: restored from checkpoint 1, bounded: drains the topics.
	plan2 := planYAML(t, yml(true), p2)
	j2, err := plan2.Graph.Compile(arrowexec.RunOptions{Mem: mem, Restore: snaps.Restore(1)})
	if err != nil {
		t.Fatal(err)
	}
	if err := j2.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func planYAML(t *testing.T, yml string, p int) *job.Plan {
	t.Helper()
	spec, err := job.Parse("dag.yaml", []byte(yml))
	if err != nil {
		t.Fatal(err)
	}
	plan, err := spec.Plan(job.Options{Parallelism: p, NoSync: true, Checkpointed: true})
	if err != nil {
		t.Fatal(err)
	}
	return plan
}

// waitRows waits until node's subtasks read at least n rows in all.
func waitRows(t *testing.T, j *arrowexec.Job, node string, n int64) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		rows := rowsRead(j, node)
		if rows >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s read %d rows, want %d", node, rows, n)
		}
		time.Sleep(time.Millisecond) // polls the job's metrics
	}
}

// indent shifts a block of YAML lines two spaces right.
func indent(s string) string {
	out := []byte{}
	for i := 0; i < len(s); i++ {
		out = append(out, s[i])
		if s[i] == '\n' {
			out = append(out, ' ', ' ')
		}
	}
	return string(out)
}

// rowsRead returns how many rows node's subtasks read.
func rowsRead(j *arrowexec.Job, node string) (rows int64) {
	for _, m := range j.Metrics(node) {
		rows += m.RowsIn.Load()
	}
	return rows
}

// TestEventTimeStepsCheckpointRestore runs window_max and last_n over the
// union of two Kafka topics (a watermark so far behind that every row is
// held to the end), checkpoints, crashes and restores at another
// parallelism, as TestDAGUnionCheckpointRestore: each output equals
// DuckDB's window-function answer over the rows produced, each row once.
func TestEventTimeStepsCheckpointRestore(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	oracle.Python(t)
	dir := t.TempDir()
	files, topics := kafkaInputs(t, brokers, dir)
	u := fmt.Sprintf("(SELECT * FROM read_parquet('%s') UNION ALL SELECT * FROM read_parquet('%s'))", files[0], files[1])
	wantTop := canon(oracle.DuckDB(t, fmt.Sprintf(`SELECT user_id, item_id, weight, epoch_ms(event_time) FROM
  (SELECT *, max(weight) OVER (PARTITION BY epoch_ms(event_time) // 3600000) AS m FROM %s) WHERE weight = m`, u)).Strings())
	wantLast := canon(oracle.DuckDB(t, fmt.Sprintf(`SELECT user_id, epoch_ms(event_time), round(avg(weight) OVER (PARTITION BY user_id ORDER BY event_time ROWS BETWEEN 4 PRECEDING AND CURRENT ROW), 6) FROM %s`, u)).Strings())
	for _, c := range [][2]int{{1, 3}, {3, 2}} {
		t.Run(fmt.Sprintf("p=%d-to-%d", c[0], c[1]), func(t *testing.T) {
			top := filepath.Join(dir, fmt.Sprintf("top-%d-%d", c[0], c[1]))
			last := filepath.Join(dir, fmt.Sprintf("last-%d-%d", c[0], c[1]))
			yml := func(bounded bool) string {
				src := func(topic string) string {
					return fmt.Sprintf("\n    kafka:\n      brokers: %q\n      topic: %s\n      bounded: %v\n      max_batch_rows: 100\n      start: earliest", brokers, topic, bounded) +
						indent(kafkaFields) + "\n    watermark: {column: event_time, max_out_of_orderness: 100000h}"
				}
				return fmt.Sprintf(`name: dag-et
sources:
  a:%s
  b:%s
steps:
  - name: all
    union: {}
    inputs: [a, b]
  - name: top
    inputs: [all]
    window_max: {size: 1h, time: event_time, by: weight}
  - name: recent
    inputs: [all]
    last_n: {key: [user_id], order_by: [event_time], n: 5, aggs: ["avg(weight) AS w5"]}
sinks:
  - {from: top, file: {path: %s, format: parquet}}
  - {from: recent, file: {path: %s, format: parquet}}
`, src(topics[0]), src(topics[1]), top, last)
			}
			crashRestore(t, yml, c[0], c[1])
			got := canon(oracle.DuckDB(t, fmt.Sprintf("SELECT user_id, item_id, weight, epoch_ms(event_time) FROM read_parquet('%s/*.parquet')", top)).Strings())
			compareNamedRows(t, "window_max", got, wantTop)
			got = canon(oracle.DuckDB(t, fmt.Sprintf("SELECT user_id, epoch_ms(event_time), round(w5, 6) FROM read_parquet('%s/*.parquet')", last)).Strings())
			compareNamedRows(t, "last_n", got, wantLast)
		})
	}
}
