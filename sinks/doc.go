// Package sinks writes riffle's output: file sinks as arrowexec.Spec nodes.
//
// # File sink
//
// NewFile returns a FileSpec that writes its single input to files in one
// directory, as Parquet (pqarrow, zstd by default), CSV (header row, RFC 4180
// quoting) or JSON Lines (one object per row). The spec has no output
// (Schema returns nil); every subtask writes its own files, named
//
//	<prefix>-<subtask, 5 digits>-<sequence, 5 digits>.<parquet|csv|jsonl>
//
// so the names of a job's output are deterministic for a given input split.
//
// # Partitioned output
//
// With FileOptions.PartitionBy a row goes to the Hive-style directory
// Dir/<col>=<value>/... of its values of those columns, as DuckDB's COPY
// ... (PARTITION_BY ...) lays them out, so DuckDB (hive_partitioning) and
// pyarrow datasets (partitioning="hive") read the output back with the
// partition columns restored; the files leave those columns out. A value
// is written with every byte but A-Z a-z 0-9 - . _ ~ as %XX (so '/', '=',
// '%', spaces, control and non-ASCII bytes), an empty string as nothing,
// NULL as HiveNull (__HIVE_DEFAULT_PARTITION__: both readers read it back
// as NULL; a string equal to it is refused at run time), integers in
// decimal, dates YYYY-MM-DD, booleans true/false. Partition columns are
// strings (also dictionary-encoded), integers, dates or booleans; others,
// a missing column, or partitioning by every column are refused by Schema
// (a PartitionError).
// Every partition directory is written like an unpartitioned Dir, with
// the same part names, commit modes, two-phase commit, publish log and
// recovery; a snapshot holds the state of every partition a subtask has
// written, and a restore recovers every partition the checkpoint names or
// the output holds. At most FileOptions.MaxOpenPartitions partitions per
// subtask have an open part (default 64): at the cap, the least recently
// written one's part is closed (and published as its commit mode says),
// so input cycling through more partitions makes more, smaller parts.
// Details in partitioned.go.
//
// # Single file
//
// With FileOptions.FileName the sink writes exactly one file,
// Dir/FileName, never rolled, also when no row came (Parquet with the
// schema, CSV with its header): one subtask (parallelism 1),
// CommitOnFinish; it is published by one rename at Finish (job files
// stage it and replace the old file when the job commits).
//
// # Atomic output
//
// A part is written under a hidden temporary name in the target directory
// (".<final name>.inprogress": a leading '.' that pyarrow datasets, Spark and
// Hive skip, and an extension no "*.parquet" glob matches). A part goes
// through three steps, kept separate so a two-phase-commit mode can reuse
// them:
//
//	close    the encoder writes its footer, the file is flushed, fsynced and
//	         closed; the part becomes pending (still under its hidden name)
//	publish  the pending part is renamed to its final name and the directory
//	         is fsynced
//	abort    an open or pending part is removed
//
// A part is closed when its size reaches FileOptions.PartSize (it exceeds it
// by at most one batch), when it has been open for FileOptions.RollInterval
// (measured with FileOptions.Clock; 0, the default, rolls on size only; job
// files default to DefaultRollInterval, one minute, on unbounded jobs), at
// the barrier of the FileOptions.RollCheckpoints-th checkpoint it spans, and
// at Finish. With CommitOnCheckpoint a part due on time is closed at the
// next barrier, so it is pending at that checkpoint and published when it
// completes: its rows are visible at most RollInterval plus one checkpoint
// after they reached the sink, and a roll ends the part's carried Parquet
// rows. Without checkpoints the first batch that finds the part due goes
// into it and closes it (a quiet input keeps the last part open). Parts are
// opened by their first row, so no roll makes an empty part. Every
// published part is logged (FileOptions.Logger, Info: path, rows, bytes). When pending parts are published is
// the CommitMode: CommitOnFinish (default) publishes all of a subtask's parts
// at Finish, so a failed or cancelled job (Close without Finish) leaves
// nothing visible; CommitOnRoll publishes each part as soon as it is closed,
// for unbounded jobs without checkpoints. CommitOnCheckpoint is two-phase
// commit with checkpoints (below).
//
// A subtask that receives no rows writes no file, unless
// FileOptions.EmptyFile is set.
//
// Open removes this subtask's stale in-progress files left by a crashed run
// (subtask 0 also those of subtasks >= Parallelism). Published files of an
// earlier run with the same names are replaced; others are left alone unless
// FileOptions.Overwrite is set, in which case Finish removes them.
//
// # Exactly-once output (CommitOnCheckpoint)
//
// With CommitOnCheckpoint the sink takes part in checkpoints (package
// checkpoint): it implements arrowexec.Checkpointer and
// arrowexec.CheckpointListener. At a barrier it pre-commits, and the open
// part stays open across checkpoints, so part size follows PartSize, not
// the checkpoint interval. CSV and JSONL parts have their buffered rows
// written and fsynced, and the snapshot records the part's committed length
// and rows. A Parquet part has its buffered row group written out as a
// complete row group and fsynced, and the snapshot records its committed
// length, rows and committed footer: the Parquet footer of the row groups
// written so far, kept in the checkpoint, not in the file, so that the
// first committed-length bytes followed by that footer are a valid Parquet
// file of the rows before the barrier. The open row group is not cut at
// the barrier while its rows are small (up to 1 MiB of Arrow buffers): the
// snapshot carries them (Arrow IPC, LZ4) and recovery writes them out
// again, so row groups, like parts, do not follow the checkpoint interval;
// a larger open row group is written out at the barrier. The snapshot also lists every pending part and the next part
// number. When the checkpoint is complete (NotifyCheckpointComplete) the
// parts pending at its barrier are published; a part open at a barrier is
// published once it is closed and a later checkpoint completes. A restore
// completes the restored checkpoint (publishes its pending parts, truncates
// the open part to its committed length, appends the committed footer to a
// Parquet one, and publishes it) and removes every in-progress file newer
// than it, idempotently, at any parallelism; part numbers continue after
// every published or logged one, so published names are never reused. A
// failed subtask keeps its in-progress files for recovery; Finish
// publishes everything. Details in twophase.go.
//
// # Published output never changes
//
// A part once published is never removed nor rewritten, also when a
// restore goes back to a checkpoint older than some published parts (the
// newest checkpoint was unusable, or Finish published parts after the last
// barrier). Such parts are kept, and the replay's copies of the rows they
// hold after the checkpoint are dropped: their row hashes (every column of
// a Parquet row, the text of a CSV or JSONL row, read back from the parts)
// form a multiset shared by the run's subtasks, kept in the snapshots
// until the replay has produced them all. Every publication is first
// appended to a publish log in the output directory
// ("_<prefix>-published.log": file, rows, bytes, xxhash64 of the content,
// checkpoint; each line CRC-32C-checked); a restore refuses a kept part
// whose content differs from its log entry, naming it: move it out of the
// directory (its rows are then published again) to proceed. If the input
// ends with rows of the kept parts never replayed (a job whose output is
// not deterministic), the last subtask to finish logs a warning. Details
// in publog.go.
//
// # Text encodings
//
// CSV and JSONL parts are encoded by internal/arrowtext, riffle's one
// Arrow-to-text encoder (the Kafka sink's messages and ml's text exports use
// it too, so a batch reads the same everywhere; its package doc states the
// formats): column at a time, no per-value dispatch. Nulls are an empty
// field in CSV (an empty string is written as "" to tell them apart; or
// FileOptions.CSV.Null's text, a string equal to it then quoted) and
// null in JSON; FileOptions.CSV also sets the delimiter, the quote and
// whether a header line is written; timestamps are ISO 8601 with the unit's fraction digits, a
// zoned one as its UTC instant with "Z"; floats the shortest form that
// reads back exactly, integral ones with ".0"; NaN and infinities are nan,
// inf and -inf in CSV and null in JSON. Nested types are rejected for CSV
// at plan time. CSV limitation: in a single-column file a null is an empty
// line, which most readers skip.
//
// # Errors and memory
//
// Errors name the package, the operation and the file ("sinks: write
// /out/part-00000-00003.parquet: ..."). All file I/O goes through FS,
// internal/fsx's interface (shared with state, checkpoints and job
// commits), so tests inject faults (fsx.ErrorFS) and cut the power at
// every operation of publishing (fsx.MemFS, crash_mem_test.go); a
// CommitOnCheckpoint snapshot fsyncs the directory of the parts it names; all Arrow and Parquet buffers come from
// the task's allocator and are released by Close.
package sinks
