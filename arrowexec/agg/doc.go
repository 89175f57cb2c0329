// Package agg is riffle's vectorized hash aggregate over bounded input, and
// the aggregate library that it shares with the window step (package
// windows): one table of functions with their names, arities and type
// rules (funcs.go: ResultType), one parser of aggregate calls on top of
// the expression parser (ParseCall, expr.ParseAggCall), the fold kernels
// of count, sum, avg, min and max (kernels.go) and of the variance
// functions (VarUpdate), the approx_distinct sketch (hll.go) that both
// steps keep, and the quantile sketch of the window step (kll.go).
//
// # Contract
//
// New(Options) validates the options and returns a Spec (an
// arrowexec.Spec). Spec.Schema type-checks against the one input and
// returns the output schema: the group-by columns (same names and types),
// then one column per aggregate named Agg.As (default "func(col)").
//
//	count(*), count(col)  int64; counts rows / non-null values
//	sum(col)              int64 over integers, float64 over floats, decimal(38, s)
//	                      over decimal(p, s), decimal256(76, s) over decimal256
//	                      (exact; decimal.go, decimal256.go)
//	min(col), max(col)    input type (numbers, decimals, bool, string, binary, temporal)
//	avg(col)              float64 (over decimals: the exact sum / count)
//	count_distinct(col)   int64; exact, nulls not counted
//	approx_distinct(col)  int64; HyperLogLog p=14 (0.81% standard error)
//	var_samp, var_pop,    float64 over numbers (variance = var_samp, stddev =
//	stddev_samp, stddev_pop  stddev_samp); samp needs 2 values, pop 1, else NULL
//	bool_and, bool_or     bool over bool; NULL without a non-null value
//	median(col),          float64 over numbers; exact (every value is kept):
//	quantile(col, q)      DuckDB's quantile_cont (alias quantile_cont; DuckDB's
//	                      own quantile is quantile_disc); q a constant in [0, 1]
//	arg_max(x, y),        x of the row with the greatest (least) y; rows with a
//	arg_min(x, y)         NULL x or y skipped (DuckDB); aliases max_by, min_by
//	first(x, t), last(x, t)  x (NULL too) of the row with the least (greatest)
//	                      t; rows with a NULL t skipped: DuckDB's
//	                      first(x ORDER BY t) over rows with a t. The window
//	                      step writes first(x): by its time column
//	list(x)               list<x>, NULLs kept, in order of arrival (DuckDB's
//	                      list; alias array_agg); takes no FILTER
//
// Of rows tied on y (t), arg_max, arg_min and first keep the first a
// subtask sees, last the last; at parallelism above 1 which one that is
// depends on arrival order. The collecting functions (collect.go) are not
// decomposable. The window step computes median and quantile with a KLL
// sketch (kll.go): exact up to KLLK values per window, beyond that within
// a normalized rank error of KLLRankError.
//
// An aggregate's argument is a column here; calls over expressions and with
// FILTER (WHERE …), and keys that are expressions, are brought to columns by
// Lower, which gives the planner the projection to run in front of the
// step.
//
// sum, min, max and avg of a group without non-null values are NULL (SQL
// semantics). An integer sum (or avg) leaving the int64 range fails the
// operator with an error rather than wrapping. Null keys form their own
// group; float keys compare as arrowexec.HashColumns hashes them (-0 equals
// +0, NaNs are one key). Without group-by columns there is exactly one
// output row, also for empty input. For min and max, NaN is greater than
// every other float; strings and binaries compare bytewise.
//
// The operator consumes batches in Process (borrowed, never retained) and
// emits every group at Finish, in order of first appearance, in batches of at
// most Options.BatchSize (default and maximum 65536) rows. Result arrays are
// allocated from the Task's allocator and owned by the emitter; the
// aggregation state itself lives on the Go heap and is dropped once Finish
// emitted it, and by Close, which is safe after errors and twice.
//
// # Two phases
//
// Mode Partial emits, after the keys, state columns (count; sum; min; max;
// avg as As+".sum" and As+".count"; approx_distinct the sketch, binary;
// the variance functions As+".n", As+".mean" and As+".m2");
// Mode Final, given the same GroupBy and
// Aggs, merges such states by key into final results, so a planner can
// pre-aggregate before a hash exchange. count_distinct is not decomposable:
// Decomposable reports false and the planner exchanges rows first, then
// aggregates in Mode Single.
//
// # Design
//
// Per input batch:
//
//  1. arrowexec.HashColumns hashes the key columns into []uint64.
//  2. A grouper maps hashes to group ids through an open-addressing table
//     with linear probing; keys are stored columnar per group (key g is
//     element g). A single fixed-width key (integers, temporal, float bits,
//     bool) has its own table whose slots hold the key next to the group
//     id, so a lookup touches one cache line. A single string key probes
//     slots packing the hash's high 32 bits with the group id and compares
//     bytes in the same loop. Other key sets probe by hash only, then run
//     one typed verification loop per key column, and re-probe, comparing
//     full keys, the rare rows whose hash matched a different key. The
//     result is one uint32 group id per row. Tables grow at a load of 1/4
//     while small (short probes) and 1/2 beyond 2^18 slots.
//  3. Each aggregate updates its state with one typed loop over the batch
//     (sums[gid[i]] += vals[i]), null-bitmap aware; the only interface
//     calls are per batch, never per row. The loops of count, sum, avg,
//     min and max are the exported fold kernels (kernels.go: FoldCount,
//     FoldSum, FoldAvg, FoldMinMax, FoldMinMaxString), which take an
//     optional selection of rows so that the window step folds its (row,
//     window) pairs with the same loops. Per-group "has a value" flags
//     are only materialized once a NULL shows up (min and max start from
//     sentinels, so their loops need no flag either). Aggregates without group-by columns run scalar
//     loops. count_distinct keeps one global open-addressing set of
//     (group, value) pairs per aggregate.
//
// # Checkpoints
//
// The operator is an arrowexec.Checkpointer with exactly-once state: a
// restored job re-reads the input after the checkpoint and ends with the
// result of an uninterrupted run, also at another parallelism.
//
// What is snapshotted is the state of groups, complete: the keys, and per
// aggregate its state columns (state.go): count -> the count; sum -> the
// sum (NULL: no value yet); avg -> sum and count; min, max -> the extreme
// (NULL: no value); count_distinct -> the set of distinct values of the
// group, a list (fixed-width values as their canonical 64-bit patterns,
// strings and binaries as binary), from which the count is derived again;
// median, quantile -> the values, list<float64>; arg_*, first, last -> x
// and the ordering value (NULL: no row yet); list -> the list.
// The state of a set of groups is an Arrow IPC stream of records of those
// columns (at most 65536 groups each); its schema names the keys and
// aggregates and carries a format version, and a restore into an aggregate
// with other keys, functions or types fails instead of misreading it.
// Restoring merges: each record's keys are grouped like input keys
// (arrowexec.HashColumns, the grouper), then every aggregate merges its
// state columns by group id with one typed loop (adding counts and sums,
// with the overflow checks of update; min and max of extremes; the union
// of distinct sets). Since it merges, the order of the restored streams
// and keys present in several of them are harmless.
//
// Where the state goes depends on how the operator is partitioned:
//
//   - Keyed Single and Final operators (behind a hash exchange, as the
//     planner builds them) snapshot per key group: group g belongs to key
//     group arrowexec.KeyGroupOf(arrowexec.HashColumns(keys of g)), the
//     hash the exchange routes rows with, and SubtaskSnapshot.KeyGroups
//     holds one stream per key group that has groups. A subtask restores
//     RestoreState.KeyGroups, the key groups it owns now, whichever old
//     subtasks held them; it checks that every restored key hashes into the
//     key group it came from. Such an operator must run behind a hash
//     exchange by its group-by columns, in that order: SnapshotState fails
//     on a group outside the subtask's key groups (two subtasks holding one
//     key group would lose state, the checkpoint keeps one blob per key
//     group).
//   - Partial operators (before the exchange, fed by any subtask: one key
//     can be in several of them) and global aggregates (no GROUP BY) write
//     one stream of all their groups as operator state
//     (SubtaskSnapshot.Operator). They cannot use key groups: two subtasks
//     writing the same key group would overwrite each other in the
//     checkpoint (one blob per key group). New subtask s restores the blobs
//     of the old subtasks j with j % parallelism == s, so every old
//     subtask's state is restored exactly once. That is correct because
//     partial states are merged downstream anyway, and a global aggregate
//     runs at parallelism 1 (the planner puts it behind a rebalance), which
//     restores every blob. Partial operators keep their state until Finish
//     (the operator contract cannot emit at a barrier: SnapshotState gets
//     no Emitter), so their checkpointed state is about the number of keys
//     a subtask saw.
//
// A finished subtask answers later checkpoints too (see "Finished
// subtasks" in arrowexec): Finish emitted every group, so the state is
// empty then, and a global aggregate records that it emitted its row (a
// marker operator blob) so that a restored job, whose sources are at their
// end, does not emit it twice. Rows arriving after such a restore clear the
// marker: a Partial subtask whose own splits had ended may be handed live
// ones, and what it aggregates from them must be emitted. A stop without
// drain (Task.Suspended) is not an end: Finish then keeps the groups, which
// later snapshots (and so the savepoint) hold.
//
// SnapshotState runs synchronously at the barrier. It hashes the keys of
// every group once (key groups), sorts the groups by key group (a counting
// sort) and scatters every state column into that order in one sequential
// pass (the writes go to one stream per key group, which stays cache
// friendly; gathering each key group's groups instead would read the whole
// state at random once per key group); records are slices of those
// columns, handed to the IPC writer without another copy. With an int64
// key and five aggregates a group takes about 56 bytes; see
// BenchmarkSnapshotState and BenchmarkRestore for the time per group.
package agg
