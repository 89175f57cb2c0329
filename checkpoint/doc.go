// Package checkpoint makes riffle jobs exactly-once: a Coordinator triggers
// checkpoints of a running arrowexec.Job, collects every subtask's snapshot,
// writes them with a checksummed manifest to a checkpoint directory,
// atomically, and only then tells the job the checkpoint is complete (so
// two-phase-commit sinks publish and Kafka sources commit offsets). A job
// restarted from a checkpoint resumes exactly there, at any parallelism.
//
// # Protocol
//
// Every Options.Interval the coordinator calls Job.TriggerCheckpoint with the
// next id. Sources inject the barrier in-band between two batches,
// operators snapshot when it has aligned on all their inputs
// (arrowexec.Checkpointer), and each subtask reports its SubtaskSnapshot
// through RunOptions.OnSnapshot; sources that already finished report their
// final state. Operators with state too large for memory (Pebble) write
// files into RunOptions.SnapshotDir (Task.SnapshotDir) before reporting.
// A checkpoint is complete when every subtask of every node, sinks included,
// reported. The coordinator then, on its own goroutine:
//
//  1. writes the in-memory blobs of each subtask (operator state, key
//     group blobs) into the subtask's staging directory;
//  2. reads back every file of every subtask directory (the operator's
//     too), computes its size and CRC-32C and fsyncs it;
//  3. writes the MANIFEST last, fsyncs it and every directory;
//  4. renames chk-<id>.inprogress to chk-<id> and fsyncs the parent: the
//     rename is the commit point;
//  5. calls Job.NotifyCheckpointComplete(id), delivered in-band to every
//     arrowexec.CheckpointListener;
//  6. removes the complete checkpoints beyond the newest Options.Retain
//     (MANIFEST first, so a removal cut short leaves no checkpoint that
//     looks complete).
//
// At most one checkpoint is in flight: a trigger while one is pending is
// skipped and logged. A checkpoint not complete within Options.Timeout is
// abandoned: its staging directory is removed (once no subtask is still
// writing into it) and later reports for it are ignored. A checkpoint whose
// files cannot be written (disk full, failed rename, failed fsync) is
// abandoned the same way and logged; after more than
// Options.TolerableFailures consecutive failures Coordinator.Run returns
// ErrTooManyFailures and the job must be failed (Run, the package
// function, cancels it). An operator whose SnapshotDir cannot be created
// fails the job (it cannot snapshot). A failure never touches a complete
// checkpoint: complete checkpoints are only ever created by a rename and
// removed by retention.
//
// Savepoints (TriggerSavepoint) are checkpoints written to a directory of
// the caller's choice (staged as <dir>.inprogress next to it), never
// removed by retention. StopWithSavepoint triggers one with Barrier.Stop:
// every source ends right behind the barrier, so the job processes nothing
// the savepoint does not cover, and then the job finishes. With an empty
// directory it takes a final regular checkpoint: the graceful stop of Run.
//
// Backfill, then stream: RunConfig.SavepointAtEnd runs a bounded job with
// its input held at the end (arrowexec.RunOptions.HoldAtEnd: the sources
// send the watermark of what they read, not the final one, so windows
// still open stay open) and stops it with a savepoint once every source
// got there. A job with the same JobFingerprint and another
// SourceFingerprint (the same steps over a Kafka source) restores from it:
// every operator gets its state and watermark, the sources start from
// their configured start (positions of another source mean nothing to
// them), with a log line saying so.
//
// # Directory layout
//
//	<Dir>/
//	  LOCK                            flock held by the running job (Run,
//	                                  LockDir); names its pid, host, start
//	  chk-7/                          complete checkpoint 7
//	    MANIFEST                      written last (format below)
//	    <node>/<subtask>/             one directory per subtask; the node
//	                                  name is path-escaped (url.PathEscape,
//	                                  leading '.' or '_' escaped as %XX)
//	      _operator                   SubtaskSnapshot.Operator, if non-nil
//	      _keygroups                  SubtaskSnapshot.KeyGroups, concatenated
//	                                  in key group order (offsets in MANIFEST)
//	      ...                         files the operator wrote itself through
//	                                  Task.SnapshotDir (Pebble state: a state
//	                                  MANIFEST and kg-NNNNN.state files)
//	  chk-8.inprogress/               staging of checkpoint 8; never restored
//	                                  from; removed at the next start
//
// Names starting with '_' in a subtask directory belong to the coordinator.
// Checkpoint ids increase across restarts: a coordinator continues after the
// newest id in Dir and after the id it restores from.
//
// # Manifest
//
// The MANIFEST is indented JSON (jq and people can read it) of Manifest:
// format version, job fingerprint, checkpoint id, savepoint flag, trigger
// time and duration, watermark (minimum over every subtask's watermark at
// its snapshot), MaxParallelism, and per node (in graph order) and subtask:
// its directory, watermark, operator file, key group offsets, whether it
// wrote its own files, and every file under its directory with size and
// CRC-32C. Then "sources": the operator state of every source subtask,
// verbatim when it is JSON (riffle's Kafka source: {topic: {partition: next
// offset}}; Parquet: the files, row groups and rows left), else base64. Its
// last member is
//
//	"checksum": "crc32c:<8 hex digits>"
//
// the CRC-32C (Castagnoli) of every byte of the file before the comma that
// precedes it. A manifest without it (truncated), with a wrong one, or that
// does not parse marks the checkpoint corrupt.
//
// # Loading and restore
//
// Load reads a checkpoint and verifies the manifest and every file's size
// and checksum. Latest returns the newest checkpoint in a directory that
// verifies; one that does not (bad checksum, missing file, truncated or
// unparsable manifest) is skipped with a warning
// "checkpoint: skipping unusable checkpoint" naming the checkpoint and the
// reason, and the next older one is tried; using an older one is logged at
// warn level too ("checkpoint: falling back to an older checkpoint"), and
// the unusable ones stay in place. When Dir holds checkpoints and none is
// usable, Latest returns ErrUnusableCheckpoints (which is also
// ErrNoCheckpoint) naming each and why. List lists checkpoints and
// verifies each like Load (a directory that is itself one checkpoint or
// savepoint lists as that one), Inspect summarizes one, WriteList and
// WriteSummary print them for `riffle checkpoints list|inspect`.
//
// Decoders of bytes read from disk (the MANIFEST here, key group files
// and snapshot manifests in package state) have fuzz targets (FuzzManifest
// here) and return errors, never panic, on any input.
//
// Coordinator.RunOptions builds the arrowexec.RunOptions of a run; given a
// checkpoint, its Restore hands each subtask of a node (at the node's new
// parallelism) a RestoreState with the operator state of ALL previous
// subtasks of the node (sources and sinks decide how to split it), the key
// group blobs of the key groups it owns now (whichever old subtask held
// them), the snapshot directories of all old subtasks that wrote files (a
// keyed operator loads its key groups from them, state.Restore), and the
// checkpoint's watermark. Restoring is refused with ErrFingerprintMismatch
// when the checkpoint's job fingerprint differs from Options.JobFingerprint,
// and with ErrIncompatible when MaxParallelism differs. A node the
// checkpoint does not know starts empty, and so do the source nodes when
// the SourceFingerprint differs.
//
// # Guarantees
//
//   - A chk-<id> directory with a valid MANIFEST is complete: every file it
//     lists was fsynced before the manifest, and the manifest before the
//     rename.
//   - NotifyCheckpointComplete(id) is only called after chk-<id> is durable;
//     sinks that publish only then never publish output of a checkpoint that
//     does not exist.
//   - Retention and failures never remove or alter the newest complete
//     checkpoint.
//   - Corruption is detected (CRC-32C of every file) before anything is
//     restored, and Latest falls back to the previous checkpoint.
//
// Limits: a subtask that already finished (end of input) cannot report, so
// once a node's subtask has finished later checkpoints time out (finished
// sources do report their final state). Operators must have written their
// snapshot files when SnapshotState returns, and must not modify the
// Operator and KeyGroups slices they returned: the coordinator keeps them
// until the checkpoint is written.
//
// # Running a job
//
// Run is the single entry point for `riffle run --checkpoint-dir D
// --checkpoint-interval 1s [--from PATH]`: it locks Dir (LockDir: an OS
// file lock on Dir/LOCK, released when the process ends however it ends; a
// second job on the directory fails at once with ErrLocked naming the
// holder), loads From or Latest(Dir) (refusing to start fresh when every
// checkpoint is unusable, unless RunConfig.AllowFreshStart),
// builds the graph through a callback, compiles it with the coordinator's
// RunOptions, runs the job and the trigger loop, and on ctx cancellation
// (SIGTERM) stops gracefully with a final checkpoint. For exactly-once
// files, the job's file sinks use sinks.CommitOnCheckpoint (parts published
// on NotifyCheckpointComplete, recovered on restore). GraphFingerprint
// computes a fingerprint from a graph's shape when no spec hash is at hand.
// Coordinator.Stats counts checkpoints; Coordinator.History keeps the last
// HistoryLen of them (id, duration, time until every subtask snapshotted,
// size, outcome and error) for status pages (history.go).
//
// # Files
//
// All coordinator I/O goes through FS (OSFS by default); ErrorFS injects
// errors (disk full, failed renames) for tests. Both are aliases of
// internal/fsx, the file-system layer shared with package state. The
// checkpoint directory and a savepoint's parent are created with their
// parents fsynced (fsx.MkdirAllSync), so a crash cannot take a complete
// checkpoint away with a directory entry that was never durable; a test
// cuts the power at every I/O operation of three checkpoints on fsx.MemFS
// and restores from what is left (crash_mem_test.go).
package checkpoint
