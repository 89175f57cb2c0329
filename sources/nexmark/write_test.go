package nexmark

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
	kafkago "github.com/segmentio/kafka-go"

	"github.com/riffle-dev/riffle/internal/kafkatest"
	"github.com/riffle-dev/riffle/internal/oracle"
	ksink "github.com/riffle-dev/riffle/sinks/kafka"
)

// TestWriteParquetDuckDB writes each table of 1.2M events (two row groups)
// to Parquet and has DuckDB compute row counts, sums of every integer
// column and of every string's length, and the time range, against the
// same figures computed from the generator's batches.
func TestWriteParquetDuckDB(t *testing.T) {
	oracle.Python(t)
	dir := t.TempDir()
	for _, tab := range Tables {
		o := Options{Table: tab, Events: 1_200_000, Seed: 9}
		mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
		o.Mem = mem
		path := filepath.Join(dir, tab.String()+".parquet")
		var last int64
		if err := WriteParquet(context.Background(), path, o, func(ev int64) { last = ev }); err != nil {
			t.Fatal(err)
		}
		mem.AssertSize(t, 0)
		if last != o.Events {
			t.Fatalf("progress ended at %d events, want %d", last, o.Events)
		}
		o.Mem = nil
		tb := readTable(t, o)
		var sel []string
		var want []string
		sel = append(sel, "count(*)")
		want = append(want, fmt.Sprint(tb.n))
		for _, f := range tab.Schema().Fields() {
			if vs, ok := tb.ints[f.Name]; ok {
				var sum int64
				for _, v := range vs {
					sum += v
				}
				if f.Name == "date_time" || f.Name == "expires" {
					sel = append(sel, fmt.Sprintf("sum(epoch_ms(%s))::BIGINT", f.Name))
				} else {
					sel = append(sel, fmt.Sprintf("sum(%s)::BIGINT", f.Name))
				}
				want = append(want, fmt.Sprint(sum))
				continue
			}
			var sum int
			for _, s := range tb.strs[f.Name] {
				sum += len(s)
			}
			sel = append(sel, fmt.Sprintf("sum(octet_length(encode(%s)))::BIGINT", f.Name))
			want = append(want, fmt.Sprint(sum))
		}
		got := oracle.DuckDBStrings(t, fmt.Sprintf("SELECT %s FROM read_parquet('%s')", strings.Join(sel, ", "), path))
		if len(got) != 1 || strings.Join(got[0], " ") != strings.Join(want, " ") {
			t.Fatalf("%s: DuckDB says %v, want %v (%s)", tab, got, want, strings.Join(sel, ", "))
		}
	}
	if err := WriteParquet(context.Background(), filepath.Join(dir, "x.parquet"), Options{}, nil); err == nil {
		t.Fatal("WriteParquet of an unbounded stream succeeded")
	}
}

// TestProduceKafka replays the bids of 3000 events into a topic and reads
// them back: one JSON message per bid, in order, stamped with date_time.
func TestProduceKafka(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.CreateTopic(t, brokers, kafkatest.UniqueName("nexmark-bids"), 1)
	o := Options{Table: Bid, Events: 3000, Seed: 4}
	st, err := Produce(context.Background(), o, ksink.ProduceOptions{Brokers: []string{brokers}, Topic: topic})
	if err != nil {
		t.Fatal(err)
	}
	tb := readTable(t, o)
	if st.Messages != int64(tb.n) {
		t.Fatalf("produced %d messages, want %d", st.Messages, tb.n)
	}
	r := kafkago.NewReader(kafkago.ReaderConfig{Brokers: []string{brokers}, Topic: topic, Partition: 0, MaxWait: 100 * time.Millisecond})
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for i := range tb.n {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			t.Fatalf("reading message %d: %v", i, err)
		}
		var row struct {
			Auction, Bidder, Price int64
			Channel, URL, Extra    string
		}
		if err := json.Unmarshal(m.Value, &row); err != nil {
			t.Fatalf("message %d: %v: %s", i, err, m.Value)
		}
		if row.Auction != tb.ints["auction"][i] || row.Bidder != tb.ints["bidder"][i] || row.Price != tb.ints["price"][i] ||
			row.Channel != tb.strs["channel"][i] || row.URL != tb.strs["url"][i] || row.Extra != tb.strs["extra"][i] {
			t.Fatalf("message %d is %s", i, m.Value)
		}
		if m.Time.UnixMilli() != tb.ints["date_time"][i] {
			t.Fatalf("message %d stamped %v, want %d ms", i, m.Time, tb.ints["date_time"][i])
		}
	}
}
