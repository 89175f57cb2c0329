package kafka

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/internal/arrowtext"
	"github.com/riffle-dev/riffle/internal/arrowtext/texttest"
	"github.com/riffle-dev/riffle/internal/kafkatest"
	"github.com/riffle-dev/riffle/internal/oracle"
)

// TestAllTypesMessages sends a batch of every Arrow type riffle writes
// (internal/arrowtext/texttest) through the Kafka sink to a real broker.
// The messages read back are the file sink's JSON Lines rows, byte for
// byte and in order (one encoder), and, written one per line, pyarrow and
// DuckDB read from them the values texttest.Expected computes from the
// Arrow values (sinks/testdata/jsonl_oracle.py).
func TestAllTypesMessages(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	py := oracle.Python(t)
	topic := kafkatest.CreateTopic(t, brokers, "alltypes", 1)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rec := texttest.AllTypes(mem)
	defer rec.Release()

	s, err := New(ctx, Options{Brokers: []string{brokers}, Topic: topic})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Schema([]*arrow.Schema{rec.Schema()}); err != nil {
		t.Fatal(err)
	}
	op, err := s.New(&arrowexec.Task{Node: "sink", Subtask: 0, Parallelism: 1, MaxParallelism: 128,
		Mem: mem, Log: slog.Default(), Inputs: []*arrow.Schema{rec.Schema()}})
	if err != nil {
		t.Fatal(err)
	}
	if err := op.Open(ctx); err != nil {
		t.Fatal(err)
	}
	if err := op.Process(ctx, 0, rec, nil); err != nil {
		t.Fatal(err)
	}
	if err := op.Close(); err != nil {
		t.Fatal(err)
	}

	var jsonl bytes.Buffer
	w, err := arrowtext.NewWriter(arrowtext.JSON, rec.Schema(), &jsonl, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	lines := bytes.SplitAfter(jsonl.Bytes(), []byte("\n"))
	lines = lines[:len(lines)-1] // after the last '\n'
	msgs := kafkatest.ReadAll(ctx, t, brokers, topic, 1, false)
	if len(msgs) != len(lines) || len(msgs) != texttest.Rows {
		t.Fatalf("%d messages, %d JSONL rows, want %d", len(msgs), len(lines), texttest.Rows)
	}
	var joined []byte
	for i, m := range msgs {
		if want := bytes.TrimSuffix(lines[i], []byte("\n")); !bytes.Equal(m, want) {
			t.Fatalf("message %d:\n%s\nJSONL row:\n%s", i, m, want)
		}
		joined = append(append(joined, m...), '\n')
	}
	want, err := texttest.ExpectedJSON()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path, expected := filepath.Join(dir, "messages.jsonl"), filepath.Join(dir, "expected.json")
	if err := os.WriteFile(path, joined, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(expected, want, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(py, filepath.Join("..", "testdata", "jsonl_oracle.py"), path, expected).CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s\nmessages:\n%s", err, out, joined)
	}
}
