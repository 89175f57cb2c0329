#!/usr/bin/env bash
# Runs riffle's whole test suite, as CI does: installs what the tests need
# (Go modules, the Python oracle environment with DuckDB/pyarrow/pandas,
# Debian's chromium for the web view's browser test, a real single-node
# Apache Kafka broker in KRaft mode fetched from Maven Central), starts
# the broker on 127.0.0.1, runs vet and every test, and stops the broker.
# Nothing to install by hand beyond Go, Java 17, Maven and Python 3 (and
# root for apt-get, or chromium installed, for the browser test).
#
# Usage: scripts/test.sh [extra go test flags]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

echo "== go modules"
go mod download

echo "== python oracle environment"
scripts/python-env.sh

echo "== browser (chromium, for the web view's browser test)"
scripts/browser.sh
if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || [[ -n "${CI:-}" ]]; then
	export RIFFLE_REQUIRE_BROWSER=1
fi
# The browser test's screenshots (not committed).
export RIFFLE_TEST_ARTIFACTS="${RIFFLE_TEST_ARTIFACTS:-$PWD/test-artifacts}"

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
