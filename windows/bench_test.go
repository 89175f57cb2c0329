package windows

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/internal/gen"
)

type discard struct{}

func (discard) Emit(_ context.Context, b arrow.RecordBatch) error {
	b.Release()
	return nil
}

// genBatches returns n rows of generated events (internal/gen) in batches
// of 64Ki rows, and the largest event time.
func genBatches(b *testing.B, n int64) ([]arrow.RecordBatch, int64) {
	g, err := gen.New(gen.Options{Rows: n, Seed: 1, RowGroupRows: 1 << 16, Span: time.Duration(n/1000) * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	var out []arrow.RecordBatch
	maxT := int64(0)
	for c := 0; c < g.NumChunks(); c++ {
		ch := g.Chunk(c)
		out = append(out, ch)
		col := ch.Column(ch.Schema().FieldIndices("event_time")[0])
		m, _, _, _ := arrowexec.MaxEventTime(col, nil)
		maxT = max(maxT, m)
	}
	return out, maxT
}

// benchWindow feeds generated events through one window operator with a
// watermark after each batch (5 s behind, the generator's disorder), as a
// source watermark would, and reports events/s on one goroutine.
func benchWindow(b *testing.B, opts Options) {
	batches, _ := genBatches(b, 1<<20)
	defer releaseBatches(batches)
	spec, err := New(opts)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	rows := 0
	for i := 0; i < b.N; i++ {
		op, err := spec.New(&arrowexec.Task{Node: "w", Parallelism: 1, MaxParallelism: 128, Mem: memory.DefaultAllocator, Inputs: []*arrow.Schema{batches[0].Schema()}})
		if err != nil {
			b.Fatal(err)
		}
		if err := op.Open(ctx); err != nil {
			b.Fatal(err)
		}
		wh := op.(arrowexec.WatermarkHandler)
		var scratch []int64
		for _, bt := range batches {
			if err := op.Process(ctx, 0, bt, discard{}); err != nil {
				b.Fatal(err)
			}
			var m int64
			m, _, scratch, _ = arrowexec.MaxEventTime(bt.Column(4), scratch)
			if err := wh.OnWatermark(ctx, m-5001, discard{}); err != nil {
				b.Fatal(err)
			}
			rows += int(bt.NumRows())
		}
		if err := wh.OnWatermark(ctx, arrowexec.MaxWatermark, discard{}); err != nil {
			b.Fatal(err)
		}
		op.Close()
	}
	b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "events/s")
}

func BenchmarkWindow(b *testing.B) {
	aggs := []Agg{{Func: Count, As: "n"}, {Func: Sum, Column: "weight", As: "total"}}
	for _, c := range []struct {
		name string
		o    Options
	}{
		{"tumbling-10m", Options{Kind: Tumbling, Size: 10 * time.Minute}},
		{"sliding-10m-5m", Options{Kind: Sliding, Size: 10 * time.Minute, Slide: 5 * time.Minute}},
		{"sliding-10m-1m", Options{Kind: Sliding, Size: 10 * time.Minute, Slide: time.Minute}},
		{"session-30s", Options{Kind: Session, Gap: 30 * time.Second}},
	} {
		for _, key := range []string{"item_id", "user_id"} {
			b.Run(fmt.Sprintf("%s/key=%s", c.name, key), func(b *testing.B) {
				o := c.o
				o.Keys, o.Time, o.Aggs = []string{key}, "event_time", aggs
				benchWindow(b, o)
			})
		}
	}
	b.Run("tumbling-10m/approx_distinct", func(b *testing.B) {
		benchWindow(b, Options{Kind: Tumbling, Size: 10 * time.Minute, Keys: []string{"item_id"}, Time: "event_time",
			Aggs: []Agg{{Func: ApproxDistinct, Column: "user_id"}}})
	})
}

// BenchmarkAssign measures the window assignment kernel alone.
func BenchmarkAssign(b *testing.B) {
	batches, _ := genBatches(b, 1<<16)
	defer releaseBatches(batches)
	for _, c := range []struct {
		name        string
		size, slide time.Duration
	}{{"tumbling", 10 * time.Minute, 10 * time.Minute}, {"sliding-2", 10 * time.Minute, 5 * time.Minute}} {
		b.Run(c.name, func(b *testing.B) {
			o := &operator{p: &plan{size: c.size.Milliseconds(), slide: c.slide.Milliseconds()}, wm: arrowexec.MinWatermark}
			col := batches[0].Column(4)
			o.ts, _ = arrowexec.EventTimesMillis(col, nil)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				o.assign(col)
			}
			b.ReportMetric(float64(b.N)*float64(len(o.ts))/b.Elapsed().Seconds(), "rows/s")
		})
	}
}
