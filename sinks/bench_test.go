package sinks_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/sinks"
)

// benchBatch builds an interaction-like batch: user, item, event type,
// weight, event time.
func benchBatch(mem memory.Allocator, n int, seed uint64) arrow.RecordBatch {
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "user_id", Type: arrow.PrimitiveTypes.Int64},
		{Name: "item_id", Type: arrow.PrimitiveTypes.Int64},
		{Name: "event_type", Type: arrow.BinaryTypes.String},
		{Name: "weight", Type: arrow.PrimitiveTypes.Float64},
		{Name: "event_time", Type: &arrow.TimestampType{Unit: arrow.Millisecond, TimeZone: "UTC"}},
	}, nil)
	rng := rand.New(rand.NewPCG(seed, 1))
	b := array.NewRecordBuilder(mem, schema)
	defer b.Release()
	types := []string{"view", "view", "view", "click", "cart", "purchase"}
	weights := []float64{1, 1, 1, 2, 4, 8}
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	for i := 0; i < n; i++ {
		k := rng.IntN(len(types))
		b.Field(0).(*array.Int64Builder).Append(rng.Int64N(1e6))
		b.Field(1).(*array.Int64Builder).Append(rng.Int64N(1e5))
		b.Field(2).(*array.StringBuilder).Append(types[k])
		b.Field(3).(*array.Float64Builder).Append(weights[k])
		b.Field(4).(*array.TimestampBuilder).Append(arrow.Timestamp(t0 + int64(seed)*int64(n)*10 + int64(i)*10 + rng.Int64N(1000)))
	}
	return b.NewRecordBatch()
}

// benchSink opens one sink subtask with opts and makes 8 distinct batches of
// rows rows (so compression sees fresh data), released when b ends.
func benchSink(b *testing.B, rows int, opts sinks.FileOptions) (*sinks.FileSpec, arrowexec.Operator, []arrow.RecordBatch) {
	b.Helper()
	mem := memory.NewGoAllocator()
	batches := make([]arrow.RecordBatch, 8)
	for i := range batches {
		batches[i] = benchBatch(mem, rows, uint64(i))
	}
	b.Cleanup(func() { releaseAll(batches) })
	spec, err := sinks.NewFile(opts)
	if err != nil {
		b.Fatal(err)
	}
	op, err := spec.New(task(mem, batches[0].Schema(), 0, 1))
	if err != nil {
		b.Fatal(err)
	}
	if err := op.Open(context.Background()); err != nil {
		b.Fatal(err)
	}
	return spec, op, batches
}

// BenchmarkFileSink measures one subtask writing batches of 1Ki and 64Ki
// rows, with parts rolling at the default 128 MiB, with and without fsync.
// Output size is reported as out-MB/s.
func BenchmarkFileSink(b *testing.B) {
	for _, f := range []sinks.Format{sinks.Parquet, sinks.CSV, sinks.JSONL} {
		for _, c := range []struct {
			rows int
			sync bool
		}{{64 << 10, false}, {64 << 10, true}, {1 << 10, false}} {
			rows, sync := c.rows, c.sync
			b.Run(fmt.Sprintf("%s/batch=%d/sync=%v", f, rows, sync), func(b *testing.B) {
				ctx := context.Background()
				spec, op, batches := benchSink(b, rows, sinks.FileOptions{Dir: b.TempDir(), Format: f, NoSync: !sync})
				b.ReportAllocs()
				b.ResetTimer()
				start := time.Now()
				for i := 0; i < b.N; i++ {
					if err := op.Process(ctx, 0, batches[i%len(batches)], nil); err != nil {
						b.Fatal(err)
					}
				}
				if err := op.Finish(ctx, nil); err != nil {
					b.Fatal(err)
				}
				el := time.Since(start).Seconds()
				b.StopTimer()
				if err := op.Close(); err != nil {
					b.Fatal(err)
				}
				var out int64
				for _, p := range spec.Published() {
					out += p.Bytes
				}
				b.ReportMetric(float64(rows)*float64(b.N)/el, "rows/s")
				b.ReportMetric(float64(out)/el/1e6, "out-MB/s")
			})
		}
	}
}

// BenchmarkCheckpointBarrier measures one subtask in CommitOnCheckpoint mode
// with a checkpoint (barrier and completion) after every batch, so each
// iteration is one batch plus one barrier. Parts span checkpoints (default
// PartSize), so a Parquet barrier cuts a row group and serializes the
// committed footer of every row group so far: state-B is the size of the
// last snapshot, state-B/ckpt its growth per checkpoint.
func BenchmarkCheckpointBarrier(b *testing.B) {
	for _, f := range []sinks.Format{sinks.Parquet, sinks.CSV} {
		for _, c := range []struct {
			rows  int
			sync  bool
			carry bool // Parquet: barriers carry the open row group (default) or cut it
		}{{1 << 10, false, true}, {1 << 10, true, true}, {1 << 10, true, false}, {64 << 10, false, true}, {64 << 10, false, false}} {
			rows, sync := c.rows, c.sync
			if f != sinks.Parquet && !c.carry {
				continue
			}
			name := fmt.Sprintf("%s/batch=%d/sync=%v", f, rows, sync)
			if f == sinks.Parquet {
				name += fmt.Sprintf("/carry=%v", c.carry)
			}
			b.Run(name, func(b *testing.B) {
				if !c.carry {
					defer sinks.SetMaxCarry(0)()
				}
				ctx := context.Background()
				spec, op, batches := benchSink(b, rows, sinks.FileOptions{Dir: b.TempDir(), Format: f, NoSync: !sync, Commit: sinks.CommitOnCheckpoint})
				var state, total int
				b.ReportAllocs()
				b.ResetTimer()
				start := time.Now()
				for i := 0; i < b.N; i++ {
					if err := op.Process(ctx, 0, batches[i%len(batches)], nil); err != nil {
						b.Fatal(err)
					}
					snap, err := op.(arrowexec.Checkpointer).SnapshotState(ctx, uint64(i+1))
					if err != nil {
						b.Fatal(err)
					}
					state = len(snap.Operator)
					total += state
					if err := op.(arrowexec.CheckpointListener).NotifyCheckpointComplete(ctx, uint64(i+1)); err != nil {
						b.Fatal(err)
					}
				}
				el := time.Since(start).Seconds()
				b.StopTimer()
				if err := op.Finish(ctx, nil); err != nil {
					b.Fatal(err)
				}
				if err := op.Close(); err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(rows)*float64(b.N)/el, "rows/s")
				b.ReportMetric(float64(state), "last-state-B")
				b.ReportMetric(float64(total)/float64(b.N), "state-B/ckpt")
				b.ReportMetric(float64(len(spec.Published())), "parts")
				if f == sinks.Parquet {
					groups := 0
					for _, p := range spec.Published() {
						r, err := file.OpenParquetFile(p.Path, false)
						if err != nil {
							b.Fatal(err)
						}
						groups += r.NumRowGroups()
						r.Close()
					}
					b.ReportMetric(float64(groups), "row-groups")
				}
			})
		}
	}
}

// BenchmarkPartitionedSink measures one subtask writing 64Ki-row batches
// to Parquet partitioned by event_type (4 partitions: every batch is split
// four ways) against the same sink unpartitioned; the split (codes per
// value, one take per partition) is the difference.
func BenchmarkPartitionedSink(b *testing.B) {
	for _, by := range [][]string{nil, {"event_type"}} {
		name := "unpartitioned"
		if by != nil {
			name = "partition_by=event_type"
		}
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			const rows = 64 << 10
			_, op, batches := benchSink(b, rows, sinks.FileOptions{Dir: b.TempDir(), PartitionBy: by, NoSync: true,
				Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			for i := 0; i < b.N; i++ {
				if err := op.Process(ctx, 0, batches[i%len(batches)], nil); err != nil {
					b.Fatal(err)
				}
			}
			if err := op.Finish(ctx, nil); err != nil {
				b.Fatal(err)
			}
			el := time.Since(start).Seconds()
			b.StopTimer()
			if err := op.Close(); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(rows)*float64(b.N)/el, "rows/s")
		})
	}
}
