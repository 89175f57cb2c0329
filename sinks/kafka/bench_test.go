package kafka

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/internal/kafkatest"
)

// BenchmarkSinkDelivery compares the at-least-once and exactly-once sinks
// side by side on the same broker: batches of 1000 rows (testSchema) go
// through one subtask's operator, and every second (a 1 s checkpoint
// interval) the exactly-once sink pre-commits at a barrier and commits as
// if the checkpoint completed at once. It reports rows/s and, for
// exactly-once, the latency from a batch's Process returning to the commit
// that makes it visible to read_committed consumers (p50, p99): bounded
// below by the checkpoint interval's share (about half of it on average).
//
//	RIFFLE_KAFKA_BROKERS=... go test ./sinks/kafka -run '^$' -bench SinkDelivery -benchtime 200x
func BenchmarkSinkDelivery(b *testing.B) {
	brokers := kafkatest.Brokers(b)
	ctx := context.Background()
	batches := makeBatches(memory.DefaultAllocator, 1000, 1000)
	defer release(batches)
	for _, d := range []Delivery{AtLeastOnce, ExactlyOnce} {
		b.Run(string(d), func(b *testing.B) {
			topic := kafkatest.CreateTopic(b, brokers, "bench-"+string(d), 3)
			s, err := New(ctx, Options{Brokers: []string{brokers}, Topic: topic, Delivery: d, TransactionalIDPrefix: kafkatest.UniqueName("bench")})
			if err != nil {
				b.Fatal(err)
			}
			op, err := s.New(eosTask(0, 1, nil))
			if err != nil {
				b.Fatal(err)
			}
			if err := op.Open(ctx); err != nil {
				b.Fatal(err)
			}
			defer op.Close()
			ck, _ := op.(arrowexec.Checkpointer)
			var lat, pending []time.Duration
			var id uint64
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			last := start
			for i := 0; i < b.N; i++ {
				if err := op.Process(ctx, 0, batches[0], nil); err != nil {
					b.Fatal(err)
				}
				if ck == nil {
					continue
				}
				pending = append(pending, time.Since(start))
				if time.Since(last) >= time.Second {
					id++
					if _, err := ck.SnapshotState(ctx, id); err != nil {
						b.Fatal(err)
					}
					if err := op.(arrowexec.CheckpointListener).NotifyCheckpointComplete(ctx, id); err != nil {
						b.Fatal(err)
					}
					now := time.Since(start)
					for _, p := range pending {
						lat = append(lat, now-p)
					}
					pending = pending[:0]
					last = time.Now()
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)*1000/time.Since(start).Seconds(), "rows/s")
			if len(lat) > 0 {
				slices.Sort(lat)
				b.ReportMetric(float64(lat[len(lat)/2].Milliseconds()), "p50-ms")
				b.ReportMetric(float64(lat[len(lat)*99/100].Milliseconds()), "p99-ms")
			}
		})
	}
}
