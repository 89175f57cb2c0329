#!/usr/bin/env bash
# Resolves an Apache Kafka broker (KRaft mode) from Maven Central into a local
# cache, using Maven only (no Apache download mirrors are reachable from CI).
#
# The server's jars (org.apache.kafka:kafka_2.13 and its runtime closure, plus
# a log4j2 binding) are copied into $KAFKA_CACHE_DIR/<version>/libs, which
# start.sh puts on the classpath of `java kafka.Kafka`. Maven's local repository
# lives in $KAFKA_CACHE_DIR/m2 so that repeated fetches (other versions, a wiped
# libs dir) do not download again.
#
# Idempotent: when libs/ is complete (marker file .complete) nothing is done.
# Prints the libs directory on stdout; progress goes to stderr.
#
# Usage: scripts/kafka/fetch.sh [--force]
# Env:
#   KAFKA_VERSION    Kafka version (default: see DEFAULT_KAFKA_VERSION below and
#                    README.md for why). "latest-4" / "latest-3" resolve the
#                    newest 4.x / 3.x release on Maven Central (needs network).
#   KAFKA_CACHE_DIR  cache root (default: <repo>/.cache/kafka)
#   MVN              maven command (default: mvn)
set -euo pipefail

# Pinned default. See scripts/kafka/README.md ("Version choice") for evidence.
DEFAULT_KAFKA_VERSION=4.4.0
SCALA_BINARY=2.13
# log4j2 used by the Kafka 4.x distribution; the slf4j binding is picked to
# match the slf4j-api major version Kafka depends on (1.x -> log4j-slf4j-impl,
# 2.x -> log4j-slf4j2-impl).
LOG4J2_VERSION=2.24.3

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cache="${KAFKA_CACHE_DIR:-$root/.cache/kafka}"
version="${KAFKA_VERSION:-$DEFAULT_KAFKA_VERSION}"
mvn="${MVN:-mvn}"
force=0
[[ "${1:-}" == "--force" ]] && force=1

die() {
	echo "kafka/fetch: ERROR: $*" >&2
	exit 1
}

command -v "$mvn" >/dev/null 2>&1 || die "maven ('$mvn') not found; install it (apt-get install maven) or set MVN"
command -v java >/dev/null 2>&1 || die "java not found; Kafka needs Java 17+"

mkdir -p "$cache"
m2="$cache/m2"
work="$(mktemp -d "${TMPDIR:-/tmp}/kafka-fetch.XXXXXX")"
trap 'rm -rf "$work"' EXIT

# Resolve "latest-N" to a concrete version with a version range (Maven reads
# the artifact's maven-metadata.xml from Central).
if [[ "$version" == latest-* ]]; then
	major="${version#latest-}"
	[[ "$major" =~ ^[0-9]+$ ]] || die "bad KAFKA_VERSION '$version' (want e.g. 4.4.0, latest-4, latest-3)"
	cat >"$work/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dev.riffle.kafkafetch</groupId><artifactId>resolve</artifactId><version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId><artifactId>kafka_${SCALA_BINARY}</artifactId>
      <version>[${major}.0.0,$((major + 1)).0.0)</version>
      <exclusions><exclusion><groupId>*</groupId><artifactId>*</artifactId></exclusion></exclusions>
    </dependency>
  </dependencies>
</project>
POM
	if ! out="$(cd "$work" && "$mvn" -B -q -Dstyle.color=never -Dmaven.repo.local="$m2" dependency:list \
		-DincludeArtifactIds="kafka_${SCALA_BINARY}" -DoutputFile="$work/list.txt" -DappendOutput=false 2>&1)"; then
		echo "$out" | sed "s/\x1b\[[0-9;]*m//g" | tail -30 >&2
		die "could not resolve the newest Kafka ${major}.x on Maven Central (see maven output above)"
	fi
	version="$(grep -o "kafka_${SCALA_BINARY}:jar:[^:]*" "$work/list.txt" | head -1 | cut -d: -f3)"
	[[ -n "$version" ]] || die "could not parse resolved version from $(cat "$work/list.txt")"
	echo "kafka/fetch: $major.x resolves to $version" >&2
fi

[[ "$version" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "bad KAFKA_VERSION '$version'"
libs="$cache/$version/libs"

if [[ $force -eq 0 && -f "$libs/.complete" ]]; then
	echo "kafka/fetch: Kafka $version already in $libs" >&2
	echo "$libs"
	exit 0
fi

major="${version%%.*}"

# write_pom SLF4J_BINDING: the server pom with the given log binding.
write_pom() {
	local logdeps
	case "$1" in
	log4j2-slf4j1) logdeps="
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId><version>${LOG4J2_VERSION}</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId><version>${LOG4J2_VERSION}</version></dependency>" ;;
	log4j2-slf4j2) logdeps="
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j2-impl</artifactId><version>${LOG4J2_VERSION}</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId><version>${LOG4J2_VERSION}</version></dependency>" ;;
	reload4j) logdeps="
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-reload4j</artifactId><version>1.7.36</version></dependency>
    <dependency><groupId>ch.qos.reload4j</groupId><artifactId>reload4j</artifactId><version>1.2.25</version></dependency>" ;;
	esac
	cat >"$work/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dev.riffle.kafkafetch</groupId><artifactId>kafka-server-libs</artifactId><version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <!-- the broker (kafka.Kafka) and, transitively, kafka-server, raft,
         metadata, storage, group-coordinator, clients, scala-library... -->
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_${SCALA_BINARY}</artifactId><version>${version}</version></dependency>
    <!-- kafka.tools.StorageTool (format) lives in kafka_2.13 and uses
         kafka-storage; listed explicitly so it stays if the pom changes.
         (org.apache.kafka:kafka-tools is not published on Central for 4.x.) -->
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-storage</artifactId><version>${version}</version></dependency>${logdeps}
  </dependencies>
</project>
POM
}

# Kafka 4.x logs through log4j2, 3.x through reload4j (both via slf4j).
if ((major >= 4)); then binding=log4j2-slf4j1; else binding=reload4j; fi
write_pom "$binding"

echo "kafka/fetch: resolving Kafka $version from Maven Central into $libs ..." >&2
tmp_libs="$cache/$version/libs.tmp.$$"
rm -rf "$tmp_libs"
mkdir -p "$tmp_libs"
# Up to 3 tries: a flaky connection to Central should not fail CI.
ok=0
for try in 1 2 3; do
	if out="$(cd "$work" && "$mvn" -B -q -Dstyle.color=never -Dmaven.repo.local="$m2" dependency:copy-dependencies \
		-DincludeScope=runtime -DoutputDirectory="$tmp_libs" 2>&1)"; then
		ok=1
		break
	fi
	# A version that does not exist will not appear on a retry.
	if grep -q "Could not find artifact org.apache.kafka" <<<"$out"; then break; fi
	echo "kafka/fetch: maven failed (try $try/3), retrying in $((try * 5))s" >&2
	sleep $((try * 5))
done
if [[ $ok -ne 1 ]]; then
	rm -rf "$tmp_libs"
	echo "$out" | sed "s/\x1b\[[0-9;]*m//g" | tail -40 >&2
	die "maven could not fetch Kafka $version (org.apache.kafka:kafka_${SCALA_BINARY}:$version) from Maven Central; see output above (network? version exists?)"
fi
# A Kafka that moved to slf4j 2.x needs the slf4j2 binding (or it logs nothing).
if [[ "$binding" == log4j2-slf4j1 ]] && ls "$tmp_libs"/slf4j-api-2.*.jar >/dev/null 2>&1; then
	echo "kafka/fetch: slf4j-api 2.x detected, switching to log4j-slf4j2-impl" >&2
	rm -f "$tmp_libs"/log4j-slf4j-impl-*.jar
	write_pom log4j2-slf4j2
	(cd "$work" && "$mvn" -B -q -Dstyle.color=never -Dmaven.repo.local="$m2" dependency:copy-dependencies \
		-DincludeScope=runtime -DoutputDirectory="$tmp_libs" >&2) ||
		{ rm -rf "$tmp_libs"; die "maven could not fetch log4j-slf4j2-impl"; }
fi
ls "$tmp_libs"/kafka_${SCALA_BINARY}-"$version".jar >/dev/null 2>&1 ||
	{ rm -rf "$tmp_libs"; die "kafka_${SCALA_BINARY}-$version.jar missing after resolution"; }

echo "$version" >"$tmp_libs/.complete"
# Swap in atomically so a concurrent or aborted run never leaves a half libs
# dir; if another fetch finished first (shared cache), keep its copy.
if [[ $force -eq 1 ]]; then rm -rf "$libs"; fi
if [[ -f "$libs/.complete" ]]; then
	rm -rf "$tmp_libs"
else
	rm -rf "$libs"
	mv -T "$tmp_libs" "$libs" 2>/dev/null || rm -rf "$tmp_libs"
	[[ -f "$libs/.complete" ]] || die "could not install $libs"
fi
echo "kafka/fetch: $(find "$libs" -name '*.jar' | wc -l) jars in $libs" >&2
echo "$libs"
