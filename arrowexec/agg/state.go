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
// a list of groups as Arrow arrays (gather) and merges such arrays back in
// (mergeState). Checkpoints are records of these columns (checkpoint.go).
// Each export is one typed gather loop per column; each merge one typed
// loop over the rows, like update.

// stateful is implemented by every accumulator.
type stateful interface {
	// stateTypes are the types of the accumulator's state columns.
	stateTypes() []arrow.DataType
	// gatherState appends the state columns of groups gids to out.
	gatherState(mem memory.Allocator, gids []uint32, out []arrow.Array) ([]arrow.Array, error)
	// mergeState merges state columns (as gatherState made them) into the
	// groups gids, one row per group id; a group id may repeat.
	mergeState(cols []arrow.Array, gids []uint32)
}

// snapshotIndexer is implemented by accumulators that need an index of
// their state, built once per snapshot, to gather groups (count_distinct
// sets, which are keyed by (group, value) and not by group).
type snapshotIndexer interface {
	beginSnapshot()
	endSnapshot()
}

// gatherVals returns src[g] for every g in gids.
func gatherVals[T any](src []T, gids []uint32) []T {
	out := make([]T, len(gids))
	for i, g := range gids {
		out[i] = src[g]
	}
	return out
}

// gatherValidity returns the "has a value" flags of groups gids, nil
// meaning all of them have one.
func (l *lazySeen) gatherValidity(gids []uint32) []bool {
	if l.seen != nil {
		return gatherVals(l.seen, gids)
	}
	all := true
	for _, g := range gids {
		if int(g) >= l.covered {
			all = false
			break
		}
	}
	if all {
		return nil
	}
	v := make([]bool, len(gids))
	for i, g := range gids {
		v[i] = int(g) < l.covered
	}
	return v
}

// ---- key stores and groupers ----

func (s *fixedStore[T]) gather(mem memory.Allocator, gids []uint32) (arrow.Array, error) {
	keys := gatherVals(s.keys, gids)
	var valid []bool
	if s.valid != nil {
		valid = gatherVals(s.valid, gids)
	}
	if s.dt.ID() == arrow.BOOL {
		return boolArray(mem, any(keys).([]uint8), valid), nil
	}
	return fixedArray(mem, s.dt, keys, valid), nil
}

func (s *stringStore) gather(mem memory.Allocator, gids []uint32) (arrow.Array, error) {
	var valid []bool
	if s.valid != nil {
		valid = gatherVals(s.valid, gids)
	}
	total := 0
	for _, g := range gids {
		total += s.offs[g+1] - s.offs[g]
	}
	return binaryArray(mem, s.dt, len(gids), func(i int) []byte { return s.key(gids[i]) }, total, valid)
}

func (g *fixedGrouper[T]) gather(mem memory.Allocator, gids []uint32, out []arrow.Array) ([]arrow.Array, error) {
	a, err := g.st.gather(mem, gids)
	if err != nil {
		return out, err
	}
	return append(out, a), nil
}

func (g *stringGrouper) gather(mem memory.Allocator, gids []uint32, out []arrow.Array) ([]arrow.Array, error) {
	a, err := g.st.gather(mem, gids)
	if err != nil {
		return out, err
	}
	return append(out, a), nil
}

func (g *multiGrouper) gather(mem memory.Allocator, gids []uint32, out []arrow.Array) ([]arrow.Array, error) {
	for _, s := range g.stores {
		a, err := s.gather(mem, gids)
		if err != nil {
			return out, err
		}
		out = append(out, a)
	}
	return out, nil
}

// ---- count ----

var i64 = arrow.PrimitiveTypes.Int64

func (a *countStar) stateTypes() []arrow.DataType { return []arrow.DataType{i64} }

func (a *countStar) gatherState(mem memory.Allocator, gids []uint32, out []arrow.Array) ([]arrow.Array, error) {
	return append(out, fixedArray(mem, i64, gatherVals(a.counts, gids), nil)), nil
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

func (a *sumAcc[T, S]) gatherState(mem memory.Allocator, gids []uint32, out []arrow.Array) ([]arrow.Array, error) {
	return append(out, fixedArray(mem, a.dt, gatherVals(a.sums, gids), a.gatherValidity(gids))), nil
}

// mergeState adds partial sums, NULL meaning no value; sums of int64 or
// uint64 inputs with overflow checks, as update adds them.
func (a *sumAcc[T, S]) mergeState(cols []arrow.Array, gids []uint32) {
	c := cols[0]
	vals := values[S](c)[:len(gids)]
	vv := validityOf(c)
	if a.wide {
		a.addWide(any(vals).([]int64), vv, gids)
		return
	}
	sums := a.sums
	if vv.bits == nil && a.seen == nil {
		for i, g := range gids {
			sums[g] += vals[i]
		}
		// Every group has a value (see lazySeen): those created before
		// this call, and those of this call, whose rows are all valid.
		a.covered = len(sums)
		return
	}
	seen := a.flags(len(sums))
	for i, g := range gids {
		if vv.bits == nil || vv.valid(i) {
			sums[g] += vals[i]
			seen[g] = true
		}
	}
}

// ---- avg ----

func (a *avgAcc[T, S]) stateTypes() []arrow.DataType { return []arrow.DataType{a.sumType, i64} }

func (a *avgAcc[T, S]) gatherState(mem memory.Allocator, gids []uint32, out []arrow.Array) ([]arrow.Array, error) {
	sums := make([]S, len(gids))
	counts := make([]int64, len(gids))
	for i, g := range gids {
		p := a.st[g]
		sums[i], counts[i] = p.sum, p.count
	}
	return append(out, fixedArray(mem, a.sumType, sums, nil), fixedArray(mem, i64, counts, nil)), nil
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
			st[g].sum += ps[i]
			st[g].count += pc[i]
		}
	}
}

// ---- min, max ----

// The state of min and max is the extreme itself (NULL: no value), so
// merging is updating with it.

func (a *minMaxAcc[T]) stateTypes() []arrow.DataType { return []arrow.DataType{a.dt} }

func (a *minMaxAcc[T]) gatherState(mem memory.Allocator, gids []uint32, out []arrow.Array) ([]arrow.Array, error) {
	vals, valid := gatherVals(a.vals, gids), a.gatherValidity(gids)
	if a.dt.ID() == arrow.BOOL {
		return append(out, boolArray(mem, any(vals).([]uint8), valid)), nil
	}
	return append(out, fixedArray(mem, a.dt, vals, valid)), nil
}

func (a *minMaxAcc[T]) mergeState(cols []arrow.Array, gids []uint32) { a.update(cols, gids) }

func (a *minMaxString) stateTypes() []arrow.DataType { return []arrow.DataType{a.dt} }

func (a *minMaxString) gatherState(mem memory.Allocator, gids []uint32, out []arrow.Array) ([]arrow.Array, error) {
	total := 0
	for _, g := range gids {
		total += len(a.vals[g])
	}
	arr, err := binaryArray(mem, a.dt, len(gids), func(i int) []byte {
		s := a.vals[gids[i]]
		return unsafe.Slice(unsafe.StringData(s), len(s))
	}, total, gatherVals(a.seen, gids))
	if err != nil {
		return out, err
	}
	return append(out, arr), nil
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

// listArray builds a list array of n rows from its offsets (n+1 of them)
// and child array, taking over child's reference.
func listArray(mem memory.Allocator, dt arrow.DataType, offs []int32, child arrow.Array) arrow.Array {
	ob := memory.NewResizableBuffer(mem)
	ob.Resize(4 * len(offs))
	copy(unsafe.Slice((*int32)(unsafe.Pointer(unsafe.SliceData(ob.Bytes()))), len(offs)), offs)
	d := array.NewData(dt, len(offs)-1, []*memory.Buffer{nil, ob}, []arrow.ArrayData{child.Data()}, 0, 0)
	a := array.MakeFromData(d)
	d.Release()
	ob.Release()
	child.Release()
	return a
}

// listOffsets returns the offsets of a list array, sliced to the array.
func listOffsets(c arrow.Array) ([]int32, arrow.Array) {
	l := c.(*array.List)
	if l.Len() == 0 {
		return nil, l.ListValues()
	}
	return l.Offsets()[l.Data().Offset() : l.Data().Offset()+l.Len()+1], l.ListValues()
}

// sortByGroup orders the elements of a set of (group, element) slots by
// group, a counting sort: afterwards the elements of group g, which has
// counts[g] of them, are byGroup[end[g]-counts[g]:end[g]]. elem returns a
// slot's group id + 1 (0: an empty slot) and element.
func sortByGroup[S, E any](counts []int64, slots []S, elem func(*S) (uint32, E)) (byGroup []E, end []int64) {
	end = make([]int64, len(counts))
	pos := int64(0)
	for g, c := range counts {
		end[g] = pos
		pos += c
	}
	byGroup = make([]E, pos)
	for i := range slots {
		if g1, e := elem(&slots[i]); g1 != 0 {
			byGroup[end[g1-1]] = e
			end[g1-1]++
		}
	}
	return byGroup, end
}

// gatherLists returns the list offsets and the concatenated elements of
// groups gids, from sortByGroup's index.
func gatherLists[E any](counts []int64, byGroup []E, end []int64, gids []uint32) ([]int32, []E, error) {
	offs := make([]int32, len(gids)+1)
	total := int64(0)
	for i, g := range gids {
		total += counts[g]
		if total > math.MaxInt32 {
			return nil, nil, fmt.Errorf("agg: more than 2^31 distinct values in one snapshot batch")
		}
		offs[i+1] = int32(total)
	}
	elems := make([]E, 0, total)
	for _, g := range gids {
		elems = append(elems, byGroup[end[g]-counts[g]:end[g]]...)
	}
	return offs, elems, nil
}

func (a *distinctFixed) stateTypes() []arrow.DataType { return []arrow.DataType{distinctFixedState} }

func (a *distinctFixed) beginSnapshot() {
	a.byGroup, a.end = sortByGroup(a.counts, a.slots, func(sl *distinctSlot) (uint32, uint64) { return sl.g, sl.v })
}

func (a *distinctFixed) endSnapshot() { a.byGroup, a.end = nil, nil }

func (a *distinctFixed) gatherState(mem memory.Allocator, gids []uint32, out []arrow.Array) ([]arrow.Array, error) {
	if a.end == nil {
		a.beginSnapshot()
		defer a.endSnapshot()
	}
	offs, vals, err := gatherLists(a.counts, a.byGroup, a.end, gids)
	if err != nil {
		return out, err
	}
	child := fixedArray(mem, arrow.PrimitiveTypes.Uint64, vals, nil)
	return append(out, listArray(mem, distinctFixedState, offs, child)), nil
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

func (a *distinctString) beginSnapshot() {
	a.byGroup, a.end = sortByGroup(a.counts, a.slots, func(sl *distinctStringSlot) (uint32, uint32) { return sl.g, sl.ref })
}

func (a *distinctString) endSnapshot() { a.byGroup, a.end = nil, nil }

func (a *distinctString) value(ref uint32) []byte { return a.data[a.offs[ref]:a.offs[ref+1]] }

func (a *distinctString) gatherState(mem memory.Allocator, gids []uint32, out []arrow.Array) ([]arrow.Array, error) {
	if a.end == nil {
		a.beginSnapshot()
		defer a.endSnapshot()
	}
	offs, refs, err := gatherLists(a.counts, a.byGroup, a.end, gids)
	if err != nil {
		return out, err
	}
	total := 0
	for _, r := range refs {
		total += a.offs[r+1] - a.offs[r]
	}
	child, err := binaryArray(mem, arrow.BinaryTypes.Binary, len(refs), func(i int) []byte { return a.value(refs[i]) }, total, nil)
	if err != nil {
		return out, err
	}
	return append(out, listArray(mem, distinctStringState, offs, child)), nil
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
