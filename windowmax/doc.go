// Package windowmax is a per-window max filter: of each tumbling
// event-time window, the input rows whose ranking column (Options.By)
// holds the window's largest value, every row tied for it kept (Nexmark
// q7, "the highest bids of each window", without a join back).
//
// # Contract
//
// New(Options) validates the options and returns a Spec (an
// arrowexec.Spec) for one input. Its output schema is the input's: the
// operator only drops rows. Windows are [start, start+Size) with start a
// multiple of Size (epoch aligned, as package windows). The time column is
// a timestamp of any unit or int64 milliseconds; By is an integer
// (int8 ... int64, uint8 ... uint32), a timestamp or a float64. A row
// whose time or By value is null is never kept (SQL: max ignores nulls,
// and null = max is not true). Floats compare as package agg's max does:
// NaN above every other value, -0 equal to +0.
//
// Two modes make one step:
//
//	Partial  runs at any parallelism, behind a forward edge: per batch it
//	         passes the rows at the batch's per-window maximum that are
//	         not below the largest value it passed for that window
//	         before (so nearly every row is dropped at once); it keeps
//	         only those running maxima, forgotten when the watermark
//	         closes the window, and nothing a checkpoint needs (a
//	         restarted subtask passes more rows, never fewer).
//	Final    runs at parallelism 1 behind the partials: it keeps the rows
//	         at each open window's running maximum (dropping them when a
//	         larger value arrives) and emits a window's rows when the
//	         watermark reaches its end - 1, at the latest at the end of
//	         input. A row of a window already emitted is late: dropped
//	         and counted (logged at Finish).
//
// A window's rows tied for its maximum all reach the final operator,
// whatever the partial subtask that saw them: a partial drops a row only
// when it saw a larger value of the same window. So the output is exact
// (equal to "rows where By = max(By) over the window") whatever the batch
// sizes, arrival order and parallelism, for rows that are not late.
//
// # Cost
//
// Per batch: one pass converting the times to milliseconds and the By
// values to order-preserving int64 (floats), one pass for the per-window
// maxima of the batch (a batch spans few windows: the last window found
// is looked up first), one pass selecting the rows at the maximum, and
// one gather (arrowexec.TakeRecord) of the few selected rows. No per-row
// allocation or interface call.
//
// # Checkpoints
//
// The final operator is an arrowexec.Checkpointer: its snapshot is the
// watermark, each open window's start and maximum and its kept rows (an
// Arrow IPC stream, LZ4). A restore merges the snapshots of every previous
// subtask. Partial operators keep no checkpointed state.
package windowmax
