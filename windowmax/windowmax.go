package windowmax

import (
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/riffle-dev/riffle/arrowexec"
)

// Options configure the filter.
type Options struct {
	// Time is the event-time column (a timestamp or int64 milliseconds).
	Time string
	// By is the column ranked on: the rows at its per-window maximum are
	// kept.
	By string
	// Size is the tumbling window's length (at least 1 ms).
	Size time.Duration
	// Final selects the final mode (parallelism 1, rows kept until the
	// watermark); false is the partial mode (per batch, any parallelism).
	Final bool
}

// Validate checks the options.
func (o Options) Validate() error {
	switch {
	case o.Time == "":
		return fmt.Errorf("windowmax: no time column")
	case o.By == "":
		return fmt.Errorf("windowmax: no column to rank by (by:)")
	case o.Size < time.Millisecond:
		return fmt.Errorf("windowmax: size %v: want at least 1ms", o.Size)
	}
	return nil
}

// Spec is the filter's arrowexec.Spec.
type Spec struct {
	o          Options
	ti, bi     int
	kind       byKind
	schema     *arrow.Schema
	sizeMillis int64
}

// New validates the options and returns the Spec.
func New(o Options) (*Spec, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	return &Spec{o: o, sizeMillis: o.Size.Milliseconds()}, nil
}

type byKind uint8

const (
	byInt byKind = iota
	byFloat
)

// Schema checks the columns and returns the input schema.
func (s *Spec) Schema(in []*arrow.Schema) (*arrow.Schema, error) {
	if len(in) != 1 {
		return nil, fmt.Errorf("windowmax: takes one input, have %d", len(in))
	}
	sc := in[0]
	col := func(name string) (int, arrow.DataType, error) {
		idx := sc.FieldIndices(name)
		if len(idx) != 1 {
			return 0, nil, fmt.Errorf("windowmax: column %q not in the input (have %s)", name, names(sc))
		}
		return idx[0], sc.Field(idx[0]).Type, nil
	}
	ti, tt, err := col(s.o.Time)
	if err != nil {
		return nil, err
	}
	switch tt.ID() {
	case arrow.TIMESTAMP, arrow.INT64:
	default:
		return nil, fmt.Errorf("windowmax: time column %q has type %s, want a timestamp or int64 milliseconds", s.o.Time, tt)
	}
	bi, bt, err := col(s.o.By)
	if err != nil {
		return nil, err
	}
	switch bt.ID() {
	case arrow.INT8, arrow.INT16, arrow.INT32, arrow.INT64, arrow.UINT8, arrow.UINT16, arrow.UINT32, arrow.TIMESTAMP:
		s.kind = byInt
	case arrow.FLOAT64:
		s.kind = byFloat
	default:
		return nil, fmt.Errorf("windowmax: by column %q has type %s, want an integer, timestamp or float64", s.o.By, bt)
	}
	s.ti, s.bi, s.schema = ti, bi, sc
	return sc, nil
}

func names(s *arrow.Schema) string {
	var out []string
	for _, f := range s.Fields() {
		out = append(out, f.Name)
	}
	return fmt.Sprint(out)
}

// New creates the operator of one subtask.
func (s *Spec) New(t *arrowexec.Task) (arrowexec.Operator, error) {
	if s.schema == nil {
		return nil, fmt.Errorf("windowmax: used before Schema")
	}
	if s.o.Final && t.Parallelism != 1 {
		return nil, fmt.Errorf("windowmax: the final operator runs at parallelism 1, not %d", t.Parallelism)
	}
	return &operator{s: s, t: t, wins: map[int64]*window{}, wm: arrowexec.MinWatermark}, nil
}

// window is an open window's running maximum and, in the final mode, the
// rows at it.
type window struct {
	max  int64
	rows []arrow.RecordBatch
}

type operator struct {
	s    *Spec
	t    *arrowexec.Task
	wins map[int64]*window
	wm   int64
	late int64
	// per-batch scratch
	times, vals []int64
	bw          []batchWin
	sel         []int32
}

// batchWin is one window's maximum within a batch.
type batchWin struct {
	start, max int64
	any        bool
	keep       bool // the batch's maximum is the window's running one
}

func (o *operator) Open(ctx context.Context) error {
	if rs := o.t.Restore; rs != nil && o.s.o.Final {
		return o.restore(rs)
	}
	return nil
}

// keys returns the By column as order-preserving int64s.
func (o *operator) keys(col arrow.Array) []int64 {
	n := col.Len()
	o.vals = slices.Grow(o.vals[:0], n)[:n]
	v := o.vals
	switch a := col.(type) {
	case *array.Int64:
		copy(v, a.Int64Values())
	case *array.Timestamp:
		for i, x := range a.TimestampValues() {
			v[i] = int64(x)
		}
	case *array.Int32:
		for i, x := range a.Int32Values() {
			v[i] = int64(x)
		}
	case *array.Int16:
		for i, x := range a.Int16Values() {
			v[i] = int64(x)
		}
	case *array.Int8:
		for i, x := range a.Int8Values() {
			v[i] = int64(x)
		}
	case *array.Uint32:
		for i, x := range a.Uint32Values() {
			v[i] = int64(x)
		}
	case *array.Uint16:
		for i, x := range a.Uint16Values() {
			v[i] = int64(x)
		}
	case *array.Uint8:
		for i, x := range a.Uint8Values() {
			v[i] = int64(x)
		}
	case *array.Float64:
		for i, x := range a.Float64Values() {
			v[i] = floatKey(x)
		}
	}
	return v
}

// floatKey maps a float64 to an int64 of the same order, NaN above +Inf
// (every NaN alike) and -0 equal to +0.
func floatKey(f float64) int64 {
	switch {
	case f != f:
		f = math.NaN()
	case f == 0:
		f = 0
	}
	b := math.Float64bits(f)
	if b>>63 != 0 {
		return int64(^b) ^ math.MinInt64
	}
	return int64(b)
}

func (o *operator) Process(ctx context.Context, _ int, b arrow.RecordBatch, out arrowexec.Emitter) error {
	n := int(b.NumRows())
	if n == 0 {
		return nil
	}
	tcol, bcol := b.Column(o.s.ti), b.Column(o.s.bi)
	var err error
	if o.times, err = arrowexec.EventTimesMillis(tcol, o.times); err != nil {
		return fmt.Errorf("windowmax: %s: %w", o.t.Node, err)
	}
	times, vals := o.times[:n], o.keys(bcol)
	nulls := tcol.NullN() > 0 || bcol.NullN() > 0
	valid := func(i int) bool { return tcol.IsValid(i) && bcol.IsValid(i) }
	size := o.s.sizeMillis
	// Pass 1: the batch's maximum per window.
	o.bw = o.bw[:0]
	last := -1
	find := func(start int64) int {
		if last >= 0 && o.bw[last].start == start {
			return last
		}
		for j := range o.bw {
			if o.bw[j].start == start {
				last = j
				return j
			}
		}
		o.bw = append(o.bw, batchWin{start: start})
		last = len(o.bw) - 1
		return last
	}
	for i, t := range times {
		if nulls && !valid(i) {
			continue
		}
		w := &o.bw[find(floorDiv(t, size)*size)]
		if !w.any || vals[i] > w.max {
			w.max, w.any = vals[i], true
		}
	}
	// Against the running maxima: which windows keep rows of this batch.
	anyKeep, anyLate := false, false
	for j := range o.bw {
		w := &o.bw[j]
		if !w.any {
			continue
		}
		if o.s.o.Final && w.start+size-1 <= o.wm {
			anyLate = true // counted below
			continue
		}
		cur, ok := o.wins[w.start]
		switch {
		case !ok:
			o.wins[w.start] = &window{max: w.max}
		case w.max > cur.max:
			releaseAll(cur.rows)
			cur.max, cur.rows = w.max, nil
		case w.max < cur.max:
			continue
		}
		w.keep, anyKeep = true, true
	}
	if anyLate {
		for i, t := range times {
			if (!nulls || valid(i)) && floorDiv(t, size)*size+size-1 <= o.wm {
				o.late++
			}
		}
	}
	if !anyKeep {
		return nil
	}
	// Pass 2: the rows at their window's kept maximum.
	o.sel = o.sel[:0]
	last = -1
	for i, t := range times {
		if nulls && !valid(i) {
			continue
		}
		w := &o.bw[find(floorDiv(t, size)*size)]
		if w.keep && vals[i] == w.max {
			o.sel = append(o.sel, int32(i))
		}
	}
	if len(o.sel) == 0 {
		return nil
	}
	var rows arrow.RecordBatch
	if len(o.sel) == n {
		b.Retain()
		rows = b
	} else if rows, err = arrowexec.TakeRecord(o.t.Mem, b, o.sel); err != nil {
		return fmt.Errorf("windowmax: %s: %w", o.t.Node, err)
	}
	if !o.s.o.Final {
		return out.Emit(ctx, rows)
	}
	if len(o.bw) == 1 {
		w := o.wins[o.bw[0].start]
		w.rows = append(w.rows, rows)
		return nil
	}
	// Rows of several windows: split the gathered rows by window.
	defer rows.Release()
	rt, err := arrowexec.EventTimesMillis(rows.Column(o.s.ti), nil)
	if err != nil {
		return err
	}
	for j := range o.bw {
		w := &o.bw[j]
		if !w.keep {
			continue
		}
		var idx []int32
		for i, t := range rt {
			if floorDiv(t, size)*size == w.start {
				idx = append(idx, int32(i))
			}
		}
		part, err := arrowexec.TakeRecord(o.t.Mem, rows, idx)
		if err != nil {
			return fmt.Errorf("windowmax: %s: %w", o.t.Node, err)
		}
		cur := o.wins[w.start]
		cur.rows = append(cur.rows, part)
	}
	return nil
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

func releaseAll(bs []arrow.RecordBatch) {
	for _, b := range bs {
		b.Release()
	}
}

// OnWatermark emits (final) or forgets (partial) the windows the
// watermark closed, in window order.
func (o *operator) OnWatermark(ctx context.Context, wm int64, out arrowexec.Emitter) error {
	o.wm = max(o.wm, wm)
	return o.fire(ctx, out, false)
}

func (o *operator) fire(ctx context.Context, out arrowexec.Emitter, all bool) error {
	size := o.s.sizeMillis
	var due []int64
	for start := range o.wins {
		if all || start+size-1 <= o.wm {
			due = append(due, start)
		}
	}
	slices.Sort(due)
	for _, start := range due {
		w := o.wins[start]
		delete(o.wins, start)
		for k, r := range w.rows {
			w.rows[k] = nil
			if err := out.Emit(ctx, r); err != nil {
				releaseAll(w.rows[k+1:])
				return err
			}
		}
	}
	return nil
}

func (o *operator) Finish(ctx context.Context, out arrowexec.Emitter) error {
	if o.late > 0 {
		o.t.Log.Warn("windowmax: late rows dropped", "node", o.t.Node, "rows", o.late)
	}
	if !o.s.o.Final || o.t.Suspended() {
		return nil
	}
	return o.fire(ctx, out, true)
}

func (o *operator) Close() error {
	for start, w := range o.wins {
		releaseAll(w.rows)
		delete(o.wins, start)
	}
	return nil
}

var (
	_ arrowexec.WatermarkHandler = (*operator)(nil)
	_ arrowexec.Checkpointer     = (*operator)(nil)
)
