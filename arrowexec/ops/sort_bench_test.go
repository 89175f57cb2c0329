package ops_test

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/arrowexec/ops"
	generate "github.com/riffle-dev/riffle/internal/gen"
)

// benchBatches returns the generated event rows (internal/gen, seed 1) as
// batches of 64Ki rows: the rows of `riffle gen --rows N --seed 1`, so
// DuckDB can sort the same data from that file (docs/BENCHMARKS.md).
func benchBatches(b *testing.B, rows int64) []arrow.RecordBatch {
	b.Helper()
	g, err := generate.New(generate.Options{Rows: rows, Seed: 1, Mem: memory.NewGoAllocator()})
	if err != nil {
		b.Fatal(err)
	}
	var out []arrow.RecordBatch
	for c := range g.NumChunks() {
		chunk := g.Chunk(c)
		for lo := int64(0); lo < chunk.NumRows(); lo += 1 << 16 {
			out = append(out, chunk.NewSlice(lo, min(chunk.NumRows(), lo+1<<16)))
		}
		chunk.Release()
	}
	return out
}

// emitDiscard counts rows.
type emitDiscard struct{ rows int64 }

func (e *emitDiscard) Emit(_ context.Context, b arrow.RecordBatch) error {
	e.rows += b.NumRows()
	b.Release()
	return nil
}

// BenchmarkSort sorts (or keeps the top 100 of) 1M generated rows in one
// subtask: Process every batch, then Finish gathers the sorted output.
// BENCH_SORT_ROWS overrides the row count.
func BenchmarkSort(b *testing.B) {
	rows := int64(1 << 20)
	if s := os.Getenv("BENCH_SORT_ROWS"); s != "" {
		fmt.Sscan(s, &rows)
	}
	in := benchBatches(b, rows)
	defer releaseAll(in)
	schema := in[0].Schema()
	for _, c := range []struct {
		name  string
		keys  []ops.SortKey
		limit int64
	}{
		{"int64", []ops.SortKey{{Column: "user_id"}}, -1},
		{"float-desc,int64", []ops.SortKey{{Column: "weight", Desc: true}, {Column: "item_id"}}, -1},
		{"string,timestamp", []ops.SortKey{{Column: "event_type"}, {Column: "event_time", Desc: true}}, -1},
		{"top100/float-desc,int64", []ops.SortKey{{Column: "weight", Desc: true}, {Column: "item_id"}}, 100},
	} {
		b.Run(c.name, func(b *testing.B) {
			spec := ops.NewTopN(c.keys, c.limit)
			if _, err := spec.Schema([]*arrow.Schema{schema}); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			ctx := context.Background()
			for b.Loop() {
				op, err := spec.New(&arrowexec.Task{Mem: memory.NewGoAllocator(), Parallelism: 1, Inputs: []*arrow.Schema{schema}})
				if err != nil {
					b.Fatal(err)
				}
				if err := op.Open(ctx); err != nil {
					b.Fatal(err)
				}
				for _, batch := range in {
					if err := op.Process(ctx, 0, batch, nil); err != nil {
						b.Fatal(err)
					}
				}
				var out emitDiscard
				if err := op.Finish(ctx, &out); err != nil {
					b.Fatal(err)
				}
				op.Close()
				want := rows
				if c.limit >= 0 {
					want = min(rows, c.limit)
				}
				if out.rows != want {
					b.Fatalf("%d rows out", out.rows)
				}
			}
			b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}
