// Package fsx is the small file-system layer checkpoint and state do their
// file I/O through, so that tests can inject faults into it.
//
// FS is the interface: create, open, rename, remove, list, stat and fsync
// of files (File.Sync) and of directories (SyncDir), the operations that
// writing a snapshot or checkpoint atomically (write a temporary name,
// fsync, rename, fsync the directory) needs. OSFS implements it with the
// operating system.
//
// ErrorFS wraps an FS and fails the operations its Inject function picks:
// every operation (Op) on a path is shown to Inject first, and a non-nil
// result is returned instead of doing it. InjectAfter builds the usual
// rule: fail the n-th matching operation on matching paths, once, a few
// times or from then on. ErrDiskFull is the error to inject for a full
// disk. This is how the checkpoint and state tests check that a failed
// write, rename or fsync fails the job clearly (or is retried) and leaves
// the last good checkpoint intact.
//
// checkpoint and state re-export these names (checkpoint.FS,
// state.ErrorFS, ...) as aliases. The package imports the standard library
// only.
package fsx
