package arrowexec

import (
	"context"
	"reflect"
	"sync/atomic"
	"time"
)

// inbox is one input channel of a subtask.
type inbox struct {
	ch      chan Message
	edge    int
	wm      int64
	ended   bool
	idle    bool // the sender declared itself idle
	blocked bool // delivered the barrier being aligned
	// from is the upstream subtask sending on ch.
	from int
	// pub mirrors wm, idle and ended for readers outside the subtask's
	// goroutine (Job.InputWatermarks); written once per control message.
	pubWM    atomic.Int64
	pubIdle  atomic.Bool
	pubEnded atomic.Bool
}

func (st *subtask) runOperator(ctx context.Context) (err error) {
	op, err := st.node.spec.New(st.task)
	if err != nil {
		return err
	}
	defer func() {
		st.async.Wait()
		err = st.closed(err, op.Close())
	}()
	st.setReporter(op)
	if err := op.Open(ctx); err != nil {
		return err
	}
	wh, _ := op.(WatermarkHandler)
	st.wm = MinWatermark
	active := len(st.inboxes)
	done := ctx.Done()
	st.doneV = reflect.ValueOf(done)
	st.out.clk.start(st.task.Metrics)
	for active > 0 {
		if err := st.notifyCompleted(ctx, op); err != nil {
			return err
		}
		in, m, ok := st.tryRecv()
		if ok {
			// Cancellation is checked once per message on this path too.
			select {
			case <-done:
				m.release()
				return context.Cause(ctx)
			default:
			}
			st.out.clk.tick()
		} else {
			from := st.out.clk.wait()
			in, m, err = st.recv(ctx)
			st.out.clk.waited(from, true)
			if err != nil {
				return err
			}
		}
		switch m.Kind {
		case KindBatch:
			if in.idle {
				in.idle = false
				in.pubIdle.Store(false)
				if st.idleOut {
					// Active again: downstream counts this subtask again.
					if err := st.advanceWatermark(ctx, wh); err != nil {
						return err
					}
				}
			}
			st.task.Metrics.RowsIn.Add(m.Batch.NumRows())
			st.task.Metrics.BatchesIn.Add(1)
			st.task.Metrics.ArrowBytesIn.Add(m.bytes)
			err := op.Process(ctx, in.edge, m.Batch, &st.out)
			m.Batch.Release()
			if err != nil {
				return err
			}
		case KindWatermark:
			in.idle = m.Idle
			if m.Watermark > in.wm {
				in.wm = m.Watermark
			}
			in.pubWM.Store(in.wm)
			in.pubIdle.Store(in.idle)
			if err := st.advanceWatermark(ctx, wh); err != nil {
				return err
			}
		case KindBarrier:
			if err := st.onBarrier(ctx, op, in, m.Barrier); err != nil {
				return err
			}
		case KindEndOfInput:
			// A naturally ended input sent MaxWatermark before this; a
			// stopped one keeps its last watermark, so a stop without drain
			// fires nothing.
			in.ended = true
			in.pubEnded.Store(true)
			st.casesOK = false
			active--
			if err := st.advanceWatermark(ctx, wh); err != nil {
				return err
			}
			if st.aligning {
				if err := st.maybeCompleteAlignment(ctx, op); err != nil {
					return err
				}
			}
		}
	}
	if st.stoppedByBarrier {
		if err := st.awaitStopCompletion(ctx, op); err != nil {
			return err
		}
	}
	st.task.suspended.Store(st.wm != MaxWatermark)
	if err := op.Finish(ctx, &st.out); err != nil {
		return err
	}
	if err := st.notifyCompleted(ctx, op); err != nil {
		return err
	}
	if err := st.out.control(ctx, Message{Kind: KindEndOfInput}); err != nil {
		return err
	}
	st.out.clk.settle(time.Now())
	return st.linger(ctx, op)
}

func (st *subtask) advanceWatermark(ctx context.Context, wh WatermarkHandler) error {
	min, active := MaxWatermark, 0
	for _, in := range st.inboxes {
		if in.idle && !in.ended {
			continue
		}
		active++
		if in.wm < min {
			min = in.wm
		}
	}
	if active == 0 {
		// Every input is idle: so is this subtask, or its downstream would
		// wait for a watermark that cannot come (a source subtask without
		// row groups or partitions behind a forward edge).
		if !st.idleOut && len(st.inboxes) > 0 {
			st.idleOut = true
			st.task.Metrics.Idle.Store(true)
			return st.out.control(ctx, Message{Kind: KindWatermark, Watermark: st.wm, Idle: true})
		}
		return nil
	}
	if min <= st.wm {
		if st.idleOut {
			st.idleOut = false
			st.task.Metrics.Idle.Store(false)
			return st.out.control(ctx, Message{Kind: KindWatermark, Watermark: st.wm})
		}
		return nil
	}
	st.wm = min
	if wh != nil {
		if err := wh.OnWatermark(ctx, min, &st.out); err != nil {
			return err
		}
	}
	st.idleOut = false
	st.task.Metrics.Idle.Store(false)
	st.task.Metrics.Watermark.Store(min)
	return st.out.control(ctx, Message{Kind: KindWatermark, Watermark: min})
}

// tryRecv returns the next message from an inbox that is neither ended
// nor blocked by barrier alignment if one is waiting, without blocking.
func (st *subtask) tryRecv() (*inbox, Message, bool) {
	if len(st.inboxes) == 1 {
		in := st.inboxes[0]
		select {
		case m := <-in.ch:
			return in, m, true
		default:
			return nil, Message{}, false
		}
	}
	st.buildCases()
	if len(st.tryCases) == 1 {
		return nil, Message{}, false
	}
	// Leave ctx.Done (case 0) out: recv, which the caller falls back on,
	// watches it.
	chosen, v, _ := reflect.Select(st.tryCases)
	if chosen == len(st.tryCases)-1 {
		return nil, Message{}, false
	}
	return st.inboxes[st.caseIdx[chosen+1]], v.Interface().(Message), true
}

// buildCases lays out the select cases over the open inboxes when they
// changed: cases (case 0 for the context's Done, doneV, set by recv) and
// tryCases (the inboxes, then a default case).
func (st *subtask) buildCases() {
	if st.casesOK {
		return
	}
	st.cases = append(st.cases[:0], reflect.SelectCase{Dir: reflect.SelectRecv, Chan: st.doneV})
	st.caseIdx = append(st.caseIdx[:0], -1)
	st.tryCases = st.tryCases[:0]
	for i, in := range st.inboxes {
		if in.ended || in.blocked {
			continue
		}
		c := reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(in.ch)}
		st.cases = append(st.cases, c)
		st.tryCases = append(st.tryCases, c)
		st.caseIdx = append(st.caseIdx, i)
	}
	st.tryCases = append(st.tryCases, reflect.SelectCase{Dir: reflect.SelectDefault})
	st.casesOK = true
}

// recv returns the next message from an inbox that is neither ended nor
// blocked by barrier alignment.
func (st *subtask) recv(ctx context.Context) (*inbox, Message, error) {
	if len(st.inboxes) == 1 {
		in := st.inboxes[0]
		select {
		case m := <-in.ch:
			return in, m, nil
		case <-ctx.Done():
			return nil, Message{}, context.Cause(ctx)
		}
	}
	st.buildCases()
	chosen, v, _ := reflect.Select(st.cases)
	if chosen == 0 {
		return nil, Message{}, context.Cause(ctx)
	}
	return st.inboxes[st.caseIdx[chosen]], v.Interface().(Message), nil
}
