package arrowexec

import (
	"context"
	"sync/atomic"
	"time"
)

// inbox is one input channel of a subtask.
//
// A subtask with several inboxes waits on one channel rather than on all
// of them (no reflect.Select, no boxing per message): its bell. A sender
// puts a message into the inbox's own channel, then the inbox's index on
// the bell; the receiver reads an index from the bell and takes the next
// message of that inbox, which is there, as tokens and messages of one
// inbox are one to one and in order. The bell's capacity is the total
// capacity of the inboxes, and there are never more tokens than messages
// queued, so ringing never blocks; each inbox keeps its own bounded
// channel, so backpressure stays per input. An inbox blocked by barrier
// alignment is not read: the receiver holds its tokens (held) and serves
// them once the alignment completed, while the messages wait in the
// inbox's channel and its sender blocks once the channel is full.
type inbox struct {
	ch      chan Message
	bell    chan int32 // nil for a subtask's only inbox
	idx     int32      // the index of this inbox in its subtask's inboxes
	held    int        // tokens read from the bell while blocked
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

// ring tells the receiving subtask that a message was put into ib.
func (ib *inbox) ring() {
	if ib.bell != nil {
		ib.bell <- ib.idx
	}
}

// runOperator runs the loop of an operator subtask heading a chain: it
// takes the messages of its inboxes and handles them (handle), calling the
// chained subtasks downstream through its output, until every input ended,
// then finishes. The chain's operators are closed by runChain.
func (st *subtask) runOperator(ctx context.Context) error {
	if err := st.openOperator(ctx); err != nil {
		return err
	}
	if err := st.openChain(ctx); err != nil {
		return err
	}
	done := ctx.Done()
	st.out.clk.start(st.task.Metrics)
	for st.active > 0 {
		if err := st.notifyCompleted(ctx, st.op); err != nil {
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
			var err error
			in, m, err = st.recv(ctx)
			st.out.clk.waited(from, true)
			if err != nil {
				return err
			}
		}
		if err := st.handle(ctx, in, m); err != nil {
			return err
		}
	}
	return st.finish(ctx)
}

// openOperator creates and opens the operator of an operator subtask.
func (st *subtask) openOperator(ctx context.Context) error {
	op, err := st.node.spec.New(st.task)
	if err != nil {
		return err
	}
	st.op = op
	st.setReporter(op)
	st.wm = MinWatermark
	st.active = len(st.inboxes)
	if err := op.Open(ctx); err != nil {
		return err
	}
	st.wh, _ = op.(WatermarkHandler)
	return nil
}

// openChain opens the operators chained behind a head, in chain order,
// before the head sends them anything.
func (st *subtask) openChain(ctx context.Context) error {
	for _, m := range st.chain[1:] {
		if err := m.openOperator(ctx); err != nil {
			return m.own(err)
		}
	}
	return nil
}

// deliver hands m to a chained operator subtask: called by the subtask
// upstream of it in the chain (its output), on the chain's goroutine, in
// place of a queue. It takes over m's batch reference. Completed
// checkpoints are delivered first, as a head does before each message, and
// the subtask finishes once its input ended.
func (st *subtask) deliver(ctx context.Context, m Message) error {
	if err := st.notifyCompleted(ctx, st.op); err != nil {
		m.release()
		return st.own(err)
	}
	err := st.handle(ctx, st.inboxes[0], m)
	if err == nil && st.active == 0 {
		err = st.finish(ctx)
	}
	return st.own(err)
}

// handle handles one message of inbox in: a batch goes to the operator
// (and is released after), control events update the input's state and
// move the subtask's watermark, barrier alignment and end of input.
func (st *subtask) handle(ctx context.Context, in *inbox, m Message) error {
	switch m.Kind {
	case KindBatch:
		if in.idle {
			in.idle = false
			in.pubIdle.Store(false)
			if st.idleOut {
				// Active again: downstream counts this subtask again.
				if err := st.advanceWatermark(ctx, st.wh); err != nil {
					m.Batch.Release()
					return err
				}
			}
		}
		st.task.Metrics.RowsIn.Add(m.Batch.NumRows())
		st.task.Metrics.BatchesIn.Add(1)
		st.task.Metrics.ArrowBytesIn.Add(m.bytes)
		err := st.op.Process(ctx, in.edge, m.Batch, &st.out)
		m.Batch.Release()
		return err
	case KindWatermark:
		in.idle = m.Idle
		if m.Watermark > in.wm {
			in.wm = m.Watermark
		}
		in.pubWM.Store(in.wm)
		in.pubIdle.Store(in.idle)
		return st.advanceWatermark(ctx, st.wh)
	case KindBarrier:
		return st.onBarrier(ctx, st.op, in, m.Barrier)
	case KindEndOfInput:
		// A naturally ended input sent MaxWatermark before this; a
		// stopped one keeps its last watermark, so a stop without drain
		// fires nothing.
		in.ended = true
		in.pubEnded.Store(true)
		st.active--
		if err := st.advanceWatermark(ctx, st.wh); err != nil {
			return err
		}
		if st.aligning {
			return st.maybeCompleteAlignment(ctx, st.op)
		}
	}
	return nil
}

// finish ends an operator subtask whose every input ended: Finish, then
// end of input downstream. The subtask then lingers (see linger).
func (st *subtask) finish(ctx context.Context) error {
	if st.stoppedByBarrier {
		if err := st.awaitStopCompletion(ctx, st.op); err != nil {
			return err
		}
	}
	st.task.suspended.Store(st.wm != MaxWatermark)
	if err := st.op.Finish(ctx, &st.out); err != nil {
		return err
	}
	if err := st.notifyCompleted(ctx, st.op); err != nil {
		return err
	}
	if err := st.out.control(ctx, Message{Kind: KindEndOfInput}); err != nil {
		return err
	}
	st.out.clk.settle(time.Now())
	return nil
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
	if st.bell == nil {
		in := st.inboxes[0]
		select {
		case m := <-in.ch:
			return in, m, true
		default:
			return nil, Message{}, false
		}
	}
	for {
		if in := st.takeHeld(); in != nil {
			return in, <-in.ch, true
		}
		select {
		case i := <-st.bell:
			if in := st.rung(i); in != nil {
				return in, <-in.ch, true
			}
		default:
			return nil, Message{}, false
		}
	}
}

// recv returns the next message from an inbox that is neither ended nor
// blocked by barrier alignment.
func (st *subtask) recv(ctx context.Context) (*inbox, Message, error) {
	if st.bell == nil {
		in := st.inboxes[0]
		select {
		case m := <-in.ch:
			return in, m, nil
		case <-ctx.Done():
			return nil, Message{}, context.Cause(ctx)
		}
	}
	for {
		if in := st.takeHeld(); in != nil {
			return in, <-in.ch, nil
		}
		select {
		case i := <-st.bell:
			if in := st.rung(i); in != nil {
				return in, <-in.ch, nil
			}
		case <-ctx.Done():
			return nil, Message{}, context.Cause(ctx)
		}
	}
}

// rung handles a token read from the bell: it returns the inbox whose
// next message may be taken, or nil when that inbox is blocked by barrier
// alignment (the token is held until the alignment completes; the message
// stays in the inbox's channel, so its sender feels backpressure).
func (st *subtask) rung(i int32) *inbox {
	in := st.inboxes[i]
	if in.blocked {
		in.held++
		return nil
	}
	return in
}

// takeHeld returns an inbox one of whose held tokens may be served now
// that its alignment completed, or nil.
func (st *subtask) takeHeld() *inbox {
	if st.ready == 0 {
		return nil
	}
	for _, in := range st.inboxes {
		if in.held > 0 && !in.blocked {
			in.held--
			st.ready--
			return in
		}
	}
	return nil
}
