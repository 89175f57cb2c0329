package windows

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"slices"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/state"
)

// Session windows go through a write-back cache of keys in front of the
// store (see doc.go): a key's entry holds all its open sessions, so a
// batch that extends or opens sessions of cached keys touches no store.
// A cached entry is complete: the store holds no session of its key that
// the entry does not (a session whose bounds change or that is merged
// into another is deleted from the store at once, and its count_distinct
// values move with it), so the store is read only for keys missing from
// the cache, and only when it may hold sessions the cache does not
// (operator.stateMaybe: after an eviction or a restore that did not load
// everything).

// sessKey is one key of a session operator: its open sessions in start
// order (disjoint: each starts after the previous one's end).
type sessKey struct {
	hash   uint64
	key    []byte // owned, reused with the entry
	sess   []session
	refs   int32    // timers that reference the entry
	cached bool     // the cache's entry of the key; else evicted or emptied (look the key up again)
	next   *sessKey // next cached key of the same hash
}

// sessCache maps keys to their entries, by key hash (keys of equal hash
// chained).
type sessCache struct{ m map[uint64]*sessKey }

func (c *sessCache) get(hash uint64, key []byte) *sessKey {
	for e := c.m[hash]; e != nil; e = e.next {
		if bytes.Equal(e.key, key) {
			return e
		}
	}
	return nil
}

func (c *sessCache) put(e *sessKey) {
	if c.m == nil {
		c.m = map[uint64]*sessKey{}
	}
	e.next = c.m[e.hash]
	c.m[e.hash] = e
}

func (c *sessCache) del(e *sessKey) {
	p := c.m[e.hash]
	if p == e {
		if e.next == nil {
			delete(c.m, e.hash)
		} else {
			c.m[e.hash] = e.next
		}
	} else {
		for p.next != e {
			p = p.next
		}
		p.next = e.next
	}
	e.next = nil
}

// each calls fn for every entry; fn may free it, not delete it.
func (c *sessCache) each(fn func(*sessKey)) {
	for _, h := range c.m {
		for e := h; e != nil; {
			next := e.next
			fn(e)
			e = next
		}
	}
}

func (c *sessCache) reset() { clear(c.m) }

// session is one open session of a cached key.
type session struct {
	start, end int64
	blob       []byte
	inState    bool // the store holds the session under (start, end)
	dirty      bool // the blob changed since it was last written
}

// sessLocal is a batch-local session: rows order[lo:hi] of one key.
type sessLocal struct {
	kid        uint32
	start, end int64
	lo, hi     int
	cluster    int // index in operator.sclusters, or -1
}

// sessItem is a session of a key or a batch-local one, while merging.
type sessItem struct {
	start, end  int64
	sess, local int // index in the key's sessions or in the locals; -1 for none
}

// sessCluster is a session the batch created or changed.
type sessCluster struct {
	ent     *sessKey
	idx     int  // in ent.sess
	existed bool // with the same bounds before the batch (its timer exists)
}

// sessBlobSize is the size of a fresh session blob.
func (o *operator) sessBlobSize() int { return o.p.blob + o.p.tail }

// sessBlob returns a fresh blob for a key of hash, reusing a freed one.
func (o *operator) sessBlob(hash uint64) []byte {
	var b []byte
	if n := len(o.blobFree); n > 0 {
		b = o.blobFree[n-1][:0]
		o.blobFree[n-1] = nil
		o.blobFree = o.blobFree[:n-1]
	} else {
		size := o.sessBlobSize()
		if len(o.slab)+size > cap(o.slab) {
			o.slab = make([]byte, 0, max(64<<10, size))
		}
		n := len(o.slab)
		b = o.slab[n : n : n+size]
		o.slab = o.slab[:n+size]
	}
	return o.newBlob(b, hash)
}

// freeBlob keeps b for reuse; nothing else may reference it.
func (o *operator) freeBlob(b []byte) {
	if cap(b) >= o.sessBlobSize() {
		o.blobFree = append(o.blobFree, b[:0])
	}
}

// newSessKey returns an empty entry for key, in the cache if cache.
func (o *operator) newSessKey(hash uint64, key []byte, cache bool) *sessKey {
	var e *sessKey
	if n := len(o.skFree); n > 0 {
		e = o.skFree[n-1]
		o.skFree[n-1] = nil
		o.skFree = o.skFree[:n-1]
	} else {
		if len(o.skSlab) == 0 {
			o.skSlab = make([]sessKey, 256)
		}
		e = &o.skSlab[0]
		o.skSlab = o.skSlab[1:]
	}
	if cap(e.key) < len(key) {
		// From a slab: entries are reused, never freed.
		n := max(16, len(key))
		if len(o.strSlab)+n > cap(o.strSlab) {
			o.strSlab = make([]byte, 0, max(64<<10, n))
		}
		k := len(o.strSlab)
		e.key = o.strSlab[k : k : k+n]
		o.strSlab = o.strSlab[:k+n]
	}
	if cap(e.sess) == 0 {
		if len(o.sessSlab) < 2 {
			o.sessSlab = make([]session, 1024)
		}
		e.sess = o.sessSlab[:0:2]
		o.sessSlab = o.sessSlab[2:]
	}
	e.hash, e.key, e.refs, e.cached = hash, append(e.key[:0], key...), 0, cache
	if cache {
		o.skeys.put(e)
	}
	return e
}

// uncache removes e from the cache (its sessions must be gone).
func (o *operator) uncache(e *sessKey) {
	if !e.cached {
		return
	}
	o.skeys.del(e)
	e.cached = false
	if e.refs == 0 {
		o.freeSessKey(e)
	}
}

func (o *operator) freeSessKey(e *sessKey) {
	clear(e.sess)
	e.sess, e.next = e.sess[:0], nil
	o.skFree = append(o.skFree, e)
}

// addSessTimer schedules a timer of session [start, end) of e.
func (o *operator) addSessTimer(at int64, kind timerKind, e *sessKey, start, end int64) {
	e.refs++
	o.timers.add(timer{at: at, kind: kind, ent: e, start: start, end: end})
	if kind == timerFire {
		o.notePending(at + 1)
	}
}

// releaseTimer drops a popped timer's reference to its entry.
func (o *operator) releaseTimer(t *timer) {
	e := t.ent
	t.ent = nil
	if e.refs--; e.refs == 0 && !e.cached {
		o.freeSessKey(e)
	}
}

// scheduleSession adds the timer of a restored session: fire if pending,
// else purge.
func (o *operator) scheduleSession(e *sessKey, s *session) {
	if s.blob[0]&flagPending != 0 {
		o.addSessTimer(s.end-1, timerFire, e, s.start, s.end)
	} else {
		o.addSessTimer(s.end-1+o.p.lateness, timerPurge, e, s.start, s.end)
	}
}

// sessionsOf returns the cache entry of a key, loading the key's sessions
// from the store when it may hold some.
func (o *operator) sessionsOf(hash uint64, key []byte) (*sessKey, error) {
	if e := o.skeys.get(hash, key); e != nil {
		return e, nil
	}
	e := o.newSessKey(hash, key, true)
	if !o.stateMaybe {
		return e, nil
	}
	var derr error
	err := o.acc.Namespaces(hash, key, func(ns []byte, blob []byte) bool {
		start, end, err := state.DecodeWindow(ns)
		if err != nil || len(blob) < blobHeader {
			derr = errCorruptSession(err)
			return false
		}
		// blob is the codec's copy: the session owns it.
		e.sess = append(e.sess, session{start: start, end: end, blob: blob, inState: true})
		return true
	})
	if err == nil {
		err = derr
	}
	if err != nil {
		return nil, err
	}
	o.sessN += len(e.sess)
	sortSessions(e.sess)
	return e, nil
}

func errCorruptSession(err error) error {
	return fmt.Errorf("windows: corrupt session state: %v", err)
}

func sortSessions(s []session) {
	if !slices.IsSortedFunc(s, cmpSession) {
		slices.SortFunc(s, cmpSession)
	}
}

func cmpSession(a, b session) int { return cmpInt(a.start, b.start) }

// findSession returns the index of session [start, end) of e, or -1.
func findSession(e *sessKey, start, end int64) int {
	i, ok := slices.BinarySearchFunc(e.sess, start, func(s session, t int64) int { return cmpInt(s.start, t) })
	if !ok || e.sess[i].end != end {
		return -1
	}
	return i
}

// processSessions handles session windows: rows are grouped by key and
// sorted by event time, merged into batch-local sessions, and those merged
// with the key's cached sessions.
func (o *operator) processSessions(b arrow.RecordBatch, tcol arrow.Array) error {
	n := len(o.ts)
	gap := o.p.gap
	o.tbl.reset(o.lastNG)
	o.kids = grow(o.kids, n)
	order := o.rows[:0]
	nulls := tcol.NullN() > 0
	for i := 0; i < n; i++ {
		if nulls && tcol.IsNull(i) {
			o.addLate(i, math.MinInt64, math.MinInt64, ReasonNoTime)
			continue
		}
		o.kids[i] = o.tbl.find(o.hashes[i], 0, int32(i), &o.rk)
		order = append(order, int32(i))
	}
	o.rows = order
	o.lastNG = o.tbl.len()
	o.sortByKeyTime(order)
	ts, kids := o.ts, o.kids
	locals := o.slocals[:0]
	o.gids = grow(o.gids, len(order))
	for p, r := range order {
		t := ts[r]
		if k := len(locals) - 1; k >= 0 && locals[k].kid == kids[r] && t <= locals[k].end {
			locals[k].end = max(locals[k].end, t+gap)
			locals[k].hi = p + 1
		} else {
			locals = append(locals, sessLocal{kid: kids[r], start: t, end: t + gap, lo: p, hi: p + 1, cluster: -1})
		}
		o.gids[p] = uint32(len(locals) - 1)
	}
	o.slocals = locals
	if len(locals) == 0 {
		return nil
	}
	if err := o.bacc.update(o.p.aggs, b, order, o.gids[:len(order)], len(locals)); err != nil {
		return err
	}
	o.sclusters = o.sclusters[:0]
	for lo := 0; lo < len(locals); {
		kid := locals[lo].kid
		hi := lo + 1
		for hi < len(locals) && locals[hi].kid == kid {
			hi++
		}
		e, err := o.sessionsOf(o.tbl.hash[kid], o.rk.Key(int(o.tbl.rep[kid])))
		if err != nil {
			return err
		}
		if err := o.mergeSessions(e, lo, hi); err != nil {
			return err
		}
		lo = hi
	}
	clusters := o.sclusters
	sess := func(g uint32) *session {
		if c := locals[g].cluster; c >= 0 {
			return &clusters[c].ent.sess[clusters[c].idx]
		}
		return nil
	}
	o.applySketches(func(g uint32) []byte {
		if s := sess(g); s != nil {
			return s.blob
		}
		return nil
	}, func(g uint32, b []byte) { sess(g).blob = b })
	if err := o.applyDistinct(order, func(g uint32) (uint64, []byte, []byte, bool) {
		c := locals[g].cluster
		if c < 0 {
			return 0, nil, nil, false
		}
		e := clusters[c].ent
		s := &e.sess[clusters[c].idx]
		o.nsbuf = state.AppendWindow(o.nsbuf[:0], s.start, s.end)
		return e.hash, e.key, o.nsbuf, true
	}); err != nil {
		return err
	}
	for i := range clusters {
		c := &clusters[i]
		s := &c.ent.sess[c.idx]
		if o.isDue(s.end) {
			if err := o.fireSession(c.ent, s, false); err != nil {
				return err
			}
		} else if !c.existed {
			o.addSessTimer(s.end-1, timerFire, c.ent, s.start, s.end)
		}
	}
	clear(clusters)
	if o.sessN > o.maxCache {
		return o.flushSessions(true)
	}
	return nil
}

// sortByKeyTime sorts rows by (key group id, event time, row): a
// counting sort by group (stable: rows stay ascending), then each group's
// run by time, unless it is in order already (events mostly come in time
// order).
func (o *operator) sortByKeyTime(order []int32) {
	ts, kids := o.ts, o.kids
	cnt := grow(o.kcnt, o.tbl.len()+1)
	clear(cnt)
	for _, r := range order {
		cnt[kids[r]+1]++
	}
	for i := 1; i < len(cnt); i++ {
		cnt[i] += cnt[i-1]
	}
	tmp := grow(o.sortRows, len(order))
	for _, r := range order {
		k := kids[r]
		tmp[cnt[k]] = r
		cnt[k]++
	}
	copy(order, tmp)
	o.kcnt, o.sortRows = cnt, tmp
	for lo := 0; lo < len(order); {
		k := kids[order[lo]]
		hi, sorted := lo+1, true
		for ; hi < len(order) && kids[order[hi]] == k; hi++ {
			sorted = sorted && ts[order[hi-1]] <= ts[order[hi]]
		}
		if !sorted {
			slices.SortFunc(order[lo:hi], func(a, b int32) int {
				if ts[a] != ts[b] {
					return cmpInt(ts[a], ts[b])
				}
				return int(a - b)
			})
		}
		lo = hi
	}
}

// mergeSessions merges the batch-local sessions locals[lo:hi] (one key's)
// with the key's sessions e.sess: sessions that overlap or touch become
// one (its blob is the first one's, when that is a session, else a fresh
// one; the others are folded in, in start order), appended to
// o.sclusters. Rows of a new session already past the allowed lateness
// are late.
func (o *operator) mergeSessions(e *sessKey, lo, hi int) error {
	locals := o.slocals
	ss := e.sess
	items := o.sitems[:0]
	for i, j := 0, lo; i < len(ss) || j < hi; {
		if j == hi || (i < len(ss) && ss[i].start <= locals[j].start) {
			items = append(items, sessItem{start: ss[i].start, end: ss[i].end, sess: i, local: -1})
			i++
		} else {
			items = append(items, sessItem{start: locals[j].start, end: locals[j].end, sess: -1, local: j})
			j++
		}
	}
	o.sitems = items
	out := o.snew[:0]
	for i := 0; i < len(items); {
		j, cs, ce := i+1, items[i].start, items[i].end
		for j < len(items) && items[j].start <= ce {
			ce = max(ce, items[j].end)
			j++
		}
		part := items[i:j]
		i = j
		hasLocal, hasState := false, false
		for _, it := range part {
			hasLocal = hasLocal || it.local >= 0
			hasState = hasState || it.sess >= 0
		}
		if !hasLocal {
			for _, it := range part {
				out = append(out, ss[it.sess])
			}
			continue
		}
		if !hasState && o.isLate(ce) {
			for _, it := range part {
				l := &locals[it.local]
				for p := l.lo; p < l.hi; p++ {
					o.addLate(int(o.rows[p]), cs, ce, ReasonLate)
				}
			}
			continue
		}
		// Folding into the first session's blob gives the bytes folding
		// into a fresh blob would: adding to a zero state is exact.
		ns := session{start: cs, end: ce, dirty: true}
		existed := false
		rest := part
		if first := part[0]; first.sess >= 0 {
			s := &ss[first.sess]
			ns.blob, rest = s.blob, part[1:]
			existed = s.end == ce
			if existed {
				ns.inState = s.inState
			} else if err := o.moveSession(e, s, cs, ce); err != nil {
				return err
			}
		} else {
			ns.blob = o.sessBlob(e.hash)
			o.sessN++
		}
		var err error
		for _, it := range rest {
			if it.local >= 0 {
				locals[it.local].cluster = len(o.sclusters)
				if ns.blob, err = o.bacc.mergeBatch(o.p, ns.blob, uint32(it.local)); err != nil {
					return err
				}
				continue
			}
			s := &ss[it.sess]
			if ns.blob, err = mergeBlob(o.p, ns.blob, s.blob); err != nil {
				return err
			}
			if err := o.moveSession(e, s, cs, ce); err != nil {
				return err
			}
			o.freeBlob(s.blob)
			o.sessN--
		}
		if part[0].local >= 0 {
			locals[part[0].local].cluster = len(o.sclusters)
		}
		ns.blob[0] |= flagPending
		out = append(out, ns)
		o.sclusters = append(o.sclusters, sessCluster{ent: e, idx: len(out) - 1, existed: existed})
	}
	old := len(e.sess)
	e.sess = append(e.sess[:0], out...)
	if len(e.sess) < old {
		clear(e.sess[len(e.sess):old])
	}
	clear(out)
	o.snew = out[:0]
	if len(e.sess) == 0 {
		o.uncache(e)
	}
	return nil
}

// moveSession takes session s of e out of the store under its bounds: its
// value is deleted (the cache holds it) and its count_distinct values
// move to the session [start, end) it becomes part of.
func (o *operator) moveSession(e *sessKey, s *session, start, end int64) error {
	old := state.AppendWindow(o.oldns[:0], s.start, s.end)
	o.oldns = old
	if s.inState {
		if err := o.acc.Delete(e.hash, e.key, old); err != nil {
			return err
		}
		s.inState = false
	}
	for _, m := range o.dist {
		if m == nil {
			continue
		}
		vals, offs := o.mvals[:0], o.moffs[:0]
		if err := m.Iterate(e.hash, e.key, old, func(v []byte, _ struct{}) bool {
			vals = append(vals, v...)
			offs = append(offs, len(vals))
			return true
		}); err != nil {
			return err
		}
		o.mvals, o.moffs = vals, offs
		o.nsbuf = state.AppendWindow(o.nsbuf[:0], start, end)
		for k, off := range offs {
			lo := 0
			if k > 0 {
				lo = offs[k-1]
			}
			if err := m.Put(e.hash, e.key, o.nsbuf, vals[lo:off], struct{}{}); err != nil {
				return err
			}
		}
		if err := m.Clear(e.hash, e.key, old); err != nil {
			return err
		}
	}
	return nil
}

// fireSession emits session s of e and, with lateness, schedules its
// purge.
func (o *operator) fireSession(e *sessKey, s *session, drain bool) error {
	if err := o.fire(e.hash, e.key, s.start, s.end, s.blob, drain); err != nil {
		return err
	}
	s.dirty = true
	if o.p.lateness > 0 {
		o.addSessTimer(s.end-1+o.p.lateness, timerPurge, e, s.start, s.end)
	}
	return nil
}

// onSessionTimer fires or purges the session of t, if it still exists.
func (o *operator) onSessionTimer(t *timer) error {
	e := t.ent
	if !e.cached {
		// Evicted, emptied or a restore's placeholder: the key's current
		// entry, if it has one, else the store's version.
		x := o.skeys.get(e.hash, e.key)
		if x == nil {
			if o.stateMaybe {
				return o.onStoredSession(t)
			}
			return nil
		}
		e = x
	}
	i := findSession(e, t.start, t.end)
	if i < 0 {
		return nil
	}
	s := &e.sess[i]
	drop, drained := t.kind == timerPurge, false
	if s.blob[0]&flagPending != 0 {
		// Without lateness the session goes right after it fired.
		drained = o.p.lateness == 0
		if err := o.fireSession(e, s, drained); err != nil {
			return err
		}
		drop = drop || drained
	}
	if !drop {
		return nil
	}
	if err := o.purge(e.hash, e.key, s.start, s.end, s.inState, drained); err != nil {
		return err
	}
	o.freeBlob(s.blob)
	e.sess = slices.Delete(e.sess, i, i+1)
	o.sessN--
	if len(e.sess) == 0 {
		o.uncache(e)
	}
	return nil
}

// onStoredSession fires or purges the session of t in the store, its key
// not being cached: point reads and writes, no loading of the key (after
// an eviction, most timers are of evicted keys).
func (o *operator) onStoredSession(t *timer) error {
	e := t.ent
	o.nsbuf = state.AppendWindow(o.nsbuf[:0], t.start, t.end)
	blob, ok, err := o.acc.Get(e.hash, e.key, o.nsbuf)
	if err != nil || !ok {
		return err
	}
	drop, drained := t.kind == timerPurge, false
	if blob[0]&flagPending != 0 {
		drained = o.p.lateness == 0 // purged right after it fired
		if err := o.fire(e.hash, e.key, t.start, t.end, blob, drained); err != nil {
			return err
		}
		if o.p.lateness > 0 {
			o.addSessTimer(t.end-1+o.p.lateness, timerPurge, e, t.start, t.end)
		}
		if drop = drop || drained; !drop {
			o.nsbuf = state.AppendWindow(o.nsbuf[:0], t.start, t.end)
			return o.acc.Put(e.hash, e.key, o.nsbuf, blob)
		}
	}
	if !drop {
		return nil
	}
	return o.purge(e.hash, e.key, t.start, t.end, true, drained)
}

// flushSessions writes the dirty sessions of the cache to the store, in
// one call, and with evict empties the cache.
func (o *operator) flushSessions(evict bool) error {
	o.ks.Reset()
	o.blobs = o.blobs[:0]
	o.skeys.each(func(e *sessKey) {
		for i := range e.sess {
			s := &e.sess[i]
			if !s.dirty {
				continue
			}
			o.nsbuf = state.AppendWindow(o.nsbuf[:0], s.start, s.end)
			o.ks.Append(e.hash, e.key, o.nsbuf)
			o.blobs = append(o.blobs, s.blob)
		}
	})
	if len(o.blobs) > 0 {
		if err := o.acc.PutMany(&o.ks, o.blobs); err != nil {
			return err
		}
	}
	clear(o.blobs)
	o.skeys.each(func(e *sessKey) {
		for i := range e.sess {
			s := &e.sess[i]
			if s.dirty {
				s.dirty, s.inState = false, true
			}
			if evict {
				o.freeBlob(s.blob)
			}
		}
		if evict {
			e.cached = false
			if e.refs == 0 {
				o.freeSessKey(e)
			} else {
				clear(e.sess)
				e.sess = e.sess[:0]
			}
		}
	})
	if evict {
		o.skeys.reset()
		o.sessN = 0
		o.stateMaybe = true
	}
	return nil
}

// eachDirtySession calls fn for every dirty cached session with its
// record's cache key (start | end | key, valid during the call) until fn
// returns false.
func (o *operator) eachDirtySession(fn func(hash uint64, ck, blob []byte) bool) {
	stop := false
	o.skeys.each(func(e *sessKey) {
		for i := range e.sess {
			s := &e.sess[i]
			if stop || !s.dirty {
				continue
			}
			o.ckey = binary.BigEndian.AppendUint64(o.ckey[:0], uint64(s.start))
			o.ckey = binary.BigEndian.AppendUint64(o.ckey, uint64(s.end))
			o.ckey = append(o.ckey, e.key...)
			stop = !fn(e.hash, o.ckey, s.blob)
		}
	})
}

// restoreSession loads a session record of a snapshot into the cache,
// dirty, with its timer.
func (o *operator) restoreSession(ck, blob []byte) error {
	if len(ck) < 16 {
		return errCorruptSession(nil)
	}
	start, end := int64(binary.BigEndian.Uint64(ck)), int64(binary.BigEndian.Uint64(ck[8:]))
	key := ck[16:]
	e := o.skeys.get(getU(blob, 1), key)
	if e == nil {
		e = o.newSessKey(getU(blob, 1), key, true)
	}
	var b []byte
	if len(blob) <= o.sessBlobSize() {
		b = append(o.sessBlob(0)[:0], blob...)
	} else {
		b = slices.Clone(blob)
	}
	// inState is set by rebuildSessions if the store holds an older version.
	e.sess = append(e.sess, session{start: start, end: end, blob: b, dirty: true})
	o.sessN++
	o.scheduleSession(e, &e.sess[len(e.sess)-1])
	return nil
}

// rebuildSessions loads the store's sessions after a restore (after the
// snapshot's cached records, which are newer) into the cache as long as
// it has room, and adds their timers. Keys that do not fit get their
// timers on a placeholder entry and stay in the store.
func (o *operator) rebuildSessions() error {
	o.skeys.each(func(e *sessKey) { sortSessions(e.sess) })
	var ph *sessKey // placeholder of the last key left in the store
	all := true
	var derr error
	err := o.acc.Range(func(en state.Entry, blob []byte) bool {
		start, end, err := state.DecodeWindow(en.Namespace)
		if err != nil || len(blob) < blobHeader {
			derr = errCorruptSession(err)
			return false
		}
		e := o.skeys.get(getU(blob, 1), en.Key)
		if e != nil {
			if i := findSession(e, start, end); i >= 0 {
				e.sess[i].inState = true // the record is newer; its timer exists
				return true
			}
		} else if ph == nil || !bytes.Equal(ph.key, en.Key) {
			if o.sessN >= o.maxCache {
				ph = o.newSessKey(getU(blob, 1), en.Key, false)
				all = false
			} else {
				e = o.newSessKey(getU(blob, 1), en.Key, true)
			}
		}
		if e == nil {
			o.scheduleSession(ph, &session{start: start, end: end, blob: blob})
			return true
		}
		// A cached key is complete: its store sessions join its records.
		e.sess = append(e.sess, session{start: start, end: end, blob: blob, inState: true})
		o.sessN++
		o.scheduleSession(e, &e.sess[len(e.sess)-1])
		return true
	})
	if err == nil {
		err = derr
	}
	if err != nil {
		return err
	}
	o.skeys.each(func(e *sessKey) { sortSessions(e.sess) })
	o.stateMaybe = !all
	return nil
}

// sessionStrategy is the strategy of session windows: a key's sessions
// grow and merge as rows arrive, are kept per key in the session cache
// (sessCache) and fired and purged from the timer queue.
type sessionStrategy struct{ o *operator }

func (s sessionStrategy) process(b arrow.RecordBatch, tcol arrow.Array) error {
	return s.o.processSessions(b, tcol)
}

func (s sessionStrategy) onWatermark(ctx context.Context, wm int64, _ arrowexec.Emitter) error {
	o := s.o
	for {
		o.due = o.timers.popDue(wm, o.due[:0])
		if len(o.due) == 0 {
			return nil
		}
		for i := range o.due {
			t := &o.due[i]
			if !t.dup {
				if err := o.onSessionTimer(t); err != nil {
					return err
				}
			}
			o.releaseTimer(t)
		}
		if o.sessN > o.maxCache {
			if err := o.flushSessions(true); err != nil {
				return err
			}
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

func (s sessionStrategy) eachDirty(fn func(hash uint64, ck, blob []byte) bool) {
	s.o.eachDirtySession(fn)
}

func (s sessionStrategy) restoreCached(ck, blob []byte) error { return s.o.restoreSession(ck, blob) }

func (s sessionStrategy) rebuildTimers() error { return s.o.rebuildSessions() }

// inCache: a cached key's sessions are all in the cache.
func (s sessionStrategy) inCache(e state.Entry, blob []byte) bool {
	return s.o.skeys.get(getU(blob, 1), e.Key) != nil
}
