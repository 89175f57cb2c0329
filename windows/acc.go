package windows

import (
	"encoding/binary"
	"fmt"
	"math"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/arrowexec/agg"
	"github.com/riffle-dev/riffle/state"
)

// boundAgg is an aggregate bound to the input schema.
type boundAgg struct {
	Agg
	col   int            // input column, -1 for count(*)
	float bool           // values are float64 (else int64)
	out   arrow.DataType // output type
	off   int            // offset of the aggregate's state in the blob
	size  int
	hidx  int  // approx_distinct, median, quantile: index of its sketch region
	str   bool // min, max over strings or binaries
	// min, max over uint64: the int64 state holds the uint64's bits and
	// compares unsigned.
	unsigned bool
	sidx     int // str: index of its string region
	// first, last, arg_max, arg_min (collect.go): the ordering column,
	// and whether its values are floats.
	col2    int
	byFloat bool
}

// Window state blob: flags(1) | key hash(8) | per aggregate state (the
// fixed part), then one sketch region per approx_distinct (HyperLogLog,
// hll.go) and per median or quantile (KLL, kll.go), in aggregate order, then
// one string region per min or max over strings: the value's length
// (uint32, little endian) and its bytes.
//
//	count                 n int64
//	avg                   n int64 | sum float64
//	sum, min, max         n int64 (> 0: there is a value) | value (int64 or float64 bits)
//	bool_and, bool_or     n int64 | value (0 or 1, int64): min and max
//	min, max of strings   n int64 (> 0: there is a value); the value is in the string region
//	var_*, stddev_*       n int64 | mean float64 | m2 float64 (agg.VarState)
//	first, last, arg_*    n int64 | ordering value | x | x valid (collect.go)
//	approx_distinct       nothing in the fixed part
//	median, quantile      nothing in the fixed part (a KLL sketch region)
//	count_distinct        nothing (the values are map state)
const (
	flagEmitted = 1 // the window was emitted at least once
	flagPending = 2 // the window has changes not emitted yet
	blobHeader  = 9
)

func bindAgg(in *arrow.Schema, a Agg, off int, time string) (boundAgg, error) {
	b := boundAgg{Agg: a, col: -1, off: off}
	var dt arrow.DataType
	if !a.Star() {
		idx := in.FieldIndices(a.Column)
		if len(idx) != 1 {
			return b, fmt.Errorf("windows: %s: no column %q", a.Name(), a.Column)
		}
		b.col = idx[0]
		dt = in.Field(b.col).Type
	}
	out, err := agg.ResultType(a, dt)
	if err != nil {
		return b, fmt.Errorf("windows: %w", err)
	}
	b.out = out
	switch a.Func {
	case Count:
		b.size = 8
	case BoolAnd, BoolOr:
		b.size = 16
	case VarSamp, VarPop, StddevSamp, StddevPop:
		b.size = 24
	case Min, Max:
		if id := dt.ID(); id == arrow.STRING || id == arrow.BINARY {
			b.str, b.size = true, 8
			return b, nil
		}
		fallthrough
	case Sum, Avg:
		switch dt.ID() {
		case arrow.INT8, arrow.INT16, arrow.INT32, arrow.INT64, arrow.UINT8, arrow.UINT16, arrow.UINT32, arrow.UINT64,
			arrow.TIMESTAMP, arrow.DATE32, arrow.DATE64, arrow.BOOL: // bool: min and max (agg.ResultType)
		case arrow.FLOAT32, arrow.FLOAT64:
			b.float = true
		default:
			return b, fmt.Errorf("windows: %s over %s is not supported in windows", a.Func, dt)
		}
		b.float = b.float || a.Func == Avg
		b.unsigned = dt.ID() == arrow.UINT64 && (a.Func == Min || a.Func == Max)
		b.size = 16
	case ApproxDistinct:
		b.size = 0 // a sketch region after the fixed part
	case CountDistinct:
		if err := state.CheckKeyType(dt); err != nil {
			return b, fmt.Errorf("windows: %s: %w", a.Name(), err)
		}
	case agg.Median, agg.Quantile, agg.First, agg.Last, agg.ArgMax, agg.ArgMin:
		if err := bindCollect(in, &b, dt, time); err != nil {
			return b, err
		}
	default:
		return b, fmt.Errorf("windows: %s is not supported in windows", a.Func)
	}
	return b, nil
}

// batchAcc accumulates one batch per group before the groups are merged
// into window state: per aggregate one typed loop over (row, group) pairs,
// the fold kernels of package agg (count, sum, avg, min, max) and
// agg.VarUpdate.
type batchAcc struct {
	n   [][]int64                 // count
	iv  [][]int64                 // sum, min, max, bool_and, bool_or over integers
	fv  [][]float64               // sum, min, max over floats
	avg [][]agg.AvgState[float64] // avg
	sv  [][]string                // min, max over strings: borrowed from the batch
	// seen marks the groups that got a value (sum, min, max); nil: every
	// group of the batch did (the column has no NULLs).
	seen, seenBuf [][]bool
	// approx_distinct: per pair with a non-null value, its group and hash.
	hg [][]uint32
	hh [][]uint64
	// count_distinct: per pair with a non-null value, its group and the
	// encoded value.
	dg [][]uint32
	dk []state.Keys
	// variance functions: per group state.
	vs [][]agg.VarState
	// median, quantile, first, last, arg_max, arg_min (collect.go).
	c collectBatch

	ints    []int64
	floats  []float64
	vfloats []float64 // variance functions' scratch
	hashes  []uint64
	scratch []arrow.Array
}

func (b *batchAcc) init(aggs []boundAgg) {
	k := len(aggs)
	b.n, b.iv, b.fv = make([][]int64, k), make([][]int64, k), make([][]float64, k)
	b.avg, b.sv = make([][]agg.AvgState[float64], k), make([][]string, k)
	b.seen, b.seenBuf = make([][]bool, k), make([][]bool, k)
	b.hg, b.hh, b.dg = make([][]uint32, k), make([][]uint64, k), make([][]uint32, k)
	b.dk = make([]state.Keys, k)
	b.vs = make([][]agg.VarState, k)
	b.c.init(k)
}

func zeroed[T any](s []T, n int) []T {
	s = grow(s, n)
	clear(s)
	return s
}

func filled[T any](s []T, n int, v T) []T {
	s = grow(s, n)
	for i := range s {
		s[i] = v
	}
	return s
}

// update accumulates pairs (rows[p], gids[p]) of batch rec into ngroups
// groups.
func (b *batchAcc) update(aggs []boundAgg, rec arrow.RecordBatch, rows []int32, gids []uint32, ngroups int) error {
	for i, a := range aggs {
		var col arrow.Array
		if a.col >= 0 {
			col = rec.Column(a.col)
		}
		isMax := a.Func == Max || a.Func == BoolOr
		extreme := a.Func == Min || a.Func == BoolAnd || isMax
		b.seen[i] = nil
		if (a.Func == Sum || extreme) && (col.NullN() > 0 || a.str) {
			b.seenBuf[i] = zeroed(b.seenBuf[i], ngroups)
			b.seen[i] = b.seenBuf[i]
		}
		seen := b.seen[i]
		switch a.Func {
		case Count:
			b.n[i] = zeroed(b.n[i], ngroups)
			agg.FoldCount(col, rows, gids, b.n[i])
		case VarSamp, VarPop, StddevSamp, StddevPop:
			b.vs[i] = zeroed(b.vs[i], ngroups)
			b.vfloats = agg.VarUpdate(b.vs[i], col, rows, gids, b.vfloats)
		case agg.Median, agg.Quantile, agg.First, agg.Last, agg.ArgMax, agg.ArgMin:
			b.n[i] = zeroed(b.n[i], ngroups)
			b.c.update(i, &aggs[i], rec, col, rows, gids, b.n[i], ngroups)
		case Avg:
			b.avg[i] = zeroed(b.avg[i], ngroups)
			if isFloat(col) {
				agg.FoldAvg(col, b.floatsOf(col), rows, gids, b.avg[i])
			} else {
				agg.FoldAvg(col, b.intsOf(col), rows, gids, b.avg[i])
			}
		case Min, Max, BoolAnd, BoolOr:
			switch {
			case a.str:
				b.sv[i] = grow(b.sv[i], ngroups)
				agg.FoldMinMaxString(col, rows, gids, b.sv[i], seen, isMax, true)
			case a.float:
				b.fv[i] = filled(b.fv[i], ngroups, agg.MinMaxStart[float64](isMax))
				agg.FoldMinMax(col, b.floatsOf(col), rows, gids, b.fv[i], seen, isMax)
			case a.unsigned:
				b.iv[i] = grow(b.iv[i], ngroups)
				cur := unsafe.Slice((*uint64)(unsafe.Pointer(unsafe.SliceData(b.iv[i]))), ngroups)
				for g := range cur {
					cur[g] = agg.MinMaxStart[uint64](isMax)
				}
				agg.FoldMinMax(col, col.(*array.Uint64).Uint64Values(), rows, gids, cur, seen, isMax)
			default:
				b.iv[i] = filled(b.iv[i], ngroups, agg.MinMaxStart[int64](isMax))
				agg.FoldMinMax(col, b.intsOf(col), rows, gids, b.iv[i], seen, isMax)
			}
		case Sum:
			if a.float {
				b.fv[i] = zeroed(b.fv[i], ngroups)
				agg.FoldSum(col, b.floatsOf(col), rows, gids, b.fv[i], seen)
				break
			}
			b.iv[i] = zeroed(b.iv[i], ngroups)
			vals := b.intsOf(col)
			if agg.FoldSumInt64(col, vals, rows, gids, b.iv[i], seen) ||
				(col.DataType().ID() == arrow.UINT64 && hasHighBit(col, vals, rows, len(gids))) {
				return fmt.Errorf("windows: %s: %w", a.Name(), errOverflow)
			}
		case ApproxDistinct:
			b.hashes = grow(b.hashes, col.Len())
			b.scratch = append(b.scratch[:0], col)
			if err := arrowexec.HashColumns(b.scratch, b.hashes); err != nil {
				return err
			}
			hg, hh := b.hg[i][:0], b.hh[i][:0]
			for p, r := range rows {
				if col.IsValid(int(r)) {
					hg = append(hg, gids[p])
					hh = append(hh, b.hashes[r])
				}
			}
			b.hg[i], b.hh[i] = hg, hh
		case CountDistinct:
			b.scratch = append(b.scratch[:0], col)
			if err := state.EncodeKeyValues(b.scratch, col.Len(), &b.dk[i]); err != nil {
				return err
			}
			dg := b.dg[i][:0]
			for p, r := range rows {
				if col.IsValid(int(r)) {
					dg = append(dg, gids[p])
				} else {
					dg = append(dg, math.MaxUint32)
				}
			}
			b.dg[i] = dg
		}
	}
	return nil
}

func isFloat(c arrow.Array) bool {
	id := c.DataType().ID()
	return id == arrow.FLOAT64 || id == arrow.FLOAT32
}

// intsOf returns the values of an integer-like column as int64: its
// values buffer (int64, read only: the batch is borrowed) or a widened
// copy in scratch.
func (b *batchAcc) intsOf(c arrow.Array) []int64 {
	if a, ok := c.(*array.Int64); ok {
		return a.Int64Values()
	}
	b.ints = intValues(c, b.ints)
	return b.ints
}

// floatsOf returns the values of a float column as float64 (see intsOf).
func (b *batchAcc) floatsOf(c arrow.Array) []float64 {
	if a, ok := c.(*array.Float64); ok {
		return a.Float64Values()
	}
	b.floats = agg.Float64s(c, b.floats)
	return b.floats
}

var errOverflow = fmt.Errorf("int64 sum overflows")

// hasHighBit reports whether one of the first n pairs' rows (rows nil:
// rows 0..n-1) of the uint64 column col holds a value ≥ 2^63 (negative in
// v, its values read as int64), which the int64 sum state cannot hold. A
// NULL row's slot holds no value, whatever its bits.
func hasHighBit(col arrow.Array, v []int64, rows []int32, n int) bool {
	for p := range n {
		r := p
		if rows != nil {
			r = int(rows[p])
		}
		if v[r] < 0 && col.IsValid(r) {
			return true
		}
	}
	return false
}

// fless orders floats with NaN greater than everything.
func fless(a, b float64) bool { return a < b || (b != b && a == a) }

func blobSize(aggs []boundAgg) int {
	n := blobHeader
	for _, a := range aggs {
		n += a.size
	}
	return n
}

func getI(b []byte, off int) int64    { return int64(binary.LittleEndian.Uint64(b[off:])) }
func putI(b []byte, off int, v int64) { binary.LittleEndian.PutUint64(b[off:], uint64(v)) }
func getF(b []byte, off int) float64 {
	return math.Float64frombits(binary.LittleEndian.Uint64(b[off:]))
}
func putF(b []byte, off int, v float64) { binary.LittleEndian.PutUint64(b[off:], math.Float64bits(v)) }

// combine folds one partial state (n, int value, float value) into the
// aggregate state at blob offset a.off.
func combine(a *boundAgg, blob []byte, n, iv int64, fv float64) error {
	if n == 0 {
		return nil
	}
	off := a.off
	cur := getI(blob, off)
	switch a.Func {
	case Count:
		putI(blob, off, cur+n)
		return nil
	case Sum, Avg:
		if a.float {
			putF(blob, off+8, getF(blob, off+8)+fv)
		} else {
			s := getI(blob, off+8)
			t := s + iv
			if (iv > 0 && t < s) || (iv < 0 && t > s) {
				return fmt.Errorf("windows: %s: %w", a.Name(), errOverflow)
			}
			putI(blob, off+8, t)
		}
	case Min, Max, BoolAnd, BoolOr:
		isMax := a.Func == Max || a.Func == BoolOr
		if a.float {
			v := getF(blob, off+8)
			if cur == 0 || (isMax && fless(v, fv)) || (!isMax && fless(fv, v)) {
				putF(blob, off+8, fv)
			}
		} else {
			v := getI(blob, off+8)
			greater, less := iv > v, iv < v
			if a.unsigned {
				greater, less = uint64(iv) > uint64(v), uint64(iv) < uint64(v)
			}
			if cur == 0 || (isMax && greater) || (!isMax && less) {
				putI(blob, off+8, iv)
			}
		}
	}
	putI(blob, off, cur+n)
	return nil
}

// mergeBatch folds group g of the batch accumulators into blob (all but the
// distinct aggregates, which are applied per pair) and returns it,
// reallocated when a string region changed its length.
func (b *batchAcc) mergeBatch(p *plan, blob []byte, g uint32) ([]byte, error) {
	for i := range p.aggs {
		a := &p.aggs[i]
		var err error
		switch a.Func {
		case Count:
			err = combine(a, blob, b.n[i][g], 0, 0)
		case Avg:
			err = combine(a, blob, b.avg[i][g].Count, 0, b.avg[i][g].Sum)
		case Sum, Min, Max, BoolAnd, BoolOr:
			if b.seen[i] != nil && !b.seen[i][g] {
				continue
			}
			switch {
			case a.str:
				blob = mergeString(p, a, blob, 1, b.sv[i][g])
			case a.float:
				err = combine(a, blob, 1, 0, b.fv[i][g])
			default:
				err = combine(a, blob, 1, b.iv[i][g], 0)
			}
		case VarSamp, VarPop, StddevSamp, StddevPop:
			mergeVar(blob, a.off, b.vs[i][g])
		case agg.First, agg.Last, agg.ArgMax, agg.ArgMin:
			b.c.mergeArgBatch(i, a, blob, b.n[i][g], g)
		}
		if err != nil {
			return nil, err
		}
	}
	return blob, nil
}

// mergeBlob folds the state blob src into dst (session merges) and
// returns dst, reallocated when a region grew or shrank.
func mergeBlob(p *plan, dst, src []byte) ([]byte, error) {
	var kll [2]agg.KLL
	dst[0] |= src[0]
	for i := range p.aggs {
		a := &p.aggs[i]
		switch a.Func {
		case VarSamp, VarPop, StddevSamp, StddevPop:
			mergeVar(dst, a.off, getVar(src, a.off))
		case agg.First, agg.Last, agg.ArgMax, agg.ArgMin:
			mergeArgBlob(a, dst, src)
		case agg.Median, agg.Quantile:
			dst = mergeQuantileBlob(a, p.blob, dst, src, &kll)
		case Count, Sum, Min, Max, Avg, BoolAnd, BoolOr:
			n := getI(src, a.off)
			if a.str {
				if n > 0 {
					dst = mergeString(p, a, dst, n, stringRegion(p, src, a.sidx))
				}
				continue
			}
			if err := combine(a, dst, n, getI(src, a.off+8), getF(src, a.off+8)); err != nil {
				return nil, err
			}
		case ApproxDistinct:
			so, sn := findRegion(src, p.blob, a.hidx)
			do, dn := findRegion(dst, p.blob, a.hidx)
			r := agg.SketchMerge(append([]byte(nil), dst[do:do+dn]...), src[so:so+sn])
			dst = spliceRegion(dst, do, dn, r)
		}
	}
	return dst, nil
}

// stringOffset returns the offset of string region i of blob: after the
// fixed part and all p.sketches sketch regions (HyperLogLog and KLL alike,
// agg.SketchLen reads both).
func stringOffset(p *plan, blob []byte, i int) int {
	off := p.blob
	for j := 0; j < p.sketches; j++ {
		off += agg.SketchLen(blob[off:])
	}
	for ; i > 0; i-- {
		off += 4 + int(binary.LittleEndian.Uint32(blob[off:]))
	}
	return off
}

// stringRegion returns the value of string region i of blob (aliasing it).
func stringRegion(p *plan, blob []byte, i int) string {
	off := stringOffset(p, blob, i)
	n := int(binary.LittleEndian.Uint32(blob[off:]))
	return unsafe.String(unsafe.SliceData(blob[off+4:]), n)
}

// mergeString folds n values whose least (min) or greatest (max) is v
// into the string min or max a of blob, and returns blob, reallocated when
// the region changed its length. v may alias blob.
func mergeString(p *plan, a *boundAgg, blob []byte, n int64, v string) []byte {
	cur := getI(blob, a.off)
	putI(blob, a.off, cur+n)
	off := stringOffset(p, blob, a.sidx)
	old := int(binary.LittleEndian.Uint32(blob[off:]))
	if cur > 0 {
		c := unsafe.String(unsafe.SliceData(blob[off+4:]), old)
		if a.Func == Max && v <= c || a.Func == Min && v >= c {
			return blob
		}
	}
	if len(v) == old {
		copy(blob[off+4:], v)
		return blob
	}
	out := make([]byte, 0, len(blob)-old+len(v))
	out = append(out, blob[:off]...)
	out = binary.LittleEndian.AppendUint32(out, uint32(len(v)))
	out = append(out, v...)
	return append(out, blob[off+4+old:]...)
}

// outBuilders builds the aggregate output columns.
type outBuilders struct {
	bs  []array.Builder
	p   *plan
	kll agg.KLL // median, quantile: decoding scratch
}

func newOutBuilders(mem memory.Allocator, p *plan, n int) *outBuilders {
	o := &outBuilders{p: p}
	for _, a := range p.aggs {
		b := array.NewBuilder(mem, a.out)
		b.Reserve(n)
		o.bs = append(o.bs, b)
	}
	return o
}

// append adds one window's results; distinct holds the exact distinct
// counts of the count_distinct aggregates, by aggregate index.
func (o *outBuilders) append(aggs []boundAgg, blob []byte, distinct []int64) {
	for i := range aggs {
		a := &aggs[i]
		b := o.bs[i]
		n := int64(0)
		if a.size >= 8 {
			n = getI(blob, a.off)
		}
		switch a.Func {
		case Count:
			b.(*array.Int64Builder).Append(n)
		case CountDistinct:
			b.(*array.Int64Builder).Append(distinct[i])
		case ApproxDistinct:
			off, n := findRegion(blob, o.p.blob, a.hidx)
			b.(*array.Int64Builder).Append(agg.SketchEstimate(blob[off : off+n]))
		case Avg:
			if n == 0 {
				b.AppendNull()
			} else {
				b.(*array.Float64Builder).Append(getF(blob, a.off+8) / float64(n))
			}
		case agg.Median, agg.Quantile:
			o.appendQuantile(a, b, blob)
		case agg.First, agg.Last, agg.ArgMax, agg.ArgMin:
			appendArg(a, b, blob)
		case VarSamp, VarPop, StddevSamp, StddevPop:
			if v, ok := getVar(blob, a.off).Result(a.Func); ok {
				b.(*array.Float64Builder).Append(v)
			} else {
				b.AppendNull()
			}
		default:
			if n == 0 {
				b.AppendNull()
			} else if a.str {
				appendString(b, stringRegion(o.p, blob, a.sidx))
			} else if a.float {
				appendFloat(b, getF(blob, a.off+8))
			} else {
				appendInt(b, getI(blob, a.off+8))
			}
		}
	}
}

func (o *outBuilders) finish() []arrow.Array {
	out := make([]arrow.Array, len(o.bs))
	for i, b := range o.bs {
		out[i] = b.NewArray()
		b.Release()
	}
	return out
}

func getU(b []byte, off int) uint64 { return uint64(getI(b, off)) }

// findRegion returns the offset and length of sketch region i of blob,
// whose fixed part is fixed bytes long.
func findRegion(blob []byte, fixed, i int) (off, n int) {
	off = fixed
	for ; i > 0; i-- {
		off += agg.SketchLen(blob[off:])
	}
	return off, agg.SketchLen(blob[off:])
}

// spliceRegion replaces blob[off:off+old] with region.
func spliceRegion(blob []byte, off, old int, region []byte) []byte {
	if len(region) == old {
		copy(blob[off:], region)
		return blob
	}
	out := make([]byte, 0, len(blob)-old+len(region))
	out = append(out, blob[:off]...)
	out = append(out, region...)
	return append(out, blob[off+old:]...)
}

// getVar reads a variance state at blob offset off.
func getVar(blob []byte, off int) agg.VarState {
	return agg.VarState{N: getI(blob, off), Mean: getF(blob, off+8), M2: getF(blob, off+16)}
}

// mergeVar merges s into the variance state at blob offset off.
func mergeVar(blob []byte, off int, s agg.VarState) {
	if s.N == 0 {
		return
	}
	cur := getVar(blob, off)
	cur.Merge(s)
	putI(blob, off, cur.N)
	putF(blob, off+8, cur.Mean)
	putF(blob, off+16, cur.M2)
}

// appendString appends v to a string or binary builder.
func appendString(b array.Builder, v string) {
	switch x := b.(type) {
	case *array.StringBuilder:
		x.Append(v)
	case *array.BinaryBuilder:
		x.AppendString(v)
	}
}

// appendFloat appends v to a float64 or float32 builder.
func appendFloat(b array.Builder, v float64) {
	switch x := b.(type) {
	case *array.Float64Builder:
		x.Append(v)
	case *array.Float32Builder:
		x.Append(float32(v))
	}
}
