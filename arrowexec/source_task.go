package arrowexec

import (
	"context"
	"fmt"
	"io"
	"time"
)

func (st *subtask) runSource(ctx context.Context) (err error) {
	defer close(st.finished)
	r, err := st.node.source.Open(ctx, st.task)
	if err != nil {
		return err
	}
	defer func() { err = st.closed(err, r.Close()) }()
	st.setReporter(r)
	if err := st.openChain(ctx); err != nil {
		return err
	}
	wms, _ := r.(WatermarkSource)
	lastWM, lastIdle := MinWatermark, false
	stopped := false
	empty := false // the last Next returned no data
	st.out.clk.start(st.task.Metrics)
	for {
		if err := st.notifyCompleted(ctx, r); err != nil {
			return err
		}
		select {
		case <-st.job.stopCh:
			stopped = true
		default:
		}
		if stopped {
			break
		}
		select {
		case b := <-st.trigger:
			if err := st.snapshot(ctx, r, b); err != nil {
				return err
			}
			if err := st.out.control(ctx, Message{Kind: KindBarrier, Barrier: b}); err != nil {
				return err
			}
			// Stop-with-savepoint: nothing this source emits may come after
			// the savepoint, so it ends right behind the barrier.
			stopped = b.Stop
		default:
		}
		if stopped {
			break
		}
		if err := ctx.Err(); err != nil {
			return context.Cause(ctx)
		}
		// The clock is read around Next only after a read that returned
		// no data (an idle streak); a read returning data ticks.
		var from time.Time
		if empty {
			from = st.out.clk.wait()
		}
		b, err := r.Next(ctx)
		wasEmpty := empty
		empty = b == nil || b.NumRows() == 0
		switch {
		case wasEmpty:
			st.out.clk.waited(from, empty)
		case empty:
			st.out.clk.settle(time.Now()) // the first empty read counts as busy
		default:
			st.out.clk.tick()
		}
		if err == io.EOF && st.job.opts.HoldAtEnd {
			if stopped, err = st.holdAtEnd(ctx, r, lastWM); err != nil {
				return err
			}
			break
		}
		if err == io.EOF {
			break
		}
		if err != nil && st.job.opts.DrainOnSourceError && ctx.Err() == nil {
			st.job.sourceFailed(st, err)
			stopped = true
			break
		}
		if err != nil {
			return err
		}
		if b != nil {
			if b.NumRows() == 0 {
				b.Release()
			} else {
				n := BatchBytes(b)
				st.task.Metrics.RowsIn.Add(b.NumRows())
				st.task.Metrics.BatchesIn.Add(1)
				st.task.Metrics.ArrowBytesIn.Add(n)
				if !st.out.wired() {
					b.Release()
				} else if err := st.out.emit(ctx, b, n); err != nil {
					return err
				}
			}
		}
		if wms != nil {
			wm, idle := wms.CurrentWatermark()
			switch {
			case idle && !lastIdle:
				lastIdle = true
				st.task.Metrics.Idle.Store(true)
				if err := st.out.control(ctx, Message{Kind: KindWatermark, Watermark: lastWM, Idle: true}); err != nil {
					return err
				}
			case !idle && (wm > lastWM || lastIdle):
				lastIdle = false
				st.task.Metrics.Idle.Store(false)
				if wm > lastWM {
					lastWM = wm
				}
				st.task.Metrics.Watermark.Store(lastWM)
				if err := st.out.control(ctx, Message{Kind: KindWatermark, Watermark: lastWM}); err != nil {
					return err
				}
			}
		}
	}
	if st.stoppedByBarrier {
		if err := st.awaitStopCompletion(ctx, r); err != nil {
			return err
		}
	}
	if cp, ok := r.(Checkpointer); ok {
		st.finalSnap, st.finalErr = cp.SnapshotState(ctx, 0)
		if st.finalErr != nil {
			// Checkpoints after this one and FinalSnapshots (a backfill's
			// savepoint) would miss this subtask's position.
			return fmt.Errorf("final snapshot: %w", st.finalErr)
		}
	}
	if !stopped || st.job.drain.Load() {
		st.task.Metrics.Idle.Store(false)
		st.task.Metrics.Watermark.Store(MaxWatermark)
		if err := st.out.control(ctx, Message{Kind: KindWatermark, Watermark: MaxWatermark}); err != nil {
			return err
		}
	}
	err = st.out.control(ctx, Message{Kind: KindEndOfInput})
	st.out.clk.settle(time.Now())
	return err
}

// holdAtEnd suspends a source at the end of its input (RunOptions.HoldAtEnd):
// it emits the reader's suspend watermark (or an idle status), then takes
// part in checkpoints until a Stop barrier or Job.Stop. It reports whether
// the source was stopped (always, unless the context ended).
func (st *subtask) holdAtEnd(ctx context.Context, r SourceReader, lastWM int64) (bool, error) {
	wm := MinWatermark
	if sw, ok := r.(SuspendWatermarker); ok {
		wm = sw.SuspendWatermark()
	}
	var m Message
	switch {
	case wm == MinWatermark:
		// Nothing read: leave this channel out of downstream minimums.
		m = Message{Kind: KindWatermark, Watermark: lastWM, Idle: true}
		st.task.Metrics.Idle.Store(true)
	default:
		m = Message{Kind: KindWatermark, Watermark: max(wm, lastWM)}
		st.task.Metrics.Watermark.Store(m.Watermark)
		st.task.Metrics.Idle.Store(false)
	}
	if err := st.out.control(ctx, m); err != nil {
		return false, err
	}
	if st.job.holding.Add(-1) == 0 {
		close(st.job.atEnd)
	}
	for {
		if err := st.notifyCompleted(ctx, r); err != nil {
			return false, err
		}
		select {
		case <-st.job.stopCh:
			return true, nil
		case b := <-st.trigger:
			if err := st.snapshot(ctx, r, b); err != nil {
				return false, err
			}
			if err := st.out.control(ctx, Message{Kind: KindBarrier, Barrier: b}); err != nil {
				return false, err
			}
			if b.Stop {
				return true, nil
			}
		case <-st.wake:
		case <-ctx.Done():
			return false, context.Cause(ctx)
		}
	}
}
