package exectest

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/riffle-dev/riffle/arrowexec"
)

// Source serves fixed batches: batch i goes to subtask i % parallelism. It
// retains the batches it is given; call Release when done with it.
type Source struct {
	schema  *arrow.Schema
	batches []arrow.RecordBatch
	// EventTime, if >= 0, is the index of an int64 column whose running
	// maximum (minus Lag) the readers report as their watermark.
	EventTime int
	Lag       int64
}

// NewSource returns a source over batches (retained).
func NewSource(schema *arrow.Schema, batches []arrow.RecordBatch) *Source {
	for _, b := range batches {
		b.Retain()
	}
	return &Source{schema: schema, batches: batches, EventTime: -1}
}

// Release drops the source's references.
func (s *Source) Release() {
	for _, b := range s.batches {
		b.Release()
	}
	s.batches = nil
}

func (s *Source) Schema() *arrow.Schema { return s.schema }

func (s *Source) Open(ctx context.Context, t *arrowexec.Task) (arrowexec.SourceReader, error) {
	r := &reader{src: s, wm: arrowexec.MinWatermark}
	for i := t.Subtask; i < len(s.batches); i += t.Parallelism {
		r.mine = append(r.mine, s.batches[i])
	}
	return r, nil
}

type reader struct {
	src  *Source
	mine []arrow.RecordBatch
	pos  int
	rows int64
	wm   int64
}

// SnapshotState records the number of rows this reader emitted so far, as a
// decimal string, so tests can check barrier alignment.
func (r *reader) SnapshotState(context.Context, uint64) (arrowexec.SubtaskSnapshot, error) {
	return arrowexec.SubtaskSnapshot{Operator: []byte(fmt.Sprint(r.rows))}, nil
}

func (r *reader) Next(ctx context.Context) (arrow.RecordBatch, error) {
	if r.pos >= len(r.mine) {
		return nil, io.EOF
	}
	b := r.mine[r.pos]
	r.pos++
	r.rows += b.NumRows()
	b.Retain()
	if r.src.EventTime >= 0 {
		for _, v := range b.Column(r.src.EventTime).(interface{ Int64Values() []int64 }).Int64Values() {
			if v-r.src.Lag > r.wm {
				r.wm = v - r.src.Lag
			}
		}
	}
	return b, nil
}

func (r *reader) CurrentWatermark() (int64, bool) {
	if r.src.EventTime < 0 {
		return arrowexec.MinWatermark, false
	}
	return r.wm, false
}

// SuspendWatermark implements arrowexec.SuspendWatermarker: the watermark
// of the rows read so far (largest event time minus Lag), MinWatermark
// before any.
func (r *reader) SuspendWatermark() int64 {
	if r.src.EventTime < 0 {
		return arrowexec.MinWatermark
	}
	return r.wm
}

// Position returns how many batches this reader emitted.
func (r *reader) Position() int { return r.pos }

func (r *reader) Close() error { return nil }

// Sink collects every batch it receives, per subtask, retained.
type Sink struct {
	mu         sync.Mutex
	Batches    map[int][]arrow.RecordBatch
	Watermarks map[int][]int64
	Finished   map[int]bool
}

// NewSink returns an empty collecting sink.
func NewSink() *Sink {
	return &Sink{Batches: map[int][]arrow.RecordBatch{}, Watermarks: map[int][]int64{}, Finished: map[int]bool{}}
}

func (s *Sink) Schema([]*arrow.Schema) (*arrow.Schema, error) { return nil, nil }

func (s *Sink) New(t *arrowexec.Task) (arrowexec.Operator, error) {
	return &sinkOp{s: s, subtask: t.Subtask}, nil
}

// All returns every collected batch, subtask by subtask.
func (s *Sink) All() []arrow.RecordBatch {
	s.mu.Lock()
	defer s.mu.Unlock()
	subtasks := slices.Sorted(maps.Keys(s.Batches))
	var out []arrow.RecordBatch
	for _, i := range subtasks {
		out = append(out, s.Batches[i]...)
	}
	return out
}

// LastWatermark returns the newest watermark subtask received, or
// MinWatermark before any.
func (s *Sink) LastWatermark(subtask int) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	wms := s.Watermarks[subtask]
	if len(wms) == 0 {
		return arrowexec.MinWatermark
	}
	return wms[len(wms)-1]
}

// Release drops all collected batches.
func (s *Sink) Release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, bs := range s.Batches {
		for _, b := range bs {
			b.Release()
		}
	}
	s.Batches = map[int][]arrow.RecordBatch{}
}

type sinkOp struct {
	s       *Sink
	subtask int
	closed  bool
}

func (o *sinkOp) Open(context.Context) error { return nil }

func (o *sinkOp) Process(_ context.Context, _ int, b arrow.RecordBatch, _ arrowexec.Emitter) error {
	b.Retain()
	o.s.mu.Lock()
	o.s.Batches[o.subtask] = append(o.s.Batches[o.subtask], b)
	o.s.mu.Unlock()
	return nil
}

func (o *sinkOp) OnWatermark(_ context.Context, wm int64, _ arrowexec.Emitter) error {
	o.s.mu.Lock()
	o.s.Watermarks[o.subtask] = append(o.s.Watermarks[o.subtask], wm)
	o.s.mu.Unlock()
	return nil
}

func (o *sinkOp) Finish(context.Context, arrowexec.Emitter) error {
	o.s.mu.Lock()
	o.s.Finished[o.subtask] = true
	o.s.mu.Unlock()
	return nil
}

func (o *sinkOp) Close() error {
	if o.closed {
		return fmt.Errorf("exectest: sink closed twice")
	}
	o.closed = true
	return nil
}

// Func is a Spec whose operators apply Fn to every batch. Fn's result is
// emitted (ownership passes to the runtime); Fn may return nil to drop.
type Func struct {
	Out *arrow.Schema // nil: same as the first input
	Fn  func(t *arrowexec.Task, b arrow.RecordBatch) (arrow.RecordBatch, error)
}

func (f *Func) Schema(in []*arrow.Schema) (*arrow.Schema, error) {
	if f.Out != nil {
		return f.Out, nil
	}
	return in[0], nil
}

func (f *Func) New(t *arrowexec.Task) (arrowexec.Operator, error) { return &funcOp{f: f, t: t}, nil }

type funcOp struct {
	f *Func
	t *arrowexec.Task
}

func (o *funcOp) Open(context.Context) error { return nil }

func (o *funcOp) Process(ctx context.Context, _ int, b arrow.RecordBatch, out arrowexec.Emitter) error {
	r, err := o.f.Fn(o.t, b)
	if err != nil || r == nil {
		return err
	}
	return out.Emit(ctx, r)
}

func (o *funcOp) Finish(context.Context, arrowexec.Emitter) error { return nil }
func (o *funcOp) Close() error                                    { return nil }

// Identity forwards every batch unchanged.
func Identity() *Func {
	return &Func{Fn: func(_ *arrowexec.Task, b arrow.RecordBatch) (arrow.RecordBatch, error) {
		b.Retain()
		return b, nil
	}}
}

// Replay serves fixed batches from one subtask, reporting the watermark
// max(event time) - Lag after each batch (EventTime: the index of an int64
// column). Its reader state is its position and watermark, and a restore
// resumes there, so tests can crash a job and restore it. With Gated, it
// serves only batches below the limit SetLimit raised and returns no data
// at the limit (so barriers still pass), and ends after the last batch;
// Served is the position reached.
type Replay struct {
	schema    *arrow.Schema
	batches   []arrow.RecordBatch
	EventTime int
	Lag       int64
	Gated     bool
	limit     atomic.Int64
	served    atomic.Int64
}

// NewReplay returns a replaying source over batches (borrowed: they must
// outlive every job that reads them).
func NewReplay(schema *arrow.Schema, batches []arrow.RecordBatch, eventTime int, lag int64) *Replay {
	return &Replay{schema: schema, batches: batches, EventTime: eventTime, Lag: lag}
}

// SetLimit lets a gated source serve batches below n.
func (s *Replay) SetLimit(n int) { s.limit.Store(int64(n)) }

// Served returns the position the source reached.
func (s *Replay) Served() int { return int(s.served.Load()) }

// Position parses the position out of a reader's snapshot.
func Position(snap arrowexec.SubtaskSnapshot) (int, error) {
	var pos int
	var wm int64
	_, err := fmt.Sscanf(string(snap.Operator), "%d %d", &pos, &wm)
	return pos, err
}

func (s *Replay) Schema() *arrow.Schema { return s.schema }

func (s *Replay) Open(_ context.Context, t *arrowexec.Task) (arrowexec.SourceReader, error) {
	r := &replayReader{s: s, wm: arrowexec.MinWatermark}
	if rs := t.Restore; rs != nil {
		if _, err := fmt.Sscanf(string(rs.Operator[0]), "%d %d", &r.pos, &r.wm); err != nil {
			return nil, fmt.Errorf("exectest: restore: %w", err)
		}
	}
	return r, nil
}

type replayReader struct {
	s   *Replay
	pos int
	wm  int64
}

func (r *replayReader) SnapshotState(context.Context, uint64) (arrowexec.SubtaskSnapshot, error) {
	return arrowexec.SubtaskSnapshot{Operator: []byte(fmt.Sprintf("%d %d", r.pos, r.wm))}, nil
}

func (r *replayReader) Next(context.Context) (arrow.RecordBatch, error) {
	if r.pos >= len(r.s.batches) {
		return nil, io.EOF
	}
	if r.s.Gated && int64(r.pos) >= r.s.limit.Load() {
		// Nothing to serve yet: no data, so the runtime injects barriers.
		time.Sleep(100 * time.Microsecond)
		return nil, nil
	}
	b := r.s.batches[r.pos]
	b.Retain()
	r.pos++
	for _, v := range b.Column(r.s.EventTime).(interface{ Int64Values() []int64 }).Int64Values() {
		r.wm = max(r.wm, v-r.s.Lag)
	}
	r.s.served.Store(int64(r.pos))
	return b, nil
}

func (r *replayReader) CurrentWatermark() (int64, bool) { return r.wm, false }
func (r *replayReader) Close() error                    { return nil }
