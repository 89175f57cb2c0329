package windows

import (
	"bytes"
	"container/heap"
)

// Timers are derived from window state, never stored: after a restore they
// are rebuilt by one pass over the state (a window pending emission fires
// at end-1, an emitted one is purged at end-1+lateness). A timer whose
// window is gone (merged session, purged) does nothing when it fires.

type timerKind uint8

const (
	timerFire timerKind = iota
	timerPurge
)

type timer struct {
	at         int64
	kind       timerKind
	hash       uint64
	key        string
	start, end int64
}

type timerID struct {
	kind       timerKind
	key        string
	start, end int64
}

// timerQueue orders timers by time, then window end, start and key, so
// firing order is deterministic.
type timerQueue struct {
	h   timerHeap
	set map[timerID]struct{}
}

func (q *timerQueue) add(t timer) {
	if q.set == nil {
		q.set = map[timerID]struct{}{}
	}
	id := timerID{t.kind, t.key, t.start, t.end}
	if _, ok := q.set[id]; ok {
		return
	}
	q.set[id] = struct{}{}
	heap.Push(&q.h, t)
}

// popDue removes and returns every timer at or before wm.
func (q *timerQueue) popDue(wm int64, dst []timer) []timer {
	for len(q.h) > 0 && q.h[0].at <= wm {
		t := heap.Pop(&q.h).(timer)
		delete(q.set, timerID{t.kind, t.key, t.start, t.end})
		dst = append(dst, t)
	}
	return dst
}

func (q *timerQueue) len() int { return len(q.h) }

type timerHeap []timer

func (h timerHeap) Len() int { return len(h) }
func (h timerHeap) Less(i, j int) bool {
	a, b := &h[i], &h[j]
	if a.at != b.at {
		return a.at < b.at
	}
	if a.kind != b.kind {
		return a.kind < b.kind
	}
	if a.end != b.end {
		return a.end < b.end
	}
	if a.start != b.start {
		return a.start < b.start
	}
	return bytes.Compare([]byte(a.key), []byte(b.key)) < 0
}
func (h timerHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *timerHeap) Push(x any)   { *h = append(*h, x.(timer)) }
func (h *timerHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	*h = old[:len(old)-1]
	return t
}
