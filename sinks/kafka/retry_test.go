package kafka

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/riffle-dev/riffle/internal/embedkafka"
)

// TestProduceRetriesFailingBroker: the embedded broker refuses every
// produce request (closing the connection, as a broker going down does);
// Produce keeps retrying past kafka-go's own attempts, and once the broker
// heals every message is delivered, once. With a short RetryTimeout and a
// broker that never heals, Produce fails naming what failed.
func TestProduceRetriesFailingBroker(t *testing.T) {
	ctx := context.Background()
	c, stop, err := embedkafka.StartCluster(ctx, map[string]int{"heal": 1, "never": 1})
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	brokers := c.ListenAddrs()[0]
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	const n = 500
	bs := makeBatches(mem, n, 100)
	defer release(bs)
	batches := func(yield func(arrow.RecordBatch, error) bool) {
		for _, b := range bs {
			if !yield(b, nil) {
				return
			}
		}
	}

	failed, heal := embedkafka.FailRequests(c, kmsg.Produce)
	type result struct {
		st  ProduceStats
		err error
	}
	done := make(chan result, 1)
	go func() {
		st, err := Produce(ctx, ProduceOptions{Brokers: []string{brokers}, Topic: "heal", MaxAttempts: 2, RetryTimeout: time.Minute}, batches)
		done <- result{st, err}
	}()
	// Heal once the broker refused several requests: more than kafka-go's
	// own 2 attempts, so riffle's retries were needed.
	giveUp := time.After(2 * time.Minute)
	for failed() < 6 {
		select {
		case r := <-done:
			t.Fatalf("Produce returned while the broker refused every request: %+v, %v", r.st, r.err)
		case <-giveUp:
			t.Fatalf("the broker refused only %d requests within 2 minutes, want 6", failed())
		case <-time.After(5 * time.Millisecond):
		}
	}
	heal()
	r := <-done
	if r.err != nil || r.st.Messages != n {
		t.Fatalf("after healing: %+v, %v", r.st, r.err)
	}
	seen := map[int64]int{}
	for _, m := range readTopic(t, brokers, "heal", n) {
		var v struct{ ID int64 }
		if err := json.Unmarshal(m.Value, &v); err != nil {
			t.Fatal(err)
		}
		seen[v.ID]++
	}
	for i := range int64(n) {
		if seen[i] != 1 {
			t.Errorf("id %d delivered %d times", i, seen[i])
		}
	}

	// Never healed: the retry timeout ends it with an error that names the
	// topic and what failed.
	embedkafka.FailRequests(c, kmsg.Produce)
	_, err = Produce(ctx, ProduceOptions{Brokers: []string{brokers}, Topic: "never", MaxAttempts: 1, RetryTimeout: 300 * time.Millisecond}, batches)
	if err == nil || !strings.Contains(err.Error(), `kafka: topic "never": `) || !strings.Contains(err.Error(), "not delivered (delivery failed") {
		t.Fatalf("got %v", err)
	}
	if errors.Is(err, context.Canceled) {
		t.Fatalf("got %v", err)
	}
	t.Log(err)
}
