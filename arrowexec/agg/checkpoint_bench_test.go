package agg

import (
	"context"
	"fmt"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/riffle-dev/riffle/arrowexec"
)

const benchGroups = 1 << 20

// benchState returns an operator holding benchGroups groups (one int64 or
// string key each; count, sum, avg, min, max of an int64 and a float64
// column), and its spec and input schema.
func benchState(b *testing.B, strKey bool, mode Mode) (*Spec, *arrow.Schema, *operator) {
	kt := arrow.DataType(arrow.PrimitiveTypes.Int64)
	if strKey {
		kt = arrow.BinaryTypes.String
	}
	sc := arrow.NewSchema([]arrow.Field{
		{Name: "k", Type: kt},
		{Name: "v", Type: arrow.PrimitiveTypes.Int64},
		{Name: "f", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	}, nil)
	spec, err := New(Options{GroupBy: []string{"k"}, Mode: mode, Aggs: []Agg{
		{Func: Count}, {Func: Sum, Column: "v"}, {Func: Avg, Column: "f"},
		{Func: Min, Column: "v"}, {Func: Max, Column: "f"},
	}})
	if err != nil {
		b.Fatal(err)
	}
	op, err := spec.New(&arrowexec.Task{Parallelism: 1, MaxParallelism: arrowexec.DefaultMaxParallelism, Mem: memory.DefaultAllocator, Inputs: []*arrow.Schema{sc}})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for lo := 0; lo < benchGroups; lo += benchBatch {
		rb := array.NewRecordBuilder(memory.DefaultAllocator, sc)
		for i := lo; i < lo+benchBatch; i++ {
			if strKey {
				rb.Field(0).(*array.StringBuilder).Append(fmt.Sprintf("key-%08d", i*7919))
			} else {
				rb.Field(0).(*array.Int64Builder).Append(int64(i) * 7919)
			}
			rb.Field(1).(*array.Int64Builder).Append(int64(i % 1000))
			if i%10 == 0 {
				rb.Field(2).AppendNull()
			} else {
				rb.Field(2).(*array.Float64Builder).Append(float64(i) / 3)
			}
		}
		rec := rb.NewRecordBatch()
		rb.Release()
		if err := op.Process(ctx, 0, rec, discard{}); err != nil {
			b.Fatal(err)
		}
		rec.Release()
	}
	return spec, sc, op.(*operator)
}

var snapshotBenchCases = []struct {
	name   string
	strKey bool
	mode   Mode
}{{"int64-key", false, Single}, {"string-key", true, Single}, {"int64-key-partial", false, Partial}}

func snapshotBytes(s arrowexec.SubtaskSnapshot) int {
	n := len(s.Operator)
	for _, kg := range s.KeyGroups {
		n += len(kg)
	}
	return n
}

// BenchmarkSnapshotState measures SnapshotState of 1M groups: keyed Single
// (one state stream per key group, 128 key groups) and Partial (one
// operator blob).
func BenchmarkSnapshotState(b *testing.B) {
	for _, c := range snapshotBenchCases {
		b.Run(c.name, func(b *testing.B) {
			_, _, op := benchState(b, c.strKey, c.mode)
			defer op.Close()
			ctx := context.Background()
			var size int
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := cpuTime()
			for range b.N {
				snap, err := op.SnapshotState(ctx, 1)
				if err != nil {
					b.Fatal(err)
				}
				size = snapshotBytes(snap)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/benchGroups, "ns/group")
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N)/benchGroups, "cpu-ns/group")
			b.ReportMetric(float64(size)/benchGroups, "bytes/group")
		})
	}
}

// BenchmarkRestore measures restoring 1M groups (Open with Task.Restore)
// from the snapshot of BenchmarkSnapshotState.
func BenchmarkRestore(b *testing.B) {
	for _, c := range snapshotBenchCases {
		b.Run(c.name, func(b *testing.B) {
			spec, sc, op := benchState(b, c.strKey, c.mode)
			ctx := context.Background()
			snap, err := op.SnapshotState(ctx, 1)
			if err != nil {
				b.Fatal(err)
			}
			op.Close()
			rs := &arrowexec.RestoreState{KeyGroups: snap.KeyGroups, Operator: [][]byte{snap.Operator}}
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := cpuTime()
			for range b.N {
				r, err := spec.New(&arrowexec.Task{Parallelism: 1, MaxParallelism: arrowexec.DefaultMaxParallelism,
					Mem: memory.DefaultAllocator, Inputs: []*arrow.Schema{sc}, Restore: rs})
				if err != nil {
					b.Fatal(err)
				}
				if err := r.Open(ctx); err != nil {
					b.Fatal(err)
				}
				if n := r.(*operator).numGroups(); n != benchGroups {
					b.Fatalf("restored %d groups, want %d", n, benchGroups)
				}
				r.Close()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/benchGroups, "ns/group")
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N)/benchGroups, "cpu-ns/group")
		})
	}
}
