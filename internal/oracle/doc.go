// Package oracle checks riffle against independent readers and engines in
// tests: DuckDB, pyarrow and pandas, run from the Python virtual environment
// at .venv in the repository root (created by scripts/python-env.sh from the
// pinned requirements.txt).
//
// # Contract
//
//   - Every helper takes a testing.TB. When the venv or one of its packages
//     is missing the test is skipped with a message naming the script to run,
//     unless RIFFLE_REQUIRE_ORACLE=1 is set, in which case it fails: CI sets
//     it so an oracle test can never pass by skipping.
//   - A query or read that fails in Python fails the test with Python's
//     error message.
//   - Results come back as a *Table: column names, the engine's type names,
//     and rows of Go values: nil for NULL, bool, int64 (integers), float64
//     (other numbers, NaN and ±Inf included), string (text; also dates and
//     timestamps, as ISO-8601: UTC instants end in "Z"; bytes as hex).
//   - DuckDB runs with TimeZone set to UTC in an in-memory database; each
//     call is a fresh Python process, so calls are independent and may run
//     in parallel tests.
//
// The repository root is found by walking up from the working directory to
// the directory holding go.mod, so the helpers work from any package's tests.
package oracle
