package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/checkpoint"
	"github.com/riffle-dev/riffle/internal/kafkatest"
	"github.com/riffle-dev/riffle/internal/oracle"
)

// TestBackfillSavepointThenStream: one windowed job over two halves of the
// data, files then a topic. The backfill over the files ends with a
// savepoint (riffle backfill --savepoint) holding the windows still open
// and the watermark; the Kafka job (same steps and sink, another source,
// another parallelism) continues from it. The two runs' output together
// equals DuckDB's windows over all the events: the hour straddling the
// handover is one row, counted from both halves, so the state carried
// over; nothing fired twice, nothing was lost. The window state is in
// Pebble, so the savepoint holds it as snapshot files.
func TestBackfillSavepointThenStream(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	oracle.Python(t)
	dir := t.TempDir()
	// Files: 2025-01-01 00:00 to 2025-01-02 00:30; topic: 2025-01-02
	// 00:30 to 12:30. The hour 2025-01-02 00:00-01:00 has events in both.
	files := filepath.Join(dir, "files.parquet")
	stream := filepath.Join(dir, "stream.parquet")
	for _, g := range []struct{ out, rows, seed, start, span string }{
		{files, "20000", "21", "2025-01-01T00:00:00Z", "24h30m"},
		{stream, "8000", "22", "2025-01-02T00:30:00Z", "12h"},
	} {
		if code, _, errOut := runCLI(t, "gen", "--rows", g.rows, "--seed", g.seed, "--items", "300", "--users", "500",
			"--start", g.start, "--span", g.span, "--progress", "never", g.out); code != exitOK {
			t.Fatal(errOut)
		}
	}
	topic := kafkatest.CreateTopic(t, brokers, "handover", 3)
	if code, _, errOut := runCLI(t, "produce", "--brokers", brokers, "--topic", topic, "--key", "user_id", "--timestamp", "event_time",
		"--progress", "never", stream); code != exitOK {
		t.Fatal(errOut)
	}
	out := filepath.Join(dir, "out")
	// Window state in Pebble: the savepoint holds it as files in the
	// subtasks' directories, restored at another parallelism.
	pebbleDir := filepath.Join(dir, "pebble")
	const rest = `  watermark: {column: event_time, max_out_of_orderness: 10s}
steps:
  - window: {type: tumbling, size: 1h, key: [item_id], time: event_time, aggs: ["count(*) AS n", "sum(weight) AS w"],
      state: {backend: pebble, dir: %s}}
sink:
  file: {path: %s, format: parquet}
`
	backfill := filepath.Join(dir, "backfill.yaml")
	if err := os.WriteFile(backfill, []byte(fmt.Sprintf(`name: item-hours-backfill
parallelism: 2
source:
  parquet: {path: %s}
`+rest, files, pebbleDir, out)), 0o644); err != nil {
		t.Fatal(err)
	}
	live := filepath.Join(dir, "live.yaml")
	if err := os.WriteFile(live, []byte(fmt.Sprintf(`name: item-hours-live
parallelism: 3
source:
  kafka:
    brokers: %s
    topic: %s
    start: earliest
    bounded: true
    max_batch_delay: 50ms
    fields:
      - {name: item_id, type: int64, required: true}
      - {name: weight, type: float64, required: true}
      - {name: event_time, type: timestamp, required: true}
`+rest, brokers, topic, pebbleDir, out)), 0o644); err != nil {
		t.Fatal(err)
	}

	sp := filepath.Join(dir, "savepoints", "sp") // the parent does not exist yet
	code, stdout, errOut := runCLI(t, "backfill", "--progress", "never", "--savepoint", sp, backfill)
	if code != exitOK || strings.TrimSpace(stdout) != "savepoint: "+sp {
		t.Fatalf("backfill --savepoint: exit %d, stdout %q\n%s", code, stdout, errOut)
	}
	c, err := checkpoint.Load(sp)
	if err != nil {
		t.Fatal(err)
	}
	for _, nm := range c.Manifest.Nodes {
		if !strings.HasPrefix(nm.Name, "window") {
			continue
		}
		for _, sm := range nm.Subtasks {
			if !sm.SnapshotFiles {
				t.Fatalf("savepoint: %s/%d holds no snapshot files (Pebble window state)", nm.Name, sm.Subtask)
			}
		}
	}
	handover := time.Date(2025, 1, 2, 0, 30, 0, 0, time.UTC).UnixMilli()
	if wm := c.Manifest.Watermark; wm == arrowexec.MinWatermark || wm >= handover || wm < handover-time.Hour.Milliseconds() {
		t.Fatalf("savepoint watermark %s: want the files' end minus the bound, not %s", checkpoint.FormatWatermark(wm), checkpoint.FormatWatermark(handover))
	}
	count := func() int {
		fs, _ := filepath.Glob(filepath.Join(out, "*.parquet"))
		if len(fs) == 0 {
			return 0
		}
		return atoi(t, oracle.DuckDB(t, fmt.Sprintf("SELECT count(*) FROM read_parquet('%s/*.parquet')", out)).Strings()[0][0])
	}
	afterBackfill := count()
	if afterBackfill == 0 {
		t.Fatal("the backfill published no window")
	}
	// The windows of the hour of the handover are not out yet.
	if n := atoi(t, oracle.DuckDB(t, fmt.Sprintf("SELECT count(*) FROM read_parquet('%s/*.parquet') WHERE window_end > TIMESTAMPTZ '2025-01-02 00:00:00+00'", out)).Strings()[0][0]); n != 0 {
		t.Fatalf("the backfill fired %d windows ending after the last hour it completed", n)
	}

	code, _, errOut = runCLI(t, "run", "--progress", "never", "--checkpoint-dir", filepath.Join(dir, "ck"), "--checkpoint-interval", "300ms", "--from", sp, live)
	if code != exitOK {
		t.Fatalf("run --from the backfill's savepoint: exit %d\n%s", code, errOut)
	}
	if !strings.Contains(errOut, "the sources differ from the checkpoint's") {
		t.Fatalf("the stream job did not say its source starts afresh:\n%s", errOut)
	}
	q := fmt.Sprintf(`CREATE VIEW got AS SELECT item_id, epoch_ms(window_start) AS ws, n, round(w, 6) AS w FROM read_parquet('%s/*.parquet');
CREATE VIEW want AS SELECT item_id, epoch_ms(event_time) // 3600000 * 3600000 AS ws, count(*) AS n, round(sum(weight), 6) AS w
  FROM read_parquet(['%s', '%s']) GROUP BY ALL;
SELECT (SELECT count(*) FROM got), (SELECT count(*) FROM want),
       (SELECT count(*) FROM (SELECT * FROM got EXCEPT ALL SELECT * FROM want)),
       (SELECT count(*) FROM (SELECT * FROM want EXCEPT ALL SELECT * FROM got)),
       (SELECT count(*) FROM want WHERE ws = epoch_ms(TIMESTAMPTZ '2025-01-02 00:00:00+00'))`, out, files, stream)
	res := oracle.DuckDB(t, q).Strings()
	if len(res) != 1 || res[0][0] != res[0][1] || res[0][2] != "0" || res[0][3] != "0" {
		t.Fatalf("windows got, want, extra, missing = %v", res)
	}
	if res[0][4] == "0" {
		t.Fatal("no window straddles the handover: the test shows nothing")
	}
	t.Logf("windows: %s (backfill %d, straddling the handover %s)", res[0][0], afterBackfill, res[0][4])
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	var n int
	if _, err := fmt.Sscan(s, &n); err != nil {
		t.Fatalf("not a number: %q", s)
	}
	return n
}

// TestBackfillSavepointShortInput: a backfill over one small file (one row
// group, so one of the two source subtasks reads nothing and is idle, and
// the filter behind it too) that ends in a few milliseconds, before any
// checkpoint. The windows the files complete are published, and the
// savepoint carries the files' watermark (largest event time minus the
// bound, minus one), both checked against DuckDB over the input. Before
// idleness travelled through operators, the idle filter subtask held every
// window back: rows_out=0, no file, no watermark in the savepoint.
func TestBackfillSavepointShortInput(t *testing.T) {
	oracle.Python(t)
	dir := t.TempDir()
	in := filepath.Join(dir, "events.parquet")
	if code, _, errOut := runCLI(t, "gen", "--rows", "3000", "--seed", "5", "--items", "40", "--span", "6h", "--progress", "never", in); code != exitOK {
		t.Fatal(errOut)
	}
	out := filepath.Join(dir, "out")
	jobFile := filepath.Join(dir, "backfill.yaml")
	if err := os.WriteFile(jobFile, []byte(fmt.Sprintf(`name: short-backfill
parallelism: 2
source:
  parquet: {path: %s}
  watermark: {column: event_time, max_out_of_orderness: 10s}
steps:
  - filter: "event_type != 'view'"
  - window: {type: tumbling, size: 1h, key: [item_id], time: event_time, aggs: ["count(*) AS n", "sum(weight) AS w"]}
sink:
  file: {path: %s, format: parquet}
`, in, out)), 0o644); err != nil {
		t.Fatal(err)
	}
	sp := filepath.Join(dir, "sp")
	code, stdout, errOut := runCLI(t, "backfill", "--progress", "never", "--savepoint", sp, jobFile)
	if code != exitOK || strings.TrimSpace(stdout) != "savepoint: "+sp {
		t.Fatalf("backfill --savepoint: exit %d, stdout %q\n%s", code, stdout, errOut)
	}
	c, err := checkpoint.Load(sp)
	if err != nil {
		t.Fatal(err)
	}
	wantWM := atoi(t, oracle.DuckDB(t, fmt.Sprintf("SELECT epoch_ms(max(event_time)) - 10000 - 1 FROM read_parquet('%s')", in)).Strings()[0][0])
	if c.Manifest.Watermark != int64(wantWM) {
		t.Fatalf("savepoint watermark %s, want %s", checkpoint.FormatWatermark(c.Manifest.Watermark), checkpoint.FormatWatermark(int64(wantWM)))
	}
	files, _ := filepath.Glob(filepath.Join(out, "*.parquet"))
	if len(files) == 0 {
		t.Fatalf("no file published in %s\n%s", out, errOut)
	}
	q := fmt.Sprintf(`CREATE VIEW got AS SELECT item_id, epoch_ms(window_start) AS ws, n, round(w, 6) AS w FROM read_parquet('%s/*.parquet');
CREATE VIEW want AS SELECT * FROM (SELECT item_id, epoch_ms(event_time) // 3600000 * 3600000 AS ws, count(*) AS n, round(sum(weight), 6) AS w
  FROM read_parquet('%s') WHERE event_type != 'view' GROUP BY ALL) WHERE ws + 3600000 - 1 <= %d;
SELECT (SELECT count(*) FROM got), (SELECT count(*) FROM want),
       (SELECT count(*) FROM (SELECT * FROM got EXCEPT ALL SELECT * FROM want)),
       (SELECT count(*) FROM (SELECT * FROM want EXCEPT ALL SELECT * FROM got))`, out, in, wantWM)
	res := oracle.DuckDB(t, q).Strings()
	if len(res) != 1 || res[0][0] != res[0][1] || res[0][2] != "0" || res[0][3] != "0" || res[0][0] == "0" {
		t.Fatalf("windows got, want, extra, missing = %v", res)
	}
	if !strings.Contains(errOut, "rows_out="+res[0][0]) {
		t.Fatalf("the summary does not report the %s rows published:\n%s", res[0][0], errOut)
	}
}
