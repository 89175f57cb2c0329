package checkpoint

import (
	"errors"
	"fmt"
)

// Sentinel errors. Returned errors wrap them with the checkpoint, file or
// node they concern; test them with errors.Is.
var (
	// ErrInvalidOptions is returned by Options.Validate.
	ErrInvalidOptions = errors.New("checkpoint: invalid options")
	// ErrNoCheckpoint is returned by Latest when the directory holds no
	// complete, verified checkpoint.
	ErrNoCheckpoint = errors.New("checkpoint: no complete checkpoint")
	// ErrUnusableCheckpoints is returned by Latest (and wraps
	// ErrNoCheckpoint) when the directory holds complete checkpoints but
	// none of them verifies. Run refuses to start fresh then (its job has
	// run before and may have published output) unless
	// RunConfig.AllowFreshStart is set.
	ErrUnusableCheckpoints = errors.New("checkpoint: every checkpoint is unusable")
	// ErrLocked is returned by LockDir (and Run) when another process, or
	// another lock in this one, holds the checkpoint directory.
	ErrLocked = errors.New("checkpoint: checkpoint directory in use")
	// ErrCorrupt marks a checkpoint that failed verification: unparsable
	// or truncated manifest, missing file, wrong size or checksum.
	ErrCorrupt = errors.New("checkpoint: corrupt checkpoint")
	// ErrIncompatible is returned when a checkpoint cannot be restored into
	// a job: another format version or MaxParallelism.
	ErrIncompatible = errors.New("checkpoint: incompatible checkpoint")
	// ErrFingerprintMismatch is returned when restoring a checkpoint that
	// another job (another JobFingerprint) wrote.
	ErrFingerprintMismatch = errors.New("checkpoint: checkpoint belongs to a different job")
	// ErrAbandoned is returned to whoever waits for a checkpoint that was
	// abandoned (timeout, failed write, coordinator stopped).
	ErrAbandoned = errors.New("checkpoint: checkpoint abandoned")
	// ErrTooManyFailures is returned by Coordinator.Run when more
	// consecutive checkpoints failed than Options.TolerableFailures.
	ErrTooManyFailures = errors.New("checkpoint: too many consecutive failed checkpoints")
	// ErrJobFinished is returned for a checkpoint requested after every
	// source of the job finished.
	ErrJobFinished = errors.New("checkpoint: every source finished")
	// ErrNotRunning is returned for a request to a coordinator that is not
	// running (before Run, after it returned).
	ErrNotRunning = errors.New("checkpoint: coordinator not running")
)

// IsCorruption reports whether err means a checkpoint failed
// verification.
func IsCorruption(err error) bool { return errors.Is(err, ErrCorrupt) }

type corruptError struct {
	file string
	what string
}

func (e *corruptError) Error() string {
	return fmt.Sprintf("checkpoint: corrupt checkpoint file %s: %s", e.file, e.what)
}

func (e *corruptError) Is(target error) bool { return target == ErrCorrupt }

func corrupt(file, format string, args ...any) error {
	return &corruptError{file: file, what: fmt.Sprintf(format, args...)}
}
