package expr

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

const benchRows = 64 * 1024

// benchRecord builds a 64K-row batch: a int64 in [0, 20), b float64 in
// [0, 1), s strings from a small set, each with about 5% nulls, and
// event_type: view 60%, cart 25%, purchase 10%, NULL 5%.
func benchRecord(mem memory.Allocator) arrow.RecordBatch {
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "a", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "b", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "s", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "event_type", Type: arrow.BinaryTypes.String, Nullable: true},
	}, nil)
	ev := rand.New(rand.NewPCG(3, 4))
	rng := rand.New(rand.NewPCG(1, 2))
	rb := array.NewRecordBuilder(mem, schema)
	defer rb.Release()
	words := []string{"apple", "apricot", "banana", "cherry", "abacus", "blueberry", "ab", "zucchini"}
	for i := 0; i < benchRows; i++ {
		if rng.IntN(20) == 0 {
			rb.Field(0).AppendNull()
		} else {
			rb.Field(0).(*array.Int64Builder).Append(rng.Int64N(20))
		}
		if rng.IntN(20) == 0 {
			rb.Field(1).AppendNull()
		} else {
			rb.Field(1).(*array.Float64Builder).Append(rng.Float64())
		}
		if rng.IntN(20) == 0 {
			rb.Field(2).AppendNull()
		} else {
			rb.Field(2).(*array.StringBuilder).Append(words[rng.IntN(len(words))])
		}
		switch x := ev.IntN(20); {
		case x == 0:
			rb.Field(3).AppendNull()
		case x <= 2:
			rb.Field(3).(*array.StringBuilder).Append("purchase")
		case x <= 7:
			rb.Field(3).(*array.StringBuilder).Append("cart")
		default:
			rb.Field(3).(*array.StringBuilder).Append("view")
		}
	}
	return rb.NewRecordBatch()
}

var benchExprs = []struct{ name, src string }{
	{"cmp_and", "a > 10 AND b < 0.5"},
	{"arith", "a * 2 + b"},
	{"in_list", "a IN (1, 3, 5, 7, 11, 13)"},
	{"prefix", "s LIKE 'ap%'"},
	{"string_eq", "s = 'banana'"},
	{"in_strings", "s IN ('apple', 'banana', 'kiwi', 'lime', 'mango', 'melon', 'nut', 'olive', 'pear', 'plum')"},
	{"case_weights", "CASE WHEN event_type = 'purchase' THEN 4 WHEN event_type = 'cart' THEN 2 ELSE 1 END"},
	{"case_simple", "CASE event_type WHEN 'purchase' THEN 4 WHEN 'cart' THEN 2 ELSE 1 END"},
	{"case_columns", "CASE WHEN a > 10 THEN b WHEN a > 5 THEN a * 2 ELSE 0 END"},
	{"case_strings", "CASE WHEN a > 10 THEN s ELSE 'none' END"},
	{"case_first_wins", "CASE WHEN a >= 1 THEN 1 WHEN s = 'banana' THEN 2 WHEN s LIKE 'ap%' THEN 3 ELSE 4 END"},
	{"case_rare_expensive", "CASE WHEN a = 0 THEN CAST(b AS string) ELSE s END"},
	{"coalesce_const", "coalesce(a, 0)"},
	{"coalesce_cols", "coalesce(b, a, 0)"},
}

// BenchmarkCaseSparse compares CASE evaluated over the whole batch (whole:
// every WHEN condition and value on every row) with the switch to the
// undecided rows at n/16 (default) and at the first decided row (eager),
// on the weights mapping, a CASE whose first arm decides 95% of the rows,
// and a costly value needed on 5% of the rows.
func BenchmarkCaseSparse(b *testing.B) {
	mem := memory.NewGoAllocator()
	rec := benchRecord(mem)
	defer rec.Release()
	for _, bc := range benchExprs {
		if bc.name != "case_weights" && bc.name != "case_first_wins" && bc.name != "case_rare_expensive" {
			continue
		}
		bound, err := Bind(MustParse(bc.src), rec.Schema())
		if err != nil {
			b.Fatal(err)
		}
		for _, mode := range []struct {
			name string
			div  int
		}{{"whole", 0}, {"default", 16}, {"eager", 1}} {
			b.Run(bc.name+"/"+mode.name, func(b *testing.B) {
				caseSparseDiv = mode.div
				defer func() { caseSparseDiv = 16 }()
				benchEval(b, bound, mem, rec)
			})
		}
	}
}

func BenchmarkEval(b *testing.B) {
	mem := memory.NewGoAllocator()
	rec := benchRecord(mem)
	defer rec.Release()
	for _, bc := range benchExprs {
		bound, err := Bind(MustParse(bc.src), rec.Schema())
		if err != nil {
			b.Fatal(err)
		}
		b.Run(bc.name, func(b *testing.B) { benchEval(b, bound, mem, rec) })
	}
}

func benchEval(b *testing.B, bound *Bound, mem memory.Allocator, rec arrow.RecordBatch) {
	b.ReportAllocs()
	for b.Loop() {
		a, err := bound.Eval(mem, rec)
		if err != nil {
			b.Fatal(err)
		}
		a.Release()
	}
	b.ReportMetric(float64(b.N)*benchRows/b.Elapsed().Seconds(), "rows/s")
}

func BenchmarkSelect(b *testing.B) {
	mem := memory.NewGoAllocator()
	rec := benchRecord(mem)
	defer rec.Release()
	for _, bc := range benchExprs {
		bound, err := Bind(MustParse(bc.src), rec.Schema())
		if err != nil {
			b.Fatal(err)
		}
		if bound.Type().ID() != arrow.BOOL {
			continue
		}
		for _, strategy := range []string{"bitmap", "vectors"} {
			b.Run(bc.name+"/"+strategy, func(b *testing.B) {
				sparseAndOnly = strategy == "vectors"
				defer func() { sparseAndOnly = false }()
				sel := make([]int32, 0, benchRows)
				b.ReportAllocs()
				for b.Loop() {
					sel, err = bound.Select(rec, sel)
					if err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.N)*benchRows/b.Elapsed().Seconds(), "rows/s")
				b.ReportMetric(float64(len(sel)), "selected")
			})
		}
	}
}

func ExampleBound_Select() {
	mem := memory.NewGoAllocator()
	schema := arrow.NewSchema([]arrow.Field{{Name: "a", Type: arrow.PrimitiveTypes.Int64, Nullable: true}}, nil)
	b := array.NewInt64Builder(mem)
	b.AppendValues([]int64{5, 12, 0, 40}, []bool{true, true, false, true})
	col := b.NewArray()
	b.Release()
	rec := array.NewRecordBatch(schema, []arrow.Array{col}, 4)
	col.Release()
	defer rec.Release()

	bound, err := Bind(MustParse("a > 10 OR a IS NULL"), schema)
	if err != nil {
		panic(err)
	}
	sel, _ := bound.Select(rec, nil)
	fmt.Println(sel)
	// Output: [1 2 3]
}
