package lastn

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/state"
)

// Func is an aggregate function over the last N rows.
type Func string

// The functions.
const (
	Count Func = "count"
	Sum   Func = "sum"
	Avg   Func = "avg"
	Min   Func = "min"
	Max   Func = "max"
)

// Agg is one aggregate: Func over column Col ("" for count(*)), named As.
type Agg struct {
	Func Func
	Col  string
	As   string
}

// Options configure the operator.
type Options struct {
	// Keys are the key columns (at least one).
	Keys []string
	// Order are the columns ordering a key's rows: the event time first,
	// then tie breakers.
	Order []string
	// N is how many rows, the current one included, the aggregates see.
	N int
	// Aggs are the aggregates (at least one).
	Aggs []Agg
	// AtEnd holds every row until the end of input, watermarks ignored:
	// for input whose rows all come behind the watermark (the output of a
	// step that emits at the end of input, such as an aggregate).
	AtEnd bool
}

// Validate checks the options.
func (o Options) Validate() error {
	switch {
	case len(o.Keys) == 0:
		return fmt.Errorf("lastn: no key columns")
	case len(o.Order) == 0:
		return fmt.Errorf("lastn: no order columns (the first is the event time)")
	case o.N < 1:
		return fmt.Errorf("lastn: n %d: want at least 1", o.N)
	case len(o.Aggs) == 0:
		return fmt.Errorf("lastn: no aggregates")
	}
	for _, a := range o.Aggs {
		switch a.Func {
		case Count:
		case Sum, Avg, Min, Max:
			if a.Col == "" {
				return fmt.Errorf("lastn: %s(*): want a column", a.Func)
			}
		default:
			return fmt.Errorf("lastn: aggregate %q: want count, sum, avg, min or max", a.Func)
		}
		if a.As == "" {
			return fmt.Errorf("lastn: %s(%s): no output name", a.Func, a.Col)
		}
	}
	return nil
}

// Spec is the operator's arrowexec.Spec.
type Spec struct {
	o        Options
	in, out  *arrow.Schema
	keyIdx   []int
	orderIdx []int
	args     []int  // input column of each distinct argument
	argFloat []bool // whether it is float64
	aggArg   []int  // index into args of each aggregate (-1: count(*))
}

// New validates the options and returns the Spec.
func New(o Options) (*Spec, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	return &Spec{o: o}, nil
}

// Schema checks the columns and returns the input's columns and one per
// aggregate.
func (s *Spec) Schema(in []*arrow.Schema) (*arrow.Schema, error) {
	if len(in) != 1 {
		return nil, fmt.Errorf("lastn: takes one input, have %d", len(in))
	}
	sc := in[0]
	col := func(name string) (int, arrow.DataType, error) {
		idx := sc.FieldIndices(name)
		if len(idx) != 1 {
			return 0, nil, fmt.Errorf("lastn: column %q not in the input", name)
		}
		return idx[0], sc.Field(idx[0]).Type, nil
	}
	s.keyIdx, s.orderIdx, s.args, s.argFloat, s.aggArg = nil, nil, nil, nil, nil
	for _, k := range s.o.Keys {
		i, dt, err := col(k)
		if err != nil {
			return nil, err
		}
		if err := state.CheckKeyType(dt); err != nil {
			return nil, fmt.Errorf("lastn: key %s: %w", k, err)
		}
		s.keyIdx = append(s.keyIdx, i)
	}
	for j, c := range s.o.Order {
		i, dt, err := col(c)
		if err != nil {
			return nil, err
		}
		if id := dt.ID(); id != arrow.TIMESTAMP && id != arrow.INT64 {
			what := "tie breaker"
			if j == 0 {
				what = "event time"
			}
			return nil, fmt.Errorf("lastn: order column %s (the %s) has type %s, want a timestamp or int64", c, what, dt)
		}
		s.orderIdx = append(s.orderIdx, i)
	}
	fields := slices.Clone(sc.Fields())
	for _, a := range s.o.Aggs {
		if a.Col == "" {
			s.aggArg = append(s.aggArg, -1)
			fields = append(fields, arrow.Field{Name: a.As, Type: arrow.PrimitiveTypes.Int64})
			continue
		}
		i, dt, err := col(a.Col)
		if err != nil {
			return nil, err
		}
		var isFloat bool
		switch dt.ID() {
		case arrow.INT64:
		case arrow.FLOAT64:
			isFloat = true
		default:
			return nil, fmt.Errorf("lastn: %s(%s): the column has type %s, want int64 or float64", a.Func, a.Col, dt)
		}
		j := slices.Index(s.args, i)
		if j < 0 {
			j = len(s.args)
			s.args, s.argFloat = append(s.args, i), append(s.argFloat, isFloat)
		}
		s.aggArg = append(s.aggArg, j)
		rt := dt
		switch a.Func {
		case Count:
			rt = arrow.PrimitiveTypes.Int64
		case Avg:
			rt = arrow.PrimitiveTypes.Float64
		}
		fields = append(fields, arrow.Field{Name: a.As, Type: rt, Nullable: a.Func != Count})
	}
	seen := map[string]bool{}
	for _, f := range fields {
		if seen[f.Name] {
			return nil, fmt.Errorf("lastn: output column %q twice (name the aggregate with AS)", f.Name)
		}
		seen[f.Name] = true
	}
	s.in, s.out = sc, arrow.NewSchema(fields, nil)
	return s.out, nil
}

// New creates the operator of one subtask.
func (s *Spec) New(t *arrowexec.Task) (arrowexec.Operator, error) {
	if s.out == nil {
		return nil, fmt.Errorf("lastn: used before Schema")
	}
	return &operator{s: s, t: t, keys: map[string]*ring{}, wm: arrowexec.MinWatermark}, nil
}

// ring is a key's last N argument values: slot i holds argument j at
// i*len(args)+j, as int64 or float64 bits.
type ring struct {
	hash   uint64
	n, pos int
	valid  []bool
	vals   []int64
}

// held is an input batch with rows not yet released.
type held struct {
	b     arrow.RecordBatch
	keys  state.Keys
	times []int64   // event times, ms
	ties  [][]int64 // the other order columns
	left  []int32   // rows not released yet
	seq   int64     // arrival number of row 0
}

type operator struct {
	s    *Spec
	t    *arrowexec.Task
	keys map[string]*ring
	held []*held
	wm   int64
	seq  int64
}

func (o *operator) Open(ctx context.Context) error {
	if rs := o.t.Restore; rs != nil {
		return o.restore(rs)
	}
	return nil
}

func (o *operator) Process(ctx context.Context, _ int, b arrow.RecordBatch, _ arrowexec.Emitter) error {
	if b.NumRows() == 0 {
		return nil
	}
	return o.hold(b)
}

// hold keeps b (retained) until its rows are released.
func (o *operator) hold(b arrow.RecordBatch) error {
	n := int(b.NumRows())
	h := &held{b: b, seq: o.seq}
	o.seq += int64(n)
	cols := make([]arrow.Array, len(o.s.keyIdx))
	for i, k := range o.s.keyIdx {
		cols[i] = b.Column(k)
	}
	if err := state.EncodeKeys(cols, &h.keys); err != nil {
		return fmt.Errorf("lastn: %s: %w", o.t.Node, err)
	}
	var err error
	if h.times, err = arrowexec.EventTimesMillis(b.Column(o.s.orderIdx[0]), nil); err != nil {
		return fmt.Errorf("lastn: %s: %w", o.t.Node, err)
	}
	for _, c := range o.s.orderIdx[1:] {
		v := make([]int64, n)
		switch a := b.Column(c).(type) {
		case *array.Int64:
			copy(v, a.Int64Values())
		case *array.Timestamp:
			for i, x := range a.TimestampValues() {
				v[i] = int64(x)
			}
		}
		h.ties = append(h.ties, v)
	}
	h.left = make([]int32, n)
	for i := range h.left {
		h.left[i] = int32(i)
	}
	b.Retain()
	o.held = append(o.held, h)
	return nil
}

// entry is a released row: held batch h, row r.
type entry struct{ h, r int32 }

// release processes the held rows with event time <= limit (all: every
// row) in key and order, and emits them with their aggregates.
func (o *operator) release(ctx context.Context, out arrowexec.Emitter, limit int64, all bool) error {
	var ents []entry
	for hi, h := range o.held {
		tcol := h.b.Column(o.s.orderIdx[0])
		keep := h.left[:0]
		for _, r := range h.left {
			if all || (tcol.IsValid(int(r)) && h.times[r] <= limit) {
				ents = append(ents, entry{int32(hi), r})
			} else {
				keep = append(keep, r)
			}
		}
		h.left = keep
	}
	if len(ents) == 0 {
		return nil
	}
	slices.SortFunc(ents, o.compare)
	res, err := o.aggregate(ents)
	if err != nil {
		return err
	}
	// Emit per held batch, its rows in their order.
	order := make([]int, len(ents))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int {
		return cmp.Or(cmp.Compare(ents[a].h, ents[b].h), cmp.Compare(ents[a].r, ents[b].r))
	})
	for lo := 0; lo < len(order); {
		hi := lo
		for hi < len(order) && ents[order[hi]].h == ents[order[lo]].h {
			hi++
		}
		if err := o.emit(ctx, out, o.held[ents[order[lo]].h], ents, order[lo:hi], res); err != nil {
			return err
		}
		lo = hi
	}
	kept := o.held[:0]
	for _, h := range o.held {
		if len(h.left) == 0 {
			h.b.Release()
			continue
		}
		kept = append(kept, h)
	}
	clear(o.held[len(kept):])
	o.held = kept
	return nil
}

// compare orders released rows: key, event time (nulls last), tie
// breakers, arrival.
func (o *operator) compare(a, b entry) int {
	ha, hb := o.held[a.h], o.held[b.h]
	if c := bytes.Compare(ha.keys.Key(int(a.r)), hb.keys.Key(int(b.r))); c != 0 {
		return c
	}
	ta, tb := o.s.orderIdx[0], o.s.orderIdx[0]
	va, vb := ha.b.Column(ta).IsValid(int(a.r)), hb.b.Column(tb).IsValid(int(b.r))
	switch {
	case va && !vb:
		return -1
	case !va && vb:
		return 1
	case va && vb:
		if c := cmp.Compare(ha.times[a.r], hb.times[b.r]); c != 0 {
			return c
		}
	}
	for j := range ha.ties {
		if c := cmp.Compare(ha.ties[j][a.r], hb.ties[j][b.r]); c != 0 {
			return c
		}
	}
	return cmp.Compare(ha.seq+int64(a.r), hb.seq+int64(b.r))
}

// result is one aggregate's values for the released rows (int64 or
// float64 bits).
type result struct {
	vals  []int64
	valid []bool
}

// aggregate pushes the rows, in order, into their keys' rings and
// computes the aggregates after each.
func (o *operator) aggregate(ents []entry) ([]result, error) {
	nargs, n := len(o.s.args), o.s.o.N
	res := make([]result, len(o.s.o.Aggs))
	for a := range res {
		res[a] = result{vals: make([]int64, len(ents)), valid: make([]bool, len(ents))}
	}
	var rg *ring
	var lastKey []byte
	for k, e := range ents {
		h := o.held[e.h]
		key := h.keys.Key(int(e.r))
		if rg == nil || !bytes.Equal(key, lastKey) {
			rg = o.keys[string(key)]
			if rg == nil {
				rg = &ring{hash: h.keys.Hashes[e.r], valid: make([]bool, n*nargs), vals: make([]int64, n*nargs)}
				o.keys[string(key)] = rg
			}
			lastKey = key
		}
		for j, c := range o.s.args {
			col := h.b.Column(c)
			slot := rg.pos*nargs + j
			rg.valid[slot] = col.IsValid(int(e.r))
			switch a := col.(type) {
			case *array.Int64:
				rg.vals[slot] = a.Value(int(e.r))
			case *array.Float64:
				rg.vals[slot] = int64(math.Float64bits(a.Value(int(e.r))))
			}
		}
		rg.pos = (rg.pos + 1) % n
		rg.n = min(rg.n+1, n)
		for a, ag := range o.s.o.Aggs {
			v, ok, err := o.fold(rg, ag.Func, o.s.aggArg[a])
			if err != nil {
				return nil, fmt.Errorf("lastn: %s: %s(%s): %w", o.t.Node, ag.Func, ag.Col, err)
			}
			res[a].vals[k], res[a].valid[k] = v, ok
		}
	}
	return res, nil
}

// fold computes f over argument j of the ring's filled slots.
func (o *operator) fold(rg *ring, f Func, j int) (int64, bool, error) {
	nargs := len(o.s.args)
	if j < 0 {
		return int64(rg.n), true, nil
	}
	isFloat := o.s.argFloat[j]
	var cnt int64
	var si int64
	var sf float64
	var best int64
	for i := range rg.n {
		slot := i*nargs + j
		if !rg.valid[slot] {
			continue
		}
		v := rg.vals[slot]
		first := cnt == 0
		cnt++
		if isFloat {
			x := math.Float64frombits(uint64(v))
			sf += x
			b := math.Float64frombits(uint64(best))
			if first || (f == Min && floatLess(x, b)) || (f == Max && floatLess(b, x)) {
				best = v
			}
			continue
		}
		if (v > 0 && si > math.MaxInt64-v) || (v < 0 && si < math.MinInt64-v) {
			if f == Sum || f == Avg {
				return 0, false, fmt.Errorf("integer sum out of int64 range")
			}
		}
		si += v
		if first || (f == Min && v < best) || (f == Max && v > best) {
			best = v
		}
	}
	switch f {
	case Count:
		return cnt, true, nil
	case Sum:
		if isFloat {
			return int64(math.Float64bits(sf)), cnt > 0, nil
		}
		return si, cnt > 0, nil
	case Avg:
		if !isFloat {
			sf = float64(si)
		}
		return int64(math.Float64bits(sf / float64(cnt))), cnt > 0, nil
	default:
		return best, cnt > 0, nil
	}
}

// floatLess orders floats as package agg's min and max: NaN above all.
func floatLess(a, b float64) bool {
	if a != a {
		return false
	}
	return b != b || a < b
}

// emit sends the rows ents[idx...] of h (in row order) with their
// aggregates.
func (o *operator) emit(ctx context.Context, out arrowexec.Emitter, h *held, ents []entry, idx []int, res []result) error {
	rows := make([]int32, len(idx))
	for i, k := range idx {
		rows[i] = ents[k].r
	}
	rec, err := arrowexec.TakeRecord(o.t.Mem, h.b, rows)
	if err != nil {
		return fmt.Errorf("lastn: %s: %w", o.t.Node, err)
	}
	defer rec.Release()
	cols := slices.Clone(rec.Columns())
	base := len(cols)
	var made []arrow.Array
	defer func() {
		for _, a := range made {
			a.Release()
		}
	}()
	for a := range o.s.o.Aggs {
		dt := o.s.out.Field(base + a).Type
		var arr arrow.Array
		switch dt.ID() {
		case arrow.FLOAT64:
			bld := array.NewFloat64Builder(o.t.Mem)
			for _, k := range idx {
				if res[a].valid[k] {
					bld.Append(math.Float64frombits(uint64(res[a].vals[k])))
				} else {
					bld.AppendNull()
				}
			}
			arr = bld.NewArray()
			bld.Release()
		default:
			bld := array.NewInt64Builder(o.t.Mem)
			for _, k := range idx {
				if res[a].valid[k] {
					bld.Append(res[a].vals[k])
				} else {
					bld.AppendNull()
				}
			}
			arr = bld.NewArray()
			bld.Release()
		}
		made = append(made, arr)
		cols = append(cols, arr)
	}
	return out.Emit(ctx, array.NewRecordBatch(o.s.out, cols, int64(len(idx))))
}

// OnWatermark releases the rows the watermark passed.
func (o *operator) OnWatermark(ctx context.Context, wm int64, out arrowexec.Emitter) error {
	o.wm = max(o.wm, wm)
	if o.s.o.AtEnd {
		return nil
	}
	return o.release(ctx, out, o.wm, false)
}

// Finish releases every held row, unless the input was suspended (they
// stay in the savepoint).
func (o *operator) Finish(ctx context.Context, out arrowexec.Emitter) error {
	if o.t.Suspended() {
		return nil
	}
	return o.release(ctx, out, 0, true)
}

func (o *operator) Close() error {
	for _, h := range o.held {
		h.b.Release()
	}
	o.held = nil
	return nil
}

var (
	_ arrowexec.WatermarkHandler = (*operator)(nil)
	_ arrowexec.Checkpointer     = (*operator)(nil)
)
