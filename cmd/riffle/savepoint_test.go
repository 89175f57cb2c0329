package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/riffle-dev/riffle/checkpoint"
	"github.com/riffle-dev/riffle/internal/kafkatest"
	"github.com/riffle-dev/riffle/internal/oracle"
)

func TestRunCheckpointFlagErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "--from", "sp", "job.yaml"}, "--from needs --checkpoint-dir"},
		{[]string{"run", "--retain", "5", "job.yaml"}, "--retain needs --checkpoint-dir"},
		{[]string{"run", "--checkpoint-interval", "1s", "job.yaml"}, "--checkpoint-interval needs --checkpoint-dir"},
		{[]string{"gen", "--metrics-addr", ":0", "x.parquet"}, "flag provided but not defined: -metrics-addr"},
		{[]string{"produce", "--metrics-addr", ":0", "x.parquet"}, "flag provided but not defined: -metrics-addr"},
		{[]string{"savepoint", "--progress", "never", "--addr", "x"}, "flag provided but not defined: -progress"},
		{[]string{"backfill", "--brokers", "h:9092", "../../testdata/item-stats.yaml"}, "--brokers: the job reads and writes no Kafka topic"},
		{[]string{"run", "--embedded-kafka", "events", "../../testdata/item-stats.yaml"}, "--embedded-kafka: the job reads and writes no Kafka topic"},
		{[]string{"run", "--checkpoint-dir", "ck", "--checkpoint-interval", "0s", "job.yaml"}, "--checkpoint-interval 0s: must be positive"},
		{[]string{"run", "--checkpoint-dir", "ck", "--retain", "0", "job.yaml"}, "--retain 0: must be at least 1"},
		{[]string{"savepoint", "--dir", "sp"}, "--addr is required"},
		{[]string{"savepoint", "--addr", "127.0.0.1:1"}, "--dir is required"},
	} {
		code, _, errOut := runCLI(t, c.args...)
		if code != exitUsage || !strings.Contains(errOut, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d and %q", c.args, code, errOut, exitUsage, c.want)
		}
	}
}

// TestCheckpointedAggregate: an aggregate step keeps its groups in the
// checkpoints. A continuous run stopped with a savepoint emits nothing (its
// input was suspended, not ended: the groups stay in the savepoint); more
// messages arrive; a bounded run of the same topic resumes from the
// savepoint, drains the topic and emits the totals, which equal DuckDB's
// over everything produced.
func TestCheckpointedAggregate(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	oracle.Python(t)
	dir := t.TempDir()
	input := filepath.Join(dir, "events.parquet")
	if code, _, errOut := runCLI(t, "gen", "--rows", "6000", "--seed", "8", "--items", "200", "--progress", "never", input); code != exitOK {
		t.Fatal(errOut)
	}
	topic := kafkatest.CreateTopic(t, brokers, "ckagg", 3)
	produce := func(limit string) {
		t.Helper()
		if code, _, errOut := runCLI(t, "produce", "--brokers", brokers, "--topic", topic, "--key", "user_id",
			"--progress", "never", "--limit", limit, input); code != exitOK {
			t.Fatal(errOut)
		}
	}
	produce("4000")
	out := filepath.Join(dir, "out")
	writeJob := func(name string, bounded bool) string {
		yml := fmt.Sprintf(`name: %s
parallelism: 2
source:
  kafka:
    brokers: %s
    topic: %s
    start: earliest
    bounded: %v
    max_batch_delay: 50ms
    fields:
      - {name: item_id, type: int64, required: true}
      - {name: event_type, type: string, required: true}
      - {name: weight, type: float64, required: true}
steps:
  - filter: "event_type != 'view'"
  - aggregate: {group_by: [item_id], aggs: ["count(*) AS n", "sum(weight) AS w", "max(weight) AS top"]}
sink:
  file: {path: %s, format: parquet}
`, name, brokers, topic, bounded, out)
		p := filepath.Join(dir, name+".yaml")
		if err := os.WriteFile(p, []byte(yml), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ck := filepath.Join(dir, "ck")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	done := make(chan string, 1)
	go func() {
		code, _, errOut := runCLI(t, "run", "--checkpoint-dir", ck, "--checkpoint-interval", "100ms", "--admin-addr", addr,
			"--progress", "never", writeJob("live", false))
		if code != exitOK {
			t.Errorf("run: exit %d\n%s", code, errOut)
		}
		done <- errOut
	}()
	// Wait until the job has read all 4000 messages into its state (the
	// rows its source emitted, not a number of checkpoints assumed to
	// take long enough) and completed a checkpoint.
	deadline := time.Now().Add(2 * time.Minute)
	for {
		st, err := getStatus(addr)
		if err == nil && st.RowsIn >= 4000 && st.Completed > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the job did not read 4000 rows and complete a checkpoint within 2 minutes: %+v, %v", st, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	sp := filepath.Join(dir, "sp")
	if code, _, errOut := runCLI(t, "savepoint", "--addr", addr, "--dir", sp, "--stop"); code != exitOK {
		t.Fatalf("savepoint --stop: exit %d\n%s", code, errOut)
	}
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the job did not stop")
	}
	if fs, _ := filepath.Glob(filepath.Join(out, "*.parquet")); len(fs) != 0 {
		t.Fatalf("the stopped run published %v: an aggregate over suspended input has no result yet", fs)
	}
	produce("6000") // the topic now holds rows 0..3999, then 0..5999
	code, _, errOut := runCLI(t, "run", "--checkpoint-dir", ck, "--from", sp, "--progress", "never", writeJob("drain", true))
	if code != exitOK {
		t.Fatalf("bounded resume: exit %d\n%s", code, errOut)
	}
	if strings.Contains(errOut, "the sources differ") {
		t.Fatalf("bounded: true changed the source's identity:\n%s", errOut)
	}
	// The job has no event time: its watermark reads "none" everywhere.
	if strings.Contains(errOut, "-9223372036854775808") || !strings.Contains(errOut, "watermark=none") {
		t.Fatalf("a watermark printed as a number, not a time or none:\n%s", errOut)
	}
	q := fmt.Sprintf(`CREATE VIEW input AS (SELECT * FROM (SELECT * FROM read_parquet('%[1]s') LIMIT 4000)) UNION ALL (SELECT * FROM read_parquet('%[1]s'));
CREATE VIEW want AS SELECT item_id, count(*) AS n, round(sum(weight), 6) AS w, max(weight) AS top FROM input WHERE event_type != 'view' GROUP BY ALL;
CREATE VIEW got AS SELECT item_id, n, round(w, 6) AS w, top FROM read_parquet('%[2]s/*.parquet');
SELECT (SELECT count(*) FROM got), (SELECT count(*) FROM want),
       (SELECT count(*) FROM (SELECT * FROM got EXCEPT ALL SELECT * FROM want)),
       (SELECT count(*) FROM (SELECT * FROM want EXCEPT ALL SELECT * FROM got))`, input, out)
	res := oracle.DuckDB(t, q).Strings()
	if len(res) != 1 || res[0][0] != res[0][1] || res[0][2] != "0" || res[0][3] != "0" {
		t.Fatalf("groups got, want, extra, missing = %v", res)
	}
	t.Logf("groups: %s", res[0][0])
}

func TestAdminEndpointErrors(t *testing.T) {
	a, err := startAdmin("127.0.0.1:0", "", slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close(false)
	post := func(query string) (int, savepointResponse) {
		resp, err := http.Post("http://"+a.addr+"/savepoint?"+query, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var r savepointResponse
		if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, r
	}
	abs := filepath.Join(t.TempDir(), "sp")
	for _, c := range []struct {
		query string
		code  int
		want  string
	}{
		{"stop=maybe", http.StatusBadRequest, `stop="maybe"`},
		{"", http.StatusBadRequest, "dir is required"},
		{"dir=rel/sp", http.StatusBadRequest, "want an absolute path"},
		{"dir=" + abs, http.StatusServiceUnavailable, "not started"},
	} {
		if code, r := post(c.query); code != c.code || !strings.Contains(r.Error, c.want) {
			t.Errorf("POST /savepoint?%s: %d %q, want %d %q", c.query, code, r.Error, c.code, c.want)
		}
	}
	if _, err := requestSavepoint(context.Background(), a.addr, abs, false, ""); err == nil || !strings.Contains(err.Error(), "503") {
		t.Errorf("requestSavepoint before the job started: %v", err)
	}
	resp, err := http.Get("http://" + a.addr + "/status")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st adminStatus
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil || st.Running {
		t.Fatalf("status: %+v, %v", st, err)
	}
}

// TestSavepointStopAndResume: a checkpointed job takes a savepoint on
// request, stops with another one, and a run started --from it resumes at
// its positions and state.
func TestSavepointStopAndResume(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	dir := t.TempDir()
	input := filepath.Join(dir, "events.parquet")
	if code, _, errOut := runCLI(t, "gen", "--rows", "5000", "--seed", "5", "--progress", "never", input); code != exitOK {
		t.Fatal(errOut)
	}
	topic := kafkatest.CreateTopic(t, brokers, "savepoint", 2)
	if code, _, errOut := runCLI(t, "produce", "--brokers", brokers, "--topic", topic, "--key", "user_id", "--timestamp", "event_time",
		"--progress", "never", input); code != exitOK {
		t.Fatal(errOut)
	}
	jobFile := filepath.Join(dir, "job.yaml")
	yml := fmt.Sprintf(`name: savepoints
parallelism: 2
source:
  kafka:
    brokers: %s
    topic: %s
    start: earliest
    max_batch_delay: 50ms
    fields:
      - {name: item_id, type: int64, required: true}
      - {name: weight, type: float64, required: true}
      - {name: event_time, type: timestamp, required: true}
  watermark: {column: event_time, max_out_of_orderness: 10s}
steps:
  - window: {type: tumbling, size: 1h, key: [item_id], time: event_time, aggs: ["count(*) AS n", "sum(weight) AS w"]}
sink:
  file: {path: %s, format: parquet}
`, brokers, topic, filepath.Join(dir, "out"))
	if err := os.WriteFile(jobFile, []byte(yml), 0o644); err != nil {
		t.Fatal(err)
	}
	ck := filepath.Join(dir, "ck")
	runJob := func(extra ...string) (addr string, done chan string) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr = ln.Addr().String()
		ln.Close()
		done = make(chan string, 1)
		args := append([]string{"run", "--checkpoint-dir", ck, "--checkpoint-interval", "200ms", "--admin-addr", addr, "--progress", "never"}, extra...)
		go func() {
			code, _, errOut := runCLI(t, append(args, jobFile)...)
			if code != exitOK {
				t.Errorf("run %v: exit %d\n%s", extra, code, errOut)
			}
			done <- errOut
		}()
		deadline := time.Now().Add(30 * time.Second)
		for {
			resp, err := http.Get("http://" + addr + "/status")
			if err == nil {
				var st adminStatus
				json.NewDecoder(resp.Body).Decode(&st)
				resp.Body.Close()
				if st.Completed > 0 {
					return addr, done
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("the job did not complete a checkpoint within 30s (admin %s: %v)", addr, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	addr, done := runJob()
	sp1 := filepath.Join(dir, "sp1")
	if code, out, errOut := runCLI(t, "savepoint", "--addr", addr, "--dir", sp1); code != exitOK || strings.TrimSpace(out) != sp1 {
		t.Fatalf("savepoint: exit %d, out %q, stderr %s", code, out, errOut)
	}
	if st, err := getStatus(addr); err != nil || st.Savepoints != 1 || !st.Checkpointed || st.Completed < 2 || st.Job == "" {
		t.Fatalf("status after a savepoint: %+v, %v", st, err)
	}
	sp2 := filepath.Join(dir, "sp2")
	if code, out, errOut := runCLI(t, "savepoint", "--addr", addr, "--dir", sp2, "--stop"); code != exitOK || strings.TrimSpace(out) != sp2 {
		t.Fatalf("savepoint --stop: exit %d, out %q, stderr %s", code, out, errOut)
	}
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the job did not stop after savepoint --stop")
	}
	for _, sp := range []string{sp1, sp2} {
		c, err := checkpoint.Load(sp)
		if err != nil || !c.Manifest.Savepoint {
			t.Fatalf("%s: %v (savepoint %v)", sp, err, c != nil && c.Manifest.Savepoint)
		}
	}
	addr, done = runJob("--from", sp2)
	if code, _, errOut := runCLI(t, "savepoint", "--addr", addr, "--stop"); code != exitOK {
		t.Fatalf("savepoint --stop without --dir: exit %d, stderr %s", code, errOut)
	}
	var log string
	select {
	case log = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the resumed job did not stop")
	}
	if !strings.Contains(log, "resuming from checkpoint") || !strings.Contains(log, "checkpoint="+sp2) {
		t.Fatalf("the second run did not resume from %s:\n%s", sp2, log)
	}
}
