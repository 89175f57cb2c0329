package windows_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	kafkago "github.com/segmentio/kafka-go"

	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/arrowexec/exectest"
	"github.com/riffle-dev/riffle/internal/kafkatest"
	"github.com/riffle-dev/riffle/sources/kafka"
	"github.com/riffle-dev/riffle/windows"
)

// TestIdleKafkaPartitionDoesNotStallWindows: a topic with two partitions,
// data only in partition 0, a continuous tumbling-window job with an idle
// timeout. While the job runs, windows fire (the quiet partition 1 is left
// out of the watermark once idle); without the idle timeout none would
// until the job stops.
func TestIdleKafkaPartitionDoesNotStallWindows(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.CreateTopic(t, brokers, "idle", 2)
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	var msgs []kafkago.Message
	for i := 0; i < 600; i++ { // one event a second for 10 minutes
		ts := base.Add(time.Duration(i) * time.Second)
		msgs = append(msgs, kafkago.Message{Partition: 0, Time: ts,
			Value: []byte(fmt.Sprintf(`{"item":%d,"t":%d}`, i%3, ts.UnixMilli()))})
	}
	kafkatest.Produce(t, brokers, topic, msgs)

	for _, idle := range []time.Duration{300 * time.Millisecond, 0} {
		t.Run(fmt.Sprintf("idle_timeout=%v", idle), func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			src, err := kafka.New(context.Background(), kafka.Options{Brokers: []string{brokers}, Topics: []string{topic},
				Fields:        []kafka.Field{{Name: "item", Type: kafka.Int64, Required: true}, {Name: "t", Type: kafka.Timestamp, Required: true}},
				MaxBatchDelay: 20 * time.Millisecond,
				Watermark:     arrowexec.WatermarkStrategy{Column: "t", MaxOutOfOrderness: time.Second, IdleTimeout: idle}})
			if err != nil {
				t.Fatal(err)
			}
			agg, err := windows.ParseAgg("count(*) AS n")
			if err != nil {
				t.Fatal(err)
			}
			spec, err := windows.New(windows.Options{Kind: windows.Tumbling, Size: time.Minute, Keys: []string{"item"}, Time: "t", Aggs: []windows.Agg{agg}})
			if err != nil {
				t.Fatal(err)
			}
			sink := exectest.NewSink()
			defer sink.Release()
			g := arrowexec.NewGraph()
			s := g.AddSource("kafka", src, 1) // one subtask reads both partitions
			w := g.Add("window", spec, 1, s.HashBy("item"))
			g.Add("sink", sink, 1, w.Forward())
			j, err := g.Compile(arrowexec.RunOptions{Mem: mem})
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- j.Run(context.Background()) }()
			fired := func() int64 {
				var n int64
				for _, m := range j.Metrics("sink") {
					n += m.RowsIn.Load()
				}
				return n
			}
			if idle > 0 {
				exectest.WaitFor(t, "a window fired while partition 1 is idle", func() bool { return fired() > 0 })
			} else {
				// The control: every row is in the window, and the source
				// itself saw partition 1 quiet for longer than the timeout
				// that let windows fire above; still none fired.
				exectest.WaitFor(t, "all rows in the window and partition 1 quiet past 3x300ms", func() bool {
					if j.Metrics("window")[0].RowsIn.Load() != int64(len(msgs)) {
						return false
					}
					for _, ps := range src.Status() {
						if ps.Partition == 1 && ps.Quiet > 900*time.Millisecond {
							return true
						}
					}
					return false
				})
			}
			during := fired()
			j.Stop(false)
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if idle > 0 && during == 0 {
				t.Fatal("no window fired while partition 1 was idle")
			}
			if idle == 0 && during != 0 {
				t.Fatalf("%d window results fired although partition 1 (never idle) holds the watermark", during)
			}
			if idle > 0 {
				// Every fired window is complete: 60 events per minute, 20 per item.
				for _, b := range sink.All() {
					n := b.Column(b.Schema().FieldIndices("n")[0]).(*array.Int64)
					for i := 0; i < n.Len(); i++ {
						if n.Value(i) != 20 {
							t.Fatalf("a fired window has count %d, want 20", n.Value(i))
						}
					}
				}
			}
		})
	}
}
