// Package bench holds riffle's side-by-side benchmarks against peer engines.
// Kernel benchmarks live next to their code (`go test -bench`); the programs
// under bench/ run whole pipelines on generated data and time riffle and its
// peers in one run on the same files, so their figures compare like with
// like. Results are recorded in docs/BENCHMARKS.md with the command that
// produced them. With --plot DIR, recommender and pipeline also write their
// Markdown table to DIR and charts of it beside (side-by-side bars and a
// throughput-over-time curve, PNG with the numbers as CSV; package
// internal/chart draws them).
package bench
