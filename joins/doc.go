// Package joins is riffle's keyed stream join: inner equi-joins of two
// inputs over Arrow batches, with their rows kept in keyed state (package
// state, memory or Pebble), checkpointed and rescalable.
//
// # Contract
//
// New(Options) validates the options and returns a Spec (an
// arrowexec.Spec) for a node with two inputs, left (edge 0) and right
// (edge 1), each read behind a hash exchange on its key columns
// (Options.LeftKeys, RightKeys): arrowexec hashes equal values of equal
// types alike, so the rows of a key from both inputs meet in the subtask
// owning its key group. Key columns pair up by position and must have the
// same type (an error at plan time, from Spec.Schema, otherwise). A row
// with a null key matches nothing (SQL equality) and is dropped.
//
// Three joins:
//
//	Interval  left.k = right.k AND right.t - left.t in [Lower, Upper]
//	          (event times, ms); every pair is emitted when its second row
//	          arrives.
//	Window    left.k = right.k AND both rows in the same window (tumbling:
//	          Size; sliding: Size and Slide, epoch aligned like package
//	          windows); each window's pairs are emitted when the watermark
//	          reaches its end - 1, with window_start and window_end.
//	Regular   left.k = right.k, no time bound; every pair is emitted when
//	          its second row arrives. Rows are kept TTL after they arrived
//	          (processing time, the backend's state.Options.Clock), forever
//	          without a TTL (the job planner refuses that over unbounded
//	          input).
//
// A lookup join (NewLookup, LookupSpec; lookup.go) has one input and a
// Table (the job's is Parquet files) that every subtask loads whole: a
// broadcast, so its input needs no exchange. The table is kept as one
// batch with a hash index of its keys (a chain of rows per key); a batch
// is joined by one probe per row and two gathers (arrowexec.TakeRecord),
// the input's columns then the table's. Before a batch, at most every
// LookupOptions.Check of processing time, the table's Version (the files'
// names, sizes and modification times) is asked, and a new version is
// loaded before the batch is joined. It keeps no checkpointed state: a
// restored job loads the table again.
//
// # Output
//
// The output schema is the left input's columns, then the right input's,
// then (window join) window_start and window_end (timestamp[ms, UTC]). A
// right column whose name is already taken is renamed RightPrefix + name
// ("right_k" for a key k on both sides); if that is taken too, or a
// window join's input has a column named window_start or window_end,
// Spec.Schema fails. Output batches hold at most Options.BatchSize rows.
// The order of output rows is not specified (it depends on arrival
// order); the set of rows is.
//
// # Event time, state cleanup and late rows
//
// The watermark wm says no row with time <= wm is still to come. A row of
// a timed join (interval, window) is late when that is not true of it:
// an interval join row with time <= wm, a window join (row, window) pair
// whose window already fired (end - 1 <= wm; for sliding windows each
// late window is one pair). Late rows, and rows without an event time,
// are not joined: they go to the side output LateLeft ("late_left") or
// LateRight ("late_right") with their own columns plus
// late_window_start, late_window_end (null for an interval join),
// late_reason ("late" or "null_event_time") and late_watermark, the
// columns package windows uses for its late output (two outputs because
// the inputs' columns differ). With no edge wired they are dropped
// unbuilt.
//
// The watermark also drops state: an interval join's left row with time
// t can match no right row still to come once wm >= t + Upper, a right
// row once wm >= t - Lower, and is then removed; a window's rows are
// removed when it fires. So an interval or window join's state holds the
// rows of the last (Upper - Lower) or Size of event time, plus the
// watermark's lag. Its results are exact (equal to the nested-loop join
// of the rows that were not late) whatever the arrival order, batch
// sizes and parallelism.
//
// # State
//
// Per side one list state ("join/left", "join/right") per key (the
// order-preserving encoding of state.EncodeKeys), under the window's
// namespace (state.AppendWindow) for a window join; an element is a row:
// the key hash, its event time, then the row's columns (rows.go: one
// validity byte per column, fixed-width values as their Arrow bytes,
// strings and binaries length-prefixed; encoded and decoded column by
// column). Per batch the operator encodes every row once, groups the rows
// by key, reads the other side's lists of those keys in one GetMany,
// matches each row against them, gathers the probe side's columns with
// arrowexec.TakeRecord and decodes the stored side's, and appends the
// batch's rows to its own side in one AppendMany. Timers (when a key's
// oldest rows expire, which keys have rows in a window) are kept in
// memory only and rebuilt by one pass over the state after a restore.
//
// # Checkpoints
//
// The operator is an arrowexec.AsyncCheckpointer: at a barrier it takes
// the store's point-in-time view (state.Store.BeginSnapshot) and writes it
// while processing goes on: one blob per key group plus the MANIFEST as
// operator state, or, for a Pebble store in a job with a checkpoint
// directory, files in Task.SnapshotDir. A restore loads the key groups
// the subtask owns now (at any parallelism) and the largest watermark the
// subtasks recorded. The late side outputs are ordinary side edges, so
// what was emitted to them before a barrier belongs to its checkpoint.
package joins
