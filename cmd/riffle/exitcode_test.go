package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/riffle-dev/riffle/checkpoint"
)

// closedPort returns a local address nothing listens on (connections are
// refused).
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// TestExitCodes: usage and configuration errors exit 2, runtime failures
// exit 1, the same way in every command; each case also names what is
// wrong.
func TestExitCodes(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "events.parquet")
	if code, _, errOut := runCLI(t, "gen", "--rows", "300000", "--progress", "never", in); code != exitOK {
		t.Fatalf("gen: %d %s", code, errOut)
	}
	// A copy with its data pages corrupted but the footer readable: the
	// job plans, then fails while reading.
	corrupt := filepath.Join(dir, "corrupt.parquet")
	data, err := os.ReadFile(in)
	if err != nil {
		t.Fatal(err)
	}
	for i := len(data) / 3; i < len(data)/3+4096; i++ {
		data[i] ^= 0x5a
	}
	if err := os.WriteFile(corrupt, data, 0o644); err != nil {
		t.Fatal(err)
	}
	writeJob := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	out := filepath.Join(dir, "out")
	parquetJob := func(input string) string {
		return fmt.Sprintf("source:\n  parquet: {path: %s}\nsink:\n  file: {path: %s, format: csv}\n", input, out)
	}
	good := writeJob("good.yaml", parquetJob(in))
	badYAML := writeJob("bad.yaml", "source:\n  parquet: {path: x.parquet}\nsteps: [filter: \"a >\", {\n")
	missing := writeJob("missing.yaml", parquetJob(filepath.Join(dir, "no-such-file.parquet")))
	corruptJob := writeJob("corrupt.yaml", parquetJob(corrupt))
	down := closedPort(t)
	kafkaSource := writeJob("kafka-source.yaml", fmt.Sprintf(`source:
  kafka:
    brokers: %s
    topic: events
    fields: [{name: item_id, type: int64}]
sink:
  file: {path: %s, format: csv}
`, down, out))
	kafkaSink := writeJob("kafka-sink.yaml", fmt.Sprintf("source:\n  parquet: {path: %s}\nsink:\n  kafka: {brokers: %s, topic: out}\n", in, down))
	aFile := filepath.Join(dir, "a-file")
	if err := os.WriteFile(aFile, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	locked := filepath.Join(dir, "locked")
	lock, err := checkpoint.LockDir(locked)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Unlock()
	unusable := filepath.Join(dir, "unusable")
	if err := os.MkdirAll(filepath.Join(unusable, "chk-4"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(unusable, "chk-4", checkpoint.ManifestName), []byte("{\"format_version\": 1"), 0o644); err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name string
		args []string
		code int
		says string
	}{
		{"bad flag", []string{"run", "--bogus", good}, exitUsage, "flag provided but not defined: -bogus"},
		{"bad flag value", []string{"backfill", "--parallelism", "-1", good}, exitUsage, "--parallelism -1"},
		{"missing job file", []string{"run", filepath.Join(dir, "nope.yaml")}, exitUsage, "nope.yaml"},
		{"bad job file", []string{"backfill", badYAML}, exitUsage, "bad.yaml:3"},
		{"missing input file", []string{"backfill", "--progress", "never", missing}, exitUsage, "no-such-file.parquet"},
		{"missing input file (run)", []string{"run", "--progress", "never", missing}, exitUsage, "no-such-file.parquet"},
		{"checkpoint dir is a file", []string{"run", "--checkpoint-dir", aFile, good}, exitUsage, "--checkpoint-dir " + aFile + ": not a directory"},
		{"--from does not exist", []string{"run", "--checkpoint-dir", filepath.Join(dir, "ck"), "--from", filepath.Join(dir, "nope"), good}, exitUsage, "--from"},
		{"checkpoints list of nothing", []string{"checkpoints", "list", filepath.Join(dir, "nope")}, exitUsage, "nope"},
		{"checkpoints inspect of a file", []string{"checkpoints", "inspect", aFile}, exitUsage, "not a checkpoint directory"},
		{"locked checkpoint dir", []string{"run", "--progress", "never", "--checkpoint-dir", locked, good}, exitFailure, fmt.Sprintf("locked by pid %d", os.Getpid())},
		{"every checkpoint unusable", []string{"run", "--progress", "never", "--checkpoint-dir", unusable, good}, exitFailure, "--allow-fresh-start"},
		{"unreachable brokers (sink)", []string{"backfill", "--progress", "never", kafkaSink}, exitFailure, down},
		{"unreachable brokers (source)", []string{"run", "--progress", "never", kafkaSource}, exitFailure, down},
		{"job runtime failure", []string{"backfill", "--progress", "never", corruptJob}, exitFailure, corrupt},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errOut := runCLI(t, tc.args...)
			if code != tc.code || !strings.Contains(errOut, tc.says) {
				t.Fatalf("%q: exit %d, want %d with %q in stderr:\n%s", tc.args, code, tc.code, tc.says, errOut)
			}
		})
	}
}

// TestExitCodeClassification: a network failure found while planning is a
// runtime failure although the planning error is marked as the job file's.
func TestExitCodeClassification(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", errors.New("connection refused"))}
	for _, tc := range []struct {
		err  error
		want int
	}{
		{errors.New("boom"), exitFailure},
		{usageError{errors.New("--x: bad")}, exitUsage},
		{usageError{fmt.Errorf("job.yaml:3: %w", os.ErrNotExist)}, exitUsage},
		{usageError{fmt.Errorf("kafka: brokers unreachable: %w", refused)}, exitFailure},
		{fmt.Errorf("wrapped: %w", usageError{&net.DNSError{Err: "no such host", Name: "kafka"}}), exitFailure},
		{usageError{&net.AddrError{Err: "missing port", Addr: "x"}}, exitUsage},
	} {
		if got := exitCode(tc.err); got != tc.want {
			t.Errorf("exitCode(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
}
