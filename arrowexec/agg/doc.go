// Package agg is riffle's vectorized hash aggregate over bounded input.
//
// # Contract
//
// New(Options) validates the options and returns a Spec (an
// arrowexec.Spec). Spec.Schema type-checks against the one input and
// returns the output schema: the group-by columns (same names and types),
// then one column per aggregate named Agg.As (default "func(col)").
//
//	count(*), count(col)  int64; counts rows / non-null values
//	sum(col)              int64 over integers, float64 over floats
//	min(col), max(col)    input type (numbers, bool, string, binary, temporal)
//	avg(col)              float64
//	count_distinct(col)   int64; exact, nulls not counted
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
// aggregation state itself lives on the Go heap and is dropped by Close,
// which is safe after errors and twice.
//
// # Two phases
//
// Mode Partial emits, after the keys, state columns (count; sum; min; max;
// avg as As+".sum" and As+".count"); Mode Final, given the same GroupBy and
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
//     calls are per batch, never per row. Per-group "has a value" flags
//     are only materialized once a NULL shows up (min and max start from
//     sentinels, so their loops need no flag either). Aggregates without group-by columns run scalar
//     loops. count_distinct keeps one global open-addressing set of
//     (group, value) pairs per aggregate.
package agg
