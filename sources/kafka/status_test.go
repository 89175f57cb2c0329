package kafka

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
	kafkago "github.com/segmentio/kafka-go"

	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/internal/embedkafka"
)

// TestStatus follows Source.Status through a reader's life on the embedded
// broker: unknown before the first fetch, offsets and high watermarks after
// it, lag while messages wait, idleness by the watermark's idle timeout,
// and the last error while the broker is gone. A goroutine calls Status
// all along (run with -race).
func TestStatus(t *testing.T) {
	ctx := context.Background()
	brokers, stop, err := embedkafka.Start(ctx, map[string]int{"st": 2})
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	produce := func(p, n int) {
		msgs := make([]kafkago.Message, n)
		for i := range msgs {
			// Event times 1000+p*1000+i ms: partition 0's largest is 1004.
			msgs[i] = kafkago.Message{Partition: p, Value: []byte(fmt.Sprintf(`{"id":1,"ts":%d}`, 1000+p*1000+i))}
		}
		w := &kafkago.Writer{Addr: kafkago.TCP(brokers), Topic: "st", Balancer: partitionOf{}, BatchTimeout: time.Millisecond}
		defer w.Close()
		if err := w.WriteMessages(ctx, msgs...); err != nil {
			t.Fatal(err)
		}
	}
	produce(0, 5)
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	o := testOptions(brokers, "st")
	o.Bounded = false
	o.Fields = []Field{{Name: "id", Type: Int64}, {Name: "ts", Type: Timestamp}}
	o.Watermark = arrowexec.WatermarkStrategy{Column: "ts", IdleTimeout: 200 * time.Millisecond}
	o.FetchMaxWait = 20 * time.Millisecond
	o.RetryBackoff = 10 * time.Millisecond
	o.MaxBatchDelay = 10 * time.Millisecond
	src, err := New(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	for _, ps := range src.Status() {
		if ps.Offset != -1 || ps.HighWatermark != -1 || ps.Lag != -1 || !ps.LastMessage.IsZero() || ps.Idle || ps.Retrying != "" ||
			ps.MaxEventTime != arrowexec.MinWatermark || ps.Quiet != 0 {
			t.Fatalf("before any reader: %+v", ps)
		}
	}
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-quit:
				return
			default:
				src.Status()
				time.Sleep(time.Millisecond)
			}
		}
	}()
	defer func() { close(quit); wg.Wait() }()

	r, err := src.Open(ctx, task(mem, 0, 1, nil))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	next := func(rows int) {
		t.Helper()
		for rows > 0 {
			b, err := r.Next(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if b != nil {
				rows -= int(b.NumRows())
				b.Release()
			}
		}
	}
	// await polls Status until cond holds.
	await := func(what string, cond func(st []PartitionStatus) bool) []PartitionStatus {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			st := src.Status()
			if cond(st) {
				return st
			}
			if time.Now().After(deadline) {
				t.Fatalf("waiting for %s: status %+v", what, st)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	// Fetched, not yet read: the 5 messages are lag. (A fetch that timed
	// out under load may bring the high watermark before the messages:
	// wait for the messages.)
	st := await("both partitions fetched", func(st []PartitionStatus) bool {
		return st[0].HighWatermark == 5 && !st[0].LastMessage.IsZero() && st[1].HighWatermark == 0
	})
	if p := st[0]; p.Offset != 0 || p.Lag != 5 || p.LastMessage.IsZero() || p.Retrying != "" {
		t.Fatalf("partition 0 with 5 messages fetched, none read: %+v", p)
	}
	next(5)
	st = await("partition 0 read", func(st []PartitionStatus) bool { return st[0].Offset == 5 })
	if p := st[0]; p.HighWatermark != 5 || p.Lag != 0 || p.MaxEventTime != 1004 {
		t.Fatalf("partition 0 after reading 5 messages: %+v", p)
	}
	if p := st[1]; p.Offset != 0 || p.Lag != 0 || !p.LastMessage.IsZero() || p.MaxEventTime != arrowexec.MinWatermark {
		t.Fatalf("empty partition 1: %+v", p)
	}
	// Both go idle after the idle timeout without messages.
	st = await("both idle", func(st []PartitionStatus) bool { return st[0].Idle && st[1].Idle })
	for _, p := range st {
		if p.Quiet < 200*time.Millisecond {
			t.Fatalf("idle partition quiet for %v, less than the 200ms idle timeout: %+v", p.Quiet, p)
		}
	}
	// A new message ends partition 1's idleness.
	produce(1, 3)
	next(3)
	st = await("partition 1 fetched", func(st []PartitionStatus) bool { return st[1].Offset == 3 })
	if p := st[1]; p.Idle || p.HighWatermark != 3 || p.Lag != 0 || p.LastMessage.IsZero() || p.MaxEventTime != 2002 || p.Quiet >= 200*time.Millisecond {
		t.Fatalf("partition 1 after 3 messages: %+v", p)
	}
	// The broker goes away: every partition reports what it retries.
	stop()
	st = await("retrying", func(st []PartitionStatus) bool { return st[0].Retrying != "" && st[1].Retrying != "" })
	for _, p := range st {
		if !strings.Contains(p.Retrying, "dial") && !strings.Contains(p.Retrying, "fetch") {
			t.Fatalf("retrying %q: want the failed step named", p.Retrying)
		}
	}
	t.Logf("%+v", st)
}
