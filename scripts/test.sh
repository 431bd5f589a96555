#!/usr/bin/env bash
# Runs Sluice's whole test suite: unit, property, crash and integration tests,
# then the client tests again against Apache Kafka, the reference broker
# (SLUICE_TEST_BROKER=kafka: a test that passes only against Sluice is a wrong
# test or a wrong broker).
# Installs what the tests need first (idempotent; downloads cached under ~/.cache).
#
#   scripts/test.sh [cargo test args...]
#
# SLUICE_TEST_ORACLE picks the test files of the Kafka pass: a space-separated
# list of tests/*.rs stems, "all" for every client-compatibility file, or
# "none" (default: the client-compatibility, Java, Spark, Go, Kafka-tools and cluster files, which CI always runs).
set -euo pipefail
cd "$(dirname "$0")/.."

# Every client-compatibility test file (each passes against both brokers).
ORACLE_ALL="compat kcat confluent_kafka kafka_python aiokafka kafkajs java_client groups consumer_protocol spark go_clients kafka_tools cluster chaos"
ORACLE_DEFAULT="compat java_client spark go_clients kafka_tools cluster"
oracle="${SLUICE_TEST_ORACLE:-$ORACLE_DEFAULT}"
[ "$oracle" = "all" ] && oracle="$ORACLE_ALL"
[ "$oracle" = "none" ] && oracle=""

if [ -x scripts/test-deps.sh ]; then
  scripts/test-deps.sh
fi

# The broker and the tests in release mode: crash and integration tests
# drive real processes, and debug builds make them slow.
cargo build --release --workspace --all-targets

log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
start=$SECONDS
cargo test --release --workspace --no-fail-fast "$@" 2>&1 | tee "$log" || status=$?
echo "test.sh: the suite against Sluice took $((SECONDS - start)) s"

if [ -n "$oracle" ]; then
  args=()
  for t in $oracle; do args+=(--test "$t"); done
  echo "test.sh: the same client tests against Apache Kafka (SLUICE_TEST_BROKER=kafka): $oracle"
  start=$SECONDS
  # Kafka brokers are JVMs of ~0.5 GB each: fewer at once on a small machine.
  SLUICE_TEST_BROKER=kafka cargo test --release --no-fail-fast -p sluice "${args[@]}" -- --test-threads "${SLUICE_TEST_ORACLE_THREADS:-2}" 2>&1 \
    | tee -a "$log" || status=$?
  echo "test.sh: the client tests against Apache Kafka took $((SECONDS - start)) s"
fi

# One closing line over every test binary (cargo prints one per binary).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed/) p += $(i-1); if ($i ~ /^failed/) f += $(i-1) } }
     END { printf "%d passed, %d failed\n", p, f }' "$log"
exit "$status"
