package agg_test

import (
	"context"
	"fmt"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/arrowexec/agg"
)

type printer struct{}

func (printer) Emit(_ context.Context, b arrow.RecordBatch) error {
	defer b.Release()
	for i := 0; i < int(b.NumRows()); i++ {
		var cells []string
		for c := 0; c < int(b.NumCols()); c++ {
			cells = append(cells, b.ColumnName(c)+"="+b.Column(c).ValueStr(i))
		}
		fmt.Println(strings.Join(cells, " "))
	}
	return nil
}

func Example() {
	mem := memory.DefaultAllocator
	sc := arrow.NewSchema([]arrow.Field{
		{Name: "city", Type: arrow.BinaryTypes.String},
		{Name: "temp", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	}, nil)
	b := array.NewRecordBuilder(mem, sc)
	b.Field(0).(*array.StringBuilder).AppendValues([]string{"oslo", "rome", "oslo", "rome"}, nil)
	b.Field(1).(*array.Float64Builder).AppendValues([]float64{-3, 18, 1, 0}, []bool{true, true, true, false})
	rec := b.NewRecordBatch()
	b.Release()
	defer rec.Release()

	aggs := []agg.Agg{{Func: agg.Count}, {Func: agg.Avg, Column: "temp", As: "avg_temp"}, {Func: agg.Max, Column: "temp"}}
	fmt.Println("decomposable:", agg.Decomposable(aggs))
	spec, err := agg.New(agg.Options{GroupBy: []string{"city"}, Aggs: aggs})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	op, err := spec.New(&arrowexec.Task{Mem: mem, Inputs: []*arrow.Schema{sc}})
	if err != nil {
		panic(err)
	}
	defer op.Close()
	if err := op.Open(ctx); err != nil {
		panic(err)
	}
	if err := op.Process(ctx, 0, rec, printer{}); err != nil {
		panic(err)
	}
	if err := op.Finish(ctx, printer{}); err != nil {
		panic(err)
	}
	// Output:
	// decomposable: true
	// city=oslo count(*)=2 avg_temp=-1 max(temp)=1
	// city=rome count(*)=2 avg_temp=18 max(temp)=18
}
