package state

import (
	"errors"
	"fmt"
)

// Sentinel errors. Returned errors wrap them with the state, file or key
// group they concern; test with errors.Is.
var (
	// ErrClosed is returned by every method of a closed Store.
	ErrClosed = errors.New("state: store closed")
	// ErrKeyGroupOutOfRange is returned when a key's key group is not owned
	// by the store.
	ErrKeyGroupOutOfRange = errors.New("state: key group out of range")
	// ErrCorrupt marks a snapshot file or manifest that failed verification.
	ErrCorrupt = errors.New("state: corrupt snapshot")
	// ErrStateMismatch is returned when a name is declared twice with a
	// different kind or TTL, or two names share a state id.
	ErrStateMismatch = errors.New("state: state declared twice differently")
	// ErrInvalidOptions is returned for invalid options or descriptors.
	ErrInvalidOptions = errors.New("state: invalid options")
	// ErrNoManifest is returned by Restore for a directory without a
	// MANIFEST (no snapshot, or one that never completed).
	ErrNoManifest = errors.New("state: no snapshot manifest")
	// ErrIncompatibleSnapshot is returned when snapshots cannot be restored
	// into a store: different MaxParallelism, overlapping key groups, key
	// groups not covered by any snapshot, unknown format version.
	ErrIncompatibleSnapshot = errors.New("state: incompatible snapshot")
	// ErrCodec is returned when a stored value fails to decode.
	ErrCodec = errors.New("state: cannot decode value")
	// ErrSnapshotDone is returned by a PendingSnapshot written or
	// discarded twice.
	ErrSnapshotDone = errors.New("state: snapshot already written or discarded")
)

// IsCorruption reports whether err means a snapshot failed
// verification (checksum mismatch, truncation, malformed records).
func IsCorruption(err error) bool { return errors.Is(err, ErrCorrupt) }

// corruptFile builds "state: corrupt snapshot file X: <what>".
type corruptError struct {
	file string
	what string
}

func (e *corruptError) Error() string {
	return fmt.Sprintf("state: corrupt snapshot file %s: %s", e.file, e.what)
}

func (e *corruptError) Is(target error) bool { return target == ErrCorrupt }

func corrupt(file, format string, args ...any) error {
	return &corruptError{file: file, what: fmt.Sprintf(format, args...)}
}
