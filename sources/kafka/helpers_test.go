package kafka

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	kafkago "github.com/segmentio/kafka-go"

	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/arrowexec/exectest"
	"github.com/riffle-dev/riffle/internal/kafkatest"
)

// row is one decoded row as Go values, for comparisons with an oracle.
type row struct {
	Partition int
	Offset    int64
	ID        int64
	Name      string
	Price     float64
	PriceNull bool
	TS        int64
}

var testFields = []Field{
	{Name: "id", Type: Int64, Required: true},
	{Name: "name", Type: String},
	{Name: "price", Type: Float64},
	{Name: "ts", Type: Timestamp},
}

var baseTime = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// genMessages returns n JSON messages over parts partitions (message i goes
// to partition i % parts) in varied encodings, and the rows they decode to.
func genMessages(n, parts int) ([]kafkago.Message, []row) {
	msgs := make([]kafkago.Message, n)
	want := make([]row, n)
	offs := make([]int64, parts)
	for i := range n {
		p := i % parts
		ts := baseTime.Add(time.Duration(i) * time.Second)
		r := row{Partition: p, Offset: offs[p], ID: int64(i), Name: fmt.Sprintf("n\"%d\u00e9", i), Price: float64(i) / 4, TS: ts.UnixMilli()}
		offs[p]++
		var v string
		switch i % 4 {
		case 0:
			v = fmt.Sprintf(`{"id":%d,"name":"n\"%d\u00e9","price":%g,"ts":"%s"}`, i, i, r.Price, ts.Format(time.RFC3339))
		case 1: // coercions: string id, epoch millis, extra nested field
			v = fmt.Sprintf(` { "ts" : %d, "extra": {"a":[1,2,{"b":null}]}, "id":"%d", "name":"n\"%d\u00e9", "price": "%g" } `, ts.UnixMilli(), i, i, r.Price)
		case 2: // null price, escaped unicode
			v = fmt.Sprintf(`{"id":%d.0,"name":"n\"%d\u00e9","price":null,"ts":"%d"}`, i, i, ts.UnixMilli())
			r.PriceNull, r.Price = true, 0
		default:
			v = fmt.Sprintf(`{"name":"n\"%d\u00e9","id":%de0,"price":%d,"ts":"%s"}`, i, i, i, ts.Format(time.RFC3339Nano))
			r.Price = float64(i)
		}
		msgs[i] = kafkago.Message{Partition: p, Key: []byte(fmt.Sprint(i)), Value: []byte(v), Time: ts}
		want[i] = r
	}
	return msgs, want
}

// rowsOf converts batches with testFields plus _partition and _offset.
func rowsOf(t testing.TB, bs []arrow.RecordBatch) []row {
	t.Helper()
	var out []row
	for _, b := range bs {
		col := func(name string) arrow.Array {
			idx := b.Schema().FieldIndices(name)
			if len(idx) != 1 {
				t.Fatalf("no column %q in %s", name, b.Schema())
			}
			return b.Column(idx[0])
		}
		ids := col("id").(*array.Int64)
		names := col("name").(*array.String)
		prices := col("price").(*array.Float64)
		tss := col("ts").(*array.Timestamp)
		parts := col(MetaPartition).(*array.Int32)
		offs := col(MetaOffset).(*array.Int64)
		for i := range int(b.NumRows()) {
			r := row{Partition: int(parts.Value(i)), Offset: offs.Value(i), ID: ids.Value(i), Name: names.Value(i), TS: int64(tss.Value(i))}
			if prices.IsNull(i) {
				r.PriceNull = true
			} else {
				r.Price = prices.Value(i)
			}
			out = append(out, r)
		}
	}
	sortRows(out)
	return out
}

func sortRows(rs []row) {
	sort.Slice(rs, func(i, j int) bool {
		if rs[i].Partition != rs[j].Partition {
			return rs[i].Partition < rs[j].Partition
		}
		return rs[i].Offset < rs[j].Offset
	})
}

func diffRows(t *testing.T, got, want []row) {
	t.Helper()
	want = append([]row(nil), want...)
	sortRows(want)
	if len(got) != len(want) {
		t.Errorf("got %d rows, want %d", len(got), len(want))
	}
	bad := 0
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			t.Errorf("row %d: got %+v, want %+v", i, got[i], want[i])
			if bad++; bad > 5 {
				t.FailNow()
			}
		}
	}
}

func testOptions(brokers, topic string) Options {
	return Options{
		Brokers:  []string{brokers},
		Topics:   []string{topic},
		Bounded:  true,
		Fields:   testFields,
		Metadata: []string{MetaPartition, MetaOffset},
	}
}

// runGraph runs src in a graph with a collecting sink and returns the rows.
func runGraph(t *testing.T, mem memory.Allocator, src arrowexec.Source, parallelism int) ([]row, error) {
	t.Helper()
	g := arrowexec.NewGraph()
	n := g.AddSource("kafka", src, parallelism)
	sink := exectest.NewSink()
	defer sink.Release()
	g.Add("sink", sink, 1, n.Rebalance())
	job, err := g.Compile(arrowexec.RunOptions{Mem: mem})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	err = job.Run(ctx)
	return rowsOf(t, sink.All()), err
}

// readAll drives a reader until io.EOF and returns its batches.
func readAll(t *testing.T, r arrowexec.SourceReader) []arrow.RecordBatch {
	t.Helper()
	var out []arrow.RecordBatch
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		b, err := r.Next(ctx)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if b != nil {
			out = append(out, b)
		}
	}
}

func release(bs []arrow.RecordBatch) {
	for _, b := range bs {
		b.Release()
	}
}

func task(mem memory.Allocator, subtask, parallelism int, restore *arrowexec.RestoreState) *arrowexec.Task {
	return &arrowexec.Task{Node: "kafka", Subtask: subtask, Parallelism: parallelism, MaxParallelism: 128,
		Mem: mem, Metrics: &arrowexec.TaskMetrics{}, Restore: restore,
		Log: slog.New(slog.NewTextHandler(os.Stderr, nil))}
}

func setup(t *testing.T, parts, n int) (brokers, topic string, want []row) {
	t.Helper()
	brokers = kafkatest.Brokers(t)
	topic = kafkatest.CreateTopic(t, brokers, t.Name(), parts)
	msgs, want := genMessages(n, parts)
	kafkatest.Produce(t, brokers, topic, msgs)
	return brokers, topic, want
}
