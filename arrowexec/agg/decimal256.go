package agg

import (
	"math/bits"
	"strconv"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/decimal256"
)

// Aggregates over decimal256(p, s) columns (DuckDB has no such type; the
// types are Arrow's widest): sum is decimal256(76, s), exact, an error when
// it leaves the 256-bit range; avg float64; min and max the input type.
// Sums are four-word integers per group, added with carries; the state is
// the sum as decimal256(76, s) (and the count for avg), as for decimal128.

type i256 [4]uint64 // little-endian words, two's complement

func decSum256Type(dt arrow.DataType) arrow.DataType {
	return &arrow.Decimal256Type{Precision: 76, Scale: dt.(*arrow.Decimal256Type).Scale}
}

// add256 adds decimal256 values (or partial sums with their counts).
func add256(a *decSumAcc[i256], c arrow.Array, counts []int64, gids []uint32) {
	v := values[i256](c)[:len(gids)]
	vv := validityOf(c)
	sums, cnt := a.sums, a.counts
	ovf := a.ovf
	for i, g := range gids {
		if vv.bits != nil && !vv.valid(i) {
			continue
		}
		x, s := &v[i], &sums[g]
		var c0, c1, c2 uint64
		s[0], c0 = bits.Add64(s[0], x[0], 0)
		s[1], c1 = bits.Add64(s[1], x[1], c0)
		s[2], c2 = bits.Add64(s[2], x[2], c1)
		top := s[3] + x[3] + c2
		ovf |= (s[3] ^ top) & (x[3] ^ top)
		s[3] = top
		if counts != nil {
			cnt[g] += counts[i]
		} else {
			cnt[g]++
		}
	}
	a.ovf = ovf
}

func (x i256) num() decimal256.Num { return decimal256.New(x[3], x[2], x[1], x[0]) }

func (x i256) float(scale int32) float64 {
	f, _ := strconv.ParseFloat(x.num().ToString(scale), 64)
	return f
}

func less256(x, y *i256) bool {
	if x[3] != y[3] {
		return int64(x[3]) < int64(y[3])
	}
	for w := 2; w >= 0; w-- {
		if x[w] != y[w] {
			return x[w] < y[w]
		}
	}
	return false
}

func minMax256(a *decMinMaxAcc[i256], c arrow.Array, gids []uint32) {
	v := values[i256](c)[:len(gids)]
	vv := validityOf(c)
	vals, has := a.vals, a.has
	for i, g := range gids {
		if vv.bits != nil && !vv.valid(i) {
			continue
		}
		if !has[g] || a.max && less256(&vals[g], &v[i]) || !a.max && less256(&v[i], &vals[g]) {
			vals[g], has[g] = v[i], true
		}
	}
}
