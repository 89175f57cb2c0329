// Package lastn is a per-key last-N aggregate: for every input row, the
// aggregates over the last N rows of its key, itself included, in
// event-time order (SQL: agg(x) OVER (PARTITION BY keys ORDER BY order
// ROWS BETWEEN N-1 PRECEDING AND CURRENT ROW)). Nexmark q6, "the average
// selling price of a seller's last 10 closed auctions", is avg over N =
// 10 keyed by seller, ordered by the auctions' close time.
//
// # Contract
//
// New(Options) validates the options and returns a Spec (an
// arrowexec.Spec) for one input, run behind a hash exchange on the key
// columns. Its output schema is the input's columns, then one column per
// aggregate (Agg.As): count(*) and count(col) int64, avg(col) float64,
// sum, min and max of the column's type. Arguments are int64 or float64
// columns; nulls are skipped (an aggregate over no non-null value is
// NULL, count 0). Keys are columns of any type state.EncodeKeys takes;
// a null key is a key of its own.
//
// Order lists the columns rows are ordered by within a key: the first is
// the event time (a timestamp or int64 milliseconds), the others (int64
// or timestamp) break ties, then arrival order. A row is held until the
// watermark reaches its event time, then the rows released together are
// processed in that order, key by key, and emitted with their aggregates;
// the end of input releases every held row. So for rows that are not
// late the output is exact whatever the arrival order, batch sizes and
// parallelism. A row arriving when the watermark already passed its time
// (late, or every row behind a step that emits at the end of input, such
// as an aggregate) is released at the next watermark or the end of input,
// ordered among the rows released with it but after those of its key
// already processed. Rows with a null event time are released at the end
// of input. Behind a step that emits at the end of input (an aggregate,
// whose rows all come behind the watermark it passes on) the watermark
// says nothing about the rows: with Options.AtEnd (the job planner sets
// it there) every row is held until the end of input, and the output is
// exact for bounded input. Output order is not specified.
//
// # State and checkpoints
//
// Per key the last N argument values (a ring; memory) and the held rows
// (their batches, retained). The operator is an arrowexec.Checkpointer
// whose snapshot is one blob per key group (SubtaskSnapshot.KeyGroups):
// the rings of its keys and its held rows as an Arrow IPC stream. A
// restore loads the key groups the subtask owns now, at any parallelism,
// and takes the largest watermark recorded.
package lastn
