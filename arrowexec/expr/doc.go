// Package expr is riffle's expression language: filters and computed columns
// written as strings in YAML job files or built in Go, type-checked against
// an Arrow schema before a job starts, and evaluated a batch at a time over
// Arrow buffers.
//
//	e, err := expr.Parse("a > 10 AND name LIKE 'ab%'")
//	b, err := expr.Bind(e, schema)      // type errors surface here, at plan time
//	sel, err = b.Select(rec, sel)       // row indices where the predicate is TRUE
//	col, err := b.Eval(mem, rec)        // or a result column; caller Releases it
//
// # Grammar
//
// Keywords are case-insensitive. Identifiers are [A-Za-z_][A-Za-z0-9_]* or
// double-quoted ("my col", with "" for a quote); a bare identifier that is a
// keyword (AND OR NOT IS NULL IN LIKE TRUE FALSE CAST AS TIMESTAMP DATE CASE
// WHEN THEN ELSE END) must be quoted. Strings are single-quoted; a quote inside a string
// is doubled, as in SQL.
//
//	expr    = or
//	or      = and { OR and }
//	and     = not { AND not }
//	not     = NOT not | cmp
//	cmp     = sum [ cmpop sum
//	              | IS [NOT] NULL
//	              | [NOT] IN "(" literal { "," literal } ")"
//	              | [NOT] LIKE string ]
//	cmpop   = "=" | "!=" | "<>" | "<" | "<=" | ">" | ">="
//	sum     = product { ("+" | "-") product }
//	product = unary { ("*" | "/" | "%") unary }
//	unary   = ("-" | "+") unary | postfix
//	postfix = primary { "::" type }
//	primary = number | string | TRUE | FALSE | NULL
//	        | TIMESTAMP string | DATE string
//	        | identifier | "(" expr ")"
//	        | CAST "(" expr AS type ")"
//	        | CASE [ expr ] WHEN expr THEN expr { WHEN expr THEN expr }
//	          [ ELSE expr ] END
//	        | starts_with "(" expr "," string ")"
//	        | function "(" [ expr { "," expr } ] ")"
//	function = coalesce
//	literal = [ "-" | "+" ] number | string | TRUE | FALSE | NULL
//	        | TIMESTAMP string | DATE string
//	type    = int8 | int16 | int32 | int64 | uint8 | uint16 | uint32 | uint64
//	        | float32 | float64 | bool | string | timestamp | date
//
// CASE WHEN c THEN v … END (searched) takes the value of the first arm whose
// condition is TRUE; CASE x WHEN a THEN v … END (simple) the first arm with
// x = a. Without ELSE a row no arm takes is NULL. coalesce(a, b, …) is the
// first of its arguments that is not NULL (NULL when all are). Functions
// live in one table (funcs.go) that checks their arity at parse and bind
// time; starts_with has its own node because its prefix must be a literal.
//
// Comparisons do not chain (a < b < c is an error). LIKE accepts only prefix
// patterns: 'abc%' means starts_with(x, 'abc'), a pattern without wildcards
// means equality, a backslash escapes the next character, and any other use
// of % or _ is rejected. `x NOT IN (...)` is NOT (x IN (...)), and likewise
// NOT LIKE. The cast type timestamp is timestamp[ms] and date is
// date32. Integer literals are int64, numbers with a point or exponent are
// float64, TIMESTAMP 'YYYY-MM-DD hh:mm:ss[.fffffffff]' is UTC with
// nanosecond precision, DATE 'YYYY-MM-DD' is a date.
//
// Parse errors carry a 1-based line:column, e.g.
// `expr: 1:14: unexpected token ")"`. Every error of the package starts
// with "expr: ".
//
// # Types
//
// Columns may be int8..int64, uint8..uint64, float32, float64, bool, string,
// large_string, timestamp (any unit, any time zone: values are instants) and
// date32. Bind checks every operator:
//
//   - Arithmetic (+ - * %) on two integers gives int64 and wraps on
//     overflow (uint64 values take part as their int64 bit pattern); with a
//     float operand it gives float64. / is always float64 division. x / 0
//     and x % 0 are NULL, for integers and floats alike.
//   - Comparisons: numbers compare with numbers (int with float promotes to
//     float64; integers of different types compare exactly, except uint64
//     against a signed column, which needs an explicit cast), strings with
//     strings (bytewise), bools with bools (false < true), timestamps with
//     timestamps (instants, across units), dates with dates. Anything else,
//     such as a timestamp against an integer, is a type error.
//   - AND, OR, NOT take booleans; IN lists take literals comparable with the
//     tested expression; starts_with takes a string.
//   - CASE conditions are booleans; a simple CASE compares its operand with
//     each WHEN value under the comparison rules. The values of CASE (and
//     the arguments of coalesce) take one common type: NULL fits any type;
//     integer literals and timestamp constants take the type of the other
//     values when those all have one integer or timestamp type and the
//     constants fit it exactly (coalesce(i8, 0) is int8, coalesce(ts_ms,
//     TIMESTAMP '2024-01-01 00:00:00') is timestamp[ms]); otherwise
//     integers of different types give int64 (uint64 with unsigned ones
//     only: with a signed one, cast one side), a float gives float64
//     (float32 when all are float32), string with large_string gives
//     large_string, timestamps of one time zone give the finest unit (a
//     TIMESTAMP literal is timestamp[ns, UTC]), dates go with dates and
//     bools with bools. Anything else is a type error naming both arms ("THEN 2",
//     "ELSE", "argument 3").
//   - Casts between numbers use Go conversion (integers narrow by wrapping,
//     floats truncate toward zero); a float that does not fit the integer
//     type, or NaN, becomes NULL. Anything casts to string; a string casts
//     to any type by parsing, and NULL where it does not parse. Bools cast to
//     and from numbers (0/1, != 0). Timestamps cast to timestamp[ms] (floor),
//     to date (floor) and to integers (raw value); dates to timestamp and to
//     integers (days); integers to timestamp (milliseconds) and date (days).
//
// Subexpressions without column references are folded to constants at bind
// time, with the same kernels that evaluate batches.
//
// # NULL semantics
//
// NULL propagates through arithmetic, comparisons, casts, NOT, IN and
// starts_with. A NULL CASE condition counts as false, as does a simple
// CASE whose operand or WHEN value is NULL. AND and OR follow SQL three-valued logic (FALSE AND NULL is
// FALSE, TRUE OR NULL is TRUE). IS [NOT] NULL is never NULL. x IN (...)
// with a NULL in the list is TRUE on a match and NULL otherwise. Select
// treats NULL as false.
//
// # Evaluation contract
//
// A Bound is immutable and safe for concurrent use by several subtasks.
//
//   - Eval borrows the batch and returns an array of rec.NumRows() rows
//     owned by the caller, who must Release it. All buffers come from the
//     allocator passed in; a result may share buffers (retained) with the
//     batch, e.g. a bare column reference returns the column itself.
//   - Select borrows the batch and returns the selected row indices in sel's
//     memory when it is large enough (pass the previous result back to reuse
//     it). Its fast paths (a column compared with a literal, AND, OR, IN,
//     IS [NOT] NULL, starts_with) build no boolean arrays; subexpressions
//     they test and other predicates are evaluated with Go-heap memory.
//   - A batch must have the schema the expression was bound to; a column
//     whose type differs is an error, not a panic.
//
// Kernels run typed loops over Arrow value buffers, one loop per physical
// type and operator, chosen once per batch: no interface call or boxed value
// per row. Comparisons with a literal compare against the literal converted
// to the column's type at bind time, never a materialized column. Validity
// bitmaps are combined 64 rows at a time.
//
// CASE and coalesce work on "claim" bitmaps, 64 rows a word: each arm in
// turn claims the still undecided rows where its condition is TRUE (the
// Select kernels' bitmaps; once fewer than n/16 rows are undecided, later
// conditions are tested on those rows only, through a selection vector) or,
// for coalesce, where its value is valid. Arms after the last undecided row
// and values of arms that claim no row are not evaluated. A computed value
// of an arm claiming fewer than n/16 rows is evaluated on those rows only
// (its columns gathered with arrowexec.TakeArray) and scattered back; other
// values are evaluated over the whole batch and copied through the claim
// mask, one typed loop per arm. Validity is the OR of mask AND value
// validity.
//
// Columns lists the columns an expression reads (projection pushdown);
// PushdownPredicates extracts conjuncts a scan can test against Parquet
// row-group statistics.
package expr

//go:generate python3 gen_kernels.py
//go:generate gofmt -w kernels_gen.go
