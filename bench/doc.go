// Package bench holds riffle's side-by-side benchmarks against peer engines.
// Kernel benchmarks live next to their code (`go test -bench`); the programs
// under bench/ run whole pipelines on generated data and time riffle and its
// peers in one run on the same files, so their figures compare like with
// like. Results are recorded in docs/BENCHMARKS.md with the command that
// produced them.
package bench
