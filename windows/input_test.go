package windows

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/riffle-dev/riffle/arrowexec"
)

// TestInputBatchUnchanged: the operator only borrows its input batches.
// Several float aggregates over different columns used to share a scratch
// slice that aliased the first column's buffer, so the second column's
// values were copied into the first column of the caller's batch (and a
// later aggregate of the first column read them).
func TestInputBatchUnchanged(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	sc := arrow.NewSchema([]arrow.Field{
		{Name: "t", Type: arrow.PrimitiveTypes.Int64},
		{Name: "a", Type: arrow.PrimitiveTypes.Float64},
		{Name: "b", Type: arrow.PrimitiveTypes.Float64},
	}, nil)
	op := openOperator(t, mem, sc, Options{Kind: Tumbling, Size: time.Second, Time: "t", Aggs: []Agg{
		{Func: Sum, Column: "a", As: "sa"}, {Func: Max, Column: "b", As: "mb"}, {Func: Avg, Column: "a", As: "aa"},
	}})
	defer op.Close()
	ctx := context.Background()
	av, bv := []float64{1, 2, 3, 4}, []float64{10, 20, 30, 40}
	rb := array.NewRecordBuilder(mem, sc)
	defer rb.Release()
	out := discard{}
	for range 2 {
		rb.Field(0).(*array.Int64Builder).AppendValues([]int64{1, 2, 3, 4}, nil)
		rb.Field(1).(*array.Float64Builder).AppendValues(av, nil)
		rb.Field(2).(*array.Float64Builder).AppendValues(bv, nil)
		rec := rb.NewRecordBatch()
		err := op.Process(ctx, 0, rec, out)
		got := slices.Clone(rec.Column(1).(*array.Float64).Float64Values())
		rec.Release()
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, av) {
			t.Fatalf("input column a changed to %v, was %v", got, av)
		}
	}
	if err := op.OnWatermark(ctx, arrowexec.MaxWatermark, out); err != nil {
		t.Fatal(err)
	}
}
