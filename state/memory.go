package state

import (
	"bytes"
	"context"
	"sort"
)

// MemoryBackend keeps state in process memory: an ordered index (a skip list
// with a hash index for point lookups) per store. It is meant for small state
// and tests; snapshots are files like Pebble's.
type MemoryBackend struct {
	opts Options
}

// NewMemoryBackend returns a memory backend. The zero Options work.
func NewMemoryBackend(opts Options) *MemoryBackend {
	return &MemoryBackend{opts: *opts.EnsureDefaults()}
}

var _ Backend = (*MemoryBackend)(nil)

// Open creates an empty in-memory store.
func (b *MemoryBackend) Open(ctx context.Context, o StoreOptions) (Store, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	return newStore(b.opts, o, newMemEngine()), nil
}

const memMaxLevel = 24

type mnode struct {
	key  []byte
	val  []byte
	next []*mnode
	// gen is the engine's snapshot generation when val was allocated: a
	// value allocated since the last snapshot is shared with none and can
	// be overwritten in place.
	gen uint64
}

// memEngine is a skip list ordered by key plus a map for point access.
// Deleting a node never clears its next pointers, so a scan standing on a
// node deleted by its callback continues correctly. A snapshot shares the
// value slices: values it shares (allocated before its generation) are
// never modified below their length (set allocates, merge appends).
type memEngine struct {
	head   mnode
	index  map[string]*mnode
	level  int
	rnd    uint64
	gen    uint64 // incremented by every snapshot
	closed bool
}

func newMemEngine() *memEngine {
	e := &memEngine{index: map[string]*mnode{}, level: 1, rnd: 0x2545f4914f6cdd1d}
	e.head.next = make([]*mnode, memMaxLevel)
	return e
}

func (e *memEngine) randomLevel() int {
	// xorshift64; each level with probability 1/4.
	e.rnd ^= e.rnd << 13
	e.rnd ^= e.rnd >> 7
	e.rnd ^= e.rnd << 17
	l, r := 1, e.rnd
	for l < memMaxLevel && r&3 == 0 {
		l++
		r >>= 2
	}
	return l
}

// findGE returns the first node with key >= k, filling update with the last
// node before it on every level.
func (e *memEngine) findGE(k []byte, update *[memMaxLevel]*mnode) *mnode {
	x := &e.head
	for i := e.level - 1; i >= 0; i-- {
		for x.next[i] != nil && bytes.Compare(x.next[i].key, k) < 0 {
			x = x.next[i]
		}
		if update != nil {
			update[i] = x
		}
	}
	return x.next[0]
}

func (e *memEngine) get(k, dst []byte) ([]byte, bool, error) {
	n := e.index[string(k)]
	if n == nil {
		return nil, false, nil
	}
	return n.val, true, nil
}

func (e *memEngine) getMany(flat []byte, offs []int, fn func(i int, v []byte) error) error {
	for i := 0; i+1 < len(offs); i++ {
		if n := e.index[string(flat[offs[i]:offs[i+1]])]; n != nil {
			if err := fn(i, n.val); err != nil {
				return err
			}
		}
	}
	return nil
}

func (e *memEngine) set(k, v []byte) error {
	if n := e.index[string(k)]; n != nil {
		if n.gen == e.gen && cap(n.val) >= len(v) {
			n.val = append(n.val[:0], v...)
		} else {
			n.val = append(make([]byte, 0, len(v)), v...)
			n.gen = e.gen
		}
		return nil
	}
	e.insert(k, append(make([]byte, 0, len(v)), v...))
	return nil
}

func (e *memEngine) insert(k, v []byte) {
	var update [memMaxLevel]*mnode
	e.findGE(k, &update)
	l := e.randomLevel()
	if l > e.level {
		for i := e.level; i < l; i++ {
			update[i] = &e.head
		}
		e.level = l
	}
	n := &mnode{key: bytes.Clone(k), val: v, next: make([]*mnode, l), gen: e.gen}
	for i := 0; i < l; i++ {
		n.next[i] = update[i].next[i]
		update[i].next[i] = n
	}
	e.index[string(n.key)] = n
}

func (e *memEngine) del(k []byte) error {
	n := e.index[string(k)]
	if n == nil {
		return nil
	}
	delete(e.index, string(k))
	var update [memMaxLevel]*mnode
	e.findGE(k, &update)
	for i := 0; i < len(n.next); i++ {
		if update[i].next[i] == n {
			update[i].next[i] = n.next[i]
		}
	}
	return nil
}

func (e *memEngine) merge(k, v []byte) error {
	if n := e.index[string(k)]; n != nil {
		n.val = append(n.val, v...)
		return nil
	}
	e.insert(k, append(make([]byte, 0, len(v)), v...))
	return nil
}

func (e *memEngine) delRange(lo, hi []byte) error {
	var keys [][]byte
	for n := e.findGE(lo, nil); n != nil && (hi == nil || bytes.Compare(n.key, hi) < 0); n = n.next[0] {
		keys = append(keys, n.key)
	}
	for _, k := range keys {
		_ = e.del(k)
	}
	return nil
}

func (e *memEngine) takeRange(lo, hi []byte, fn func(k, v []byte) error) error {
	if err := e.scan(lo, hi, func(k, v []byte) (bool, error) { return true, fn(k, v) }); err != nil {
		return err
	}
	return e.delRange(lo, hi)
}

func (e *memEngine) scan(lo, hi []byte, fn func(k, v []byte) (bool, error)) error {
	for n := e.findGE(lo, nil); n != nil && (hi == nil || bytes.Compare(n.key, hi) < 0); n = n.next[0] {
		more, err := fn(n.key, n.val)
		if err != nil || !more {
			return err
		}
	}
	return nil
}

type memKV struct{ k, v []byte }

type memSnapshot struct{ kvs []memKV }

func (e *memEngine) snapshot() (engineSnapshot, error) {
	e.gen++ // values now shared with the snapshot are copied on write
	s := &memSnapshot{kvs: make([]memKV, 0, len(e.index))}
	for n := e.head.next[0]; n != nil; n = n.next[0] {
		s.kvs = append(s.kvs, memKV{n.key, n.val[:len(n.val):len(n.val)]})
	}
	return s, nil
}

func (s *memSnapshot) scan(lo, hi []byte, fn func(k, v []byte) (bool, error)) error {
	i := sort.Search(len(s.kvs), func(i int) bool { return bytes.Compare(s.kvs[i].k, lo) >= 0 })
	for ; i < len(s.kvs) && (hi == nil || bytes.Compare(s.kvs[i].k, hi) < 0); i++ {
		more, err := fn(s.kvs[i].k, s.kvs[i].v)
		if err != nil || !more {
			return err
		}
	}
	return nil
}

func (s *memSnapshot) close() { s.kvs = nil }

func (e *memEngine) diskBytes() int64 { return 0 }

func (e *memEngine) close() error {
	e.index = nil
	e.head.next = make([]*mnode, memMaxLevel)
	e.closed = true
	return nil
}

// memBatch applies writes immediately: a store is used by one goroutine, so
// nobody can observe a half-applied batch.
type memBatch struct{ e *memEngine }

func (e *memEngine) newBatch() batch            { return memBatch{e} }
func (b memBatch) set(k, v []byte) error        { return b.e.set(k, v) }
func (b memBatch) del(k []byte) error           { return b.e.del(k) }
func (b memBatch) merge(k, v []byte) error      { return b.e.merge(k, v) }
func (b memBatch) delRange(lo, hi []byte) error { return b.e.delRange(lo, hi) }
func (b memBatch) size() int                    { return 0 }
func (b memBatch) commit() error                { return nil }
func (b memBatch) close()                       {}
