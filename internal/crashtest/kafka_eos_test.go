package crashtest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/riffle-dev/riffle/internal/kafkatest"
	"github.com/riffle-dev/riffle/internal/oracle"
)

// eosJobYAML is the exactly-once Kafka sink crash test's job: brokers,
// input topic, bounded flag, brokers, output topic. Every input row
// becomes one output message, so rows are in flight (in open
// transactions) whenever the job is killed.
const eosJobYAML = `# The exactly-once Kafka sink crash test's job (internal/crashtest).
name: crash-kafka-eos
parallelism: 2
source:
  kafka:
    brokers: %s
    topic: %s
    start: earliest
    bounded: %v
    max_batch_rows: 500
    max_batch_delay: 50ms
    fields:
      - {name: user_id, type: int64, required: true}
      - {name: item_id, type: int64, required: true}
      - {name: event_type, type: string, required: true}
      - {name: weight, type: float64, required: true}
      - {name: event_time, type: timestamp, required: true}
steps:
  - filter: "item_id >= 0"
sink:
  kafka: {brokers: %s, topic: %s, key: user_id, delivery: exactly-once, transaction_timeout: 5m}
`

// eosKills is the number of SIGKILLs of the exactly-once job.
const eosKills = 8

// TestCrashRecoveryKafkaExactlyOnce: a job from the input topic to an
// output topic through an exactly-once Kafka sink is SIGKILLed at random
// moments, while a checkpoint is written and right after one committed
// (its transactions being committed), and sometimes stopped with SIGTERM,
// each run at parallelism 1 to 3 (a restore rescales the sink: it commits
// the transactions of the previous subtasks it inherits and fences their
// ids). A last run of the same job with bounded: true resumes from the
// newest checkpoint and drains the topic. A read_committed consumer of the
// output must then see exactly DuckDB's rows of the input (the filter's),
// each once, as does the fault-free run's output; a read_uncommitted
// consumer must see more: the rows of the transactions the kills aborted,
// which proves the test sees transactions at all.
func TestCrashRecoveryKafkaExactlyOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test: skipped with -short")
	}
	brokers := kafkatest.Brokers(t)
	oracle.Python(t)
	began := time.Now()
	seed := crashSeed(t)
	t.Logf("crash seed %d (replay with %s=%d), %d kills", seed, envSeed, seed, eosKills)
	rng := rand.New(rand.NewPCG(seed, 0x656f7321))

	dir, bin, input, topic := prepare(t, brokers, 11, "crasheos")
	crashOut := kafkatest.CreateTopic(t, brokers, "crasheos-out", partitions)
	cleanOut := kafkatest.CreateTopic(t, brokers, "crasheos-clean", partitions)
	jobFile := func(name, out string, bounded bool) string {
		p := filepath.Join(dir, name+".yaml")
		if err := os.WriteFile(p, fmt.Appendf(nil, eosJobYAML, brokers, topic, bounded, brokers, out), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	produced := make(chan error, 1)
	go func() { produced <- produce(brokers, topic, input) }()

	crash := newRunner(t, bin, jobFile("live", crashOut, false), filepath.Join(dir, "crash"))
	crash.modes = killPublished // no files: random, checkpoint-writing, checkpoint-committed
	crash.noOutput = true
	counts := map[killMode]int{}
	for done := 0; done < eosKills; {
		var m killMode
		if rng.IntN(6) == 0 {
			m = crash.stopOnce(rng)
		} else {
			m = crash.killOnce(rng)
			done++
		}
		counts[m]++
		t.Logf("run %2d (parallelism %d): %s", crash.runs, crash.lastPar, m)
	}
	if err := <-produced; err != nil {
		t.Fatal(err)
	}
	sentinels(t, brokers, topic) // filtered out by the job
	endOffsets(t, brokers, topic)

	drain := func(r *runner, par int) {
		t.Helper()
		p := r.start(par)
		select {
		case err := <-p.done:
			if err != nil {
				r.failf("the draining run: %v", err)
			}
		case <-time.After(finishTimeout):
			r.failf("the draining run did not end within %v", finishTimeout)
		}
	}
	crash.job = jobFile("drain", crashOut, true)
	drain(crash, 1+rng.IntN(3))
	if log, _ := os.ReadFile(crash.lastLog); !strings.Contains(string(log), "resuming from checkpoint") {
		crash.failf("the draining run did not resume from a checkpoint")
	}
	clean := newRunner(t, bin, jobFile("clean", cleanOut, true), filepath.Join(dir, "clean"))
	clean.noOutput = true
	drain(clean, 2)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	write := func(name string, vals [][]byte) string {
		p := filepath.Join(dir, name+".jsonl")
		var b []byte
		for _, v := range vals {
			b = append(append(b, v...), '\n')
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	committed := write("crash-committed", kafkatest.ReadAll(ctx, t, brokers, crashOut, partitions, true))
	all := write("crash-uncommitted", kafkatest.ReadAll(ctx, t, brokers, crashOut, partitions, false))
	cleanFile := write("clean-committed", kafkatest.ReadAll(ctx, t, brokers, cleanOut, partitions, true))

	view := func(name, file string) string {
		return fmt.Sprintf(`CREATE VIEW %s AS SELECT user_id, item_id, event_type, weight, epoch_ms(CAST(event_time AS TIMESTAMPTZ)) AS ts
FROM read_json('%s', format = 'newline_delimited', columns = {user_id: 'BIGINT', item_id: 'BIGINT', event_type: 'VARCHAR', weight: 'DOUBLE', event_time: 'VARCHAR'});`, name, file)
	}
	setup := strings.Join([]string{view("got", committed), view("uncommitted", all), view("clean", cleanFile),
		fmt.Sprintf(`CREATE VIEW truth AS SELECT user_id, item_id, event_type, weight, epoch_ms(event_time) AS ts FROM read_parquet('%s') WHERE item_id >= 0;`, input)}, "\n")
	diff := func(a, b string) string {
		return fmt.Sprintf("(SELECT count(*) FROM (SELECT * FROM %s EXCEPT ALL SELECT * FROM %s))", a, b)
	}
	q := setup + fmt.Sprintf(`
SELECT (SELECT count(*) FROM got), (SELECT count(*) FROM clean), (SELECT count(*) FROM truth), (SELECT count(*) FROM uncommitted),
       %s, %s, %s, %s, (SELECT count(*) FROM (SELECT * FROM uncommitted EXCEPT SELECT * FROM truth))`,
		diff("got", "truth"), diff("truth", "got"), diff("clean", "truth"), diff("truth", "clean"))
	res := oracle.DuckDB(t, q).Strings()
	if len(res) != 1 || len(res[0]) != 9 {
		t.Fatalf("oracle answered %v", res)
	}
	r := res[0]
	t.Logf("rows: read_committed %s, fault-free %s, DuckDB %s, read_uncommitted %s; extra/missing %s/%s; fault-free extra/missing %s/%s; uncommitted rows not in the input %s",
		r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8])
	if r[0] != r[2] || r[1] != r[2] || r[4] != "0" || r[5] != "0" || r[6] != "0" || r[7] != "0" || r[8] != "0" {
		t.Fatalf("outputs differ (read_committed, fault-free, DuckDB, read_uncommitted rows; extra, missing; fault-free extra, missing; foreign uncommitted) = %v", r)
	}
	if r[3] == r[0] {
		t.Fatalf("read_uncommitted sees %s rows, as many as read_committed: no kill left an aborted transaction, so the test did not exercise transactions", r[3])
	}
	t.Logf("exactly-once Kafka crash test passed: seed %d, runs by end %v, %d runs, %v", seed, counts, crash.runs, time.Since(began).Round(time.Second))
}
