package kafka

import (
	"context"
	"fmt"
	"os"
	"sort"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	kafkago "github.com/segmentio/kafka-go"

	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/arrowexec/exectest"
	"github.com/riffle-dev/riffle/internal/embedkafka"
	"github.com/riffle-dev/riffle/internal/kafkatest"
	"github.com/riffle-dev/riffle/windows"
)

// quietFor is how long partitions stay quiet in TestQuietPartitions: far
// past the ~13 s after which a quiet partition used to kill the job (8
// empty fetches counted as failures, with backoff).
const quietFor = 60 * time.Second

// winKey is one window result: partition (the key) and window start (ms).
type winKey struct {
	p     int64
	start int64
}

const quietWindow = 10_000 // ms, the tumbling window size

// TestQuietPartitions runs a continuous tumbling-window job (key: the
// partition a message was written to, 10 s windows, watermark idle timeout
// 2 s) over a 3-partition topic, against the embedded broker (kfake) and
// the real one, in two shapes:
//
//   - partition: partition 2 stays quiet for 60 s while partitions 0 and 1
//     keep receiving events;
//   - topic: the whole topic stays quiet for 60 s.
//
// The 60 s are observed, not slept: the test waits until the reader's own
// status shows every quiet partition without a message for 60 s and at
// least 60 s / FetchMaxWait consecutive empty fetches. Meanwhile the job
// must stay up and windows of the other partitions must fire (by the idle
// timeout: partition 2's own watermark stays behind them). After the pause
// every partition gets new events; the job is then stopped with a drain
// and every window count must match a brute-force count of the produced
// events: nothing lost, nothing twice.
func TestQuietPartitions(t *testing.T) {
	if testing.Short() {
		t.Skip("waits 60 s")
	}
	brokers := map[string]func(t *testing.T) string{
		"kfake": func(t *testing.T) string {
			ctx, cancel := context.WithCancel(context.Background())
			t.Cleanup(cancel)
			addr, stop, err := embedkafka.Start(ctx, map[string]int{"quiet": 3})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(stop)
			return addr
		},
		"kafka": func(t *testing.T) string { return kafkatest.Brokers(t) },
	}
	for _, b := range []string{"kfake", "kafka"} {
		for _, shape := range []string{"partition", "topic"} {
			t.Run(b+"/"+shape, func(t *testing.T) {
				t.Parallel()
				addr := brokers[b](t)
				topic := "quiet"
				if b == "kafka" {
					topic = kafkatest.CreateTopic(t, addr, t.Name(), 3)
				}
				runQuiet(t, addr, topic, shape == "topic")
			})
		}
	}
}

func runQuiet(t *testing.T, brokers, topic string, wholeTopic bool) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	base := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	want := map[winKey]int64{}
	// Event times rise by 1 s from message to message, over all
	// partitions.
	next := int64(0)
	produce := func(p, n int) {
		msgs := make([]kafkago.Message, n)
		for i := range msgs {
			ts := base + next
			next += 1000
			msgs[i] = kafkago.Message{Partition: p, Value: []byte(fmt.Sprintf(`{"p":%d,"t":%d}`, p, ts))}
			want[winKey{int64(p), ts - (ts-base)%quietWindow}]++
		}
		w := &kafkago.Writer{Addr: kafkago.TCP(brokers), Topic: topic, Balancer: partitionOf{}, RequiredAcks: kafkago.RequireAll, BatchTimeout: time.Millisecond}
		defer w.Close()
		if err := w.WriteMessages(context.Background(), msgs...); err != nil {
			t.Errorf("producing %d messages to partition %d: %v", n, p, err)
		}
	}
	// Before the pause: 10 s of events on partition 2, then, once the
	// reader reports it idle, 30 s on partitions 0 and 1.
	produce(2, 10)

	o := Options{Brokers: []string{brokers}, Topics: []string{topic},
		Fields:    []Field{{Name: "p", Type: Int64, Required: true}, {Name: "t", Type: Timestamp, Required: true}},
		Watermark: arrowexec.WatermarkStrategy{Column: "t", MaxOutOfOrderness: time.Second, IdleTimeout: 2 * time.Second}}
	src, err := New(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	agg, err := windows.ParseAgg("count(*) AS n")
	if err != nil {
		t.Fatal(err)
	}
	// A partition that wakes up after being idle may bring events behind
	// the watermark the others moved meanwhile (which partition's fetch
	// lands first is a race): the allowed lateness keeps such events in
	// their window (an update), so the final counts are exact.
	spec, err := windows.New(windows.Options{Kind: windows.Tumbling, Size: quietWindow * time.Millisecond, Keys: []string{"p"}, Time: "t",
		Aggs: []windows.Agg{agg}, AllowedLateness: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	sink := exectest.NewSink()
	defer sink.Release()
	g := arrowexec.NewGraph()
	s := g.AddSource("kafka", src, 2)
	w := g.Add("window", spec, 2, s.HashBy("p"))
	g.Add("sink", sink, 1, w.Rebalance())
	j, err := g.Compile(arrowexec.RunOptions{Mem: mem})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- j.Run(context.Background()) }()
	// fired returns the newest count of every window (counts only grow:
	// an update after a late event has the larger count).
	fired := func() map[winKey]int64 {
		out := map[winKey]int64{}
		for _, b := range sink.All() {
			ps := b.Column(0).(*array.Int64)
			starts := b.Column(1).(*array.Timestamp)
			ns := b.Column(3).(*array.Int64)
			for i := range ps.Len() {
				k := winKey{ps.Value(i), int64(starts.Value(i))}
				out[k] = max(out[k], ns.Value(i))
			}
		}
		return out
	}
	// await polls cond while the job runs; the job ending is a failure.
	await := func(what string, cond func() bool) {
		t.Helper()
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		giveUp := time.After(quietFor + 60*time.Second)
		for !cond() {
			select {
			case err := <-done:
				t.Fatalf("the job ended while waiting for %s: %v", what, err)
			case <-giveUp:
				t.Fatalf("gave up waiting for %s", what)
			case <-tick.C:
			}
		}
	}

	await("partition 2 idle", func() bool { return src.Status()[2].Idle })
	produce(0, 15)
	produce(1, 15)

	quiet := []int{2}
	if wholeTopic {
		quiet = []int{0, 1, 2}
	}
	// The pause, as the reader sees it: every quiet partition without a
	// message for quietFor, answered by at least quietFor/FetchMaxWait
	// consecutive empty fetches. In the partition shape, partitions 0 and
	// 1 get one event per empty fetch of partition 2 meanwhile.
	minEmpty := int64(quietFor / DefaultFetchMaxWait)
	fed := int64(0)
	await("a 60 s pause", func() bool {
		now := time.Now()
		paused := true
		for _, p := range quiet {
			empty, d := src.status[p].quiet(now)
			paused = paused && empty >= minEmpty && d >= quietFor
			if !wholeTopic && empty >= fed+4 {
				produce(0, 1)
				produce(1, 1)
				fed = empty
			}
		}
		return paused
	})
	// Windows of partition 0 up to its watermark fired while partition 2,
	// whose events stop at 10 s, was idle: the window [10 s, 20 s) of
	// partition 0 (its events: 10 s to 24 s) can only fire once partition
	// 2 is left out.
	got := fired()
	for _, k := range []winKey{{0, base + quietWindow}} {
		if got[k] != want[k] {
			t.Errorf("during the pause: window %d s of partition %d has count %d, want %d (fired by the idle timeout)", (k.start-base)/1000, k.p, got[k], want[k])
		}
	}
	if k := (winKey{0, base + 5*quietWindow}); !wholeTopic && got[k] != want[k] {
		t.Errorf("during the pause: window 50 s of partition 0 (events fed during the pause) has count %d, want %d", got[k], want[k])
	}
	if st := src.Status(); !st[2].Idle || st[2].Retrying != "" {
		t.Errorf("status of the quiet partition: %+v, want idle, not retrying", st[2])
	}

	// After the pause: new events on every partition, later than anything
	// before, then a drained stop fires the rest.
	next += quietWindow
	for p := range 3 {
		produce(p, 25)
	}
	var total int64
	for _, n := range want {
		total += n
	}
	await("every event", func() bool { return src.Stats().Rows == total })
	j.Stop(true)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	got = fired()
	keys := make([]winKey, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		return keys[i].p < keys[j].p || keys[i].p == keys[j].p && keys[i].start < keys[j].start
	})
	for _, k := range keys {
		if got[k] != want[k] {
			t.Errorf("partition %d window %d: count %d, want %d", k.p, k.start-base, got[k], want[k])
		}
	}
	for k, n := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected window %+v with count %d", k, n)
		}
	}
	if os.Getenv("RIFFLE_QUIET_LOG") != "" {
		t.Logf("%d windows, %d events, status %+v", len(got), total, src.Status())
	}
}

// partitionOf sends every message to its Message.Partition.
type partitionOf struct{}

func (partitionOf) Balance(m kafkago.Message, _ ...int) int { return m.Partition }
