#!/usr/bin/env bash
# Starts a single-node Apache Kafka (KRaft, combined broker+controller) on
# 127.0.0.1 for riffle's integration tests, in the background.
#
#   eval "$(scripts/kafka/start.sh)"     # exports RIFFLE_KAFKA_BROKERS
#   trap scripts/kafka/stop.sh EXIT
#
# Steps: fetch.sh (jars from Maven Central, cached) -> pick two free loopback
# ports (PLAINTEXT + CONTROLLER) -> write server.properties -> format storage
# with a random cluster id -> start `java kafka.Kafka` (own session, log to
# $KAFKA_STATE_DIR/server.log) -> wait until the broker is registered and
# answers (Probe.java, an AdminClient DescribeCluster) -> print exports.
#
# stdout carries only shell lines for eval:
#   export RIFFLE_KAFKA_BROKERS=127.0.0.1:PORT
#   export KAFKA_BROKERS=127.0.0.1:PORT
# Everything else goes to stderr. The address is also written to
# $KAFKA_STATE_DIR/bootstrap. If a broker started from the same state dir is
# still alive, its address is printed again and nothing is started.
# On any failure the broker is killed, the log tail printed, `false` printed
# on stdout (so `eval "$(start.sh)"` fails under `set -e` too), and it exits 1.
#
# With KAFKA_KEEP_STATE=1 and a state dir left by `KAFKA_KEEP_STATE=1
# stop.sh`, the broker starts again on the same ports with the same data (no
# new config, no format): a broker restart (restart.sh does both steps). If
# a port was taken meanwhile it fails instead of moving.
#
# With KAFKA_WATCH_PID=<pid> (e.g. $$ of the CI script) a small watchdog stops
# the broker once that process is gone, even if it was SIGKILLed and its
# `trap stop.sh EXIT` never ran; stop.sh ends the watchdog too.
#
# Env:
#   KAFKA_VERSION        see fetch.sh
#   KAFKA_CACHE_DIR      see fetch.sh (default <repo>/.cache/kafka)
#   KAFKA_STATE_DIR      config, data, log, pid (default <repo>/.cache/kafka/run:
#                        per checkout even when KAFKA_CACHE_DIR is shared)
#   KAFKA_START_TIMEOUT  seconds to wait for readiness (default 120)
#   KAFKA_HEAP_OPTS      default "-Xmx512m -Xms128m"
#   KAFKA_JVM_OPTS       extra JVM flags (default: serial GC, small metaspace)
#   KAFKA_WATCH_PID      stop the broker when this pid exits (default: none)
#   KAFKA_KEEP_STATE     1: restart from the kept state dir (see above)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
export KAFKA_CACHE_DIR="${KAFKA_CACHE_DIR:-$root/.cache/kafka}"
state="${KAFKA_STATE_DIR:-$root/.cache/kafka/run}"
timeout="${KAFKA_START_TIMEOUT:-120}"
heap="${KAFKA_HEAP_OPTS:--Xmx512m -Xms128m}"
jvm_opts="${KAFKA_JVM_OPTS:--XX:+UseSerialGC -XX:MaxMetaspaceSize=256m -Djava.awt.headless=true}"

log() { echo "kafka/start: $*" >&2; }
die() {
	echo "kafka/start: ERROR: $*" >&2
	exit 1
}

emit() {
	echo "export RIFFLE_KAFKA_BROKERS=$1"
	echo "export KAFKA_BROKERS=$1"
}

pid=""
cleanup_on_fail() {
	local rc=$?
	if [[ $rc -ne 0 ]]; then
		if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
			kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
			for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
			kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
		fi
		if [[ -n "${probe_pid:-}" ]]; then kill "$probe_pid" 2>/dev/null || true; fi
		# Only our own broker's files (a failed fetch must not orphan a
		# broker that an earlier start.sh left running).
		if [[ -n "$pid" ]]; then rm -f "$state/kafka.pid" "$state/bootstrap"; fi
		echo false # make `eval "$(start.sh)"` fail as well
	fi
}
trap cleanup_on_fail EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

t0=$(date +%s.%N)
libs="$("$here/fetch.sh")" || die "fetch.sh failed"
t_fetch=$(date +%s.%N)
version="$(cat "$libs/.complete")"
cp="$libs/*"

# Already running from this state dir? Reuse it if it is the wanted version.
if [[ -f "$state/kafka.pid" && -f "$state/bootstrap" ]]; then
	oldpid="$(cat "$state/kafka.pid")"
	if kill -0 "$oldpid" 2>/dev/null && grep -q kafka.Kafka "/proc/$oldpid/cmdline" 2>/dev/null; then
		if [[ "$(cat "$state/version" 2>/dev/null)" == "$version" ]]; then
			log "broker already running (pid $oldpid) at $(cat "$state/bootstrap")"
			emit "$(cat "$state/bootstrap")"
			exit 0
		fi
		log "a Kafka $(cat "$state/version" 2>/dev/null) broker runs from $state; stopping it for $version"
		KAFKA_STATE_DIR="$state" "$here/stop.sh" || die "could not stop the running broker"
	fi
fi

# A free TCP port on 127.0.0.1 (the kernel picks it). There is a small race
# between picking and Kafka binding; a bind failure is retried below.
free_port() {
	if command -v python3 >/dev/null 2>&1; then
		python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
	else
		local p
		while :; do
			p=$((20000 + RANDOM % 30000))
			(exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
		done
	fi
}

# Kafka Uuid: 16 random bytes, base64url without padding; not starting with
# '-' (the tools would parse it as an option), like Uuid.randomUuid().
random_uuid() {
	local u
	while :; do
		u="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
		[[ "$u" != -* && ${#u} -eq 22 ]] && { echo "$u"; return; }
	done
}


write_config() { # $1 = plaintext port, $2 = controller port
	cat >"$state/server.properties" <<PROPS
# generated by scripts/kafka/start.sh (Kafka $version)
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$2
listeners=PLAINTEXT://127.0.0.1:$1,CONTROLLER://127.0.0.1:$2
advertised.listeners=PLAINTEXT://127.0.0.1:$1
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$state/data
# Test and demo data carry old event-time timestamps: never delete by age.
log.retention.ms=-1
auto.create.topics.enable=false
delete.topic.enable=true
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
# small machine: few threads, small cleaner buffer (default 128 MiB of heap)
num.network.threads=2
num.io.threads=2
background.threads=2
num.recovery.threads.per.data.dir=1
log.cleaner.threads=1
log.cleaner.dedupe.buffer.size=8388608
PROPS
}

cat_log_config() {
	# Console logging (redirected to server.log). INFO for kafka's own
	# lifecycle lines, WARN for the chatty rest.
	cat >"$state/log4j2.properties" <<'L2'
status = warn
appender.out.type = Console
appender.out.name = OUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = OUT
logger.state.name = state.change.logger
logger.state.level = WARN
logger.authorizer.name = kafka.authorizer.logger
logger.authorizer.level = WARN
L2
	cat >"$state/log4j.properties" <<'L1'
log4j.rootLogger=INFO, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.state.change.logger=WARN
log4j.logger.kafka.authorizer.logger=WARN
L1
}

tail_log() {
	echo "---- last 40 lines of $state/server.log ----" >&2
	tail -n 40 "$state/server.log" >&2 2>/dev/null || true
	echo "----" >&2
}

# Restart from a kept state dir: same config (ports), same data.
reuse=0
if [[ "${KAFKA_KEEP_STATE:-}" == 1 ]]; then
	[[ -f "$state/server.properties" && -f "$state/data/meta.properties" ]] ||
		die "KAFKA_KEEP_STATE=1 but $state holds no stopped broker (start one with start.sh, stop it with KAFKA_KEEP_STATE=1 stop.sh)"
	[[ "$(cat "$state/version" 2>/dev/null)" == "$version" ]] ||
		die "$state holds a Kafka $(cat "$state/version" 2>/dev/null) broker, not $version"
	reuse=1
fi

attempt=0
while :; do
	attempt=$((attempt + 1))
	if ((reuse)); then
		port="$(sed -n 's|^listeners=PLAINTEXT://127.0.0.1:\([0-9]*\),.*|\1|p' "$state/server.properties")"
		cport="$(sed -n 's|^controller.quorum.voters=1@127.0.0.1:\([0-9]*\)$|\1|p' "$state/server.properties")"
		[[ -n "$port" && -n "$cport" ]] || die "no PLAINTEXT or CONTROLLER port in $state/server.properties"
		log "restarting from $state (same ports and data)"
	else
		rm -rf "$state"
		mkdir -p "$state/data"
		port="$(free_port)"
		cport="$(free_port)"
		while [[ "$cport" == "$port" ]]; do cport="$(free_port)"; done
		write_config "$port" "$cport"
	fi
	cat_log_config
	logopts=(-Dlog4j2.configurationFile="$state/log4j2.properties" -Dlog4j.configuration="file:$state/log4j.properties")

	t_fmt0=$(date +%s.%N)
	if ((!reuse)); then
		cluster_id="$(random_uuid)"
		# shellcheck disable=SC2086
		if ! java -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Dlog4j2.level=WARN -cp "$cp" kafka.tools.StorageTool \
			format -t "$cluster_id" -c "$state/server.properties" >"$state/format.log" 2>&1; then
			cat "$state/format.log" >&2
			die "formatting storage failed (kafka.tools.StorageTool, Kafka $version)"
		fi
	fi
	t_fmt1=$(date +%s.%N)

	# Own session (setsid) so stop.sh can kill the whole process group; stdin
	# and stdout detached so `eval "$(start.sh)"` does not wait on the broker.
	# Appended: a restart keeps the log of the previous run (a fresh start
	# has a fresh state dir).
	# shellcheck disable=SC2086
	setsid java $heap $jvm_opts "${logopts[@]}" -Dkafka.logs.dir="$state" \
		-cp "$cp" kafka.Kafka "$state/server.properties" \
		</dev/null >>"$state/server.log" 2>&1 &
	pid=$!
	echo "$pid" >"$state/kafka.pid"
	log "Kafka $version starting (pid $pid) PLAINTEXT 127.0.0.1:$port CONTROLLER 127.0.0.1:$cport, state $state"

	# Probe (JDK single-file source launcher, the broker's own client jars).
	java -Xmx128m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Dlog4j2.level=ERROR -Dlog4j2.statusLoggerLevel=OFF -Dlog4j.configuration=file:/dev/null \
		-cp "$cp" "$here/Probe.java" "127.0.0.1:$port" "$timeout" >"$state/probe.log" 2>&1 &
	probe_pid=$!
	ready=0
	deadline=$((SECONDS + timeout + 5))
	while :; do
		if ((SECONDS > deadline)); then
			kill "$probe_pid" 2>/dev/null || true
			wait "$probe_pid" 2>/dev/null || true
			break
		fi
		if ! kill -0 "$pid" 2>/dev/null; then
			kill "$probe_pid" 2>/dev/null || true
			wait "$probe_pid" 2>/dev/null || true
			break
		fi
		if ! kill -0 "$probe_pid" 2>/dev/null; then
			if wait "$probe_pid"; then ready=1; fi
			break
		fi
		sleep 0.2
	done
	probe_pid=""
	[[ $ready -eq 1 ]] && break

	if ((!reuse)) && ! kill -0 "$pid" 2>/dev/null && grep -q -i 'address already in use' "$state/server.log" && ((attempt < 3)); then
		log "port taken between pick and bind, retrying with new ports"
		pid=""
		continue
	fi
	cat "$state/probe.log" >&2 || true
	tail_log
	if kill -0 "$pid" 2>/dev/null; then
		die "Kafka $version not ready within ${timeout}s (KAFKA_START_TIMEOUT); broker killed"
	fi
	die "Kafka $version exited during startup (see log above)"
done

t_ready=$(date +%s.%N)
if [[ -n "${KAFKA_WATCH_PID:-}" ]]; then
	kill -0 "$KAFKA_WATCH_PID" 2>/dev/null || die "KAFKA_WATCH_PID=$KAFKA_WATCH_PID is not a live process"
	# Detached, no inherited stdout (would block the caller's $(...)).
	# shellcheck disable=SC2016 # $1..$4 expand in the watchdog's shell
	setsid bash -c 'while kill -0 "$1" 2>/dev/null && kill -0 "$2" 2>/dev/null; do sleep 2; done
		if kill -0 "$2" 2>/dev/null; then KAFKA_STATE_DIR="$4" "$3/stop.sh"; fi' \
		kafka-watchdog "$KAFKA_WATCH_PID" "$pid" "$here" "$state" </dev/null >>"$state/watchdog.log" 2>&1 &
	echo $! >"$state/watchdog.pid"
	log "watchdog (pid $!) stops the broker when pid $KAFKA_WATCH_PID exits"
fi
echo "127.0.0.1:$port" >"$state/bootstrap"
echo "$version" >"$state/version"
log "ready at 127.0.0.1:$port (fetch $(awk "BEGIN{printf \"%.1f\", $t_fetch-$t0}")s, format $(awk "BEGIN{printf \"%.1f\", $t_fmt1-$t_fmt0}")s, start-to-ready $(awk "BEGIN{printf \"%.1f\", $t_ready-$t_fmt1}")s)"
trap - EXIT
emit "127.0.0.1:$port"
