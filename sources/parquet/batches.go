package parquet

import (
	"context"
	"iter"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/riffle-dev/riffle/sources"
)

// Batches reads every row of the source in order, outside any graph, as
// borrowed batches (see sources.Batches: a consumer that keeps one must
// Retain it; limit > 0 stops after that many rows).
func (s *Source) Batches(ctx context.Context, mem memory.Allocator, limit int64) iter.Seq2[arrow.RecordBatch, error] {
	return sources.Batches(ctx, s, mem, limit)
}
