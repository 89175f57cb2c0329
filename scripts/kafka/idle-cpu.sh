#!/usr/bin/env bash
# Measures the CPU an idle continuous job costs: `riffle run` of
# examples/live-item-stats.yaml over a 3-partition topic holding one
# message, so that after the first second every partition is quiet. After a
# 5 s warm-up the riffle process's user+sys CPU (utime+stime from
# /proc/PID/stat, what getrusage reports) is read over SECONDS of wall time.
#
#   scripts/kafka/idle-cpu.sh [SECONDS]                 # broker: $RIFFLE_KAFKA_BROKERS
#   EMBEDDED=1 scripts/kafka/idle-cpu.sh [SECONDS]      # riffle run --embedded-kafka (kfake in the process)
#
# Prints: user Xs sys Ys wall Zs => P% of one core. Fails if the job died.
set -euo pipefail
secs="${1:-30}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
go build -o "$work/riffle" "$root/cmd/riffle"
r="$work/riffle"
topic="idle-$(date +%s)-$$"
sed -e "s|topic: events|topic: $topic|" -e "s|group_id: riffle-live-item-stats|group_id: $topic|" \
	-e "s|riffle-quickstart/dead-letters.jsonl|$work/dead-letters.jsonl|" -e "s|path: riffle-quickstart/live-item-stats|path: $work/out|" \
	"$root/examples/live-item-stats.yaml" >"$work/job.yaml"
"$r" gen --rows 1 --progress never "$work/one.parquet" 2>/dev/null
if [[ "${EMBEDDED:-}" == 1 ]]; then
	args=(--embedded-kafka "$topic:3")
else
	: "${RIFFLE_KAFKA_BROKERS:?set RIFFLE_KAFKA_BROKERS (eval \"\$(scripts/kafka/start.sh)\") or EMBEDDED=1}"
	"$r" produce --brokers "$RIFFLE_KAFKA_BROKERS" --topic "$topic" --create-topic 3 --progress never "$work/one.parquet" 2>/dev/null
	args=(--brokers "$RIFFLE_KAFKA_BROKERS")
fi
"$r" run --progress never "${args[@]}" "$work/job.yaml" >/dev/null 2>"$work/run.log" &
pid=$!
sleep 5 # warm-up: start, read the one message, partitions go quiet
tick=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
c0=$(cpu)
t0=$(date +%s%N)
sleep "$secs"
if ! kill -0 "$pid" 2>/dev/null; then
	echo "the idle job died:" >&2
	tail -5 "$work/run.log" >&2
	exit 1
fi
c1=$(cpu)
t1=$(date +%s%N)
kill -INT "$pid"
wait "$pid" || true
awk -v c=$((c1 - c0)) -v tk="$tick" -v w=$((t1 - t0)) \
	'BEGIN{printf "user+sys %.2fs wall %.1fs => %.2f%% of one core\n", c/tk, w/1e9, 100*c/tk/(w/1e9)}'
