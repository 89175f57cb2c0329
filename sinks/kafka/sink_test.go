package kafka

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/arrowexec/exectest"
	"github.com/riffle-dev/riffle/internal/arrowtext"
	"github.com/riffle-dev/riffle/internal/kafkatest"
	ksrc "github.com/riffle-dev/riffle/sources/kafka"
)

var testSchema = arrow.NewSchema([]arrow.Field{
	{Name: "id", Type: arrow.PrimitiveTypes.Int64},
	{Name: "name", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "price", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: "ts", Type: &arrow.TimestampType{Unit: arrow.Microsecond}},
	{Name: "flag", Type: arrow.FixedWidthTypes.Boolean},
}, nil)

var t0 = time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)

// makeBatches builds n rows in batches of size, row i with id i.
func makeBatches(mem memory.Allocator, n, size int) []arrow.RecordBatch {
	var out []arrow.RecordBatch
	b := array.NewRecordBuilder(mem, testSchema)
	defer b.Release()
	for i := range n {
		b.Field(0).(*array.Int64Builder).Append(int64(i))
		if i%7 == 3 {
			b.Field(1).AppendNull()
			b.Field(2).AppendNull()
		} else {
			b.Field(1).(*array.StringBuilder).Append(fmt.Sprintf("n\"%d\\\n\u00e9\x01", i))
			b.Field(2).(*array.Float64Builder).Append(float64(i) / 8)
		}
		b.Field(3).(*array.TimestampBuilder).Append(arrow.Timestamp(t0.Add(time.Duration(i)*time.Millisecond + 123*time.Microsecond).UnixMicro()))
		b.Field(4).(*array.BooleanBuilder).Append(i%2 == 0)
		if (i+1)%size == 0 || i == n-1 {
			out = append(out, b.NewRecordBatch())
		}
	}
	return out
}

// readBack reads the whole topic with the Kafka source.
func readBack(t *testing.T, mem memory.Allocator, brokers, topic string) map[int64]string {
	t.Helper()
	ctx := context.Background()
	src, err := ksrc.New(ctx, ksrc.Options{
		Brokers: []string{brokers}, Topics: []string{topic}, Bounded: true,
		Fields: []ksrc.Field{{Name: "id", Type: ksrc.Int64, Required: true}, {Name: "name", Type: ksrc.String},
			{Name: "price", Type: ksrc.Float64}, {Name: "ts", Type: ksrc.Timestamp}, {Name: "flag", Type: ksrc.Bool}},
		Metadata: []string{ksrc.MetaKey, ksrc.MetaTimestamp},
	})
	if err != nil {
		t.Fatal(err)
	}
	r, err := src.Open(ctx, &arrowexec.Task{Subtask: 0, Parallelism: 1, Mem: mem, Metrics: &arrowexec.TaskMetrics{}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	out := map[int64]string{}
	cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for {
		b, err := r.Next(cctx)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if b == nil {
			continue
		}
		for i := range int(b.NumRows()) {
			var vs []string
			for _, c := range b.Columns()[1:] {
				vs = append(vs, c.ValueStr(i))
			}
			id := b.Column(0).(*array.Int64).Value(i)
			if _, dup := out[id]; dup {
				t.Errorf("id %d read twice", id)
			}
			out[id] = strings.Join(vs, "|")
		}
		b.Release()
	}
}

func expectRow(i int, key string, msgTS string) string {
	name, price := fmt.Sprintf("n\"%d\\\n\u00e9\x01", i), fmt.Sprint(float64(i)/8)
	if i%7 == 3 {
		name, price = "(null)", "(null)"
	}
	ts := t0.Add(time.Duration(i) * time.Millisecond).Format(time.RFC3339Nano)
	return strings.Join([]string{name, price, ts, fmt.Sprint(i%2 == 0), key, msgTS}, "|")
}

func TestSinkRoundTrip(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.CreateTopic(t, brokers, t.Name(), 3)
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	const n = 2000
	batches := makeBatches(mem, n, 300)
	src := exectest.NewSource(testSchema, batches)
	release(batches)
	defer src.Release()

	sink, err := New(context.Background(), Options{Brokers: []string{brokers}, Topic: topic, KeyColumn: "id", TimestampColumn: "ts"})
	if err != nil {
		t.Fatal(err)
	}
	g := arrowexec.NewGraph()
	s := g.AddSource("src", src, 2)
	g.Add("kafka", sink, 2, s.Rebalance())
	job, err := g.Compile(arrowexec.RunOptions{Mem: mem})
	if err != nil {
		t.Fatal(err)
	}
	if err := job.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := readBack(t, mem, brokers, topic)
	if len(got) != n {
		t.Fatalf("read back %d rows, want %d", len(got), n)
	}
	for i := range n {
		// the key is the id's decimal text (binary _key), the message
		// timestamp the ts column (milliseconds)
		key := base64.StdEncoding.EncodeToString([]byte(fmt.Sprint(i)))
		msgTS := t0.Add(time.Duration(i) * time.Millisecond).Format(time.RFC3339Nano)
		want := expectRow(i, key, msgTS)
		if got[int64(i)] != want {
			t.Fatalf("row %d: got %q, want %q", i, got[int64(i)], want)
		}
	}
}

func release(bs []arrow.RecordBatch) {
	for _, b := range bs {
		b.Release()
	}
}

func TestSinkErrors(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	_, err := New(context.Background(), Options{Brokers: []string{brokers}, Topic: "riffle-missing-topic"})
	want := fmt.Sprintf(`kafka: topic "riffle-missing-topic" does not exist (brokers %s)`, brokers)
	if err == nil || err.Error() != want {
		t.Fatalf("got %v, want %s", err, want)
	}
	topic := kafkatest.CreateTopic(t, brokers, t.Name(), 1)
	sink, err := New(context.Background(), Options{Brokers: []string{brokers}, Topic: topic, KeyColumn: "nope"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sink.Schema([]*arrow.Schema{testSchema}); err == nil || !strings.Contains(err.Error(), `key column "nope"`) {
		t.Fatalf("got %v, want key column error", err)
	}
}

// TestSinkDeliveryError deletes the topic under a running sink: the
// delivery error must fail the job, naming the topic.
func TestSinkDeliveryError(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.CreateTopic(t, brokers, t.Name(), 1)
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	sink, err := New(context.Background(), Options{Brokers: []string{brokers}, Topic: topic, MaxAttempts: 2})
	if err != nil {
		t.Fatal(err)
	}
	kafkatest.DeleteTopic(t, brokers, topic)
	batches := makeBatches(mem, 10, 10)
	src := exectest.NewSource(testSchema, batches)
	release(batches)
	defer src.Release()
	g := arrowexec.NewGraph()
	s := g.AddSource("src", src, 1)
	g.Add("kafka", sink, 1, s.Forward())
	job, err := g.Compile(arrowexec.RunOptions{Mem: mem})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	err = job.Run(ctx)
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("kafka: topic %q", topic)) {
		t.Fatalf("got %v, want a delivery error naming the topic", err)
	}
}

func TestProduceRate(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.CreateTopic(t, brokers, t.Name(), 2)
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	const n, rate = 1500, 1000.0
	batches := makeBatches(mem, n, 256)
	defer release(batches)
	var seq iter.Seq2[arrow.RecordBatch, error] = func(yield func(arrow.RecordBatch, error) bool) {
		for _, b := range batches {
			if !yield(b, nil) {
				return
			}
		}
	}
	progress := 0
	st, err := Produce(context.Background(), ProduceOptions{Brokers: []string{brokers}, Topic: topic, Rate: rate, TimestampColumn: "ts",
		Progress: func(ProduceStats) { progress++ }}, seq)
	if err != nil {
		t.Fatal(err)
	}
	if st.Messages != n {
		t.Fatalf("produced %d, want %d", st.Messages, n)
	}
	if progress == 0 {
		t.Error("Progress never called in a 1.5s run")
	}
	// The schedule itself is TestPace's; the achieved rate is reported,
	// not asserted (timings belong in benchmarks).
	t.Logf("produced %d messages in %v: %.0f msgs/s (target %.0f)", st.Messages, st.Elapsed, st.Rate(), rate)
	got := readBack(t, mem, brokers, topic)
	if len(got) != n {
		t.Fatalf("read back %d rows, want %d", len(got), n)
	}
	for i := range n {
		msgTS := t0.Add(time.Duration(i) * time.Millisecond).Format(time.RFC3339Nano)
		if want := expectRow(i, "(null)", msgTS); got[int64(i)] != want {
			t.Fatalf("row %d: got %q, want %q", i, got[int64(i)], want)
		}
	}
}

// TestPace checks Produce's schedule against its closed form, with
// synthetic elapsed times: at elapsed e, after sent messages, exactly the
// messages k with k/rate <= e are allowed, so the schedule never runs
// ahead and leaves no due message behind, whatever the write latency
// between two calls.
func TestPace(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for range 20000 {
		p := pace{rate: []float64{1, 3, 10, 1000, 1500, 123456.5}[r.IntN(6)]}
		e := time.Duration(r.Int64N(int64(100 * time.Second)))
		due := int64(math.Floor(e.Seconds()*p.rate)) + 1 // messages 0..due-1 have k/rate <= e
		sent := r.Int64N(due + 5)
		got := p.tokens(e, sent)
		if got != due-sent {
			t.Fatalf("rate %g elapsed %v sent %d: %d tokens, want %d", p.rate, e, sent, got, due-sent)
		}
		if got > 0 {
			if last := sent + got - 1; p.at(last) > e {
				t.Fatalf("rate %g elapsed %v: message %d allowed before its time %v", p.rate, e, last, p.at(last))
			}
		} else if p.at(sent) <= e-time.Microsecond {
			t.Fatalf("rate %g elapsed %v: message %d due at %v but not allowed", p.rate, e, sent, p.at(sent))
		}
	}
}

// TestEncodeRowsOracle: each message of encodeBatch is one JSON object
// holding its row's values (encoding/json decodes it), timestamps in the
// column's unit without a zone (testSchema's is naive).
func TestEncodeRowsOracle(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	bs := makeBatches(mem, 50, 50)
	defer release(bs)
	var buf, keys []byte
	var tsBuf []int64
	msgs, err := encodeBatch(arrowtext.NewEncoder(arrowtext.JSON, testSchema), bs[0], 0, -1, &buf, &keys, nil, &tsBuf)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 50 {
		t.Fatalf("%d messages, want 50", len(msgs))
	}
	for i, msg := range msgs {
		var m map[string]any
		if err := json.Unmarshal(msg.Value, &m); err != nil {
			t.Fatalf("row %d: %s: %v", i, msg.Value, err)
		}
		if m["id"] != float64(i) || m["flag"] != (i%2 == 0) || string(msg.Key) != fmt.Sprint(i) {
			t.Fatalf("row %d: key %s value %s", i, msg.Key, msg.Value)
		}
		if want := t0.Add(time.Duration(i)*time.Millisecond + 123*time.Microsecond).Format("2006-01-02T15:04:05.000000"); m["ts"] != want {
			t.Fatalf("row %d: ts %v, want %s", i, m["ts"], want)
		}
	}
}
