// Package sources holds what riffle's sources share outside a graph; each
// source lives in its own package below (parquet, text, kafka, hybrid).
package sources

import (
	"context"
	"io"
	"iter"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/riffle-dev/riffle/arrowexec"
)

// Batches reads every row of a bounded source in order, outside any graph,
// with one reader (parallelism 1), as borrowed batches: each is released
// after the loop body returns it, so a consumer that keeps one must Retain
// it. limit > 0 stops after that many rows (the last batch is sliced). It
// serves tools that replay files (riffle produce, riffle eval, the
// quickstart) and tests.
func Batches(ctx context.Context, src arrowexec.Source, mem memory.Allocator, limit int64) iter.Seq2[arrow.RecordBatch, error] {
	return func(yield func(arrow.RecordBatch, error) bool) {
		if mem == nil {
			mem = memory.DefaultAllocator
		}
		r, err := src.Open(ctx, &arrowexec.Task{Node: "batches", Parallelism: 1, MaxParallelism: 1, Mem: mem, Metrics: &arrowexec.TaskMetrics{}})
		if err != nil {
			yield(nil, err)
			return
		}
		defer r.Close()
		var rows int64
		for limit <= 0 || rows < limit {
			b, err := r.Next(ctx)
			if err == io.EOF {
				return
			}
			if err != nil {
				yield(nil, err)
				return
			}
			if b == nil { // no data yet (a stream): ask again
				continue
			}
			if limit > 0 && rows+b.NumRows() > limit {
				cut := b.NewSlice(0, limit-rows)
				b.Release()
				b = cut
			}
			rows += b.NumRows()
			ok := yield(b, nil)
			b.Release()
			if !ok {
				return
			}
		}
	}
}
