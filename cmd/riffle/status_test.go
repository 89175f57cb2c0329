package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/riffle-dev/riffle/internal/embedkafka"
	"github.com/riffle-dev/riffle/internal/kafkatest"
	"github.com/riffle-dev/riffle/internal/oracle"
)

// syncBuffer is a bytes.Buffer safe for one writer and concurrent readers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startCLI runs the CLI in the background; the returned channel delivers
// its exit code, stderr is readable while it runs.
func startCLI(t *testing.T, args ...string) (<-chan int, *syncBuffer) {
	t.Helper()
	var out, errb syncBuffer
	done := make(chan int, 1)
	go func() { done <- run(args, &out, &errb) }()
	return done, &errb
}

// interrupt sends this process a SIGINT, as a user's ^C, with a handler of
// the test's own installed so one arriving after the command returned
// cannot end the test binary.
func interrupt(t *testing.T) {
	t.Helper()
	guard := make(chan os.Signal, 1)
	signal.Notify(guard, syscall.SIGINT)
	t.Cleanup(func() { signal.Stop(guard) })
	if err := syscall.Kill(os.Getpid(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
}

// freeAddr returns a loopback address nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// waitFor polls cond (each call is an observation of the running job)
// until it holds, failing the test after a minute or when the command
// ended.
func waitFor(t *testing.T, what string, done <-chan int, stderr *syncBuffer, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		select {
		case code := <-done:
			t.Fatalf("waiting for %s: the command ended with %d\n%s", what, code, stderr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: not within a minute\n%s", what, stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func getStatus(addr string) (adminStatus, error) {
	var st adminStatus
	resp, err := http.Get("http://" + addr + "/status")
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

// TestRunStatusAndProgress: a continuous job without checkpoints, over an
// embedded broker holding generated events and one bad message. GET
// /status reports what it read (rows, dead letters, watermark, partitions
// per source subtask) with no checkpoint directory; a savepoint request is
// refused in words; the progress line says the same; after ^C the summary
// counts the dead letter and the parts on disk. The dead-letter file's
// directory does not exist beforehand.
func TestRunStatusAndProgress(t *testing.T) {
	oracle.Python(t)
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	brokers, stopBroker, err := embedkafka.Start(ctx, map[string]int{"events": 2})
	if err != nil {
		t.Fatal(err)
	}
	defer stopBroker()
	input := filepath.Join(dir, "events.parquet")
	if code, _, errOut := runCLI(t, "gen", "--rows", "3000", "--seed", "4", "--items", "50", "--progress", "never", input); code != exitOK {
		t.Fatal(errOut)
	}
	if code, _, errOut := runCLI(t, "produce", "--brokers", brokers, "--topic", "events", "--key", "user_id", "--timestamp", "event_time",
		"--progress", "never", input); code != exitOK {
		t.Fatal(errOut)
	}
	kafkatest.Produce(t, brokers, "events", []kafkago.Message{{Partition: 1, Value: []byte(`{"not json`)}})
	out := filepath.Join(dir, "out")
	deadLetters := filepath.Join(dir, "bad", "dead-letters.jsonl")
	jobFile := filepath.Join(dir, "job.yaml")
	if err := os.WriteFile(jobFile, []byte(fmt.Sprintf(`name: status
parallelism: 2
source:
  kafka:
    brokers: %s
    topic: events
    start: earliest
    max_batch_delay: 50ms
    on_error: dead-letter
    dead_letter_path: %s
    fields:
      - {name: item_id, type: int64, required: true}
      - {name: event_time, type: timestamp, required: true}
  watermark: {column: event_time, max_out_of_orderness: 5s}
steps:
  - window: {type: tumbling, size: 1h, key: [item_id], time: event_time, aggs: ["count(*) AS n"]}
sink:
  file: {path: %s, format: parquet}
`, brokers, deadLetters, out)), 0o644); err != nil {
		t.Fatal(err)
	}
	admin := freeAddr(t)
	done, stderr := startCLI(t, "run", "--admin-addr", admin, "--progress-interval", "50ms", "--log-format", "json", jobFile)
	var st adminStatus
	waitFor(t, "the job to read every message", done, stderr, func() bool {
		st, err = getStatus(admin)
		return err == nil && st.RowsIn == 3000 && st.DeadLetters == 1 && st.WatermarkMS != nil
	})
	if !st.Running || st.Checkpointed || st.Job != "status" || len(st.Sources) != 2 || st.WatermarkMS == nil {
		t.Fatalf("status: %+v", st)
	}
	var parts []string
	var rows int64
	for _, sp := range st.Sources {
		parts = append(parts, sp.Partitions...)
		rows += sp.Rows
	}
	slices.Sort(parts)
	if !slices.Equal(parts, []string{"events/0", "events/1"}) || rows != 3000 {
		t.Fatalf("source subtasks read %v, %d rows", parts, rows)
	}
	// The watermark is the smaller of the partitions' largest event time
	// minus 5s minus 1ms: at most the overall one, at least the smallest
	// event time minus the bound.
	r := oracle.DuckDB(t, fmt.Sprintf("SELECT epoch_ms(min(event_time)), epoch_ms(max(event_time)) FROM read_parquet('%s')", input)).Strings()[0]
	lo, hi := int64(atoi(t, r[0]))-5000-1, int64(atoi(t, r[1]))-5000-1
	if wm := *st.WatermarkMS; wm < lo || wm > hi || !strings.Contains(st.Watermark, time.UnixMilli(wm).UTC().Format("2006-01-02T15:04:05")) {
		t.Fatalf("watermark %d (%s), want in [%d, %d]", wm, st.Watermark, lo, hi)
	}
	// Every message read: each partition's lag behind its end (3000 rows
	// and one bad message) is known and zero once a fetch saw the end.
	waitFor(t, "lag 0 on every source subtask", done, stderr, func() bool {
		st, err = getStatus(admin)
		if err != nil {
			return false
		}
		for _, sp := range st.Sources {
			if sp.Lag == nil || *sp.Lag != 0 {
				return false
			}
		}
		return true
	})
	if code, _, errOut := runCLI(t, "savepoint", "--addr", admin, "--dir", filepath.Join(dir, "sp")); code == exitOK || !strings.Contains(errOut, "without --checkpoint-dir") {
		t.Fatalf("savepoint of a job without checkpoints: exit %d, %s", code, errOut)
	}
	// A progress line that has seen everything.
	var line map[string]any
	waitFor(t, "a progress line with every row", done, stderr, func() bool {
		sc := bufio.NewScanner(strings.NewReader(stderr.String()))
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) == nil && m["msg"] == "progress" && m["rows_in"] == float64(3000) && m["watermark"] != "none" {
				line = m
				return true
			}
		}
		return false
	})
	if line["dead_letters"] != float64(1) || line["rows_in_per_sec"] == nil || line["windows_fired"] == nil {
		t.Fatalf("progress line %v", line)
	}
	interrupt(t)
	select {
	case code := <-done:
		if code != exitOK {
			t.Fatalf("run: exit %d\n%s", code, stderr)
		}
	case <-time.After(time.Minute):
		t.Fatal("run did not stop after SIGINT")
	}
	files, _ := filepath.Glob(filepath.Join(out, "*.parquet"))
	var summary map[string]any
	sc := bufio.NewScanner(strings.NewReader(stderr.String()))
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil && m["msg"] == "job done" {
			summary = m
		}
	}
	if summary == nil || summary["dead_letters"] != float64(1) || summary["rows_in"] != float64(3000) ||
		summary["parts_published"] != float64(len(files)) || len(files) == 0 {
		t.Fatalf("summary %v, %d files\n%s", summary, len(files), stderr)
	}
	if data, err := os.ReadFile(deadLetters); err != nil || !bytes.Contains(data, []byte("not json")) {
		t.Fatalf("dead-letter file: %v %q", err, data)
	}
}

// TestSavepointNoJob: a savepoint request where no job listens says so.
func TestSavepointNoJob(t *testing.T) {
	addr := freeAddr(t)
	code, _, errOut := runCLI(t, "savepoint", "--addr", addr, "--dir", filepath.Join(t.TempDir(), "sp"))
	if code != exitFailure || !strings.Contains(errOut, "no job is running with --admin-addr "+addr) {
		t.Fatalf("exit %d, %q", code, errOut)
	}
}

// TestStatusLastError: /status's last error is the newest error, or
// warning with an err attribute, the job logged (also through loggers
// derived with With), not a plain warning.
func TestStatusLastError(t *testing.T) {
	st := newJobStatus("j")
	var buf bytes.Buffer
	log := st.logger(slog.New(slog.NewTextHandler(&buf, nil)))
	last := func() string {
		st.mu.Lock()
		defer st.mu.Unlock()
		return st.lastErr
	}
	log.Warn("the Kafka sink is at-least-once")
	if got := last(); got != "" {
		t.Fatalf("a plain warning became the last error: %q", got)
	}
	log.With("node", "source").Warn("retrying", "err", errors.New("dial tcp: refused"))
	if got := last(); got != "retrying: dial tcp: refused" {
		t.Fatalf("last error %q", got)
	}
	log.Error("checkpoint: coordinator failed")
	if got := last(); got != "checkpoint: coordinator failed" {
		t.Fatalf("last error %q", got)
	}
	if !strings.Contains(buf.String(), "retrying") || !strings.Contains(buf.String(), "node=source") {
		t.Fatalf("records not passed on: %s", buf.String())
	}
}

// TestOutputOverrideRefused: --output on a job whose sink writes no files
// is refused, not ignored.
func TestOutputOverrideRefused(t *testing.T) {
	jobFile := filepath.Join(t.TempDir(), "job.yaml")
	if err := os.WriteFile(jobFile, []byte("source:\n  parquet: {path: x.parquet}\nsink:\n  kafka: {brokers: 127.0.0.1:1, topic: out}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runCLI(t, "backfill", "--output", "out", jobFile)
	if code != exitUsage || !strings.Contains(errOut, "--output out: the job's sink writes no files") {
		t.Fatalf("exit %d, %q", code, errOut)
	}
}
