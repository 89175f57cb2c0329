package nexmark

import (
	"context"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/riffle-dev/riffle/internal/gen"
	ksink "github.com/riffle-dev/riffle/sinks/kafka"
	"github.com/riffle-dev/riffle/sources"
)

// fileBatchEvents is the BatchEvents of WriteParquet: one row group per
// 1Mi event numbers (about 963k bids, 63k auctions, 21k persons).
const fileBatchEvents = 1 << 20

// WriteParquet writes table o.Table of a bounded stream (o.Events > 0) to
// path as one Parquet file through internal/gen's writer (zstd, atomic),
// in event-number order, one row group per 1Mi event numbers. The next
// batch is generated while the last one is written. progress, if not nil,
// is called after each row group with the event numbers covered so far.
func WriteParquet(ctx context.Context, path string, o Options, progress func(events int64)) error {
	if o.Events <= 0 {
		return fmt.Errorf("nexmark: write %s: a file needs a bounded stream (events > 0)", path)
	}
	o.BatchEvents = fileBatchEvents
	g, err := New(o)
	if err != nil {
		return err
	}
	o = g.Options()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		b   arrow.RecordBatch
		hi  int64
		err error
	}
	ch := make(chan result, 1)
	go func() {
		defer close(ch)
		for lo := int64(0); lo < o.Events; lo += fileBatchEvents {
			hi := min(lo+fileBatchEvents, o.Events)
			b, err := g.Batch(o.Mem, o.Table, lo, hi)
			select {
			case ch <- result{b, hi, err}:
			case <-ctx.Done():
				if b != nil {
					b.Release()
				}
				return
			}
			if err != nil {
				return
			}
		}
	}()
	defer func() { // release what the generator made after a failure
		cancel()
		for r := range ch {
			if r.b != nil {
				r.b.Release()
			}
		}
	}()
	po := gen.ParquetOptions{Mem: o.Mem, RowGroupRows: fileBatchEvents, CreatedBy: "riffle sources/nexmark"}
	return gen.WriteParquet(ctx, path, o.Table.Schema(), po, func(emit func(arrow.RecordBatch) error) error {
		for r := range ch {
			if r.err != nil {
				return r.err
			}
			err := emit(r.b)
			r.b.Release()
			if err != nil {
				return err
			}
			if progress != nil {
				progress(r.hi)
			}
		}
		return ctx.Err()
	})
}

// Produce replays table o.Table into a Kafka topic through
// sinks/kafka.Produce: one JSON message per row, stamped with date_time
// unless po.TimestampColumn names another column, paced at po.Rate. A
// bounded stream ends after its last row; an unbounded one (o.Events = 0)
// when ctx ends. With o.Pace the generator also holds rows back to event
// time.
func Produce(ctx context.Context, o Options, po ksink.ProduceOptions) (ksink.ProduceStats, error) {
	src, err := NewSource(o)
	if err != nil {
		return ksink.ProduceStats{}, err
	}
	if po.TimestampColumn == "" {
		po.TimestampColumn = EventTimeColumn
	}
	return ksink.Produce(ctx, po, sources.Batches(ctx, src, src.g.o.Mem, 0))
}
