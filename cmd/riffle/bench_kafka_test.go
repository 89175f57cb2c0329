package main

import (
	"strings"
	"testing"

	"github.com/riffle-dev/riffle/internal/kafkatest"
	"github.com/riffle-dev/riffle/internal/oracle"
)

// TestBenchNexmarkKafka runs riffle bench nexmark --source kafka against
// the broker of RIFFLE_KAFKA_BROKERS (skipped without one): --check
// compares the query's output with DuckDB, and a timed run reports
// events per second and per CPU-second from kafka.
func TestBenchNexmarkKafka(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	oracle.Python(t)
	code, out, errOut := runCLI(t, "bench", "nexmark", "--query", "q5", "--events", "40000", "--source", "kafka", "--brokers", brokers, "--check")
	if code != exitOK || !strings.Contains(out, "from kafka") || !strings.Contains(out, "agree with DuckDB") {
		t.Fatalf("--check: exit %d, %q\n%s", code, out, errOut)
	}
	code, out, errOut = runCLI(t, "bench", "nexmark", "--query", "q1", "--events", "20000", "--source", "kafka", "--brokers", brokers)
	if code != exitOK || !strings.Contains(out, "q1 from kafka: 20000 events, 18400 rows") || !strings.Contains(out, "events per CPU-second") {
		t.Fatalf("timed run: exit %d, %q\n%s", code, out, errOut)
	}
	if code, _, errOut := runCLI(t, "bench", "nexmark", "--query", "q0", "--events", "1000", "--source", "kafka", "--brokers", ""); code == exitOK || !strings.Contains(errOut, "brokers") {
		t.Fatalf("no brokers: exit %d, %q", code, errOut)
	}
}
