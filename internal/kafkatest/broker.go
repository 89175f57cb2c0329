package kafkatest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/riffle-dev/riffle/internal/oracle"
)

// Broker is a Kafka broker of one test's own, started from scripts/kafka
// with its own state directory (under t.TempDir()), that the test may stop
// and start again on the same ports and data. Use it for tests that stop
// the broker: never stop the shared one (RIFFLE_KAFKA_BROKERS), other
// packages' tests use it at the same time.
type Broker struct {
	// Addr is the bootstrap address, the same after a restart.
	Addr    string
	scripts string
	env     []string
}

// StartBroker starts a broker of the test's own and registers its removal.
// The jars come from KAFKA_CACHE_DIR (default <repo>/.cache/kafka, where
// scripts/test.sh and scripts/kafka/start.sh fetch them); it never
// downloads. Without java or the jars the test is skipped, or fails if
// RIFFLE_REQUIRE_KAFKA=1. Starting takes 5-20 s.
func StartBroker(t testing.TB) *Broker {
	t.Helper()
	root, err := oracle.RepoRoot()
	if err != nil {
		t.Fatalf("kafkatest: %v", err)
	}
	cache := os.Getenv("KAFKA_CACHE_DIR")
	if cache == "" {
		cache = filepath.Join(root, ".cache", "kafka")
	}
	missing := ""
	if _, err := exec.LookPath("java"); err != nil {
		missing = "java is not installed"
	} else if jars, _ := filepath.Glob(filepath.Join(cache, "*", "libs", ".complete")); len(jars) == 0 {
		missing = "no Kafka jars in " + cache + " (scripts/kafka/fetch.sh fetches them; KAFKA_CACHE_DIR points elsewhere)"
	}
	if missing != "" {
		if os.Getenv(EnvRequire) == "1" {
			t.Fatalf("kafkatest: %s=1 but a broker of the test's own cannot start: %s", EnvRequire, missing)
		}
		t.Skipf("kafkatest: skipping test that needs a Kafka broker of its own: %s", missing)
	}
	b := &Broker{
		scripts: filepath.Join(root, "scripts", "kafka"),
		env: append(os.Environ(), "KAFKA_CACHE_DIR="+cache, "KAFKA_STATE_DIR="+filepath.Join(t.TempDir(), "kafka"),
			fmt.Sprintf("KAFKA_WATCH_PID=%d", os.Getpid()), "KAFKA_KEEP_STATE="),
	}
	t.Cleanup(func() {
		if _, err := b.run("stop.sh"); err != nil {
			t.Errorf("kafkatest: stopping the test's broker: %v", err)
		}
	})
	out, err := b.run("start.sh")
	if err != nil {
		t.Fatalf("kafkatest: starting a broker: %v", err)
	}
	b.Addr = exported(out)
	if b.Addr == "" {
		t.Fatalf("kafkatest: start.sh printed no address: %q", out)
	}
	return b
}

// Stop stops the broker and keeps its state (KAFKA_KEEP_STATE=1 stop.sh).
func (b *Broker) Stop(t testing.TB) {
	t.Helper()
	if _, err := b.run("stop.sh", "KAFKA_KEEP_STATE=1"); err != nil {
		t.Fatalf("kafkatest: stopping the broker: %v", err)
	}
}

// Start starts the stopped broker again, on the same ports with the same
// data (KAFKA_KEEP_STATE=1 start.sh), and waits until it answers.
func (b *Broker) Start(t testing.TB) {
	t.Helper()
	out, err := b.run("start.sh", "KAFKA_KEEP_STATE=1")
	if err != nil {
		t.Fatalf("kafkatest: restarting the broker: %v", err)
	}
	if addr := exported(out); addr != b.Addr {
		t.Fatalf("kafkatest: the broker came back at %q, not %q", addr, b.Addr)
	}
}

func (b *Broker) run(script string, env ...string) (string, error) {
	cmd := exec.Command(filepath.Join(b.scripts, script))
	cmd.Env = append(append([]string{}, b.env...), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s: %w\n%s", script, err, errb.String())
	}
	return out.String(), nil
}

// exported returns the address in start.sh's `export RIFFLE_KAFKA_BROKERS=`
// line.
func exported(out string) string {
	for _, l := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(l, "export "+EnvBrokers+"="); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
