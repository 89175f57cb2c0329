#!/usr/bin/env bash
# Stops the broker started by start.sh and removes its state (config, data).
# The server log is kept beside the state dir as last-server.log (default
# <repo>/.cache/kafka/last-server.log) for debugging.
# Safe to call when nothing runs (e.g. from `trap ... EXIT`); always exits 0
# unless the broker could not be killed.
#
# With KAFKA_KEEP_STATE=1 the state (config with its ports, data, log) is
# kept, so that `KAFKA_KEEP_STATE=1 start.sh` (or restart.sh) starts the
# same broker again: a broker restart.
#
# Env: KAFKA_STATE_DIR (as for start.sh),
#      KAFKA_STOP_TIMEOUT seconds to wait for a clean shutdown (default 20),
#      KAFKA_KEEP_STATE   1: keep the state dir
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
state="${KAFKA_STATE_DIR:-$root/.cache/kafka/run}"
wait_s="${KAFKA_STOP_TIMEOUT:-20}"

log() { echo "kafka/stop: $*" >&2; }

[[ -d "$state" ]] || exit 0

if [[ -f "$state/kafka.pid" ]]; then
	pid="$(cat "$state/kafka.pid")"
	# Only touch it if it is still our broker (pids get reused).
	if kill -0 "$pid" 2>/dev/null && grep -q kafka.Kafka "/proc/$pid/cmdline" 2>/dev/null; then
		log "stopping Kafka (pid $pid)"
		kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null
		for _ in $(seq 1 $((wait_s * 10))); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$pid" 2>/dev/null; then
			log "no clean shutdown after ${wait_s}s, killing"
			kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null
			sleep 0.5
		fi
		if kill -0 "$pid" 2>/dev/null; then
			log "ERROR: could not kill pid $pid"
			exit 1
		fi
	fi
fi

# End the watchdog (start.sh KAFKA_WATCH_PID) unless we are it.
if [[ -f "$state/watchdog.pid" ]]; then
	wd="$(cat "$state/watchdog.pid")"
	if [[ "$wd" != "$PPID" && "$wd" != "$$" ]] && grep -q kafka-watchdog "/proc/$wd/cmdline" 2>/dev/null; then
		kill "$wd" 2>/dev/null
	fi
fi

if [[ "${KAFKA_KEEP_STATE:-}" == 1 ]]; then
	rm -f "$state/kafka.pid" "$state/watchdog.pid"
	log "state kept in $state (start it again: KAFKA_KEEP_STATE=1 scripts/kafka/start.sh, or restart.sh)"
	exit 0
fi
[[ -f "$state/server.log" ]] && cp "$state/server.log" "$(dirname "$state")/last-server.log" 2>/dev/null
rm -rf "$state"
exit 0
