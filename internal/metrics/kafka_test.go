package metrics_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/internal/kafkatest"
	"github.com/riffle-dev/riffle/internal/metrics"
	"github.com/riffle-dev/riffle/sources/kafka"
)

// TestKafkaPartitions runs a continuous Kafka source over a topic whose
// partition 0 holds messages (one of them bad) and partition 1 none: once
// the sink got every good row and partition 1 went idle, the scrape shows
// the messages consumed, a lag of 0 on both partitions, partition 0's
// watermark (its largest event time minus the bound, minus 1 ms),
// partition 1 idle and the bad message as a dead letter.
func TestKafkaPartitions(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.CreateTopic(t, brokers, t.Name(), 2)
	const n = 500
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).UnixMilli()
	var msgs []kafkago.Message
	maxTS := int64(0)
	for i := 0; i < n; i++ {
		ts := base + int64(i*37%1000)*1000
		maxTS = max(maxTS, ts)
		msgs = append(msgs, kafkago.Message{Partition: 0, Value: []byte(fmt.Sprintf(`{"id":%d,"ts":%d}`, i, ts))})
	}
	msgs = append(msgs, kafkago.Message{Partition: 0, Value: []byte(`{"id":"x"}`)})
	kafkatest.Produce(t, brokers, topic, msgs)

	mem := checkedMem(t)
	src, err := kafka.New(context.Background(), kafka.Options{
		Brokers: []string{brokers}, Topics: []string{topic},
		Fields:        []kafka.Field{{Name: "id", Type: kafka.Int64, Required: true}, {Name: "ts", Type: kafka.Timestamp}},
		MaxBatchDelay: 20 * time.Millisecond,
		Watermark:     arrowexec.WatermarkStrategy{Column: "ts", MaxOutOfOrderness: 5 * time.Second, IdleTimeout: 200 * time.Millisecond},
		OnError:       kafka.OnErrorDeadLetter, DeadLetterPath: t.TempDir() + "/dead.jsonl",
	})
	if err != nil {
		t.Fatal(err)
	}
	sink := testSink(t)
	g := arrowexec.NewGraph()
	s := g.AddSource("kafka", src, 1)
	g.Add("sink", sink, 1, s.Forward())
	j := compile(t, g, arrowexec.RunOptions{Mem: mem})
	c := &metrics.Collector{}
	c.SetJob("k", j)
	done := start(j)
	m := j.Metrics("sink")[0]
	idle1 := func() bool {
		for _, sp := range j.Metrics("kafka")[0].Splits() {
			if sp.Split == topic+"/1" && sp.Idle.Load() {
				return true
			}
		}
		return false
	}
	lagKnown := func() bool {
		for _, ps := range src.Status() {
			if ps.Lag != 0 {
				return false
			}
		}
		return true
	}
	giveUp := time.After(2 * time.Minute)
	for m.RowsIn.Load() < n || !idle1() || !lagKnown() {
		select {
		case err := <-done:
			t.Fatalf("job ended: %v", err)
		case <-giveUp:
			t.Fatalf("within 2 minutes: %d rows of %d, partition 1 idle %v, lag known %v", m.RowsIn.Load(), n, idle1(), lagKnown())
		case <-time.After(5 * time.Millisecond):
		}
	}
	fams := families(t, c)
	j.Stop(false)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"riffle_kafka_messages_total", map[string]string{"node": "kafka"}, n + 1},
		{"riffle_kafka_consumer_lag_messages", map[string]string{"topic": topic, "partition": "0"}, 0},
		{"riffle_kafka_consumer_lag_messages", map[string]string{"topic": topic, "partition": "1"}, 0},
		{"riffle_source_split_watermark_seconds", map[string]string{"split": topic + "/0"}, float64(maxTS-5000-1) / 1000},
		{"riffle_source_split_idle", map[string]string{"split": topic + "/1"}, 1},
		{"riffle_dead_letters_total", map[string]string{"node": "kafka", "reason": "bad_value"}, 1},
		{"riffle_rows_in_total", map[string]string{"node": "sink"}, n},
	} {
		if v, ok := value(fams, c.name, c.labels); !ok || v != c.want {
			t.Errorf("%s%v = %v (%v), want %v", c.name, c.labels, v, ok, c.want)
		}
	}
	if _, ok := value(fams, "riffle_source_split_watermark_seconds", map[string]string{"split": topic + "/1"}); ok {
		t.Errorf("partition 1, which holds nothing, has a watermark")
	}
	lint(t, c)
}
