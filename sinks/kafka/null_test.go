package kafka

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"reflect"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/memory"
	kafkago "github.com/segmentio/kafka-go"

	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/arrowexec/exectest"
	"github.com/riffle-dev/riffle/internal/kafkatest"
)

// nullSchema has a nullable key column and nullable columns of every kind
// the encoder writes.
var nullSchema = arrow.NewSchema([]arrow.Field{
	{Name: "k", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "i64", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	{Name: "i32", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
	{Name: "u8", Type: arrow.PrimitiveTypes.Uint8, Nullable: true},
	{Name: "f64", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: "f32", Type: arrow.PrimitiveTypes.Float32, Nullable: true},
	{Name: "b", Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
	{Name: "s", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "ls", Type: arrow.BinaryTypes.LargeString, Nullable: true},
	{Name: "bin", Type: arrow.BinaryTypes.Binary, Nullable: true},
	{Name: "ts", Type: &arrow.TimestampType{Unit: arrow.Millisecond, TimeZone: "UTC"}, Nullable: true},
	{Name: "d", Type: arrow.FixedWidthTypes.Date32, Nullable: true},
	{Name: "dec", Type: &arrow.Decimal128Type{Precision: 10, Scale: 2}, Nullable: true},
	{Name: "dict", Type: &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: arrow.BinaryTypes.String}, Nullable: true},
	{Name: "nul", Type: arrow.Null, Nullable: true},
}, nil)

// nullRow is row i as Go values, nil for NULL: the test's expectation,
// written without the encoder.
func nullRow(i int) (key []byte, value map[string]any) {
	null := func(col int) bool { return (i+col)%(col+2) == 0 }
	v := map[string]any{}
	set := func(col int, name string, x any) {
		if null(col) {
			v[name] = nil
		} else {
			v[name] = x
		}
	}
	v["k"] = nil
	if !null(0) {
		key = []byte(fmt.Sprintf("key-%d", i%5))
		v["k"] = string(key)
	}
	t := time.Date(2026, 2, 3, 4, 5, 6, 0, time.UTC).Add(time.Duration(i) * 1500 * time.Millisecond)
	set(1, "i64", float64(int64(i)*1_000_003-77))
	set(2, "i32", float64(-i))
	set(3, "u8", float64(i%256))
	set(4, "f64", float64(i)/8)
	set(5, "f32", float64(float32(i)/4))
	set(6, "b", i%3 == 0)
	set(7, "s", fmt.Sprintf("s\"%d\n", i))
	set(8, "ls", fmt.Sprintf("large %d", i))
	set(9, "bin", base64.StdEncoding.EncodeToString([]byte{byte(i), 0, 255}))
	set(10, "ts", t.Format("2006-01-02T15:04:05.000Z"))
	set(11, "d", t.AddDate(0, 0, i).Format(time.DateOnly))
	set(12, "dec", float64(i*100+7)/100)
	// The dictionary column: a null index, or an index of the null value
	// (index 2), are both null.
	switch {
	case null(13) || i%4 == 2:
		v["dict"] = nil
	default:
		v["dict"] = []string{"red", "green", "", "blue"}[i%4]
	}
	v["nul"] = nil
	return key, v
}

// nullBatch builds rows 0..n-1 of nullRow. The dictionary column's
// dictionary is red, green, NULL, blue.
func nullBatch(t *testing.T, mem memory.Allocator, n int) arrow.RecordBatch {
	fields := nullSchema.Fields()
	plain := arrow.NewSchema(append(append([]arrow.Field{}, fields[:13]...), fields[14]), nil)
	b := array.NewRecordBuilder(mem, plain)
	defer b.Release()
	idx := array.NewInt32Builder(mem)
	defer idx.Release()
	for i := range n {
		key, v := nullRow(i)
		if key == nil {
			b.Field(0).AppendNull()
		} else {
			b.Field(0).(*array.StringBuilder).Append(string(key))
		}
		ts := time.Date(2026, 2, 3, 4, 5, 6, 0, time.UTC).Add(time.Duration(i) * 1500 * time.Millisecond)
		app := func(col int, f func()) {
			if v[nullSchema.Field(col).Name] == nil {
				b.Field(col).AppendNull()
			} else {
				f()
			}
		}
		app(1, func() { b.Field(1).(*array.Int64Builder).Append(int64(i)*1_000_003 - 77) })
		app(2, func() { b.Field(2).(*array.Int32Builder).Append(int32(-i)) })
		app(3, func() { b.Field(3).(*array.Uint8Builder).Append(uint8(i % 256)) })
		app(4, func() { b.Field(4).(*array.Float64Builder).Append(float64(i) / 8) })
		app(5, func() { b.Field(5).(*array.Float32Builder).Append(float32(i) / 4) })
		app(6, func() { b.Field(6).(*array.BooleanBuilder).Append(i%3 == 0) })
		app(7, func() { b.Field(7).(*array.StringBuilder).Append(fmt.Sprintf("s\"%d\n", i)) })
		app(8, func() { b.Field(8).(*array.LargeStringBuilder).Append(fmt.Sprintf("large %d", i)) })
		app(9, func() { b.Field(9).(*array.BinaryBuilder).Append([]byte{byte(i), 0, 255}) })
		app(10, func() { b.Field(10).(*array.TimestampBuilder).Append(arrow.Timestamp(ts.UnixMilli())) })
		app(11, func() { b.Field(11).(*array.Date32Builder).Append(arrow.Date32FromTime(ts.AddDate(0, 0, i))) })
		app(12, func() {
			b.Field(12).(*array.Decimal128Builder).Append(decimal128.FromBigInt(big.NewInt(int64(i*100 + 7))))
		})
		b.Field(13).AppendNull()
		switch {
		case i%4 == 2:
			idx.Append(2) // the dictionary's null value
		case v["dict"] == nil:
			idx.AppendNull()
		default:
			idx.Append(int32(i % 4))
		}
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	db := array.NewStringBuilder(mem)
	defer db.Release()
	db.AppendValues([]string{"red", "green", "", "blue"}, []bool{true, true, false, true})
	dictValues := db.NewArray()
	defer dictValues.Release()
	indices := idx.NewArray()
	defer indices.Release()
	dict := array.NewDictionaryArray(fields[13].Type, indices, dictValues)
	defer dict.Release()
	cols := append(append([]arrow.Array{}, rec.Columns()[:13]...), dict, rec.Column(13))
	return array.NewRecordBatch(nullSchema, cols, int64(n))
}

// readTopic reads every message of a one-partition topic with kafka-go.
func readTopic(t *testing.T, brokers, topic string, n int) []kafkago.Message {
	t.Helper()
	r := kafkago.NewReader(kafkago.ReaderConfig{Brokers: []string{brokers}, Topic: topic, Partition: 0, MaxWait: 100 * time.Millisecond})
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out []kafkago.Message
	for len(out) < n {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			t.Fatalf("reading %s after %d messages: %v", topic, len(out), err)
		}
		out = append(out, m)
	}
	return out
}

// TestNullKeysAndValues sends rows with NULL keys and NULLs in every column
// type through Produce (riffle produce) and through a job's sink, and reads
// the topic back with kafka-go: a NULL key is a Kafka null key (not an
// empty one), a NULL value is JSON null, everything else as nullRow says.
func TestNullKeysAndValues(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	const n = 300
	check := func(t *testing.T, topic string) {
		msgs := readTopic(t, brokers, topic, n)
		for i, m := range msgs {
			key, want := nullRow(i)
			if (key == nil) != (m.Key == nil) || string(key) != string(m.Key) {
				t.Errorf("message %d: key %q (nil %v), want %q (nil %v)", i, m.Key, m.Key == nil, key, key == nil)
			}
			var got map[string]any
			if err := json.Unmarshal(m.Value, &got); err != nil {
				t.Fatalf("message %d: %s: %v", i, m.Value, err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("message %d:\n got %v\nwant %v", i, got, want)
			}
		}
	}
	t.Run("produce", func(t *testing.T) {
		topic := kafkatest.CreateTopic(t, brokers, t.Name(), 1)
		mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
		defer mem.AssertSize(t, 0)
		b := nullBatch(t, mem, n)
		defer b.Release()
		st, err := Produce(context.Background(), ProduceOptions{Brokers: []string{brokers}, Topic: topic, KeyColumn: "k"},
			func(yield func(arrow.RecordBatch, error) bool) { yield(b, nil) })
		if err != nil || st.Messages != n {
			t.Fatalf("Produce: %v, %+v", err, st)
		}
		check(t, topic)
	})
	t.Run("sink", func(t *testing.T) {
		topic := kafkatest.CreateTopic(t, brokers, t.Name(), 1)
		mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
		defer mem.AssertSize(t, 0)
		sink, err := New(context.Background(), Options{Brokers: []string{brokers}, Topic: topic, KeyColumn: "k"})
		if err != nil {
			t.Fatal(err)
		}
		b := nullBatch(t, mem, n)
		src := exectest.NewSource(nullSchema, []arrow.RecordBatch{b})
		b.Release()
		defer src.Release()
		g := arrowexec.NewGraph()
		s := g.AddSource("src", src, 1)
		g.Add("kafka", sink, 1, s.Forward())
		j, err := g.Compile(arrowexec.RunOptions{Mem: mem})
		if err != nil {
			t.Fatal(err)
		}
		if err := j.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
		check(t, topic)
	})
}
