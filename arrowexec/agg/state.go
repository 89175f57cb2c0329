package agg

import (
	"fmt"
	"math"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// State columns: how every accumulator and key store exports the state of
// its groups as columns (exportState) and merges such columns back in
// (mergeState). Checkpoints are Arrow records of these columns
// (checkpoint.go).
//
// An export writes group g to row dest[g] of Go-memory columns (stateCol):
// one sequential read of the state and one scattered write per column. The
// snapshot order groups the rows of a key group together, and scattering
// writes into as many sequential streams as there are key groups (cache
// friendly), where gathering each key group's groups would read the whole
// state once per key group at random. A record of the snapshot is then a
// range of rows: Arrow arrays over the columns' memory (stateCol.slice),
// without a copy for fixed-width data. A merge is one typed loop over the
// rows of a record, like update.

// stateful is implemented by every accumulator.
type stateful interface {
	// stateTypes are the types of the accumulator's state columns.
	stateTypes() []arrow.DataType
	// exportState returns the state columns of groups [0, len(dest)),
	// group g at row dest[g] (dest is a permutation).
	exportState(dest []uint32) []stateCol
	// mergeState merges state columns (as exportState made them) into the
	// groups gids, one row per group id; a group id may repeat.
	mergeState(cols []arrow.Array, gids []uint32)
}

// stateCol is one exported state column.
type stateCol interface {
	// slice returns rows [lo, hi) as an Arrow array. It may share the
	// column's memory: the column must outlive it.
	slice(mem memory.Allocator, lo, hi int) (arrow.Array, error)
	// size is about the number of bytes of rows [lo, hi).
	size(lo, hi int) int
}

// scatter returns out with out[dest[g]] = src[g].
func scatter[T any](src []T, dest []uint32) []T {
	out := make([]T, len(dest))
	for g, d := range dest {
		out[d] = src[g]
	}
	return out
}

func asBytes[T any](vals []T) []byte {
	if len(vals) == 0 {
		return nil
	}
	var z T
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(vals))), len(vals)*int(unsafe.Sizeof(z)))
}

// fixedCol is a fixed-width column of type dt, physically T (0/1 bytes for
// booleans); valid == nil: no nulls.
type fixedCol[T any] struct {
	dt    arrow.DataType
	vals  []T
	valid []bool
}

func newFixedCol[T any](dt arrow.DataType, src []T, valid []bool, dest []uint32) *fixedCol[T] {
	c := &fixedCol[T]{dt: dt, vals: scatter(src[:len(dest)], dest)}
	if valid != nil {
		c.valid = scatter(valid[:len(dest)], dest)
	}
	return c
}

func (c *fixedCol[T]) slice(mem memory.Allocator, lo, hi int) (arrow.Array, error) {
	var valid []bool
	if c.valid != nil {
		valid = c.valid[lo:hi]
	}
	if c.dt.ID() == arrow.BOOL {
		return boolArray(mem, any(c.vals[lo:hi]).([]uint8), valid), nil
	}
	vb, nulls := validityBuffer(mem, valid, hi-lo)
	return makeArray(c.dt, hi-lo, []*memory.Buffer{vb, memory.NewBufferBytes(asBytes(c.vals[lo:hi]))}, nulls), nil
}

func (c *fixedCol[T]) size(lo, hi int) int {
	var z T
	return (hi - lo) * (int(unsafe.Sizeof(z)) + 1)
}

// binaryCol is a string or binary column: row i is data[offs[i]:offs[i+1]].
type binaryCol struct {
	dt    arrow.DataType
	data  []byte
	offs  []int64
	valid []bool
}

// newBinaryCol exports n values: value(g) goes to row dest[g].
func newBinaryCol(dt arrow.DataType, value func(g int) []byte, valid []bool, dest []uint32) *binaryCol {
	n := len(dest)
	c := &binaryCol{dt: dt, offs: make([]int64, n+1)}
	for g, d := range dest {
		c.offs[d+1] = int64(len(value(g)))
	}
	for i := range n {
		c.offs[i+1] += c.offs[i]
	}
	c.data = make([]byte, c.offs[n])
	for g, d := range dest {
		copy(c.data[c.offs[d]:], value(g))
	}
	if valid != nil {
		c.valid = scatter(valid[:n], dest)
	}
	return c
}

func (c *binaryCol) slice(mem memory.Allocator, lo, hi int) (arrow.Array, error) {
	base, total := c.offs[lo], c.offs[hi]-c.offs[lo]
	if total > math.MaxInt32 {
		return nil, errTooLarge(c.dt, int(total))
	}
	var valid []bool
	if c.valid != nil {
		valid = c.valid[lo:hi]
	}
	vb, nulls := validityBuffer(mem, valid, hi-lo)
	ob := memory.NewResizableBuffer(mem)
	ob.Resize(4 * (hi - lo + 1))
	offs := unsafe.Slice((*int32)(unsafe.Pointer(unsafe.SliceData(ob.Bytes()))), hi-lo+1)
	for i := range offs {
		offs[i] = int32(c.offs[lo+i] - base)
	}
	db := memory.NewBufferBytes(c.data[base : base+total])
	return makeArray(c.dt, hi-lo, []*memory.Buffer{vb, ob, db}, nulls), nil
}

func (c *binaryCol) size(lo, hi int) int { return int(c.offs[hi]-c.offs[lo]) + 5*(hi-lo) }

// listCol is a list column: row i holds child rows offs[i] .. offs[i+1].
type listCol struct {
	dt    arrow.DataType
	offs  []int64
	child stateCol
}

func (c *listCol) slice(mem memory.Allocator, lo, hi int) (arrow.Array, error) {
	base := c.offs[lo]
	if c.offs[hi]-base > math.MaxInt32 {
		return nil, fmt.Errorf("agg: more than 2^31 distinct values in one snapshot record")
	}
	child, err := c.child.slice(mem, int(base), int(c.offs[hi]))
	if err != nil {
		return nil, err
	}
	ob := memory.NewResizableBuffer(mem)
	ob.Resize(4 * (hi - lo + 1))
	offs := unsafe.Slice((*int32)(unsafe.Pointer(unsafe.SliceData(ob.Bytes()))), hi-lo+1)
	for i := range offs {
		offs[i] = int32(c.offs[lo+i] - base)
	}
	d := array.NewData(c.dt, hi-lo, []*memory.Buffer{nil, ob}, []arrow.ArrayData{child.Data()}, 0, 0)
	a := array.MakeFromData(d)
	d.Release()
	ob.Release()
	child.Release()
	return a, nil
}

func (c *listCol) size(lo, hi int) int {
	return c.child.size(int(c.offs[lo]), int(c.offs[hi])) + 4*(hi-lo)
}

// scatterSet writes the elements of a set of (group, element) slots,
// scanned once, into the lists of their groups in snapshot order (group g,
// which has counts[g] elements, at row dest[g]); it returns the list
// offsets and the elements. elem returns a slot's group id + 1 (0: an
// empty slot) and element.
func scatterSet[S, E any](counts []int64, dest []uint32, slots []S, elem func(*S) (uint32, E)) ([]int64, []E) {
	offs := listOffsetsOf(counts, dest)
	next := append([]int64(nil), offs[:len(dest)]...)
	out := make([]E, offs[len(dest)])
	for i := range slots {
		if g1, e := elem(&slots[i]); g1 != 0 {
			d := dest[g1-1]
			out[next[d]] = e
			next[d]++
		}
	}
	return offs, out
}

// seenValidity returns the "has a value" flags of groups [0, n), nil
// meaning all of them have one.
func (l *lazySeen) seenValidity(n int) []bool {
	if l.seen != nil {
		return l.seen[:n]
	}
	if l.covered >= n {
		return nil
	}
	return l.validity(0, n)
}

// ---- key stores and groupers ----

func (s *fixedStore[T]) export(dest []uint32) stateCol {
	return newFixedCol(s.dt, s.keys, s.valid, dest)
}

func (s *stringStore) export(dest []uint32) stateCol {
	return newBinaryCol(s.dt, func(g int) []byte { return s.key(uint32(g)) }, s.valid, dest)
}

// reserve makes room for n groups in all: restores know how many groups
// come and size the hash table once.
func (g *fixedGrouper[T]) reserve(n int) {
	if size := tableSize(n, len(g.slots)); size > len(g.slots) {
		g.rehashTo(size)
	}
}

func (g *stringGrouper) reserve(n int) { g.tbl.reserve(n) }
func (g *multiGrouper) reserve(n int)  { g.tbl.reserve(n) }

func (t *table) reserve(n int) {
	if size := tableSize(n, len(t.entries)); size > len(t.entries) {
		t.rehash(size)
	}
}

// tableSize is the table size from size on that holds n groups (see full).
func tableSize(n, size int) int {
	for full(n, size) {
		size *= 2
	}
	return size
}

// hashTable exposes the hash of every group to snapshots (key groups).
func (g *stringGrouper) hashTable() *table { return &g.tbl }
func (g *multiGrouper) hashTable() *table  { return &g.tbl }

func (g *fixedGrouper[T]) exportKeys(dest []uint32) []stateCol { return []stateCol{g.st.export(dest)} }
func (g *stringGrouper) exportKeys(dest []uint32) []stateCol   { return []stateCol{g.st.export(dest)} }

func (g *multiGrouper) exportKeys(dest []uint32) []stateCol {
	cols := make([]stateCol, len(g.stores))
	for i, s := range g.stores {
		cols[i] = s.export(dest)
	}
	return cols
}

// ---- count ----

var i64 = arrow.PrimitiveTypes.Int64

func (a *countStar) stateTypes() []arrow.DataType { return []arrow.DataType{i64} }

func (a *countStar) exportState(dest []uint32) []stateCol {
	return []stateCol{newFixedCol(i64, a.counts, nil, dest)}
}

// mergeState adds counts (countValid and countMerge inherit it).
func (a *countStar) mergeState(cols []arrow.Array, gids []uint32) {
	vals := values[int64](cols[0])[:len(gids)]
	vv := validityOf(cols[0])
	counts := a.counts
	for i, g := range gids {
		if vv.bits == nil || vv.valid(i) {
			counts[g] += vals[i]
		}
	}
}

// ---- sum ----

func (a *sumAcc[T, S]) stateTypes() []arrow.DataType { return []arrow.DataType{a.dt} }

func (a *sumAcc[T, S]) exportState(dest []uint32) []stateCol {
	return []stateCol{newFixedCol(a.dt, a.sums, a.seenValidity(len(dest)), dest)}
}

// mergeState adds partial sums, NULL meaning no value; sums of int64 or
// uint64 inputs with overflow checks, as update adds them.
func (a *sumAcc[T, S]) mergeState(cols []arrow.Array, gids []uint32) {
	c := cols[0]
	vals := values[S](c)
	if a.wide {
		a.addWide(c, any(vals).([]int64), gids)
		return
	}
	FoldSum(c, vals, nil, gids, a.sums, a.track(c, len(a.sums)))
}

// ---- avg ----

func (a *avgAcc[T, S]) stateTypes() []arrow.DataType { return []arrow.DataType{a.sumType, i64} }

func (a *avgAcc[T, S]) exportState(dest []uint32) []stateCol {
	sums := make([]S, len(dest))
	counts := make([]int64, len(dest))
	for g, d := range dest {
		p := a.st[g]
		sums[d], counts[d] = p.Sum, p.Count
	}
	return []stateCol{&fixedCol[S]{dt: a.sumType, vals: sums}, &fixedCol[int64]{dt: i64, vals: counts}}
}

// mergeState adds partial (sum, count) pairs; it is also Final's update.
func (a *avgAcc[T, S]) mergeState(cols []arrow.Array, gids []uint32) {
	if a.wide {
		a.updateWide(cols[0], cols[1], gids)
		return
	}
	st := a.st
	ps := values[S](cols[0])[:len(gids)]
	pc := values[int64](cols[1])[:len(gids)]
	sv, cv := validityOf(cols[0]), validityOf(cols[1])
	for i, g := range gids {
		if (sv.bits == nil || sv.valid(i)) && (cv.bits == nil || cv.valid(i)) {
			st[g].Sum += ps[i]
			st[g].Count += pc[i]
		}
	}
}

// ---- min, max ----

// The state of min and max is the extreme itself (NULL: no value), so
// merging is updating with it.

func (a *minMaxAcc[T]) stateTypes() []arrow.DataType { return []arrow.DataType{a.dt} }

func (a *minMaxAcc[T]) exportState(dest []uint32) []stateCol {
	return []stateCol{newFixedCol(a.dt, a.vals, a.seenValidity(len(dest)), dest)}
}

func (a *minMaxAcc[T]) mergeState(cols []arrow.Array, gids []uint32) { a.update(cols, gids) }

func (a *minMaxString) stateTypes() []arrow.DataType { return []arrow.DataType{a.dt} }

func (a *minMaxString) exportState(dest []uint32) []stateCol {
	value := func(g int) []byte { return unsafe.Slice(unsafe.StringData(a.vals[g]), len(a.vals[g])) }
	return []stateCol{newBinaryCol(a.dt, value, a.seen, dest)}
}

func (a *minMaxString) mergeState(cols []arrow.Array, gids []uint32) { a.update(cols, gids) }

// ---- count_distinct ----

// The state of count_distinct is the set of distinct values of each group:
// a list column (the canonical 64-bit patterns of fixed-width values as
// uint64, string and binary values as binary). The count is derived from
// the set when it is merged back.

var (
	distinctFixedState  = arrow.ListOf(arrow.PrimitiveTypes.Uint64)
	distinctStringState = arrow.ListOf(arrow.BinaryTypes.Binary)
)

func (a *distinctFixed) stateTypes() []arrow.DataType { return []arrow.DataType{distinctFixedState} }

// exportState writes the set's values, scanned once, into the lists of
// their groups.
func (a *distinctFixed) exportState(dest []uint32) []stateCol {
	offs, vals := scatterSet(a.counts, dest, a.slots, func(sl *distinctSlot) (uint32, uint64) { return sl.g, sl.v })
	child := &fixedCol[uint64]{dt: arrow.PrimitiveTypes.Uint64, vals: vals}
	return []stateCol{&listCol{dt: distinctFixedState, offs: offs, child: child}}
}

// listOffsets returns the offsets of a list array, sliced to the array.
func listOffsets(c arrow.Array) ([]int32, arrow.Array) {
	l := c.(*array.List)
	if l.Len() == 0 {
		return nil, l.ListValues()
	}
	return l.Offsets()[l.Data().Offset() : l.Data().Offset()+l.Len()+1], l.ListValues()
}

func (a *distinctFixed) mergeState(cols []arrow.Array, gids []uint32) {
	offs, child := listOffsets(cols[0])
	vals := values[uint64](child)
	for i, g := range gids {
		for _, v := range vals[offs[i]:offs[i+1]] {
			a.insert(v, g)
		}
	}
}

func (a *distinctString) stateTypes() []arrow.DataType {
	return []arrow.DataType{distinctStringState}
}

func (a *distinctString) value(ref uint32) []byte { return a.data[a.offs[ref]:a.offs[ref+1]] }

// exportState writes the set's values, scanned once, into the lists of
// their groups.
func (a *distinctString) exportState(dest []uint32) []stateCol {
	offs, refs := scatterSet(a.counts, dest, a.slots, func(sl *distinctStringSlot) (uint32, uint32) { return sl.g, sl.ref })
	// The values in list order (refs is already in snapshot order).
	child := newBinaryCol(arrow.BinaryTypes.Binary, func(i int) []byte { return a.value(refs[i]) }, nil, identity(len(refs)))
	return []stateCol{&listCol{dt: distinctStringState, offs: offs, child: child}}
}

// identity returns the permutation 0, 1, ..., n-1.
func identity(n int) []uint32 {
	p := make([]uint32, n)
	for i := range p {
		p[i] = uint32(i)
	}
	return p
}

func (a *distinctString) mergeState(cols []arrow.Array, gids []uint32) {
	offs, child := listOffsets(cols[0])
	voffs, data := binaryView(child)
	for i, g := range gids {
		for j := offs[i]; j < offs[i+1]; j++ {
			a.insert(data[voffs[j]:voffs[j+1]], g)
		}
	}
}
