package job_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/riffle-dev/riffle/internal/kafkatest"
)

// lateRow is one late side-output record: the event and the window it was
// late for.
type lateRow struct {
	u, start int64
}

// produceLateInput produces n JSON events {u, k, t} to one partition of
// topic: event times rising by about 3 ms with small disorder, and every
// 10th event far behind. It returns the brute-force late set of a
// tumbling window (size, lateness) over a source with one event per batch
// and a bounded out-of-orderness watermark (max event time so far - ooo -
// 1 ms, which the window sees before the next event).
func produceLateInput(t *testing.T, brokers, topic string, n int, size, lateness, ooo int64) []lateRow {
	t.Helper()
	rng := rand.New(rand.NewPCG(5, 9))
	var msgs []kafka.Message
	var want []lateRow
	maxT, wm := int64(-1), int64(-1<<62)
	for u := range n {
		ts := int64(u)*3 + rng.Int64N(8)
		if u%10 == 9 {
			ts -= 60 + rng.Int64N(100)
		}
		ts = max(ts, 0)
		start := ts / size * size
		if start+size-1+lateness <= wm {
			want = append(want, lateRow{int64(u), start})
		}
		msgs = append(msgs, kafka.Message{Value: fmt.Appendf(nil, `{"u": %d, "k": "k%d", "t": %d}`, u, u%4, ts)})
		maxT = max(maxT, ts)
		wm = maxT - ooo - 1
	}
	kafkatest.Produce(t, brokers, topic, msgs)
	return want
}

// parseLate reads u and the late window's start from a JSON row (the
// start as an RFC 3339 timestamp or milliseconds).
func parseLate(t *testing.T, line []byte) lateRow {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(line, &m); err != nil {
		t.Fatalf("%s: %v", line, err)
	}
	r := lateRow{u: int64(m["u"].(float64))}
	switch v := m["late_window_start"].(type) {
	case string:
		ts, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			t.Fatal(err)
		}
		r.start = ts.UnixMilli()
	case float64:
		r.start = int64(v)
	default:
		t.Fatalf("late_window_start %v in %s", v, line)
	}
	return r
}

func sortLate(rs []lateRow) []lateRow {
	slices.SortFunc(rs, func(a, b lateRow) int {
		if a.u != b.u {
			return int(a.u - b.u)
		}
		return int(a.start - b.start)
	})
	return rs
}

// TestLateOutputSinks runs a window step over a (bounded) Kafka topic
// whose late_output is the short file form, and a Kafka sink block, at
// parallelism 1 and 2: the late rows each sink receives are the
// brute-force late set, each once.
func TestLateOutputSinks(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	dir := t.TempDir()
	in := kafkatest.CreateTopic(t, brokers, "late-in", 1)
	want := sortLate(produceLateInput(t, brokers, in, 600, 50, 10, 20))
	if len(want) < 20 {
		t.Fatalf("only %d late rows: the test needs late data", len(want))
	}
	outputs := map[string]string{
		"file":  "      late_output: {path: %s, format: jsonl}\nsink:\n  file: {path: %s, format: jsonl}\n",
		"kafka": "      late_output: {kafka: {brokers: \"" + brokers + "\", topic: %s}}\nsink:\n  file: {path: %s, format: jsonl}\n",
		// A DAG job wires the window's late rows to a sink by name.
		"dag": "sinks:\n  - file: {path: %[2]s, format: jsonl}\n  - from: w.late\n    file: {path: %[1]s, format: jsonl, prefix: late}\n",
	}
	for kind, lateYAML := range outputs {
		for _, p := range []int{1, 2} {
			t.Run(fmt.Sprintf("%s/p=%d", kind, p), func(t *testing.T) {
				target := filepath.Join(dir, fmt.Sprintf("late-%s-%d", kind, p))
				if kind == "kafka" {
					target = kafkatest.CreateTopic(t, kafkatest.Brokers(t), "late", 2)
				}
				out := filepath.Join(dir, fmt.Sprintf("out-%s-%d", kind, p))
				yml := fmt.Sprintf(`name: late
source:
  kafka:
    brokers: "%s"
    topic: %s
    bounded: true
    max_batch_rows: 1
    fields:
      - {name: u, type: int64, required: true}
      - {name: k, type: string, required: true}
      - {name: t, type: int64, required: true}
  watermark: {column: t, max_out_of_orderness: 20ms}
steps:
  - name: w
    window:
      type: tumbling
      size: 50ms
      key: [k]
      time: t
      aggs: ["count(*) AS n"]
      allowed_lateness: 10ms
%s`, brokers, in, fmt.Sprintf(lateYAML, target, out))
				runJob(t, yml, p)
				var got []lateRow
				if kind == "kafka" {
					ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
					defer cancel()
					for _, v := range kafkatest.ReadAll(ctx, t, brokers, target, 2, false) {
						got = append(got, parseLate(t, v))
					}
				} else {
					files, _ := filepath.Glob(filepath.Join(target, "late-*.jsonl"))
					for _, f := range files {
						fh, err := os.Open(f)
						if err != nil {
							t.Fatal(err)
						}
						sc := bufio.NewScanner(fh)
						for sc.Scan() {
							got = append(got, parseLate(t, sc.Bytes()))
						}
						fh.Close()
					}
				}
				if got = sortLate(got); !slices.Equal(got, want) {
					t.Fatalf("%d late rows, want %d:\n got %v\nwant %v", len(got), len(want), got, want)
				}
			})
		}
	}
}
