package checkpoint

import "github.com/riffle-dev/riffle/internal/fsx"

// The file-system layer lives in internal/fsx, shared with package state;
// these aliases keep its names in this package.

// File is an open checkpoint file.
type File = fsx.File

// FS is the file system checkpoints are written to and loaded from. It is
// deliberately small so tests can inject faults (ErrorFS).
type FS = fsx.FS

// OSFS is the FS of the operating system.
var OSFS = fsx.OSFS

// Op names an FS operation for ErrorFS.
type Op = fsx.Op

// FS operations ErrorFS can fail.
const (
	OpCreate   = fsx.OpCreate
	OpOpen     = fsx.OpOpen
	OpWrite    = fsx.OpWrite
	OpRead     = fsx.OpRead
	OpSync     = fsx.OpSync
	OpClose    = fsx.OpClose
	OpRename   = fsx.OpRename
	OpRemove   = fsx.OpRemove
	OpMkdirAll = fsx.OpMkdirAll
	OpReadDir  = fsx.OpReadDir
	OpStat     = fsx.OpStat
	OpSyncDir  = fsx.OpSyncDir
)

// ErrDiskFull is what tests inject for a full disk (it wraps ENOSPC).
var ErrDiskFull = fsx.ErrDiskFull

// ErrorFS wraps an FS and fails operations chosen by its Inject function
// (see fsx.ErrorFS).
type ErrorFS = fsx.ErrorFS

// InjectAfter returns an Inject function that fails the n-th (0-based) and
// the following `times` operations op whose path matches (a
// filepath.Match pattern against the base name; "" matches all) with err.
// times < 0 fails every later matching operation.
func InjectAfter(op Op, pattern string, n, times int, err error) func(Op, string) error {
	return fsx.InjectAfter(op, pattern, n, times, err)
}

// isNotExist reports a missing file across FS implementations.
func isNotExist(err error) bool { return fsx.IsNotExist(err) }
