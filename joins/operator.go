package joins

import (
	"container/heap"
	"context"
	"encoding/binary"
	"fmt"
	"math"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/state"
	"github.com/riffle-dev/riffle/windows"
)

// A row in state is hash (8 bytes LE) | event time in ms (8 bytes LE; 0
// for a regular join) | the row encoding (rows.go).
const rowPrefix = 16

func rowHash(v []byte) uint64 { return binary.LittleEndian.Uint64(v) }
func rowTime(v []byte) int64  { return int64(binary.LittleEndian.Uint64(v[8:])) }

// purgeEvery is how many input rows a regular join with a TTL processes
// between two Store.PurgeExpired passes (expired rows are invisible
// before that, only not yet removed).
const purgeEvery = 1 << 20

type operator struct {
	s     *Spec
	p     *plan
	t     *arrowexec.Task
	mem   memory.Allocator
	store state.Store
	lists [2]*state.List[[]byte]
	codec [2]*rowCodec
	wm    int64

	// Per batch scratch.
	ks      state.Keys // keys of the batch's rows
	own     state.Keys // the rows (and windows) stored
	ownVals [][]byte
	gks     state.Keys // distinct keys of the batch
	groups  map[string]int32
	rowGid  []int32
	gexp    []int64 // per group: earliest expiry of its rows (interval)
	stored  [][][]byte
	keyOK   []bool
	ts      []int64
	enc     []byte
	ends    []int
	ns      []byte

	// Output pairs of the current batch or firing: for a probe, the probe
	// row's index and the stored row of the other side; for a window
	// firing, both stored rows and the window.
	probeIdx  []int32
	storedRow [][]byte
	leftRows  [][]byte
	rightRows [][]byte
	winStart  []int64
	winEnd    []int64

	// Late rows of the current batch.
	lateIdx []int32
	lateWin [][2]int64
	lateWhy []string

	// Interval timers: per side, one per key, at the earliest time its
	// oldest row can be dropped.
	timers  [2]timerHeap
	pending [2]map[string]int64
	// Window timers: the keys with rows in each window end.
	wends   int64Heap
	wkeys   map[int64]map[string]uint64
	purgeAt int64
	closed  bool
}

func newOperator(s *Spec, p *plan, t *arrowexec.Task) (*operator, error) {
	o := &operator{s: s, p: p, t: t, mem: t.Mem, wm: arrowexec.MinWatermark, groups: map[string]int32{}, wkeys: map[int64]map[string]uint64{}}
	if o.mem == nil {
		o.mem = memory.DefaultAllocator
	}
	for side := range 2 {
		rc, err := newRowCodec(p.rows[side])
		if err != nil {
			return nil, err
		}
		o.codec[side] = rc
		o.pending[side] = map[string]int64{}
	}
	return o, nil
}

func (o *operator) Open(ctx context.Context) error {
	be := o.s.opts.Backend
	if be == nil {
		be = state.NewMemoryBackend(state.Options{})
	}
	so := state.StoreOptionsFor(o.t)
	st, err := be.Open(ctx, so)
	if err != nil {
		return fmt.Errorf("joins: %s: %w", o.t.Node, err)
	}
	o.store = st
	for side := range 2 {
		l, err := state.NewList(st, state.ListDescriptor[[]byte]{Name: "join/" + sideName(side), Codec: state.Bytes, TTL: o.s.opts.TTL})
		if err != nil {
			return fmt.Errorf("joins: %s: %w", o.t.Node, err)
		}
		o.lists[side] = l
	}
	if rs := o.t.Restore; rs != nil {
		if err := o.restore(ctx, rs); err != nil {
			return fmt.Errorf("joins: %s: %w", o.t.Node, err)
		}
	}
	return nil
}

// Process implements arrowexec.Operator: input 0 is the left side, 1 the
// right.
func (o *operator) Process(ctx context.Context, side int, b arrow.RecordBatch, out arrowexec.Emitter) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	n := int(b.NumRows())
	if n == 0 {
		return nil
	}
	if side != 0 && side != 1 {
		return fmt.Errorf("joins: input %d: a join has inputs 0 (left) and 1 (right)", side)
	}
	var keyCols []arrow.Array
	for _, k := range o.p.keys[side] {
		keyCols = append(keyCols, b.Column(k))
	}
	if err := state.EncodeKeys(keyCols, &o.ks); err != nil {
		return fmt.Errorf("joins: %s input: %w", sideName(side), err)
	}
	// A null key matches nothing (SQL equality): such rows are dropped.
	o.keyOK = grow(o.keyOK, n)
	for i := range o.keyOK {
		o.keyOK[i] = true
	}
	for _, c := range keyCols {
		if c.NullN() == 0 {
			continue
		}
		for i := range o.keyOK {
			if c.IsNull(i) {
				o.keyOK[i] = false
			}
		}
	}
	timed := o.p.time[side] >= 0
	var tcol arrow.Array
	if timed {
		tcol = b.Column(o.p.time[side])
		var err error
		if o.ts, err = arrowexec.EventTimesMillis(tcol, o.ts); err != nil {
			return fmt.Errorf("joins: %s input: %w", sideName(side), err)
		}
	} else {
		o.ts = grow(o.ts, n)
		clear(o.ts)
	}
	o.enc, o.ends = o.codec[side].encode(o.enc[:0], b, rowPrefix, func(dst []byte, i int) {
		binary.LittleEndian.PutUint64(dst, o.ks.Hashes[i])
		binary.LittleEndian.PutUint64(dst[8:], uint64(o.ts[i]))
	}, o.ends)
	o.lateIdx, o.lateWin, o.lateWhy = o.lateIdx[:0], o.lateWin[:0], o.lateWhy[:0]
	o.own.Reset()
	o.ownVals = o.ownVals[:0]
	var err error
	if o.s.opts.Type == Window {
		err = o.assignWindows(side, n, tcol)
	} else {
		err = o.probe(ctx, side, b, tcol, out)
	}
	if err != nil {
		return err
	}
	if o.own.Len() > 0 {
		if err := o.lists[side].AppendMany(&o.own, o.ownVals); err != nil {
			return fmt.Errorf("joins: %s input: %w", sideName(side), err)
		}
	}
	if err := o.flushLate(ctx, side, b, out); err != nil {
		return err
	}
	if o.s.opts.TTL > 0 {
		o.purgeAt += int64(n)
		if o.purgeAt >= purgeEvery {
			o.purgeAt = 0
			if _, err := o.store.PurgeExpired(ctx); err != nil {
				return fmt.Errorf("joins: %w", err)
			}
		}
	}
	return nil
}

// row returns the encoded row i of the current batch (with its prefix).
func (o *operator) row(i int) []byte {
	start := 0
	if i > 0 {
		start = o.ends[i-1]
	}
	return o.enc[start:o.ends[i]]
}

// probe joins the batch's rows of side with the other side's stored rows
// of their keys, emits the pairs and queues the rows for storing.
func (o *operator) probe(ctx context.Context, side int, b arrow.RecordBatch, tcol arrow.Array, out arrowexec.Emitter) error {
	n := int(b.NumRows())
	interval := o.s.opts.Type == Interval
	// Group the rows by key.
	clear(o.groups)
	o.gks.Reset()
	o.gexp = o.gexp[:0]
	o.rowGid = grow(o.rowGid, n)
	for i := 0; i < n; i++ {
		o.rowGid[i] = -1
		if !o.keyOK[i] {
			continue
		}
		if interval {
			if tcol.IsNull(i) {
				o.addLate(i, math.MinInt64, 0, windows.ReasonNoTime)
				continue
			}
			if o.ts[i] <= o.wm {
				o.addLate(i, math.MinInt64, 0, windows.ReasonLate)
				continue
			}
		}
		k := o.ks.Key(i)
		g, ok := o.groups[string(k)]
		if !ok {
			g = int32(o.gks.Len())
			o.groups[string(k)] = g
			o.gks.Append(o.ks.Hashes[i], k, nil)
			o.gexp = append(o.gexp, math.MaxInt64)
		}
		o.rowGid[i] = g
		o.own.Append(o.ks.Hashes[i], k, nil)
		o.ownVals = append(o.ownVals, o.row(i))
		if interval {
			o.gexp[g] = min(o.gexp[g], o.expiry(side, o.ts[i]))
		}
	}
	if o.gks.Len() == 0 {
		return nil
	}
	o.stored = grow(o.stored, o.gks.Len())
	if err := o.lists[1-side].GetMany(&o.gks, o.stored); err != nil {
		return fmt.Errorf("joins: %s input: %w", sideName(side), err)
	}
	o.probeIdx, o.storedRow = o.probeIdx[:0], o.storedRow[:0]
	lo, hi := o.p.lower, o.p.upper
	for i := 0; i < n; i++ {
		g := o.rowGid[i]
		if g < 0 {
			continue
		}
		t := o.ts[i]
		for _, v := range o.stored[g] {
			if interval {
				// d = right.t - left.t
				d := rowTime(v) - t
				if side == 1 {
					d = -d
				}
				if d < lo || d > hi {
					continue
				}
			}
			o.probeIdx = append(o.probeIdx, int32(i))
			o.storedRow = append(o.storedRow, v[rowPrefix:])
			if len(o.probeIdx) >= o.s.opts.BatchSize {
				if err := o.emitProbe(ctx, side, b, out); err != nil {
					return err
				}
			}
		}
	}
	if err := o.emitProbe(ctx, side, b, out); err != nil {
		return err
	}
	if interval {
		for g := range o.gexp {
			o.schedule(side, o.gks.Hashes[g], o.gks.Key(g), o.gexp[g])
		}
	}
	return nil
}

// expiry is the watermark at which a row of side with time t can match
// no row still to come (rows to come have times above the watermark): a
// left row needs right times up to t+upper, a right row left times up to
// t-lower.
func (o *operator) expiry(side int, t int64) int64 {
	if side == 0 {
		return satAdd(t, o.p.upper)
	}
	return satAdd(t, -o.p.lower)
}

func satAdd(a, b int64) int64 {
	s := a + b
	if b > 0 && s < a {
		return math.MaxInt64
	}
	if b < 0 && s > a {
		return math.MinInt64
	}
	return s
}

// emitProbe emits the queued probe pairs.
func (o *operator) emitProbe(ctx context.Context, side int, b arrow.RecordBatch, out arrowexec.Emitter) error {
	if len(o.probeIdx) == 0 {
		return nil
	}
	probe, err := arrowexec.TakeRecord(o.mem, b, o.probeIdx)
	if err != nil {
		return err
	}
	defer probe.Release()
	stored, err := o.codec[1-side].decode(o.mem, o.storedRow)
	if err != nil {
		return err
	}
	defer releaseAll(stored)
	var cols []arrow.Array
	if side == 0 {
		cols = append(append(cols, probe.Columns()...), stored...)
	} else {
		cols = append(append(cols, stored...), probe.Columns()...)
	}
	rec := array.NewRecordBatch(o.p.out, cols, int64(len(o.probeIdx)))
	o.probeIdx, o.storedRow = o.probeIdx[:0], o.storedRow[:0]
	return out.Emit(ctx, rec)
}

func releaseAll(as []arrow.Array) {
	for _, a := range as {
		a.Release()
	}
}

func (o *operator) addLate(row int, start, end int64, why string) {
	o.lateIdx = append(o.lateIdx, int32(row))
	o.lateWin = append(o.lateWin, [2]int64{start, end})
	o.lateWhy = append(o.lateWhy, why)
}

// schedule sets the timer of (side, key) to at, unless an earlier one is
// set.
func (o *operator) schedule(side int, hash uint64, key []byte, at int64) {
	if cur, ok := o.pending[side][string(key)]; ok && cur <= at {
		return
	}
	k := string(key)
	o.pending[side][k] = at
	heap.Push(&o.timers[side], timer{at: at, key: k, hash: hash})
}

// OnWatermark implements arrowexec.WatermarkHandler: an interval join
// drops the rows that can match nothing to come, a window join fires the
// windows that ended.
func (o *operator) OnWatermark(ctx context.Context, wm int64, out arrowexec.Emitter) error {
	if wm <= o.wm {
		return nil
	}
	o.wm = wm
	switch o.s.opts.Type {
	case Interval:
		for side := range 2 {
			if err := o.cleanInterval(side); err != nil {
				return err
			}
		}
	case Window:
		return o.fireWindows(ctx, out)
	}
	return nil
}

// cleanInterval drops the rows of side whose expiry passed.
func (o *operator) cleanInterval(side int) error {
	o.gks.Reset()
	h := &o.timers[side]
	for h.Len() > 0 && (*h)[0].at <= o.wm {
		tm := heap.Pop(h).(timer)
		if cur, ok := o.pending[side][tm.key]; !ok || cur != tm.at {
			continue // superseded by an earlier timer
		}
		delete(o.pending[side], tm.key)
		o.gks.Append(tm.hash, []byte(tm.key), nil)
	}
	if o.gks.Len() == 0 {
		return nil
	}
	o.stored = grow(o.stored, o.gks.Len())
	if err := o.lists[side].GetMany(&o.gks, o.stored); err != nil {
		return fmt.Errorf("joins: clean %s state: %w", sideName(side), err)
	}
	for g, vals := range o.stored {
		kept := vals[:0]
		next := int64(math.MaxInt64)
		for _, v := range vals {
			if e := o.expiry(side, rowTime(v)); e > o.wm {
				kept = append(kept, v)
				next = min(next, e)
			}
		}
		if len(kept) == len(vals) {
			// Nothing due (the timer was set by rows that are gone).
			if len(kept) > 0 {
				o.schedule(side, o.gks.Hashes[g], o.gks.Key(g), next)
			}
			continue
		}
		if err := o.lists[side].Update(o.gks.Hashes[g], o.gks.Key(g), nil, kept); err != nil {
			return fmt.Errorf("joins: clean %s state: %w", sideName(side), err)
		}
		if len(kept) > 0 {
			o.schedule(side, o.gks.Hashes[g], o.gks.Key(g), next)
		}
	}
	return nil
}

// Finish implements arrowexec.Operator. Everything was emitted on the way
// (a window join fires at the final watermark).
func (o *operator) Finish(context.Context, arrowexec.Emitter) error { return nil }

// Close implements arrowexec.Operator.
func (o *operator) Close() error {
	if o.closed {
		return nil
	}
	o.closed = true
	if o.store != nil {
		if err := o.store.Close(); err != nil {
			return fmt.Errorf("joins: %s: %w", o.t.Node, err)
		}
	}
	return nil
}

// flushLate emits the batch's late rows to the side's late output.
func (o *operator) flushLate(ctx context.Context, side int, b arrow.RecordBatch, out arrowexec.Emitter) error {
	if len(o.lateIdx) == 0 {
		return nil
	}
	name := LateLeft
	if side == 1 {
		name = LateRight
	}
	late := arrowexec.Side(out, name)
	if late == nil {
		return nil
	}
	rec, err := windows.LateRecord(o.mem, o.p.late[side], b, o.lateIdx, o.lateWin, o.lateWhy, o.wm)
	if err != nil {
		return err
	}
	return late.Emit(ctx, rec)
}

type timer struct {
	at   int64
	key  string
	hash uint64
}

type timerHeap []timer

func (h timerHeap) Len() int           { return len(h) }
func (h timerHeap) Less(i, j int) bool { return h[i].at < h[j].at }
func (h timerHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *timerHeap) Push(x any)        { *h = append(*h, x.(timer)) }
func (h *timerHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

type int64Heap []int64

func (h int64Heap) Len() int           { return len(h) }
func (h int64Heap) Less(i, j int) bool { return h[i] < h[j] }
func (h int64Heap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *int64Heap) Push(x any)        { *h = append(*h, x.(int64)) }
func (h *int64Heap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

var (
	_ arrowexec.Operator         = (*operator)(nil)
	_ arrowexec.WatermarkHandler = (*operator)(nil)
)
