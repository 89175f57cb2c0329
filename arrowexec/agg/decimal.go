package agg

import (
	"errors"
	"math"
	"math/bits"
	"strconv"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// Aggregates over decimal128(p, s) columns, exact, with DuckDB's types:
//
//	sum(d)       decimal(38, s)  an error when the sum leaves the 128-bit range
//	avg(d)       float64         the exact sum divided by the count
//	min, max     decimal(p, s)
//
// Sums are kept in 128-bit integers per group. Values of up to 18 digits
// are added as sign-extended int64 (no overflow check: 2^127 is more than
// 10^18 times any row count); wider values with a 128-bit overflow check
// per row; the 38-digit bound is checked when a result or a state leaves
// the accumulator. Partial states are the sum as decimal(38, s) (and the
// count for avg), so Final merges them with the same loops.

// i128 is a two's complement 128-bit integer laid out as Arrow's decimal128
// values (and decimal128.Num): the low word first.
type i128 struct {
	lo uint64
	hi int64
}

var errDecimalOverflow = errors.New("decimal overflow: the sum leaves the 128-bit range")

func isDecimal(dt arrow.DataType) bool { return dt.ID() == arrow.DECIMAL128 }

func isSummable(dt arrow.DataType) bool { return isNumeric(dt) || isDecimal(dt) }

func isMinMaxType(dt arrow.DataType) bool { return isKeyType(dt) || isDecimal(dt) }

// decSumType is sum's type over a decimal: DuckDB's DECIMAL(38, s).
func decSumType(dt arrow.DataType) arrow.DataType {
	return &arrow.Decimal128Type{Precision: 38, Scale: dt.(*arrow.Decimal128Type).Scale}
}

func decPrecision(dt arrow.DataType) int32 { return dt.(*arrow.Decimal128Type).Precision }

// decValues views a decimal128 array's values as i128. No copy.
func decValues(a arrow.Array) []i128 { return values[i128](a) }

// newDecAccumulator returns the accumulator of a over a decimal column
// (in Final mode: over the decimal partial state), or nil.
func newDecAccumulator(a boundAgg, m Mode) accumulator {
	if a.typ == nil || !isDecimal(a.typ) {
		return nil
	}
	switch a.Func {
	case Sum:
		return &decSumAcc{dt: decSumType(a.typ)}
	case Avg:
		return &decSumAcc{dt: decSumType(a.typ), avg: true, partial: m == Partial, merge: m == Final}
	case Min, Max:
		return &decMinMaxAcc{dt: a.typ, max: a.Func == Max}
	}
	return nil
}

// decSumAcc is sum and avg over decimals: a 128-bit sum and a count per
// group (a group without values is NULL).
type decSumAcc struct {
	dt      arrow.DataType // decimal(38, s)
	sums    []i128
	counts  []int64
	avg     bool
	partial bool // avg: emit (sum, count)
	merge   bool // avg: the input is (sum, count)
	ovf     int64
	err     error
}

func (a *decSumAcc) failed() error {
	if a.ovf < 0 && a.err == nil {
		a.err = errDecimalOverflow
	}
	return a.err
}

func (a *decSumAcc) resize(n int) { a.sums, a.counts = extend(a.sums, n), extend(a.counts, n) }
func (a *decSumAcc) bytes() int   { return 24 * cap(a.sums) }

func (a *decSumAcc) update(cols []arrow.Array, gids []uint32) {
	if a.merge {
		a.mergeState(cols, gids)
		return
	}
	a.add(cols[0], nil, gids)
}

// add adds the decimals of c into the groups gids, counting one per value
// or, with counts, the counts of partial states.
func (a *decSumAcc) add(c arrow.Array, counts []int64, gids []uint32) {
	v := decValues(c)[:len(gids)]
	vv := validityOf(c)
	sums, cnt := a.sums, a.counts
	if decPrecision(c.DataType()) <= 18 && counts == nil {
		for i, g := range gids {
			if vv.bits != nil && !vv.valid(i) {
				continue
			}
			x := int64(v[i].lo)
			s := &sums[g]
			lo, carry := bits.Add64(s.lo, uint64(x), 0)
			s.lo, s.hi = lo, s.hi+x>>63+int64(carry)
			cnt[g]++
		}
		return
	}
	ovf := a.ovf
	for i, g := range gids {
		if vv.bits != nil && !vv.valid(i) {
			continue
		}
		x := v[i]
		s := &sums[g]
		lo, carry := bits.Add64(s.lo, x.lo, 0)
		hi := s.hi + x.hi + int64(carry)
		ovf |= (s.hi ^ hi) & (x.hi ^ hi)
		s.lo, s.hi = lo, hi
		if counts != nil {
			cnt[g] += counts[i]
		} else {
			cnt[g]++
		}
	}
	a.ovf = ovf
}

// num converts to decimal128.Num.
func (x i128) num() decimal128.Num { return decimal128.New(x.hi, x.lo) }

func (a *decSumAcc) build(mem memory.Allocator, lo, hi int, out []arrow.Array) ([]arrow.Array, error) {
	if err := a.failed(); err != nil {
		return out, err
	}
	sums, counts := a.sums[lo:hi], a.counts[lo:hi]
	if a.avg && a.partial {
		return append(out, fixedArray(mem, a.dt, sums, nil), fixedArray(mem, i64, counts, nil)), nil
	}
	valid := make([]bool, len(sums))
	for i, c := range counts {
		valid[i] = c > 0
	}
	if !a.avg {
		return append(out, fixedArray(mem, a.dt, sums, valid)), nil
	}
	scale := a.dt.(*arrow.Decimal128Type).Scale
	avg := make([]float64, len(sums))
	for i, s := range sums {
		if valid[i] {
			avg[i] = decFloat(s.num(), scale) / float64(counts[i])
		}
	}
	return append(out, fixedArray(mem, arrow.PrimitiveTypes.Float64, avg, valid)), nil
}

// decFloat is the float64 nearest to x / 10^scale.
func decFloat(x decimal128.Num, scale int32) float64 {
	if x.HighBits() == int64(x.LowBits())>>63 && scale <= 22 {
		if v := int64(x.LowBits()); v > -1<<53 && v < 1<<53 {
			return float64(v) / math.Pow10(int(scale))
		}
	}
	f, _ := strconv.ParseFloat(x.ToString(scale), 64)
	return f
}

// The state is the sum, decimal(38, s) (NULL: no value), and for avg the
// count too.

func (a *decSumAcc) stateTypes() []arrow.DataType {
	if a.avg {
		return []arrow.DataType{a.dt, i64}
	}
	return []arrow.DataType{a.dt}
}

func (a *decSumAcc) exportState(dest []uint32) []stateCol {
	if a.avg {
		return []stateCol{newFixedCol(a.dt, a.sums, nil, dest), newFixedCol(i64, a.counts, nil, dest)}
	}
	valid := make([]bool, len(dest))
	for g := range dest {
		valid[g] = a.counts[g] > 0
	}
	return []stateCol{newFixedCol(a.dt, a.sums, valid, dest)}
}

func (a *decSumAcc) mergeState(cols []arrow.Array, gids []uint32) {
	if !a.avg {
		a.add(cols[0], nil, gids)
		return
	}
	counts := values[int64](cols[1])[:len(gids)]
	a.add(cols[0], counts, gids)
}

// decMinMaxAcc keeps the least or greatest decimal per group.
type decMinMaxAcc struct {
	dt   arrow.DataType
	max  bool
	vals []i128
	has  []bool
}

func (a *decMinMaxAcc) resize(n int) { a.vals, a.has = extend(a.vals, n), extend(a.has, n) }
func (a *decMinMaxAcc) bytes() int   { return 17 * cap(a.vals) }

func less128(x, y i128) bool { return x.hi < y.hi || x.hi == y.hi && x.lo < y.lo }

func (a *decMinMaxAcc) update(cols []arrow.Array, gids []uint32) {
	c := cols[0]
	v := decValues(c)[:len(gids)]
	vv := validityOf(c)
	vals, has := a.vals, a.has
	if a.max {
		for i, g := range gids {
			if (vv.bits == nil || vv.valid(i)) && (!has[g] || less128(vals[g], v[i])) {
				vals[g], has[g] = v[i], true
			}
		}
		return
	}
	for i, g := range gids {
		if (vv.bits == nil || vv.valid(i)) && (!has[g] || less128(v[i], vals[g])) {
			vals[g], has[g] = v[i], true
		}
	}
}

func (a *decMinMaxAcc) build(mem memory.Allocator, lo, hi int, out []arrow.Array) ([]arrow.Array, error) {
	return append(out, fixedArray(mem, a.dt, a.vals[lo:hi], a.has[lo:hi])), nil
}

func (a *decMinMaxAcc) stateTypes() []arrow.DataType { return []arrow.DataType{a.dt} }

func (a *decMinMaxAcc) exportState(dest []uint32) []stateCol {
	return []stateCol{newFixedCol(a.dt, a.vals, a.has, dest)}
}

func (a *decMinMaxAcc) mergeState(cols []arrow.Array, gids []uint32) { a.update(cols, gids) }
