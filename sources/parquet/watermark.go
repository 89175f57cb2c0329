package parquet

import (
	"fmt"
	"slices"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/parquet/metadata"

	"github.com/riffle-dev/riffle/arrowexec"
)

// Event-time watermarks.
//
// With Options.Watermark set, a reader reports watermarks only when it
// reads its row groups in event-time order: every row group of the
// subtask has min/max statistics for the event-time column and each starts
// no earlier than the previous one's maximum minus MaxOutOfOrderness. The
// watermark is then the bounded out-of-orderness watermark of the rows read
// (arrowexec.Watermarks, one split), capped by the smallest event time the
// statistics allow in the row groups not started yet, minus one. Otherwise
// (the default for files not sorted by time) the reader reports no
// progress and the runtime's final watermark at the end of input, which is
// exact, fires every window once.

// readerWM is the watermark state of one reader.
type readerWM struct {
	ordered  bool
	col      int // index of the event-time column in the batches
	tracker  *arrowexec.Watermarks
	minAfter []int64 // minAfter[i]: smallest event time in items[i:]
}

// groupTimeRange returns the event-time range in milliseconds of surviving
// row group g from its statistics.
func (s *Source) groupTimeRange(g int, c column) (lo, hi int64, ok bool) {
	rg := s.groups[g]
	if s.layouts != nil { // resolve the column in this file
		l := s.layouts[rg.file]
		j := slices.IndexFunc(s.columns, func(pc column) bool { return pc.name == c.name })
		if j < 0 || l.out[j] < 0 {
			return 0, 0, false
		}
		c = l.cols[l.out[j]]
	}
	md := s.files[rg.file].meta.RowGroup(rg.index)
	cc, err := md.ColumnChunk(c.leaf)
	if err != nil {
		return 0, 0, false
	}
	st, err := cc.Statistics()
	if err != nil || st == nil || !st.HasMinMax() || st.NullCount() > 0 {
		return 0, 0, false
	}
	is, ok := st.(*metadata.Int64Statistics)
	if !ok {
		return 0, 0, false
	}
	lo, hi = is.Min(), is.Max()
	if ts, isTS := c.field.Type.(*arrow.TimestampType); isTS {
		switch ts.Unit {
		case arrow.Second:
			lo, hi = lo*1000, hi*1000
		case arrow.Microsecond:
			lo, hi = floorDiv(lo, 1000), floorDiv(hi, 1000)
		case arrow.Nanosecond:
			lo, hi = floorDiv(lo, 1000000), floorDiv(hi, 1000000)
		}
	}
	return lo, hi, true
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// checkWatermark validates Options.Watermark against the projection.
func (s *Source) checkWatermark() error {
	w := s.opts.Watermark
	if w.Column == "" {
		return nil
	}
	if err := w.Validate(s.schema); err != nil {
		return fmt.Errorf("parquet: watermark: %w (the event-time column must be projected)", err)
	}
	return nil
}

// newReaderWM decides whether a reader over items reads in event-time
// order, or returns nil without a watermark strategy.
func (s *Source) newReaderWM(items []workItem) *readerWM {
	w := s.opts.Watermark
	if w.Column == "" {
		return nil
	}
	col := s.schema.FieldIndices(w.Column)[0]
	var c column
	for _, pc := range s.columns {
		if pc.name == w.Column {
			c = pc
		}
	}
	rw := &readerWM{ordered: true, col: col, tracker: arrowexec.NewWatermarks(arrowexec.WatermarkStrategy{Column: w.Column, MaxOutOfOrderness: w.MaxOutOfOrderness}, nil)}
	rw.tracker.AddSplit(0)
	rw.minAfter = make([]int64, len(items)+1)
	rw.minAfter[len(items)] = arrowexec.MaxWatermark
	ooo := w.MaxOutOfOrderness.Milliseconds()
	prevHi := arrowexec.MinWatermark
	los := make([]int64, len(items))
	for i, it := range items {
		lo, hi, ok := s.groupTimeRange(it.group, c)
		if !ok || (prevHi != arrowexec.MinWatermark && lo < prevHi-ooo) {
			rw.ordered = false
			return rw
		}
		los[i] = lo
		prevHi = max(prevHi, hi)
	}
	for i := len(items) - 1; i >= 0; i-- {
		rw.minAfter[i] = min(los[i], rw.minAfter[i+1])
	}
	return rw
}

// observe feeds a batch's event times to the bounded watermark (also when
// the row groups are not in order: SuspendWatermark needs it).
func (w *readerWM) observe(b arrow.RecordBatch) error {
	if w == nil {
		return nil
	}
	return w.tracker.Observe(0, b.Column(w.col))
}

// SuspendWatermark implements arrowexec.SuspendWatermarker: the bounded
// out-of-orderness watermark of the rows read so far (largest event time
// minus the bound minus one), whether or not the row groups are in order;
// MinWatermark without a strategy or before any row.
func (r *Reader) SuspendWatermark() int64 {
	if r.wm == nil {
		return arrowexec.MinWatermark
	}
	wm, _ := r.wm.tracker.Current()
	return wm
}

// EventTimeOrdered reports whether the reader emits watermarks (its row
// groups are in event-time order); false without a watermark strategy.
func (r *Reader) EventTimeOrdered() bool { return r.wm != nil && r.wm.ordered }

// CurrentWatermark implements arrowexec.WatermarkSource.
func (r *Reader) CurrentWatermark() (int64, bool) {
	if r.wm == nil || !r.wm.ordered {
		return arrowexec.MinWatermark, false
	}
	next := r.cur
	if next < len(r.items) && r.gd != nil && r.done >= r.items[next].rows {
		next++ // the current row group is finished
	}
	// After the last row group the statistics promise nothing: the end of
	// input brings the final watermark from the runtime, unless the input
	// is only suspended (RunOptions.HoldAtEnd) and continues elsewhere.
	exact := arrowexec.MinWatermark
	if c := r.wm.minAfter[min(next, len(r.items))]; c != arrowexec.MaxWatermark {
		exact = c - 1
	}
	// The bound applies within the current row group; later ones cap it.
	bounded, _ := r.wm.tracker.Current()
	if started := min(r.cur+1, len(r.items)); r.wm.minAfter[started] != arrowexec.MaxWatermark {
		bounded = min(bounded, r.wm.minAfter[started]-1)
	}
	return max(exact, bounded), false
}

var (
	_ arrowexec.WatermarkSource    = (*Reader)(nil)
	_ arrowexec.SuspendWatermarker = (*Reader)(nil)
)
