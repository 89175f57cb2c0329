package agg

import (
	"math/rand/v2"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// BenchmarkCollect runs each collecting function (collect.go) alone over
// 16 batches of 64K rows in 1000 groups of an int64 key.
func BenchmarkCollect(b *testing.B) {
	sc, batches := benchBatches(16, arrow.PrimitiveTypes.Int64, func(rng *rand.Rand, kb array.Builder) {
		kb.(*array.Int64Builder).Append(rng.Int64N(1000))
	})
	defer releaseAll(batches)
	for _, a := range []Agg{
		{Func: Median, Column: "f"},
		{Func: Quantile, Column: "v", Param: 0.9},
		{Func: ArgMax, Column: "v", Column2: "f"},
		{Func: First, Column: "f", Column2: "v"},
		{Func: List, Column: "v"},
	} {
		b.Run(string(a.Func), func(b *testing.B) {
			runBench(b, sc, batches, Options{GroupBy: []string{"k"}, Aggs: []Agg{a}})
		})
	}
}
