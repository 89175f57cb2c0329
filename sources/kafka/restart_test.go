package kafka_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/internal/gen"
	"github.com/riffle-dev/riffle/internal/kafkatest"
	"github.com/riffle-dev/riffle/internal/oracle"
	"github.com/riffle-dev/riffle/job"
	ksink "github.com/riffle-dev/riffle/sinks/kafka"
	"github.com/riffle-dev/riffle/sources/parquet"
)

// TestBrokerRestart stops a broker of the test's own under a running
// continuous job (half of the input read), keeps it down for 20 s, starts it
// again on the same data, and produces the other half. The job must stay
// up (its reader retrying meanwhile, as Status says), read the rest, and
// its output after a graceful stop must hold every input row exactly once
// (DuckDB EXCEPT ALL both ways against the input file).
func TestBrokerRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("restarts a broker")
	}
	t.Parallel()
	oracle.Python(t)
	b := kafkatest.StartBroker(t)
	ctx := context.Background()
	dir := t.TempDir()
	input := filepath.Join(dir, "events.parquet")
	const rows, half = 20000, 10000
	if err := gen.WriteFile(ctx, input, gen.Options{Rows: rows, Users: 300, Items: 100, Seed: 5}, nil); err != nil {
		t.Fatal(err)
	}
	topic := kafkatest.CreateTopic(t, b.Addr, "restart", 3)
	produce := func(skip, n int64) {
		t.Helper()
		pq, err := parquet.New(parquet.Options{Paths: []string{input}})
		if err != nil {
			t.Fatal(err)
		}
		it := func(yield func(arrow.RecordBatch, error) bool) {
			seen := int64(0)
			for bt, err := range pq.Batches(ctx, nil, skip+n) {
				if err != nil {
					yield(nil, err)
					return
				}
				lo, hi := max(skip-seen, 0), min(bt.NumRows(), skip+n-seen)
				seen += bt.NumRows()
				if lo >= hi {
					continue
				}
				sl := bt.NewSlice(lo, hi)
				ok := yield(sl, nil)
				sl.Release()
				if !ok {
					return
				}
			}
		}
		st, err := ksink.Produce(ctx, ksink.ProduceOptions{Brokers: []string{b.Addr}, Topic: topic, KeyColumn: "user_id", TimestampColumn: "event_time"}, it)
		if err != nil || st.Messages != n {
			t.Fatalf("producing rows %d..%d: %v (%d sent)", skip, skip+n, err, st.Messages)
		}
	}
	produce(0, half)

	out := filepath.Join(dir, "out")
	spec, err := job.Parse("restart.yaml", []byte(fmt.Sprintf(`name: restart
source:
  kafka:
    brokers: %s
    topic: %s
    max_batch_delay: 50ms
    fields:
      - {name: user_id, type: int64, required: true}
      - {name: item_id, type: int64, required: true}
      - {name: event_type, type: string, required: true}
      - {name: weight, type: float64, required: true}
      - {name: event_time, type: timestamp, required: true}
sink:
  file: {path: %s, format: parquet}
`, b.Addr, topic, out)))
	if err != nil {
		t.Fatal(err)
	}
	plan, err := spec.PlanContext(ctx, job.Options{Parallelism: 2})
	if err != nil {
		t.Fatal(err)
	}
	j, err := plan.Graph.Compile(arrowexec.RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- j.Run(ctx) }()
	read := func() int64 {
		var n int64
		for _, m := range j.Metrics(plan.SourceNode) {
			n += m.RowsIn.Load()
		}
		return n
	}
	await := func(what string, cond func() bool) {
		t.Helper()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		giveUp := time.After(3 * time.Minute)
		for !cond() {
			select {
			case err := <-done:
				t.Fatalf("the job ended while waiting for %s: %v", what, err)
			case <-giveUp:
				t.Fatalf("gave up waiting for %s; status %+v", what, plan.Kafka.Status())
			case <-tick.C:
			}
		}
	}
	await("the first half", func() bool { return read() == half })

	b.Stop(t)
	stopped := time.Now()
	// Down for 20 s by the test's clock, and noticed by every partition's
	// reader, which retries.
	await("20 s of retrying", func() bool {
		for _, ps := range plan.Kafka.Status() {
			if ps.Retrying == "" {
				return false
			}
		}
		return time.Since(stopped) >= 20*time.Second
	})
	t.Logf("down %v: %+v", time.Since(stopped).Round(time.Second), plan.Kafka.Status()[0])
	b.Start(t)
	produce(half, rows-half)
	await("every row", func() bool { return read() == rows })
	for _, ps := range plan.Kafka.Status() {
		if ps.Retrying != "" || ps.Lag != 0 {
			t.Errorf("after the restart: %+v", ps)
		}
	}
	j.Stop(true)
	if err := <-done; err != nil {
		t.Fatal(err)
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
