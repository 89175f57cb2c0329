// Package fsx is the small file-system layer riffle does its file I/O
// through, so that tests can inject faults and crashes into it: the one
// file-system layer of checkpoint and state snapshots, the file sinks'
// parts and publish log, the recommender's exports, dead-letter files and
// the commit of a backfill's output (job). Pebble's own files go through
// Pebble's vfs.
//
// FS is the interface: create, open, append, rename, remove, list, stat
// and fsync of files (File.Sync) and of directories (SyncDir), the
// operations that writing a snapshot, checkpoint or output atomically
// (write a temporary name, fsync, rename, fsync the directory) needs.
// OSFS implements it with the operating system. MkdirAllSync creates
// directories durably (it fsyncs the parent of each one it creates).
//
// MemFS implements it in memory and knows what a crash keeps: a file's
// contents as of its last Sync, a directory's entries as of its last
// SyncDir. MemFS.Crash drops the rest, so publish and commit code can be
// crash-tested in-process: run it, stop it at the n-th operation (ErrorFS
// failing everything from then on), Crash, recover, and check what is
// left. A test compares MemFS with the operating system on the same
// script of operations.
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
