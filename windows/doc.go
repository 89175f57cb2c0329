// Package windows is riffle's event-time window aggregate: keyed tumbling,
// sliding (hop) and session (gap) windows over Arrow batches, fired by
// watermarks, with allowed lateness, a side output for records later than
// that, and a top-N operator to rank the results of each window.
//
// # Contract
//
// New(Options) validates the options and returns a Spec (an
// arrowexec.Spec) for one input, run behind a hash exchange on the key
// columns (or with one subtask without keys). Its output schema is
//
//	key columns (input types) | window_start, window_end (timestamp[ms, UTC])
//	| one column per aggregate | is_update (bool)
//
// Aggregates per window come from the aggregate library of package agg
// (the functions, their parsing and their result types are the aggregate
// step's; agg.ResultType):
//
//	count(*), count(col)  int64
//	sum(col)              int64 over integers (an overflow is an error), float64 over floats
//	min(col), max(col)    the input's type (numbers, bool, string, binary, temporal)
//	avg(col)              float64
//	count_distinct(col)   int64, exact (the values are kept in map state)
//	approx_distinct(col)  int64, HyperLogLog p=14 (0.81% standard error)
//	var_samp, var_pop, stddev_samp, stddev_pop (variance, stddev)  float64
//	bool_and(col), bool_or(col)  bool
//	median(col), quantile(col, q)  float64, a KLL sketch (agg.KLL): exact
//	                      (DuckDB's quantile_cont) up to agg.KLLK = 200 values
//	                      per window, beyond within agg.KLLRankError (2%) of
//	                      the rank
//	first(x), last(x)     x of the row with the least (greatest) event time
//	                      (first(x, t): by column t); NULL x too
//	arg_max(x, y), arg_min(x, y)  x of the row with the greatest (least) y,
//	                      rows with a NULL x or y skipped
//
// first, last, arg_max and arg_min take and order by numbers, booleans and
// temporal values here (strings: the aggregate step); list is for the
// aggregate step only.
//
// Keys and aggregate arguments may be expressions, and aggregates may have
// FILTER (WHERE …), through the projection the planner puts in front of
// the step (agg.Lower); the window itself reads columns.
//
// sum, min, max and avg of a window without non-null values are NULL.
// For min and max, NaN is greater than every other float; strings and
// binaries compare bytewise.
// Event time is int64 milliseconds (arrowexec): the Time column is a
// timestamp of any unit or int64 milliseconds. Windows are [start, end)
// with start a multiple of the slide (tumbling: slide = size), epoch
// aligned. A session is [first event, last event + gap): events at most gap
// apart share one, and a late event can merge two sessions into one. When
// a session that was already emitted grows or merges, the new window is
// emitted with is_update = true; the earlier row, with other bounds, is not
// retracted (downstream keys sessions by key and overlapping range).
//
// # Firing, lateness and late data
//
// The watermark wm says no event with time <= wm is still to come. A window
// fires when wm >= end-1: its result is emitted with is_update = false.
// With AllowedLateness L its state is kept until wm >= end-1+L; a record
// arriving for it in between updates it, and the new result is emitted at
// the end of that batch with is_update = true (downstream keeps the last
// result per key and window). A record whose window is already purged
// (end-1+L <= wm, so exactly at the boundary the record is late) is never
// silently dropped: it is counted (Stats.LateRows) and emitted to the
// operator's side output LateOutput ("late", an arrowexec.SideOutput) with
// its own columns plus late_window_start, late_window_end, late_reason
// ("late", or "null_event_time" for a row without an event time) and
// late_watermark (LateSchema). For sliding windows a row may be late for
// some of its windows only; each late (row, window) pair is one
// side-output record. The side output is an ordinary edge of the graph to
// whatever node the job wires to it (package job: late_output, a file or
// Kafka sink); the rows of a batch are emitted before the barrier that
// follows it, so the side output is exactly once whenever its sink is.
// With no edge wired the late rows are only counted, and not built. Without lateness
// (L = 0) a window is emitted exactly once. At the end of bounded input
// the runtime brings MaxWatermark: every window fires and is purged.
//
// # State
//
// All window state is kept in the keyed state API (package state), memory
// backend by default, Pebble with Options.Backend (through the write-back
// caches described below): per (key,
// window) one value holding the accumulators (a flat byte blob: flags, key
// hash, per aggregate its fixed state (count and value; count, mean and
// M2 for the variance functions; count, ordering value, x and its
// validity for first, last and arg_*), then one sketch region per
// approx_distinct (HyperLogLog, sparse until 2048 registers are set, then
// the dense 16 KiB) and per median or quantile (KLL, at most about 600
// values), then one region per min or max over strings: the current
// extreme, its length and bytes, rewritten only when a batch brings a new
// one), and for count_distinct a map state of the distinct values (read
// when the window fires, cleared when it is purged: on Pebble entry by
// entry, so firing n windows costs O(n), see package state and
// BenchmarkCountDistinctFire).
// Namespaces are
// state.AppendWindow(start, end), so the windows of a key iterate in end
// order (sessions read all windows of a key to merge). Timers are derived
// from the state and kept in memory only; after a restore they are rebuilt
// by one pass over it. The operator implements arrowexec.Checkpointer: a
// snapshot is the store's snapshot (one blob per key group, the MANIFEST as
// operator state), so it restores at any parallelism. The dirty windows of
// the write-back caches are snapshotted straight from them, not through
// the store: each key group blob is then a frame of the cache's records of
// that key group (cache key, blob; the cache key is start | key, for
// sessions start | end | key), the store's data file and a CRC-32C (see
// checkpoint.go); a restore loads the records back into the cache, dirty,
// with their timers. A checkpoint of many live
// windows is one linear pass over the cache (with the memory backend,
// writing them to the store first cost a skip-list insertion per window:
// 8.2M live windows took 31 s, now 1.6 s).
//
// # Vectorized path
//
// Per batch: the event times are converted once
// (arrowexec.EventTimesMillis); keys are hashed (arrowexec.HashColumns, the
// hash the exchange routed by, so state key groups line up) and encoded
// column by column by the one key codec (state.EncodeKeyValues; its
// layout is the key of every window in state and snapshots); one typed
// loop assigns each row its window start(s) and routes late pairs to the
// side output; an open-addressing table maps
// (key, window) to a dense group id; each aggregate updates its per-group
// accumulators with one typed loop over (row, group) pairs: the fold
// kernels of package agg (agg.FoldSum, agg.FoldMinMax, ...), the loops the
// aggregate step runs too, given the pairs' rows as a selection. Only then are
// the windows touched, once per distinct (key, window) of the batch, so
// that cost scales with groups, not rows.
//
// Tumbling and sliding windows go through a write-back cache in front of
// the store: an open-addressing table (linear probing, at most 3/4 full,
// backward-shift deletion) of (tag, entry) slots, the tag a 64-bit mix of
// the key hash and the window start, so a lookup hashes one word and
// compares key bytes only on a tag match. Entries, their accumulator blobs
// and their cache keys (start | key) are allocated from slabs: no
// allocation per window. Misses are read from the store in one GetMany
// (only when the store may hold windows the cache does not: after a
// restore or an eviction); dirty windows are written back in one PutMany
// when the cache holds more than Options.CacheWindows windows (it is then
// emptied, so state larger than memory lives in Pebble). With the memory
// backend the cache is unbounded by default: the store is memory too, and
// costlier per window, so evicting to it only added a write and a read per
// window per batch. Their timers are buckets of cache entries per firing
// time, with a heap of the distinct times; a bucket fires in cache key
// order (radix sorted on a word of each key, ties by the whole key), and
// a watermark that fires many windows emits their results batch by batch
// (BatchSize), not all at once. BenchmarkWindowManyLive (sliding 10m/2m by
// user_id, 2M events over 7 days, watermark held to the end: 8.2M live
// windows) went from 8.3K to about 0.2M events/s, its checkpoint from 31 s
// (600 MiB) to 1.7 s (404 MiB), its restore from 17.6 s to 3.6 s; with a
// watermark after each batch, from 0.25M to 0.38M events/s.
//
// What tumbling and sliding windows do differently from session windows
// is behind a small strategy (strategy.go): assigning a batch's rows,
// firing on a watermark, the cache's dirty records, restore and timers.
// fixed.go holds tumbling and sliding windows (their cache in cache.go),
// session.go session windows; operator.go what both share.
//
// Session windows have a write-back cache of keys (session.go): a key's
// entry holds all its open sessions (start, end, accumulator blob, dirty
// and in-store flags), found by the key hash. The batch's rows are grouped
// by key (a counting sort, then each key's run sorted by time unless it is
// in order), folded into batch-local sessions, and those merged with the
// cached sessions of their key: a session that a batch extends keeps its
// blob, so the common path touches no store and allocates nothing
// (entries, blobs and scratch are reused through free lists). A cached
// entry is complete: a session whose bounds change, or that is merged into
// another, is deleted from the store at once (its count_distinct values,
// always in the store, move to the new bounds as before), so the store is
// read, one prefix scan per key, only for keys missing from the cache,
// and only when it may hold sessions the cache does not (after an
// eviction or a restore that did not load everything). Dirty sessions are
// written back in one PutMany and the cache emptied when it holds more
// than Options.CacheWindows sessions after a batch or watermark; a
// restore loads the store's sessions into the cache as far as that bound
// allows. Session timers refer to their key's entry (counted, so entries
// are reused only when no timer refers to them) and are one 4-ary heap
// ordered by (time, kind, end, start, key), the order in which results
// are emitted. BenchmarkWindow session-30s (1M events, one watermark a
// batch) went from 1.2M to 5.6M events/s keyed by item_id and from 0.3M
// to 1.8M keyed by user_id (11.2M allocations to 4.4K); before, every
// batch prefix-scanned, rewrote and deleted each key's sessions in the
// store, and copied the key into every timer.
//
// # Top-N
//
// NewTopN ranks the rows of each window by an aggregate (largest first by
// default), ties broken by the key columns ascending, and emits the first N
// with a rank column when the watermark passes the window, re-emitting the
// ranking (is_update) when a row of the window is updated. It runs with one
// subtask behind the window operator (or behind a hash exchange on
// window_start). The latest row of every key of every open window is map
// state keyed by the window, checkpointed like the window operator's.
//
// # Pending windows
//
// Spec.Pending reports, per subtask and from any goroutine, the last
// watermark and the end of the earliest window waiting to fire: the start
// of the answer to "why has this window not fired yet?" (riffle's web view
// traces the watermark back to the source split holding it). Each subtask
// publishes it with two atomic stores: a new pending window lowers it when
// scheduled, and after a watermark that reached it the operator scans its
// distinct fire times (tumbling, sliding) or its timer queue (sessions)
// once (pending.go).
package windows
