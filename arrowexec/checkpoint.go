package arrowexec

import "context"

// Barrier marks checkpoint ID in the stream. Everything before it on a
// channel belongs to the checkpoint, everything after it does not.
type Barrier struct {
	ID uint64
	// Savepoint is set for user-triggered savepoints. Stop makes every
	// source end right behind this barrier (stop-with-savepoint): nothing is
	// processed that the checkpoint does not cover. Whoever triggers a Stop
	// barrier must call Job.Stop once the checkpoint completed (after
	// NotifyCheckpointComplete) or failed: CheckpointListeners wait for it,
	// so that they learn the outcome before they finish.
	Savepoint bool
	Stop      bool
}

// SubtaskSnapshot is the state one subtask wrote for one checkpoint.
// Keyed state is split by key group so it can be redistributed when the
// parallelism changes; operator state (source positions, pending sink files)
// is one opaque blob per subtask.
//
// State too large for memory (Pebble) is written as files instead: a
// subtask calls Task.SnapshotDir(id) for a directory that belongs to the
// checkpoint and writes its files there before SnapshotState returns; the
// coordinator keeps the directory with the checkpoint.
type SubtaskSnapshot struct {
	KeyGroups map[int][]byte
	Operator  []byte
}

// RestoreState is what a subtask restores from: the key groups it owns now
// (whoever owned them before), and the operator state of every subtask of
// the previous run (sources and sinks decide how to split it).
type RestoreState struct {
	CheckpointID uint64
	KeyGroups    map[int][]byte
	Operator     [][]byte
	// Dirs are the snapshot directories of every subtask of the previous
	// run that wrote files (see Task.SnapshotDir); a keyed operator loads
	// the key groups it owns now from all of them.
	Dirs []string
	// Watermark is the watermark the job had reached.
	Watermark int64
}

// Checkpointer is implemented by operators and source readers that hold
// state. SnapshotState is called when barrier id has arrived on every input
// (sources: between two batches), before the barrier is forwarded. It must
// not block on I/O longer than needed: copy or snapshot, then return.
type Checkpointer interface {
	SnapshotState(ctx context.Context, id uint64) (SubtaskSnapshot, error)
}

// AsyncCheckpointer is implemented by operators whose snapshot splits into
// a cheap synchronous part and an expensive one: SnapshotStateAsync takes a
// point-in-time view of the state at the barrier (a Pebble snapshot, a
// flushed cache) and returns; the runtime forwards the barrier and the
// operator goes on processing while complete, on another goroutine, writes
// the view out (it may call Task.SnapshotDir) and returns the snapshot. The
// checkpoint completes when every subtask's snapshot arrived, so
// completion notices follow complete. complete must not touch state the
// operator keeps changing; it should return soon after ctx is cancelled.
// An error from either part fails the job, like a synchronous snapshot's.
// The operator is closed only after its running complete calls returned.
// When an operator implements both interfaces, the runtime uses this one.
// Source readers snapshot synchronously (Checkpointer) only.
type AsyncCheckpointer interface {
	SnapshotStateAsync(ctx context.Context, id uint64) (complete func(ctx context.Context) (SubtaskSnapshot, error), err error)
}

// CheckpointListener is implemented by operators that act when a checkpoint
// is complete everywhere (two-phase-commit sinks publish their files here).
//
// # Finished subtasks
//
// A subtask whose inputs all ended cannot receive later barriers in-band,
// yet a checkpoint is only complete when every subtask took part. So a
// subtask stays alive after it finished (after Operator.Finish, before
// Close) until the whole job has finished, and answers every checkpoint
// triggered meanwhile that it did not see in-band: the runtime calls
// SnapshotState for it on the subtask's goroutine, with that checkpoint's
// id (so Task.SnapshotDir is the right directory), and delivers
// NotifyCheckpointComplete as before. Finished sources answer with their
// state at end of input. Such a snapshot is consistent: everything the
// subtask emitted precedes, downstream, the barrier from the sources still
// running. It is also what a restore gets, and a restored subtask is then
// finished again (its sources are at the end), so an operator's state after
// Finish must hold only what it has not emitted yet: an operator that emits
// its results at Finish (a hash aggregate) drops them there, so that they
// are not emitted twice.
type CheckpointListener interface {
	NotifyCheckpointComplete(ctx context.Context, id uint64) error
}
