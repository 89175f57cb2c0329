package windows

import (
	"encoding/binary"
	"math/bits"
	"unsafe"
)

// cached is a window of a tumbling or sliding operator in the write-back
// cache.
type cached struct {
	tag     uint64 // mixStart(hash, start)
	ck      string // cache key: start | key
	hash    uint64
	blob    []byte
	inState bool // the store holds a version of the window
	dirty   bool // the blob changed since it was last written
	evicted bool // no longer the cache's entry: look ck up again
}

func (e *cached) start() int64 { return int64(binary.BigEndian.Uint64([]byte(e.ck[:8]))) }
func (e *cached) key() []byte  { return unsafe.Slice(unsafe.StringData(e.ck[8:]), len(e.ck)-8) }

// newEntry allocates a cache entry and its blob from slabs.
func (o *operator) newEntry(ck []byte, hash uint64, blob []byte) *cached {
	if len(o.entSlab) == 0 {
		o.entSlab = make([]cached, 1024)
	}
	e := &o.entSlab[0]
	o.entSlab = o.entSlab[1:]
	if blob == nil {
		size := o.p.blob + o.p.tail
		if len(o.slab)+size > cap(o.slab) {
			o.slab = make([]byte, 0, max(64<<10, size))
		}
		blob = o.newBlob(o.slab[len(o.slab):len(o.slab):len(o.slab)+size], hash)
		o.slab = o.slab[:len(o.slab)+size]
	}
	*e = cached{ck: o.slabString(ck), hash: hash, blob: blob}
	e.tag = mixStart(hash, e.start())
	o.cache.put(e)
	return e
}

// slabString copies b into a string slab: one allocation per 64 KiB of
// cache keys instead of one per window. The bytes are never written again.
func (o *operator) slabString(b []byte) string {
	if len(o.strSlab)+len(b) > cap(o.strSlab) {
		o.strSlab = make([]byte, 0, max(64<<10, len(b)))
	}
	n := len(o.strSlab)
	o.strSlab = append(o.strSlab, b...)
	return unsafe.String(&o.strSlab[n], len(b))
}

// slabCopy copies a blob into the slab.
func (o *operator) slabCopy(blob []byte) []byte {
	if len(o.slab)+len(blob) > cap(o.slab) {
		o.slab = make([]byte, 0, max(64<<10, len(blob)))
	}
	n := len(o.slab)
	o.slab = append(o.slab, blob...)
	return o.slab[n:len(o.slab):len(o.slab)]
}

// windowCache maps windows (key, start) to cache entries: an
// open-addressing table (linear probing, at most 3/4 full) of (tag, entry)
// slots, where the tag is the key hash mixed with the start, so a lookup
// hashes one word and compares the key bytes only on a tag match. Entries
// with equal tags take separate slots.
type windowCache struct {
	slots []cslot // len a power of two, or nil
	shift uint    // 64 - log2(len(slots))
	n     int
}

type cslot struct {
	tag uint64
	e   *cached // nil: empty
}

func (c *windowCache) home(tag uint64) int { return int((tag * 0x9e3779b97f4a7c15) >> c.shift) }

func (c *windowCache) get(tag uint64, ck []byte) *cached {
	return c.getS(tag, unsafe.String(unsafe.SliceData(ck), len(ck)))
}

func (c *windowCache) getS(tag uint64, ck string) *cached {
	if c.n == 0 {
		return nil
	}
	mask := len(c.slots) - 1
	for i := c.home(tag); ; i = (i + 1) & mask {
		s := &c.slots[i]
		if s.e == nil {
			return nil
		}
		if s.tag == tag && s.e.ck == ck {
			return s.e
		}
	}
}

func (c *windowCache) put(e *cached) {
	if (c.n+1)*4 > len(c.slots)*3 {
		c.grow()
	}
	mask := len(c.slots) - 1
	i := c.home(e.tag)
	for c.slots[i].e != nil {
		i = (i + 1) & mask
	}
	c.slots[i] = cslot{tag: e.tag, e: e}
	c.n++
}

func (c *windowCache) grow() {
	old := c.slots
	size := max(1024, 2*len(old))
	c.slots = make([]cslot, size)
	c.shift = uint(64 - bits.TrailingZeros(uint(size)))
	mask := size - 1
	for _, s := range old {
		if s.e == nil {
			continue
		}
		i := c.home(s.tag)
		for c.slots[i].e != nil {
			i = (i + 1) & mask
		}
		c.slots[i] = s
	}
}

// del removes e if it is in the cache (backward-shift deletion: the
// entries after it in its probe run move up, so no tombstones).
func (c *windowCache) del(e *cached) {
	if c.n == 0 {
		return
	}
	mask := len(c.slots) - 1
	i := c.home(e.tag)
	for ; c.slots[i].e != e; i = (i + 1) & mask {
		if c.slots[i].e == nil {
			return
		}
	}
	for j := i; ; {
		j = (j + 1) & mask
		s := c.slots[j]
		if s.e == nil {
			break
		}
		// s stays if its home lies cyclically in (i, j].
		if k := c.home(s.tag); (i <= j && i < k && k <= j) || (i > j && (i < k || k <= j)) {
			continue
		}
		c.slots[i] = s
		i = j
	}
	c.slots[i] = cslot{}
	c.n--
}

func (c *windowCache) each(fn func(*cached)) {
	for _, s := range c.slots {
		if s.e != nil {
			fn(s.e)
		}
	}
}

func (c *windowCache) reset() { *c = windowCache{} }

// cacheKey is the cache's key of a window: start (8 bytes) | key.
func cacheKey(dst, key []byte, start int64) []byte {
	dst = binary.BigEndian.AppendUint64(dst[:0], uint64(start))
	return append(dst, key...)
}
