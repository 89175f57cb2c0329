#!/usr/bin/env bash
# Restarts the broker of KAFKA_STATE_DIR (default <repo>/.cache/kafka/run)
# on the same ports with the same data: a stop that keeps the state, then
# start.sh from it. Prints the same exports as start.sh. If the broker is
# already stopped (by `KAFKA_KEEP_STATE=1 stop.sh`), only starts it.
#
#   scripts/kafka/restart.sh >/dev/null            # bounce the broker
#   KAFKA_KEEP_STATE=1 scripts/kafka/stop.sh       # or in two steps, with
#   ...                                            # the broker down meanwhile
#   KAFKA_KEEP_STATE=1 scripts/kafka/start.sh
#
# Env: as start.sh and stop.sh.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
KAFKA_KEEP_STATE=1 "$here/stop.sh" || exit 1
KAFKA_KEEP_STATE=1 exec "$here/start.sh"
