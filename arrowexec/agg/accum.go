package agg

import (
	"errors"
	"fmt"
	"math"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/cespare/xxhash/v2"
)

// An accumulator holds the state of one aggregate for every group. update
// is called once per batch with the aggregate's input columns and the group
// id of every row, and runs one typed loop over them; there is no per-row
// dispatch.
type accumulator interface {
	// resize makes room for n groups (new groups start empty).
	resize(n int)
	update(cols []arrow.Array, gids []uint32)
	// build appends the output columns of groups [lo, hi) to out.
	build(mem memory.Allocator, lo, hi int, out []arrow.Array) ([]arrow.Array, error)
	bytes() int
	stateful // checkpoints: see state.go
}

// globalUpdater is implemented by accumulators with a loop for the single
// group of an aggregate without group-by columns.
type globalUpdater interface {
	updateGlobal(cols []arrow.Array, n int)
}

func newAccumulator(a boundAgg, m Mode) accumulator {
	if acc := newDecAccumulator(a, m); acc != nil {
		return acc
	}
	dt := a.typ
	switch a.Func {
	case Count:
		switch {
		case m == Final:
			return &countMerge{}
		case a.star():
			return &countStar{}
		default:
			return &countValid{}
		}
	case Sum:
		return newSum(dt)
	case Avg:
		if m == Final {
			if dt.ID() == arrow.FLOAT64 {
				return &avgAcc[float64, float64]{merge: true, sumType: dt}
			}
			return &avgAcc[int64, int64]{merge: true, sumType: dt, wide: true}
		}
		return newAvg(dt, m == Partial)
	case Min, Max:
		return newMinMax(dt, a.Func == Max)
	case BoolAnd, BoolOr:
		return newMinMax(dt, a.Func == BoolOr)
	case VarSamp, VarPop, StddevSamp, StddevPop:
		return &varAcc{f: a.Func, partial: m == Partial, merge: m == Final}
	case ApproxDistinct:
		return &approxAcc{partial: m == Partial, merge: m == Final}
	case Median, Quantile, ArgMax, ArgMin, First, Last, List:
		return newCollect(a, m)
	case CountDistinct:
		if dt.ID() == arrow.STRING || dt.ID() == arrow.BINARY || isStringLike(dt) {
			return &distinctString{}
		}
		return &distinctFixed{load: widenLoader(dt)}
	}
	panic(fmt.Sprintf("agg: no accumulator for %s", a.Func)) // plan checked the function
}

func newSum(dt arrow.DataType) accumulator {
	i64, f64 := arrow.PrimitiveTypes.Int64, arrow.PrimitiveTypes.Float64
	switch dt.ID() {
	case arrow.INT8:
		return &sumAcc[int8, int64]{dt: i64}
	case arrow.INT16:
		return &sumAcc[int16, int64]{dt: i64}
	case arrow.INT32:
		return &sumAcc[int32, int64]{dt: i64}
	case arrow.INT64:
		return &sumAcc[int64, int64]{dt: i64, wide: true}
	case arrow.UINT8:
		return &sumAcc[uint8, int64]{dt: i64}
	case arrow.UINT16:
		return &sumAcc[uint16, int64]{dt: i64}
	case arrow.UINT32:
		return &sumAcc[uint32, int64]{dt: i64}
	case arrow.UINT64:
		return &sumAcc[uint64, int64]{dt: i64, wide: true}
	case arrow.FLOAT32:
		return &sumAcc[float32, float64]{dt: f64}
	case arrow.FLOAT64:
		return &sumAcc[float64, float64]{dt: f64}
	}
	panic(fmt.Sprintf("agg: cannot sum %s", dt))
}

func newAvg(dt arrow.DataType, partial bool) accumulator {
	i64, f64 := arrow.PrimitiveTypes.Int64, arrow.PrimitiveTypes.Float64
	switch dt.ID() {
	case arrow.INT8:
		return &avgAcc[int8, int64]{partial: partial, sumType: i64}
	case arrow.INT16:
		return &avgAcc[int16, int64]{partial: partial, sumType: i64}
	case arrow.INT32:
		return &avgAcc[int32, int64]{partial: partial, sumType: i64}
	case arrow.INT64:
		return &avgAcc[int64, int64]{partial: partial, sumType: i64, wide: true}
	case arrow.UINT8:
		return &avgAcc[uint8, int64]{partial: partial, sumType: i64}
	case arrow.UINT16:
		return &avgAcc[uint16, int64]{partial: partial, sumType: i64}
	case arrow.UINT32:
		return &avgAcc[uint32, int64]{partial: partial, sumType: i64}
	case arrow.UINT64:
		return &avgAcc[uint64, int64]{partial: partial, sumType: i64, wide: true}
	case arrow.FLOAT32:
		return &avgAcc[float32, float64]{partial: partial, sumType: f64}
	case arrow.FLOAT64:
		return &avgAcc[float64, float64]{partial: partial, sumType: f64}
	}
	panic(fmt.Sprintf("agg: cannot average %s", dt))
}

func newMinMax(dt arrow.DataType, isMax bool) accumulator {
	switch dt.ID() {
	case arrow.INT8:
		return &minMaxAcc[int8]{dt: dt, max: isMax}
	case arrow.INT16:
		return &minMaxAcc[int16]{dt: dt, max: isMax}
	case arrow.INT32, arrow.DATE32:
		return &minMaxAcc[int32]{dt: dt, max: isMax}
	case arrow.INT64, arrow.TIMESTAMP, arrow.DATE64:
		return &minMaxAcc[int64]{dt: dt, max: isMax}
	case arrow.UINT8:
		return &minMaxAcc[uint8]{dt: dt, max: isMax}
	case arrow.BOOL:
		return &minMaxAcc[uint8]{dt: dt, max: isMax, load: boolsAsBytes}
	case arrow.UINT16:
		return &minMaxAcc[uint16]{dt: dt, max: isMax}
	case arrow.UINT32:
		return &minMaxAcc[uint32]{dt: dt, max: isMax}
	case arrow.UINT64:
		return &minMaxAcc[uint64]{dt: dt, max: isMax}
	case arrow.FLOAT32:
		return &minMaxAcc[float32]{dt: dt, max: isMax}
	case arrow.FLOAT64:
		return &minMaxAcc[float64]{dt: dt, max: isMax}
	case arrow.STRING, arrow.BINARY:
		return &minMaxString{dt: dt, max: isMax}
	}
	if isStringLike(dt) {
		return &minMaxString{dt: valueOut(dt), max: isMax}
	}
	panic(fmt.Sprintf("agg: no min/max for %s", dt))
}

// countStar counts rows.
type countStar struct{ counts []int64 }

func (a *countStar) resize(n int) { a.counts = extend(a.counts, n) }
func (a *countStar) bytes() int   { return 8 * cap(a.counts) }

func (a *countStar) update(_ []arrow.Array, gids []uint32) { FoldCount(nil, nil, gids, a.counts) }

func (a *countStar) build(mem memory.Allocator, lo, hi int, out []arrow.Array) ([]arrow.Array, error) {
	return append(out, fixedArray(mem, arrow.PrimitiveTypes.Int64, a.counts[lo:hi], nil)), nil
}

func (a *countStar) updateGlobal(cols []arrow.Array, n int) { a.counts[0] += int64(n) }

// countValid counts non-null values.
type countValid struct{ countStar }

func (a *countValid) update(cols []arrow.Array, gids []uint32) {
	FoldCount(cols[0], nil, gids, a.counts)
}

func (a *countValid) updateGlobal(cols []arrow.Array, n int) {
	a.counts[0] += int64(cols[0].Len() - cols[0].NullN())
}

// countMerge adds up partial counts.
type countMerge struct{ countStar }

func (a *countMerge) update(cols []arrow.Array, gids []uint32) { a.mergeState(cols, gids) }

// errOverflow reports an integer sum outside the int64 range.
var errOverflow = errors.New("integer overflow: the sum leaves the int64 range")

// failer is implemented by accumulators that can fail (integer overflow);
// the operator asks after every batch.
type failer interface{ failed() error }

// int64Values returns the values of an int64 or uint64 column as int64;
// false if a valid uint64 value exceeds the int64 range.
func int64Values(c arrow.Array) ([]int64, bool) {
	vals := values[int64](c)
	if c.DataType().ID() == arrow.UINT64 {
		vv := validityOf(c)
		for i, v := range vals {
			if v < 0 && (vv.bits == nil || vv.valid(i)) {
				return nil, false
			}
		}
	}
	return vals, true
}

func zeros(s []uint32, n int) []uint32 {
	if cap(s) < n {
		return make([]uint32, n)
	}
	return s[:n] // never written: stays zero
}

// lazySeen tracks which groups have seen a non-null value. While no batch
// had a NULL in the aggregate's column, every group created by a row has a
// value, so no per-row flag is kept: seen stays nil and covered counts the
// groups that existed after the last update. The first batch with NULLs
// materializes the flags.
type lazySeen struct {
	seen    []bool
	covered int
}

func (l *lazySeen) resizeSeen(n int) {
	if l.seen != nil {
		l.seen = extend(l.seen, n)
	}
}

// flags returns the per-group flags for n groups, materializing them.
func (l *lazySeen) flags(n int) []bool {
	if l.seen == nil {
		l.seen = make([]bool, n, max(n, 64))
		for i := range l.covered {
			l.seen[i] = true
		}
	}
	return l.seen
}

// track returns the flags a fold of column c into n groups marks: nil
// while no NULL showed up (every group then has a value after the fold).
func (l *lazySeen) track(c arrow.Array, n int) []bool {
	if c.NullN() == 0 && l.seen == nil {
		l.covered = n
		return nil
	}
	return l.flags(n)
}

// validity returns the flags of groups [lo, hi), nil meaning all seen.
func (l *lazySeen) validity(lo, hi int) []bool {
	if l.seen != nil {
		return l.seen[lo:hi]
	}
	if hi <= l.covered {
		return nil
	}
	v := make([]bool, hi-lo)
	for i := range v {
		v[i] = lo+i < l.covered
	}
	return v
}

func (a *countMerge) updateGlobal(cols []arrow.Array, n int) {
	vals := values[int64](cols[0])
	vv := validityOf(cols[0])
	sum := int64(0)
	for i, v := range vals {
		if vv.bits == nil || vv.valid(i) {
			sum += v
		}
	}
	a.counts[0] += sum
}

// sumAcc sums T values into S; a group without values sums to NULL.
type sumAcc[T number, S int64 | float64] struct {
	dt   arrow.DataType
	sums []S
	lazySeen
	// wide marks int64 and uint64 inputs, whose sums can leave the int64
	// range: they are added with overflow checks.
	wide bool
	err  error
}

func (a *sumAcc[T, S]) failed() error { return a.err }

func (a *sumAcc[T, S]) resize(n int) { a.sums = extend(a.sums, n); a.resizeSeen(n) }
func (a *sumAcc[T, S]) bytes() int   { return 8*cap(a.sums) + cap(a.seen) }

func (a *sumAcc[T, S]) update(cols []arrow.Array, gids []uint32) {
	if a.wide {
		a.updateWide(cols[0], gids)
		return
	}
	c := cols[0]
	FoldSum(c, values[T](c), nil, gids, a.sums, a.track(c, len(a.sums)))
}

// updateWide adds int64 (or uint64) values with overflow checks.
func (a *sumAcc[T, S]) updateWide(c arrow.Array, gids []uint32) {
	vals, ok := int64Values(c)
	if !ok {
		a.err = errOverflow
		return
	}
	a.addWide(c, vals, gids)
}

// addWide adds the int64 values (or partial sums) vals of column c with
// overflow checks.
func (a *sumAcc[T, S]) addWide(c arrow.Array, vals []int64, gids []uint32) {
	sums := any(a.sums).([]int64)
	if FoldSumInt64(c, vals, nil, gids, sums, a.track(c, len(sums))) {
		a.err = errOverflow
	}
}

func (a *sumAcc[T, S]) updateGlobal(cols []arrow.Array, n int) {
	if a.wide {
		a.updateWideGlobal(cols[0])
		return
	}
	vals := values[T](cols[0])
	vv := validityOf(cols[0])
	var sum S
	nv := 0
	if vv.bits == nil {
		for _, v := range vals {
			sum += S(v)
		}
		nv = len(vals)
	} else {
		for i, v := range vals {
			if vv.valid(i) {
				sum += S(v)
				nv++
			}
		}
	}
	a.sums[0] += sum
	if nv > 0 {
		a.flags(1)[0] = true
	}
}

func (a *sumAcc[T, S]) updateWideGlobal(c arrow.Array) {
	vals, ok := int64Values(c)
	if !ok {
		a.err = errOverflow
		return
	}
	vv := validityOf(c)
	sums := any(a.sums).([]int64)
	sum, ovf, nv := sums[0], int64(0), 0
	if vv.bits == nil {
		for _, v := range vals {
			r := sum + v
			ovf |= (sum ^ r) & (v ^ r)
			sum = r
		}
		nv = len(vals)
	} else {
		for i, v := range vals {
			if vv.valid(i) {
				r := sum + v
				ovf |= (sum ^ r) & (v ^ r)
				sum = r
				nv++
			}
		}
	}
	sums[0] = sum
	if nv > 0 {
		a.flags(1)[0] = true
	}
	if ovf < 0 {
		a.err = errOverflow
	}
}

func (a *sumAcc[T, S]) build(mem memory.Allocator, lo, hi int, out []arrow.Array) ([]arrow.Array, error) {
	return append(out, fixedArray(mem, a.dt, a.sums[lo:hi], a.validity(lo, hi))), nil
}

// avgAcc keeps a sum and a count per group, side by side. Partial emits
// both; otherwise the average (NULL for a group without values). With merge
// it reads partial (sum, count) columns.
type avgAcc[T number, S int64 | float64] struct {
	st      []AvgState[S]
	sumType arrow.DataType
	partial bool
	merge   bool
	wide    bool // int64 sums of int64 or uint64 values: overflow-checked
	zeros   []uint32
	err     error
}

func (a *avgAcc[T, S]) failed() error { return a.err }

func (a *avgAcc[T, S]) resize(n int) { a.st = extend(a.st, n) }
func (a *avgAcc[T, S]) bytes() int   { return 16 * cap(a.st) }

func (a *avgAcc[T, S]) update(cols []arrow.Array, gids []uint32) {
	st := a.st
	if a.wide {
		var counts arrow.Array
		if a.merge {
			counts = cols[1]
		}
		a.updateWide(cols[0], counts, gids)
		return
	}
	if a.merge {
		a.mergeState(cols, gids)
		return
	}
	FoldAvg(cols[0], values[T](cols[0]), nil, gids, st)
}

// updateWide adds int64 (or uint64) values, or partial int64 sums with
// their counts, with overflow checks.
func (a *avgAcc[T, S]) updateWide(sums, counts arrow.Array, gids []uint32) {
	vals, ok := int64Values(sums)
	if !ok {
		a.err = errOverflow
		return
	}
	vals = vals[:len(gids)]
	st := any(a.st).([]AvgState[int64])
	sv := validityOf(sums)
	var (
		pc []int64
		cv validity
	)
	if counts != nil {
		pc, cv = values[int64](counts)[:len(gids)], validityOf(counts)
	}
	var ovf int64
	for i, g := range gids {
		if sv.bits != nil && !sv.valid(i) || cv.bits != nil && !cv.valid(i) {
			continue
		}
		p := &st[g]
		s, v := p.Sum, vals[i]
		r := s + v
		ovf |= (s ^ r) & (v ^ r)
		p.Sum = r
		if pc != nil {
			p.Count += pc[i]
		} else {
			p.Count++
		}
	}
	if ovf < 0 {
		a.err = errOverflow
	}
}

func (a *avgAcc[T, S]) updateGlobal(cols []arrow.Array, n int) {
	if a.merge || a.wide {
		a.zeros = zeros(a.zeros, n)
		a.update(cols, a.zeros)
		return
	}
	vals := values[T](cols[0])
	vv := validityOf(cols[0])
	var sum S
	nv := int64(0)
	if vv.bits == nil {
		for _, v := range vals {
			sum += S(v)
		}
		nv = int64(len(vals))
	} else {
		for i, v := range vals {
			if vv.valid(i) {
				sum += S(v)
				nv++
			}
		}
	}
	a.st[0].Sum += sum
	a.st[0].Count += nv
}

func (a *avgAcc[T, S]) build(mem memory.Allocator, lo, hi int, out []arrow.Array) ([]arrow.Array, error) {
	st := a.st[lo:hi]
	if a.partial {
		sums := make([]S, len(st))
		counts := make([]int64, len(st))
		for i, p := range st {
			sums[i], counts[i] = p.Sum, p.Count
		}
		return append(out,
			fixedArray(mem, a.sumType, sums, nil),
			fixedArray(mem, arrow.PrimitiveTypes.Int64, counts, nil)), nil
	}
	avg := make([]float64, len(st))
	valid := make([]bool, len(st))
	for i, p := range st {
		if p.Count > 0 {
			avg[i] = float64(p.Sum) / float64(p.Count)
			valid[i] = true
		}
	}
	return append(out, fixedArray(mem, arrow.PrimitiveTypes.Float64, avg, valid)), nil
}

// minMaxAcc keeps the least or greatest value per group. NaN is greater
// than every other float (as in DuckDB and PostgreSQL). New groups start at
// a sentinel that every value replaces or equals (the type's greatest value
// for min, NaN for float min, the least value for max), so the loops need
// no per-group flag while the column has no NULLs.
type minMaxAcc[T number] struct {
	dt      arrow.DataType
	max     bool
	vals    []T
	load    func(a arrow.Array, scratch []T) []T // nil: the values buffer
	scratch []T
	lazySeen
}

func (a *minMaxAcc[T]) resize(n int) {
	old := len(a.vals)
	a.vals = extend(a.vals, n)
	if len(a.vals) > old {
		init := sentinel[T](a.max)
		for i := old; i < len(a.vals); i++ {
			a.vals[i] = init
		}
	}
	a.resizeSeen(n)
}

// sentinel is the start value of min (isMax false) or max over T.
func sentinel[T number](isMax bool) T {
	var z T
	var lo, hi any
	switch any(z).(type) {
	case int8:
		lo, hi = int8(math.MinInt8), int8(math.MaxInt8)
	case int16:
		lo, hi = int16(math.MinInt16), int16(math.MaxInt16)
	case int32:
		lo, hi = int32(math.MinInt32), int32(math.MaxInt32)
	case int64:
		lo, hi = int64(math.MinInt64), int64(math.MaxInt64)
	case uint8:
		lo, hi = uint8(0), uint8(math.MaxUint8)
	case uint16:
		lo, hi = uint16(0), uint16(math.MaxUint16)
	case uint32:
		lo, hi = uint32(0), uint32(math.MaxUint32)
	case uint64:
		lo, hi = uint64(0), uint64(math.MaxUint64)
	case float32:
		lo, hi = float32(math.Inf(-1)), float32(math.NaN())
	case float64:
		lo, hi = math.Inf(-1), math.NaN()
	}
	if isMax {
		return lo.(T)
	}
	return hi.(T)
}

func (a *minMaxAcc[T]) bytes() int {
	var z T
	return int(unsafe.Sizeof(z))*cap(a.vals) + cap(a.seen)
}

func (a *minMaxAcc[T]) input(c arrow.Array) []T {
	if a.load == nil {
		return values[T](c)
	}
	in := a.load(c, a.scratch)
	a.scratch = in
	return in
}

func (a *minMaxAcc[T]) update(cols []arrow.Array, gids []uint32) {
	c := cols[0]
	FoldMinMax(c, a.input(c), nil, gids, a.vals, a.track(c, len(a.vals)), a.max)
}

func (a *minMaxAcc[T]) updateGlobal(cols []arrow.Array, n int) {
	in := a.input(cols[0])
	vv := validityOf(cols[0])
	cur := a.vals[0]
	if vv.bits == nil {
		if len(in) == 0 {
			return
		}
		if a.max {
			for _, v := range in {
				if v > cur || (v != v && cur == cur) {
					cur = v
				}
			}
		} else {
			for _, v := range in {
				if v < cur || (cur != cur && v == v) {
					cur = v
				}
			}
		}
		a.vals[0] = cur
		a.flags(1)[0] = true
		return
	}
	any := false
	for i, v := range in {
		if vv.bits != nil && !vv.valid(i) {
			continue
		}
		any = true
		if a.max && (v > cur || (v != v && cur == cur)) || !a.max && (v < cur || (cur != cur && v == v)) {
			cur = v
		}
	}
	a.vals[0] = cur
	if any {
		a.flags(1)[0] = true
	}
}

func (a *minMaxAcc[T]) build(mem memory.Allocator, lo, hi int, out []arrow.Array) ([]arrow.Array, error) {
	if a.dt.ID() == arrow.BOOL {
		return append(out, boolArray(mem, any(a.vals[lo:hi]).([]uint8), a.validity(lo, hi))), nil
	}
	return append(out, fixedArray(mem, a.dt, a.vals[lo:hi], a.validity(lo, hi))), nil
}

// minMaxString keeps the least or greatest string or binary value per group
// (bytewise order); it copies a value only when it becomes the extreme.
type minMaxString struct {
	dt   arrow.DataType
	max  bool
	vals []string
	seen []bool
	err  error // a large column beyond 32-bit offsets (plainBinary)
}

func (a *minMaxString) failed() error { return a.err }

func (a *minMaxString) resize(n int) { a.vals, a.seen = extend(a.vals, n), extend(a.seen, n) }

func (a *minMaxString) bytes() int {
	n := 17 * cap(a.vals)
	for _, s := range a.vals {
		n += len(s)
	}
	return n
}

func (a *minMaxString) update(cols []arrow.Array, gids []uint32) {
	col, err := plainBinary(cols[0])
	if err != nil {
		a.err = err
		return
	}
	defer col.Release()
	FoldMinMaxString(col, nil, gids, a.vals, a.seen, a.max, false)
}

func (a *minMaxString) build(mem memory.Allocator, lo, hi int, out []arrow.Array) ([]arrow.Array, error) {
	vals := a.vals[lo:hi]
	total := 0
	for _, s := range vals {
		total += len(s)
	}
	arr, err := binaryArray(mem, a.dt, len(vals), func(i int) []byte {
		return unsafe.Slice(unsafe.StringData(vals[i]), len(vals[i]))
	}, total, a.seen[lo:hi])
	if err != nil {
		return out, err
	}
	return append(out, arr), nil
}

// widenLoader returns a function writing the canonical bits of a fixed-width
// column, widened to 64 bits, into scratch; nil for 64-bit integers, whose
// values buffer serves as it is.
func widenLoader(dt arrow.DataType) func(a arrow.Array, scratch []uint64) []uint64 {
	switch dt.ID() {
	case arrow.INT8, arrow.UINT8:
		return widen[uint8]
	case arrow.INT16, arrow.UINT16:
		return widen[uint16]
	case arrow.INT32, arrow.UINT32, arrow.DATE32:
		return widen[uint32]
	case arrow.INT64, arrow.UINT64, arrow.TIMESTAMP, arrow.DATE64:
		return nil // the values buffer as it is
	case arrow.FLOAT64:
		return float64Bits
	case arrow.FLOAT32:
		var tmp []uint32
		return func(a arrow.Array, scratch []uint64) []uint64 {
			tmp = float32Bits(a, tmp)
			return widenSlice(tmp, scratch)
		}
	case arrow.BOOL:
		var tmp []uint8
		return func(a arrow.Array, scratch []uint64) []uint64 {
			tmp = boolsAsBytes(a, tmp)
			return widenSlice(tmp, scratch)
		}
	}
	panic(fmt.Sprintf("agg: no distinct set for %s", dt))
}

func widen[T word](a arrow.Array, scratch []uint64) []uint64 {
	return widenSlice(values[T](a), scratch)
}

func widenSlice[T word](vals []T, scratch []uint64) []uint64 {
	scratch = grow(scratch, len(vals))
	for i, v := range vals {
		scratch[i] = uint64(v)
	}
	return scratch
}

// mix is the splitmix64 finalizer.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// distinctFixed counts distinct fixed-width values per group with one global
// open-addressing set of (group, value bits) pairs.
type distinctFixed struct {
	load    func(a arrow.Array, scratch []uint64) []uint64 // nil: values buffer
	scratch []uint64
	slots   []distinctSlot
	mask    uint64
	used    int
	counts  []int64
}

type distinctSlot struct {
	v uint64
	g uint32 // gid+1; 0: empty
}

func (a *distinctFixed) resize(n int) { a.counts = extend(a.counts, n) }
func (a *distinctFixed) bytes() int   { return 16*cap(a.slots) + 8*cap(a.counts) }

func (a *distinctFixed) update(cols []arrow.Array, gids []uint32) {
	var vals []uint64
	if a.load == nil {
		vals = values[uint64](cols[0])
	} else {
		vals = a.load(cols[0], a.scratch)
		a.scratch = vals
	}
	vals = vals[:len(gids)]
	vv := validityOf(cols[0])
	for i, g := range gids {
		if vv.bits != nil && !vv.valid(i) {
			continue
		}
		a.insert(vals[i], g)
	}
}

// insert adds value bits v to the set of group g.
func (a *distinctFixed) insert(v uint64, g uint32) {
	if (a.used+1)*2 > len(a.slots) {
		a.rehash()
	}
	s := mix(v^uint64(g)*0x9e3779b97f4a7c15) & a.mask
	for {
		sl := &a.slots[s]
		if sl.g == 0 {
			sl.v, sl.g = v, g+1
			a.used++
			a.counts[g]++
			return
		}
		if sl.g == g+1 && sl.v == v {
			return
		}
		s = (s + 1) & a.mask
	}
}

func (a *distinctFixed) rehash() {
	old := a.slots
	n := max(2*len(old), 1024)
	a.slots, a.mask = make([]distinctSlot, n), uint64(n-1)
	for _, sl := range old {
		if sl.g == 0 {
			continue
		}
		s := mix(sl.v^uint64(sl.g-1)*0x9e3779b97f4a7c15) & a.mask
		for a.slots[s].g != 0 {
			s = (s + 1) & a.mask
		}
		a.slots[s] = sl
	}
}

func (a *distinctFixed) build(mem memory.Allocator, lo, hi int, out []arrow.Array) ([]arrow.Array, error) {
	return append(out, fixedArray(mem, arrow.PrimitiveTypes.Int64, a.counts[lo:hi], nil)), nil
}

// distinctString counts distinct string or binary values per group with one
// global set of (group, value) pairs; values live in a byte arena.
type distinctString struct {
	err    error // a large column beyond 32-bit offsets (plainBinary)
	slots  []distinctStringSlot
	mask   uint64
	used   int
	data   []byte
	offs   []int
	counts []int64
}

type distinctStringSlot struct {
	h   uint64
	g   uint32 // gid+1; 0: empty
	ref uint32 // value index into offs
}

func (a *distinctString) resize(n int) { a.counts = extend(a.counts, n) }
func (a *distinctString) bytes() int {
	return 16*cap(a.slots) + 8*cap(a.counts) + cap(a.data) + 8*cap(a.offs)
}

func (a *distinctString) failed() error { return a.err }

func (a *distinctString) update(cols []arrow.Array, gids []uint32) {
	col, err := plainBinary(cols[0])
	if err != nil {
		a.err = err
		return
	}
	defer col.Release()
	offs, data := binaryView(col)
	vv := validityOf(col)
	for i, g := range gids {
		if vv.bits != nil && !vv.valid(i) {
			continue
		}
		a.insert(data[offs[i]:offs[i+1]], g)
	}
}

// insert adds value v to the set of group g.
func (a *distinctString) insert(v []byte, g uint32) {
	if a.offs == nil {
		a.offs = []int{0}
	}
	if (a.used+1)*2 > len(a.slots) {
		a.rehash()
	}
	h := mix(xxhash.Sum64(v) ^ uint64(g)*0x9e3779b97f4a7c15)
	s := h & a.mask
	for {
		sl := &a.slots[s]
		if sl.g == 0 {
			a.data = append(a.data, v...)
			a.offs = append(a.offs, len(a.data))
			*sl = distinctStringSlot{h: h, g: g + 1, ref: uint32(len(a.offs) - 2)}
			a.used++
			a.counts[g]++
			return
		}
		if sl.h == h && sl.g == g+1 && string(a.data[a.offs[sl.ref]:a.offs[sl.ref+1]]) == string(v) {
			return
		}
		s = (s + 1) & a.mask
	}
}

func (a *distinctString) rehash() {
	old := a.slots
	n := max(2*len(old), 1024)
	a.slots, a.mask = make([]distinctStringSlot, n), uint64(n-1)
	for _, sl := range old {
		if sl.g == 0 {
			continue
		}
		s := sl.h & a.mask
		for a.slots[s].g != 0 {
			s = (s + 1) & a.mask
		}
		a.slots[s] = sl
	}
}

func (a *distinctString) build(mem memory.Allocator, lo, hi int, out []arrow.Array) ([]arrow.Array, error) {
	return append(out, fixedArray(mem, arrow.PrimitiveTypes.Int64, a.counts[lo:hi], nil)), nil
}
