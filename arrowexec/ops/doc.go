// Package ops holds riffle's vectorized relational operators. Filter and
// Project are stateless. Both bind their expressions to the input schema at plan time
// (Spec.Schema), so a type error or an unknown column fails the job before
// it starts, and both work a whole batch at a time:
//
//   - Filter turns its predicate into a selection vector (expr.Bound.Select)
//     and gathers the selected rows with arrowexec.TakeRecord. A batch whose
//     rows all pass is forwarded as is (Retain, no copy); a batch with none
//     is dropped.
//   - Project evaluates each output column with expr.Bound.Eval; a plain
//     column reference shares the input column (Retain, no copy).
//
// Sort, Limit and Unnest serve bounded jobs' sort, limit and unnest steps:
//
//   - Sort buffers its input (Retain) and at the end of input orders it by
//     a permutation over row numbers, then gathers every column once
//     (arrowexec.TakeRecord). Rows are compared as normalized keys
//     (sortkey.go): each row's key columns encoded, column at a time, into
//     one byte string whose bytewise order is the sort order, so a
//     comparison is one bytes.Compare whatever the types. NULLs sort last
//     unless NULLS FIRST is given, for ASC and DESC alike (DuckDB's
//     default); NaN sorts above +Inf and -0 equals 0, as in DuckDB.
//     Fixed-width keys are LSD-radix-sorted, string keys pdqsorted with
//     the row number as tie-break: the sort is stable within a subtask. With a limit (NewTopN) it keeps only
//     the best N rows in a max-heap as batches arrive, compacting the
//     batches its rows live in every 32 kept batches.
//   - Limit forwards the first N rows a subtask receives; a partial limit
//     at parallelism p and a final one at 1 make a total of N.
//   - Unnest gives one row per element of a list column (NULL and empty
//     lists give none), gathering the other columns by parent row.
//
// Sort and Limit snapshot their state at checkpoints (the buffered or kept
// rows as Arrow IPC, the count sent); a restore hands subtask j's state to
// subtask j mod parallelism.
//
// The hash aggregate lives in package agg; windows in package windows.
package ops
