package nexmark

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

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
// of BatchEvents positions i, i+p, i+2p, ...
func (s *Source) Open(ctx context.Context, t *arrowexec.Task) (arrowexec.SourceReader, error) {
	if t.Parallelism < 1 || t.Subtask < 0 || t.Subtask >= t.Parallelism {
		return nil, fmt.Errorf("nexmark: subtask %d of %d", t.Subtask, t.Parallelism)
	}
	mem := t.Mem
	if mem == nil {
		mem = s.g.o.Mem
	}
	r := &Reader{g: s.g, mem: mem, now: s.now, wait: s.wait, stride: int64(t.Parallelism), block: int64(t.Subtask)}
	r.cur = r.block * int64(s.g.o.BatchEvents)
	return r, nil
}

// Reader is one subtask of a Source.
type Reader struct {
	g      *Generator
	mem    memory.Allocator
	now    func() time.Time
	wait   func(ctx context.Context, d time.Duration) error
	stride int64
	block  int64 // current block
	cur    int64 // next position to emit, inside block
	start  time.Time
	timer  *time.Timer
}

// Next implements arrowexec.SourceReader: the events of the table among
// the next positions of the reader's current block (all of them, or with
// Pace those due by now).
func (r *Reader) Next(ctx context.Context) (arrow.RecordBatch, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	o := &r.g.o
	be := int64(o.BatchEvents)
	hi := (r.block + 1) * be
	if o.Events > 0 {
		if r.cur >= o.Events {
			return nil, io.EOF
		}
		hi = min(hi, o.Events)
	}
	if o.Pace {
		if r.start.IsZero() {
			r.start = r.now()
		}
		// Positions p < due have date_time - base <= elapsed ms.
		el := r.now().Sub(r.start).Milliseconds()
		due := ((el+1)*o.Rate + 999) / 1000
		if due <= r.cur {
			wait := time.Duration(r.g.EventTime(r.cur)-r.g.base-el) * time.Millisecond
			d := min(max(wait, time.Millisecond), maxPaceWait)
			if r.wait != nil {
				return nil, r.wait(ctx, d)
			}
			return nil, r.sleep(ctx, d)
		}
		hi = min(hi, due)
	}
	b, err := r.g.Batch(r.mem, o.Table, r.cur, hi)
	if err != nil {
		return nil, err
	}
	r.cur = hi
	if hi == (r.block+1)*be {
		r.block += r.stride
		r.cur = r.block * be
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
	return r.g.minTimeFrom(r.cur) - 1 - r.g.o.WatermarkDelay.Milliseconds(), false
}

// SuspendWatermark implements arrowexec.SuspendWatermarker: the same
// watermark (the generator knows its future event times).
func (r *Reader) SuspendWatermark() int64 {
	wm, _ := r.CurrentWatermark()
	return wm
}

// Close implements arrowexec.SourceReader.
func (r *Reader) Close() error {
	if r.timer != nil {
		r.timer.Stop()
	}
	return nil
}

var (
	_ arrowexec.Source             = (*Source)(nil)
	_ arrowexec.WatermarkSource    = (*Reader)(nil)
	_ arrowexec.SuspendWatermarker = (*Reader)(nil)
)
