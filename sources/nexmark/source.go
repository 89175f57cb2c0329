package nexmark

import (
	"context"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/riffle-dev/riffle/arrowexec"
)

// maxPaceWait bounds how long a paced reader waits in Next before it
// returns (nil, nil), so the runtime can inject barriers and watermarks.
const maxPaceWait = 100 * time.Millisecond

// Source is an arrowexec.Source of one Nexmark table.
type Source struct {
	g *Generator
	// now is the wall clock of paced readers and wait how they wait for
	// it (tests replace both).
	now  func() time.Time
	wait func(ctx context.Context, d time.Duration) error
}

// NewSource returns a source of o.Table.
func NewSource(o Options) (*Source, error) {
	g, err := New(o)
	if err != nil {
		return nil, err
	}
	return &Source{g: g, now: time.Now}, nil
}

// Generator returns the source's generator.
func (s *Source) Generator() *Generator { return s.g }

// Schema implements arrowexec.Source.
func (s *Source) Schema() *arrow.Schema { return s.g.o.Table.Schema() }

// Open implements arrowexec.Source: subtask i of p generates the blocks
// of BatchEvents positions i, i+p, i+2p, ..., or on a restore its share of
// the streams the previous run's subtasks left (see checkpoint.go).
func (s *Source) Open(ctx context.Context, t *arrowexec.Task) (arrowexec.SourceReader, error) {
	if t.Parallelism < 1 || t.Subtask < 0 || t.Subtask >= t.Parallelism {
		return nil, fmt.Errorf("nexmark: subtask %d of %d", t.Subtask, t.Parallelism)
	}
	mem := t.Mem
	if mem == nil {
		mem = s.g.o.Mem
	}
	r := &Reader{g: s.g, mem: newRecycler(mem), now: s.now, wait: s.wait}
	if t.Restore != nil && len(t.Restore.Operator) > 0 {
		all, err := s.restoreStreams(t.Restore.Operator)
		if err != nil {
			return nil, fmt.Errorf("nexmark: restore subtask %d of checkpoint %d: %w", t.Subtask, t.Restore.CheckpointID, err)
		}
		r.streams = shareStreams(all, t.Subtask, t.Parallelism, int64(s.g.o.BatchEvents))
		return r, nil
	}
	be := int64(s.g.o.BatchEvents)
	r.streams = []stream{{block: int64(t.Subtask), stride: int64(t.Parallelism), cur: int64(t.Subtask) * be}}
	return r, nil
}

// stream is a run of blocks a reader generates: block, block+stride,
// block+2·stride, ...; cur is the next position to emit, inside block.
type stream struct{ block, stride, cur int64 }

// Reader is one subtask of a Source.
type Reader struct {
	g       *Generator
	mem     *recycler // the task's allocator, recycling the batches' buffers
	now     func() time.Time
	wait    func(ctx context.Context, d time.Duration) error
	streams []stream // one on a fresh start; any number after a restore
	start   time.Time
	timer   *time.Timer
}

// next returns the index of the unfinished stream with the smallest next
// position (so a reader of several streams emits in position order), or -1.
func (r *Reader) next() int {
	k := -1
	for i, s := range r.streams {
		if r.g.o.Events > 0 && s.cur >= r.g.o.Events {
			continue
		}
		if k < 0 || s.cur < r.streams[k].cur {
			k = i
		}
	}
	return k
}

// Next implements arrowexec.SourceReader: the events of the table among
// the next positions of the current block of the stream furthest behind
// (all of them, or with Pace those due by now).
func (r *Reader) Next(ctx context.Context) (arrow.RecordBatch, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	k := r.next()
	if k < 0 {
		return nil, io.EOF
	}
	s := &r.streams[k]
	o := &r.g.o
	be := int64(o.BatchEvents)
	hi := (s.block + 1) * be
	if o.Events > 0 {
		hi = min(hi, o.Events)
	}
	if o.Pace {
		if r.start.IsZero() {
			r.start = r.now()
		}
		// Positions p < due have date_time - base <= elapsed ms.
		el := r.now().Sub(r.start).Milliseconds()
		due := ((el+1)*o.Rate + 999) / 1000
		if due <= s.cur {
			wait := time.Duration(r.g.EventTime(s.cur)-r.g.base-el) * time.Millisecond
			d := min(max(wait, time.Millisecond), maxPaceWait)
			if r.wait != nil {
				return nil, r.wait(ctx, d)
			}
			return nil, r.sleep(ctx, d)
		}
		hi = min(hi, due)
	}
	b, err := r.g.Batch(r.mem, o.Table, s.cur, hi)
	if err != nil {
		return nil, err
	}
	s.cur = hi
	if hi == (s.block+1)*be {
		s.block += s.stride
		s.cur = s.block * be
	}
	return b, nil
}

func (r *Reader) sleep(ctx context.Context, d time.Duration) error {
	if r.timer == nil {
		r.timer = time.NewTimer(d)
	} else {
		r.timer.Reset(d)
	}
	select {
	case <-r.timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// CurrentWatermark implements arrowexec.WatermarkSource: every event the
// reader has yet to emit has a date_time at or after that of the first
// event number of the out-of-order group of its next position; the
// watermark is one millisecond less, minus Options.WatermarkDelay.
func (r *Reader) CurrentWatermark() (int64, bool) {
	cur := int64(math.MaxInt64)
	for _, s := range r.streams {
		cur = min(cur, s.cur)
	}
	if len(r.streams) == 0 { // restored with nothing left to do
		cur = r.g.o.Events
	}
	return r.g.minTimeFrom(cur) - 1 - r.g.o.WatermarkDelay.Milliseconds(), false
}

// SuspendWatermark implements arrowexec.SuspendWatermarker: the same
// watermark (the generator knows its future event times).
func (r *Reader) SuspendWatermark() int64 {
	wm, _ := r.CurrentWatermark()
	return wm
}

// Close implements arrowexec.SourceReader. It frees the buffers kept for
// reuse; batches still held downstream free theirs to the task's
// allocator when released.
func (r *Reader) Close() error {
	if r.timer != nil {
		r.timer.Stop()
	}
	r.mem.close()
	return nil
}

var (
	_ arrowexec.Source             = (*Source)(nil)
	_ arrowexec.WatermarkSource    = (*Reader)(nil)
	_ arrowexec.SuspendWatermarker = (*Reader)(nil)
	_ arrowexec.Checkpointer       = (*Reader)(nil)
)
