#!/usr/bin/env bash
# Installs Apache Kafka 4.3.0 (broker and tools: kafka_2.13, kafka-tools,
# slf4j 2, log4j2) as a peer for the benchmarks, from Maven Central with
# tests/deps/kafka/pom.xml. Reuses the test clients' copy
# (~/.cache/sluice-test/kafka/libs, scripts/test-deps.sh) when it is there;
# otherwise copies the jars into ${SLUICE_BENCH_CACHE:-~/.cache/sluice-bench}/kafka/libs.
# Prints the libs directory on stdout (a java classpath is DIR/*). Idempotent.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CACHE="${SLUICE_BENCH_CACHE:-$HOME/.cache/sluice-bench}"
VERSION=4.3.0
TEST_LIBS="$HOME/.cache/sluice-test/kafka/libs"
LIBS="$CACHE/kafka/libs"

complete() { [ -f "$1/kafka_2.13-$VERSION.jar" ] && [ -f "$1/kafka-tools-$VERSION.jar" ]; }

for d in "$TEST_LIBS" "$LIBS"; do
  if complete "$d"; then
    echo "$d"
    exit 0
  fi
done
command -v mvn >/dev/null 2>&1 || { echo "install-kafka: mvn not found" >&2; exit 1; }
command -v java >/dev/null 2>&1 || { echo "install-kafka: java not found" >&2; exit 1; }
echo "install-kafka: copying Apache Kafka $VERSION and its run-time jars from Maven Central" >&2
# Into a temporary directory first, so an interrupted copy is not mistaken for a complete one.
rm -rf "$LIBS.tmp"
mkdir -p "$LIBS.tmp"
mvn -q -B -f "$ROOT/tests/deps/kafka/pom.xml" -Dmaven.repo.local="$HOME/.cache/sluice-test-m2" \
  dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$LIBS.tmp" >&2
complete "$LIBS.tmp" || { echo "install-kafka: the copy lacks kafka_2.13-$VERSION.jar or kafka-tools-$VERSION.jar" >&2; exit 1; }
rm -rf "$LIBS"
mv "$LIBS.tmp" "$LIBS"
echo "$LIBS"
