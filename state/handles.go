package state

import (
	"bytes"
	"fmt"
	"time"
)

// ValueDescriptor declares a value state: one T per (key, namespace).
type ValueDescriptor[T any] struct {
	Name  string
	Codec Codec[T]
	// TTL, if positive, expires a value TTL after its last write.
	TTL time.Duration
}

// MapDescriptor declares a map state: a map K -> V per (key, namespace),
// iterated in map key order.
type MapDescriptor[K, V any] struct {
	Name       string
	KeyCodec   KeyCodec[K]
	ValueCodec Codec[V]
	// TTL, if positive, expires a map entry TTL after its last write.
	TTL time.Duration
}

// ListDescriptor declares a list state: a list of T per (key, namespace).
type ListDescriptor[T any] struct {
	Name  string
	Codec Codec[T]
	// TTL, if positive, expires a list element TTL after it was appended.
	TTL time.Duration
}

// handle is what every typed handle shares: the store, the state and
// scratch buffers (handles are used by one goroutine, like the store).
type handle struct {
	s    *store
	info StateInfo
	ttl  bool
	kbuf []byte
	vbuf []byte
	ebuf []byte
	pbuf []byte
	offs []int
}

func newHandle(s Store, name string, kind Kind, ttl time.Duration) (handle, error) {
	if s == nil {
		return handle{}, fmt.Errorf("%w: state %s: nil store", ErrInvalidOptions, name)
	}
	st := s.base()
	info, err := st.declare(name, kind, int64(ttl))
	if err != nil {
		return handle{}, err
	}
	return handle{s: st, info: info, ttl: ttl > 0}, nil
}

// Info describes the state.
func (h *handle) Info() StateInfo { return h.info }

func (h *handle) keyGroup(hash uint64) (int, error) {
	if h.s.closed {
		return 0, ErrClosed
	}
	kg := int(hash % h.s.mp)
	if kg < h.s.lo || kg >= h.s.hi {
		return 0, fmt.Errorf("%w: state %s: key group %d not in [%d, %d)", ErrKeyGroupOutOfRange, h.info.Name, kg, h.s.lo, h.s.hi)
	}
	return kg, nil
}

func (h *handle) wrap(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("state %s: %w", h.info.Name, err)
}

func (h *handle) expireAt() int64 {
	if !h.ttl {
		return 0
	}
	return h.s.now() + int64(h.info.TTL)
}

// entryKey builds the entry key of (hash, key, ns) into h.kbuf.
func (h *handle) entryKey(hash uint64, key, ns []byte) ([]byte, error) {
	kg, err := h.keyGroup(hash)
	if err != nil {
		return nil, err
	}
	h.kbuf = appendEntryKey(h.kbuf[:0], kg, h.info.ID, key, ns)
	return h.kbuf, nil
}

// getLive reads k and strips its expiry; an expired value is deleted
// (lazy cleanup) and reported as missing.
func (h *handle) getLive(k []byte, now int64) ([]byte, bool, error) {
	raw, ok, err := h.s.eng.get(k, h.vbuf[:0])
	if err != nil || !ok {
		return nil, false, err
	}
	if cap(raw) > cap(h.vbuf) {
		// Keep Pebble's grown buffer. (The memory engine returns its own
		// slice and ignores dst, so vbuf is never written through then.)
		h.vbuf = raw[:0]
	}
	payload, live, err := splitValue(h.ttl, raw, now)
	if err != nil {
		return nil, false, err
	}
	if !live {
		return nil, false, h.s.eng.del(k)
	}
	return payload, true, nil
}

// getManyLive looks up n entry keys built by key(i) into one buffer and
// calls fn(i, payload) for every live one; expired ones are deleted in one
// batch afterwards.
func (h *handle) getManyLive(n int, key func(dst []byte, i int) ([]byte, error), fn func(i int, payload []byte) error) error {
	h.kbuf = h.kbuf[:0]
	offs := append(h.offs[:0], 0)
	for i := 0; i < n; i++ {
		var err error
		if h.kbuf, err = key(h.kbuf, i); err != nil {
			return err
		}
		offs = append(offs, len(h.kbuf))
	}
	h.offs = offs
	now := h.s.now()
	var expired []int
	err := h.s.eng.getMany(h.kbuf, offs, func(i int, raw []byte) error {
		payload, live, err := splitValue(h.ttl, raw, now)
		if err != nil {
			return err
		}
		if !live {
			expired = append(expired, i)
			return nil
		}
		return fn(i, payload)
	})
	if err != nil || len(expired) == 0 {
		return h.wrap(err)
	}
	b := h.s.eng.newBatch()
	defer b.close()
	for _, i := range expired {
		if err := b.del(h.kbuf[offs[i]:offs[i+1]]); err != nil {
			return h.wrap(err)
		}
	}
	return h.wrap(b.commit())
}

// scanPrefix walks the entries under prefix. The bounds are private to the
// scan, so fn may use the handle.
func (h *handle) scanPrefix(prefix []byte, fn func(k, v []byte) (bool, error)) error {
	return h.s.eng.scan(prefix, prefixEnd(nil, prefix), fn)
}

// rangeAll walks every entry of the state whose key is in [lo, hi) (nil:
// unbounded), key group by key group. The bounds work on the escaped
// encoding: esc preserves order and no esc(x) is a prefix of another, so
// key >= lo iff entry key >= prefix|esc(lo), and key < hi iff entry key <
// prefix|esc(hi).
func (h *handle) rangeAll(lo, hi []byte, fn func(k, v []byte) (bool, error)) error {
	if h.s.closed {
		return ErrClosed
	}
	if lo != nil && hi != nil && bytes.Compare(lo, hi) >= 0 {
		return nil
	}
	for kg := h.s.lo; kg < h.s.hi; kg++ {
		prefix := appendPrefix(nil, kg, h.info.ID)
		lower, upper := prefix, prefixEnd(nil, prefix)
		if lo != nil {
			lower = appendEscaped(appendPrefix(nil, kg, h.info.ID), lo)
		}
		if hi != nil {
			upper = appendEscaped(appendPrefix(nil, kg, h.info.ID), hi)
		}
		stopped := false
		err := h.s.eng.scan(lower, upper, func(k, v []byte) (bool, error) {
			more, err := fn(k, v)
			stopped = !more
			return more, err
		})
		if err != nil || stopped {
			return err
		}
	}
	return nil
}

func (h *handle) clearPrefix(prefix []byte) error {
	h.ebuf = prefixEnd(h.ebuf[:0], prefix)
	return h.s.eng.delRange(prefix, h.ebuf)
}

// ClearKey deletes the state of a key in every namespace.
func (h *handle) clearKey(hash uint64, key []byte) error {
	kg, err := h.keyGroup(hash)
	if err != nil {
		return err
	}
	h.kbuf = appendPrefix(h.kbuf[:0], kg, h.info.ID)
	h.kbuf = appendEscaped(h.kbuf, key)
	return h.wrap(h.clearPrefix(h.kbuf))
}

// Value is a handle on a value state.
type Value[T any] struct {
	handle
	codec Codec[T]
}

// NewValue declares a value state in s and returns its handle.
func NewValue[T any](s Store, d ValueDescriptor[T]) (*Value[T], error) {
	if d.Codec == nil {
		return nil, fmt.Errorf("%w: state %s: no codec", ErrInvalidOptions, d.Name)
	}
	h, err := newHandle(s, d.Name, KindValue, d.TTL)
	if err != nil {
		return nil, err
	}
	return &Value[T]{handle: h, codec: d.Codec}, nil
}

// Get returns the value of (key, ns); ok is false if there is none.
func (v *Value[T]) Get(hash uint64, key, ns []byte) (val T, ok bool, err error) {
	k, err := v.entryKey(hash, key, ns)
	if err != nil {
		return val, false, err
	}
	payload, ok, err := v.getLive(k, v.s.now())
	if err != nil || !ok {
		return val, false, v.wrap(err)
	}
	val, err = v.codec.Decode(payload)
	return val, err == nil, v.wrap(err)
}

// Put sets the value of (key, ns).
func (v *Value[T]) Put(hash uint64, key, ns []byte, val T) error {
	k, err := v.entryKey(hash, key, ns)
	if err != nil {
		return err
	}
	v.pbuf = v.encode(v.pbuf[:0], v.expireAt(), val)
	return v.wrap(v.s.eng.set(k, v.pbuf))
}

func (v *Value[T]) encode(dst []byte, expireAt int64, val T) []byte {
	if v.ttl {
		dst = appendExpiry(dst, expireAt)
	}
	return v.codec.Append(dst, val)
}

// Delete removes the value of (key, ns).
func (v *Value[T]) Delete(hash uint64, key, ns []byte) error {
	k, err := v.entryKey(hash, key, ns)
	if err != nil {
		return err
	}
	return v.wrap(v.s.eng.del(k))
}

// ClearKey removes the values of key in every namespace.
func (v *Value[T]) ClearKey(hash uint64, key []byte) error { return v.clearKey(hash, key) }

// GetMany looks up every row of ks: out[i] and found[i] receive row i (out
// and found must have ks.Len() elements; out[i] is zero when not found).
func (v *Value[T]) GetMany(ks *Keys, out []T, found []bool) error {
	if err := ks.check(); err != nil {
		return err
	}
	n := ks.Len()
	if len(out) < n || len(found) < n {
		return fmt.Errorf("%w: state %s: GetMany: %d rows, out %d, found %d", ErrInvalidOptions, v.info.Name, n, len(out), len(found))
	}
	var zero T
	for i := 0; i < n; i++ {
		out[i], found[i] = zero, false
	}
	return v.getManyLive(n, func(dst []byte, i int) ([]byte, error) {
		kg, err := v.keyGroup(ks.Hashes[i])
		if err != nil {
			return nil, err
		}
		return appendEntryKey(dst, kg, v.info.ID, ks.Key(i), ks.Namespace(i)), nil
	}, func(i int, payload []byte) (err error) {
		out[i], err = v.codec.Decode(payload)
		found[i] = err == nil
		return err
	})
}

// PutMany sets row i of ks to vals[i], in one write batch.
func (v *Value[T]) PutMany(ks *Keys, vals []T) error {
	if err := ks.check(); err != nil {
		return err
	}
	n := ks.Len()
	if len(vals) < n {
		return fmt.Errorf("%w: state %s: PutMany: %d rows, %d values", ErrInvalidOptions, v.info.Name, n, len(vals))
	}
	exp := v.expireAt()
	b := v.s.eng.newBatch()
	defer b.close()
	for i := 0; i < n; i++ {
		k, err := v.entryKey(ks.Hashes[i], ks.Key(i), ks.Namespace(i))
		if err != nil {
			return err
		}
		v.pbuf = v.encode(v.pbuf[:0], exp, vals[i])
		if err := b.set(k, v.pbuf); err != nil {
			return v.wrap(err)
		}
	}
	return v.wrap(b.commit())
}

// DeleteMany removes every row of ks, in one write batch.
func (v *Value[T]) DeleteMany(ks *Keys) error {
	if err := ks.check(); err != nil {
		return err
	}
	b := v.s.eng.newBatch()
	defer b.close()
	for i := 0; i < ks.Len(); i++ {
		k, err := v.entryKey(ks.Hashes[i], ks.Key(i), ks.Namespace(i))
		if err != nil {
			return err
		}
		if err := b.del(k); err != nil {
			return v.wrap(err)
		}
	}
	return v.wrap(b.commit())
}

// Namespaces calls fn for every namespace of key that has a value, in
// namespace order, until fn returns false. ns is valid during the call.
func (v *Value[T]) Namespaces(hash uint64, key []byte, fn func(ns []byte, val T) bool) error {
	kg, err := v.keyGroup(hash)
	if err != nil {
		return err
	}
	prefix := appendEscaped(appendPrefix(nil, kg, v.info.ID), key)
	now := v.s.now()
	var scratch []byte
	return v.wrap(v.scanPrefix(prefix, func(k, raw []byte) (bool, error) {
		payload, live, err := splitValue(v.ttl, raw, now)
		if err != nil || !live {
			return err == nil, err
		}
		var ns []byte
		scratch, ns, _, err = decodeEscapedAt(scratch, k[len(prefix):])
		if err != nil {
			return false, err
		}
		val, err := v.codec.Decode(payload)
		if err != nil {
			return false, err
		}
		return fn(ns, val), nil
	}))
}

// Range calls fn for every live value of the state in store order (key
// group, key, namespace) until fn returns false.
func (v *Value[T]) Range(fn func(e Entry, val T) bool) error { return v.RangeKeys(nil, nil, fn) }

// RangeKeys is Range restricted to keys in [lo, hi) (nil: unbounded), in
// every key group. With keys that encode a time (Int64.Append), it walks
// timers up to a watermark.
func (v *Value[T]) RangeKeys(lo, hi []byte, fn func(e Entry, val T) bool) error {
	now := v.s.now()
	var scratch []byte
	return v.wrap(v.rangeAll(lo, hi, func(k, raw []byte) (bool, error) {
		payload, live, err := splitValue(v.ttl, raw, now)
		if err != nil || !live {
			return err == nil, err
		}
		var p parsedKey
		p, scratch, err = parseEntryKey(scratch, k)
		if err != nil {
			return false, err
		}
		val, err := v.codec.Decode(payload)
		if err != nil {
			return false, err
		}
		return fn(Entry{KeyGroup: p.kg, Key: p.key, Namespace: p.ns}, val), nil
	}))
}

// decodeEscapedAt decodes one escaped component into scratch and returns
// scratch, the component and the rest.
func decodeEscapedAt(scratch, b []byte) ([]byte, []byte, []byte, error) {
	scratch, rest, err := decodeEscaped(scratch[:0], b)
	return scratch, scratch, rest, err
}

// Map is a handle on a map state.
type Map[K, V any] struct {
	handle
	kc KeyCodec[K]
	vc Codec[V]
}

// NewMap declares a map state in s and returns its handle.
func NewMap[K, V any](s Store, d MapDescriptor[K, V]) (*Map[K, V], error) {
	if d.KeyCodec == nil || d.ValueCodec == nil {
		return nil, fmt.Errorf("%w: state %s: no codec", ErrInvalidOptions, d.Name)
	}
	h, err := newHandle(s, d.Name, KindMap, d.TTL)
	if err != nil {
		return nil, err
	}
	return &Map[K, V]{handle: h, kc: d.KeyCodec, vc: d.ValueCodec}, nil
}

func (m *Map[K, V]) mapKey(hash uint64, key, ns []byte, mk K) ([]byte, error) {
	k, err := m.entryKey(hash, key, ns)
	if err != nil {
		return nil, err
	}
	m.kbuf = m.kc.Append(k, mk)
	return m.kbuf, nil
}

func (m *Map[K, V]) encode(dst []byte, expireAt int64, val V) []byte {
	if m.ttl {
		dst = appendExpiry(dst, expireAt)
	}
	return m.vc.Append(dst, val)
}

// Get returns the value under map key mk of (key, ns).
func (m *Map[K, V]) Get(hash uint64, key, ns []byte, mk K) (val V, ok bool, err error) {
	k, err := m.mapKey(hash, key, ns, mk)
	if err != nil {
		return val, false, err
	}
	payload, ok, err := m.getLive(k, m.s.now())
	if err != nil || !ok {
		return val, false, m.wrap(err)
	}
	val, err = m.vc.Decode(payload)
	return val, err == nil, m.wrap(err)
}

// Put sets map key mk of (key, ns) to val.
func (m *Map[K, V]) Put(hash uint64, key, ns []byte, mk K, val V) error {
	k, err := m.mapKey(hash, key, ns, mk)
	if err != nil {
		return err
	}
	m.pbuf = m.encode(m.pbuf[:0], m.expireAt(), val)
	return m.wrap(m.s.eng.set(k, m.pbuf))
}

// Delete removes map key mk of (key, ns).
func (m *Map[K, V]) Delete(hash uint64, key, ns []byte, mk K) error {
	k, err := m.mapKey(hash, key, ns, mk)
	if err != nil {
		return err
	}
	return m.wrap(m.s.eng.del(k))
}

// Clear removes the whole map of (key, ns).
func (m *Map[K, V]) Clear(hash uint64, key, ns []byte) error {
	k, err := m.entryKey(hash, key, ns)
	if err != nil {
		return err
	}
	return m.wrap(m.clearPrefix(k))
}

// Drain calls fn for every live entry of the map of (key, ns) in map key
// order and then removes the map: Iterate and Clear in one pass.
func (m *Map[K, V]) Drain(hash uint64, key, ns []byte, fn func(mk K, val V)) error {
	k, err := m.entryKey(hash, key, ns)
	if err != nil {
		return err
	}
	// Bounds of their own (fn may use the handle), in one allocation.
	buf := make([]byte, 0, 2*len(k))
	prefix := append(buf, k...)
	hi := prefixEnd(prefix[len(prefix):], prefix)
	now := m.s.now()
	return m.wrap(m.s.eng.takeRange(prefix, hi, func(k, raw []byte) error {
		payload, live, err := splitValue(m.ttl, raw, now)
		if err != nil || !live {
			return err
		}
		mk, err := m.kc.Decode(k[len(prefix):])
		if err != nil {
			return err
		}
		val, err := m.vc.Decode(payload)
		if err != nil {
			return err
		}
		fn(mk, val)
		return nil
	}))
}

// ClearKey removes the maps of key in every namespace.
func (m *Map[K, V]) ClearKey(hash uint64, key []byte) error { return m.clearKey(hash, key) }

// GetMany looks up map key mks[i] of row i of ks.
func (m *Map[K, V]) GetMany(ks *Keys, mks []K, out []V, found []bool) error {
	if err := ks.check(); err != nil {
		return err
	}
	n := ks.Len()
	if len(mks) < n || len(out) < n || len(found) < n {
		return fmt.Errorf("%w: state %s: GetMany: %d rows, %d map keys, out %d, found %d", ErrInvalidOptions, m.info.Name, n, len(mks), len(out), len(found))
	}
	var zero V
	for i := 0; i < n; i++ {
		out[i], found[i] = zero, false
	}
	return m.getManyLive(n, func(dst []byte, i int) ([]byte, error) {
		kg, err := m.keyGroup(ks.Hashes[i])
		if err != nil {
			return nil, err
		}
		dst = appendEntryKey(dst, kg, m.info.ID, ks.Key(i), ks.Namespace(i))
		return m.kc.Append(dst, mks[i]), nil
	}, func(i int, payload []byte) (err error) {
		out[i], err = m.vc.Decode(payload)
		found[i] = err == nil
		return err
	})
}

// PutMany sets map key mks[i] of row i of ks to vals[i], in one batch.
func (m *Map[K, V]) PutMany(ks *Keys, mks []K, vals []V) error {
	if err := ks.check(); err != nil {
		return err
	}
	n := ks.Len()
	if len(mks) < n || len(vals) < n {
		return fmt.Errorf("%w: state %s: PutMany: %d rows, %d map keys, %d values", ErrInvalidOptions, m.info.Name, n, len(mks), len(vals))
	}
	exp := m.expireAt()
	b := m.s.eng.newBatch()
	defer b.close()
	for i := 0; i < n; i++ {
		k, err := m.mapKey(ks.Hashes[i], ks.Key(i), ks.Namespace(i), mks[i])
		if err != nil {
			return err
		}
		m.pbuf = m.encode(m.pbuf[:0], exp, vals[i])
		if err := b.set(k, m.pbuf); err != nil {
			return m.wrap(err)
		}
	}
	return m.wrap(b.commit())
}

// Iterate calls fn for every live entry of the map of (key, ns) in map key
// order until fn returns false.
func (m *Map[K, V]) Iterate(hash uint64, key, ns []byte, fn func(mk K, val V) bool) error {
	k, err := m.entryKey(hash, key, ns)
	if err != nil {
		return err
	}
	prefix := append([]byte(nil), k...)
	now := m.s.now()
	return m.wrap(m.scanPrefix(prefix, func(k, raw []byte) (bool, error) {
		payload, live, err := splitValue(m.ttl, raw, now)
		if err != nil || !live {
			return err == nil, err
		}
		mk, err := m.kc.Decode(k[len(prefix):])
		if err != nil {
			return false, err
		}
		val, err := m.vc.Decode(payload)
		if err != nil {
			return false, err
		}
		return fn(mk, val), nil
	}))
}

// Range calls fn for every live entry of the state in store order (key
// group, key, namespace, map key) until fn returns false.
func (m *Map[K, V]) Range(fn func(e Entry, mk K, val V) bool) error {
	return m.RangeKeys(nil, nil, fn)
}

// RangeKeys is Range restricted to keys in [lo, hi) (nil: unbounded).
func (m *Map[K, V]) RangeKeys(lo, hi []byte, fn func(e Entry, mk K, val V) bool) error {
	now := m.s.now()
	var scratch []byte
	return m.wrap(m.rangeAll(lo, hi, func(k, raw []byte) (bool, error) {
		payload, live, err := splitValue(m.ttl, raw, now)
		if err != nil || !live {
			return err == nil, err
		}
		var p parsedKey
		p, scratch, err = parseEntryKey(scratch, k)
		if err != nil {
			return false, err
		}
		mk, err := m.kc.Decode(p.mapKey)
		if err != nil {
			return false, err
		}
		val, err := m.vc.Decode(payload)
		if err != nil {
			return false, err
		}
		return fn(Entry{KeyGroup: p.kg, Key: p.key, Namespace: p.ns}, mk, val), nil
	}))
}

// List is a handle on a list state.
type List[T any] struct {
	handle
	codec Codec[T]
}

// NewList declares a list state in s and returns its handle.
func NewList[T any](s Store, d ListDescriptor[T]) (*List[T], error) {
	if d.Codec == nil {
		return nil, fmt.Errorf("%w: state %s: no codec", ErrInvalidOptions, d.Name)
	}
	h, err := newHandle(s, d.Name, KindList, d.TTL)
	if err != nil {
		return nil, err
	}
	return &List[T]{handle: h, codec: d.Codec}, nil
}

func (l *List[T]) frame(dst []byte, expireAt int64, val T) []byte {
	l.ebuf = l.codec.Append(l.ebuf[:0], val)
	return appendFrame(dst, l.ttl, expireAt, l.ebuf)
}

// Append adds val at the end of the list of (key, ns), without reading it.
func (l *List[T]) Append(hash uint64, key, ns []byte, val T) error {
	k, err := l.entryKey(hash, key, ns)
	if err != nil {
		return err
	}
	l.pbuf = l.frame(l.pbuf[:0], l.expireAt(), val)
	return l.wrap(l.s.eng.merge(k, l.pbuf))
}

// AppendMany appends vals[i] to the list of row i of ks, in one batch.
func (l *List[T]) AppendMany(ks *Keys, vals []T) error {
	if err := ks.check(); err != nil {
		return err
	}
	n := ks.Len()
	if len(vals) < n {
		return fmt.Errorf("%w: state %s: AppendMany: %d rows, %d values", ErrInvalidOptions, l.info.Name, n, len(vals))
	}
	exp := l.expireAt()
	b := l.s.eng.newBatch()
	defer b.close()
	for i := 0; i < n; i++ {
		k, err := l.entryKey(ks.Hashes[i], ks.Key(i), ks.Namespace(i))
		if err != nil {
			return err
		}
		l.pbuf = l.frame(l.pbuf[:0], exp, vals[i])
		if err := b.merge(k, l.pbuf); err != nil {
			return l.wrap(err)
		}
	}
	return l.wrap(b.commit())
}

// Update replaces the list of (key, ns) with vals (all with a fresh TTL);
// an empty vals deletes it.
func (l *List[T]) Update(hash uint64, key, ns []byte, vals []T) error {
	k, err := l.entryKey(hash, key, ns)
	if err != nil {
		return err
	}
	if len(vals) == 0 {
		return l.wrap(l.s.eng.del(k))
	}
	exp := l.expireAt()
	l.pbuf = l.pbuf[:0]
	for _, v := range vals {
		l.pbuf = l.frame(l.pbuf, exp, v)
	}
	return l.wrap(l.s.eng.set(k, l.pbuf))
}

// Clear removes the list of (key, ns).
func (l *List[T]) Clear(hash uint64, key, ns []byte) error {
	k, err := l.entryKey(hash, key, ns)
	if err != nil {
		return err
	}
	return l.wrap(l.s.eng.del(k))
}

// ClearKey removes the lists of key in every namespace.
func (l *List[T]) ClearKey(hash uint64, key []byte) error { return l.clearKey(hash, key) }

// Get returns the live elements of the list of (key, ns) in append order,
// or nil. Expired elements are dropped from storage as a side effect.
func (l *List[T]) Get(hash uint64, key, ns []byte) ([]T, error) {
	var out []T
	err := l.Iterate(hash, key, ns, func(v T) bool {
		out = append(out, v)
		return true
	})
	return out, err
}

// GetMany reads the lists of every row of ks into out[i] (nil when empty),
// with one engine pass. out must have ks.Len() elements. Unlike Get it does
// not drop expired elements from storage (PurgeExpired does).
func (l *List[T]) GetMany(ks *Keys, out [][]T) error {
	if err := ks.check(); err != nil {
		return err
	}
	n := ks.Len()
	if len(out) < n {
		return fmt.Errorf("%w: state %s: GetMany: %d rows, out %d", ErrInvalidOptions, l.info.Name, n, len(out))
	}
	l.kbuf = l.kbuf[:0]
	offs := append(l.offs[:0], 0)
	for i := 0; i < n; i++ {
		out[i] = nil
		kg, err := l.keyGroup(ks.Hashes[i])
		if err != nil {
			return err
		}
		l.kbuf = appendEntryKey(l.kbuf, kg, l.info.ID, ks.Key(i), ks.Namespace(i))
		offs = append(offs, len(l.kbuf))
	}
	l.offs = offs
	now := l.s.now()
	return l.wrap(l.s.eng.getMany(l.kbuf, offs, func(i int, raw []byte) (err error) {
		out[i], err = l.decodeAll(raw, now)
		return err
	}))
}

// Iterate calls fn for every live element of the list of (key, ns) in
// append order until fn returns false.
func (l *List[T]) Iterate(hash uint64, key, ns []byte, fn func(val T) bool) error {
	k, err := l.entryKey(hash, key, ns)
	if err != nil {
		return err
	}
	raw, ok, err := l.s.eng.get(k, l.vbuf[:0])
	if err != nil || !ok {
		return l.wrap(err)
	}
	if cap(raw) > cap(l.vbuf) {
		l.vbuf = raw[:0]
	}
	now := l.s.now()
	live, expired, err := liveBytes(l.info, raw, now, &l.pbuf)
	if err != nil {
		return l.wrap(err)
	}
	if expired > 0 { // lazy cleanup
		if live == nil {
			err = l.s.eng.del(k)
		} else {
			err = l.s.eng.set(k, live)
		}
		if err != nil {
			return l.wrap(err)
		}
	}
	return l.wrap(l.decodeFrames(live, now, fn))
}

func (l *List[T]) decodeFrames(raw []byte, now int64, fn func(T) bool) error {
	for len(raw) > 0 {
		payload, live, rest, err := nextFrame(l.ttl, raw, now)
		if err != nil {
			return err
		}
		raw = rest
		if !live {
			continue
		}
		v, err := l.codec.Decode(payload)
		if err != nil {
			return err
		}
		if !fn(v) {
			return nil
		}
	}
	return nil
}

func (l *List[T]) decodeAll(raw []byte, now int64) ([]T, error) {
	var out []T
	err := l.decodeFrames(raw, now, func(v T) bool {
		out = append(out, v)
		return true
	})
	return out, err
}

// Namespaces calls fn for every namespace of key with a non-empty list, in
// namespace order, until fn returns false.
func (l *List[T]) Namespaces(hash uint64, key []byte, fn func(ns []byte, vals []T) bool) error {
	kg, err := l.keyGroup(hash)
	if err != nil {
		return err
	}
	prefix := appendEscaped(appendPrefix(nil, kg, l.info.ID), key)
	now := l.s.now()
	var scratch []byte
	return l.wrap(l.scanPrefix(prefix, func(k, raw []byte) (bool, error) {
		vals, err := l.decodeAll(raw, now)
		if err != nil || len(vals) == 0 {
			return err == nil, err
		}
		var ns []byte
		scratch, ns, _, err = decodeEscapedAt(scratch, k[len(prefix):])
		if err != nil {
			return false, err
		}
		return fn(ns, vals), nil
	}))
}

// Range calls fn for every non-empty list of the state in store order (key
// group, key, namespace) until fn returns false.
func (l *List[T]) Range(fn func(e Entry, vals []T) bool) error { return l.RangeKeys(nil, nil, fn) }

// RangeKeys is Range restricted to keys in [lo, hi) (nil: unbounded).
func (l *List[T]) RangeKeys(lo, hi []byte, fn func(e Entry, vals []T) bool) error {
	now := l.s.now()
	var scratch []byte
	return l.wrap(l.rangeAll(lo, hi, func(k, raw []byte) (bool, error) {
		vals, err := l.decodeAll(raw, now)
		if err != nil || len(vals) == 0 {
			return err == nil, err
		}
		var p parsedKey
		p, scratch, err = parseEntryKey(scratch, k)
		if err != nil {
			return false, err
		}
		return fn(Entry{KeyGroup: p.kg, Key: p.key, Namespace: p.ns}, vals), nil
	}))
}
