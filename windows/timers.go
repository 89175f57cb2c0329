package windows

import (
	"container/heap"
	"slices"
	"strings"
)

// Timers are derived from window state, never stored: after a restore they
// are rebuilt by one pass over the state (a window pending emission fires
// at end-1, an emitted one is purged at end-1+lateness). A timer whose
// window is gone (merged session, purged) does nothing when it fires.
//
// Many windows share a firing time (every key's window [s, e) fires at
// e-1), so timers are kept in buckets per time, with a heap of the distinct
// times only. A bucket is sorted when it fires (kind, end, start, key), so
// the firing order is deterministic, and duplicates are dropped then.

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

type timerQueue struct {
	times   int64Heap
	buckets map[int64][]timer
	n       int
}

func (q *timerQueue) add(t timer) {
	if q.buckets == nil {
		q.buckets = map[int64][]timer{}
	}
	b, ok := q.buckets[t.at]
	if !ok {
		heap.Push(&q.times, t.at)
	}
	q.buckets[t.at] = append(b, t)
	q.n++
}

func compareTimers(a, b timer) int {
	switch {
	case a.kind != b.kind:
		return int(a.kind) - int(b.kind)
	case a.end != b.end:
		return cmpInt(a.end, b.end)
	case a.start != b.start:
		return cmpInt(a.start, b.start)
	}
	return strings.Compare(a.key, b.key)
}

// popDue removes and returns every timer at or before wm, in order.
func (q *timerQueue) popDue(wm int64, dst []timer) []timer {
	for len(q.times) > 0 && q.times[0] <= wm {
		at := heap.Pop(&q.times).(int64)
		b := q.buckets[at]
		delete(q.buckets, at)
		q.n -= len(b)
		slices.SortFunc(b, compareTimers)
		for i, t := range b {
			if i > 0 && compareTimers(b[i-1], t) == 0 {
				continue
			}
			dst = append(dst, t)
		}
	}
	return dst
}

func (q *timerQueue) len() int { return q.n }

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
