package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/riffle-dev/riffle/internal/kafkatest"
	"github.com/riffle-dev/riffle/internal/oracle"
	ksink "github.com/riffle-dev/riffle/sinks/kafka"
	"github.com/riffle-dev/riffle/sources/parquet"
)

// TestGracefulStopLosesNothing: a continuous job reads a topic while more
// messages arrive; SIGINT stops it gracefully (its output published, its
// positions committed to the group); a second, bounded run resumes from the
// committed offsets. Together the two outputs hold every produced row
// exactly once (DuckDB EXCEPT ALL both ways against the input).
func TestGracefulStopLosesNothing(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	oracle.Python(t)
	dir := t.TempDir()
	input := filepath.Join(dir, "events.parquet")
	if code, _, errOut := runCLI(t, "gen", "--rows", "40000", "--seed", "11", "--progress", "never", input); code != exitOK {
		t.Fatal(errOut)
	}
	topic := kafkatest.CreateTopic(t, brokers, "graceful", 3)
	group := kafkatest.UniqueName("group")
	produce := func(limit, rate string) {
		if code, _, errOut := runCLI(t, "produce", "--brokers", brokers, "--topic", topic, "--key", "user_id", "--timestamp", "event_time",
			"--progress", "never", "--limit", limit, "--rate", rate, input); code != exitOK {
			t.Error(errOut)
		}
	}
	writeJob := func(name string, bounded bool, out string) string {
		yml := fmt.Sprintf(`name: %s
source:
  kafka:
    brokers: %s
    topic: %s
    group_id: %s
    start: committed
    bounded: %v
    max_batch_delay: 50ms
    fields:
      - {name: user_id, type: int64, required: true}
      - {name: item_id, type: int64, required: true}
      - {name: event_type, type: string, required: true}
      - {name: weight, type: float64, required: true}
      - {name: event_time, type: timestamp, required: true}
sink:
  file: {path: %s, format: parquet}
`, name, brokers, topic, group, bounded, out)
		p := filepath.Join(dir, name+".yaml")
		if err := os.WriteFile(p, []byte(yml), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	produce("20000", "0")
	out1, out2 := filepath.Join(dir, "out1"), filepath.Join(dir, "out2")
	admin := freeAddr(t)
	done, stderr := startCLI(t, "run", "--progress", "never", "--admin-addr", admin, writeJob("live", false, out1))
	// More messages arrive while the job runs, and after it stopped: the
	// whole file again (so the topic holds rows 0..19999 twice), at a rate
	// that outlasts the stop.
	produced := make(chan struct{})
	go func() {
		// Through the library: the CLI's produce would take the SIGINT too.
		defer close(produced)
		src, err := parquet.New(parquet.Options{Paths: []string{input}})
		if err != nil {
			t.Error(err)
			return
		}
		if _, err := ksink.Produce(context.Background(), ksink.ProduceOptions{Brokers: []string{brokers}, Topic: topic, Rate: 20000,
			KeyColumn: "user_id", TimestampColumn: "event_time"}, src.Batches(context.Background(), nil, 0)); err != nil {
			t.Error(err)
		}
	}()
	// Stop once the job has read the first 20000 rows (the stop then
	// splits the stream: some output before it, the rest after).
	waitFor(t, "the first 20000 rows read", done, stderr, func() bool {
		var g apiGraph
		return apiCall(t, "GET", "http://"+admin+"/api/graph", "", "", "", &g) == 200 && len(g.Nodes) > 0 && g.Nodes[0].RowsOut >= 20000
	})
	// Keep a handler of our own installed, so a SIGINT that arrives after
	// run returned can never take the test binary down.
	guard := make(chan os.Signal, 1)
	signal.Notify(guard, syscall.SIGINT)
	defer signal.Stop(guard)
	if err := syscall.Kill(os.Getpid(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-done:
		if code != exitOK {
			t.Fatalf("run: exit %d: %s", code, stderr)
		}
	case <-time.After(time.Minute):
		t.Fatal("run did not stop after SIGINT")
	}
	<-produced
	if code, _, errOut := runCLI(t, "backfill", "--progress", "never", writeJob("rest", true, out2)); code != exitOK {
		t.Fatalf("bounded resume: exit %d: %s", code, errOut)
	}
	// The topic holds rows 0..19999, then rows 0..39999.
	var files []string
	for _, d := range []string{out1, out2} {
		fs, _ := filepath.Glob(filepath.Join(d, "*.parquet"))
		if len(fs) == 0 {
			t.Fatalf("no output in %s: the stop did not split the stream", d)
		}
		for _, f := range fs {
			files = append(files, "'"+f+"'")
		}
	}
	q := fmt.Sprintf(`CREATE VIEW got AS SELECT * FROM read_parquet([%[1]s]);
CREATE VIEW want AS (SELECT * FROM (SELECT * FROM read_parquet('%[3]s') LIMIT 20000)) UNION ALL (SELECT * FROM read_parquet('%[3]s'));
SELECT (SELECT count(*) FROM got), (SELECT count(*) FROM want),
       (SELECT count(*) FROM (SELECT * FROM got EXCEPT ALL SELECT * FROM want)),
       (SELECT count(*) FROM (SELECT * FROM want EXCEPT ALL SELECT * FROM got))`, strings.Join(files, ", "), "", input)
	res := oracle.DuckDB(t, q).Strings()
	if len(res) != 1 || res[0][0] != res[0][1] || res[0][2] != "0" || res[0][3] != "0" {
		t.Fatalf("got/want rows, extra, missing = %v", res)
	}
	t.Logf("rows: %v", res[0])
}
