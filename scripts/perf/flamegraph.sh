#!/usr/bin/env bash
# flamegraph.sh: samples a running Sluice broker with `perf record` and draws
# a flame graph of where its CPU time goes: one for the whole process and,
# with --per-shard, one per shard thread (shard-1, shard-2, ...).
#
#   scripts/perf/flamegraph.sh [--pid PID] [--seconds 30] [--freq 99]
#                              [--call-graph dwarf|fp|lbr] [--per-shard] [--out DIR]
#
# Needs perf (Debian: linux-perf) and, for the SVG, inferno
# (`cargo install --locked inferno`) or Brendan Gregg's FlameGraph scripts
# (flamegraph.pl and stackcollapse-perf.pl on PATH). Without either it still
# writes perf.data and a text report. Run it as root, or with
# kernel.perf_event_paranoid <= 1 as the broker's user.
set -euo pipefail

usage() {
  sed -n '2,13s/^# \{0,1\}//p' "$0"
}

PID=""
SECONDS_=30
FREQ=99
CALL_GRAPH=dwarf
PER_SHARD=0
OUT=""
while (($# > 0)); do
  case $1 in
    --pid | --seconds | --freq | --call-graph | --out)
      (($# >= 2)) || {
        echo "flamegraph.sh: $1 needs a value" >&2
        exit 2
      }
      case $1 in
        --pid) PID=$2 ;;
        --seconds) SECONDS_=$2 ;;
        --freq) FREQ=$2 ;;
        --call-graph) CALL_GRAPH=$2 ;;
        --out) OUT=$2 ;;
      esac
      shift
      ;;
    --per-shard) PER_SHARD=1 ;;
    -h | --help)
      usage
      exit 0
      ;;
    *)
      echo "flamegraph.sh: unknown argument $1 (see --help)" >&2
      exit 2
      ;;
  esac
  shift
done

[[ $SECONDS_ =~ ^[0-9]+$ && $FREQ =~ ^[0-9]+$ ]] || {
  echo "flamegraph.sh: --seconds and --freq take whole numbers" >&2
  exit 2
}
case $CALL_GRAPH in
  dwarf | fp | lbr) ;;
  *)
    echo "flamegraph.sh: --call-graph is dwarf, fp or lbr" >&2
    exit 2
    ;;
esac

# The broker: --pid, or the one process named sluice.
if [[ -z $PID ]]; then
  mapfile -t pids < <(pgrep -x sluice || true)
  if ((${#pids[@]} != 1)); then
    echo "flamegraph.sh: found ${#pids[@]} processes named sluice (${pids[*]:-none}); give --pid PID" >&2
    exit 1
  fi
  PID=${pids[0]}
fi
[[ -d /proc/$PID ]] || {
  echo "flamegraph.sh: no process $PID" >&2
  exit 1
}
command -v perf >/dev/null 2>&1 || {
  echo "flamegraph.sh: perf not found (Debian: apt-get install linux-perf)" >&2
  exit 1
}

OUT=${OUT:-sluice-profile-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
# Rust release builds have no frame pointers: dwarf unwinding (the default)
# copies 16 KiB of stack per sample; fp is cheaper but needs
# RUSTFLAGS="-C force-frame-pointers=yes"; lbr needs an Intel CPU.
cg=$CALL_GRAPH
[[ $cg == dwarf ]] && cg=dwarf,16384

echo "recording pid $PID ($(cat "/proc/$PID/comm")) at ${FREQ} Hz for ${SECONDS_}s, call graph $cg -> $OUT/perf.data"
if ! perf record -F "$FREQ" --call-graph "$cg" -p "$PID" -o "$OUT/perf.data" -- sleep "$SECONDS_" 2>"$OUT/record.log"; then
  cat "$OUT/record.log" >&2
  echo "flamegraph.sh: perf record failed: run as root, or lower kernel.perf_event_paranoid" >&2
  exit 1
fi

# Where the time goes per thread and function, as text (always written).
perf report -i "$OUT/perf.data" --stdio --no-children -g none --sort comm,dso,symbol --percent-limit 0.5 \
  >"$OUT/report.txt" 2>/dev/null || true
echo "wrote $OUT/report.txt (per thread: comm is shard-N for the shards)"

# Folded stacks: "thread;frame;frame... count"; the thread name comes first.
collapse() {
  if command -v inferno-collapse-perf >/dev/null 2>&1; then
    inferno-collapse-perf
  else
    stackcollapse-perf.pl
  fi
}
draw() {
  if command -v inferno-flamegraph >/dev/null 2>&1; then
    inferno-flamegraph --title "$1"
  else
    flamegraph.pl --title "$1"
  fi
}
if ! command -v inferno-collapse-perf >/dev/null 2>&1 && ! command -v stackcollapse-perf.pl >/dev/null 2>&1; then
  echo "no flame-graph tool: cargo install --locked inferno (or put FlameGraph's scripts on PATH), then re-run" >&2
  echo "with the same perf.data: perf script -i $OUT/perf.data | inferno-collapse-perf | inferno-flamegraph > flame.svg" >&2
  exit 0
fi

perf script -i "$OUT/perf.data" 2>/dev/null | collapse >"$OUT/stacks.folded"
draw "sluice pid $PID, ${SECONDS_}s" <"$OUT/stacks.folded" >"$OUT/flamegraph.svg"
echo "wrote $OUT/flamegraph.svg"

if ((PER_SHARD)); then
  mapfile -t threads < <(cut -d';' -f1 "$OUT/stacks.folded" | grep '^shard-' | sort -u)
  for t in "${threads[@]}"; do
    grep "^$t;" "$OUT/stacks.folded" | draw "sluice $t, ${SECONDS_}s" >"$OUT/flamegraph-$t.svg"
    echo "wrote $OUT/flamegraph-$t.svg"
  done
fi
