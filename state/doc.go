// Package state is riffle's keyed state: value, map and list state per key,
// kept by a Backend (in memory, or Pebble on local disk) and snapshotted to
// files for exactly-once checkpoints.
//
// # Model
//
// A Backend opens one Store per subtask of a keyed operator. The Store owns
// the key groups [lo, hi) of that subtask (arrowexec.KeyGroupRange), out of
// MaxParallelism key groups in total. Every entry belongs to the key group of
// its key: the operator passes the key's 64-bit hash, computed by
// arrowexec.HashColumns over the key columns, and the store files the entry
// under arrowexec.KeyGroupOf(hash, MaxParallelism). State therefore lines up
// with hash exchanges, and one key group is the unit of redistribution when
// parallelism changes. Accessing a key whose key group the store does not own
// returns ErrKeyGroupOutOfRange.
//
// A key is the operator's encoding of its key columns: the key codec
// (keycodec.go: EncodeKeys, DecodeKeys) is the one encoding of Arrow key
// columns every keyed operator uses, vectorized and order preserving. Under a key, state is kept
// per namespace: a window (AppendWindow), or nil for none (nil and empty are
// the same namespace). A windows operator
// keeps per-(key, window) state and iterates the windows of a key in order.
//
// States are declared by descriptors and accessed through typed handles:
//
//	Value[T]    one value per (key, namespace)
//	Map[K, V]   a sorted map per (key, namespace), ordered by the map key
//	List[T]     an append-only list per (key, namespace); appends are blind
//	            writes (Pebble merge operands), no read
//
// Values are converted to bytes by a Codec; map keys by a KeyCodec, whose
// encoding sorts like the values. Handles are created with NewValue, NewMap
// and NewList; the same name always yields the same state id, so a handle
// declared after a restore finds the restored entries.
//
// Handles take many keys at once where it matters (GetMany, PutMany,
// AppendMany over a Keys batch, one Pebble batch or iterator per call), so an
// operator processing an Arrow batch pays one call per batch, not per row.
//
// # Ordering
//
// Iteration follows the byte layout below: by key group, then key, then
// namespace, then map key. Within a key group, keys iterate in the order of
// their encodings (EncodeKeys and the provided KeyCodecs are order
// preserving); namespaces of one key in namespace order (AppendWindow sorts by
// window end, then start); map entries by map key.
//
// Timers (fire every window whose end passed the watermark) fit the same
// model: a value state keyed by Int64.Append(nil, windowEnd), with the
// record key's hash (so the timer lives in the record's key group) and the
// record key as namespace; RangeKeys(nil, Int64.Append(nil, wm+1), ...)
// (nil bound for MaxWatermark) then walks the due timers key group by key
// group, in end order within each.
//
// # Key layout
//
// Every entry is one key/value pair in an ordered byte space (a Pebble DB, or
// an ordered in-memory index), laid out as
//
//	key group (2 bytes, big endian) | state id (4 bytes) | esc(key) | esc(namespace) | map key
//
// The state id is a CRC-32C of the state name. esc(x) escapes 0x00 as
// 0x00 0xff and terminates with 0x00 0x01, which keeps the byte order of x and
// makes the components self-delimiting, so "all namespaces of a key" and "all
// map entries of a (key, namespace)" are contiguous ranges. The map key is
// the KeyCodec encoding; value and list state have none. One key group is
// one contiguous range: splitting and redistributing state is a range copy.
//
// Values carry an 8-byte expiry timestamp first when the state has a TTL.
// A list value is a sequence of frames (uvarint length, optional expiry,
// element), so appending is concatenation.
//
// Clearing a map, a key or any other range (Map.Clear, ClearKey) deletes
// its entries one by one on Pebble when there are at most 1024 of them, and
// writes one range tombstone otherwise: Pebble re-fragments every range
// tombstone of its memtable for the first read after each one is added, so
// a range tombstone per purged window made firing n windows with
// count_distinct cost O(n^2) (BenchmarkCountDistinctFire in windows).
//
// # TTL
//
// A descriptor's TTL makes entries expire TTL after their last write (for
// lists, per element), on the clock of Options.Clock. Expired entries are
// invisible to every read and iteration, are dropped when read (lazily), are
// never written to snapshots, and are removed by Store.PurgeExpired. Pebble
// v1.1 has no compaction filter, so on disk they stay until one of those.
// A state's TTL must not change across a restore.
//
// # Snapshots
//
// Store.Snapshot writes the store's state under a directory: one file per
// non-empty key group ("kg-00042.state") and a MANIFEST naming the files with
// their key group, entry count, size and CRC-32C. Files are written to a
// temporary name, synced and renamed; the MANIFEST is written last, so a
// directory without a valid MANIFEST is not a snapshot and a failed snapshot
// never damages an earlier one. Store.BeginSnapshot takes the point-in-time
// view synchronously (a Pebble snapshot; an encoded copy in memory) and
// returns a PendingSnapshot whose Write may run on another goroutine while
// the operator keeps processing.
//
// Restore loads, from the snapshots of any number of previous subtasks, the
// key groups in [lo, hi): with a different parallelism each new subtask takes
// exactly the key groups it owns now. Every file's CRC-32C is verified before
// its entries are applied; a mismatch is reported as
// "state: corrupt snapshot file X: checksum mismatch" (IsCorruption).
// A MANIFEST that lists anything but the key group files of key groups in
// its range, once each, is corrupt too. Decoding a key group file, a key
// group blob or a MANIFEST returns an error on any input, never panics
// (fuzz targets FuzzKeyGroupFile, FuzzSnapshotManifest, FuzzCodecs).
// The snapshot format is the same for both backends, so a snapshot of one
// restores into the other. Pebble restores by writing one SSTable per key
// group and ingesting them (no memtable, WAL or compaction work); memory
// restores through write batches.
//
// For arrowexec's in-band checkpoints, SnapshotKeyGroups returns the same
// per-key-group data as blobs for SubtaskSnapshot.KeyGroups and
// RestoreKeyGroups loads RestoreState.KeyGroups (small state; large state
// snapshots to files and carries the directory as operator state).
//
// # Files
//
// Snapshot I/O goes through FS (OSFS by default). ErrorFS wraps an FS and
// injects errors (disk full, failed renames) for tests. Both are aliases of
// internal/fsx, the file-system layer shared with package checkpoint.
// Pebble's own files live under PebbleOptions.Dir and are a working copy:
// the durable state is the snapshots.
//
// # Concurrency
//
// A Store and its handles are used by one goroutine, the operator's, like
// every operator method. The one exception is PendingSnapshot.Write, which
// may run concurrently with further use of the store.
//
// # Errors
//
// Errors are package-prefixed sentinels ("state: ...") wrapped with the
// state, file or key group they concern; test them with errors.Is.
package state
