package windows

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/state"
)

var distinctSchema = arrow.NewSchema([]arrow.Field{
	{Name: "k", Type: arrow.PrimitiveTypes.Int64},
	{Name: "t", Type: arrow.PrimitiveTypes.Int64},
	{Name: "u", Type: arrow.PrimitiveTypes.Int64},
}, nil)

// distinctBatches builds rows for n tumbling windows of one minute: key
// k = w % keys in minute w / keys, three rows per window with two distinct
// u values. Rows arrive in window order.
func distinctBatches(mem memory.Allocator, n, keys int) []arrow.RecordBatch {
	const batchRows = 1 << 16
	var out []arrow.RecordBatch
	b := array.NewRecordBuilder(mem, distinctSchema)
	defer b.Release()
	kb, tb, ub := b.Field(0).(*array.Int64Builder), b.Field(1).(*array.Int64Builder), b.Field(2).(*array.Int64Builder)
	rows := 0
	for w := 0; w < n; w++ {
		k, start := int64(w%keys), int64(w/keys)*time.Minute.Milliseconds()
		for r := int64(0); r < 3; r++ {
			kb.Append(k)
			tb.Append(start + r)
			ub.Append(int64(w) + r%2)
			if rows++; rows%batchRows == 0 {
				out = append(out, b.NewRecordBatch())
			}
		}
	}
	if rows%batchRows != 0 {
		out = append(out, b.NewRecordBatch())
	}
	return out
}

// BenchmarkCountDistinctFire fires n count_distinct windows (tumbling 1m,
// 3 rows and 2 distinct values each) with window state in memory or in
// Pebble. "once": every window fires at one watermark at the end of input
// (a backfill, or a stream whose watermark was held back); "advancing":
// 1000 keys, a watermark after each batch. windows/s counts processing and
// firing; s-last-watermark is the final watermark alone (in "once", the
// firing of every window). RIFFLE_BENCH_DISTINCT_WINDOWS replaces the window counts (e.g.
// "10000,20000": before the fix, Pebble took minutes at 100k).
func BenchmarkCountDistinctFire(b *testing.B) {
	sizes := []int{100_000, 1_000_000}
	if v := os.Getenv("RIFFLE_BENCH_DISTINCT_WINDOWS"); v != "" {
		sizes = sizes[:0]
		for _, f := range strings.Split(v, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n <= 0 {
				b.Fatalf("RIFFLE_BENCH_DISTINCT_WINDOWS=%q: want positive counts separated by commas", v)
			}
			sizes = append(sizes, n)
		}
	}
	for _, n := range sizes {
		for _, mode := range []string{"once", "advancing"} {
			for _, backend := range []string{"memory", "pebble"} {
				b.Run(fmt.Sprintf("windows=%d/%s/%s", n, mode, backend), func(b *testing.B) {
					keys := n
					if mode == "advancing" {
						keys = 1000
					}
					benchDistinctFire(b, n, keys, backend == "pebble", mode == "advancing")
				})
			}
		}
	}
}

func benchDistinctFire(b *testing.B, n, keys int, pebble, advancing bool) {
	batches := distinctBatches(memory.DefaultAllocator, n, keys)
	defer releaseBatches(batches)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	var fired int64
	var lastFire time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		opts := Options{Kind: Tumbling, Size: time.Minute, Keys: []string{"k"}, Time: "t",
			Aggs: []Agg{{Func: CountDistinct, Column: "u", As: "users"}}}
		if pebble {
			be, err := state.NewPebbleBackend(state.PebbleOptions{Dir: b.TempDir()})
			if err != nil {
				b.Fatal(err)
			}
			opts.Backend = be
		}
		spec, err := New(opts)
		if err != nil {
			b.Fatal(err)
		}
		op, err := spec.New(&arrowexec.Task{Node: "w", Parallelism: 1, MaxParallelism: 128, Mem: memory.DefaultAllocator, Inputs: []*arrow.Schema{distinctSchema}})
		if err != nil {
			b.Fatal(err)
		}
		if err := op.Open(ctx); err != nil {
			b.Fatal(err)
		}
		wh := op.(arrowexec.WatermarkHandler)
		b.StartTimer()
		for _, bt := range batches {
			if err := op.Process(ctx, 0, bt, discard{}); err != nil {
				b.Fatal(err)
			}
			if advancing {
				ts := bt.Column(1).(*array.Int64).Int64Values()
				if err := wh.OnWatermark(ctx, ts[len(ts)-1]-1, discard{}); err != nil {
					b.Fatal(err)
				}
			}
		}
		t0 := time.Now()
		if err := wh.OnWatermark(ctx, arrowexec.MaxWatermark, discard{}); err != nil {
			b.Fatal(err)
		}
		lastFire += time.Since(t0)
		b.StopTimer()
		fired += spec.Stats().Fired
		if err := op.Close(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	if fired != int64(n)*int64(b.N) {
		b.Fatalf("fired %d windows, want %d", fired, int64(n)*int64(b.N))
	}
	b.ReportMetric(float64(fired)/b.Elapsed().Seconds(), "windows/s")
	b.ReportMetric(lastFire.Seconds()/float64(b.N), "s-last-watermark")
}
