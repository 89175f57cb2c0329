package crashtest

import (
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

// aggJobYAML is the aggregate crash test's job: %v is the bounded flag
// (false while it is killed, true for the last run that drains the topic).
const aggJobYAML = `# The aggregate crash test's job (internal/crashtest).
name: crash-aggregate
parallelism: 2
source:
  kafka:
    brokers: %s
    topic: %s
    start: earliest
    bounded: %v
    max_batch_rows: 1000
    max_batch_delay: 50ms
    fields:
      - {name: item_id, type: int64, required: true}
      - {name: weight, type: float64, required: true}
steps:
  - filter: "item_id >= 0"
  - aggregate: {group_by: [item_id], aggs: ["count(*) AS events", "sum(weight) AS total", "max(weight) AS top"]}
sink:
  file: {path: out, format: parquet}
`

// aggKills is the number of SIGKILLs of the aggregate job (fewer than the
// window job's: the aggregate's state is the same at every moment of a
// run, what varies is where the kill falls in the checkpoint protocol).
const aggKills = 10

// TestCrashRecoveryAggregate: the crash test for the hash aggregate's
// checkpointed state. A continuous aggregate over the topic (filter,
// partial aggregate, hash exchange, final aggregate) is SIGKILLed at random
// moments (a delay, while a checkpoint is written, right after one is
// committed) and restarted at parallelism 1 to 3, sometimes stopped with
// SIGTERM (a final checkpoint: the aggregate emits nothing then, its input
// was only suspended, and nothing may be published). Once the data is in,
// a last run of the same job with bounded: true resumes from the newest
// checkpoint, drains the topic and emits the totals, which must equal
// DuckDB's over the input exactly.
func TestCrashRecoveryAggregate(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test: skipped with -short")
	}
	brokers := kafkatest.Brokers(t)
	oracle.Python(t)
	seed := crashSeed(t)
	t.Logf("crash seed %d (replay with %s=%d), %d kills", seed, envSeed, seed, aggKills)
	rng := rand.New(rand.NewPCG(seed, 0x61676772))

	dir, bin, input, topic := prepare(t, brokers, 9, "crashagg")
	jobFile := func(name string, bounded bool) string {
		p := filepath.Join(dir, name+".yaml")
		if err := os.WriteFile(p, fmt.Appendf(nil, aggJobYAML, brokers, topic, bounded), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	produced := make(chan error, 1)
	go func() { produced <- produce(brokers, topic, input) }()

	crash := newRunner(t, bin, jobFile("live", false), filepath.Join(dir, "crash"))
	crash.modes = killPublished // nothing is published while it runs
	counts := map[killMode]int{}
	for done := 0; done < aggKills; {
		var m killMode
		if rng.IntN(5) == 0 {
			m = crash.stopOnce(rng)
		} else {
			m = crash.killOnce(rng)
			done++
		}
		counts[m]++
		if fs, _ := filepath.Glob(filepath.Join(crash.out, "*.parquet")); len(fs) != 0 {
			crash.failf("run %d (%s) published %v before the input ended", crash.runs, m, fs)
		}
		t.Logf("run %2d (parallelism %d): %s", crash.runs, crash.lastPar, m)
	}
	if err := <-produced; err != nil {
		t.Fatal(err)
	}
	sentinels(t, brokers, topic) // filtered out by the job
	endOffsets(t, brokers, topic)

	crash.job = jobFile("drain", true)
	p := crash.start(1 + rng.IntN(3))
	select {
	case err := <-p.done:
		if err != nil {
			crash.failf("the draining run: %v", err)
		}
	case <-time.After(finishTimeout):
		crash.failf("the draining run did not end within %v", finishTimeout)
	}
	if log, _ := os.ReadFile(crash.lastLog); !strings.Contains(string(log), "resuming from checkpoint") {
		crash.failf("the draining run did not resume from a checkpoint")
	}
	q := fmt.Sprintf(`CREATE VIEW got AS SELECT item_id, events, round(total, 6) AS total, top FROM read_parquet('%s/*.parquet');
CREATE VIEW truth AS SELECT item_id, count(*) AS events, round(sum(weight), 6) AS total, max(weight) AS top FROM read_parquet('%s') GROUP BY item_id;
SELECT (SELECT count(*) FROM got), (SELECT count(*) FROM truth),
       (SELECT count(*) FROM (SELECT * FROM got EXCEPT ALL SELECT * FROM truth)),
       (SELECT count(*) FROM (SELECT * FROM truth EXCEPT ALL SELECT * FROM got))`, crash.out, input)
	res := oracle.DuckDB(t, q).Strings()
	if len(res) != 1 || res[0][0] != res[0][1] || res[0][2] != "0" || res[0][3] != "0" {
		t.Fatalf("groups got, want, extra, missing = %v", res)
	}
	t.Logf("aggregate crash test passed: seed %d, runs by end %v, %s groups", seed, counts, res[0][0])
}
