package windows

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/arrowexec/agg"
)

// boundAgg is an aggregate bound to the input schema.
type boundAgg struct {
	Agg
	col   int            // input column, -1 for count(*)
	float bool           // values are float64 (else int64)
	out   arrow.DataType // output type
	off   int            // offset of the aggregate's state in the blob
	size  int
	hidx  int // approx_distinct, median, quantile: index of its sketch region
	// first, last, arg_max, arg_min (collect.go): the ordering column,
	// and whether its values are floats.
	col2    int
	byFloat bool
}

// Window state blob: flags(1) | key hash(8) | per aggregate state (the
// fixed part), then one sketch region per approx_distinct (hll.go).
//
//	count                 n int64
//	sum, min, max, avg    n int64 | value (int64 or float64 bits)
//	bool_and, bool_or     n int64 | value (0 or 1, int64): min and max
//	var_*, stddev_*       n int64 | mean float64 | m2 float64 (agg.VarState)
//	approx_distinct       nothing in the fixed part
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
	case Sum, Min, Max, Avg:
		switch dt.ID() {
		case arrow.INT8, arrow.INT16, arrow.INT32, arrow.INT64, arrow.UINT8, arrow.UINT16, arrow.UINT32, arrow.UINT64,
			arrow.TIMESTAMP, arrow.DATE32, arrow.DATE64:
		case arrow.FLOAT32, arrow.FLOAT64:
			b.float = true
		default:
			return b, fmt.Errorf("windows: %s over %s is not supported in windows", a.Func, dt)
		}
		b.float = b.float || a.Func == Avg
		b.size = 16
	case ApproxDistinct:
		b.size = 0 // a sketch region after the fixed part
	case CountDistinct:
		if _, err := keyKindOf(dt); err != nil {
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
// into window state: one typed loop per aggregate over (row, group) pairs.
type batchAcc struct {
	n  [][]int64
	iv [][]int64
	fv [][]float64
	// approx_distinct: per pair with a non-null value, its group and hash.
	hg [][]uint32
	hh [][]uint64
	// count_distinct: per pair with a non-null value, its group and the
	// encoded value.
	dg [][]uint32
	dk []rowKeys
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
	b.hg, b.hh, b.dg = make([][]uint32, k), make([][]uint64, k), make([][]uint32, k)
	b.dk = make([]rowKeys, k)
	b.vs = make([][]agg.VarState, k)
	b.c.init(k)
}

func zeroed[T any](s []T, n int) []T {
	s = grow(s, n)
	clear(s)
	return s
}

// update accumulates pairs (rows[p], gids[p]) of batch rec into ngroups
// groups.
func (b *batchAcc) update(aggs []boundAgg, rec arrow.RecordBatch, rows []int32, gids []uint32, ngroups int) error {
	for i, a := range aggs {
		b.n[i] = zeroed(b.n[i], ngroups)
		var col arrow.Array
		if a.col >= 0 {
			col = rec.Column(a.col)
		}
		switch a.Func {
		case Count:
			countRows(col, rows, gids, b.n[i])
		case BoolAnd, BoolOr:
			b.iv[i] = zeroed(b.iv[i], ngroups)
			b.ints = intValues(col, b.ints)
			minMaxInt(b.ints, col, rows, gids, b.n[i], b.iv[i], a.Func == BoolOr)
		case VarSamp, VarPop, StddevSamp, StddevPop:
			b.vs[i] = zeroed(b.vs[i], ngroups)
			b.vfloats = agg.VarUpdate(b.vs[i], col, rows, gids, b.vfloats)
		case agg.Median, agg.Quantile, agg.First, agg.Last, agg.ArgMax, agg.ArgMin:
			b.c.update(i, &aggs[i], rec, col, rows, gids, b.n[i], ngroups)
		case Sum, Min, Max, Avg:
			if a.float {
				b.fv[i] = zeroed(b.fv[i], ngroups)
				var vals []float64
				if dt := col.DataType().ID(); dt == arrow.FLOAT64 {
					vals = col.(*array.Float64).Float64Values() // read only: the batch is borrowed
				} else if dt == arrow.FLOAT32 {
					b.floats = floatValues(col, b.floats)
					vals = b.floats
				} else {
					b.ints = intValues(col, b.ints)
					b.floats = grow(b.floats, len(b.ints))
					for j, v := range b.ints {
						b.floats[j] = float64(v)
					}
					vals = b.floats
				}
				switch a.Func {
				case Sum, Avg:
					sumRows(vals, col, rows, gids, b.n[i], b.fv[i])
				case Min:
					minMaxFloat(vals, col, rows, gids, b.n[i], b.fv[i], false)
				case Max:
					minMaxFloat(vals, col, rows, gids, b.n[i], b.fv[i], true)
				}
			} else {
				b.iv[i] = zeroed(b.iv[i], ngroups)
				b.ints = intValues(col, b.ints)
				switch a.Func {
				case Sum:
					if err := sumInts(b.ints, col, rows, gids, b.n[i], b.iv[i]); err != nil {
						return fmt.Errorf("windows: %s: %w", a.Name(), err)
					}
				case Min:
					minMaxInt(b.ints, col, rows, gids, b.n[i], b.iv[i], false)
				case Max:
					minMaxInt(b.ints, col, rows, gids, b.n[i], b.iv[i], true)
				}
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
			if err := b.dk[i].encode(b.scratch, col.Len()); err != nil {
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

func countRows(col arrow.Array, rows []int32, gids []uint32, n []int64) {
	if col == nil || col.NullN() == 0 {
		for _, g := range gids {
			n[g]++
		}
		return
	}
	for p, r := range rows {
		if col.IsValid(int(r)) {
			n[gids[p]]++
		}
	}
}

func sumRows(vals []float64, col arrow.Array, rows []int32, gids []uint32, n []int64, s []float64) {
	if col.NullN() == 0 {
		for p, r := range rows {
			g := gids[p]
			s[g] += vals[r]
			n[g]++
		}
		return
	}
	for p, r := range rows {
		if col.IsValid(int(r)) {
			g := gids[p]
			s[g] += vals[r]
			n[g]++
		}
	}
}

var errOverflow = fmt.Errorf("int64 sum overflows")

func sumInts(vals []int64, col arrow.Array, rows []int32, gids []uint32, n []int64, s []int64) error {
	nulls := col.NullN() > 0
	overflow := false
	for p, r := range rows {
		if nulls && col.IsNull(int(r)) {
			continue
		}
		g := gids[p]
		v := vals[r]
		t := s[g] + v
		overflow = overflow || (v > 0 && t < s[g]) || (v < 0 && t > s[g])
		s[g] = t
		n[g]++
	}
	if overflow || (col.DataType().ID() == arrow.UINT64 && hasHighBit(vals)) {
		return errOverflow
	}
	return nil
}

func hasHighBit(v []int64) bool {
	for _, x := range v {
		if x < 0 {
			return true
		}
	}
	return false
}

// fless orders floats with NaN greater than everything.
func fless(a, b float64) bool { return a < b || (b != b && a == a) }

func minMaxFloat(vals []float64, col arrow.Array, rows []int32, gids []uint32, n []int64, s []float64, isMax bool) {
	nulls := col.NullN() > 0
	for p, r := range rows {
		if nulls && col.IsNull(int(r)) {
			continue
		}
		g, v := gids[p], vals[r]
		if n[g] == 0 || (isMax && fless(s[g], v)) || (!isMax && fless(v, s[g])) {
			s[g] = v
		}
		n[g]++
	}
}

func minMaxInt(vals []int64, col arrow.Array, rows []int32, gids []uint32, n []int64, s []int64, isMax bool) {
	nulls := col.NullN() > 0
	for p, r := range rows {
		if nulls && col.IsNull(int(r)) {
			continue
		}
		g, v := gids[p], vals[r]
		if n[g] == 0 || (isMax && v > s[g]) || (!isMax && v < s[g]) {
			s[g] = v
		}
		n[g]++
	}
}

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
			if cur == 0 || (isMax && iv > v) || (!isMax && iv < v) {
				putI(blob, off+8, iv)
			}
		}
	}
	putI(blob, off, cur+n)
	return nil
}

// mergeBatch folds group g of the batch accumulators into blob (all but the
// distinct aggregates, which are applied per pair).
func (b *batchAcc) mergeBatch(aggs []boundAgg, blob []byte, g uint32) error {
	for i := range aggs {
		a := &aggs[i]
		var iv int64
		var fv float64
		switch a.Func {
		case Count:
		case Sum, Min, Max, Avg, BoolAnd, BoolOr:
			if a.float {
				fv = b.fv[i][g]
			} else {
				iv = b.iv[i][g]
			}
		case VarSamp, VarPop, StddevSamp, StddevPop:
			mergeVar(blob, a.off, b.vs[i][g])
			continue
		case agg.First, agg.Last, agg.ArgMax, agg.ArgMin:
			b.c.mergeArgBatch(i, a, blob, b.n[i][g], g)
			continue
		default:
			continue
		}
		if err := combine(a, blob, b.n[i][g], iv, fv); err != nil {
			return err
		}
	}
	return nil
}

// mergeBlob folds the state blob src into dst (session merges) and
// returns dst, reallocated when a sketch grew; fixed is the size of the
// fixed part.
func mergeBlob(aggs []boundAgg, fixed int, dst, src []byte) ([]byte, error) {
	var kll [2]agg.KLL
	dst[0] |= src[0]
	for i := range aggs {
		a := &aggs[i]
		switch a.Func {
		case VarSamp, VarPop, StddevSamp, StddevPop:
			mergeVar(dst, a.off, getVar(src, a.off))
		case agg.First, agg.Last, agg.ArgMax, agg.ArgMin:
			mergeArgBlob(a, dst, src)
		case agg.Median, agg.Quantile:
			dst = mergeQuantileBlob(a, fixed, dst, src, &kll)
		case Count, Sum, Min, Max, Avg, BoolAnd, BoolOr:
			n := getI(src, a.off)
			if err := combine(a, dst, n, getI(src, a.off+8), getF(src, a.off+8)); err != nil {
				return nil, err
			}
		case ApproxDistinct:
			so, sn := findRegion(src, fixed, a.hidx)
			do, dn := findRegion(dst, fixed, a.hidx)
			r := agg.SketchMerge(append([]byte(nil), dst[do:do+dn]...), src[so:so+sn])
			dst = spliceRegion(dst, do, dn, r)
		}
	}
	return dst, nil
}

// outBuilders builds the aggregate output columns.
type outBuilders struct {
	bs    []array.Builder
	fixed int
	kll   agg.KLL
}

func newOutBuilders(mem memory.Allocator, aggs []boundAgg, n, fixed int) *outBuilders {
	o := &outBuilders{fixed: fixed}
	for _, a := range aggs {
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
			off, n := findRegion(blob, o.fixed, a.hidx)
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

// appendFloat appends v to a float64 or float32 builder.
func appendFloat(b array.Builder, v float64) {
	switch x := b.(type) {
	case *array.Float64Builder:
		x.Append(v)
	case *array.Float32Builder:
		x.Append(float32(v))
	}
}
