package embedkafka

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	kafkago "github.com/segmentio/kafka-go"

	"github.com/riffle-dev/riffle/arrowexec"
	ksink "github.com/riffle-dev/riffle/sinks/kafka"
	ksrc "github.com/riffle-dev/riffle/sources/kafka"
)

type explicit struct{}

func (explicit) Balance(m kafkago.Message, _ ...int) int { return m.Partition }

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func start(t *testing.T, topics map[string]int) string {
	t.Helper()
	brokers, stop, err := Start(context.Background(), topics)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return brokers
}

func produce(t *testing.T, brokers, topic string, n, parts int) {
	t.Helper()
	w := &kafkago.Writer{Addr: kafkago.TCP(brokers), Topic: topic, Balancer: explicit{}, RequiredAcks: kafkago.RequireAll,
		BatchTimeout: time.Millisecond, BatchSize: n}
	defer w.Close()
	msgs := make([]kafkago.Message, n)
	for i := range msgs {
		msgs[i] = kafkago.Message{Partition: i % parts, Key: []byte(fmt.Sprint(i)),
			Value: []byte(fmt.Sprintf(`{"id":%d}`, i)), Time: t0.Add(time.Duration(i) * time.Second)}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatalf("Writer.WriteMessages: %v", err)
	}
}

// TestKafkaGoAgainstKfake checks every kafka-go call riffle uses.
func TestKafkaGoAgainstKfake(t *testing.T) {
	brokers := start(t, map[string]int{"a": 3, "b": 1})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	produce(t, brokers, "a", 30, 3)
	c := &kafkago.Client{Addr: kafkago.TCP(brokers), Timeout: 10 * time.Second}

	t.Run("metadata", func(t *testing.T) {
		md, err := c.Metadata(ctx, &kafkago.MetadataRequest{Topics: []string{"a", "b", "missing"}})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, tp := range md.Topics {
			got[tp.Name] = fmt.Sprint(len(tp.Partitions), " ", tp.Error)
		}
		if got["a"] != "3 <nil>" || got["b"] != "1 <nil>" || !errors.Is(errOf(md, "missing"), kafkago.UnknownTopicOrPartition) {
			t.Fatalf("metadata %v", got)
		}
	})
	t.Run("list-offsets", func(t *testing.T) {
		res, err := c.ListOffsets(ctx, &kafkago.ListOffsetsRequest{Topics: map[string][]kafkago.OffsetRequest{
			"a": {kafkago.FirstOffsetOf(0), kafkago.LastOffsetOf(1), {Partition: 2, Timestamp: t0.Add(15 * time.Second).UnixMilli()}},
		}})
		if err != nil {
			t.Fatal(err)
		}
		got := map[int]string{}
		for _, p := range res.Topics["a"] {
			offs := map[int64]bool{}
			for o := range p.Offsets {
				offs[o] = true // kfake answers with the requested timestamp, not the record's: compare offsets only
			}
			got[p.Partition] = fmt.Sprint(p.FirstOffset, p.LastOffset, offs, p.Error)
		}
		// partition 2 holds messages 2, 5, 8, ...: the first at or after
		// t0+15s is message 17, its offset 5.
		want := map[int]string{0: "0 -1 map[] <nil>", 1: "-1 10 map[] <nil>", 2: "-1 -1 map[5:true] <nil>"}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("got %v\nwant %v", got, want)
		}
	})
	t.Run("conn-fetch", func(t *testing.T) {
		conn, err := kafkago.DialLeader(ctx, "tcp", brokers, "a", 1)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		first, last, err := conn.ReadOffsets()
		if err != nil || first != 0 || last != 10 {
			t.Fatalf("ReadOffsets = %d, %d, %v", first, last, err)
		}
		if _, err := conn.Seek(4, kafkago.SeekAbsolute|kafkago.SeekDontCheck); err != nil {
			t.Fatal(err)
		}
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		b := conn.ReadBatchWith(kafkago.ReadBatchConfig{MinBytes: 1, MaxBytes: 1 << 20, MaxWait: 100 * time.Millisecond})
		var offs []int64
		for {
			m, err := b.ReadMessage()
			if err != nil {
				break
			}
			offs = append(offs, m.Offset)
			if want := fmt.Sprintf(`{"id":%d}`, 1+3*m.Offset); string(m.Value) != want || !m.Time.Equal(t0.Add(time.Duration(1+3*m.Offset)*time.Second)) {
				t.Errorf("offset %d: %s at %v", m.Offset, m.Value, m.Time)
			}
		}
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(offs) != "[4 5 6 7 8 9]" {
			t.Fatalf("fetched offsets %v", offs)
		}
	})
	t.Run("group-commit-fetch", func(t *testing.T) {
		res, err := c.OffsetCommit(ctx, &kafkago.OffsetCommitRequest{GroupID: "g1", GenerationID: -1,
			Topics: map[string][]kafkago.OffsetCommit{"a": {{Partition: 0, Offset: 7}}}})
		if err != nil || res.Topics["a"][0].Error != nil {
			t.Fatalf("OffsetCommit: %v %v", err, res)
		}
		fr, err := c.OffsetFetch(ctx, &kafkago.OffsetFetchRequest{GroupID: "g1", Topics: map[string][]int{"a": {0, 1}}})
		if err != nil {
			t.Fatal(err)
		}
		got := map[int]int64{}
		for _, p := range fr.Topics["a"] {
			got[p.Partition] = p.CommittedOffset
		}
		if got[0] != 7 || got[1] != -1 {
			t.Fatalf("committed %v", got)
		}
	})
	t.Run("create-delete-topics", func(t *testing.T) {
		res, err := c.CreateTopics(ctx, &kafkago.CreateTopicsRequest{Topics: []kafkago.TopicConfig{{Topic: "new", NumPartitions: 2, ReplicationFactor: 1}}})
		if err != nil || res.Errors["new"] != nil {
			t.Fatalf("CreateTopics: %v %v", err, res)
		}
		produce(t, brokers, "new", 4, 2)
		dres, err := c.DeleteTopics(ctx, &kafkago.DeleteTopicsRequest{Topics: []string{"new"}})
		if err != nil || dres.Errors["new"] != nil {
			t.Fatalf("DeleteTopics: %v %v", err, dres)
		}
	})
	t.Run("conn-read-offset-by-time", func(t *testing.T) {
		conn, err := kafkago.DialLeader(ctx, "tcp", brokers, "a", 0)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		// partition 0 holds messages 0, 3, 6, ...: t0+7s falls on message 9, offset 3.
		off, err := conn.ReadOffset(t0.Add(7 * time.Second))
		if err != nil || off != 3 {
			t.Fatalf("ReadOffset = %d, %v; want 3", off, err)
		}
	})
	t.Run("reader-group", func(t *testing.T) {
		r := kafkago.NewReader(kafkago.ReaderConfig{Brokers: []string{brokers}, GroupID: "g2", Topic: "a",
			MaxWait: 100 * time.Millisecond, CommitInterval: 0})
		defer r.Close()
		seen := 0
		for seen < 30 {
			m, err := r.FetchMessage(ctx)
			if err != nil {
				t.Fatalf("FetchMessage after %d: %v", seen, err)
			}
			if err := r.CommitMessages(ctx, m); err != nil {
				t.Fatalf("CommitMessages: %v", err)
			}
			seen++
		}
	})
}

func errOf(md *kafkago.MetadataResponse, topic string) error {
	for _, t := range md.Topics {
		if t.Name == topic {
			return t.Error
		}
	}
	return kafkago.UnknownTopicOrPartition // not listed at all: also unknown
}

// TestRiffleSourceAndSink runs riffle's Kafka source and sink against the
// embedded broker, as the quickstart does.
func TestRiffleSourceAndSink(t *testing.T) {
	brokers := start(t, map[string]int{"in": 4, "out": 2})
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	ctx := context.Background()

	schema := arrow.NewSchema([]arrow.Field{{Name: "id", Type: arrow.PrimitiveTypes.Int64}}, nil)
	bld := array.NewRecordBuilder(mem, schema)
	for i := range 1000 {
		bld.Field(0).(*array.Int64Builder).Append(int64(i))
	}
	batch := bld.NewRecordBatch()
	bld.Release()
	st, err := ksink.Produce(ctx, ksink.ProduceOptions{Brokers: []string{brokers}, Topic: "in", KeyColumn: "id"},
		func(yield func(arrow.RecordBatch, error) bool) { yield(batch, nil) })
	batch.Release()
	if err != nil || st.Messages != 1000 {
		t.Fatalf("Produce: %v, %+v", err, st)
	}
	src, err := ksrc.New(ctx, ksrc.Options{Brokers: []string{brokers}, Topics: []string{"in"}, Bounded: true,
		Fields: []ksrc.Field{{Name: "id", Type: ksrc.Int64, Required: true}}, GroupID: "quickstart"})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int64]int{}
	for sub := range 2 {
		r, err := src.Open(ctx, &arrowexec.Task{Subtask: sub, Parallelism: 2, Mem: mem, Metrics: &arrowexec.TaskMetrics{}})
		if err != nil {
			t.Fatal(err)
		}
		for {
			b, err := r.Next(ctx)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if b != nil {
				for _, v := range b.Column(0).(*array.Int64).Int64Values() {
					seen[v]++
				}
				b.Release()
			}
		}
		if _, err := r.(arrowexec.Checkpointer).SnapshotState(ctx, 1); err != nil {
			t.Fatal(err)
		}
		if err := r.(arrowexec.CheckpointListener).NotifyCheckpointComplete(ctx, 1); err != nil {
			t.Fatal(err)
		}
		r.Close()
	}
	if len(seen) != 1000 {
		t.Fatalf("read %d distinct ids, want 1000", len(seen))
	}
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("id %d read %d times", id, n)
		}
	}
	if s := src.Stats(); s.Commits != 2 || s.CommitErrors != 0 {
		t.Fatalf("stats %+v: want 2 commits", s)
	}
}

// TestSourceBrokerGone stops the broker under a running reader: after
// retrying for RetryTimeout the reader fails with an error naming the
// partition, the step that failed and the brokers.
func TestSourceBrokerGone(t *testing.T) {
	brokers, stop, err := Start(context.Background(), map[string]int{"t": 1})
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	ctx := context.Background()
	src, err := ksrc.New(ctx, ksrc.Options{Brokers: []string{brokers}, Topics: []string{"t"}, Format: ksrc.FormatRaw,
		RetryTimeout: 300 * time.Millisecond, RetryBackoff: 10 * time.Millisecond, ConnectTimeout: 2 * time.Second, MaxBatchDelay: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	r, err := src.Open(ctx, &arrowexec.Task{Subtask: 0, Parallelism: 1, Mem: mem, Metrics: &arrowexec.TaskMetrics{}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	stop()
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, err := r.Next(ctx)
		if b != nil {
			b.Release()
		}
		if err != nil {
			var fe *ksrc.FetchError
			if !errors.As(err, &fe) || fe.Topic != "t" || fe.Partition != 0 || fe.Brokers != brokers || fe.Attempts < 2 || fe.For < 300*time.Millisecond {
				t.Fatalf("got %v, want a FetchError for t/0 after retrying for 300ms", err)
			}
			// The broker is gone: the connection to it is refused, or the
			// connection in use breaks during a fetch.
			if fe.Step != "dial" && fe.Step != "fetch" {
				t.Fatalf("failed step %q, want dial or fetch: %v", fe.Step, err)
			}
			want := fmt.Sprintf(`kafka: topic "t" partition 0 offset 0: %s failed %d times over `, fe.Step, fe.Attempts)
			if !strings.HasPrefix(err.Error(), want) {
				t.Fatalf("got %v, want prefix %q", err, want)
			}
			t.Log(err)
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("reader did not fail after the broker stopped")
		}
	}
}
