#!/usr/bin/env bash
# Regenerates the charts the README shows (docs/img/*.png, each with its
# numbers as CSV beside it) from seeded data on this machine:
#   - riffle eval --plot on a generated planted-structure data set: NDCG@K
#     per model, the iALS training loss per iteration, and the prequential
#     NDCG over the replay;
#   - bench/pipeline --plot: riffle's and DuckDB's wall time side by side
#     and riffle's scan throughput over time.
# The eval charts are deterministic for a seed; the benchmark's depend on
# the machine and its load (docs/BENCHMARKS.md has the measured figures).
#
# Usage: scripts/plots.sh            (needs Go and scripts/python-env.sh's .venv)
# Env:   PIPELINE_ROWS  rows of the benchmark input (default 20000000)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
out="$root/docs/img"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$out"

go build -o "$work/riffle" ./cmd/riffle
riffle="$work/riffle"

echo "== riffle eval --plot"
"$riffle" gen --rows 200000 --users 6000 --items 1500 --latent-factors 8 --seed 1 --progress never "$work/planted.parquet"
"$riffle" eval --protocol global-time,prequential --k 10,1,2,5,20,50 --factors 32 --iterations 10 --threads 2 \
	--batch 1000 --retrain-every 10000 --plot "$work/eval" "$work/planted.parquet" >/dev/null

echo "== bench/pipeline --plot"
go run ./bench/pipeline --rows "${PIPELINE_ROWS:-20000000}" --threads 2 --runs 1 --plot "$work/pipeline" >/dev/null

for f in eval/global-time-ndcg eval/global-time-loss eval/prequential-ndcg pipeline/pipeline-wall pipeline/pipeline-throughput; do
	cp "$work/$f.png" "$work/$f.csv" "$out/"
done
ls -l "$out"
