#!/usr/bin/env bash
# Runs riffle's whole test suite, as CI does: installs what the tests need
# (Go modules, the Python oracle environment with DuckDB/pyarrow/pandas, a
# real single-node Apache Kafka broker in KRaft mode fetched from Maven
# Central), starts the broker on 127.0.0.1, runs vet and every test, and
# stops the broker. Nothing to install by hand beyond Go, Java 17, Maven
# and Python 3.
#
# Usage: scripts/test.sh [extra go test flags]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

echo "== go modules"
go mod download

echo "== python oracle environment"
scripts/python-env.sh

echo "== kafka broker"
trap 'scripts/kafka/stop.sh' EXIT
kafka_env="$(KAFKA_WATCH_PID=$$ scripts/kafka/start.sh)"
eval "$kafka_env"

export RIFFLE_REQUIRE_KAFKA=1
export RIFFLE_REQUIRE_ORACLE=1

echo "== go vet"
go vet ./...

echo "== go test"
# Packages share the machine's two cores and one broker: run them one or two
# at a time so timeouts stay meaningful.
go test -p 2 -count=1 -timeout 30m "$@" ./...

echo "== race detector on the dataflow core, windows, state, checkpoints, sources and sinks"
go test -race -p 2 -count=1 -timeout 30m ./arrowexec/ ./arrowexec/ops/ ./windows/ ./state/ ./checkpoint/ ./sources/... ./sinks/...
