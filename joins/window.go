package joins

import (
	"container/heap"
	"context"
	"fmt"
	"math"
	"slices"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/state"
	"github.com/riffle-dev/riffle/windows"
)

// assignWindows queues every row of the batch (side) for the windows it
// falls in (namespace state.AppendWindow(start, end)), sends (row, window)
// pairs whose window already fired to the late output, and sets the
// windows' timers.
func (o *operator) assignWindows(side, n int, tcol arrow.Array) error {
	size, slide := o.p.size, o.p.slide
	for i := 0; i < n; i++ {
		if !o.keyOK[i] {
			continue
		}
		if tcol.IsNull(i) {
			o.addLate(i, math.MinInt64, 0, windows.ReasonNoTime)
			continue
		}
		t := o.ts[i]
		last := t - floorMod(t, slide)
		for start := last; start > t-size; start -= slide {
			end := start + size
			if end-1 <= o.wm {
				o.addLate(i, start, end, windows.ReasonLate)
				continue
			}
			o.ns = state.AppendWindow(o.ns[:0], start, end)
			k := o.ks.Key(i)
			o.own.Append(o.ks.Hashes[i], k, o.ns)
			o.ownVals = append(o.ownVals, o.row(i))
			o.scheduleWindow(end, o.ks.Hashes[i], k)
		}
	}
	return nil
}

func floorMod(a, b int64) int64 {
	m := a % b
	if m < 0 {
		m += b
	}
	return m
}

func (o *operator) scheduleWindow(end int64, hash uint64, key []byte) {
	keys, ok := o.wkeys[end]
	if !ok {
		keys = map[string]uint64{}
		o.wkeys[end] = keys
		heap.Push(&o.wends, end)
	}
	if _, ok := keys[string(key)]; !ok {
		keys[string(key)] = hash
	}
}

// fireWindows joins and drops the windows that ended at the watermark, in
// end order, each window's keys in key order.
func (o *operator) fireWindows(ctx context.Context, out arrowexec.Emitter) error {
	for o.wends.Len() > 0 && o.wends[0]-1 <= o.wm {
		end := heap.Pop(&o.wends).(int64)
		keys := o.wkeys[end]
		delete(o.wkeys, end)
		sorted := make([]string, 0, len(keys))
		for k := range keys {
			sorted = append(sorted, k)
		}
		slices.Sort(sorted)
		start := end - o.p.size
		o.ns = state.AppendWindow(o.ns[:0], start, end)
		o.gks.Reset()
		for _, k := range sorted {
			o.gks.Append(keys[k], []byte(k), o.ns)
		}
		left := make([][][]byte, o.gks.Len())
		right := make([][][]byte, o.gks.Len())
		if err := o.lists[0].GetMany(&o.gks, left); err != nil {
			return fmt.Errorf("joins: fire window: %w", err)
		}
		if err := o.lists[1].GetMany(&o.gks, right); err != nil {
			return fmt.Errorf("joins: fire window: %w", err)
		}
		for g := range left {
			for _, l := range left[g] {
				for _, r := range right[g] {
					o.leftRows = append(o.leftRows, l[rowPrefix:])
					o.rightRows = append(o.rightRows, r[rowPrefix:])
					o.winStart = append(o.winStart, start)
					o.winEnd = append(o.winEnd, end)
					if len(o.leftRows) >= o.s.opts.BatchSize {
						if err := o.emitWindowPairs(ctx, out); err != nil {
							return err
						}
					}
				}
			}
		}
		if err := o.emitWindowPairs(ctx, out); err != nil {
			return err
		}
		for g := 0; g < o.gks.Len(); g++ {
			for side := range 2 {
				if err := o.lists[side].Clear(o.gks.Hashes[g], o.gks.Key(g), o.ns); err != nil {
					return fmt.Errorf("joins: purge window: %w", err)
				}
			}
		}
	}
	return nil
}

// emitWindowPairs emits the queued window pairs.
func (o *operator) emitWindowPairs(ctx context.Context, out arrowexec.Emitter) error {
	if len(o.leftRows) == 0 {
		return nil
	}
	l, err := o.codec[0].decode(o.mem, o.leftRows)
	if err != nil {
		return err
	}
	defer releaseAll(l)
	r, err := o.codec[1].decode(o.mem, o.rightRows)
	if err != nil {
		return err
	}
	defer releaseAll(r)
	sb := array.NewTimestampBuilder(o.mem, windows.WindowTime)
	eb := array.NewTimestampBuilder(o.mem, windows.WindowTime)
	defer sb.Release()
	defer eb.Release()
	sb.AppendValues(timestamps(o.winStart), nil)
	eb.AppendValues(timestamps(o.winEnd), nil)
	w := []arrow.Array{sb.NewArray(), eb.NewArray()}
	defer releaseAll(w)
	cols := append(append(append([]arrow.Array(nil), l...), r...), w...)
	rec := array.NewRecordBatch(o.p.out, cols, int64(len(o.leftRows)))
	o.leftRows, o.rightRows, o.winStart, o.winEnd = o.leftRows[:0], o.rightRows[:0], o.winStart[:0], o.winEnd[:0]
	return out.Emit(ctx, rec)
}

func timestamps(v []int64) []arrow.Timestamp {
	out := make([]arrow.Timestamp, len(v))
	for i, x := range v {
		out[i] = arrow.Timestamp(x)
	}
	return out
}
