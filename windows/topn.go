package windows

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"slices"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/arrowexec/agg"
	"github.com/riffle-dev/riffle/state"
)

// TopNOptions configures a top-N operator over the output of a window
// operator.
type TopNOptions struct {
	TopN
	// Keys are the key columns of the window operator (the identity of a
	// row within its window).
	Keys []string
	// AllowedLateness must match the window operator's: a window's ranking
	// is kept, and re-emitted when an update arrives, until the watermark
	// reaches window_end - 1 + AllowedLateness.
	AllowedLateness int64 // ms
	BatchSize       int
	// Backend keeps the rankings' state; default state.NewMemoryBackend.
	Backend state.Backend
}

// TopNSpec ranks the results of each window (window_start, window_end) by
// one aggregate and emits the first N with a rank column (1-based). Ties are
// broken by the key columns in ascending order (nulls first), so the
// ranking is deterministic. A window's ranking is emitted when the
// watermark reaches window_end - 1; an update of one of its rows
// (is_update) re-emits the whole ranking with is_update = true.
//
// Run it with parallelism 1 behind the window operator, or behind a hash
// exchange on window_start (every key of a window must reach the same
// subtask). Its state, the latest result of every key of every open
// window, is keyed state (package state) and checkpointed like the window
// operator's.
type TopNSpec struct {
	opts TopNOptions
}

var _ arrowexec.Spec = (*TopNSpec)(nil)

// NewTopN validates opts and returns the Spec.
func NewTopN(opts TopNOptions) (*TopNSpec, error) {
	if opts.N <= 0 {
		return nil, fmt.Errorf("windows: top n must be positive, got %d", opts.N)
	}
	if opts.By == "" {
		return nil, fmt.Errorf("windows: top needs a column to rank by")
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = DefaultBatchSize
	}
	return &TopNSpec{opts: opts}, nil
}

type topPlan struct {
	in      *arrow.Schema
	out     *arrow.Schema
	keys    []int
	by      int
	start   int
	end     int
	update  int
	allCols []int
}

func (s *TopNSpec) bind(in *arrow.Schema) (*topPlan, error) {
	p := &topPlan{in: in}
	idx := func(name string) (int, error) {
		ix := in.FieldIndices(name)
		if len(ix) != 1 {
			return 0, fmt.Errorf("windows: top: no column %q", name)
		}
		return ix[0], nil
	}
	var err error
	for _, k := range s.opts.Keys {
		i, err := idx(k)
		if err != nil {
			return nil, err
		}
		p.keys = append(p.keys, i)
	}
	if p.by, err = idx(s.opts.By); err != nil {
		return nil, err
	}
	switch in.Field(p.by).Type.ID() {
	case arrow.INT64, arrow.FLOAT64, arrow.INT32, arrow.FLOAT32:
	default:
		return nil, fmt.Errorf("windows: top: cannot rank by %s column %q", in.Field(p.by).Type, s.opts.By)
	}
	if p.start, err = idx("window_start"); err != nil {
		return nil, err
	}
	if p.end, err = idx("window_end"); err != nil {
		return nil, err
	}
	if p.update, err = idx("is_update"); err != nil {
		return nil, err
	}
	if in.HasField("rank") {
		return nil, fmt.Errorf("windows: top: input already has a rank column")
	}
	for i, f := range in.Fields() {
		if err := state.CheckKeyType(f.Type); err != nil {
			return nil, fmt.Errorf("windows: top: column %q: %w", f.Name, err)
		}
		p.allCols = append(p.allCols, i)
	}
	fields := append(slices.Clone(in.Fields()), arrow.Field{Name: "rank", Type: arrow.PrimitiveTypes.Int64})
	p.out = arrow.NewSchema(fields, nil)
	return p, nil
}

// Schema returns the input schema plus rank (int64).
func (s *TopNSpec) Schema(inputs []*arrow.Schema) (*arrow.Schema, error) {
	if len(inputs) != 1 {
		return nil, fmt.Errorf("windows: top: want 1 input, got %d", len(inputs))
	}
	p, err := s.bind(inputs[0])
	if err != nil {
		return nil, err
	}
	return p.out, nil
}

// New creates the operator of one subtask.
func (s *TopNSpec) New(t *arrowexec.Task) (arrowexec.Operator, error) {
	p, err := s.bind(t.Inputs[0])
	if err != nil {
		return nil, err
	}
	mem := t.Mem
	if mem == nil {
		mem = memory.DefaultAllocator
	}
	return &topOp{s: s, p: p, t: t, mem: mem, wm: arrowexec.MinWatermark, wins: map[[2]int64]*topWindow{}}, nil
}

// topWindow is the in-memory index of a window in state (rebuilt from the
// state after a restore).
type topWindow struct {
	hash    uint64
	emitted bool
	dirty   bool
}

type topRow struct {
	key  []byte
	row  []byte
	val  float64
	null bool
}

// topOp keeps, per window, the latest result row of every key in map
// state: namespace-less entries keyed by the window (start, end), map key
// the encoded key columns, value hash(8) | null(1) | rank value(8) | the
// encoded row. The key hash is arrowexec.HashColumns over window_start, so
// the operator can also run behind a hash exchange on window_start.
type topOp struct {
	s     *TopNSpec
	p     *topPlan
	t     *arrowexec.Task
	mem   memory.Allocator
	wm    int64
	store state.Store
	rows  *state.Map[[]byte, []byte]
	flags *state.Value[int64]
	wins  map[[2]int64]*topWindow
	kenc  state.Keys
	renc  state.Keys
	cols  []arrow.Array
	out   []topOut
	ks    state.Keys
	mks   [][]byte
	vals  [][]byte
	hbuf  []uint64
}

type topOut struct {
	row    []byte
	rank   int64
	update bool
}

var (
	_ arrowexec.Operator         = (*topOp)(nil)
	_ arrowexec.WatermarkHandler = (*topOp)(nil)
	_ arrowexec.Checkpointer     = (*topOp)(nil)
)

func (o *topOp) Open(ctx context.Context) error {
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
		return fmt.Errorf("windows: top: %w", err)
	}
	o.store = st
	if o.rows, err = state.NewMap(st, state.MapDescriptor[[]byte, []byte]{Name: "top/rows", KeyCodec: state.Bytes, ValueCodec: state.Bytes}); err != nil {
		return err
	}
	if o.flags, err = state.NewValue(st, state.ValueDescriptor[int64]{Name: "top/emitted", Codec: state.Int64}); err != nil {
		return err
	}
	if rs := o.t.Restore; rs != nil {
		if o.wm, _, err = restoreStore(ctx, st, rs); err != nil {
			return err
		}
		var derr error
		err := o.rows.Range(func(e state.Entry, _ []byte, val []byte) bool {
			s, en, err := state.DecodeWindow(e.Key)
			if err != nil {
				derr = err
				return false
			}
			o.wins[[2]int64{s, en}] = &topWindow{hash: getU(val, 0)}
			return true
		})
		if err == nil {
			err = derr
		}
		if err != nil {
			return err
		}
		if err := o.flags.Range(func(e state.Entry, _ int64) bool {
			s, en, _ := state.DecodeWindow(e.Key)
			if tw := o.wins[[2]int64{s, en}]; tw != nil {
				tw.emitted = true
			}
			return true
		}); err != nil {
			return err
		}
	}
	return nil
}

// SnapshotState implements arrowexec.Checkpointer.
func (o *topOp) SnapshotState(ctx context.Context, id uint64) (arrowexec.SubtaskSnapshot, error) {
	return snapshotStore(ctx, o.store, id, o.wm, nil)
}

// SnapshotStateAsync implements arrowexec.AsyncCheckpointer: the store's
// point-in-time view at the barrier, written out while the operator goes on.
func (o *topOp) SnapshotStateAsync(ctx context.Context, id uint64) (func(context.Context) (arrowexec.SubtaskSnapshot, error), error) {
	return beginSnapshot(ctx, o.store, o.t, id, o.wm, nil)
}

func (o *topOp) Process(ctx context.Context, _ int, b arrow.RecordBatch, out arrowexec.Emitter) error {
	n := int(b.NumRows())
	o.cols = o.cols[:0]
	for _, k := range o.p.keys {
		o.cols = append(o.cols, b.Column(k))
	}
	if err := state.EncodeKeyValues(o.cols, n, &o.kenc); err != nil {
		return err
	}
	if err := state.EncodeKeyValues(b.Columns(), n, &o.renc); err != nil {
		return err
	}
	starts, err := arrowexec.EventTimesMillis(b.Column(o.p.start), nil)
	if err != nil {
		return err
	}
	ends, err := arrowexec.EventTimesMillis(b.Column(o.p.end), nil)
	if err != nil {
		return err
	}
	o.hbuf = grow(o.hbuf, n)
	if err := arrowexec.HashColumns([]arrow.Array{b.Column(o.p.start)}, o.hbuf); err != nil {
		return err
	}
	byCol := b.Column(o.p.by)
	var vals []float64
	switch byCol.DataType().ID() {
	case arrow.FLOAT64, arrow.FLOAT32:
		vals = agg.Float64s(byCol, nil)
	default:
		for _, v := range intValues(byCol, nil) {
			vals = append(vals, float64(v))
		}
	}
	o.ks.Reset()
	o.mks, o.vals = o.mks[:0], o.vals[:0]
	for i := 0; i < n; i++ {
		w := [2]int64{starts[i], ends[i]}
		if o.wm != arrowexec.MinWatermark && w[1]-1+o.s.opts.AllowedLateness <= o.wm {
			continue // already purged: the window operator does not send it
		}
		tw := o.wins[w]
		if tw == nil {
			tw = &topWindow{hash: o.hbuf[i]}
			o.wins[w] = tw
		}
		if tw.emitted {
			tw.dirty = true
		}
		v := binary.LittleEndian.AppendUint64(nil, tw.hash)
		null := byte(0)
		if byCol.IsNull(i) {
			null = 1
		}
		v = append(v, null)
		v = binary.LittleEndian.AppendUint64(v, math.Float64bits(vals[i]))
		v = append(v, o.renc.Key(i)...)
		o.ks.Append(tw.hash, state.AppendWindow(nil, w[0], w[1]), nil)
		o.mks = append(o.mks, o.kenc.Key(i))
		o.vals = append(o.vals, v)
	}
	if err := o.rows.PutMany(&o.ks, o.mks, o.vals); err != nil {
		return err
	}
	// Updates of windows already ranked: re-rank now.
	var dirty [][2]int64
	for w, tw := range o.wins {
		if tw.dirty {
			dirty = append(dirty, w)
		}
	}
	if err := o.rank(dirty); err != nil {
		return err
	}
	return o.emit(ctx, out)
}

func (o *topOp) OnWatermark(ctx context.Context, wm int64, out arrowexec.Emitter) error {
	o.wm = wm
	var due, purge [][2]int64
	for w, tw := range o.wins {
		if !tw.emitted && w[1]-1 <= wm {
			due = append(due, w)
		}
		if w[1]-1+o.s.opts.AllowedLateness <= wm {
			purge = append(purge, w)
		}
	}
	if err := o.rank(due); err != nil {
		return err
	}
	for _, w := range purge {
		tw := o.wins[w]
		wk := state.AppendWindow(nil, w[0], w[1])
		if err := o.rows.Clear(tw.hash, wk, nil); err != nil {
			return err
		}
		if err := o.flags.Delete(tw.hash, wk, nil); err != nil {
			return err
		}
		delete(o.wins, w)
	}
	return o.emit(ctx, out)
}

// rank queues the top N of the given windows, windows in (end, start)
// order.
func (o *topOp) rank(ws [][2]int64) error {
	slices.SortFunc(ws, func(a, b [2]int64) int {
		if a[1] != b[1] {
			return cmpInt(a[1], b[1])
		}
		return cmpInt(a[0], b[0])
	})
	asc := o.s.opts.Ascending
	for _, w := range ws {
		tw := o.wins[w]
		wk := state.AppendWindow(nil, w[0], w[1])
		var rows []*topRow
		if err := o.rows.Iterate(tw.hash, wk, nil, func(mk []byte, v []byte) bool {
			rows = append(rows, &topRow{key: mk, null: v[8] == 1, val: math.Float64frombits(binary.LittleEndian.Uint64(v[9:])), row: v[17:]})
			return true
		}); err != nil {
			return err
		}
		slices.SortFunc(rows, func(a, b *topRow) int {
			if a.null != b.null { // nulls rank last
				if a.null {
					return 1
				}
				return -1
			}
			if !a.null && a.val != b.val && !(math.IsNaN(a.val) && math.IsNaN(b.val)) {
				c := -1
				if fless(b.val, a.val) {
					c = 1
				}
				if !asc {
					c = -c
				}
				return c
			}
			return bytes.Compare(a.key, b.key)
		})
		n := min(len(rows), o.s.opts.N)
		tie := func(a, b *topRow) bool {
			return a.null == b.null && (a.null || a.val == b.val || math.IsNaN(a.val) && math.IsNaN(b.val))
		}
		if o.s.opts.WithTies {
			for n > 0 && n < len(rows) && tie(rows[n-1], rows[n]) {
				n++
			}
		}
		rank := int64(0)
		for i, r := range rows[:n] {
			if !o.s.opts.WithTies || i == 0 || !tie(rows[i-1], r) {
				rank = int64(i + 1)
			}
			o.out = append(o.out, topOut{row: r.row, rank: rank, update: tw.emitted})
		}
		if !tw.emitted {
			if err := o.flags.Put(tw.hash, wk, nil, 1); err != nil {
				return err
			}
		}
		tw.emitted, tw.dirty = true, false
	}
	return nil
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (o *topOp) emit(ctx context.Context, out arrowexec.Emitter) error {
	for len(o.out) > 0 {
		n := min(len(o.out), o.s.opts.BatchSize)
		part := o.out[:n]
		o.out = o.out[n:]
		rows := make([][]byte, n)
		for i, r := range part {
			rows[i] = r.row
		}
		types := make([]arrow.DataType, len(o.p.in.Fields()))
		for i, f := range o.p.in.Fields() {
			types[i] = f.Type
		}
		cols, err := state.DecodeKeys(o.mem, types, rows)
		if err != nil {
			return err
		}
		// is_update comes from the ranking, not the input row.
		ub := array.NewBooleanBuilder(o.mem)
		rb := array.NewInt64Builder(o.mem)
		for _, r := range part {
			ub.Append(r.update)
			rb.Append(r.rank)
		}
		cols[o.p.update].Release()
		cols[o.p.update] = ub.NewArray()
		cols = append(cols, rb.NewArray())
		ub.Release()
		rb.Release()
		rec := array.NewRecordBatch(o.p.out, cols, int64(n))
		releaseAll(cols)
		if err := out.Emit(ctx, rec); err != nil {
			return err
		}
	}
	o.out = o.out[:0]
	return nil
}

func (o *topOp) Finish(ctx context.Context, out arrowexec.Emitter) error { return o.emit(ctx, out) }

func (o *topOp) Close() error {
	o.wins = nil
	if o.store != nil {
		err := o.store.Close()
		o.store = nil
		return err
	}
	return nil
}
