package hybrid_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/arrowexec/exectest"
	"github.com/riffle-dev/riffle/internal/gen"
	"github.com/riffle-dev/riffle/internal/kafkatest"
	"github.com/riffle-dev/riffle/sinks"
	ksink "github.com/riffle-dev/riffle/sinks/kafka"
	"github.com/riffle-dev/riffle/sources/hybrid"
	"github.com/riffle-dev/riffle/sources/kafka"
	"github.com/riffle-dev/riffle/sources/parquet"
)

var fields = []kafka.Field{
	{Name: "user_id", Type: kafka.Int64, Required: true},
	{Name: "item_id", Type: kafka.Int64, Required: true},
	{Name: "event_type", Type: kafka.String, Required: true},
	{Name: "weight", Type: kafka.Float64, Required: true},
	{Name: "event_time", Type: kafka.Timestamp, Required: true},
}

// rowKeys renders every row as text, sorted: the multiset of rows.
func rowKeys(bs []arrow.RecordBatch) []string {
	var out []string
	for _, b := range bs {
		for i := 0; i < int(b.NumRows()); i++ {
			var parts []string
			for c := 0; c < int(b.NumCols()); c++ {
				parts = append(parts, b.Column(c).ValueStr(i))
			}
			out = append(out, strings.Join(parts, "|"))
		}
	}
	slices.Sort(out)
	return out
}

func seq(bs []arrow.RecordBatch) iter.Seq2[arrow.RecordBatch, error] {
	return func(yield func(arrow.RecordBatch, error) bool) {
		for _, b := range bs {
			if !yield(b, nil) {
				return
			}
		}
	}
}

// writeParquet writes the given batches to one Parquet file through the
// file sink (single subtask) and returns its path.
func writeParquet(t *testing.T, mem memory.Allocator, dir string, bs []arrow.RecordBatch) string {
	t.Helper()
	spec, err := sinks.NewFile(sinks.FileOptions{Dir: dir, NoSync: true, Parquet: sinks.ParquetOptions{RowGroupRows: 3000}})
	if err != nil {
		t.Fatal(err)
	}
	src := exectest.NewSource(gen.Schema, bs)
	defer src.Release()
	g := arrowexec.NewGraph()
	s := g.AddSource("src", src, 1)
	g.Add("sink", spec, 1, s.Forward())
	j, err := g.Compile(arrowexec.RunOptions{Mem: mem})
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	return dir
}

// split returns the rows of bs with event time < cut, and the others.
func split(t *testing.T, mem memory.Allocator, bs []arrow.RecordBatch, cut int64) (before, after []arrow.RecordBatch) {
	for _, b := range bs {
		ts, err := arrowexec.EventTimesMillis(b.Column(4), nil)
		if err != nil {
			t.Fatal(err)
		}
		var lo, hi []int32
		for i, v := range ts {
			if v < cut {
				lo = append(lo, int32(i))
			} else {
				hi = append(hi, int32(i))
			}
		}
		for _, sel := range []struct {
			idx []int32
			dst *[]arrow.RecordBatch
		}{{lo, &before}, {hi, &after}} {
			if len(sel.idx) == 0 {
				continue
			}
			r, err := arrowexec.TakeRecord(mem, b, sel.idx)
			if err != nil {
				t.Fatal(err)
			}
			*sel.dst = append(*sel.dst, r)
		}
	}
	return before, after
}

func run(t *testing.T, mem memory.Allocator, src arrowexec.Source, p int) []string {
	t.Helper()
	sink := exectest.NewSink()
	defer sink.Release()
	g := arrowexec.NewGraph()
	s := g.AddSource("hybrid", src, p)
	g.Add("sink", sink, 1, s.Rebalance())
	j, err := g.Compile(arrowexec.RunOptions{Mem: mem})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := j.Run(ctx); err != nil {
		t.Fatal(err)
	}
	return rowKeys(sink.All())
}

// TestEventTimeBoundary: the files hold the rows before T, the topic holds
// every row (timestamps = event times, with disorder); the hybrid source
// yields every row exactly once, at several parallelisms.
func TestEventTimeBoundary(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	g, err := gen.New(gen.Options{Rows: 20_000, Users: 300, Items: 100, Seed: 5, Span: time.Hour, Disorder: 20 * time.Second, RowGroupRows: 4000, Mem: mem})
	if err != nil {
		t.Fatal(err)
	}
	var all []arrow.RecordBatch
	for c := 0; c < g.NumChunks(); c++ {
		all = append(all, g.Chunk(c))
	}
	defer func() {
		for _, b := range all {
			b.Release()
		}
	}()
	want := rowKeys(all)
	cut := gen.DefaultStart.Add(37 * time.Minute)
	before, after := split(t, mem, all, cut.UnixMilli())
	defer func() {
		for _, b := range append(before, after...) {
			b.Release()
		}
	}()
	if len(before) == 0 || len(after) == 0 {
		t.Fatal("boundary does not split the data")
	}
	dir := writeParquet(t, mem, filepath.Join(t.TempDir(), "backfill"), before)

	topic := kafkatest.CreateTopic(t, brokers, "hybrid", 3)
	ctx := context.Background()
	// The topic holds everything (as a retained topic would): rows before
	// the boundary must be taken from the files only.
	if _, err := ksink.Produce(ctx, ksink.ProduceOptions{Brokers: []string{brokers}, Topic: topic, KeyColumn: "user_id", TimestampColumn: "event_time"}, seq(all)); err != nil {
		t.Fatal(err)
	}
	for _, p := range []int{1, 2, 3} {
		t.Run(fmt.Sprint("p=", p), func(t *testing.T) {
			src, err := hybrid.New(ctx, hybrid.Options{
				Parquet:  parquet.Options{Paths: []string{dir}},
				Kafka:    kafka.Options{Brokers: []string{brokers}, Topics: []string{topic}, Fields: fields, Bounded: true},
				Boundary: hybrid.Boundary{EventTime: cut, Column: "event_time"},
			})
			if err != nil {
				t.Fatal(err)
			}
			got := run(t, mem, src, p)
			if len(got) != len(want) {
				t.Fatalf("%d rows, want %d", len(got), len(want))
			}
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("row %d: got %s, want %s", i, got[i], want[i])
				}
			}
		})
	}
	t.Run("watermarks", func(t *testing.T) {
		strategy := arrowexec.WatermarkStrategy{Column: "event_time", MaxOutOfOrderness: 20 * time.Second}
		src, err := hybrid.New(ctx, hybrid.Options{
			Parquet:  parquet.Options{Paths: []string{dir}, Watermark: strategy},
			Kafka:    kafka.Options{Brokers: []string{brokers}, Topics: []string{topic}, Fields: fields, Bounded: true, Watermark: strategy},
			Boundary: hybrid.Boundary{EventTime: cut, Column: "event_time"},
		})
		if err != nil {
			t.Fatal(err)
		}
		checkHybridWatermarks(t, src, mem, cut.UnixMilli())
	})
}

// checkHybridWatermarks reads one hybrid subtask directly and checks its
// watermarks: no row at or below a watermark reported before it, and
// progress already in the Parquet phase (rows before cut), where the files
// are in event-time order.
func checkHybridWatermarks(t *testing.T, src arrowexec.Source, mem memory.Allocator, cut int64) {
	t.Helper()
	ctx := context.Background()
	r, err := src.Open(ctx, &arrowexec.Task{Node: "hybrid", Parallelism: 1, Mem: mem, Log: slog.New(slog.DiscardHandler), Metrics: &arrowexec.TaskMetrics{}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	wms := r.(arrowexec.WatermarkSource)
	wm, inFiles := arrowexec.MinWatermark, arrowexec.MinWatermark
	for {
		b, err := r.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if b == nil {
			continue
		}
		ts, err := arrowexec.EventTimesMillis(b.Column(4), nil)
		if err != nil {
			t.Fatal(err)
		}
		fromFiles := false
		for _, v := range ts {
			if v <= wm {
				t.Fatalf("row at %d read after watermark %d", v, wm)
			}
			fromFiles = fromFiles || v < cut
		}
		b.Release()
		if w, idle := wms.CurrentWatermark(); !idle && w > wm {
			wm = w
		}
		if fromFiles {
			inFiles = wm
		}
	}
	if inFiles == arrowexec.MinWatermark || inFiles >= cut {
		t.Fatalf("watermark during the Parquet phase: %d (boundary %d): want progress below the boundary", inFiles, cut)
	}
}

// TestOffsetBoundary: the files hold the first messages of each partition,
// the boundary names the offsets after them; nothing is filtered.
func TestOffsetBoundary(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	g, err := gen.New(gen.Options{Rows: 6000, Users: 50, Items: 40, Seed: 9, RowGroupRows: 2000, Mem: mem})
	if err != nil {
		t.Fatal(err)
	}
	var all []arrow.RecordBatch
	for c := 0; c < g.NumChunks(); c++ {
		all = append(all, g.Chunk(c))
	}
	defer func() {
		for _, b := range all {
			b.Release()
		}
	}()
	ctx := context.Background()
	topic := kafkatest.CreateTopic(t, brokers, "hybrid-offsets", 1)
	// First chunk: exported to files; the rest only in the topic.
	if _, err := ksink.Produce(ctx, ksink.ProduceOptions{Brokers: []string{brokers}, Topic: topic}, seq(all)); err != nil {
		t.Fatal(err)
	}
	first := all[0].NumRows()
	dir := writeParquet(t, mem, filepath.Join(t.TempDir(), "backfill"), all[:1])
	src, err := hybrid.New(ctx, hybrid.Options{
		Parquet:  parquet.Options{Paths: []string{dir}},
		Kafka:    kafka.Options{Brokers: []string{brokers}, Topics: []string{topic}, Fields: fields, Bounded: true},
		Boundary: hybrid.Boundary{Offsets: map[string]map[int]int64{topic: {0: first}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	got := run(t, mem, src, 2)
	want := rowKeys(all)
	if !slices.Equal(got, want) {
		t.Fatalf("%d rows, want %d (first difference hidden in %d rows)", len(got), len(want), len(want))
	}
}
