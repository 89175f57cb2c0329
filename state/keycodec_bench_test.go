package state

import (
	"fmt"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// BenchmarkEncodeKeys encodes (and hashes) 64k rows of an int64 and a
// string key column, one row in 10 null in each.
func BenchmarkEncodeKeys(b *testing.B) {
	const n = 1 << 16
	mem := memory.NewGoAllocator()
	ib := array.NewInt64Builder(mem)
	sb := array.NewStringBuilder(mem)
	for i := 0; i < n; i++ {
		if i%10 == 3 {
			ib.AppendNull()
		} else {
			ib.Append(int64(i * 7919 % 5000))
		}
		if i%10 == 7 {
			sb.AppendNull()
		} else {
			sb.Append(fmt.Sprintf("user-%d", i%3000))
		}
	}
	cols := []arrow.Array{ib.NewArray(), sb.NewArray()}
	defer cols[0].Release()
	defer cols[1].Release()
	var ks Keys
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := EncodeKeys(cols, &ks); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}
