package agg

import (
	"fmt"
	"math"
	"slices"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// The collecting functions of the aggregate step: they keep values, not a
// fixed-size summary, so none is decomposable (the planner exchanges rows
// by key and aggregates in Single mode, as for count_distinct).
//
//   - median(x), quantile(x, q): every non-null value of the group is
//     kept (as float64); the result is DuckDB's quantile_cont(x, q): the
//     values sorted (NaN greatest), position q*(n-1) interpolated linearly
//     between its two neighbours. (DuckDB's own quantile(x, q) is
//     quantile_disc; quantile_cont is an alias here.)
//   - arg_max(x, y), arg_min(x, y): x of the row with the greatest (least)
//     y; rows where x or y is NULL are skipped, as in DuckDB; of tied rows
//     the first one a subtask sees wins (DuckDB: the first it scans).
//   - first(x, t), last(x, t): x of the row with the least (greatest) t,
//     also when that x is NULL; rows with a NULL t are skipped. It is
//     DuckDB's first(x ORDER BY t) (last(x ORDER BY t)) over the rows with
//     a t. Of tied rows first keeps the first one seen, last the last.
//   - list(x): every value, NULLs included, as a list<x> column (DuckDB's
//     list); the order within a list is the order of arrival at the
//     subtask, which at parallelism above 1 is not the input order.
//
// Checkpoint state: quantiles a list<float64> of the values; arg_*, first
// and last the ordering value (its 64-bit form, or the bytes of a string;
// NULL: no row yet) and x; list the list column itself.

func newCollect(a boundAgg, m Mode) accumulator {
	switch a.Func {
	case Median:
		return &quantileAcc{q: 0.5}
	case Quantile:
		return &quantileAcc{q: a.Param}
	case List:
		return &listAcc{dt: a.typ, w: fixedWidth(a.typ)}
	}
	acc := &argAcc{dt: a.typ, w: fixedWidth(a.typ), keepNull: a.Func == First || a.Func == Last}
	acc.max = a.Func == ArgMax || a.Func == Last
	acc.ties = a.Func == Last
	acc.byDT = byStateType(a.typ2)
	switch byKindOf(a.typ2) {
	case byInt:
		acc.byI = []int64{}
	case byUint:
		acc.byU = []uint64{}
	case byFloat:
		acc.byF = []float64{}
	case byString:
		acc.byS = []string{}
	}
	return acc
}

// fixedWidth is the byte width of a fixed-width type's values (booleans
// are kept as 0/1 bytes); 0 for strings and binaries.
func fixedWidth(dt arrow.DataType) int {
	switch dt.ID() {
	case arrow.STRING, arrow.BINARY:
		return 0
	case arrow.BOOL:
		return 1
	}
	return dt.(arrow.FixedWidthDataType).BitWidth() / 8
}

// rawBytes returns the values of a fixed-width column (w bytes each, w > 0)
// as bytes; booleans are unpacked into scratch.
func rawBytes(a arrow.Array, w int, scratch []byte) []byte {
	if a.DataType().ID() == arrow.BOOL {
		return boolsAsBytes(a, scratch)
	}
	d := a.Data()
	b := d.Buffers()[1]
	if b == nil {
		return nil
	}
	return b.Bytes()[d.Offset()*w : (d.Offset()+d.Len())*w]
}

// valueArray builds an array of type dt from n fixed-width values of w
// bytes each in vals (booleans as 0/1 bytes).
func valueArray(mem memory.Allocator, dt arrow.DataType, vals []byte, w int, valid []bool) arrow.Array {
	if dt.ID() == arrow.BOOL {
		return boolArray(mem, vals, valid)
	}
	n := len(vals) / w
	vb, nulls := validityBuffer(mem, valid, n)
	buf := memory.NewResizableBuffer(mem)
	buf.Resize(len(vals))
	copy(buf.Bytes(), vals)
	return makeArray(dt, n, []*memory.Buffer{vb, buf}, nulls)
}

// rawCol is an exported state column of fixed-width values, w bytes each.
type rawCol struct {
	dt    arrow.DataType
	w     int
	vals  []byte
	valid []bool
}

func (c *rawCol) slice(mem memory.Allocator, lo, hi int) (arrow.Array, error) {
	var valid []bool
	if c.valid != nil {
		valid = c.valid[lo:hi]
	}
	return valueArray(mem, c.dt, c.vals[lo*c.w:hi*c.w], c.w, valid), nil
}

func (c *rawCol) size(lo, hi int) int { return (hi - lo) * (c.w + 1) }

// ---- median, quantile ----

// quantileAcc keeps every non-null value of each group.
type quantileAcc struct {
	q       float64
	vals    [][]float64
	scratch []float64
}

func (a *quantileAcc) resize(n int) { a.vals = extend(a.vals, n) }

func (a *quantileAcc) bytes() int {
	n := 24 * cap(a.vals)
	for _, v := range a.vals {
		n += 8 * cap(v)
	}
	return n
}

func (a *quantileAcc) update(cols []arrow.Array, gids []uint32) {
	a.scratch = Float64s(cols[0], a.scratch)
	a.add(a.scratch, validityOf(cols[0]), 0, gids)
}

// add appends vals[off+i] to group gids[i], NULLs skipped.
func (a *quantileAcc) add(vals []float64, vv validity, off int, gids []uint32) {
	st := a.vals
	if vv.bits == nil {
		for i, g := range gids {
			st[g] = append(st[g], vals[off+i])
		}
		return
	}
	for i, g := range gids {
		if vv.valid(off + i) {
			st[g] = append(st[g], vals[off+i])
		}
	}
}

func (a *quantileAcc) build(mem memory.Allocator, lo, hi int, out []arrow.Array) ([]arrow.Array, error) {
	res := make([]float64, hi-lo)
	valid := make([]bool, hi-lo)
	for g := lo; g < hi; g++ {
		if len(a.vals[g]) > 0 {
			res[g-lo], valid[g-lo] = QuantileCont(a.vals[g], a.q), true
		}
	}
	return append(out, fixedArray(mem, arrow.PrimitiveTypes.Float64, res, valid)), nil
}

// QuantileCont returns the q-quantile of vals (not empty) as DuckDB's
// quantile_cont computes it: sorted ascending with NaN greatest, the value
// at position q*(n-1), interpolated linearly between the values at its
// floor and ceiling. It reorders vals.
func QuantileCont(vals []float64, q float64) float64 {
	// NaNs to the end, then sort the rest.
	n := len(vals)
	end := n
	for i := 0; i < end; {
		if vals[i] != vals[i] {
			end--
			vals[i], vals[end] = vals[end], vals[i]
			continue
		}
		i++
	}
	slices.Sort(vals[:end])
	pos := q * float64(n-1)
	lo := math.Floor(pos)
	hi := math.Ceil(pos)
	a, b := vals[int(lo)], vals[int(hi)]
	if lo == hi || a == b {
		return a
	}
	return a + (pos-lo)*(b-a)
}

var quantileState = arrow.ListOf(arrow.PrimitiveTypes.Float64)

func (a *quantileAcc) stateTypes() []arrow.DataType { return []arrow.DataType{quantileState} }

func (a *quantileAcc) exportState(dest []uint32) []stateCol {
	counts := make([]int64, len(dest))
	for g := range dest {
		counts[g] = int64(len(a.vals[g]))
	}
	offs := listOffsetsOf(counts, dest)
	vals := make([]float64, offs[len(dest)])
	for g, d := range dest {
		copy(vals[offs[d]:], a.vals[g])
	}
	return []stateCol{&listCol{dt: quantileState, offs: offs, child: &fixedCol[float64]{dt: arrow.PrimitiveTypes.Float64, vals: vals}}}
}

// listOffsetsOf returns the offsets of lists whose group g, of counts[g]
// elements, is at row dest[g].
func listOffsetsOf(counts []int64, dest []uint32) []int64 {
	offs := make([]int64, len(dest)+1)
	for g, d := range dest {
		offs[d+1] = counts[g]
	}
	for i := range dest {
		offs[i+1] += offs[i]
	}
	return offs
}

// expandGids returns, for the lists of a list column with offsets offs, the
// group of every element: gids[i] repeated offs[i+1]-offs[i] times.
func expandGids(offs []int32, gids []uint32, scratch []uint32) []uint32 {
	scratch = scratch[:0]
	for i, g := range gids {
		for range offs[i+1] - offs[i] {
			scratch = append(scratch, g)
		}
	}
	return scratch
}

func (a *quantileAcc) mergeState(cols []arrow.Array, gids []uint32) {
	offs, child := listOffsets(cols[0])
	if len(offs) == 0 {
		return
	}
	eg := expandGids(offs, gids, nil)
	a.add(values[float64](child), validityOf(child), int(offs[0]), eg)
}

// ---- arg_max, arg_min, first, last ----

// argAcc keeps per group the best ordering value so far (by kind: int64,
// uint64, float64 or string) and the x of its row: fixed-width x as w
// bytes in xs, strings and binaries in xstr.
type argAcc struct {
	dt       arrow.DataType // x's type
	w        int            // x's width; 0: string or binary
	keepNull bool           // first, last: a NULL x is a result
	max      bool           // greatest ordering value wins
	ties     bool           // on a tie the later row wins (last)

	has   []bool
	byI   []int64
	byU   []uint64
	byF   []float64
	byS   []string
	xs    []byte
	xstr  []string
	xok   []bool
	byDT  arrow.DataType // the ordering value's state type (byStateType)
	win   []int32        // per group: this batch's winning row
	mark  []bool
	touch []uint32

	iscr []int64
	fscr []float64
	bscr []byte
}

func (a *argAcc) resize(n int) {
	a.has = extend(a.has, n)
	a.xok = extend(a.xok, n)
	a.win = extend(a.win, n)
	a.mark = extend(a.mark, n)
	if a.w > 0 {
		a.xs = extend(a.xs, n*a.w)
	} else {
		a.xstr = extend(a.xstr, n)
	}
	switch {
	case a.byI != nil:
		a.byI = extend(a.byI, n)
	case a.byU != nil:
		a.byU = extend(a.byU, n)
	case a.byF != nil:
		a.byF = extend(a.byF, n)
	case a.byS != nil:
		a.byS = extend(a.byS, n)
	}
}

func (a *argAcc) bytes() int {
	n := 6*cap(a.has) + cap(a.xs) + 16*cap(a.xstr) + 8*(cap(a.byI)+cap(a.byU)+cap(a.byF)) + 16*cap(a.byS)
	for _, s := range a.xstr {
		n += len(s)
	}
	for _, s := range a.byS {
		n += len(s)
	}
	return n
}

// byKind is how ordering values of type dt are compared.
type byKind uint8

const (
	byInt byKind = iota
	byUint
	byFloat
	byString
)

func byKindOf(dt arrow.DataType) byKind {
	switch dt.ID() {
	case arrow.FLOAT32, arrow.FLOAT64:
		return byFloat
	case arrow.UINT64:
		return byUint
	case arrow.STRING, arrow.BINARY:
		return byString
	}
	return byInt
}

// byStateType is the state column type of ordering values of type dt.
func byStateType(dt arrow.DataType) arrow.DataType {
	switch byKindOf(dt) {
	case byFloat:
		return arrow.PrimitiveTypes.Float64
	case byUint:
		return arrow.PrimitiveTypes.Uint64
	case byString:
		return dt
	}
	return i64
}

// int64sOf widens an integer, boolean or temporal column to int64.
func int64sOf(c arrow.Array, scratch []int64, bscr []byte) ([]int64, []byte) {
	switch c.DataType().ID() {
	case arrow.INT64, arrow.TIMESTAMP, arrow.DATE64, arrow.TIME64, arrow.DURATION:
		return values[int64](c), bscr
	case arrow.INT8:
		return widenInt(values[int8](c), scratch), bscr
	case arrow.INT16:
		return widenInt(values[int16](c), scratch), bscr
	case arrow.INT32, arrow.DATE32, arrow.TIME32:
		return widenInt(values[int32](c), scratch), bscr
	case arrow.UINT8:
		return widenInt(values[uint8](c), scratch), bscr
	case arrow.UINT16:
		return widenInt(values[uint16](c), scratch), bscr
	case arrow.UINT32:
		return widenInt(values[uint32](c), scratch), bscr
	case arrow.BOOL:
		bscr = boolsAsBytes(c, bscr)
		return widenInt(bscr, scratch), bscr
	}
	panic(fmt.Sprintf("agg: no int64 view of %s", c.DataType())) // bind checked the type
}

func widenInt[T integer](src []T, dst []int64) []int64 {
	dst = grow(dst, len(src))
	for i, v := range src {
		dst[i] = int64(v)
	}
	return dst
}

// lessNaN orders values with NaN greatest.
func lessNaN[B int64 | uint64 | float64](a, b B) bool { return a < b || (b != b && a == a) }

// argPass is the typed loop of arg_*, first and last over ordering values
// vals: it updates the best value of each group and records the winning
// row of the batch in win, listing the groups it touched.
func argPass[B int64 | uint64 | float64](a *argAcc, best []B, vals []B, bv, xv validity, gids []uint32) {
	has, win, mark, touch := a.has, a.win, a.mark, a.touch
	skipX := !a.keepNull && xv.bits != nil
	for i, g := range gids {
		if bv.bits != nil && !bv.valid(i) || skipX && !xv.valid(i) {
			continue
		}
		v := vals[i]
		if has[g] {
			cur := best[g]
			if a.max && !(lessNaN(cur, v) || a.ties && v == cur) || !a.max && !lessNaN(v, cur) {
				continue
			}
		}
		best[g], has[g], win[g] = v, true, int32(i)
		if !mark[g] {
			mark[g] = true
			touch = append(touch, g)
		}
	}
	a.touch = touch
}

// argPassString is argPass over string or binary ordering values.
func (a *argAcc) argPassString(c arrow.Array, bv, xv validity, gids []uint32) {
	offs, data := binaryView(c)
	has, win, mark, touch, best := a.has, a.win, a.mark, a.touch, a.byS
	skipX := !a.keepNull && xv.bits != nil
	for i, g := range gids {
		if bv.bits != nil && !bv.valid(i) || skipX && !xv.valid(i) {
			continue
		}
		v := unsafe.String(unsafe.SliceData(data[offs[i]:]), int(offs[i+1]-offs[i]))
		if has[g] {
			cur := best[g]
			if a.max && !(cur < v || a.ties && v == cur) || !a.max && !(v < cur) {
				continue
			}
		}
		best[g], has[g], win[g] = string([]byte(v)), true, int32(i)
		if !mark[g] {
			mark[g] = true
			touch = append(touch, g)
		}
	}
	a.touch = touch
}

// update takes (x, ordering value) columns; mergeState takes the state
// columns (x, ordering value as byStateType), which it reads the same way.
func (a *argAcc) update(cols []arrow.Array, gids []uint32) {
	x, by := cols[0], cols[1]
	bv, xv := validityOf(by), validityOf(x)
	switch byKindOf(by.DataType()) {
	case byInt:
		var vals []int64
		vals, a.bscr = int64sOf(by, a.iscr, a.bscr)
		if by.DataType().ID() != arrow.INT64 {
			a.iscr = vals
		}
		argPass(a, a.byI, vals, bv, xv, gids)
	case byUint:
		argPass(a, a.byU, values[uint64](by), bv, xv, gids)
	case byFloat:
		a.fscr = Float64s(by, a.fscr)
		argPass(a, a.byF, a.fscr, bv, xv, gids)
	case byString:
		a.argPassString(by, bv, xv, gids)
	}
	// Copy the x of every group's winning row.
	if a.w > 0 {
		raw := rawBytes(x, a.w, a.bscr)
		if x.DataType().ID() == arrow.BOOL {
			a.bscr = raw
		}
		w := a.w
		for _, g := range a.touch {
			r := int(a.win[g])
			a.xok[g] = xv.bits == nil || xv.valid(r)
			copy(a.xs[int(g)*w:int(g+1)*w], raw[r*w:(r+1)*w])
		}
	} else {
		offs, data := binaryView(x)
		for _, g := range a.touch {
			r := int(a.win[g])
			a.xok[g] = xv.bits == nil || xv.valid(r)
			if a.xok[g] {
				a.xstr[g] = string(data[offs[r]:offs[r+1]])
			} else {
				a.xstr[g] = ""
			}
		}
	}
	for _, g := range a.touch {
		a.mark[g] = false
	}
	a.touch = a.touch[:0]
}

// valid returns the output validity of groups [lo, hi): a row won and its
// x is not NULL.
func (a *argAcc) valid(lo, hi int) []bool {
	v := make([]bool, hi-lo)
	for g := lo; g < hi; g++ {
		v[g-lo] = a.has[g] && a.xok[g]
	}
	return v
}

func (a *argAcc) build(mem memory.Allocator, lo, hi int, out []arrow.Array) ([]arrow.Array, error) {
	valid := a.valid(lo, hi)
	if a.w > 0 {
		return append(out, valueArray(mem, a.dt, a.xs[lo*a.w:hi*a.w], a.w, valid)), nil
	}
	total := 0
	for _, s := range a.xstr[lo:hi] {
		total += len(s)
	}
	arr, err := binaryArray(mem, a.dt, hi-lo, func(i int) []byte {
		s := a.xstr[lo+i]
		return unsafe.Slice(unsafe.StringData(s), len(s))
	}, total, valid)
	if err != nil {
		return out, err
	}
	return append(out, arr), nil
}

// stateTypes: x, then the ordering value (byStateType).
func (a *argAcc) stateTypes() []arrow.DataType { return []arrow.DataType{a.dt, a.byDT} }

func (a *argAcc) exportState(dest []uint32) []stateCol {
	xok := make([]bool, len(dest))
	for g := range dest {
		xok[g] = a.has[g] && a.xok[g]
	}
	var x stateCol
	if a.w > 0 {
		vals := make([]byte, len(dest)*a.w)
		for g, d := range dest {
			copy(vals[int(d)*a.w:], a.xs[g*a.w:(g+1)*a.w])
		}
		x = &rawCol{dt: a.dt, w: a.w, vals: vals, valid: scatter(xok, dest)}
	} else {
		x = newBinaryCol(a.dt, func(g int) []byte { return []byte(a.xstr[g]) }, xok, dest)
	}
	has := a.has[:len(dest)]
	var by stateCol
	switch {
	case a.byU != nil:
		by = newFixedCol(arrow.PrimitiveTypes.Uint64, a.byU, has, dest)
	case a.byF != nil:
		by = newFixedCol(arrow.PrimitiveTypes.Float64, a.byF, has, dest)
	case a.byS != nil:
		by = newBinaryCol(a.byDT, func(g int) []byte { return []byte(a.byS[g]) }, has, dest)
	default:
		by = newFixedCol(i64, a.byI, has, dest)
	}
	return []stateCol{x, by}
}

func (a *argAcc) mergeState(cols []arrow.Array, gids []uint32) { a.update(cols, gids) }

// ---- list ----

// listAcc keeps every value with its group, in arrival order: group ids in
// gids, fixed-width values (w bytes) in vals or strings in sdata at soffs,
// NULL flags in ok. build sorts them by group once (a counting sort).
type listAcc struct {
	dt    arrow.DataType
	w     int
	ng    int
	gids  []uint32
	vals  []byte
	sdata []byte
	soffs []int64
	ok    []bool
	nulls bool

	// The elements sorted by group (order[offs[g]:offs[g+1]] are group
	// g's), made by the first build after a change.
	order []int32
	offs  []int64
	bscr  []byte
}

func (a *listAcc) resize(n int) { a.ng = max(a.ng, n) }

func (a *listAcc) bytes() int {
	return 4*cap(a.gids) + cap(a.vals) + cap(a.sdata) + 8*cap(a.soffs) + cap(a.ok) + 4*cap(a.order) + 8*cap(a.offs)
}

func (a *listAcc) update(cols []arrow.Array, gids []uint32) { a.add(cols[0], 0, gids) }

// add appends element off+i of c to group gids[i].
func (a *listAcc) add(c arrow.Array, off int, gids []uint32) {
	n := len(gids)
	if n == 0 {
		return
	}
	a.order = nil
	a.gids = append(a.gids, gids...)
	vv := validityOf(c)
	start := len(a.ok)
	a.ok = extend(a.ok, start+n)
	for i := range n {
		a.ok[start+i] = vv.bits == nil || vv.valid(off+i)
	}
	if vv.bits != nil {
		a.nulls = true
	}
	if a.w > 0 {
		raw := rawBytes(c, a.w, a.bscr)
		if c.DataType().ID() == arrow.BOOL {
			a.bscr = raw
		}
		a.vals = append(a.vals, raw[off*a.w:(off+n)*a.w]...)
		return
	}
	offs, data := binaryView(c)
	if a.soffs == nil {
		a.soffs = []int64{0}
	}
	if n > 0 {
		a.sdata = append(a.sdata, data[offs[off]:offs[off+n]]...)
		base := int64(len(a.sdata)) - int64(offs[off+n])
		for i := range n {
			a.soffs = append(a.soffs, int64(offs[off+i+1])+base)
		}
	}
}

// sort orders the elements by group (stable: arrival order within a group).
func (a *listAcc) sort() {
	if a.order != nil {
		return
	}
	counts := make([]int64, a.ng)
	for _, g := range a.gids {
		counts[g]++
	}
	a.offs = listOffsetsOf(counts, identity(a.ng))
	next := slices.Clone(a.offs[:a.ng])
	a.order = make([]int32, len(a.gids))
	for e, g := range a.gids {
		a.order[next[g]] = int32(e)
		next[g]++
	}
}

// elements returns the element column of the elements order[lo:hi].
func (a *listAcc) elements(mem memory.Allocator, order []int32) (arrow.Array, error) {
	var valid []bool
	if a.nulls {
		valid = make([]bool, len(order))
		for i, e := range order {
			valid[i] = a.ok[e]
		}
	}
	if a.w > 0 {
		w := a.w
		vals := make([]byte, len(order)*w)
		for i, e := range order {
			copy(vals[i*w:(i+1)*w], a.vals[int(e)*w:int(e+1)*w])
		}
		return valueArray(mem, a.dt, vals, w, valid), nil
	}
	total := 0
	for _, e := range order {
		total += int(a.soffs[e+1] - a.soffs[e])
	}
	return binaryArray(mem, a.dt, len(order), func(i int) []byte {
		e := order[i]
		return a.sdata[a.soffs[e]:a.soffs[e+1]]
	}, total, valid)
}

func (a *listAcc) build(mem memory.Allocator, lo, hi int, out []arrow.Array) ([]arrow.Array, error) {
	a.sort()
	base := a.offs[lo]
	if a.offs[hi]-base > math.MaxInt32 {
		return out, fmt.Errorf("more than 2^31 list elements in one output batch")
	}
	child, err := a.elements(mem, a.order[base:a.offs[hi]])
	if err != nil {
		return out, err
	}
	defer child.Release()
	offs := make([]int32, hi-lo+1)
	valid := make([]bool, hi-lo)
	for g := lo; g < hi; g++ {
		offs[g-lo+1] = int32(a.offs[g+1] - base)
		valid[g-lo] = a.offs[g+1] > a.offs[g]
	}
	vb, nulls := validityBuffer(mem, valid, hi-lo)
	ob := memory.NewResizableBuffer(mem)
	ob.Resize(4 * len(offs))
	copy(unsafe.Slice((*int32)(unsafe.Pointer(unsafe.SliceData(ob.Bytes()))), len(offs)), offs)
	d := array.NewData(arrow.ListOf(a.dt), hi-lo, []*memory.Buffer{vb, ob}, []arrow.ArrayData{child.Data()}, nulls, 0)
	arr := array.MakeFromData(d)
	d.Release()
	ob.Release()
	if vb != nil {
		vb.Release()
	}
	return append(out, arr), nil
}

func (a *listAcc) stateTypes() []arrow.DataType { return []arrow.DataType{arrow.ListOf(a.dt)} }

// exportState writes the lists in snapshot order: a counting sort of the
// elements by their group's row.
func (a *listAcc) exportState(dest []uint32) []stateCol {
	counts := make([]int64, len(dest))
	for _, g := range a.gids {
		counts[g]++
	}
	offs := listOffsetsOf(counts, dest)
	next := slices.Clone(offs[:len(dest)])
	order := make([]int32, len(a.gids))
	for e, g := range a.gids {
		d := dest[g]
		order[next[d]] = int32(e)
		next[d]++
	}
	var ok []bool
	if a.nulls {
		ok = make([]bool, len(order))
		for i, e := range order {
			ok[i] = a.ok[e]
		}
	}
	var child stateCol
	if a.w > 0 {
		w := a.w
		vals := make([]byte, len(order)*w)
		for i, e := range order {
			copy(vals[i*w:(i+1)*w], a.vals[int(e)*w:int(e+1)*w])
		}
		child = &rawCol{dt: a.dt, w: w, vals: vals, valid: ok}
	} else {
		child = newBinaryCol(a.dt, func(i int) []byte {
			e := order[i]
			return a.sdata[a.soffs[e]:a.soffs[e+1]]
		}, ok, identity(len(order)))
	}
	return []stateCol{&listCol{dt: arrow.ListOf(a.dt), offs: offs, child: child}}
}

func (a *listAcc) mergeState(cols []arrow.Array, gids []uint32) {
	offs, child := listOffsets(cols[0])
	if len(offs) == 0 {
		return
	}
	a.add(child, int(offs[0]), expandGids(offs, gids, nil))
}
