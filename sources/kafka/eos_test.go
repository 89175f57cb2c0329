package kafka

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/internal/kafkatest"
	ksink "github.com/riffle-dev/riffle/sinks/kafka"
)

// TestDefaultReadsExactlyOnceSink: a topic written by riffle's exactly-once
// Kafka sink (a committed checkpoint, then a transaction aborted by the
// sink's Close) reads as the committed rows with the source's default
// options: transaction markers are not messages and aborted rows are not
// read. Isolation none (kafka-go's fetch) reads the markers as messages,
// and read_uncommitted sees the aborted rows: the topic does hold
// transactions. The rows the sink committed are the oracle.
func TestDefaultReadsExactlyOnceSink(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.CreateTopic(t, brokers, "eos-default", 2)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)

	schema := arrow.NewSchema([]arrow.Field{
		{Name: "id", Type: arrow.PrimitiveTypes.Int64},
		{Name: "name", Type: arrow.BinaryTypes.String},
		{Name: "price", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "ts", Type: &arrow.TimestampType{Unit: arrow.Millisecond, TimeZone: "UTC"}},
	}, nil)
	batch := func(lo, hi int) arrow.RecordBatch {
		b := array.NewRecordBuilder(mem, schema)
		defer b.Release()
		for i := lo; i < hi; i++ {
			b.Field(0).(*array.Int64Builder).Append(int64(i))
			b.Field(1).(*array.StringBuilder).Append(fmt.Sprintf("n\"%d\u00e9", i))
			b.Field(2).(*array.Float64Builder).Append(float64(i) / 4)
			b.Field(3).(*array.TimestampBuilder).Append(arrow.Timestamp(baseTime.Add(time.Duration(i) * time.Second).UnixMilli()))
		}
		return b.NewRecordBatch()
	}
	s, err := ksink.New(ctx, ksink.Options{Brokers: []string{brokers}, Topic: topic, KeyColumn: "id", Delivery: ksink.ExactlyOnce,
		TransactionTimeout: 10 * time.Minute, TransactionalIDPrefix: kafkatest.UniqueName("eos-default")})
	if err != nil {
		t.Fatal(err)
	}
	op, err := s.New(&arrowexec.Task{Node: "sink", Subtask: 0, Parallelism: 1, MaxParallelism: 128,
		Mem: mem, Log: slog.Default(), Inputs: []*arrow.Schema{schema}})
	if err != nil {
		t.Fatal(err)
	}
	if err := op.Open(ctx); err != nil {
		t.Fatal(err)
	}
	process := func(lo, hi int) {
		b := batch(lo, hi)
		defer b.Release()
		if err := op.Process(ctx, 0, b, nil); err != nil {
			t.Fatal(err)
		}
	}
	process(0, 60)
	process(60, 100)
	if _, err := op.(arrowexec.Checkpointer).SnapshotState(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if err := op.(arrowexec.CheckpointListener).NotifyCheckpointComplete(ctx, 1); err != nil {
		t.Fatal(err)
	}
	process(100, 150) // never checkpointed: Close aborts it
	if err := op.Close(); err != nil {
		t.Fatal(err)
	}

	read := func(iso Isolation) ([]row, error) {
		o := testOptions(brokers, topic)
		o.Isolation = iso
		src, err := New(ctx, o)
		if err != nil {
			t.Fatal(err)
		}
		return runGraph(t, mem, src, 2)
	}
	rows, err := read("")
	if err != nil {
		t.Fatalf("default options: %v", err)
	}
	var ids []int64
	for _, r := range rows {
		want := row{ID: r.ID, Name: fmt.Sprintf("n\"%d\u00e9", r.ID), Price: float64(r.ID) / 4,
			TS: baseTime.Add(time.Duration(r.ID) * time.Second).UnixMilli(), Partition: r.Partition, Offset: r.Offset}
		if r != want {
			t.Fatalf("row %+v, want %+v", r, want)
		}
		ids = append(ids, r.ID)
	}
	slices.Sort(ids)
	want := make([]int64, 100)
	for i := range want {
		want[i] = int64(i)
	}
	if !slices.Equal(ids, want) {
		t.Fatalf("default options read ids %v, want the committed 0..99 once each", ids)
	}
	if _, err := read(IsolationNone); err == nil || !strings.Contains(err.Error(), "not a JSON object") {
		t.Fatalf("isolation none: got %v, want a transaction marker read as a message", err)
	}
	// Last: kafkatest.ReadAll writes an end marker into the topic.
	if n := len(kafkatest.ReadAll(ctx, t, brokers, topic, 2, false)); n != 150 {
		t.Fatalf("read_uncommitted consumer: %d records, want the 150 written (committed and aborted)", n)
	}
}
