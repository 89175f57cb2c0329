package arrowexec_test

import (
	"context"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/arrowexec/exectest"
)

// BenchmarkSmallBatches runs source -> identity -> sink over batches of
// rows rows: what the runtime costs per batch (channels, counters,
// clocks), reported as ns/batch.
func BenchmarkSmallBatches(b *testing.B) {
	for _, rows := range []int{1, 1024} {
		b.Run(map[int]string{1: "rows=1", 1024: "rows=1024"}[rows], func(b *testing.B) {
			schema := arrow.NewSchema([]arrow.Field{{Name: "x", Type: arrow.PrimitiveTypes.Int64}}, nil)
			bld := array.NewInt64Builder(memory.DefaultAllocator)
			bld.AppendValues(make([]int64, rows), nil)
			col := bld.NewArray()
			bld.Release()
			one := array.NewRecordBatch(schema, []arrow.Array{col}, int64(rows))
			col.Release()
			defer one.Release()
			const n = 20000
			batches := make([]arrow.RecordBatch, n)
			for i := range batches {
				batches[i] = one
			}
			src := exectest.NewSource(schema, batches)
			defer src.Release()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				sink := &countSink{}
				g := arrowexec.NewGraph()
				s := g.AddSource("src", src, 1)
				id := g.Add("id", exectest.Identity(), 1, s.Forward())
				g.Add("sink", sink, 1, id.Forward())
				j, err := g.Compile(arrowexec.RunOptions{})
				if err != nil {
					b.Fatal(err)
				}
				if err := j.Run(context.Background()); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/batch")
		})
	}
}

// countSink drops what it receives.
type countSink struct{}

func (*countSink) Schema([]*arrow.Schema) (*arrow.Schema, error)   { return nil, nil }
func (*countSink) New(*arrowexec.Task) (arrowexec.Operator, error) { return countOp{}, nil }

type countOp struct{}

func (countOp) Open(context.Context) error { return nil }
func (countOp) Process(context.Context, int, arrow.RecordBatch, arrowexec.Emitter) error {
	return nil
}
func (countOp) Finish(context.Context, arrowexec.Emitter) error { return nil }
func (countOp) Close() error                                    { return nil }
