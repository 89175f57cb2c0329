// Package ops holds riffle's stateless vectorized operators: Filter and
// Project. Both bind their expressions to the input schema at plan time
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
// The hash aggregate lives in package agg; windows in package windows.
package ops
