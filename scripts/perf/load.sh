#!/usr/bin/env bash
# load.sh: keeps a broker busy for a bounded time so the other scripts here
# have something to measure: producers piping random records through kcat
# into a topic, and consumers reading it back from the start.
#
#   scripts/perf/load.sh [--bootstrap 127.0.0.1:9092] [--topic perf-load]
#                        [--seconds 30] [--size 1024] [--producers 2] [--consumers 1]
#
# Everything stops after --seconds. Needs kcat (Debian: kcat). The topic is
# auto-created with the broker's num.partitions. For measured benchmarks use
# sluice-bench; this is only load.
set -euo pipefail

usage() {
  sed -n '2,12s/^# \{0,1\}//p' "$0"
}

BOOTSTRAP=127.0.0.1:9092
TOPIC=perf-load
SECS=30
SIZE=1024
PRODUCERS=2
CONSUMERS=1
while (($# > 0)); do
  case $1 in
    --bootstrap | --topic | --seconds | --size | --producers | --consumers)
      (($# >= 2)) || {
        echo "load.sh: $1 needs a value" >&2
        exit 2
      }
      case $1 in
        --bootstrap) BOOTSTRAP=$2 ;;
        --topic) TOPIC=$2 ;;
        --seconds) SECS=$2 ;;
        --size) SIZE=$2 ;;
        --producers) PRODUCERS=$2 ;;
        --consumers) CONSUMERS=$2 ;;
      esac
      shift
      ;;
    -h | --help)
      usage
      exit 0
      ;;
    *)
      echo "load.sh: unknown argument $1 (see --help)" >&2
      exit 2
      ;;
  esac
  shift
done
for n in "$SECS" "$SIZE" "$PRODUCERS" "$CONSUMERS"; do
  [[ $n =~ ^[0-9]+$ ]] || {
    echo "load.sh: --seconds, --size, --producers and --consumers take whole numbers" >&2
    exit 2
  }
done
command -v kcat >/dev/null 2>&1 || {
  echo "load.sh: kcat not found (Debian: apt-get install kcat)" >&2
  exit 1
}

echo "load on $BOOTSTRAP topic $TOPIC for ${SECS}s: $PRODUCERS producer(s) of ${SIZE}-byte records, $CONSUMERS consumer(s)"
pids=()
for ((p = 0; p < PRODUCERS; p++)); do
  # base64 of random bytes, wrapped at SIZE: one record per line.
  # shellcheck disable=SC2016 # $1.. are the inner shell's arguments
  timeout "$SECS" bash -c 'base64 -w "$1" /dev/urandom | kcat -P -b "$2" -t "$3" -X linger.ms=5 -X queue.buffering.max.kbytes=65536' \
    _ "$SIZE" "$BOOTSTRAP" "$TOPIC" 2>/dev/null &
  pids+=($!)
done
# Give auto-creation a moment before the consumers ask for the topic.
sleep 1
for ((c = 0; c < CONSUMERS; c++)); do
  timeout "$((SECS > 1 ? SECS - 1 : 1))" kcat -C -q -b "$BOOTSTRAP" -t "$TOPIC" -o beginning >/dev/null 2>&1 &
  pids+=($!)
done
for p in "${pids[@]}"; do
  wait "$p" || true
done
echo "load done: $TOPIC on $BOOTSTRAP"
