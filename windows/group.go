package windows

import (
	"bytes"

	"github.com/riffle-dev/riffle/state"
)

// groupTable maps (key, window start) to a dense group id within one batch:
// open addressing with linear probing over slots holding group id + 1.
type groupTable struct {
	slots []uint32
	tags  []uint64 // combined hash per slot, to skip most comparisons
	mask  uint64
	// per group
	hash  []uint64
	start []int64
	rep   []int32 // a row of the group (its key is rk.Key(rep))
}

func mixStart(h uint64, start int64) uint64 {
	x := h ^ (uint64(start) * 0x9e3779b97f4a7c15)
	x ^= x >> 31
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 29
	return x
}

func (t *groupTable) reset(expect int) {
	size := 64
	for size < 2*expect {
		size <<= 1
	}
	if len(t.slots) != size {
		t.slots = make([]uint32, size)
		t.tags = make([]uint64, size)
	} else {
		clear(t.slots)
	}
	t.mask = uint64(size - 1)
	t.hash, t.start, t.rep = t.hash[:0], t.start[:0], t.rep[:0]
}

func (t *groupTable) len() int { return len(t.hash) }

// find returns the group of (h, start, key of row), adding it if new.
func (t *groupTable) find(h uint64, start int64, row int32, rk *state.Keys) uint32 {
	c := mixStart(h, start)
	for i := c & t.mask; ; i = (i + 1) & t.mask {
		s := t.slots[i]
		if s == 0 {
			g := uint32(len(t.hash))
			t.slots[i], t.tags[i] = g+1, c
			t.hash = append(t.hash, h)
			t.start = append(t.start, start)
			t.rep = append(t.rep, row)
			if 2*len(t.hash) > len(t.slots) {
				t.grow()
			}
			return g
		}
		g := s - 1
		if t.tags[i] == c && t.start[g] == start && t.hash[g] == h && bytes.Equal(rk.Key(int(t.rep[g])), rk.Key(int(row))) {
			return g
		}
	}
}

func (t *groupTable) grow() {
	n := len(t.slots) * 2
	slots, tags := make([]uint32, n), make([]uint64, n)
	mask := uint64(n - 1)
	for i, s := range t.slots {
		if s == 0 {
			continue
		}
		c := t.tags[i]
		j := c & mask
		for slots[j] != 0 {
			j = (j + 1) & mask
		}
		slots[j], tags[j] = s, c
	}
	t.slots, t.tags, t.mask = slots, tags, mask
}
