#!/usr/bin/env bash
# Failover time of a replicated partition: three Sluice nodes on loopback,
# a topic of one partition with three replicas; each round kill -9s the
# partition's leader and times until `sluice produce` (acks=all) through
# another node succeeds. Prints each round and the median.
#
#   scripts/bench/failover.sh [--rounds N] [--base-port P] [--bin PATH]
#
# Bounded: at most 200 produce attempts a round, every node killed at exit.
set -euo pipefail

rounds=5
base=19200
bin=target/release/sluice
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds="$2"; shift 2 ;;
    --base-port) base="$2"; shift 2 ;;
    --bin) bin="$2"; shift 2 ;;
    *) echo "usage: $0 [--rounds N] [--base-port P] [--bin PATH]" >&2; exit 2 ;;
  esac
done
[ -x "$bin" ] || { echo "no broker binary at $bin (cargo build --release)" >&2; exit 1; }

work=$(mktemp -d)
pids=()
stop_all() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  pids=()
}
trap 'stop_all; rm -rf "$work"' EXIT

voters="1@127.0.0.1:$((base + 101)),2@127.0.0.1:$((base + 102)),3@127.0.0.1:$((base + 103))"
start_node() {
  local i=$1
  cat > "$work/n$i.properties" <<EOF
node.id=$i
process.roles=broker,controller
controller.quorum.voters=$voters
listeners=PLAINTEXT://127.0.0.1:$((base + i)),CONTROLLER://127.0.0.1:$((base + 100 + i))
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
advertised.listeners=PLAINTEXT://127.0.0.1:$((base + i))
log.dirs=$work/d$i
EOF
  "$bin" serve --config "$work/n$i.properties" --cores 1 > "$work/log$i" 2>&1 &
  pids[i]=$!
  disown "$!"
}

times=()
for round in $(seq 1 "$rounds"); do
  stop_all
  rm -rf "$work"/d*
  for i in 1 2 3; do start_node "$i"; done
  boot="127.0.0.1:$((base + 1))"
  for _ in $(seq 1 100); do
    # A quorum leader and all three brokers registered.
    info=$("$bin" cluster info --bootstrap-server "$boot" 2>/dev/null || true)
    if grep -q "^Quorum leader: [1-3]" <<< "$info" && [ "$(grep -c "^  [1-3] " <<< "$info")" = 3 ]; then
      break
    fi
    sleep 0.1
  done
  "$bin" topic create failover --partitions 1 --replication-factor 3 --bootstrap-server "$boot" > /dev/null
  leader=""
  for _ in $(seq 1 100); do
    leader=$("$bin" topic describe failover --bootstrap-server "$boot" | awk '/Partition: 0/ {print $6}')
    [ -n "$leader" ] && [ "$leader" != "none" ] && break
    sleep 0.1
  done
  echo warm | "$bin" produce failover --bootstrap-server "$boot" > /dev/null
  other=$((leader % 3 + 1))
  t0=$(date +%s%N)
  kill -9 "${pids[leader]}"
  ok=""
  for _ in $(seq 1 200); do
    if echo after | timeout 5 "$bin" produce failover --bootstrap-server "127.0.0.1:$((base + other))" > /dev/null 2>&1; then
      ok=1
      break
    fi
    sleep 0.05
  done
  t1=$(date +%s%N)
  [ -n "$ok" ] || { echo "round $round: no produce succeeded" >&2; exit 1; }
  ms=$(((t1 - t0) / 1000000))
  times+=("$ms")
  echo "round $round: leader $leader killed, produce through node $other after $ms ms"
done
median=$(printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR + 1) / 2)]}')
echo "failover median over $rounds rounds: $median ms"
