package windows

import (
	"fmt"
	"math"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/riffle-dev/riffle/arrowexec/agg"
)

// The window step's median, quantile, first, last, arg_max and arg_min.
//
// median and quantile keep a quantile sketch per window (agg.KLL) in a
// region of the window blob after the fixed part, as approx_distinct keeps
// its HyperLogLog sketch, so checkpoints, caches and session merges carry
// it like any blob. Exact up to agg.KLLK values per window; beyond, within
// the rank error agg.KLLRankError.
//
// first(x) and last(x) are x of the window's row with the least (greatest)
// event time (the window's time column, or the column of first(x, t));
// arg_max(x, y) and arg_min(x, y) x of the row with the greatest (least) y,
// rows with a NULL x or y skipped. x and the ordering value are numbers,
// booleans or temporal values here (8 bytes each in the blob):
//
//	first, last, arg_*   n int64 | ordering value | x (int64 or float64 bits) | x valid (0/1)
//
// Of rows tied on the ordering value, last keeps the latest to arrive and
// the others the earliest; across subtasks and sessions the arrival order
// is not the input order.

func isQuantile(f Func) bool { return f == agg.Median || f == agg.Quantile }

func isArg(f Func) bool {
	return f == agg.First || f == agg.Last || f == agg.ArgMax || f == agg.ArgMin
}

// windowScalar reports whether dt is a type the window blob holds in 8
// bytes: numbers, booleans, temporal values.
func windowScalar(dt arrow.DataType) bool {
	switch dt.ID() {
	case arrow.INT8, arrow.INT16, arrow.INT32, arrow.INT64, arrow.UINT8, arrow.UINT16, arrow.UINT32, arrow.UINT64,
		arrow.FLOAT32, arrow.FLOAT64, arrow.TIMESTAMP, arrow.DATE32, arrow.DATE64, arrow.BOOL:
		return true
	}
	return false
}

func floatBits(v float64) uint64 { return math.Float64bits(v) }
func floatOf(v int64) float64    { return math.Float64frombits(uint64(v)) }

func isFloatType(dt arrow.DataType) bool {
	return dt.ID() == arrow.FLOAT32 || dt.ID() == arrow.FLOAT64
}

// bindCollect binds the functions of this file; time is the window's time
// column.
func bindCollect(in *arrow.Schema, b *boundAgg, dt arrow.DataType, time string) error {
	a := b.Agg
	if isQuantile(a.Func) {
		b.float = true
		return nil // numbers only: agg.ResultType checked
	}
	if !windowScalar(dt) {
		return fmt.Errorf("windows: %s over %s is not supported in windows (numbers, booleans and temporal values are)", a.Name(), dt)
	}
	by := a.Column2
	if by == "" {
		if a.Func == agg.ArgMax || a.Func == agg.ArgMin {
			return fmt.Errorf("windows: %s needs two columns", a.Name())
		}
		by = time
	}
	idx := in.FieldIndices(by)
	if len(idx) != 1 {
		return fmt.Errorf("windows: %s: no column %q", a.Name(), by)
	}
	b.col2 = idx[0]
	bdt := in.Field(b.col2).Type
	ca := a
	ca.Column2 = by
	if err := agg.CheckSecondType(ca, bdt); err != nil {
		return fmt.Errorf("windows: %w", err)
	}
	if !windowScalar(bdt) || bdt.ID() == arrow.UINT64 {
		return fmt.Errorf("windows: %s: ordering by %s is not supported in windows (numbers but uint64, booleans and temporal values are)", a.Name(), bdt)
	}
	b.float = isFloatType(dt)
	b.byFloat = isFloatType(bdt)
	b.size = 32
	return nil
}

// collectBatch is the batch state of these functions, per aggregate.
type collectBatch struct {
	// quantiles: per pair with a non-null value, its group and value.
	qg [][]uint32
	qv [][]float64
	// arg_*, first, last: per group the best ordering value (int64 or
	// float64 bits), x (the same) and whether x is valid; batchAcc.n
	// counts the rows.
	by, x [][]int64
	xok   [][]bool

	bys, xs []int64
	fbys    []float64
	fxs     []float64
	kll     agg.KLL
	region  []byte
	order   []int32
	starts  []int32
}

func (c *collectBatch) init(k int) {
	c.qg, c.qv = make([][]uint32, k), make([][]float64, k)
	c.by, c.x, c.xok = make([][]int64, k), make([][]int64, k), make([][]bool, k)
}

// scalarBits returns the values of a windowScalar column as int64 (floats
// as float64 bits), in dst.
func (c *collectBatch) scalarBits(col arrow.Array, dst []int64, fscratch *[]float64) []int64 {
	if !isFloatType(col.DataType()) {
		return intValues(col, dst)
	}
	*fscratch = agg.Float64s(col, *fscratch)
	dst = grow(dst, len(*fscratch))
	for i, v := range *fscratch {
		dst[i] = int64(floatBits(v))
	}
	return dst
}

// update accumulates the pairs (rows[p], gids[p]) of aggregate i.
func (c *collectBatch) update(i int, a *boundAgg, rec arrow.RecordBatch, col arrow.Array, rows []int32, gids []uint32, n []int64, ngroups int) {
	if isQuantile(a.Func) {
		var vals []float64
		c.fxs = agg.Float64s(col, c.fxs)
		vals = c.fxs
		qg, qv := c.qg[i][:0], c.qv[i][:0]
		for p, r := range rows {
			if col.IsValid(int(r)) {
				qg = append(qg, gids[p])
				qv = append(qv, vals[r])
			}
		}
		c.qg[i], c.qv[i] = qg, qv
		return
	}
	byCol := rec.Column(a.col2)
	c.by[i] = zeroed(c.by[i], ngroups)
	c.x[i] = zeroed(c.x[i], ngroups)
	c.xok[i] = zeroed(c.xok[i], ngroups)
	c.bys = c.scalarBits(byCol, c.bys, &c.fbys)
	c.xs = c.scalarBits(col, c.xs, &c.fxs)
	by, x, xok := c.by[i], c.x[i], c.xok[i]
	isMax, ties, skipX := a.Func == agg.ArgMax || a.Func == agg.Last, a.Func == agg.Last, a.Func == agg.ArgMax || a.Func == agg.ArgMin
	byNulls, xNulls := byCol.NullN() > 0, col.NullN() > 0
	for p, r := range rows {
		if byNulls && byCol.IsNull(int(r)) || skipX && xNulls && col.IsNull(int(r)) {
			continue
		}
		g, v := gids[p], c.bys[r]
		if n[g] > 0 && !better(a.byFloat, isMax, ties, v, by[g]) {
			n[g]++
			continue
		}
		by[g], x[g], xok[g] = v, c.xs[r], !xNulls || col.IsValid(int(r))
		n[g]++
	}
}

// better reports whether ordering value v replaces cur (both int64, or
// float64 bits with NaN greatest).
func better(float, isMax, ties bool, v, cur int64) bool {
	if ties && v == cur {
		return true
	}
	if float {
		fv, fc := floatOf(v), floatOf(cur)
		if isMax {
			return fless(fc, fv)
		}
		return fless(fv, fc)
	}
	if isMax {
		return v > cur
	}
	return v < cur
}

// combineArg folds a state (n, by, x, xok) into the blob's at a.off.
func combineArg(a *boundAgg, blob []byte, n, by, x int64, xok bool) {
	if n == 0 {
		return
	}
	off := a.off
	cur := getI(blob, off)
	isMax := a.Func == agg.ArgMax || a.Func == agg.Last
	if cur == 0 || better(a.byFloat, isMax, a.Func == agg.Last, by, getI(blob, off+8)) {
		putI(blob, off+8, by)
		putI(blob, off+16, x)
		v := int64(0)
		if xok {
			v = 1
		}
		putI(blob, off+24, v)
	}
	putI(blob, off, cur+n)
}

// mergeArgBatch folds group g of the batch into the blob.
func (c *collectBatch) mergeArgBatch(i int, a *boundAgg, blob []byte, n int64, g uint32) {
	combineArg(a, blob, n, c.by[i][g], c.x[i][g], c.xok[i][g])
}

// mergeArgBlob folds the state of src into dst (session merges).
func mergeArgBlob(a *boundAgg, dst, src []byte) {
	combineArg(a, dst, getI(src, a.off), getI(src, a.off+8), getI(src, a.off+16), getI(src, a.off+24) != 0)
}

// appendArg appends the result of an arg aggregate.
func appendArg(a *boundAgg, b array.Builder, blob []byte) {
	if getI(blob, a.off) == 0 || getI(blob, a.off+24) == 0 {
		b.AppendNull()
		return
	}
	v := getI(blob, a.off+16)
	if a.float {
		appendFloat(b, floatOf(v))
	} else {
		appendInt(b, v)
	}
}

// appendQuantile appends the result of a quantile aggregate from its region.
func (o *outBuilders) appendQuantile(a *boundAgg, b array.Builder, blob []byte) {
	off, n := findRegion(blob, o.p.blob, a.hidx)
	if !agg.DecodeKLL(blob[off:off+n], &o.kll) {
		b.AppendNull() // cannot happen: regions are written by AppendKLLRegion
		return
	}
	q := a.Param
	if a.Func == agg.Median {
		q = 0.5
	}
	if v, ok := o.kll.Quantile(q); ok {
		b.(*array.Float64Builder).Append(v)
	} else {
		b.AppendNull()
	}
}

// mergeQuantileBlob merges the sketch of src into dst's and returns dst
// (reallocated when the region grew).
func mergeQuantileBlob(a *boundAgg, fixed int, dst, src []byte, k *[2]agg.KLL) []byte {
	so, sn := findRegion(src, fixed, a.hidx)
	do, dn := findRegion(dst, fixed, a.hidx)
	agg.DecodeKLL(dst[do:do+dn], &k[0])
	agg.DecodeKLL(src[so:so+sn], &k[1])
	k[0].Merge(&k[1])
	return spliceRegion(dst, do, dn, agg.AppendKLLRegion(nil, &k[0]))
}

// applyQuantiles adds the batch's quantile values to the sketches of their
// windows: the pairs are ordered by group (a counting sort), then each
// group's values go into its sketch at once.
func (o *operator) applyQuantiles(blobOf func(g uint32) []byte, setBlob func(g uint32, b []byte)) {
	c := &o.bacc.c
	for i := range o.p.aggs {
		a := &o.p.aggs[i]
		if !isQuantile(a.Func) || len(c.qg[i]) == 0 {
			continue
		}
		qg, qv := c.qg[i], c.qv[i]
		ng := 0
		for _, g := range qg {
			ng = max(ng, int(g)+1)
		}
		c.starts = zeroed(c.starts, ng+1)
		for _, g := range qg {
			c.starts[g+1]++
		}
		for g := range ng {
			c.starts[g+1] += c.starts[g]
		}
		c.order = grow(c.order, len(qg))
		next := c.starts[:ng] // consumed as write positions, rebuilt below
		for p, g := range qg {
			c.order[next[g]] = int32(p)
			next[g]++
		}
		// next[g] is now the end of group g; group g starts at next[g-1].
		vals := c.fxs[:0]
		lo := int32(0)
		for g := range ng {
			hi := next[g]
			if hi == lo {
				continue
			}
			blob := blobOf(uint32(g))
			if blob == nil {
				lo = hi
				continue
			}
			vals = vals[:0]
			for _, p := range c.order[lo:hi] {
				vals = append(vals, qv[p])
			}
			off, n := findRegion(blob, o.p.blob, a.hidx)
			agg.DecodeKLL(blob[off:off+n], &c.kll)
			c.kll.Add(vals...)
			c.region = agg.AppendKLLRegion(c.region[:0], &c.kll)
			if nb := spliceRegion(blob, off, n, c.region); len(c.region) != n {
				setBlob(uint32(g), nb)
			}
			lo = hi
		}
		c.fxs = vals
	}
}
