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
// keyword (AND OR NOT IS NULL IN LIKE ILIKE TRUE FALSE CAST AS TIMESTAMP DATE
// INTERVAL CASE WHEN THEN ELSE END) must be quoted. Strings are single-quoted; a quote inside a string
// is doubled, as in SQL.
//
//	expr    = or
//	or      = and { OR and }
//	and     = not { AND not }
//	not     = NOT not | cmp
//	cmp     = concat [ cmpop concat
//	              | IS [NOT] NULL
//	              | [NOT] IN "(" literal { "," literal } ")"
//	              | [NOT] (LIKE | ILIKE) string ]
//	concat  = sum { "||" sum }
//	cmpop   = "=" | "!=" | "<>" | "<" | "<=" | ">" | ">="
//	sum     = product { ("+" | "-") product }
//	product = unary { ("*" | "/" | "%") unary }
//	unary   = ("-" | "+") unary | postfix
//	postfix = primary { "::" type }
//	primary = number | string | TRUE | FALSE | NULL
//	        | TIMESTAMP string | DATE string
//	        | INTERVAL string | INTERVAL integer unit
//	        | identifier | "(" expr ")"
//	        | CAST "(" expr AS type ")"
//	        | CASE [ expr ] WHEN expr THEN expr { WHEN expr THEN expr }
//	          [ ELSE expr ] END
//	        | starts_with "(" expr "," string ")"
//	        | extract "(" field FROM expr ")"
//	        | function "(" [ expr { "," expr } ] ")"
//	function = one of the table under Functions
//	literal = [ "-" | "+" ] number | string | TRUE | FALSE | NULL
//	        | TIMESTAMP string | DATE string
//	type    = int8 | int16 | int32 | int64 | uint8 | uint16 | uint32 | uint64
//	        | float32 | float64 | bool | string | timestamp | date
//	        | (decimal | numeric) [ "(" precision [ "," scale ] ")" ]
//
// CASE WHEN c THEN v … END (searched) takes the value of the first arm whose
// condition is TRUE; CASE x WHEN a THEN v … END (simple) the first arm with
// x = a. Without ELSE a row no arm takes is NULL. Functions live in one
// table (funcs.go) that checks their arity at parse and bind time;
// starts_with has its own node because its prefix must be a literal.
//
// Comparisons do not chain (a < b < c is an error). In LIKE patterns %
// matches any run of characters and _ one character, anywhere in the
// pattern; a backslash escapes the next character (DuckDB has no default
// escape character: 'a\b' LIKE 'a\b' is TRUE there and FALSE here). 'abc%'
// is starts_with(x, 'abc') and a pattern without wildcards is equality.
// ILIKE compares lower-cased value and pattern. `x NOT IN (...)` is NOT (x
// IN (...)), and likewise NOT LIKE. INTERVAL '1 day 2 hours' (or INTERVAL 3
// DAY) is a fixed duration: one or more "<integer> <unit>" pairs of
// nanosecond, microsecond, millisecond, second, minute, hour, day or week
// (plural forms too); months and years have no fixed length and are
// refused. An interval can only be added to or subtracted from a timestamp. The cast type timestamp is timestamp[ms] and date is
// date32. Integer literals are int64, numbers with a point or exponent are
// float64, TIMESTAMP 'YYYY-MM-DD hh:mm:ss[.fffffffff]' is UTC with
// nanosecond precision, DATE 'YYYY-MM-DD' is a date.
//
// Parse errors carry a 1-based line:column, e.g.
// `expr: 1:14: unexpected token ")"`. Every error of the package starts
// with "expr: ".
//
// # Functions
//
// Every function is type-checked at bind time: a wrong arity or argument
// type, or a constant argument that cannot be valid (a bad regular
// expression, an unknown date_trunc unit), is an error naming the function
// and the argument ("expr: date_trunc argument 1 (string literal 'fortnight'):
// unknown unit ..."). Values outside a function's domain that only the data
// shows are runtime errors naming the row within the batch. "NULL → NULL"
// means the result is NULL when any argument is; every function was checked
// against DuckDB 1.5 on random data with NULLs (funcs_duckdb_test.go), and
// the differences are listed in the table.
//
//	name            signature                                  NULL behaviour, notes
//	coalesce        (x, …) → common type                       first non-NULL argument; NULL when all are
//	if              (cond bool, a, b) → common type            b when cond is FALSE or NULL
//	nullif          (a, b) → type of a                         NULL when a = b, else a (NULL a gives NULL)
//	abs             (number) → same type                       NULL → NULL; smallest integer: runtime error
//	round           (number[, digits const int]) → same type   NULL → NULL; half away from zero; integers
//	                                                           round to 10^-digits when digits < 0;
//	                                                           a decimal(p,s) gives decimal(p,digits)
//	                                                           (digits < s) as DuckDB
//	floor, ceil     (number) → float64 (float32 for float32)   NULL → NULL
//	sqrt            (number) → float64                         NULL → NULL; negative: runtime error
//	ln              (number) → float64                         NULL → NULL; zero or negative: runtime error
//	exp             (number) → float64                         NULL → NULL; overflow gives +Inf
//	pow             (number, number) → float64                 NULL → NULL; NaN where undefined
//	greatest,       (x, …) → common type                       NULL arguments skipped; NULL when all are;
//	least                                                      NaN is the largest float
//	lower, upper    (string) → same string type                NULL → NULL; Unicode simple case mapping
//	                                                           (DuckDB maps ß to ẞ in upper; Go keeps ß)
//	length          (string) → int64                           NULL → NULL; characters (code points)
//	substr          (string, start int[, length int]) → string NULL → NULL; 1-based, negative start from
//	                                                           the end, negative length: before start
//	trim, ltrim,    (string[, characters const string])        NULL → NULL; default: spaces only
//	rtrim             → string
//	concat          (x, …) → string                            NULL arguments skipped, never NULL; other
//	                                                           types cast to string (floats print as Go's
//	                                                           shortest form: 1 where DuckDB prints 1.0)
//	a || b          (x, y) → string                            NULL → NULL; other types cast to string
//	replace         (string, from, to) → string                NULL → NULL; every occurrence; empty from:
//	                                                           unchanged
//	split_part      (string, delimiter, index int) → string    NULL → NULL; 1-based, negative from the end,
//	                                                           '' out of range; empty delimiter: characters
//	regexp_matches  (string, pattern const[, options const])   NULL → NULL; RE2 syntax, matches anywhere;
//	                  → bool                                   options i (ignore case) and c
//	LIKE, ILIKE     string LIKE const pattern → bool           NULL → NULL
//	starts_with     (string, const prefix) → bool              NULL → NULL
//	date_trunc      (unit const, timestamp|date) → same type   NULL → NULL; units microsecond … day, week
//	                                                           (Monday), month, quarter, year, decade,
//	                                                           century (1900 for 1950, as DuckDB); DuckDB
//	                                                           gives TIMESTAMP for a date
//	date_part,      (field const, timestamp|date) → int64      NULL → NULL; year quarter month day hour
//	extract           (epoch: float64)                         minute second millisecond microsecond dow
//	                                                           (Sunday 0) isodow (Monday 1) doy week
//	                                                           (ISO) epoch; millisecond and microsecond
//	                                                           include the seconds
//	epoch_ms        (timestamp) → int64                        NULL → NULL; toward zero, as DuckDB
//	epoch_ms        (integer) → timestamp[ms]                  NULL → NULL
//	to_timestamp    (seconds number) → timestamp[us, UTC]      NULL → NULL; out of range: runtime error
//	ts ± INTERVAL   (timestamp, interval) → same type          NULL → NULL; interval finer than the
//	                                                           timestamp's unit: bind error
//	ts - ts         (timestamp, timestamp) → duration          NULL → NULL; DuckDB gives an INTERVAL
//	ts ± duration   (timestamp, duration) → timestamp          NULL → NULL; the finer unit
//	hash            (x, …) → uint64                            never NULL (NULL hashes to a constant);
//	                                                           the engine's key hash, not DuckDB's values
//
// Calendar fields and truncation are computed in UTC whatever a timestamp
// column's time zone (as DuckDB with TimeZone 'UTC'). Before 1970 DuckDB
// truncates timestamp[ns] values toward zero when it converts them to
// microseconds, so its date_trunc('microsecond') and date_part('microsecond')
// of such values are one microsecond late; riffle floors. now() is not
// provided: a streaming job replays batches after a restore, and a clock
// read would give replayed rows other values than the first run (use the
// event time, or a literal TIMESTAMP).
//
// # Types
//
// Columns may be int8..int64, uint8..uint64, float32, float64, bool, string,
// large_string, timestamp (any unit, any time zone: values are instants),
// date32, date64, duration (any unit), time32/time64 (times of day, read
// as time64[us]: comparisons, CAST to and from string and from timestamp,
// extract of hour to microsecond and epoch; timeofday.go) and
// dictionary-encoded string or large_string. A date64
// column is read as date32 (days, floor) and a dictionary column as its
// value type: expressions over them see and return date32 and plain
// strings. A subexpression whose only column is one dictionary column (a
// comparison, LIKE, regexp_matches, lower, substr, ...) is evaluated once
// per dictionary entry and gathered by index when the batch's dictionary
// has no more entries than the batch has rows (dict.go); otherwise the
// column is decoded. Durations come from columns and from
// timestamp - timestamp (a duration in the finer unit of the two); a
// timestamp plus or minus a duration is a timestamp in the finer unit (the
// timestamp's zone), durations of one unit compare with each other and with
// INTERVAL literals (an interval finer than the unit is a bind error), and
// they pass through CASE, coalesce, greatest and least; no other operator
// or cast takes them. decimal128(p, s) columns (s >= 0) compare exactly
// with numeric literals (a float literal stands for the decimal it is
// written as: price <= 5.25 is exact), with other decimals and with integer
// columns, and as float64 with float columns, as DuckDB does; they cast to
// float64/float32 (nearest), to integers (rounded half away from zero, an
// error when out of range) and to string (all s digits: "12.50"), pass
// through CASE and IS NULL. Arithmetic on decimals (with decimals,
// integers and numeric literals) is exact with DuckDB's result types:
// + - * % give decimals (overflow of a capped precision is a runtime
// error naming the expression), / gives float64; abs and round keep
// decimals; CAST(x AS decimal(p,s)) (bare decimal is decimal(18,3))
// takes numbers, decimals and strings, rounding half away from zero. See
// decarith.go and deccast.go. Decimals pass through CASE, coalesce and
// nullif, mixed decimals taking the larger scale and integer digits.
// decimal256(p, s) columns take part as decimal128 (p <= 38: exact;
// wider: values of more than 38 digits are a runtime error); see
// dec256.go. Division of decimals (float64) by zero is NULL like every
// x / 0 here, where DuckDB gives Infinity. Bind checks every operator:
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
//     tested expression; starts_with takes a string. Functions check their
//     arguments as the table under Functions says.
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
// NULL propagates through arithmetic, comparisons, casts, NOT, IN,
// starts_with and the functions marked "NULL → NULL" above. A NULL CASE condition counts as false, as does a simple
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
