#!/usr/bin/env bash
# uring-stats.sh: io_uring activity of a running Sluice broker over an
# interval, from three sources:
#   1. every ring's counters in /proc/PID/fdinfo (any user who may read the
#      process): submissions and completions per second, queue fill, overflow;
#   2. the io-wq worker threads (iou-wrk-*): work the kernel could not do
#      inline (buffered writes that would block, fsync), with their CPU time;
#   3. the io_uring tracepoints, per thread (root, or
#      kernel.perf_event_paranoid <= -1; skipped otherwise): requests
#      submitted, completed, punted to io-wq, failed, CQ waits, overflows, and
#      submissions by opcode.
#
#   scripts/perf/uring-stats.sh [--pid PID] [--seconds 10] [--no-trace]
#
# Each glommio shard has three rings (main, latency, poll); the rings are
# listed by file descriptor.
set -euo pipefail

usage() {
  sed -n '2,17s/^# \{0,1\}//p' "$0"
}

PID=""
SECS=10
TRACE=1
while (($# > 0)); do
  case $1 in
    --pid | --seconds)
      (($# >= 2)) || {
        echo "uring-stats.sh: $1 needs a value" >&2
        exit 2
      }
      [[ $1 == --pid ]] && PID=$2 || SECS=$2
      shift
      ;;
    --no-trace) TRACE=0 ;;
    -h | --help)
      usage
      exit 0
      ;;
    *)
      echo "uring-stats.sh: unknown argument $1 (see --help)" >&2
      exit 2
      ;;
  esac
  shift
done
[[ $SECS =~ ^[1-9][0-9]*$ ]] || {
  echo "uring-stats.sh: --seconds takes a whole number > 0" >&2
  exit 2
}
if [[ -z $PID ]]; then
  mapfile -t pids < <(pgrep -x sluice || true)
  if ((${#pids[@]} != 1)); then
    echo "uring-stats.sh: found ${#pids[@]} processes named sluice (${pids[*]:-none}); give --pid PID" >&2
    exit 1
  fi
  PID=${pids[0]}
fi
[[ -r /proc/$PID/fdinfo ]] || {
  echo "uring-stats.sh: cannot read /proc/$PID (no such process, or not yours)" >&2
  exit 1
}

# ring_fds: the descriptors of PID that are io_uring instances.
ring_fds() {
  local fd
  for fd in /proc/"$PID"/fd/*; do
    [[ $(readlink "$fd" 2>/dev/null) == 'anon_inode:[io_uring]' ]] && echo "${fd##*/}"
  done
}

# snapshot: "fd sqhead cqtail sqmask(hex) sq_pending cq_pending overflow" per ring.
snapshot() {
  local fd
  for fd in $(ring_fds); do
    awk -v fd="$fd" '
      /^SqMask:/ { sqmask = $2 }
      /^SqHead:/ { sqhead = $2 }
      /^SqTail:/ { sqtail = $2 }
      /^CqHead:/ { cqhead = $2 }
      /^CqTail:/ { cqtail = $2 }
      /^CqOverflowList:/ { inov = 1; next }
      inov && /^[A-Za-z]/ { inov = 0 }
      inov && /^[ \t]/ { ov++ }
      END {
        if (sqhead == "") exit
        printf "%s %s %s %s %d %d %d\n", fd, sqhead, cqtail, sqmask,
          (sqtail - sqhead + 4294967296) % 4294967296, (cqtail - cqhead + 4294967296) % 4294967296, ov
      }' "/proc/$PID/fdinfo/$fd" 2>/dev/null || true
  done
}

# worker_ticks: "tid name ticks" of every io-wq worker thread.
worker_ticks() {
  local t stat rest
  for t in /proc/"$PID"/task/*; do
    [[ $(cat "$t/comm" 2>/dev/null) == iou-wrk-* ]] || continue
    stat=$(cat "$t/stat" 2>/dev/null) || continue
    rest=${stat##*) }
    # shellcheck disable=SC2086 # split the fields on purpose
    set -- $rest
    echo "${t##*/} $(cat "$t/comm") $((${12} + ${13}))"
  done
}

HZ=$(getconf CLK_TCK)
echo "sluice pid $PID ($(cat "/proc/$PID/comm")), kernel $(uname -r), ${SECS}s"
declare -A t0_head=() t0_tail=()
while read -r fd head tail _; do
  t0_head[$fd]=$head
  t0_tail[$fd]=$tail
done < <(snapshot)
declare -A w0=()
while read -r tid _ ticks; do w0[$tid]=$ticks; done < <(worker_ticks)

trace_out=""
if ((TRACE)); then
  if ! command -v perf >/dev/null 2>&1; then
    echo "(tracepoints skipped: perf not found; Debian: apt-get install linux-perf)"
    TRACE=0
  else
    events=()
    for e in io_uring_submit_req io_uring_submit_sqe io_uring_complete io_uring_queue_async_work \
      io_uring_req_failed io_uring_cqring_wait io_uring_cqe_overflow io_uring_task_work_run; do
      if [[ -d /sys/kernel/tracing/events/io_uring/$e || -d /sys/kernel/debug/tracing/events/io_uring/$e ]] ||
        perf list "io_uring:$e" 2>/dev/null | grep -q "io_uring:$e"; then
        events+=("-e" "io_uring:$e")
      fi
    done
    if ((${#events[@]} == 0)); then
      echo "(tracepoints skipped: no io_uring tracepoints visible; run as root)"
      TRACE=0
    else
      trace_out=$(mktemp -d)
      trap 'rm -rf "$trace_out"' EXIT
      # Counts per thread, and a record of submissions for the opcode mix.
      perf stat --per-thread "${events[@]}" -p "$PID" -x, -o "$trace_out/stat.csv" -- sleep "$SECS" \
        2>"$trace_out/stat.err" &
      stat_pid=$!
      sub=${events[1]}
      perf record -q -e "$sub" -p "$PID" -o "$trace_out/sub.data" -- sleep "$SECS" \
        >/dev/null 2>"$trace_out/record.err" &
      rec_pid=$!
    fi
  fi
fi
sleep "$SECS"
if ((TRACE)); then
  wait "$stat_pid" || {
    echo "(perf stat failed: $(head -c 300 "$trace_out/stat.err"))"
    TRACE=0
  }
  wait "$rec_pid" || true
fi

echo
echo "rings (from /proc/$PID/fdinfo):"
printf '  %-5s %8s %12s %12s %10s %10s %9s\n' fd entries submit/s complete/s sq-queued cq-ready overflow
total_s=0 total_c=0
while read -r fd head tail sqmask sqp cqp ov; do
  entries=$((sqmask + 1))
  h0=${t0_head[$fd]:-$head}
  c0=${t0_tail[$fd]:-$tail}
  ds=$(((head - h0 + 4294967296) % 4294967296))
  dc=$(((tail - c0 + 4294967296) % 4294967296))
  total_s=$((total_s + ds))
  total_c=$((total_c + dc))
  printf '  %-5s %8s %12s %12s %10s %10s %9s\n' "$fd" "$entries" "$((ds / SECS))" "$((dc / SECS))" "$sqp" "$cqp" "$ov"
done < <(snapshot | sort -n)
echo "  all rings: $((total_s / SECS)) submissions/s, $((total_c / SECS)) completions/s"

echo
echo "io-wq workers (blocking work punted off the shards):"
n=0
while read -r tid name ticks; do
  n=$((n + 1))
  d=$((ticks - ${w0[$tid]:-0}))
  printf '  %-8s %-16s cpu %5s%%\n' "$tid" "$name" "$((d * 100 / HZ / SECS))"
done < <(worker_ticks)
((n > 0)) || echo "  none now"

if ((TRACE)); then
  echo
  echo "tracepoints per thread (perf stat, counts over ${SECS}s):"
  # CSV lines: thread-pid,count,unit,event,... ; thread is "name-tid".
  awk -F, 'NF >= 4 && $2 ~ /^[0-9]+$/ && $2 > 0 {
      sub(/^ +/, "", $1); ev = $4; sub(/^io_uring:io_uring_/, "", ev)
      printf "  %-22s %-20s %12d\n", $1, ev, $2
    }' "$trace_out/stat.csv" | sort
  echo
  echo "submissions by opcode (perf record of ${events[1]#io_uring:}):"
  perf script -i "$trace_out/sub.data" 2>/dev/null |
    grep -o 'opcode [A-Z_0-9]*' | sort | uniq -c | sort -rn | awk '{ printf "  %-20s %10d\n", $3, $1 }'
fi
