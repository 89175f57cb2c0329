package windows

import (
	"container/heap"
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strings"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/state"
)

// assign fills o.rows/o.starts with one (row, window start) pair per row
// and window, routing pairs later than the allowed lateness to the side
// output. One typed loop over the event times.
func (o *operator) assign(tcol arrow.Array) {
	size, slide := o.p.size, o.p.slide
	lateK := size - 1 + o.p.lateness // window late when start+lateK <= wm
	wm := o.wm
	rows, starts := o.rows[:0], o.starts[:0]
	nulls := tcol.NullN() > 0
	if size == slide {
		for i, t := range o.ts {
			if nulls && tcol.IsNull(i) {
				o.addLate(i, math.MinInt64, math.MinInt64, ReasonNoTime)
				continue
			}
			m := t % size
			if m < 0 {
				m += size
			}
			s := t - m
			if s+lateK <= wm {
				o.addLate(i, s, s+size, ReasonLate)
				continue
			}
			rows = append(rows, int32(i))
			starts = append(starts, s)
		}
	} else {
		for i, t := range o.ts {
			if nulls && tcol.IsNull(i) {
				o.addLate(i, math.MinInt64, math.MinInt64, ReasonNoTime)
				continue
			}
			m := t % slide
			if m < 0 {
				m += slide
			}
			for s := t - m; s > t-size; s -= slide {
				if s+lateK <= wm {
					o.addLate(i, s, s+size, ReasonLate)
					continue
				}
				rows = append(rows, int32(i))
				starts = append(starts, s)
			}
		}
	}
	o.rows, o.starts = rows, starts
}

// processFixed handles tumbling and sliding windows.
func (o *operator) processFixed(b arrow.RecordBatch, tcol arrow.Array) error {
	o.assign(tcol)
	rows, starts := o.rows, o.starts
	o.tbl.reset(o.lastNG)
	o.gids = grow(o.gids, len(rows))
	for p, r := range rows {
		o.gids[p] = o.tbl.find(o.hashes[r], starts[p], r, &o.rk)
	}
	ng := o.tbl.len()
	o.lastNG = ng
	if ng == 0 {
		return nil
	}
	if err := o.bacc.update(o.p.aggs, b, rows, o.gids[:len(rows)], ng); err != nil {
		return err
	}
	size := o.p.size
	// Find each group's window in the cache; look the misses up in the
	// store (when it may hold windows the cache does not), in one call.
	o.ents, o.found = grow(o.ents, ng), grow(o.found, ng)
	o.miss = o.miss[:0]
	for g := 0; g < ng; g++ {
		o.ckey = cacheKey(o.ckey, o.rk.Key(int(o.tbl.rep[g])), o.tbl.start[g])
		e := o.cache.get(mixStart(o.tbl.hash[g], o.tbl.start[g]), o.ckey)
		o.ents[g], o.found[g] = e, e != nil
		if e == nil {
			o.miss = append(o.miss, g)
		}
	}
	if len(o.miss) > 0 {
		if o.stateMaybe {
			o.ks.Reset()
			for _, g := range o.miss {
				o.nsbuf = state.AppendWindow(o.nsbuf[:0], o.tbl.start[g], o.tbl.start[g]+size)
				o.ks.Append(o.tbl.hash[g], o.rk.Key(int(o.tbl.rep[g])), o.nsbuf)
			}
			o.blobs, o.mfound = grow(o.blobs, len(o.miss)), grow(o.mfound, len(o.miss))
			if err := o.acc.GetMany(&o.ks, o.blobs, o.mfound); err != nil {
				return err
			}
		}
		for i, g := range o.miss {
			o.ckey = cacheKey(o.ckey, o.rk.Key(int(o.tbl.rep[g])), o.tbl.start[g])
			var blob []byte
			if o.stateMaybe && o.mfound[i] {
				blob, o.found[g] = o.blobs[i], true
			}
			e := o.newEntry(o.ckey, o.tbl.hash[g], blob)
			e.inState = blob != nil
			o.ents[g] = e
		}
	}
	for g := 0; g < ng; g++ {
		e := o.ents[g]
		var err error
		if e.blob, err = o.bacc.mergeBatch(o.p, e.blob, uint32(g)); err != nil {
			return err
		}
		e.blob[0] |= flagPending
		e.dirty = true
	}
	o.applySketches(func(g uint32) []byte { return o.ents[g].blob }, func(g uint32, b []byte) { o.ents[g].blob = b })
	if err := o.applyDistinct(rows, func(g uint32) (uint64, []byte, []byte, bool) {
		o.nsbuf = state.AppendWindow(o.nsbuf[:0], o.tbl.start[g], o.tbl.start[g]+size)
		return o.tbl.hash[g], o.rk.Key(int(o.tbl.rep[g])), o.nsbuf, true
	}); err != nil {
		return err
	}
	for g := 0; g < ng; g++ {
		start := o.tbl.start[g]
		end := start + size
		key := o.rk.Key(int(o.tbl.rep[g]))
		if o.isDue(end) {
			if err := o.fire(o.tbl.hash[g], key, start, end, o.ents[g].blob, false); err != nil {
				return err
			}
			o.addFixed(end-1+o.p.lateness, o.ents[g], true)
		} else if !o.found[g] {
			o.addFixed(end-1, o.ents[g], false)
		}
	}
	clear(o.ents[:ng])
	if o.cache.n > o.maxCache {
		return o.flush(true)
	}
	return nil
}

// addFixed schedules e's window at time at (fire or purge).
func (o *operator) addFixed(at int64, e *cached, purge bool) {
	m := o.fireAt
	if purge {
		m = o.purgeAt
	} else {
		o.notePending(at + 1)
	}
	b, ok := m[at]
	if !ok {
		if _, other := o.otherAt(at, purge); !other {
			heap.Push(&o.fixedTimes, at)
		}
	}
	m[at] = append(b, e)
	o.fixedN++
}

func (o *operator) otherAt(at int64, purge bool) ([]*cached, bool) {
	if purge {
		b, ok := o.fireAt[at]
		return b, ok
	}
	b, ok := o.purgeAt[at]
	return b, ok
}

// current returns the live entry of e's window: e itself, or after an
// eviction the cache's or the store's version; nil if it is gone.
func (o *operator) current(e *cached) (*cached, error) {
	if !e.evicted {
		return e, nil
	}
	if x := o.cache.getS(e.tag, e.ck); x != nil || !o.stateMaybe {
		return x, nil
	}
	start := e.start()
	o.nsbuf = state.AppendWindow(o.nsbuf[:0], start, start+o.p.size)
	blob, ok, err := o.acc.Get(e.hash, e.key(), o.nsbuf)
	if err != nil || !ok {
		return nil, err
	}
	x := o.newEntry([]byte(e.ck), e.hash, blob)
	x.inState = true
	return x, nil
}

// sortByKey sorts windows by cache key (the emission order). The bytes 8
// to 16 of each key (after the start) are read once into a big-endian
// word; the words are radix sorted (only the bytes that differ), then runs
// of equal words by their whole keys. Same order as sorting by key.
func (o *operator) sortByKey(b []*cached) {
	ks := o.sortKeys[:0]
	var diff uint64
	for _, e := range b {
		var w [8]byte
		copy(w[:], e.ck[min(8, len(e.ck)):])
		k := sortKey{binary.BigEndian.Uint64(w[:]), e}
		ks = append(ks, k)
		diff |= k.w ^ ks[0].w
	}
	tmp := grow(o.sortTmp, len(ks))
	src, dst := ks, tmp
	for shift := 0; shift < 64; shift += 8 {
		if (diff>>shift)&0xff == 0 {
			continue
		}
		var cnt [257]int
		for _, k := range src {
			cnt[(k.w>>shift)&0xff+1]++
		}
		for i := 1; i < len(cnt); i++ {
			cnt[i] += cnt[i-1]
		}
		for _, k := range src {
			d := (k.w >> shift) & 0xff
			dst[cnt[d]] = k
			cnt[d]++
		}
		src, dst = dst, src
	}
	for lo := 0; lo < len(src); {
		hi := lo + 1
		for hi < len(src) && src[hi].w == src[lo].w {
			hi++
		}
		if hi-lo > 1 {
			slices.SortFunc(src[lo:hi], func(x, y sortKey) int { return strings.Compare(x.e.ck, y.e.ck) })
		}
		lo = hi
	}
	for i := range src {
		b[i] = src[i].e
	}
	clear(ks)
	clear(tmp)
	o.sortKeys, o.sortTmp = ks, tmp
}

type sortKey struct {
	w uint64
	e *cached
}

// fixedDue fires and purges the tumbling and sliding windows due at wm.
func (o *operator) fixedDue(ctx context.Context, wm int64, out arrowexec.Emitter) error {
	for len(o.fixedTimes) > 0 && o.fixedTimes[0] <= wm {
		at := heap.Pop(&o.fixedTimes).(int64)
		for _, purge := range []bool{false, true} {
			m := o.fireAt
			if purge {
				m = o.purgeAt
			}
			b := m[at]
			delete(m, at)
			o.fixedN -= len(b)
			o.sortByKey(b)
			for i, e := range b {
				if i > 0 && b[i-1] == e {
					continue
				}
				e, err := o.current(e)
				if err != nil {
					return err
				}
				if e == nil {
					continue
				}
				start := e.start()
				end := start + o.p.size
				drop, drained := purge, false
				if e.blob[0]&flagPending != 0 {
					// Without lateness the window goes right after it fired.
					drained = o.p.lateness == 0
					if err := o.fire(e.hash, e.key(), start, end, e.blob, drained); err != nil {
						return err
					}
					e.dirty = true
					if drained {
						drop = true
					} else if !purge {
						o.addFixed(end-1+o.p.lateness, e, true)
					}
				}
				if drop {
					o.cache.del(e)
					e.evicted = true
					if err := o.purge(e.hash, e.key(), start, end, e.inState, drained); err != nil {
						return err
					}
				}
			}
			clear(b)
		}
		// Emit as we go: a watermark jump that fires millions of
		// windows keeps one batch of results, not all of them.
		if len(o.pend) >= o.s.opts.BatchSize {
			if err := o.emit(ctx, out); err != nil {
				return err
			}
		}
	}
	return nil
}

// flush writes the dirty windows of the cache to the store, in one call,
// and with evict empties the cache.
func (o *operator) flush(evict bool) error {
	o.ks.Reset()
	o.blobs = o.blobs[:0]
	var ents []*cached
	o.cache.each(func(e *cached) {
		if !e.dirty {
			return
		}
		start := e.start()
		o.nsbuf = state.AppendWindow(o.nsbuf[:0], start, start+o.p.size)
		o.ks.Append(e.hash, e.key(), o.nsbuf)
		o.blobs = append(o.blobs, e.blob)
		ents = append(ents, e)
	})

	if len(ents) > 0 {
		if err := o.acc.PutMany(&o.ks, o.blobs); err != nil {
			return err
		}
	}
	for _, e := range ents {
		e.dirty, e.inState = false, true
	}
	clear(o.blobs)
	if evict {
		o.cache.each(func(e *cached) { e.evicted = true })
		o.cache.reset()
		o.stateMaybe = true
	}
	return nil
}

// fixedStrategy is the strategy of tumbling and sliding windows: each row
// falls into windows of fixed size and slide, kept in the write-back cache
// (cache.go) and fired and purged from timer buckets (fireAt, purgeAt).
type fixedStrategy struct{ o *operator }

func (f fixedStrategy) process(b arrow.RecordBatch, tcol arrow.Array) error {
	return f.o.processFixed(b, tcol)
}

func (f fixedStrategy) onWatermark(ctx context.Context, wm int64, out arrowexec.Emitter) error {
	return f.o.fixedDue(ctx, wm, out)
}

func (f fixedStrategy) inCache(e state.Entry, blob []byte) bool {
	o := f.o
	start, _, _ := state.DecodeWindow(e.Namespace)
	o.ckey = cacheKey(o.ckey, e.Key, start)
	return o.cache.get(mixStart(getU(blob, 1), start), o.ckey) != nil
}

// eachDirty calls fn for every dirty window of the write-back cache (the
// windows the store does not hold in their current version) with its
// record's cache key, until fn returns false. Tumbling and sliding
// windows: start | key; sessions: start | end | key.
func (f fixedStrategy) eachDirty(fn func(hash uint64, ck, blob []byte) bool) {
	o := f.o
	for _, sl := range o.cache.slots {
		if e := sl.e; e != nil && e.dirty && !fn(e.hash, unsafe.Slice(unsafe.StringData(e.ck), len(e.ck)), e.blob) {
			return
		}
	}
}

// restoreCached enters a cached window record and schedules its timer.
func (f fixedStrategy) restoreCached(ck, blob []byte) error {
	o := f.o
	e := o.newEntry(ck, getU(blob, 1), o.slabCopy(blob))
	e.inState, e.dirty = true, true // the store may hold an older version
	o.schedule(e)
	return nil
}

// rebuildTimers derives every timer from the windows in state.
func (f fixedStrategy) rebuildTimers() error {
	o := f.o
	var derr error
	err := o.acc.Range(func(e state.Entry, blob []byte) bool {
		start, end, err := state.DecodeWindow(e.Namespace)
		if err != nil || len(blob) < blobHeader {
			derr = fmt.Errorf("windows: restore: corrupt window state: %v", err)
			return false
		}
		h := getU(blob, 1)
		pending := blob[0]&flagPending != 0
		o.ckey = cacheKey(o.ckey, e.Key, start)
		if o.cache.get(mixStart(h, start), o.ckey) != nil {
			return true // restored from the cache records: newer
		}
		// A placeholder entry: current() loads the window when due.
		ph := &cached{tag: mixStart(h, start), ck: string(o.ckey), hash: h, evicted: true}
		if pending {
			o.addFixed(end-1, ph, false)
		} else {
			o.addFixed(end-1+o.p.lateness, ph, true)
		}
		return true
	})
	if err != nil {
		return err
	}
	return derr
}
