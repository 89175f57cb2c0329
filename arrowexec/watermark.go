package arrowexec

import (
	"fmt"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// Event time in riffle is int64 milliseconds since the Unix epoch. An
// event-time column is a timestamp column (any unit, converted) or an int64
// column holding milliseconds.

// WatermarkStrategy says how a source derives watermarks: bounded
// out-of-orderness over an event-time column, per split (file, row group
// range, Kafka partition), combined as the minimum over the splits a
// subtask reads. A split that delivered nothing for IdleTimeout is idle and
// left out of the minimum until it delivers again, so one quiet partition
// cannot stall the job.
type WatermarkStrategy struct {
	Column            string
	MaxOutOfOrderness time.Duration
	IdleTimeout       time.Duration // 0: splits never go idle
}

// Validate checks the strategy against a source schema.
func (s WatermarkStrategy) Validate(schema *arrow.Schema) error {
	if s.Column == "" {
		return nil
	}
	idx := schema.FieldIndices(s.Column)
	if len(idx) != 1 {
		return fmt.Errorf("arrowexec: event-time column %q not in schema (have %s)", s.Column, fieldNames(schema))
	}
	switch dt := schema.Field(idx[0]).Type.(type) {
	case *arrow.TimestampType:
	case *arrow.Int64Type:
	default:
		return fmt.Errorf("arrowexec: event-time column %q has type %s, want timestamp or int64 milliseconds", s.Column, dt)
	}
	if s.MaxOutOfOrderness < 0 || s.IdleTimeout < 0 {
		return fmt.Errorf("arrowexec: negative watermark durations")
	}
	return nil
}

// EventTimesMillis returns the event times of a column as milliseconds,
// reusing dst. Nulls are reported through the column's validity bitmap and
// their slots hold 0.
func EventTimesMillis(col arrow.Array, dst []int64) ([]int64, error) {
	dst = grow(dst, col.Len())
	switch a := col.(type) {
	case *array.Int64:
		copy(dst, a.Int64Values())
	case *array.Timestamp:
		vals := timestampsAsInt64(a.TimestampValues())
		switch a.DataType().(*arrow.TimestampType).Unit {
		case arrow.Second:
			for i, v := range vals {
				dst[i] = v * 1000
			}
		case arrow.Millisecond:
			copy(dst, vals)
		case arrow.Microsecond:
			for i, v := range vals {
				dst[i] = floorDiv(v, 1000)
			}
		case arrow.Nanosecond:
			for i, v := range vals {
				dst[i] = floorDiv(v, 1000000)
			}
		}
	default:
		return nil, fmt.Errorf("arrowexec: event-time column has type %s", col.DataType())
	}
	return dst, nil
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// MaxEventTime returns the largest non-null event time in col, and false when
// every value is null.
func MaxEventTime(col arrow.Array, scratch []int64) (int64, bool, []int64, error) {
	ts, err := EventTimesMillis(col, scratch)
	if err != nil {
		return 0, false, scratch, err
	}
	max, ok := MinWatermark, false
	if col.NullN() == 0 {
		for _, v := range ts {
			if v > max {
				max = v
			}
		}
		return max, len(ts) > 0, ts, nil
	}
	for i, v := range ts {
		if col.IsValid(i) && v > max {
			max, ok = v, true
		}
	}
	return max, ok, ts, nil
}

// Watermarks tracks per-split event-time maxima for one source subtask and
// derives its watermark. It is not safe for concurrent use.
type Watermarks struct {
	s       WatermarkStrategy
	now     func() time.Time
	splits  map[int]*splitWM
	scratch []int64
	// pubTo and pubName: see ReportTo.
	pubTo   *TaskMetrics
	pubName func(split int) string
}

type splitWM struct {
	max      int64
	seen     bool
	last     time.Time
	finished bool
	pub      *SplitMetrics // nil unless reported
}

// ReportTo publishes every split's watermark and idleness, as Current
// computes them, to m's splits (TaskMetrics.AddSplit), the split named
// name(split): a Kafka reader names its partitions.
func (w *Watermarks) ReportTo(m *TaskMetrics, name func(split int) string) {
	w.pubTo, w.pubName = m, name
	for id, sp := range w.splits {
		w.publish(id, sp)
	}
}

func (w *Watermarks) publish(id int, sp *splitWM) {
	if w.pubTo == nil || sp.pub != nil {
		return
	}
	sp.pub = w.pubTo.AddSplit(w.pubName(id))
	sp.pub.Finished.Store(sp.finished)
}

// NewWatermarks returns a tracker; now is the clock for idleness (nil:
// time.Now).
func NewWatermarks(s WatermarkStrategy, now func() time.Time) *Watermarks {
	if now == nil {
		now = time.Now
	}
	return &Watermarks{s: s, now: now, splits: map[int]*splitWM{}}
}

// AddSplit registers a split before it delivers data, so that the
// watermark waits for it.
func (w *Watermarks) AddSplit(split int) {
	if _, ok := w.splits[split]; !ok {
		sp := &splitWM{max: MinWatermark, last: w.now()}
		w.splits[split] = sp
		w.publish(split, sp)
	}
}

// ObserveMax records that split delivered data with the given maximum event
// time.
func (w *Watermarks) ObserveMax(split int, max int64) {
	w.AddSplit(split)
	sp := w.splits[split]
	if max > sp.max {
		sp.max = max
	}
	sp.seen = true
	sp.last = w.now()
}

// Observe records a batch of split: one vectorized max over the event-time
// column.
func (w *Watermarks) Observe(split int, col arrow.Array) error {
	max, ok, scratch, err := MaxEventTime(col, w.scratch)
	w.scratch = scratch
	if err != nil {
		return err
	}
	if ok {
		w.ObserveMax(split, max)
	} else {
		w.AddSplit(split)
		w.splits[split].last = w.now()
	}
	return nil
}

// Touch marks split as active without data (e.g. a poll that returned
// nothing does not count; a fetch that returned records does).
func (w *Watermarks) Touch(split int) {
	w.AddSplit(split)
	w.splits[split].last = w.now()
}

// FinishSplit says split delivers nothing more: it no longer holds the
// watermark back.
func (w *Watermarks) FinishSplit(split int) {
	w.AddSplit(split)
	sp := w.splits[split]
	sp.finished = true
	if sp.pub != nil {
		sp.pub.Finished.Store(true)
	}
}

// Current returns the watermark (the minimum over active splits of the
// split's maximum event time minus the out-of-orderness bound minus one
// millisecond) and whether every unfinished split is idle.
func (w *Watermarks) Current() (wm int64, idle bool) {
	wm = MaxWatermark
	active, open := 0, 0
	now := w.now()
	for _, sp := range w.splits {
		if sp.finished {
			continue
		}
		open++
		v := MinWatermark
		if sp.seen {
			v = sp.max - w.s.MaxOutOfOrderness.Milliseconds() - 1
		}
		idle := w.s.IdleTimeout > 0 && now.Sub(sp.last) >= w.s.IdleTimeout
		if sp.pub != nil {
			sp.pub.Watermark.Store(v)
			sp.pub.Idle.Store(idle)
		}
		if idle {
			continue
		}
		active++
		if v < wm {
			wm = v
		}
	}
	if open == 0 {
		return MaxWatermark, false
	}
	if active == 0 {
		return MinWatermark, true
	}
	return wm, false
}
