package windows

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/arrowexec/agg"
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
	return genBatchesSpan(b, n, time.Duration(n/1000)*time.Second)
}

// genBatchesSpan is genBatches with events spread over span.
func genBatchesSpan(b *testing.B, n int64, span time.Duration) ([]arrow.RecordBatch, int64) {
	g, err := gen.New(gen.Options{Rows: n, Seed: 1, RowGroupRows: 1 << 16, Span: span})
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
	// collect.go: a KLL sketch per window; first and arg_max in the blob.
	for _, a := range []Agg{
		{Func: agg.Median, Column: "weight"},
		{Func: agg.First, Column: "weight"},
		{Func: agg.ArgMax, Column: "user_id", Column2: "weight"},
	} {
		b.Run("tumbling-10m/"+string(a.Func), func(b *testing.B) {
			benchWindow(b, Options{Kind: Tumbling, Size: 10 * time.Minute, Keys: []string{"item_id"}, Time: "event_time", Aggs: []Agg{a}})
		})
	}
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

// BenchmarkWindowManyLive: sliding windows 10m/2m keyed by user_id over 2M
// generated events spread over 7 days (100k users), with the watermark
// held back until the end of input (a bounded backfill, or a stream whose
// watermark is stuck): every (user, window) pair stays live, about 9M
// windows. "process" feeds all events and fires at the end; "snapshot"
// measures SnapshotState of the state after all events (before firing),
// "restore" opening an operator from that snapshot; "advancing" is the
// same input with a watermark after each batch (few live windows).
// RIFFLE_BENCH_LIVE_ROWS scales the input down (same density).
func BenchmarkWindowManyLive(b *testing.B) {
	n, span := int64(2_000_000), 7*24*time.Hour
	if v, err := strconv.ParseInt(os.Getenv("RIFFLE_BENCH_LIVE_ROWS"), 10, 64); err == nil && v > 0 {
		// Smaller runs keep the density: span scales with the rows.
		n, span = v, time.Duration(float64(span)*float64(v)/float64(n))
	}
	batches, _ := genBatchesSpan(b, n, span)
	defer releaseBatches(batches)
	opts := Options{Kind: Sliding, Size: 10 * time.Minute, Slide: 2 * time.Minute, Keys: []string{"user_id"}, Time: "event_time",
		Aggs: []Agg{{Func: Count, As: "n"}, {Func: Sum, Column: "weight", As: "total"}}}
	spec, err := New(opts)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	open := func() *operator {
		op, err := spec.New(&arrowexec.Task{Node: "w", Parallelism: 1, MaxParallelism: 128, Mem: memory.DefaultAllocator, Inputs: []*arrow.Schema{batches[0].Schema()}})
		if err != nil {
			b.Fatal(err)
		}
		if err := op.Open(ctx); err != nil {
			b.Fatal(err)
		}
		return op.(*operator)
	}
	feed := func(op *operator) int {
		rows := 0
		for _, bt := range batches {
			if err := op.Process(ctx, 0, bt, discard{}); err != nil {
				b.Fatal(err)
			}
			rows += int(bt.NumRows())
		}
		return rows
	}
	b.Run("process", func(b *testing.B) {
		b.ReportAllocs()
		rows := 0
		for i := 0; i < b.N; i++ {
			op := open()
			rows += feed(op)
			if err := op.OnWatermark(ctx, arrowexec.MaxWatermark, discard{}); err != nil {
				b.Fatal(err)
			}
			op.Close()
		}
		b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "events/s")
	})
	b.Run("advancing", func(b *testing.B) {
		// The same input with a watermark after each batch (5 s behind,
		// the generator's disorder): few live windows.
		b.ReportAllocs()
		rows := 0
		for i := 0; i < b.N; i++ {
			op := open()
			var scratch []int64
			for _, bt := range batches {
				if err := op.Process(ctx, 0, bt, discard{}); err != nil {
					b.Fatal(err)
				}
				var m int64
				m, _, scratch, _ = arrowexec.MaxEventTime(bt.Column(4), scratch)
				if err := op.OnWatermark(ctx, m-5001, discard{}); err != nil {
					b.Fatal(err)
				}
				rows += int(bt.NumRows())
			}
			if err := op.OnWatermark(ctx, arrowexec.MaxWatermark, discard{}); err != nil {
				b.Fatal(err)
			}
			op.Close()
		}
		b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "events/s")
	})
	b.Run("restore", func(b *testing.B) {
		// Open from the snapshot of all live windows.
		b.ReportAllocs()
		op := open()
		feed(op)
		snap, err := op.SnapshotState(ctx, 1)
		if err != nil {
			b.Fatal(err)
		}
		op.Close()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			rs := &arrowexec.RestoreState{CheckpointID: 1, KeyGroups: snap.KeyGroups, Operator: [][]byte{snap.Operator}}
			r, err := spec.New(&arrowexec.Task{Node: "w", Parallelism: 1, MaxParallelism: 128, Mem: memory.DefaultAllocator,
				Inputs: []*arrow.Schema{batches[0].Schema()}, Restore: rs})
			if err != nil {
				b.Fatal(err)
			}
			if err := r.Open(ctx); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			r.Close()
			b.StartTimer()
		}
	})
	b.Run("snapshot", func(b *testing.B) {
		b.ReportAllocs()
		var bytes int
		var elapsed time.Duration
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			op := open()
			feed(op)
			b.StartTimer()
			t0 := time.Now()
			snap, err := op.SnapshotState(ctx, 1)
			if err != nil {
				b.Fatal(err)
			}
			elapsed += time.Since(t0)
			b.StopTimer()
			bytes = len(snap.Operator)
			for _, kg := range snap.KeyGroups {
				bytes += len(kg)
			}
			if i == 0 {
				b.ReportMetric(float64(op.openWindows()), "windows")
			}
			op.Close()
			b.StartTimer()
		}
		b.ReportMetric(float64(bytes)/(1<<20), "MiB")
		b.ReportMetric(elapsed.Seconds()/float64(b.N), "s/snapshot")
	})
}
