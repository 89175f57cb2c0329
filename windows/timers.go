package windows

import (
	"bytes"
)

// Timers are derived from window state, never stored: after a restore they
// are rebuilt by one pass over the state (a window pending emission fires
// at end-1, an emitted one is purged at end-1+lateness). A timer whose
// window is gone (merged session, purged) does nothing when it fires.
//
// Tumbling and sliding windows keep theirs as buckets of cache entries
// (operator.fireAt, purgeAt). Session timers are one binary heap ordered
// by (time, kind, end, start, key), so the firing order is deterministic;
// equal timers pop one after the other and all but the first are marked
// dup. A timer refers to its key's cache entry (no copy of the key).

type timerKind uint8

const (
	timerFire timerKind = iota
	timerPurge
)

// timer is a timer of a session window; ent (counted in ent.refs until
// the timer is popped and released) gives its key.
type timer struct {
	at         int64
	kind       timerKind
	dup        bool // popped right after an equal timer: skip
	ent        *sessKey
	start, end int64
}

type timerQueue struct {
	h []timer
}

func (q *timerQueue) less(i, j int) bool {
	a, b := &q.h[i], &q.h[j]
	if a.at != b.at {
		return a.at < b.at
	}
	return compareTimers(a, b) < 0
}

// The heap is 4-ary: half the levels of a binary one, and a node's
// children share a cache line or two.

func (q *timerQueue) add(t timer) {
	q.h = append(q.h, t)
	for i := len(q.h) - 1; i > 0; {
		p := (i - 1) / 4
		if !q.less(i, p) {
			break
		}
		q.h[i], q.h[p] = q.h[p], q.h[i]
		i = p
	}
}

// pop removes the first timer.
func (q *timerQueue) pop() timer {
	h := q.h
	t := h[0]
	n := len(h) - 1
	h[0] = h[n]
	h[n] = timer{}
	q.h = h[:n]
	for i := 0; ; {
		c := 4*i + 1
		if c >= n {
			break
		}
		m := c
		for k := c + 1; k < min(c+4, n); k++ {
			if q.less(k, m) {
				m = k
			}
		}
		if !q.less(m, i) {
			break
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
	return t
}

func compareTimers(a, b *timer) int {
	switch {
	case a.kind != b.kind:
		return int(a.kind) - int(b.kind)
	case a.end != b.end:
		return cmpInt(a.end, b.end)
	case a.start != b.start:
		return cmpInt(a.start, b.start)
	}
	return bytes.Compare(a.ent.key, b.ent.key)
}

// popDue removes and appends to dst every timer at or before wm, in
// order; a timer equal to the one before it is marked dup.
func (q *timerQueue) popDue(wm int64, dst []timer) []timer {
	first := len(dst)
	for len(q.h) > 0 && q.h[0].at <= wm {
		t := q.pop()
		if n := len(dst); n > first && dst[n-1].at == t.at && compareTimers(&dst[n-1], &t) == 0 {
			t.dup = true
		}
		dst = append(dst, t)
	}
	return dst
}

func (q *timerQueue) len() int { return len(q.h) }

type int64Heap []int64

func (h int64Heap) Len() int           { return len(h) }
func (h int64Heap) Less(i, j int) bool { return h[i] < h[j] }
func (h int64Heap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *int64Heap) Push(x any)        { *h = append(*h, x.(int64)) }
func (h *int64Heap) Pop() any {
	old := *h
	v := old[len(old)-1]
	*h = old[:len(old)-1]
	return v
}
