package kafka

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
	kafkago "github.com/segmentio/kafka-go"

	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/internal/kafkatest"
)

var benchFields = []Field{
	{Name: "id", Type: Int64, Required: true},
	{Name: "user", Type: String},
	{Name: "amount", Type: Float64},
	{Name: "ts", Type: Timestamp},
	{Name: "ok", Type: Bool},
}

func benchValue(i int) []byte {
	return fmt.Appendf(nil, `{"id":%d,"user":"user-%d","amount":%d.%02d,"ts":%d,"ok":%t}`,
		i, i%10000, i%1000, i%100, 1767225600000+int64(i), i%3 == 0)
}

// BenchmarkDecodeJSON measures the decoder alone (no Kafka): one batch of
// 8192 small JSON messages per iteration.
func BenchmarkDecodeJSON(b *testing.B) {
	const n = 8192
	recs := make([]record, n)
	var bytes int64
	for i := range recs {
		recs[i] = record{offset: int64(i), value: benchValue(i)}
		bytes += int64(len(recs[i].value))
	}
	o := Options{Format: FormatJSON, Fields: benchFields}
	d := newDecoder(o, o.schema(), memory.NewGoAllocator())
	defer d.release()
	b.SetBytes(bytes)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		d.reserve(n)
		for i := range recs {
			if err := d.add(&recs[i], "t", 0); err != nil {
				b.Fatal(err)
			}
		}
		d.finish().Release()
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkKafkaDecode reads the same topic (RIFFLE_BENCH_MESSAGES small
// JSON messages, default 1M, over 4 partitions, produced once) with a raw
// kafka-go consumer (one kafka.Reader per partition, FetchMessage loop) and
// with the riffle source (fetch and decode into Arrow), side by side.
func BenchmarkKafkaDecode(b *testing.B) {
	brokers := kafkatest.Brokers(b)
	n := 1_000_000
	if s := os.Getenv("RIFFLE_BENCH_MESSAGES"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	const parts = 4
	topic := kafkatest.CreateTopic(b, brokers, "bench", parts)
	start := time.Now()
	totalBytes := produceBench(b, brokers, topic, n, parts)
	b.Logf("produced %d messages (%d bytes) in %v", n, totalBytes, time.Since(start))

	b.Run("raw-kafka-go-reader", func(b *testing.B) {
		b.SetBytes(totalBytes)
		b.ReportAllocs()
		for range b.N {
			readRaw(b, brokers, topic, n, parts)
		}
		b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "msgs/s")
	})
	for _, par := range []int{1, 2} {
		b.Run(fmt.Sprintf("riffle-source-par%d", par), func(b *testing.B) {
			b.SetBytes(totalBytes)
			b.ReportAllocs()
			for range b.N {
				readRiffle(b, brokers, topic, n, par)
			}
			b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
	// The machine is shared: alternating the two readers within one
	// benchmark makes their ratio robust to load that drifts between
	// sub-benchmarks.
	b.Run("interleaved", func(b *testing.B) {
		var raw, riffle time.Duration
		for range b.N {
			t0 := time.Now()
			readRaw(b, brokers, topic, n, parts)
			t1 := time.Now()
			readRiffle(b, brokers, topic, n, 1)
			raw, riffle = raw+t1.Sub(t0), riffle+time.Since(t1)
		}
		b.ReportMetric(float64(n*b.N)/raw.Seconds(), "raw-msgs/s")
		b.ReportMetric(float64(n*b.N)/riffle.Seconds(), "riffle-msgs/s")
		b.ReportMetric(100*raw.Seconds()/riffle.Seconds(), "riffle/raw-%")
	})
}

// readRaw reads the topic with one kafka.Reader per partition
// (FetchMessage loop), as a plain kafka-go consumer would.
func readRaw(b *testing.B, brokers, topic string, n, parts int) {
	var wg sync.WaitGroup
	for p := range parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := kafkago.NewReader(kafkago.ReaderConfig{Brokers: []string{brokers}, Topic: topic, Partition: p,
				MinBytes: 1, MaxBytes: DefaultFetchMaxBytes, MaxWait: DefaultFetchMaxWait})
			defer r.Close()
			ctx := context.Background()
			for count := 0; count < n/parts+boolInt(p < n%parts); count++ {
				if _, err := r.FetchMessage(ctx); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// readRiffle reads the topic to its end with the source, par subtasks.
func readRiffle(b *testing.B, brokers, topic string, n, par int) {
	ctx := context.Background()
	src, err := New(ctx, Options{Brokers: []string{brokers}, Topics: []string{topic}, Bounded: true, Fields: benchFields})
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	var wg sync.WaitGroup
	var rows atomic.Int64
	for sub := range par {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := src.Open(ctx, &arrowexec.Task{Subtask: sub, Parallelism: par, Mem: memory.DefaultAllocator, Metrics: &arrowexec.TaskMetrics{}})
			if err != nil {
				b.Error(err)
				return
			}
			defer r.Close()
			for {
				rec, err := r.Next(ctx)
				if errors.Is(err, io.EOF) {
					return
				}
				if err != nil {
					b.Error(err)
					return
				}
				if rec != nil {
					rows.Add(rec.NumRows())
					rec.Release()
				}
			}
		}()
	}
	wg.Wait()
	if rows.Load() != int64(n) {
		b.Fatalf("read %d rows, want %d", rows.Load(), n)
	}
}

func boolInt(v bool) int {
	if v {
		return 1
	}
	return 0
}

func produceBench(b *testing.B, brokers, topic string, n, parts int) int64 {
	w := &kafkago.Writer{Addr: kafkago.TCP(brokers), Topic: topic, Balancer: benchBalancer{}, RequiredAcks: kafkago.RequireAll,
		BatchSize: 20000, BatchBytes: 1 << 20, BatchTimeout: 5 * time.Millisecond}
	defer w.Close()
	var total int64
	const chunk = 50000
	msgs := make([]kafkago.Message, 0, chunk)
	for i := 0; i < n; i++ {
		v := benchValue(i)
		total += int64(len(v))
		msgs = append(msgs, kafkago.Message{Partition: i % parts, Value: v})
		if len(msgs) == chunk || i == n-1 {
			if err := w.WriteMessages(context.Background(), msgs...); err != nil {
				var we kafkago.WriteErrors
				if errors.As(err, &we) {
					for _, e := range we {
						if e != nil {
							err = e
							break
						}
					}
				}
				b.Fatalf("producing benchmark messages: %v", err)
			}
			msgs = msgs[:0]
		}
	}
	return total
}

type benchBalancer struct{}

func (benchBalancer) Balance(m kafkago.Message, _ ...int) int { return m.Partition }
