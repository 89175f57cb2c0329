package agg

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/riffle-dev/riffle/arrowexec"
)

const benchBatch = 65536

type discard struct{}

func (discard) Emit(_ context.Context, b arrow.RecordBatch) error {
	b.Release()
	return nil
}

// benchBatches builds nb batches of benchBatch rows: a key column made by
// key(rng) and an int64 and a float64 value column.
func benchBatches(nb int, keyType arrow.DataType, key func(rng *rand.Rand, b array.Builder)) (*arrow.Schema, []arrow.RecordBatch) {
	sc := arrow.NewSchema([]arrow.Field{
		{Name: "k", Type: keyType},
		{Name: "v", Type: arrow.PrimitiveTypes.Int64},
		{Name: "f", Type: arrow.PrimitiveTypes.Float64},
		{Name: "k2", Type: arrow.PrimitiveTypes.Int32},
	}, nil)
	rng := rand.New(rand.NewPCG(1, 2))
	var out []arrow.RecordBatch
	for range nb {
		rb := array.NewRecordBuilder(memory.DefaultAllocator, sc)
		kb := rb.Field(0)
		vb := rb.Field(1).(*array.Int64Builder)
		fb := rb.Field(2).(*array.Float64Builder)
		k2 := rb.Field(3).(*array.Int32Builder)
		for range benchBatch {
			key(rng, kb)
			vb.Append(rng.Int64N(1000))
			fb.Append(rng.Float64())
			k2.Append(rng.Int32N(10))
		}
		out = append(out, rb.NewRecordBatch())
		rb.Release()
	}
	return sc, out
}

func runBench(b *testing.B, sc *arrow.Schema, batches []arrow.RecordBatch, opts Options) {
	spec, err := New(opts)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	rows := 0
	for _, rb := range batches {
		rows += int(rb.NumRows())
	}
	b.ReportAllocs()
	cpu0 := cpuTime()
	b.ResetTimer()
	for range b.N {
		op, err := spec.New(&arrowexec.Task{Mem: memory.DefaultAllocator, Inputs: []*arrow.Schema{sc}})
		if err != nil {
			b.Fatal(err)
		}
		for _, rb := range batches {
			if err := op.Process(ctx, 0, rb, discard{}); err != nil {
				b.Fatal(err)
			}
		}
		if err := op.Finish(ctx, discard{}); err != nil {
			b.Fatal(err)
		}
		op.Close()
	}
	b.StopTimer()
	total := float64(rows) * float64(b.N)
	b.ReportMetric(total/b.Elapsed().Seconds(), "rows/s")
	// CPU time of the process (all threads, GC included) per row: steadier
	// than wall time on a shared machine.
	b.ReportMetric(float64(cpuTime()-cpu0)/total, "cpu-ns/row")
}

var countSumAvg = []Agg{{Func: Count}, {Func: Sum, Column: "v"}, {Func: Avg, Column: "v"}}

// BenchmarkInt64Key groups 64K-row batches by one int64 key.
func BenchmarkInt64Key(b *testing.B) {
	for _, c := range []struct {
		distinct, batches int
	}{{1000, 16}, {1_000_000, 64}} {
		b.Run(fmt.Sprintf("distinct=%d", c.distinct), func(b *testing.B) {
			sc, batches := benchBatches(c.batches, arrow.PrimitiveTypes.Int64, func(rng *rand.Rand, kb array.Builder) {
				kb.(*array.Int64Builder).Append(rng.Int64N(int64(c.distinct)) * 7919)
			})
			defer releaseAll(batches)
			runBench(b, sc, batches, Options{GroupBy: []string{"k"}, Aggs: countSumAvg})
		})
	}
}

// BenchmarkStringKey groups by a low-cardinality string key.
func BenchmarkStringKey(b *testing.B) {
	names := make([]string, 24)
	for i := range names {
		names[i] = fmt.Sprintf("category-%02d", i)
	}
	sc, batches := benchBatches(16, arrow.BinaryTypes.String, func(rng *rand.Rand, kb array.Builder) {
		kb.(*array.StringBuilder).Append(names[rng.IntN(len(names))])
	})
	defer releaseAll(batches)
	runBench(b, sc, batches, Options{GroupBy: []string{"k"}, Aggs: countSumAvg})
}

// BenchmarkMultiKey groups by (int64, int32) with 1000 distinct pairs: the
// generic grouper.
func BenchmarkMultiKey(b *testing.B) {
	sc, batches := benchBatches(16, arrow.PrimitiveTypes.Int64, func(rng *rand.Rand, kb array.Builder) {
		kb.(*array.Int64Builder).Append(rng.Int64N(100))
	})
	defer releaseAll(batches)
	runBench(b, sc, batches, Options{GroupBy: []string{"k", "k2"}, Aggs: countSumAvg})
}

// BenchmarkGlobal aggregates without keys.
func BenchmarkGlobal(b *testing.B) {
	sc, batches := benchBatches(16, arrow.PrimitiveTypes.Int64, func(rng *rand.Rand, kb array.Builder) {
		kb.(*array.Int64Builder).Append(rng.Int64N(1000))
	})
	defer releaseAll(batches)
	runBench(b, sc, batches, Options{Aggs: []Agg{{Func: Count}, {Func: Sum, Column: "v"}, {Func: Min, Column: "f"}, {Func: Max, Column: "f"}, {Func: Avg, Column: "f"}}})
}

// BenchmarkCountDistinct counts distinct int64 values per 1k groups.
func BenchmarkCountDistinct(b *testing.B) {
	sc, batches := benchBatches(16, arrow.PrimitiveTypes.Int64, func(rng *rand.Rand, kb array.Builder) {
		kb.(*array.Int64Builder).Append(rng.Int64N(1000))
	})
	defer releaseAll(batches)
	runBench(b, sc, batches, Options{GroupBy: []string{"k"}, Aggs: []Agg{{Func: CountDistinct, Column: "v"}}})
}
