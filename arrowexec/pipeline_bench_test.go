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
			const n = 20000
			src := repeatSource(rows, n)
			defer src.Release()
			b.ReportAllocs()
			runBench(b, n, arrowexec.RunOptions{}, func(g *arrowexec.Graph) {
				s := g.AddSource("src", src, 1)
				id := g.Add("id", exectest.Identity(), 1, s.Forward())
				g.Add("sink", &countSink{}, 1, id.Forward())
			})
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

// BenchmarkFanIn runs a source of parallelism 2 -> rebalance -> identity
// of parallelism 2 -> sink: every identity subtask reads two input
// channels, so this is what the runtime costs per batch on a subtask with
// several inputs, reported as ns/batch.
func BenchmarkFanIn(b *testing.B) {
	const n = 20000
	src := repeatSource(1, n)
	defer src.Release()
	b.ReportAllocs()
	runBench(b, n, arrowexec.RunOptions{}, func(g *arrowexec.Graph) {
		s := g.AddSource("src", src, 2)
		id := g.Add("id", exectest.Identity(), 2, s.Rebalance())
		g.Add("sink", &countSink{}, 2, id.Forward())
	})
}

// runBench runs the graph build makes b.N times with opts and reports the
// time per batch, for n batches a run.
func runBench(b *testing.B, n int, opts arrowexec.RunOptions, build func(*arrowexec.Graph)) {
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		g := arrowexec.NewGraph()
		build(g)
		j, err := g.Compile(opts)
		if err != nil {
			b.Fatal(err)
		}
		if err := j.Run(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/batch")
}

// repeatSource returns a source of n batches of rows int64 zeros (one
// batch shared n times).
func repeatSource(rows, n int) *exectest.Source {
	schema := arrow.NewSchema([]arrow.Field{{Name: "x", Type: arrow.PrimitiveTypes.Int64}}, nil)
	bld := array.NewInt64Builder(memory.DefaultAllocator)
	defer bld.Release()
	bld.AppendValues(make([]int64, rows), nil)
	col := bld.NewArray()
	defer col.Release()
	one := array.NewRecordBatch(schema, []arrow.Array{col}, int64(rows))
	defer one.Release()
	batches := make([]arrow.RecordBatch, n)
	for i := range batches {
		batches[i] = one
	}
	return exectest.NewSource(schema, batches)
}
