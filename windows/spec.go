package windows

import (
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/arrowexec/agg"
	"github.com/riffle-dev/riffle/state"
)

// Spec is the arrowexec.Spec of a keyed window aggregate.
type Spec struct {
	opts  Options
	stats counters
	// pend publishes each subtask's pending windows (pending.go).
	pmu  sync.Mutex
	pend map[int]*pendingPub
}

var (
	_ arrowexec.Spec          = (*Spec)(nil)
	_ arrowexec.SideOutputter = (*Spec)(nil)
)

// LateOutput is the name of the window operator's side output of late
// records (see the package documentation for its columns).
const LateOutput = "late"

// Stats counts what every subtask of a window operator did.
type Stats struct {
	// Rows is the number of input rows.
	Rows int64
	// LateRows counts (row, window) pairs later than the allowed lateness
	// (and rows without an event time): sent to the side output if one is
	// configured, dropped otherwise.
	LateRows int64
	// Fired counts window results emitted for the first time; Updates
	// those re-emitted with is_update = true.
	Fired, Updates int64
	// Purged counts windows whose state was removed.
	Purged int64
}

type counters struct {
	rows, late, fired, updates, purged atomic.Int64
}

// New validates opts and returns the Spec.
func New(opts Options) (*Spec, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if opts.BatchSize == 0 {
		opts.BatchSize = DefaultBatchSize
	}
	opts.Keys = append([]string(nil), opts.Keys...)
	opts.Aggs = append([]Agg(nil), opts.Aggs...)
	return &Spec{opts: opts}, nil
}

// Options returns the options with defaults filled in.
func (s *Spec) Options() Options { return s.opts }

// Stats sums the counters of every subtask. Safe to call while the job
// runs.
func (s *Spec) Stats() Stats {
	return Stats{
		Rows: s.stats.rows.Load(), LateRows: s.stats.late.Load(),
		Fired: s.stats.fired.Load(), Updates: s.stats.updates.Load(), Purged: s.stats.purged.Load(),
	}
}

// plan is the Spec bound to an input schema.
type plan struct {
	keys     []int
	keyTypes []arrow.DataType
	time     int
	aggs     []boundAgg
	blob     int // size of the blob's fixed part
	sketches int // approx_distinct, median, quantile: sketch regions after it
	// regions append the empty sketch regions, in order (all
	// agg.EmptySketchSize bytes long).
	regions  []func([]byte) []byte
	strs     int // min, max over strings: string regions after the sketches
	tail     int // size of a fresh blob's regions
	out      *arrow.Schema
	late     *arrow.Schema
	size     int64 // ms
	slide    int64
	gap      int64
	lateness int64
}

// WindowTime is the type of window_start and window_end.
var WindowTime = &arrow.TimestampType{Unit: arrow.Millisecond, TimeZone: "UTC"}

// Late side output columns, after the record's own.
const (
	LateWindowStart = "late_window_start"
	LateWindowEnd   = "late_window_end"
	LateReason      = "late_reason"
	LateWatermark   = "late_watermark"
)

// Late reasons.
const (
	ReasonLate   = "late"
	ReasonNoTime = "null_event_time"
)

// LateSchema is the schema of a late side output for input rows of
// schema in: their columns, then late_window_start, late_window_end,
// late_reason and late_watermark. It is shared by every operator with a
// late output (windows, joins).
func LateSchema(in *arrow.Schema) (*arrow.Schema, error) {
	lf := append([]arrow.Field(nil), in.Fields()...)
	for _, n := range []string{LateWindowStart, LateWindowEnd, LateReason, LateWatermark} {
		if in.HasField(n) {
			return nil, fmt.Errorf("windows: input column %q clashes with the late output's", n)
		}
	}
	lf = append(lf,
		arrow.Field{Name: LateWindowStart, Type: WindowTime, Nullable: true},
		arrow.Field{Name: LateWindowEnd, Type: WindowTime, Nullable: true},
		arrow.Field{Name: LateReason, Type: arrow.BinaryTypes.String},
		arrow.Field{Name: LateWatermark, Type: arrow.PrimitiveTypes.Int64})
	return arrow.NewSchema(lf, nil), nil
}

func (s *Spec) bind(in *arrow.Schema) (*plan, error) {
	o := &s.opts
	p := &plan{size: o.Size.Milliseconds(), slide: o.Slide.Milliseconds(), gap: o.Gap.Milliseconds(), lateness: o.AllowedLateness.Milliseconds()}
	if o.Kind == Tumbling {
		p.slide = p.size
	}
	var fields []arrow.Field
	for _, k := range o.Keys {
		idx := in.FieldIndices(k)
		if len(idx) != 1 {
			return nil, fmt.Errorf("windows: no key column %q", k)
		}
		f := in.Field(idx[0])
		if err := state.CheckKeyType(f.Type); err != nil {
			return nil, fmt.Errorf("windows: key %q: %w", k, err)
		}
		p.keys = append(p.keys, idx[0])
		p.keyTypes = append(p.keyTypes, f.Type)
		fields = append(fields, arrow.Field{Name: k, Type: f.Type, Nullable: f.Nullable})
	}
	if err := (arrowexec.WatermarkStrategy{Column: o.Time}).Validate(in); err != nil {
		return nil, fmt.Errorf("windows: %w", err)
	}
	p.time = in.FieldIndices(o.Time)[0]
	fields = append(fields,
		arrow.Field{Name: "window_start", Type: WindowTime},
		arrow.Field{Name: "window_end", Type: WindowTime})
	off := blobHeader
	for _, a := range o.Aggs {
		b, err := bindAgg(in, a, off, o.Time)
		if err != nil {
			return nil, err
		}
		switch {
		case a.Func == ApproxDistinct:
			b.hidx = p.sketches
			p.sketches++
			p.regions = append(p.regions, agg.AppendEmptySketch)
		case isQuantile(a.Func):
			b.hidx = p.sketches
			p.sketches++
			p.regions = append(p.regions, agg.AppendEmptyKLL)
		}
		if b.str {
			b.sidx = p.strs
			p.strs++
		}
		off += b.size
		p.aggs = append(p.aggs, b)
		fields = append(fields, arrow.Field{Name: a.Name(), Type: b.out, Nullable: a.Func != Count && a.Func != CountDistinct && a.Func != ApproxDistinct})
	}
	p.blob = off
	p.tail = agg.EmptySketchSize*p.sketches + 4*p.strs
	fields = append(fields, arrow.Field{Name: "is_update", Type: arrow.FixedWidthTypes.Boolean})
	p.out = arrow.NewSchema(fields, nil)
	late, err := LateSchema(in)
	if err != nil {
		return nil, err
	}
	p.late = late
	return p, nil
}

// Schema checks the input and returns the output schema: the key columns,
// window_start, window_end (timestamp[ms, UTC]), one column per aggregate
// and is_update.
func (s *Spec) Schema(inputs []*arrow.Schema) (*arrow.Schema, error) {
	if len(inputs) != 1 {
		return nil, fmt.Errorf("windows: want 1 input, got %d", len(inputs))
	}
	p, err := s.bind(inputs[0])
	if err != nil {
		return nil, err
	}
	return p.out, nil
}

// SideOutputs implements arrowexec.SideOutputter: the side output
// LateOutput, rows later than the allowed lateness.
func (s *Spec) SideOutputs(inputs []*arrow.Schema) ([]arrowexec.SideOutput, error) {
	if len(inputs) != 1 {
		return nil, fmt.Errorf("windows: want 1 input, got %d", len(inputs))
	}
	late, err := s.LateSchema(inputs[0])
	if err != nil {
		return nil, err
	}
	return []arrowexec.SideOutput{{Name: LateOutput, Schema: late}}, nil
}

// LateSchema returns the schema of the late side output for an input.
func (s *Spec) LateSchema(in *arrow.Schema) (*arrow.Schema, error) {
	p, err := s.bind(in)
	if err != nil {
		return nil, err
	}
	return p.late, nil
}

// New creates the operator of one subtask.
func (s *Spec) New(t *arrowexec.Task) (arrowexec.Operator, error) {
	if len(t.Inputs) != 1 {
		return nil, fmt.Errorf("windows: want 1 input, got %d", len(t.Inputs))
	}
	p, err := s.bind(t.Inputs[0])
	if err != nil {
		return nil, err
	}
	return newOperator(s, p, t), nil
}

// MetricDescs are the series a window step reports
// (arrowexec.MetricsReporter): the counters summed over its subtasks
// (the Spec reports them), the gauges per subtask (the operator).
var MetricDescs = []*arrowexec.MetricDesc{lateDesc, firedDesc, updatesDesc, purgedDesc, cachedDesc, diskDesc}

var (
	lateDesc = &arrowexec.MetricDesc{Name: "riffle_window_late_rows_total",
		Help: "Rows (row, window pairs) later than the allowed lateness, or without an event time: sent to the late output or dropped.", Kind: arrowexec.Counter}
	firedDesc = &arrowexec.MetricDesc{Name: "riffle_window_fired_total",
		Help: "Window results emitted for the first time.", Kind: arrowexec.Counter}
	updatesDesc = &arrowexec.MetricDesc{Name: "riffle_window_updates_total",
		Help: "Window results emitted again by late rows within the allowed lateness (is_update).", Kind: arrowexec.Counter}
	purgedDesc = &arrowexec.MetricDesc{Name: "riffle_window_purged_total",
		Help: "Windows whose state was removed.", Kind: arrowexec.Counter}
	cachedDesc = &arrowexec.MetricDesc{Name: "riffle_window_cached_windows",
		Help: "Windows (key, window pairs; sessions) a subtask holds in its write-back cache, after its last batch or watermark.",
		Kind: arrowexec.Gauge, PerSubtask: true}
	diskDesc = &arrowexec.MetricDesc{Name: "riffle_state_disk_bytes",
		Help: "Bytes of a subtask's state working files on local disk (Pebble; 0 for the memory backend), as of its last checkpoint.",
		Kind: arrowexec.Gauge, PerSubtask: true}
)

var _ arrowexec.MetricsReporter = (*operator)(nil)

// ReportMetrics implements arrowexec.MetricsReporter for one subtask:
// values the operator published on its own goroutine.
func (o *operator) ReportMetrics(emit func(arrowexec.Metric)) {
	emit(arrowexec.Metric{Desc: cachedDesc, Value: float64(o.pubCached.Load())})
	emit(arrowexec.Metric{Desc: diskDesc, Value: float64(o.pubDisk.Load())})
}

var _ arrowexec.MetricsReporter = (*Spec)(nil)

// ReportMetrics implements arrowexec.MetricsReporter (Stats).
func (s *Spec) ReportMetrics(emit func(arrowexec.Metric)) {
	st := s.Stats()
	emit(arrowexec.Metric{Desc: lateDesc, Value: float64(st.LateRows)})
	emit(arrowexec.Metric{Desc: firedDesc, Value: float64(st.Fired)})
	emit(arrowexec.Metric{Desc: updatesDesc, Value: float64(st.Updates)})
	emit(arrowexec.Metric{Desc: purgedDesc, Value: float64(st.Purged)})
}
