package arrowexec

import (
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
)

// TaskMetrics counts what one subtask saw and produced. Fields are updated
// atomically by the runtime and may be read at any time (progress bars,
// Prometheus). The runtime updates them once per batch or control message,
// never per row.
type TaskMetrics struct {
	RowsIn     atomic.Int64
	RowsOut    atomic.Int64
	BatchesIn  atomic.Int64
	BatchesOut atomic.Int64
	// Bytes is set by sources that know how much input they consumed.
	BytesIn atomic.Int64
	// ArrowBytesIn and ArrowBytesOut count the bytes of the Arrow buffers
	// of the batches received (sources: read) and emitted (BatchBytes).
	ArrowBytesIn  atomic.Int64
	ArrowBytesOut atomic.Int64
	// Watermark is the last watermark this subtask forwarded.
	Watermark atomic.Int64
	// Idle says the subtask last told its downstream it is idle (a source
	// without data, an operator whose every input is idle): its Watermark
	// then holds nothing back.
	Idle atomic.Bool

	// Wall time of the subtask's goroutine, in nanoseconds, split three
	// ways: BusyNanos working (an operator's Process, OnWatermark and
	// snapshots; a source reader's Next when it returned data),
	// BackpressureNanos blocked on a full downstream queue, IdleNanos
	// waiting for input (an operator's empty inboxes, barrier alignment
	// included; a source reader's Next that returned no data, but the
	// first of a run of such reads, which counts as busy). The monotonic
	// clock is read around the waits that block, and every 64 messages
	// taken without waiting; time is accounted when a wait ends or at
	// those reads, so a counter may lag by up to 64 messages' work. The
	// subtasks of a chain (operator chaining) share one goroutine: its
	// time is accounted on the chain head's subtask, and the other
	// members' three counters stay zero.
	BusyNanos         atomic.Int64
	BackpressureNanos atomic.Int64
	IdleNanos         atomic.Int64
	// AlignmentNanos sums the time from the first checkpoint barrier's
	// arrival to the last input's (operators with several input
	// channels); LastAlignmentNanos is the newest alignment's, Alignments
	// counts them.
	AlignmentNanos     atomic.Int64
	LastAlignmentNanos atomic.Int64
	Alignments         atomic.Int64

	// waitFrom is when the wait for input in progress began (Unix
	// nanoseconds; 0: none), for readers of a wait not accounted yet.
	waitFrom atomic.Int64

	splitMu sync.Mutex
	splits  []*SplitMetrics
}

// Times returns the subtask's busy, backpressure and idle nanoseconds
// (BusyNanos, BackpressureNanos, IdleNanos) with the wait for input in
// progress, which the counters account only when it ends, counted as idle
// up to now: a subtask waiting for a long time shows it. (A send blocked
// on a full queue is accounted when it ends; Job.OutputBlocked tells one
// in progress.) A wait that ends during the call may be missed by it (the
// next call counts it).
func (m *TaskMetrics) Times(now time.Time) (busy, backpressure, idle int64) {
	from := m.waitFrom.Load()
	busy, backpressure, idle = m.BusyNanos.Load(), m.BackpressureNanos.Load(), m.IdleNanos.Load()
	// The wait ends by clearing waitFrom before adding to IdleNanos: when
	// it is still set, the counters read do not hold this wait.
	if d := now.UnixNano() - from; from != 0 && d > 0 && m.waitFrom.Load() == from {
		idle += d
	}
	return busy, backpressure, idle
}

// SplitMetrics is the event-time progress of one split of a source
// subtask (a Kafka partition), published by Watermarks.ReportTo.
type SplitMetrics struct {
	Split string
	// Watermark is the split's own bounded out-of-orderness watermark
	// (MinWatermark before its first row); Idle says it delivered nothing
	// for the idle timeout; Finished that it ended.
	Watermark atomic.Int64
	Idle      atomic.Bool
	Finished  atomic.Bool
}

// AddSplit registers the split named name (once per name) and returns
// its metrics.
func (m *TaskMetrics) AddSplit(name string) *SplitMetrics {
	m.splitMu.Lock()
	defer m.splitMu.Unlock()
	for _, s := range m.splits {
		if s.Split == name {
			return s
		}
	}
	s := &SplitMetrics{Split: name}
	s.Watermark.Store(MinWatermark)
	m.splits = append(m.splits, s)
	return s
}

// Splits returns the splits registered so far.
func (m *TaskMetrics) Splits() []*SplitMetrics {
	m.splitMu.Lock()
	defer m.splitMu.Unlock()
	return slices.Clone(m.splits)
}

// BatchBytes returns the bytes of the Arrow buffers b references (each
// column's buffers, its children's and dictionary's), without the
// allocation util.TotalRecordSize makes. A buffer shared by two columns,
// or by a slice, counts whole each time: an upper bound.
func BatchBytes(b arrow.RecordBatch) int64 {
	var n int64
	for _, c := range b.Columns() {
		n += dataBytes(c.Data())
	}
	return n
}

func dataBytes(d arrow.ArrayData) int64 {
	var n int64
	for _, buf := range d.Buffers() {
		if buf != nil {
			n += int64(buf.Len())
		}
	}
	for _, c := range d.Children() {
		n += dataBytes(c)
	}
	if d.DataType().ID() == arrow.DICTIONARY {
		n += dataBytes(d.Dictionary())
	}
	return n
}

// clock splits a subtask goroutine's wall time into busy, backpressure and
// idle (TaskMetrics). It belongs to that goroutine. The clock is read only
// around waits that block, and every quietEvery messages that did not
// wait (tick), so a saturated subtask pays no clock read per message.
type clock struct {
	m    *TaskMetrics
	mark time.Time
	// blocked is the backpressure accounted since mark (output.put).
	blocked time.Duration
	// quiet counts messages taken without waiting since mark.
	quiet int
}

const quietEvery = 64

// tick counts a message taken without waiting; every quietEvery-th
// accounts the busy time since the mark.
func (c *clock) tick() {
	c.quiet++
	if c.quiet >= quietEvery {
		c.settle(time.Now())
	}
}

// settle accounts the time from the mark to now, less backpressure, as
// busy, and moves the mark to now.
func (c *clock) settle(now time.Time) {
	if d := now.Sub(c.mark) - c.blocked; d > 0 {
		c.m.BusyNanos.Add(int64(d))
	}
	c.blocked, c.quiet, c.mark = 0, 0, now
}

func (c *clock) start(m *TaskMetrics) {
	c.m = m
	c.mark = time.Now()
}

// wait is called as the goroutine starts waiting: the time since the mark,
// less backpressure, was busy. It returns the start of the wait.
func (c *clock) wait() time.Time {
	now := time.Now()
	c.settle(now)
	c.m.waitFrom.Store(now.UnixNano())
	return now
}

// waited is called when a wait that began at from ends: idle says whether
// the time counts as idle (else busy).
func (c *clock) waited(from time.Time, idle bool) {
	now := time.Now()
	d := int64(now.Sub(from))
	c.m.waitFrom.Store(0)
	if idle {
		c.m.IdleNanos.Add(d)
	} else {
		c.m.BusyNanos.Add(d)
	}
	c.mark = now
}

// backpressure accounts d blocked on a full queue.
func (c *clock) backpressure(d time.Duration) {
	c.blocked += d
	c.m.BackpressureNanos.Add(int64(d))
}

// Histogram counts observations in fixed buckets. It is safe for
// concurrent use; Observe does not allocate. Components use it for the
// histograms they report (MetricsReporter), the checkpoint coordinator
// for checkpoint durations.
type Histogram struct {
	bounds []float64
	counts []atomic.Uint64 // per bucket (not cumulative); last: +Inf
	count  atomic.Uint64
	sum    atomic.Uint64 // float64 bits
}

// NewHistogram returns a histogram with the given increasing upper bounds
// (a +Inf bucket is implicit).
func NewHistogram(bounds ...float64) *Histogram {
	b := slices.Clone(bounds)
	slices.Sort(b)
	return &Histogram{bounds: b, counts: make([]atomic.Uint64, len(b)+1)}
}

// Observe records v.
func (h *Histogram) Observe(v float64) {
	i, _ := slices.BinarySearch(h.bounds, v)
	h.counts[i].Add(1)
	for {
		old := h.sum.Load()
		if h.sum.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+v)) {
			break
		}
	}
	h.count.Add(1)
}

// Snapshot returns the histogram's state now.
func (h *Histogram) Snapshot() HistogramSnapshot {
	s := HistogramSnapshot{Bounds: h.bounds, Cumulative: make([]uint64, len(h.bounds))}
	var c uint64
	for i := range h.bounds {
		c += h.counts[i].Load()
		s.Cumulative[i] = c
	}
	s.Count = c + h.counts[len(h.bounds)].Load()
	s.Sum = math.Float64frombits(h.sum.Load())
	return s
}

// HistogramSnapshot is a histogram at one moment: Cumulative[i] counts
// the observations <= Bounds[i]; Count all of them, Sum their sum.
type HistogramSnapshot struct {
	Bounds     []float64
	Cumulative []uint64
	Count      uint64
	Sum        float64
}

// MetricKind is the type of a reported series.
type MetricKind int

const (
	// Counter only goes up (names end in _total).
	Counter MetricKind = iota
	// Gauge goes up and down.
	Gauge
	// HistogramKind is a distribution (Metric.Histogram).
	HistogramKind
)

// MetricDesc describes a series a MetricsReporter contributes. Declare it
// once, as a package variable, and list it where the package lists its
// descriptors (the exporter describes those up front, so dashboards can be
// checked against them; a series whose descriptor is not listed is
// exported all the same).
type MetricDesc struct {
	// Name follows Prometheus conventions: riffle_ prefix, the unit in the
	// name (_seconds, _bytes), _total for counters.
	Name string
	Help string
	Kind MetricKind
	// PerSubtask: reported by an Operator or SourceReader, labelled job,
	// node and subtask; else by a Spec or Source, labelled job and node.
	PerSubtask bool
	// Labels are the names of the labels that follow those.
	Labels []string
}

// Metric is one series a MetricsReporter contributes.
type Metric struct {
	Desc *MetricDesc
	// LabelValues holds the values of Desc.Labels, in order.
	LabelValues []string
	// Value of a counter or gauge.
	Value float64
	// Histogram of a HistogramKind series.
	Histogram *HistogramSnapshot
}

// MetricsReporter is the hook through which any component contributes its
// own series to the job's metrics (a recommender's update counts, a window
// operator's open windows, a source's lag). A Spec or Source implementing
// it reports series of the whole node; an Operator or SourceReader its
// subtask's (MetricDesc.PerSubtask).
//
// ReportMetrics is called at scrape time, on the scraper's goroutine,
// concurrently with the operator's own methods, also before Open returned
// and after Close: it must read only what is safe to read from another
// goroutine (atomics, a mutex, a Histogram) and be cheap, and it must not
// keep emit. It calls emit once per series.
type MetricsReporter interface {
	ReportMetrics(emit func(Metric))
}

// ReportMetrics calls emit for every series the job's components report
// (MetricsReporter): node-level ones with subtask -1, then the subtasks'.
// A subtask's operator or reader is asked once it has been created.
func (j *Job) ReportMetrics(emit func(node string, subtask int, m Metric)) {
	for _, n := range j.g.nodes {
		var nodeLevel any = n.spec
		if n.source != nil {
			nodeLevel = n.source
		}
		if r, ok := nodeLevel.(MetricsReporter); ok {
			r.ReportMetrics(func(m Metric) { emit(n.name, -1, m) })
		}
		for i, st := range j.subtasks[n.id] {
			if r := st.reporter.Load(); r != nil {
				(*r).ReportMetrics(func(m Metric) { emit(n.name, i, m) })
			}
		}
	}
}

// setReporter makes the subtask's operator or reader report its series,
// if it is a MetricsReporter.
func (st *subtask) setReporter(v any) {
	if r, ok := v.(MetricsReporter); ok {
		st.reporter.Store(&r)
	}
}

// InputStatus is the state of one input edge of one operator subtask,
// folded from its channels (Job.InputWatermarks) the way the subtask
// folds them into its own watermark.
type InputStatus struct {
	// From is the upstream node; Edge the input's index.
	From string
	Edge int
	// Channels counts the edge's channels into this subtask (one per
	// upstream subtask that sends to it).
	Channels int
	// Queued counts the messages waiting in those channels, Capacity their
	// total capacity: Queued == Capacity is a full queue, backpressure.
	Queued, Capacity int
	// Watermark is the minimum over the edge's channels that are neither
	// idle nor ended (MinWatermark when there is none; MaxWatermark when
	// every channel ended); SlowestSubtask the upstream subtask holding it
	// (-1 without one).
	Watermark      int64
	SlowestSubtask int
	// Idle says every channel of the edge not ended is idle (and one is
	// not ended); Ended that every channel ended.
	Idle, Ended bool
}

// Inputs returns, for every subtask of node, the state of its input
// edges (InputWatermarks folded per edge), or nil for a source or an
// unknown node. Safe to call at any time.
func (j *Job) Inputs(node string) [][]InputStatus {
	n := j.g.byName[node]
	chans := j.InputWatermarks(node)
	if chans == nil {
		return nil
	}
	out := make([][]InputStatus, len(chans))
	for i, cs := range chans {
		ins := make([]InputStatus, len(n.inputs))
		for e, in := range n.inputs {
			ins[e] = InputStatus{From: in.From.name, Edge: e, Watermark: MaxWatermark, SlowestSubtask: -1, Idle: true, Ended: true}
		}
		for _, c := range cs {
			s := &ins[c.Edge]
			s.Channels++
			s.Queued += c.Queued
			s.Capacity += c.Capacity
			s.Ended = s.Ended && c.Ended
			if c.Ended {
				continue
			}
			s.Idle = s.Idle && c.Idle
			if !c.Idle && (s.SlowestSubtask < 0 || c.Watermark < s.Watermark) {
				s.SlowestSubtask, s.Watermark = c.FromSubtask, c.Watermark
			}
		}
		for e := range ins {
			s := &ins[e]
			switch {
			case s.Ended:
				s.Idle, s.Watermark = false, MaxWatermark
			case s.SlowestSubtask < 0:
				s.Watermark = MinWatermark
			}
		}
		out[i] = ins
	}
	return out
}
