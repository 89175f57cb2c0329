package agg

// table maps key hashes to group ids: open addressing with linear probing.
// An entry packs the high 32 bits of the hash (the tag) and gid+1 into one
// word, 0 meaning empty; the low bits of the hash choose the slot, so a tag
// match is a near-certain hash match. Keys themselves live columnar in the
// groupers, which confirm a tag match by comparing keys.
type table struct {
	entries []uint64
	mask    uint64
	used    int
	// hashes holds the hash of every group, by gid, to rehash on growth.
	hashes []uint64
	// skip is a gid that is not in the table (the null group of
	// single-key groupers), or -1.
	skip int64
}

const minTableSize = 256

func newTable() table {
	return table{entries: make([]uint64, minTableSize), mask: minTableSize - 1, skip: -1}
}

func entryOf(h uint64, gid uint32) uint64 { return h&^0xffffffff | uint64(gid+1) }

// insert adds group gid == len(t.hashes) with hash h at slot s, which the
// caller found empty, growing the table when it gets full (see full). After
// insert, callers reload entries and mask.
func (t *table) insert(s uint64, h uint64, gid uint32) {
	if full(t.used+1, len(t.entries)) {
		t.rehash(len(t.entries) * 2)
		s = h & t.mask
		for t.entries[s] != 0 {
			s = (s + 1) & t.mask
		}
	}
	t.entries[s] = entryOf(h, gid)
	t.used++
	t.hashes = append(t.hashes, h)
}

// addAbsent adds a group that is not looked up through the table (the null
// group of a single-key grouper) and returns its gid.
func (t *table) addAbsent() uint32 {
	gid := len(t.hashes)
	t.skip = int64(gid)
	t.hashes = append(t.hashes, 0)
	return uint32(gid)
}

func (t *table) rehash(size int) {
	entries := make([]uint64, size)
	mask := uint64(size - 1)
	for g, h := range t.hashes {
		if int64(g) == t.skip {
			continue
		}
		s := h & mask
		for entries[s] != 0 {
			s = (s + 1) & mask
		}
		entries[s] = entryOf(h, uint32(g))
	}
	t.entries, t.mask = entries, mask
}

// bytes is the memory the table holds.
func (t *table) bytes() int { return 8*len(t.entries) + 8*len(t.hashes) }
