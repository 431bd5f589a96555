#!/usr/bin/env bash
# Replication's cost, measured in one run: a three-node Sluice cluster and a
# three-node Apache Kafka cluster (KRaft, combined broker+controller, static
# quorum) on loopback, one after the other on the same machine. For each:
# `acks=all` produce throughput into a fresh topic of 3 partitions with
# RF=1 and RF=3 (sluice-bench produce, 3 producer connections, 1 KiB
# records), then end-to-end latency with RF=3 at a fixed rate
# (sluice-bench e2e). Prints one line per run and the medians.
#
#   scripts/bench/replicated.sh [--runs N] [--duration S] [--rate R] [--base-port P]
#
# Kafka keeps its own durability (no forced flush: an acks=all record is in
# three page caches), Sluice fdatasyncs on every replica before it counts
# one as in sync; KAFKA_FSYNC=1 gives Kafka log.flush.interval.messages=1 too.
# Bounded: each load runs --duration seconds; every node is killed at exit.
set -euo pipefail
cd "$(dirname "$0")/../.."

runs=3
duration=6
rate=5000
base=19300
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs="$2"; shift 2 ;;
    --duration) duration="$2"; shift 2 ;;
    --rate) rate="$2"; shift 2 ;;
    --base-port) base="$2"; shift 2 ;;
    *) echo "usage: $0 [--runs N] [--duration S] [--rate R] [--base-port P]" >&2; exit 2 ;;
  esac
done
bin=target/release/sluice
bench=target/release/sluice-bench
for b in "$bin" "$bench"; do
  [ -x "$b" ] || { echo "no $b (cargo build --release --workspace)" >&2; exit 1; }
done
libs=$(scripts/bench/install-kafka.sh)

work=$(mktemp -d)
pids=()
stop_all() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  pids=()
  sleep 1
}
trap 'stop_all; rm -rf "$work"' EXIT

voters="1@127.0.0.1:$((base + 101)),2@127.0.0.1:$((base + 102)),3@127.0.0.1:$((base + 103))"
# sluice-bench takes one bootstrap address.
boot="127.0.0.1:$((base + 1))"
node_props() {
  cat <<EOF
node.id=$1
process.roles=broker,controller
controller.quorum.voters=$voters
listeners=PLAINTEXT://127.0.0.1:$((base + $1)),CONTROLLER://127.0.0.1:$((base + 100 + $1))
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
advertised.listeners=PLAINTEXT://127.0.0.1:$((base + $1))
log.dirs=$work/d$1
EOF
}

start_sluice() {
  for i in 1 2 3; do
    node_props "$i" > "$work/s$i.properties"
    "$bin" serve --config "$work/s$i.properties" --cores 1 > "$work/sluice$i.log" 2>&1 &
    pids[i]=$!
  done
}

start_kafka() {
  local id log4j
  id=$(python3 -c 'import base64, uuid; print(base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("="))')
  log4j="$work/log4j2.properties"
  printf 'rootLogger.level=WARN\nrootLogger.appenderRef.out.ref=OUT\nappender.out.type=Console\nappender.out.name=OUT\nappender.out.layout.type=PatternLayout\nappender.out.layout.pattern=%%m%%n\n' > "$log4j"
  for i in 1 2 3; do
    {
      node_props "$i"
      echo "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT"
      echo "message.max.bytes=1048588"
      [ "${KAFKA_FSYNC:-}" = 1 ] && echo "log.flush.interval.messages=1"
    } > "$work/k$i.properties"
    CLASSPATH="$libs/*" timeout 120 java -Xmx256m -Dlog4j2.configurationFile="$log4j" kafka.tools.StorageTool format \
      --cluster-id="$id" -c "$work/k$i.properties" > "$work/format$i.log" 2>&1 || { cat "$work/format$i.log" >&2; exit 1; }
    CLASSPATH="$libs/*" java -Xmx1g -Xms1g -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
      -Dlog4j2.configurationFile="$log4j" -Dkafka.logs.dir="$work/kafka-logs$i" kafka.Kafka "$work/k$i.properties" \
      > "$work/kafka$i.log" 2>&1 &
    pids[i]=$!
  done
}

# Until a topic of RF 3 can be made and written (all three brokers up).
wait_ready() {
  for _ in $(seq 1 120); do
    if "$bench" produce --bootstrap-server "$boot" --topic ready --partitions 1 --replication-factor 3 --records 10 \
      --acks all --timeout 10 --quiet > /dev/null 2>&1; then
      return 0
    fi
    sleep 1
  done
  echo "the cluster did not come up" >&2
  exit 1
}

field() { python3 -c "import json,sys; d=json.load(sys.stdin); print(d$1)"; }

declare -A results
measure() {
  local who=$1 run=$2 rf mb p99
  for rf in 1 3; do
    mb=$("$bench" produce --bootstrap-server "$boot" --topic "t-$who-$run-rf$rf" --partitions 3 \
      --replication-factor "$rf" --acks all --duration "$duration" --producers 3 --json --quiet | field '["produce"]["mb_per_s"]')
    results[$who,rf$rf]+="$mb "
  done
  p99=$("$bench" e2e --bootstrap-server "$boot" --topic "e-$who-$run" --partitions 3 --replication-factor 3 \
    --acks all --rate "$rate" --duration "$duration" --json --quiet | field '["e2e"]["latency"]["p99_us"]')
  results[$who,p99]+="$p99 "
  echo "$who run $run: RF=1 $(echo "${results[$who,rf1]}" | awk '{print $NF}') MB/s," \
    "RF=3 $(echo "${results[$who,rf3]}" | awk '{print $NF}') MB/s, e2e p99 at $rate rec/s RF=3: $p99 µs"
}

median() { tr ' ' '\n' <<< "$1" | grep . | sort -g | awk '{a[NR]=$1} END {print a[int((NR + 1) / 2)]}'; }

for who in sluice kafka; do
  rm -rf "$work"/d*
  "start_$who"
  wait_ready
  for run in $(seq 1 "$runs"); do measure "$who" "$run"; done
  stop_all
done

echo
echo "| broker | RF=1 MB/s (median) | RF=3 MB/s (median) | RF=3 / RF=1 | e2e p99 RF=3 at $rate rec/s (ms) |"
echo "|---|---|---|---|---|"
for who in sluice kafka; do
  r1=$(median "${results[$who,rf1]}")
  r3=$(median "${results[$who,rf3]}")
  p=$(median "${results[$who,p99]}")
  printf '| %s | %s | %s | %.2f | %.1f |\n' "$who" "$r1" "$r3" "$(echo "$r3 / $r1" | bc -l)" "$(echo "$p / 1000" | bc -l)"
done
s3=$(median "${results[sluice,rf3]}")
k3=$(median "${results[kafka,rf3]}")
printf 'Sluice RF=3 / Kafka RF=3 throughput: %.2f\n' "$(echo "$s3 / $k3" | bc -l)"
