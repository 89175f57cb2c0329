package agg

import (
	"fmt"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// A keyStore keeps the values of one key column for every group, columnar
// (group g's key is element g), and compares a bound input batch against
// them with one typed loop per call.
type keyStore interface {
	// bind makes a the current batch column.
	bind(a arrow.Array)
	// appendRows adds one group per listed row of the current batch.
	appendRows(rows []int32)
	// verify sets bad[i] for every row i whose key differs from the key of
	// group gids[i].
	verify(gids []uint32, bad []bool)
	// equal reports whether row i's key equals group g's key.
	equal(i int, g uint32) bool
	// build returns the keys of groups [lo, hi) as an array.
	build(mem memory.Allocator, lo, hi int) (arrow.Array, error)
	// export returns the keys of groups [0, len(dest)), group g at row
	// dest[g] (state.go).
	export(dest []uint32) stateCol
	bytes() int
}

func newKeyStore(dt arrow.DataType) keyStore {
	switch dt.ID() {
	case arrow.INT8, arrow.UINT8:
		return &fixedStore[uint8]{dt: dt}
	case arrow.BOOL:
		return &fixedStore[uint8]{dt: dt, load: boolsAsBytes}
	case arrow.INT16, arrow.UINT16:
		return &fixedStore[uint16]{dt: dt}
	case arrow.INT32, arrow.UINT32, arrow.DATE32:
		return &fixedStore[uint32]{dt: dt}
	case arrow.FLOAT32:
		return &fixedStore[uint32]{dt: dt, load: float32Bits}
	case arrow.INT64, arrow.UINT64, arrow.TIMESTAMP, arrow.DATE64:
		return &fixedStore[uint64]{dt: dt}
	case arrow.FLOAT64:
		return &fixedStore[uint64]{dt: dt, load: float64Bits}
	case arrow.STRING, arrow.BINARY:
		return &stringStore{dt: dt, offs: []int{0}}
	}
	panic(fmt.Sprintf("agg: no key store for %s", dt)) // plan checked the type
}

// fixedStore keeps fixed-width keys as their canonical bits.
type fixedStore[T word] struct {
	dt    arrow.DataType
	keys  []T
	valid []bool // nil while no key is null
	// load canonicalizes a batch column into scratch; nil: use the values
	// buffer as it is.
	load func(a arrow.Array, scratch []T) []T

	vals    []T // current batch
	vv      validity
	scratch []T
}

func (s *fixedStore[T]) bind(a arrow.Array) {
	if s.load == nil {
		s.vals = values[T](a)
	} else {
		s.vals = s.load(a, s.scratch)
		s.scratch = s.vals
	}
	s.vv = validityOf(a)
}

func (s *fixedStore[T]) appendNull() {
	if s.valid == nil {
		s.valid = make([]bool, len(s.keys), cap(s.keys)+1)
		for i := range s.valid {
			s.valid[i] = true
		}
	}
	s.keys = append(s.keys, 0)
	s.valid = append(s.valid, false)
}

func (s *fixedStore[T]) appendRows(rows []int32) {
	for _, r := range rows {
		if s.vv.bits != nil && !s.vv.valid(int(r)) {
			s.appendNull()
			continue
		}
		s.keys = append(s.keys, s.vals[r])
		if s.valid != nil {
			s.valid = append(s.valid, true)
		}
	}
}

func (s *fixedStore[T]) verify(gids []uint32, bad []bool) {
	vals, keys := s.vals[:len(gids)], s.keys
	bad = bad[:len(gids)]
	if s.vv.bits == nil && s.valid == nil {
		for i, g := range gids {
			if keys[g] != vals[i] {
				bad[i] = true
			}
		}
		return
	}
	for i, g := range gids {
		rowValid := s.vv.bits == nil || s.vv.valid(i)
		keyValid := s.valid == nil || s.valid[g]
		if rowValid != keyValid || (rowValid && keys[g] != vals[i]) {
			bad[i] = true
		}
	}
}

func (s *fixedStore[T]) equal(i int, g uint32) bool {
	rowValid := s.vv.bits == nil || s.vv.valid(i)
	keyValid := s.valid == nil || s.valid[g]
	return rowValid == keyValid && (!rowValid || s.keys[g] == s.vals[i])
}

func (s *fixedStore[T]) build(mem memory.Allocator, lo, hi int) (arrow.Array, error) {
	var valid []bool
	if s.valid != nil {
		valid = s.valid[lo:hi]
	}
	if s.dt.ID() == arrow.BOOL {
		return boolArray(mem, any(s.keys[lo:hi]).([]uint8), valid), nil
	}
	return fixedArray(mem, s.dt, s.keys[lo:hi], valid), nil
}

func (s *fixedStore[T]) bytes() int {
	var z T
	return cap(s.keys)*int(unsafe.Sizeof(z)) + cap(s.valid)
}

// stringStore keeps string or binary keys in one byte arena.
type stringStore struct {
	dt    arrow.DataType
	data  []byte
	offs  []int // group g is data[offs[g]:offs[g+1]]
	valid []bool

	boffs []int32 // current batch
	bdata []byte
	vv    validity
}

func (s *stringStore) key(g uint32) []byte { return s.data[s.offs[g]:s.offs[g+1]] }

func (s *stringStore) row(i int) []byte { return s.bdata[s.boffs[i]:s.boffs[i+1]] }

func (s *stringStore) bind(a arrow.Array) {
	s.boffs, s.bdata = binaryView(a)
	s.vv = validityOf(a)
}

func (s *stringStore) appendNull() {
	if s.valid == nil {
		s.valid = make([]bool, len(s.offs)-1, cap(s.offs))
		for i := range s.valid {
			s.valid[i] = true
		}
	}
	s.offs = append(s.offs, len(s.data))
	s.valid = append(s.valid, false)
}

func (s *stringStore) appendValue(b []byte) {
	s.data = append(s.data, b...)
	s.offs = append(s.offs, len(s.data))
	if s.valid != nil {
		s.valid = append(s.valid, true)
	}
}

func (s *stringStore) appendRows(rows []int32) {
	for _, r := range rows {
		if s.vv.bits != nil && !s.vv.valid(int(r)) {
			s.appendNull()
			continue
		}
		s.appendValue(s.row(int(r)))
	}
}

func (s *stringStore) verify(gids []uint32, bad []bool) {
	bad = bad[:len(gids)]
	for i, g := range gids {
		if !s.equal(i, g) {
			bad[i] = true
		}
	}
}

func (s *stringStore) equal(i int, g uint32) bool {
	rowValid := s.vv.bits == nil || s.vv.valid(i)
	keyValid := s.valid == nil || s.valid[g]
	return rowValid == keyValid && (!rowValid || string(s.key(g)) == string(s.row(i)))
}

func (s *stringStore) build(mem memory.Allocator, lo, hi int) (arrow.Array, error) {
	var valid []bool
	if s.valid != nil {
		valid = s.valid[lo:hi]
	}
	return binaryArray(mem, s.dt, hi-lo, func(i int) []byte { return s.key(uint32(lo + i)) },
		s.offs[hi]-s.offs[lo], valid)
}

func (s *stringStore) bytes() int { return cap(s.data) + 8*cap(s.offs) + cap(s.valid) }

func errTooLarge(dt arrow.DataType, n int) error {
	return fmt.Errorf("agg: %d bytes of %s in one output batch exceed the 2 GiB offset limit; lower BatchSize", n, dt)
}

// A grouper assigns a group id to every row of a batch from its key columns
// and their hashes, creating groups for new keys.
type grouper interface {
	group(cols []arrow.Array, hashes []uint64, gids []uint32)
	len() int
	// build appends the key columns of groups [lo, hi) to out.
	build(mem memory.Allocator, lo, hi int, out []arrow.Array) ([]arrow.Array, error)
	// exportKeys returns the key columns of groups [0, len(dest)), group g
	// at row dest[g] (state.go).
	exportKeys(dest []uint32) []stateCol
	// reserve makes room for n groups in all (state.go).
	reserve(n int)
	bytes() int
}

func newGrouper(types []arrow.DataType) grouper {
	if len(types) == 1 {
		switch st := newKeyStore(types[0]).(type) {
		case *fixedStore[uint8]:
			return newFixedGrouper(st)
		case *fixedStore[uint16]:
			return newFixedGrouper(st)
		case *fixedStore[uint32]:
			return newFixedGrouper(st)
		case *fixedStore[uint64]:
			return newFixedGrouper(st)
		case *stringStore:
			return &stringGrouper{tbl: newTable(), st: st, null: -1}
		}
	}
	g := &multiGrouper{tbl: newTable()}
	for _, dt := range types {
		g.stores = append(g.stores, newKeyStore(dt))
	}
	return g
}

// fixedGrouper is the fast path for one fixed-width key column: its own
// open-addressing table whose slots hold the key bits next to the group id,
// so a lookup touches one cache line and compares keys directly. Null keys
// form a group outside the table.
type fixedGrouper[T word] struct {
	slots []fixedSlot[T]
	mask  uint64
	used  int
	st    *fixedStore[T]
	null  int64 // gid of the null group, or -1
}

type fixedSlot[T word] struct {
	key T
	gid uint32 // gid+1; 0: empty
	// hash holds the low 32 bits of the key's hash (the slot position
	// bits of any table below 2^32 slots), to rehash from the slots alone.
	hash uint32
}

func newFixedGrouper[T word](st *fixedStore[T]) *fixedGrouper[T] {
	return &fixedGrouper[T]{slots: make([]fixedSlot[T], minTableSize), mask: minTableSize - 1, st: st, null: -1}
}

func (g *fixedGrouper[T]) len() int { return len(g.st.keys) }

func (g *fixedGrouper[T]) bytes() int {
	var z fixedSlot[T]
	return int(unsafe.Sizeof(z))*len(g.slots) + g.st.bytes()
}

func (g *fixedGrouper[T]) build(mem memory.Allocator, lo, hi int, out []arrow.Array) ([]arrow.Array, error) {
	a, err := g.st.build(mem, lo, hi)
	if err != nil {
		return out, err
	}
	return append(out, a), nil
}

// full reports whether the table must grow before holding n groups: at a
// load of 1/4 while it fits in cache-friendly sizes (short probes, few
// mispredicted branches), 1/2 beyond.
func full(n, size int) bool {
	if size <= 1<<18 {
		return n*4 > size
	}
	return n*2 > size
}

func (g *fixedGrouper[T]) rehash() { g.rehashTo(2 * len(g.slots)) }

func (g *fixedGrouper[T]) rehashTo(n int) {
	slots, mask := make([]fixedSlot[T], n), uint64(n-1)
	for _, sl := range g.slots {
		if sl.gid == 0 {
			continue
		}
		s := uint64(sl.hash) & mask
		for slots[s].gid != 0 {
			s = (s + 1) & mask
		}
		slots[s] = sl
	}
	g.slots, g.mask = slots, mask
}

func (g *fixedGrouper[T]) group(cols []arrow.Array, hashes []uint64, gids []uint32) {
	st := g.st
	st.bind(cols[0])
	vals, vv := st.vals, st.vv
	hashes, gids = hashes[:len(vals)], gids[:len(vals)]
	slots, mask := g.slots, g.mask
	for i, v := range vals {
		if vv.bits != nil && !vv.valid(i) {
			if g.null < 0 {
				g.null = int64(len(st.keys))
				st.appendNull()
			}
			gids[i] = uint32(g.null)
			continue
		}
		h := hashes[i]
		s := h & mask
		for {
			sl := slots[s]
			if sl.key == v && sl.gid != 0 {
				gids[i] = sl.gid - 1
				break
			}
			if sl.gid == 0 {
				gid := uint32(len(st.keys))
				st.keys = append(st.keys, v)
				if st.valid != nil {
					st.valid = append(st.valid, true)
				}
				slots[s] = fixedSlot[T]{key: v, gid: gid + 1, hash: uint32(h)}
				g.used++
				if full(g.used, len(slots)) {
					g.rehash()
					slots, mask = g.slots, g.mask
				}
				gids[i] = gid
				break
			}
			s = (s + 1) & mask
		}
	}
}

// stringGrouper is the fast path for one string or binary key column.
type stringGrouper struct {
	tbl  table
	st   *stringStore
	null int64
}

func (g *stringGrouper) len() int   { return len(g.st.offs) - 1 }
func (g *stringGrouper) bytes() int { return g.tbl.bytes() + g.st.bytes() }

func (g *stringGrouper) build(mem memory.Allocator, lo, hi int, out []arrow.Array) ([]arrow.Array, error) {
	a, err := g.st.build(mem, lo, hi)
	if err != nil {
		return out, err
	}
	return append(out, a), nil
}

func (g *stringGrouper) group(cols []arrow.Array, hashes []uint64, gids []uint32) {
	st, t := g.st, &g.tbl
	st.bind(cols[0])
	n := cols[0].Len()
	boffs, bdata, vv := st.boffs, st.bdata, st.vv
	hashes, gids = hashes[:n], gids[:n]
	entries, mask := t.entries, t.mask
	for i := range gids {
		if vv.bits != nil && !vv.valid(i) {
			if g.null < 0 {
				st.appendNull()
				g.null = int64(t.addAbsent())
			}
			gids[i] = uint32(g.null)
			continue
		}
		row := bdata[boffs[i]:boffs[i+1]]
		h := hashes[i]
		s := h & mask
		for {
			e := entries[s]
			if e == 0 {
				gid := uint32(len(st.offs) - 1)
				st.appendValue(row)
				t.insert(s, h, gid)
				entries, mask = t.entries, t.mask
				gids[i] = gid
				break
			}
			if (e^h)>>32 == 0 {
				if gid := uint32(e) - 1; string(st.data[st.offs[gid]:st.offs[gid+1]]) == string(row) {
					gids[i] = gid
					break
				}
			}
			s = (s + 1) & mask
		}
	}
}

// multiGrouper handles any combination of key columns in three passes: a
// probe loop that matches tags only and creates groups for rows that find
// an empty slot; one typed verify loop per key column; a careful per-row
// probe for the rare rows whose tag matched a different key.
type multiGrouper struct {
	tbl    table
	stores []keyStore
	n      int
	rows   []int32
	bad    []bool
}

func (g *multiGrouper) len() int { return g.n }

func (g *multiGrouper) bytes() int {
	n := g.tbl.bytes()
	for _, s := range g.stores {
		n += s.bytes()
	}
	return n
}

func (g *multiGrouper) build(mem memory.Allocator, lo, hi int, out []arrow.Array) ([]arrow.Array, error) {
	for _, s := range g.stores {
		a, err := s.build(mem, lo, hi)
		if err != nil {
			return out, err
		}
		out = append(out, a)
	}
	return out, nil
}

func (g *multiGrouper) group(cols []arrow.Array, hashes []uint64, gids []uint32) {
	n := len(gids)
	for i, s := range g.stores {
		s.bind(cols[i])
	}
	t := &g.tbl
	entries, mask := t.entries, t.mask
	fresh := g.rows[:0]
	for i, h := range hashes[:n] {
		s := h & mask
		for {
			e := entries[s]
			if e == 0 {
				gid := uint32(g.n)
				g.n++
				t.insert(s, h, gid)
				entries, mask = t.entries, t.mask
				fresh = append(fresh, int32(i))
				gids[i] = gid
				break
			}
			if (e^h)>>32 == 0 {
				gids[i] = uint32(e) - 1
				break
			}
			s = (s + 1) & mask
		}
	}
	for _, s := range g.stores {
		s.appendRows(fresh)
	}
	g.rows = fresh
	bad := grow(g.bad, n)
	g.bad = bad
	clear(bad)
	for _, s := range g.stores {
		s.verify(gids, bad)
	}
	for i, b := range bad {
		if b {
			gids[i] = g.probe(i, hashes[i])
		}
	}
}

// probe finds or creates the group of row i, comparing full keys.
func (g *multiGrouper) probe(i int, h uint64) uint32 {
	t := &g.tbl
	s := h & t.mask
	for {
		e := t.entries[s]
		if e == 0 {
			gid := uint32(g.n)
			g.n++
			t.insert(s, h, gid)
			for _, st := range g.stores {
				st.appendRows([]int32{int32(i)})
			}
			return gid
		}
		if (e^h)>>32 == 0 {
			gid := uint32(e) - 1
			eq := true
			for _, st := range g.stores {
				if !st.equal(i, gid) {
					eq = false
					break
				}
			}
			if eq {
				return gid
			}
		}
		s = (s + 1) & t.mask
	}
}
