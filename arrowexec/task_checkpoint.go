package arrowexec

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// linger keeps a finished chain of subtasks alive until the whole job
// has finished: its operator subtasks answer the checkpoints they could not
// see in-band and get checkpoint completions (see "Finished subtasks" in
// checkpoint.go), each in chain order. A source heading the chain only
// counts as done: its reader is closed.
func (st *subtask) linger(ctx context.Context) error {
	for _, m := range st.chain {
		m.done()
	}
	for {
		for _, m := range st.chain {
			if m.op == nil {
				continue
			}
			if err := m.answerPending(ctx); err != nil {
				return m.own(err)
			}
			if err := m.notifyCompleted(ctx, m.op); err != nil {
				return m.own(err)
			}
		}
		select {
		case <-st.wake:
		case <-st.job.allDone:
			return nil
		case <-ctx.Done():
			return nil
		}
	}
}

// answerPending snapshots a finished operator subtask for the checkpoints
// triggered since that it did not see in-band.
func (st *subtask) answerPending(ctx context.Context) error {
	st.pendMu.Lock()
	bs := st.pending
	st.pending = nil
	st.pendMu.Unlock()
	for _, b := range bs {
		if b.ID <= st.lastSnap {
			continue
		}
		if err := st.snapshot(ctx, st.op, b); err != nil {
			return err
		}
	}
	return nil
}

func (st *subtask) notifyCompleted(ctx context.Context, target any) error {
	if !st.hasCompleted.Load() {
		return nil
	}
	st.completeMu.Lock()
	st.hasCompleted.Store(false)
	ids := st.completed
	st.completed = nil
	st.completeMu.Unlock()
	l, ok := target.(CheckpointListener)
	if !ok {
		return nil
	}
	for _, id := range ids {
		if err := l.NotifyCheckpointComplete(ctx, id); err != nil {
			return fmt.Errorf("checkpoint %d complete: %w", id, err)
		}
	}
	return nil
}

func (st *subtask) snapshot(ctx context.Context, target any, b Barrier) error {
	if b.Stop {
		st.stoppedByBarrier = true
	}
	st.lastSnap = b.ID
	if st.node.source == nil {
		// Drop the out-of-band copies this in-band barrier made moot.
		st.pendMu.Lock()
		keep := st.pending[:0]
		for _, p := range st.pending {
			if p.ID > b.ID {
				keep = append(keep, p)
			}
		}
		st.pending = keep
		st.pendMu.Unlock()
	}
	if acp, ok := target.(AsyncCheckpointer); ok && st.node.source == nil {
		complete, err := acp.SnapshotStateAsync(ctx, b.ID)
		if err != nil {
			return fmt.Errorf("snapshot for checkpoint %d: %w", b.ID, err)
		}
		st.async.Add(1)
		go func() {
			defer st.async.Done()
			snap, err := complete(ctx)
			if err != nil {
				err = fmt.Errorf("snapshot for checkpoint %d (asynchronous part): %w", b.ID, err)
			} else if st.job.opts.OnSnapshot != nil {
				err = st.job.opts.OnSnapshot(st.node.name, st.task.Subtask, b.ID, snap)
			}
			switch {
			case err == nil:
			case ctx.Err() == nil:
				st.job.fail(st, err)
			case errors.Is(err, context.Canceled) || errors.Is(err, context.Cause(ctx)):
				// The job's cancellation, not a failure of its own.
				st.job.opts.Log.Debug("asynchronous snapshot part cancelled", "node", st.node.name,
					"subtask", st.task.Subtask, "checkpoint", b.ID, "err", err)
			default:
				// The job was cancelled (by its first error or by its
				// caller) while this part ran: it comes after that error,
				// never instead of it, like a close error.
				st.lateErr(err)
			}
		}()
		return nil
	}
	cp, ok := target.(Checkpointer)
	var snap SubtaskSnapshot
	if ok {
		s, err := cp.SnapshotState(ctx, b.ID)
		if err != nil {
			return fmt.Errorf("snapshot for checkpoint %d: %w", b.ID, err)
		}
		snap = s
	}
	if st.job.opts.OnSnapshot != nil {
		if err := st.job.opts.OnSnapshot(st.node.name, st.task.Subtask, b.ID, snap); err != nil {
			return err
		}
	}
	return nil
}

// awaitStopCompletion runs after a subtask snapshotted a Stop barrier and
// its input ended right behind it: a CheckpointListener (a two-phase-commit
// sink publishing, a source committing offsets) waits until the job is
// stopped — the coordinator stops it once that checkpoint completed or
// failed — and gets the completion before it finishes and closes.
func (st *subtask) awaitStopCompletion(ctx context.Context, target any) error {
	if _, ok := target.(CheckpointListener); !ok {
		return nil
	}
	select {
	case <-st.job.stopCh:
	case <-ctx.Done():
		return context.Cause(ctx)
	}
	return st.notifyCompleted(ctx, target)
}

func (st *subtask) onBarrier(ctx context.Context, op Operator, in *inbox, b Barrier) error {
	if !st.aligning {
		st.alignStart = time.Now()
		st.aligning = true
		st.barrier = b
		st.arrived = 0
	} else if b.ID != st.barrier.ID {
		return fmt.Errorf("barrier %d arrived while aligning barrier %d", b.ID, st.barrier.ID)
	}
	in.blocked = true
	st.arrived++
	return st.maybeCompleteAlignment(ctx, op)
}

func (st *subtask) maybeCompleteAlignment(ctx context.Context, op Operator) error {
	for _, in := range st.inboxes {
		if !in.ended && !in.blocked {
			return nil
		}
	}
	d := int64(time.Since(st.alignStart))
	m := st.task.Metrics
	m.AlignmentNanos.Add(d)
	m.LastAlignmentNanos.Store(d)
	m.Alignments.Add(1)
	if err := st.snapshot(ctx, op, st.barrier); err != nil {
		return err
	}
	if err := st.out.control(ctx, Message{Kind: KindBarrier, Barrier: st.barrier}); err != nil {
		return err
	}
	for _, in := range st.inboxes {
		in.blocked = false
		st.ready += in.held
	}
	st.aligning = false
	return nil
}
