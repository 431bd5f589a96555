#!/usr/bin/env bash
# shard-cpu.sh: CPU use of each thread of a running Sluice broker, every
# interval, from /proc/PID/task/*/stat: user and system time, the CPU it last
# ran on, and context switches. Shards are the threads named shard-N (glommio
# names each executor's thread so; a second shard-N thread with the same name
# is that executor's blocking-work helper). A shard near 100% is saturated;
# one far busier than the others has the hot partitions.
#
#   scripts/perf/shard-cpu.sh [--pid PID] [--interval 1] [--count 0] [--all]
#
#   --all        every thread, not only shard-*
#   --count N    stop after N intervals (0: until interrupted)
set -euo pipefail

usage() {
  sed -n '2,14s/^# \{0,1\}//p' "$0"
}

PID=""
INTERVAL=1
COUNT=0
ALL=0
while (($# > 0)); do
  case $1 in
    --pid | --interval | --count)
      (($# >= 2)) || {
        echo "shard-cpu.sh: $1 needs a value" >&2
        exit 2
      }
      case $1 in
        --pid) PID=$2 ;;
        --interval) INTERVAL=$2 ;;
        --count) COUNT=$2 ;;
      esac
      shift
      ;;
    --all) ALL=1 ;;
    -h | --help)
      usage
      exit 0
      ;;
    *)
      echo "shard-cpu.sh: unknown argument $1 (see --help)" >&2
      exit 2
      ;;
  esac
  shift
done
[[ $INTERVAL =~ ^[1-9][0-9]*$ && $COUNT =~ ^[0-9]+$ ]] || {
  echo "shard-cpu.sh: --interval (> 0) and --count take whole numbers" >&2
  exit 2
}
if [[ -z $PID ]]; then
  mapfile -t pids < <(pgrep -x sluice || true)
  if ((${#pids[@]} != 1)); then
    echo "shard-cpu.sh: found ${#pids[@]} processes named sluice (${pids[*]:-none}); give --pid PID" >&2
    exit 1
  fi
  PID=${pids[0]}
fi
[[ -d /proc/$PID/task ]] || {
  echo "shard-cpu.sh: no process $PID" >&2
  exit 1
}
HZ=$(getconf CLK_TCK)

# sample: "tid name utime stime cpu voluntary nonvoluntary" per thread.
sample() {
  local t name stat rest vol nonvol
  for t in /proc/"$PID"/task/*; do
    name=$(cat "$t/comm" 2>/dev/null) || continue
    ((ALL)) || [[ $name == shard-* ]] || continue
    stat=$(cat "$t/stat" 2>/dev/null) || continue
    # The name in the stat line is in parentheses and may hold spaces.
    rest=${stat##*) }
    # shellcheck disable=SC2086 # split the fields on purpose
    set -- $rest
    # Field 3 of stat is $1 here: utime is field 14, stime 15, processor 39.
    vol=$(awk '/^voluntary_ctxt_switches/ { print $2 }' "$t/status" 2>/dev/null)
    nonvol=$(awk '/^nonvoluntary_ctxt_switches/ { print $2 }' "$t/status" 2>/dev/null)
    echo "${t##*/} ${name// /_} ${12} ${13} ${37} ${vol:-0} ${nonvol:-0}"
  done
}

declare -A u0=() s0=() v0=() n0=()
while read -r tid _ u s _ v n; do
  u0[$tid]=$u s0[$tid]=$s v0[$tid]=$v n0[$tid]=$n
done < <(sample)

i=0
while ((COUNT == 0 || i < COUNT)); do
  sleep "$INTERVAL"
  [[ -d /proc/$PID ]] || {
    echo "shard-cpu.sh: process $PID is gone"
    exit 0
  }
  i=$((i + 1))
  echo "$(date +%T) pid $PID, ${INTERVAL}s:"
  printf '  %-8s %-16s %6s %6s %6s %4s %9s %9s\n' tid thread cpu% user% sys% on vcsw/s ivcsw/s
  total=0
  while read -r tid name u s cpu v n; do
    du=$((u - ${u0[$tid]:-$u}))
    ds=$((s - ${s0[$tid]:-$s}))
    dv=$((v - ${v0[$tid]:-$v}))
    dn=$((n - ${n0[$tid]:-$n}))
    pu=$((du * 100 / HZ / INTERVAL))
    ps=$((ds * 100 / HZ / INTERVAL))
    total=$((total + pu + ps))
    printf '  %-8s %-16s %6s %6s %6s %4s %9s %9s\n' "$tid" "$name" "$((pu + ps))" "$pu" "$ps" "$cpu" \
      "$((dv / INTERVAL))" "$((dn / INTERVAL))"
    u0[$tid]=$u s0[$tid]=$s v0[$tid]=$v n0[$tid]=$n
  done < <(sample | sort -k2,2 -k1,1n)
  echo "  total: ${total}% of one CPU"
done
