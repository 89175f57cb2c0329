package windows

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"sync/atomic"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/arrowexec/agg"
	"github.com/riffle-dev/riffle/state"
)

type emptyCodec struct{}

func (emptyCodec) Append(dst []byte, _ struct{}) []byte { return dst }
func (emptyCodec) Decode([]byte) (struct{}, error)      { return struct{}{}, nil }

// operator is one subtask of a window aggregate.
type operator struct {
	s   *Spec
	p   *plan
	t   *arrowexec.Task
	mem memory.Allocator
	win strategy // fixed or session windows

	store  state.Store
	acc    *state.Value[[]byte]
	dist   []*state.Map[[]byte, struct{}] // by aggregate index; nil for others
	wm     int64
	timers timerQueue

	lateRows []int32
	lateWin  [][2]int64 // window of each late row; {MinInt64, MinInt64} for none
	lateWhy  []string

	// per batch scratch
	ts       []int64
	hashes   []uint64
	rk       state.Keys
	rows     []int32
	starts   []int64
	gids     []uint32
	kids     []uint32
	tbl      groupTable
	lastNG   int
	bacc     batchAcc
	ks       state.Keys
	dks      state.Keys
	mks      [][]byte
	empties  []struct{}
	blobs    [][]byte
	found    []bool
	nsbuf    []byte
	due      []timer
	pend     []outRow
	arena    []byte
	keyCols  []arrow.Array
	distinct []int64
	closed   bool
	// pubCached and pubDisk publish cache occupancy (after every batch
	// and watermark) and the state's disk bytes (at every snapshot) for
	// ReportMetrics.
	pubCached, pubDisk atomic.Int64

	// lateHook, if set, sees every late batch (tests).
	lateHook func(arrow.RecordBatch)

	// pub publishes the watermark and earliest pending window (pending.go).
	pub *pendingPub

	nFired, nUpdates, nPurged int64
	sketchEnts                []uint64
	sketchRun                 []uint32

	// Timers of tumbling and sliding windows: cached windows bucketed by
	// firing and purge time, with a heap of the distinct times.
	fireAt, purgeAt map[int64][]*cached
	fixedTimes      int64Heap
	fixedN          int
	slab            []byte
	strSlab         []byte // backs the cache keys (slabString)
	sortKeys        []sortKey
	sortTmp         []sortKey
	entSlab         []cached

	// Write-back cache of tumbling and sliding windows (see doc.go).
	cache      windowCache
	maxCache   int
	maxPar     int  // key groups of the store
	stateMaybe bool // the store may hold windows the cache does not
	ents       []*cached
	miss       []int
	mfound     []bool
	ckey       []byte

	// Write-back cache of session windows (see session.go): keys with
	// their open sessions, sessN sessions in all.
	skeys     sessCache
	sessN     int
	skSlab    []sessKey
	sessSlab  []session
	skFree    []*sessKey
	blobFree  [][]byte
	slocals   []sessLocal
	sitems    []sessItem
	snew      []session
	sclusters []sessCluster
	oldns     []byte
	mvals     []byte
	moffs     []int
	kcnt      []int32
	sortRows  []int32
}

// outRow is one window result waiting to be emitted.
type outRow struct {
	koff, klen, blen int32 // key and blob in operator.arena
	start, end       int64
	distinct         []int64
	update           bool
}

var (
	_ arrowexec.Operator         = (*operator)(nil)
	_ arrowexec.WatermarkHandler = (*operator)(nil)
	_ arrowexec.Checkpointer     = (*operator)(nil)
)

func newOperator(s *Spec, p *plan, t *arrowexec.Task) *operator {
	mem := t.Mem
	if mem == nil {
		mem = memory.DefaultAllocator
	}
	o := &operator{s: s, p: p, t: t, mem: mem, wm: arrowexec.MinWatermark, maxCache: s.opts.CacheWindows,
		fireAt: map[int64][]*cached{}, purgeAt: map[int64][]*cached{}}
	if o.maxCache == 0 {
		o.maxCache = DefaultCacheWindows
		if _, mem := s.opts.Backend.(*state.MemoryBackend); mem || s.opts.Backend == nil {
			// The store is memory too: evicting saves nothing.
			o.maxCache = math.MaxInt
		}
	}
	o.win = newStrategy(o)
	o.pub = s.pubFor(t.Subtask)
	o.bacc.init(p.aggs)
	o.distinct = make([]int64, len(p.aggs))
	return o
}

func (o *operator) Open(ctx context.Context) error {
	be := o.s.opts.Backend
	if be == nil {
		be = state.NewMemoryBackend(state.Options{})
	}
	so := state.StoreOptionsFor(o.t)
	if so.MaxParallelism == 0 {
		so.MaxParallelism = arrowexec.DefaultMaxParallelism
		so.KeyGroupLo, so.KeyGroupHi = arrowexec.KeyGroupRange(so.MaxParallelism, max(o.t.Parallelism, 1), o.t.Subtask)
	}
	st, err := be.Open(ctx, so)
	if err != nil {
		return fmt.Errorf("windows: %w", err)
	}
	o.store, o.maxPar = st, so.MaxParallelism
	if o.acc, err = state.NewValue(st, state.ValueDescriptor[[]byte]{Name: "window/acc", Codec: state.Bytes}); err != nil {
		return err
	}
	o.dist = make([]*state.Map[[]byte, struct{}], len(o.p.aggs))
	for i, a := range o.p.aggs {
		if a.Func == CountDistinct {
			o.dist[i], err = state.NewMap(st, state.MapDescriptor[[]byte, struct{}]{
				Name: fmt.Sprintf("window/distinct/%d", i), KeyCodec: state.Bytes, ValueCodec: emptyCodec{}})
			if err != nil {
				return err
			}
		}
	}
	if o.t.Restore != nil {
		if err := o.restore(ctx, o.t.Restore); err != nil {
			return err
		}
	}
	return nil
}

// Watermark returns the last watermark the operator saw.
func (o *operator) Watermark() int64 { return o.wm }

func (o *operator) isDue(end int64) bool { return end-1 <= o.wm }

func (o *operator) isLate(end int64) bool { return end-1+o.p.lateness <= o.wm }

func (o *operator) addLate(row int, start, end int64, why string) {
	o.lateRows = append(o.lateRows, int32(row))
	o.lateWin = append(o.lateWin, [2]int64{start, end})
	o.lateWhy = append(o.lateWhy, why)
}

func (o *operator) Process(ctx context.Context, _ int, b arrow.RecordBatch, out arrowexec.Emitter) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	n := int(b.NumRows())
	if n == 0 {
		return nil
	}
	o.s.stats.rows.Add(int64(n))
	tcol := b.Column(o.p.time)
	var err error
	if o.ts, err = arrowexec.EventTimesMillis(tcol, o.ts); err != nil {
		return err
	}
	o.keyCols = o.keyCols[:0]
	for _, k := range o.p.keys {
		o.keyCols = append(o.keyCols, b.Column(k))
	}
	o.hashes = grow(o.hashes, n)
	if err := arrowexec.HashColumns(o.keyCols, o.hashes); err != nil {
		return err
	}
	if err := state.EncodeKeyValues(o.keyCols, n, &o.rk); err != nil {
		return err
	}
	o.lateRows, o.lateWin, o.lateWhy = o.lateRows[:0], o.lateWin[:0], o.lateWhy[:0]
	if err := o.win.process(b, tcol); err != nil {
		return err
	}
	if err := o.flushLate(ctx, b, arrowexec.Side(out, LateOutput)); err != nil {
		return err
	}
	o.pubCached.Store(int64(o.cache.n + o.sessN))
	return o.emit(ctx, out)
}

// newBlob appends a fresh window blob (fixed part, empty sketch and
// string regions) to dst.
func (o *operator) newBlob(dst []byte, hash uint64) []byte {
	dst = append(dst, make([]byte, o.p.blob)...)
	binary.LittleEndian.PutUint64(dst[len(dst)-o.p.blob+1:], hash)
	for _, appendEmpty := range o.p.regions {
		dst = appendEmpty(dst)
	}
	for i := 0; i < o.p.strs; i++ {
		dst = append(dst, 0, 0, 0, 0)
	}
	return dst
}

// openWindows counts the windows in state and cache (tests, metrics).
func (o *operator) openWindows() int {
	n := o.cache.n + o.sessN
	o.acc.Range(func(e state.Entry, blob []byte) bool {
		if !o.win.inCache(e, blob) {
			n++
		}
		return true
	})
	return n
}

// applySketches folds the batch's median and quantile values into their
// sketches (applyQuantiles) and its approx_distinct hashes into the blobs'
// sketch regions: the (group, register, rank) entries of the batch are
// sorted once, then each group's run is merged into its region. blobOf
// returns a group's blob (nil: skip), setBlob stores it back when the
// region grew.
func (o *operator) applySketches(blobOf func(g uint32) []byte, setBlob func(g uint32, b []byte)) {
	o.applyQuantiles(blobOf, setBlob)
	for i, a := range o.p.aggs {
		if a.Func != ApproxDistinct {
			continue
		}
		hh := o.bacc.hh[i]
		ents := o.sketchEnts[:0]
		for j, g := range o.bacc.hg[i] {
			ents = append(ents, agg.SketchEntry(g, hh[j]))
		}
		o.sketchEnts = ents
		o.sketchRun = agg.SketchRuns(ents, o.sketchRun, func(g uint32, run []uint32) {
			blob := blobOf(g)
			if blob == nil {
				return
			}
			off, n := findRegion(blob, o.p.blob, a.hidx)
			r := agg.SketchUpdate(blob[off:off+n], run)
			if &r[0] != &blob[off] || len(r) != n {
				setBlob(g, spliceRegion(blob, off, n, r))
			}
		})
	}
}

// applyDistinct writes the batch's count_distinct values into map state;
// where(g) gives the state coordinates of group g (ok false: skip).
func (o *operator) applyDistinct(rows []int32, where func(g uint32) (hash uint64, key, ns []byte, ok bool)) error {
	for i, a := range o.p.aggs {
		if a.Func != CountDistinct {
			continue
		}
		o.dks.Reset()
		o.mks = o.mks[:0]
		seen := map[string]struct{}{}
		var kb []byte
		dk := &o.bacc.dk[i]
		for p, g := range o.bacc.dg[i] {
			if g == math.MaxUint32 {
				continue
			}
			v := dk.Key(int(rows[p]))
			kb = binary.LittleEndian.AppendUint32(kb[:0], g)
			kb = append(kb, v...)
			if _, ok := seen[string(kb)]; ok {
				continue
			}
			seen[string(kb)] = struct{}{}
			h, key, ns, ok := where(g)
			if !ok {
				continue
			}
			o.dks.Append(h, key, ns)
			o.mks = append(o.mks, v)
		}
		o.empties = grow(o.empties, len(o.mks))
		if err := o.dist[i].PutMany(&o.dks, o.mks, o.empties); err != nil {
			return err
		}
	}
	return nil
}

// fire queues the result of a window for emission and marks it emitted
// in blob (the caller writes blob back). Windows are kept until end-1 +
// lateness, when a purge timer removes them. With drain, the caller purges
// the window right after: its count_distinct values are read and removed
// in one pass (purge is then told so).
func (o *operator) fire(hash uint64, key []byte, start, end int64, blob []byte, drain bool) error {
	// Key and blob are copied into one arena per emission.
	off := len(o.arena)
	o.arena = append(append(o.arena, key...), blob...)
	r := outRow{koff: int32(off), klen: int32(len(key)), blen: int32(len(blob)), start: start, end: end, update: blob[0]&flagEmitted != 0}
	if err := o.countDistinct(hash, key, start, end, &r, drain); err != nil {
		return err
	}
	o.pend = append(o.pend, r)
	if r.update {
		o.nUpdates++
	} else {
		o.nFired++
	}
	blob[0] = flagEmitted
	return nil
}

// publishStats adds the subtask's counts to the Spec's counters (once per
// call into the operator, not per window).
func (o *operator) publishStats() {
	if o.nFired != 0 {
		o.s.stats.fired.Add(o.nFired)
	}
	if o.nUpdates != 0 {
		o.s.stats.updates.Add(o.nUpdates)
	}
	if o.nPurged != 0 {
		o.s.stats.purged.Add(o.nPurged)
	}
	o.nFired, o.nUpdates, o.nPurged = 0, 0, 0
}

func (o *operator) countDistinct(hash uint64, key []byte, start, end int64, r *outRow, drain bool) error {
	for i, m := range o.dist {
		if m == nil {
			continue
		}
		if r.distinct == nil {
			r.distinct = make([]int64, len(o.dist))
		}
		o.nsbuf = state.AppendWindow(o.nsbuf[:0], start, end)
		ns := o.nsbuf
		var c int64
		var err error
		if drain {
			err = m.Drain(hash, key, ns, func([]byte, struct{}) { c++ })
		} else {
			err = m.Iterate(hash, key, ns, func([]byte, struct{}) bool { c++; return true })
		}
		if err != nil {
			return err
		}
		r.distinct[i] = c
	}
	return nil
}

// purge removes the state of a window; drained says fire already removed
// its count_distinct values.
func (o *operator) purge(hash uint64, key []byte, start, end int64, inState, drained bool) error {
	o.nsbuf = state.AppendWindow(o.nsbuf[:0], start, end)
	ns := o.nsbuf
	if inState {
		if err := o.acc.Delete(hash, key, ns); err != nil {
			return err
		}
	}
	for _, m := range o.dist {
		if m != nil && !drained {
			if err := m.Clear(hash, key, ns); err != nil {
				return err
			}
		}
	}
	o.nPurged++
	return nil
}

// OnWatermark fires every window whose end-1 the watermark reached and
// purges every window whose end-1+lateness it reached.
func (o *operator) OnWatermark(ctx context.Context, wm int64, out arrowexec.Emitter) error {
	if wm <= o.wm {
		return nil
	}
	o.wm = wm
	if err := o.win.onWatermark(ctx, wm, out); err != nil {
		return err
	}
	o.pubCached.Store(int64(o.cache.n + o.sessN))
	o.republishPending()
	return o.emit(ctx, out)
}

func (o *operator) Finish(ctx context.Context, out arrowexec.Emitter) error {
	return o.emit(ctx, out)
}

func (o *operator) Close() error {
	if o.closed {
		return nil
	}
	o.closed = true
	if o.store != nil {
		return o.store.Close()
	}
	return nil
}

// emit sends the pending results, in batches of at most BatchSize rows.
func (o *operator) emit(ctx context.Context, out arrowexec.Emitter) error {
	o.publishStats()
	for lo := 0; lo < len(o.pend); {
		hi := min(len(o.pend), lo+o.s.opts.BatchSize)
		rec, err := o.build(o.pend[lo:hi])
		if err != nil {
			return err
		}
		lo = hi
		if err := out.Emit(ctx, rec); err != nil {
			return err
		}
	}
	clear(o.pend)
	o.pend, o.arena = o.pend[:0], o.arena[:0]
	return nil
}

func (o *operator) build(rows []outRow) (arrow.RecordBatch, error) {
	keys := make([][]byte, len(rows))
	for i, r := range rows {
		keys[i] = o.arena[r.koff : r.koff+r.klen]
	}
	cols, err := state.DecodeKeys(o.mem, o.p.keyTypes, keys)
	if err != nil {
		return nil, err
	}
	sb := array.NewTimestampBuilder(o.mem, WindowTime)
	eb := array.NewTimestampBuilder(o.mem, WindowTime)
	ub := array.NewBooleanBuilder(o.mem)
	defer sb.Release()
	defer eb.Release()
	defer ub.Release()
	ob := newOutBuilders(o.mem, o.p, len(rows))
	for i := range rows {
		r := &rows[i]
		sb.Append(arrow.Timestamp(r.start))
		eb.Append(arrow.Timestamp(r.end))
		ub.Append(r.update)
		ob.append(o.p.aggs, o.arena[r.koff+r.klen:r.koff+r.klen+r.blen], r.distinct)
	}
	cols = append(cols, sb.NewArray(), eb.NewArray())
	cols = append(cols, ob.finish()...)
	cols = append(cols, ub.NewArray())
	rec := array.NewRecordBatch(o.p.out, cols, int64(len(rows)))
	releaseAll(cols)
	return rec, nil
}

// flushLate emits the batch's late rows to the side output late (nil: no
// edge reads it).
func (o *operator) flushLate(ctx context.Context, b arrow.RecordBatch, late arrowexec.Emitter) error {
	if len(o.lateRows) == 0 {
		return nil
	}
	o.s.stats.late.Add(int64(len(o.lateRows)))
	if late == nil && o.lateHook == nil {
		return nil
	}
	lr, err := LateRecord(o.mem, o.p.late, b, o.lateRows, o.lateWin, o.lateWhy, o.wm)
	if err != nil {
		return err
	}
	if o.lateHook != nil {
		o.lateHook(lr)
	}
	if late == nil {
		lr.Release()
		return nil
	}
	return late.Emit(ctx, lr)
}

// LateRecord builds a batch of a late side output (schema: LateSchema of
// b's): the rows rows of b, each with its window wins[i] (null when
// wins[i][0] is math.MinInt64), reason why[i] and the watermark wm.
func LateRecord(mem memory.Allocator, schema *arrow.Schema, b arrow.RecordBatch, rows []int32, wins [][2]int64, why []string, wm int64) (arrow.RecordBatch, error) {
	rec, err := arrowexec.TakeRecord(mem, b, rows)
	if err != nil {
		return nil, err
	}
	defer rec.Release()
	sb := array.NewTimestampBuilder(mem, WindowTime)
	eb := array.NewTimestampBuilder(mem, WindowTime)
	rb := array.NewStringBuilder(mem)
	wb := array.NewInt64Builder(mem)
	defer sb.Release()
	defer eb.Release()
	defer rb.Release()
	defer wb.Release()
	for i, w := range wins {
		if w[0] == math.MinInt64 {
			sb.AppendNull()
			eb.AppendNull()
		} else {
			sb.Append(arrow.Timestamp(w[0]))
			eb.Append(arrow.Timestamp(w[1]))
		}
		rb.Append(why[i])
		wb.Append(wm)
	}
	cols := append([]arrow.Array(nil), rec.Columns()...)
	extra := []arrow.Array{sb.NewArray(), eb.NewArray(), rb.NewArray(), wb.NewArray()}
	defer releaseAll(extra)
	cols = append(cols, extra...)
	return array.NewRecordBatch(schema, cols, int64(len(rows))), nil
}
