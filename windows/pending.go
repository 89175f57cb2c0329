package windows

import (
	"sort"
	"sync/atomic"

	"github.com/riffle-dev/riffle/arrowexec"
)

// Pending is what one subtask of a window operator is waiting for: the
// answer to "why has this window not fired yet?" starts here.
type Pending struct {
	Subtask int
	// Watermark is the last watermark the subtask received
	// (arrowexec.MinWatermark before any).
	Watermark int64
	// EarliestEnd is the end of the earliest window waiting to fire
	// (arrowexec.MaxWatermark when none is): it fires once Watermark
	// reaches EarliestEnd-1. For session windows it may be the end of a
	// session that grew or merged into a later one since it was scheduled
	// (until the watermark passes it), so it is never later than the truth.
	EarliestEnd int64
}

// pendingPub is one subtask's Pending, written by its operator and read by
// Spec.Pending from any goroutine.
type pendingPub struct {
	wm, end atomic.Int64
}

// pubFor returns the publication of subtask i, made on first use.
func (s *Spec) pubFor(i int) *pendingPub {
	s.pmu.Lock()
	defer s.pmu.Unlock()
	if s.pend == nil {
		s.pend = map[int]*pendingPub{}
	}
	p := s.pend[i]
	if p == nil {
		p = &pendingPub{}
		s.pend[i] = p
	}
	p.wm.Store(arrowexec.MinWatermark)
	p.end.Store(arrowexec.MaxWatermark)
	return p
}

// Pending returns, for every subtask that has started, its watermark and
// earliest pending window end, ordered by subtask. Safe to call while the
// job runs.
func (s *Spec) Pending() []Pending {
	s.pmu.Lock()
	out := make([]Pending, 0, len(s.pend))
	for i, p := range s.pend {
		out = append(out, Pending{Subtask: i, Watermark: p.wm.Load(), EarliestEnd: p.end.Load()})
	}
	s.pmu.Unlock()
	sort.Slice(out, func(a, b int) bool { return out[a].Subtask < out[b].Subtask })
	return out
}

// notePending records a window ending at end that waits to fire.
func (o *operator) notePending(end int64) {
	if end < o.pub.end.Load() {
		o.pub.end.Store(end)
	}
}

// republishPending recomputes the earliest pending end after a watermark
// fired windows: a scan of the distinct fire times (fixed windows) or of
// the timer queue (sessions), done only when the published one is due.
func (o *operator) republishPending() {
	o.pub.wm.Store(o.wm)
	if o.pub.end.Load()-1 > o.wm {
		return
	}
	end := arrowexec.MaxWatermark
	if o.s.opts.Kind == Session {
		for i := range o.timers.h {
			t := &o.timers.h[i]
			if t.kind != timerFire || t.at+1 >= end || t.dup {
				continue
			}
			if t.ent.cached && findSession(t.ent, t.start, t.end) < 0 {
				continue // merged into another session
			}
			end = t.at + 1
		}
	} else {
		for at := range o.fireAt {
			if at+1 < end {
				end = at + 1
			}
		}
	}
	o.pub.end.Store(end)
}
