package agg

import (
	"errors"
	"math"
	"math/bits"
	"strconv"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// Aggregates over decimal128(p, s) columns, exact, with DuckDB's types
// (decimal256: decimal256.go):
//
//	sum(d)       decimal(38, s)  an error when the sum leaves the 128-bit range
//	avg(d)       float64         the exact sum divided by the count
//	min, max     decimal(p, s)
//
// Sums are kept in 128-bit integers per group. Values of up to 18 digits
// are added as sign-extended int64 (no overflow check: 2^127 is more than
// 10^18 times any row count); wider values with a 128-bit overflow check
// per row. As in DuckDB, a sum beyond 38 digits that fits 128 bits is a
// value (DuckDB's sum of 10^38-1 and 1 is 10^38), not an error. Partial
// states are the sum as decimal(38, s) (and the count for avg), so Final
// merges them with the same loops.

// i128 is a two's complement 128-bit integer laid out as Arrow's decimal128
// values (and decimal128.Num): the low word first.
type i128 struct {
	lo uint64
	hi int64
}

var (
	errDecimalOverflow    = errors.New("decimal overflow: the sum leaves the 128-bit range")
	errDecimal256Overflow = errors.New("decimal overflow: the sum leaves the 256-bit range")
)

func isDecimal(dt arrow.DataType) bool {
	return dt.ID() == arrow.DECIMAL128 || dt.ID() == arrow.DECIMAL256
}

func isSummable(dt arrow.DataType) bool { return isNumeric(dt) || isDecimal(dt) }

func isMinMaxType(dt arrow.DataType) bool { return isValueType(dt) || isDecimal(dt) }

// decSumType is sum's type over a decimal: DuckDB's DECIMAL(38, s)
// (decimal256(76, s) over decimal256).
func decSumType(dt arrow.DataType) arrow.DataType {
	if dt.ID() == arrow.DECIMAL256 {
		return decSum256Type(dt)
	}
	return &arrow.Decimal128Type{Precision: 38, Scale: dt.(*arrow.Decimal128Type).Scale}
}

func decPrecision(dt arrow.DataType) int32 { return dt.(*arrow.Decimal128Type).Precision }

// newDecAccumulator returns the accumulator of a over a decimal column
// (in Final mode: over the decimal partial state), or nil.
func newDecAccumulator(a boundAgg, m Mode) accumulator {
	if a.typ == nil || !isDecimal(a.typ) {
		return nil
	}
	wide := a.typ.ID() == arrow.DECIMAL256
	switch {
	case (a.Func == Sum || a.Func == Avg) && wide:
		return &decSumAcc[i256]{dt: decSumType(a.typ), avg: a.Func == Avg, partial: m == Partial, merge: m == Final,
			add: add256, toFloat: i256.float, errOvf: errDecimal256Overflow}
	case a.Func == Sum || a.Func == Avg:
		return &decSumAcc[i128]{dt: decSumType(a.typ), avg: a.Func == Avg, partial: m == Partial, merge: m == Final,
			add: add128, toFloat: i128.float, errOvf: errDecimalOverflow}
	case (a.Func == Min || a.Func == Max) && wide:
		return &decMinMaxAcc[i256]{dt: a.typ, max: a.Func == Max, update1: minMax256}
	case a.Func == Min || a.Func == Max:
		return &decMinMaxAcc[i128]{dt: a.typ, max: a.Func == Max, update1: minMax128}
	}
	return nil
}

// decSumAcc is sum and avg over decimals of sum word W: a sum and a count
// per group (a group without values is NULL). add is the typed loop of
// the width (one call per batch).
type decSumAcc[W any] struct {
	dt      arrow.DataType // the sum's type
	sums    []W
	counts  []int64
	avg     bool
	partial bool // avg: emit (sum, count)
	merge   bool // avg: the input is (sum, count)
	ovf     uint64
	errOvf  error
	add     func(a *decSumAcc[W], c arrow.Array, counts []int64, gids []uint32)
	toFloat func(W, int32) float64
}

func (a *decSumAcc[W]) failed() error {
	if int64(a.ovf) < 0 {
		return a.errOvf
	}
	return nil
}

func (a *decSumAcc[W]) resize(n int) { a.sums, a.counts = extend(a.sums, n), extend(a.counts, n) }
func (a *decSumAcc[W]) bytes() int {
	var w W
	return (8 + int(unsafe.Sizeof(w))) * cap(a.sums)
}

func (a *decSumAcc[W]) update(cols []arrow.Array, gids []uint32) {
	if a.merge {
		a.mergeState(cols, gids)
		return
	}
	a.add(a, cols[0], nil, gids)
}

// add128 adds the decimal128 values of c into the groups gids, counting
// one per value or, with counts, the counts of partial states.
func add128(a *decSumAcc[i128], c arrow.Array, counts []int64, gids []uint32) {
	v := values[i128](c)[:len(gids)]
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
	ovf := int64(a.ovf)
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
	a.ovf = uint64(ovf)
}

// num converts to decimal128.Num.
func (x i128) num() decimal128.Num { return decimal128.New(x.hi, x.lo) }

// float is the float64 nearest to x / 10^scale.
func (x i128) float(scale int32) float64 {
	if x.hi == int64(x.lo)>>63 && scale <= 22 {
		if v := int64(x.lo); v > -1<<53 && v < 1<<53 {
			return float64(v) / math.Pow10(int(scale))
		}
	}
	f, _ := strconv.ParseFloat(x.num().ToString(scale), 64)
	return f
}

func (a *decSumAcc[W]) build(mem memory.Allocator, lo, hi int, out []arrow.Array) ([]arrow.Array, error) {
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
	scale := decScaleOf(a.dt)
	avg := make([]float64, len(sums))
	for i, s := range sums {
		if valid[i] {
			avg[i] = a.toFloat(s, scale) / float64(counts[i])
		}
	}
	return append(out, fixedArray(mem, arrow.PrimitiveTypes.Float64, avg, valid)), nil
}

func decScaleOf(dt arrow.DataType) int32 {
	if d, ok := dt.(*arrow.Decimal256Type); ok {
		return d.Scale
	}
	return dt.(*arrow.Decimal128Type).Scale
}

// The state is the sum, of the sum's type (NULL: no value), and for avg
// the count too.

func (a *decSumAcc[W]) stateTypes() []arrow.DataType {
	if a.avg {
		return []arrow.DataType{a.dt, i64}
	}
	return []arrow.DataType{a.dt}
}

func (a *decSumAcc[W]) exportState(dest []uint32) []stateCol {
	if a.avg {
		return []stateCol{newFixedCol(a.dt, a.sums, nil, dest), newFixedCol(i64, a.counts, nil, dest)}
	}
	valid := make([]bool, len(dest))
	for g := range dest {
		valid[g] = a.counts[g] > 0
	}
	return []stateCol{newFixedCol(a.dt, a.sums, valid, dest)}
}

func (a *decSumAcc[W]) mergeState(cols []arrow.Array, gids []uint32) {
	var counts []int64
	if a.avg {
		counts = values[int64](cols[1])[:len(gids)]
	}
	a.add(a, cols[0], counts, gids)
}

// decMinMaxAcc keeps the least or greatest decimal per group; update1 is
// the typed loop of the width.
type decMinMaxAcc[W any] struct {
	dt      arrow.DataType
	max     bool
	vals    []W
	has     []bool
	update1 func(a *decMinMaxAcc[W], c arrow.Array, gids []uint32)
}

func (a *decMinMaxAcc[W]) resize(n int) { a.vals, a.has = extend(a.vals, n), extend(a.has, n) }
func (a *decMinMaxAcc[W]) bytes() int {
	var w W
	return (1 + int(unsafe.Sizeof(w))) * cap(a.vals)
}

func (a *decMinMaxAcc[W]) update(cols []arrow.Array, gids []uint32) { a.update1(a, cols[0], gids) }

func less128(x, y i128) bool { return x.hi < y.hi || x.hi == y.hi && x.lo < y.lo }

func minMax128(a *decMinMaxAcc[i128], c arrow.Array, gids []uint32) {
	v := values[i128](c)[:len(gids)]
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

func (a *decMinMaxAcc[W]) build(mem memory.Allocator, lo, hi int, out []arrow.Array) ([]arrow.Array, error) {
	return append(out, fixedArray(mem, a.dt, a.vals[lo:hi], a.has[lo:hi])), nil
}

func (a *decMinMaxAcc[W]) stateTypes() []arrow.DataType { return []arrow.DataType{a.dt} }

func (a *decMinMaxAcc[W]) exportState(dest []uint32) []stateCol {
	return []stateCol{newFixedCol(a.dt, a.vals, a.has, dest)}
}

func (a *decMinMaxAcc[W]) mergeState(cols []arrow.Array, gids []uint32) { a.update(cols, gids) }

// updateGlobal is update for the one group of an aggregate without keys:
// decimal128 sums of up to 18 digits and extremes are kept in registers
// (the per-group loops would store to the same group on every row).
func (a *decSumAcc[W]) updateGlobal(cols []arrow.Array, n int) {
	c := cols[0]
	s, ok := any(a).(*decSumAcc[i128])
	if a.merge || !ok || decPrecision(c.DataType()) > 18 {
		a.update(cols, zeros(nil, n))
		return
	}
	v := values[i128](c)[:n]
	vv := validityOf(c)
	// Sum 64-bit values into a 128-bit lo/hi pair: the carries of lo are
	// counted in hi, with the sign extension of each value.
	sum := s.sums[0]
	var cnt int64
	for i := range v {
		if vv.bits != nil && !vv.valid(i) {
			continue
		}
		x := int64(v[i].lo)
		lo, carry := bits.Add64(sum.lo, uint64(x), 0)
		sum.lo, sum.hi = lo, sum.hi+x>>63+int64(carry)
		cnt++
	}
	s.sums[0] = sum
	s.counts[0] += cnt
}

func (a *decMinMaxAcc[W]) updateGlobal(cols []arrow.Array, n int) {
	m, ok := any(a).(*decMinMaxAcc[i128])
	if !ok {
		a.update(cols, zeros(nil, n))
		return
	}
	c := cols[0]
	v := values[i128](c)[:n]
	vv := validityOf(c)
	best, has := m.vals[0], m.has[0]
	for i := range v {
		if vv.bits != nil && !vv.valid(i) {
			continue
		}
		if !has || m.max && less128(best, v[i]) || !m.max && less128(v[i], best) {
			best, has = v[i], true
		}
	}
	m.vals[0], m.has[0] = best, has
}
