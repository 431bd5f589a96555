#!/usr/bin/env bash
# tune.sh: checks and tunes a Linux host for Sluice, the way `rpk redpanda
# tune` does for Redpanda. The settings and why each matters are in
# kernel-tuning/ (99-sluice.conf: sysctls; host.conf: everything else).
#
#   tune.sh [--check]            table of every setting: current, recommended,
#                                pass/FAIL/skip; changes nothing, needs no root
#   tune.sh --apply [--dry-run]  set what fails (as root), saving the previous
#                                values first; --dry-run only lists the changes
#   tune.sh --revert [--dry-run] put back the values saved by --apply
#
# Exit status: 0 when the requested action ran (for --check: the table was
# printed, whatever it says); 1 with --strict when a checked setting fails,
# or when --apply/--revert could not make a change; 2 on bad usage.
# Settings that cannot be read here (a container, a VM without cpufreq, no
# NVMe, ...) are reported as skip and never count as failures.
#
# Run with --help for every option.
set -uo pipefail

usage() {
  cat <<'EOF'
Usage: tune.sh [--check | --apply | --revert] [options]

Modes (default --check):
  --check            print every setting with its current value, the recommended
                     value and pass/FAIL/skip; changes nothing, runs unprivileged
  --apply            set every failing setting that can be set at run time and
                     install the boot-time files (sysctl.d, udev rule, limits.d);
                     needs root; saves the previous values first; idempotent
  --revert           restore the values saved by --apply and remove the files
                     it installed

Options:
  --dry-run          with --apply/--revert: list the changes, make none
  --strict           with --check: exit 1 when a checked setting fails
  --why              with --check: print why each setting matters
  --data-dir DIR     the broker's data dir, whose disk and filesystem are checked
                     (default /var/lib/sluice/data, or its nearest existing parent)
  --irq-cpus LIST    CPUs for NIC/disk interrupts: auto, spread or a list like 0,16
                     (default: irq.cpus from host.conf)
  --no-persist       with --apply: change run-time values only, install no files
  --profile DIR      the kernel-tuning directory (default: ../kernel-tuning)
  --state-dir DIR    where --apply saves previous values (default
                     /var/lib/sluice-tune)
  --root DIR         act on DIR/proc, DIR/sys and DIR/etc instead of the real
                     ones (for testing; root is then not required)
  -h, --help         this text

Exit status: 0 when the action ran (--check: even if settings fail);
1 with --strict if a checked setting fails, or if --apply/--revert could not
make a change; 2 on bad usage.
EOF
}

die_usage() {
  echo "tune.sh: $*" >&2
  echo "Try 'tune.sh --help'." >&2
  exit 2
}

SCRIPT_DIR=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)
MODE=check
DRY_RUN=0
STRICT=0
WHY=0
PERSIST=1
ROOT=""
DATA_DIR=/var/lib/sluice/data
IRQ_CPUS_OPT=""
PROFILE_DIR=${SLUICE_TUNE_PROFILE:-}
STATE_DIR=""

while (($# > 0)); do
  case $1 in
    --check) MODE=check ;;
    --apply) MODE=apply ;;
    --revert) MODE=revert ;;
    --dry-run) DRY_RUN=1 ;;
    --strict) STRICT=1 ;;
    --why) WHY=1 ;;
    --no-persist) PERSIST=0 ;;
    --data-dir | --irq-cpus | --profile | --state-dir | --root)
      (($# >= 2)) || die_usage "$1 needs a value"
      case $1 in
        --data-dir) DATA_DIR=$2 ;;
        --irq-cpus) IRQ_CPUS_OPT=$2 ;;
        --profile) PROFILE_DIR=$2 ;;
        --state-dir) STATE_DIR=$2 ;;
        --root) ROOT=${2%/} ;;
      esac
      shift
      ;;
    -h | --help)
      usage
      exit 0
      ;;
    *) die_usage "unknown argument: $1" ;;
  esac
  shift
done

if ((DRY_RUN)) && [[ $MODE == check ]]; then
  die_usage "--dry-run goes with --apply or --revert"
fi
if [[ -n $ROOT && ! -d $ROOT ]]; then
  die_usage "--root $ROOT: not a directory"
fi
if [[ -z $PROFILE_DIR ]]; then
  for d in "$SCRIPT_DIR/../kernel-tuning" "$SCRIPT_DIR/kernel-tuning" /usr/local/share/sluice/kernel-tuning; do
    if [[ -f $d/99-sluice.conf ]]; then
      PROFILE_DIR=$(cd "$d" && pwd)
      break
    fi
  done
fi
if [[ -z $PROFILE_DIR || ! -f $PROFILE_DIR/99-sluice.conf || ! -f $PROFILE_DIR/host.conf ]]; then
  die_usage "profile not found (kernel-tuning/ with 99-sluice.conf and host.conf); give --profile DIR"
fi
[[ $DATA_DIR == /* ]] || DATA_DIR=$PWD/$DATA_DIR
STATE_DIR=${STATE_DIR:-$ROOT/var/lib/sluice-tune}
STATE_FILE=$STATE_DIR/saved.tsv
UID_NOW=$(id -u)

# --- small helpers ----------------------------------------------------------

# read_val PATH: the file's content with runs of blanks and newlines folded
# to one space, in REPLY. Status 1: no such file; 2: not readable.
read_val() {
  REPLY=""
  [[ -e $1 ]] || return 1
  [[ -r $1 ]] || return 2
  local v=""
  # Builtins only: this runs for every file checked, forks would add up.
  { IFS= read -r -d '' v <"$1"; } 2>/dev/null
  [[ -n $v ]] || { : <"$1"; } 2>/dev/null || return 2
  v=${v//$'\t'/ }
  v=${v//$'\n'/ }
  while [[ $v == *"  "* ]]; do v=${v//  / }; done
  v=${v# }
  REPLY=${v% }
}

# bracketed "a [b] c" -> "b" (the active choice of a sysfs selector); a
# value without brackets is returned whole.
bracketed() {
  local v=$1
  if [[ $v =~ \[([^]]*)\] ]]; then
    printf '%s' "${BASH_REMATCH[1]}"
  else
    printf '%s' "$v"
  fi
}

# choices "a [b] c" -> "a b c"
choices() {
  local v=${1//[/}
  printf '%s' "${v//]/}"
}

skip_reason() {
  case $1 in
    1) printf 'not present here' ;;
    *) printf 'not readable as uid %s' "$UID_NOW" ;;
  esac
}

is_uint() { [[ $1 =~ ^[0-9]+$ ]]; }

# num_cmp A B: prints -1, 0 or 1; works for integers of any length.
num_cmp() {
  local a=$1 b=$2
  if [[ $a == -* || $b == -* ]]; then
    if ((a < b)); then echo -1; elif ((a > b)); then echo 1; else echo 0; fi
    return
  fi
  a=${a#"${a%%[!0]*}"}
  b=${b#"${b%%[!0]*}"}
  if ((${#a} != ${#b})); then
    if ((${#a} < ${#b})); then echo -1; else echo 1; fi
  elif [[ $a < $b ]]; then
    echo -1
  elif [[ $a > $b ]]; then
    echo 1
  else
    echo 0
  fi
}

# judge OP CURRENT WANT [LO HI]: status 0 when CURRENT satisfies the rule.
judge() {
  local op=$1 cur=$2 want=$3 lo=${4:-} hi=${5:-}
  local -a c w
  read -ra c <<<"$cur"
  read -ra w <<<"$want"
  case $op in
    eq) [[ ${c[*]} == "${w[*]}" ]] ;;
    ge | le)
      ((${#c[@]} == ${#w[@]})) || return 1
      local i r
      for i in "${!w[@]}"; do
        if ! is_uint "${c[i]}" || ! is_uint "${w[i]}"; then
          [[ ${c[i]} == "${w[i]}" ]] || return 1
          continue
        fi
        r=$(num_cmp "${c[i]}" "${w[i]}")
        if [[ $op == ge && $r == -1 ]] || [[ $op == le && $r == 1 ]]; then
          return 1
        fi
      done
      ;;
    between)
      is_uint "$cur" || return 1
      [[ $(num_cmp "$cur" "$lo") != -1 && $(num_cmp "$cur" "$hi") != 1 ]]
      ;;
    *) return 1 ;;
  esac
}

# target OP CURRENT WANT: the value --apply writes. For at-least and at-most
# rules, elements that already satisfy the rule are kept.
target() {
  local op=$1 cur=$2 want=$3
  local -a c w out=()
  read -ra c <<<"$cur"
  read -ra w <<<"$want"
  if [[ $op != ge && $op != le ]] || ((${#c[@]} != ${#w[@]})); then
    printf '%s' "$want"
    return
  fi
  local i r
  for i in "${!w[@]}"; do
    if is_uint "${c[i]}" && is_uint "${w[i]}"; then
      r=$(num_cmp "${c[i]}" "${w[i]}")
      if [[ $op == ge && $r == 1 ]] || [[ $op == le && $r == -1 ]]; then
        out+=("${c[i]}")
        continue
      fi
    fi
    out+=("${w[i]}")
  done
  printf '%s' "${out[*]}"
}

# shown OP WANT LO HI: the recommended value as the table shows it.
shown() {
  case $1 in
    ge) printf '>= %s' "$2" ;;
    le) printf '<= %s' "$2" ;;
    between) printf '%s..%s (%s)' "$3" "$4" "$2" ;;
    *) printf '%s' "$2" ;;
  esac
}

# expand_cpus "0-3,8" -> "0 1 2 3 8"
expand_cpus() {
  local -a parts out=()
  local p a b i
  IFS=, read -ra parts <<<"$1"
  for p in "${parts[@]}"; do
    p=${p// /}
    if [[ $p =~ ^([0-9]+)-([0-9]+)$ ]]; then
      a=${BASH_REMATCH[1]}
      b=${BASH_REMATCH[2]}
      for ((i = a; i <= b; i++)); do out+=("$i"); done
    elif [[ $p =~ ^[0-9]+$ ]]; then
      out+=("$p")
    fi
  done
  printf '%s' "${out[*]}"
}

# compress_cpus "0 1 2 3 8" -> "0-3,8" (input in any order, duplicates ok)
compress_cpus() {
  local -a s
  local res="" start="" prev="" c
  read -ra s <<<"$(tr ' ' '\n' <<<"$1" | sed '/^$/d' | sort -n -u | tr '\n' ' ')"
  for c in "${s[@]}"; do
    if [[ -z $start ]]; then
      start=$c
    elif ((c != prev + 1)); then
      res+=$([[ $start == "$prev" ]] && echo "$start" || echo "$start-$prev"),
      start=$c
    fi
    prev=$c
  done
  if [[ -n $start ]]; then
    res+=$([[ $start == "$prev" ]] && echo "$start" || echo "$start-$prev")
  fi
  printf '%s' "${res:--}"
}

# subset "1 2" "0 1 2 3": status 0 when every CPU of the first is in the second.
subset() {
  local x
  for x in $1; do
    [[ " $2 " == *" $x "* ]] || return 1
  done
}

# --- the table and the plan -------------------------------------------------

R_NAME=() R_CUR=() R_REC=() R_RES=() R_NOTE=() R_WHY=() R_FIX=()
P_KIND=() P_PATH=() P_VAL=() P_DESC=() P_OLD=()

# row NAME CURRENT RECOMMENDED RESULT NOTE WHY
row() {
  R_NAME+=("$1")
  R_CUR+=("${2:--}")
  R_REC+=("$3")
  R_RES+=("$4")
  R_NOTE+=("$5")
  R_WHY+=("$6")
  R_FIX+=(0)
}

# plan_write PATH VALUE OLD DESCRIPTION: a change that fixes the last row.
plan_write() {
  P_KIND+=(write)
  P_PATH+=("$1")
  P_VAL+=("$2")
  P_OLD+=("$3")
  P_DESC+=("$4")
  R_FIX[${#R_FIX[@]} - 1]=1
}

# plan_file SOURCE DEST DESCRIPTION
plan_file() {
  P_KIND+=(file)
  P_PATH+=("$2")
  P_VAL+=("$1")
  P_OLD+=("")
  P_DESC+=("$3")
  R_FIX[${#R_FIX[@]} - 1]=1
}

# parse_profile FILE: the `key = value` settings of FILE in PK, PV, with the
# rule from the tag of the comment line above in PO (eq, ge, le, between;
# PLO/PHI for between) and that comment, less its tag, in PW.
parse_profile() {
  PK=() PV=() PO=() PW=() PLO=() PHI=()
  local line comment="" key val op lo hi tag_re='^(.*[^ ]) *\[[^]]*\]$'
  while IFS= read -r line || [[ -n $line ]]; do
    case $line in
      '#'*)
        comment=${line#\#}
        comment=${comment# }
        ;;
      *=*)
        key=${line%%=*}
        key=${key//[[:space:]]/}
        val=${line#*=}
        read -r val <<<"$val"
        val=$(tr -s ' \t' '  ' <<<"$val")
        op=eq lo="" hi=""
        case $comment in
          *'[at least]') op=ge ;;
          *'[at most]') op=le ;;
        esac
        if [[ $comment =~ \[between\ ([0-9]+)\ and\ ([0-9]+)\]$ ]]; then
          op=between lo=${BASH_REMATCH[1]} hi=${BASH_REMATCH[2]}
        fi
        [[ $comment =~ $tag_re ]] && comment=${BASH_REMATCH[1]}
        PK+=("$key") PV+=("$val") PO+=("$op") PW+=("$comment") PLO+=("$lo") PHI+=("$hi")
        comment=""
        ;;
      *) comment="" ;;
    esac
  done <"$1"
}

declare -A HV=() HO=() HW=() HLO=() HHI=()
load_host_profile() {
  parse_profile "$PROFILE_DIR/host.conf"
  local i
  for i in "${!PK[@]}"; do
    HV[${PK[i]}]=${PV[i]}
    HO[${PK[i]}]=${PO[i]}
    HW[${PK[i]}]=${PW[i]}
    HLO[${PK[i]}]=${PLO[i]}
    HHI[${PK[i]}]=${PHI[i]}
  done
}

host() { printf '%s' "${HV[$1]:-}"; }

# --- what the host is -------------------------------------------------------

online_cpus() {
  local v
  if read_val "$ROOT/sys/devices/system/cpu/online"; then
    expand_cpus "$REPLY"
  else
    v=$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1)
    expand_cpus "0-$((v - 1))"
  fi
}

environment() {
  local v="" what=()
  if [[ -n $ROOT ]]; then
    printf 'simulated (--root %s)' "$ROOT"
    return
  fi
  if command -v systemd-detect-virt >/dev/null 2>&1; then
    v=$(systemd-detect-virt --vm 2>/dev/null) && [[ $v != none ]] && what+=("vm ($v)")
    v=$(systemd-detect-virt --container 2>/dev/null) && [[ $v != none ]] && what+=("container ($v)")
  else
    grep -qw hypervisor /proc/cpuinfo 2>/dev/null && what+=("vm")
    [[ -e /.dockerenv || -e /run/.containerenv ]] && what+=("container")
  fi
  ((${#what[@]} > 0)) || what=("bare metal")
  printf '%s' "${what[0]}"
  printf ', %s' "${what[@]:1}"
}

# The nearest existing directory at or above DIR.
existing_parent() {
  local d=$1
  while [[ ! -e $d && $d == */* ]]; do
    d=${d%/*}
    d=${d:-/}
  done
  printf '%s' "$d"
}

# disks_of_dev MAJ:MIN: the whole-disk names under /sys/block that hold the
# device (a partition's disk; the members of a device-mapper or md device).
disks_of_dev() {
  local sys
  sys=$(readlink -f "$ROOT/sys/dev/block/$1" 2>/dev/null) || return 1
  [[ -d $sys ]] || return 1
  if [[ -e $sys/partition ]]; then
    sys=${sys%/*}
  fi
  local name=${sys##*/} s
  if [[ -d $sys/slaves ]] && [[ -n $(ls -A "$sys/slaves" 2>/dev/null) ]]; then
    echo "$name"
    for s in "$sys"/slaves/*; do
      s=$(readlink -f "$s")
      [[ -e $s/partition ]] && s=${s%/*}
      echo "${s##*/}"
    done
  else
    echo "$name"
  fi
}

# --- checks -----------------------------------------------------------------

check_sysctls() {
  parse_profile "$PROFILE_DIR/99-sluice.conf"
  local i key path rc
  for i in "${!PK[@]}"; do
    key=${PK[i]}
    path=$ROOT/proc/sys/${key//./\/}
    if read_val "$path"; then
      if judge "${PO[i]}" "$REPLY" "${PV[i]}" "${PLO[i]}" "${PHI[i]}"; then
        row "sysctl $key" "$REPLY" "$(shown "${PO[i]}" "${PV[i]}" "${PLO[i]}" "${PHI[i]}")" pass "" "${PW[i]}"
      else
        row "sysctl $key" "$REPLY" "$(shown "${PO[i]}" "${PV[i]}" "${PLO[i]}" "${PHI[i]}")" FAIL "" "${PW[i]}"
        plan_write "$path" "$(target "${PO[i]}" "$REPLY" "${PV[i]}")" "$REPLY" "sysctl $key"
      fi
    else
      rc=$?
      row "sysctl $key" "-" "$(shown "${PO[i]}" "${PV[i]}" "${PLO[i]}" "${PHI[i]}")" skip "$(skip_reason $rc)" "${PW[i]}"
    fi
  done
}

check_governor() {
  local want cpu f seen="" bad=() rc=1
  want=$(host cpu.governor)
  for cpu in $CPUS; do
    f=$ROOT/sys/devices/system/cpu/cpu$cpu/cpufreq/scaling_governor
    if read_val "$f"; then
      rc=0
      [[ " $seen " == *" $REPLY "* ]] || seen+=" $REPLY"
      [[ $REPLY == "$want" ]] || bad+=("$cpu")
    elif (($? == 2)); then
      rc=2
    fi
  done
  seen=${seen# }
  if [[ -z $seen ]]; then
    local why="no cpufreq here: a VM, or no frequency driver"
    ((rc == 2)) && why=$(skip_reason 2)
    row "cpu governor" "-" "$want" skip "$why" "${HW[cpu.governor]}"
  elif ((${#bad[@]} == 0)); then
    row "cpu governor" "$seen" "$want" pass "" "${HW[cpu.governor]}"
  else
    row "cpu governor" "$seen" "$want" FAIL "on CPUs $(compress_cpus "${bad[*]}")" "${HW[cpu.governor]}"
    for cpu in "${bad[@]}"; do
      f=$ROOT/sys/devices/system/cpu/cpu$cpu/cpufreq
      read_val "$f/scaling_available_governors" || REPLY=""
      if [[ " $REPLY " == *" $want "* ]]; then
        read_val "$f/scaling_governor"
        plan_write "$f/scaling_governor" "$want" "$REPLY" "cpu$cpu governor"
      fi
    done
  fi
}

check_clocksource() {
  local want cur dir=$ROOT/sys/devices/system/clocksource/clocksource0
  want=$(host clocksource)
  if read_val "$dir/current_clocksource"; then
    cur=$REPLY
    case $cur in
      "$want" | tsc | kvm-clock | arch_sys_counter | hyperv_clocksource_tsc_page)
        row "clocksource" "$cur" "$want" pass "" "${HW[clocksource]}"
        ;;
      *)
        read_val "$dir/available_clocksource" || REPLY=""
        if [[ " $REPLY " == *" $want "* ]]; then
          row "clocksource" "$cur" "$want" FAIL "" "${HW[clocksource]}"
          plan_write "$dir/current_clocksource" "$want" "$cur" "clocksource"
        else
          row "clocksource" "$cur" "$want" FAIL "$want not offered: available are $REPLY" "${HW[clocksource]}"
        fi
        ;;
    esac
  else
    row "clocksource" "-" "$want" skip "$(skip_reason $?)" "${HW[clocksource]}"
  fi
}

check_thp() {
  local key file name want cur
  for key in mm.thp.enabled mm.thp.defrag; do
    name=${key#mm.thp.}
    file=$ROOT/sys/kernel/mm/transparent_hugepage/$name
    want=$(host "$key")
    if read_val "$file"; then
      cur=$(bracketed "$REPLY")
      if [[ $cur == "$want" ]]; then
        row "thp $name" "$cur" "$want" pass "" "${HW[$key]}"
      elif [[ " $(choices "$REPLY") " == *" $want "* ]]; then
        row "thp $name" "$cur" "$want" FAIL "" "${HW[$key]}"
        plan_write "$file" "$want" "$cur" "transparent huge pages $name"
      else
        row "thp $name" "$cur" "$want" FAIL "$want not offered" "${HW[$key]}"
      fi
    else
      row "thp $name" "-" "$want" skip "$(skip_reason $?)" "${HW[$key]}"
    fi
  done
}

# Checks one limit of the shell or of a running broker.
# limit_row NAME CURRENT(KiB|count|unlimited) MINIMUM KEY NOTE
limit_row() {
  local name=$1 cur=$2 min=$3 key=$4 note=$5 want
  want=$(host "$key")
  if [[ $cur == unlimited ]] || { is_uint "$cur" && [[ $(num_cmp "$cur" "$min") != -1 ]]; }; then
    row "$name" "$cur" "$want" pass "$note" "${HW[$key]}"
  else
    row "$name" "$cur" "$want" FAIL "$note" "${HW[$key]}"
  fi
}

check_limits() {
  local ncpu memlock_min nofile_min pid comm lim
  ncpu=$(wc -w <<<"$CPUS")
  memlock_min=$((ncpu * 12 * 1024))
  nofile_min=$(host limit.nofile)
  [[ $(host limit.memlock) != unlimited ]] && is_uint "$(host limit.memlock)" && memlock_min=$(host limit.memlock)
  if [[ -n $ROOT ]]; then
    row "limit memlock (this shell)" "-" "$(host limit.memlock)" skip "not checked with --root" "${HW[limit.memlock]}"
    row "limit nofile (this shell)" "-" "$(host limit.nofile)" skip "not checked with --root" "${HW[limit.nofile]}"
  else
    limit_row "limit memlock (this shell)" "$(ulimit -l)" "$memlock_min" limit.memlock \
      "KiB; needs >= $memlock_min for $ncpu shards; the unit sets its own"
    limit_row "limit nofile (this shell)" "$(ulimit -n)" "$nofile_min" limit.nofile "the unit sets its own"
  fi
  # Brokers running now.
  for pid in "$ROOT"/proc/[0-9]*; do
    read_val "$pid/comm" 2>/dev/null || continue
    comm=$REPLY
    [[ $comm == sluice ]] || continue
    pid=${pid##*/}
    if [[ -r $ROOT/proc/$pid/limits ]]; then
      lim=$(awk '/^Max locked memory/ { print $4 }' "$ROOT/proc/$pid/limits" 2>/dev/null)
      [[ $lim =~ ^[0-9]+$ ]] && lim=$((lim / 1024))
      limit_row "limit memlock (sluice pid $pid)" "${lim:--}" "$memlock_min" limit.memlock "KiB"
      lim=$(awk '/^Max open files/ { print $4 }' "$ROOT/proc/$pid/limits" 2>/dev/null)
      limit_row "limit nofile (sluice pid $pid)" "${lim:--}" "$nofile_min" limit.nofile ""
    else
      row "limits of sluice pid $pid" "-" "$(host limit.memlock)" skip "$(skip_reason 2)" "${HW[limit.memlock]}"
    fi
  done
}

BLOCK_DEVS=""
DATA_NOTE=""
find_block_devices() {
  local d dev
  for d in "$ROOT"/sys/block/nvme*n*; do
    [[ -e $d ]] && BLOCK_DEVS+=" ${d##*/}"
  done
  local at
  at=$(existing_parent "$DATA_DIR")
  if [[ -n $ROOT ]]; then
    DATA_NOTE="data dir $DATA_DIR: not checked with --root"
    return
  fi
  dev=$(stat -L -c '%Hd:%Ld' "$at" 2>/dev/null) || {
    DATA_NOTE="data dir $DATA_DIR: cannot stat $at"
    return
  }
  DATA_NOTE="data dir $DATA_DIR"
  [[ $at != "$DATA_DIR" ]] && DATA_NOTE+=" (not there yet; looked at $at)"
  if [[ ${dev%%:*} == 0 ]]; then
    DATA_NOTE+=": no block device under it (tmpfs, overlay or network fs)"
    return
  fi
  local disks
  disks=$(disks_of_dev "$dev" | tr '\n' ' ') || disks=""
  if [[ -z ${disks// /} ]]; then
    DATA_NOTE+=": device $dev not found in /sys"
    return
  fi
  DATA_NOTE+=": on ${disks% }"
  for d in $disks; do
    [[ " $BLOCK_DEVS " == *" $d "* ]] || BLOCK_DEVS+=" $d"
  done
}

check_data_fs() {
  local at fs
  if [[ -n $ROOT ]]; then
    row "filesystem of data dir" "-" "xfs or ext4" skip "not checked with --root" \
      "XFS and ext4 handle appends, preallocation and fsync the way the broker needs"
    return
  fi
  at=$(existing_parent "$DATA_DIR")
  if command -v findmnt >/dev/null 2>&1; then
    fs=$(findmnt -n -o FSTYPE -T "$at" 2>/dev/null | head -n1)
  fi
  [[ -z ${fs:-} ]] && fs=$(stat -f -c %T "$at" 2>/dev/null)
  case ${fs:-} in
    "") row "filesystem of data dir" "-" "xfs or ext4" skip "cannot tell for $at" "" ;;
    xfs | ext4 | ext2/ext3)
      row "filesystem of data dir" "$fs" "xfs or ext4" pass "$at" \
        "XFS and ext4 handle appends, preallocation and fsync the way the broker needs"
      ;;
    *)
      row "filesystem of data dir" "$fs" "xfs or ext4" FAIL "$at; move the data dir" \
        "XFS and ext4 handle appends, preallocation and fsync the way the broker needs"
      ;;
  esac
}

check_block() {
  if [[ -z ${BLOCK_DEVS// /} ]]; then
    row "block devices" "-" "$(host block.scheduler)" skip "no NVMe here and no disk found under the data dir" \
      "${HW[block.scheduler]}"
    return
  fi
  local dev q rot want sched avail
  for dev in $BLOCK_DEVS; do
    q=$ROOT/sys/block/$dev/queue
    if ! [[ -d $q ]]; then
      row "block $dev" "-" "-" skip "no $q" ""
      continue
    fi
    read_val "$q/rotational" || REPLY=0
    rot=$REPLY
    want=$(host block.scheduler)
    ((rot == 1)) && want=mq-deadline
    # scheduler
    if read_val "$q/scheduler"; then
      sched=$(bracketed "$REPLY")
      avail=$(choices "$REPLY")
      if [[ $sched == "$want" ]]; then
        row "block $dev scheduler" "$sched" "$want" pass "$( ((rot)) && echo rotational)" "${HW[block.scheduler]}"
      elif [[ " $avail " == *" $want "* ]]; then
        row "block $dev scheduler" "$sched" "$want" FAIL "$( ((rot)) && echo rotational)" "${HW[block.scheduler]}"
        plan_write "$q/scheduler" "$want" "$sched" "$dev scheduler"
      else
        row "block $dev scheduler" "$sched" "$want" FAIL "$want not offered: $avail" "${HW[block.scheduler]}"
      fi
    else
      sched=""
      row "block $dev scheduler" "-" "$want" skip "$(skip_reason $?)" "${HW[block.scheduler]}"
    fi
    # nr_requests follows the scheduler.
    if read_val "$q/nr_requests"; then
      if ((rot)); then
        row "block $dev nr_requests" "$REPLY" "scheduler's" pass "rotational: mq-deadline sizes it" \
          "${HW[block.nr_requests]}"
      elif [[ $sched == none ]]; then
        row "block $dev nr_requests" "$REPLY" "device max" pass "set by scheduler none" "${HW[block.nr_requests]}"
      else
        row "block $dev nr_requests" "$REPLY" "device max" FAIL "becomes the max with scheduler none" \
          "${HW[block.nr_requests]}"
        # The scheduler change above fixes it, when --apply can make that one.
        [[ ${P_PATH[*]:-} == *"$q/scheduler"* ]] && R_FIX[${#R_FIX[@]} - 1]=1
      fi
    else
      row "block $dev nr_requests" "-" "device max" skip "$(skip_reason $?)" "${HW[block.nr_requests]}"
    fi
    block_attr "$dev" read_ahead_kb
    block_attr "$dev" rq_affinity
  done
}

# block_attr DEV ATTR: a queue attribute judged by host.conf's block.ATTR.
block_attr() {
  local dev=$1 attr=$2 key=block.$2 path=$ROOT/sys/block/$1/queue/$2
  local want op lo hi
  want=${HV[$key]} op=${HO[$key]} lo=${HLO[$key]} hi=${HHI[$key]}
  if read_val "$path"; then
    if judge "$op" "$REPLY" "$want" "$lo" "$hi"; then
      row "block $dev $attr" "$REPLY" "$(shown "$op" "$want" "$lo" "$hi")" pass "" "${HW[$key]}"
    else
      row "block $dev $attr" "$REPLY" "$(shown "$op" "$want" "$lo" "$hi")" FAIL "" "${HW[$key]}"
      plan_write "$path" "$(target "$op" "$REPLY" "$want")" "$REPLY" "$dev $attr"
    fi
  else
    row "block $dev $attr" "-" "$(shown "$op" "$want" "$lo" "$hi")" skip "$(skip_reason $?)" "${HW[$key]}"
  fi
}

# IRQs ------------------------------------------------------------------------

declare -A IRQ_NAME=()
load_irq_names() {
  local line irq
  [[ -r $ROOT/proc/interrupts ]] || return 0
  while IFS= read -r line; do
    [[ $line =~ ^\ *([0-9]+):.*\ ([^ ]+)\ *$ ]] || continue
    irq=${BASH_REMATCH[1]}
    IRQ_NAME[$irq]=${BASH_REMATCH[2]}
  done <"$ROOT/proc/interrupts"
}

# irqs_of_device SYSDIR: the interrupts of a device: its MSI vectors, found on
# it or on up to three parents (a virtio device's PCI function), or its line.
irqs_of_device() {
  local d=$1 n i f found=""
  for ((n = 0; n < 4; n++)); do
    if [[ -d $d/msi_irqs ]]; then
      for f in "$d"/msi_irqs/*; do
        i=${f##*/}
        [[ $i =~ ^[0-9]+$ ]] && found+=" $i"
      done
      break
    fi
    if read_val "$d/irq" && [[ $REPLY =~ ^[0-9]+$ ]] && ((REPLY > 0)); then
      found=" $REPLY"
      break
    fi
    d=${d%/*}
    [[ $d == "$ROOT/sys" || $d == "$ROOT" || -z $d ]] && break
  done
  # Leave out interrupts that carry no I/O: virtio config, NVMe admin queue.
  local keep=""
  for i in $found; do
    case ${IRQ_NAME[$i]:-} in
      *-config | nvme*q0) ;;
      *) keep+=" $i" ;;
    esac
  done
  printf '%s' "$(tr ' ' '\n' <<<"$keep" | sed '/^$/d' | sort -n | tr '\n' ' ')"
}

# The devices whose interrupts are placed: "label|sysdir|kind" lines.
irq_devices() {
  local n c dev
  for n in "$ROOT"/sys/class/net/*; do
    [[ -e $n/device ]] || continue
    echo "nic ${n##*/}|$(readlink -f "$n/device")|nic"
  done
  for c in "$ROOT"/sys/class/nvme/nvme*; do
    [[ -e $c/device ]] || continue
    echo "nvme ${c##*/}|$(readlink -f "$c/device")|nvme"
  done
  for dev in $BLOCK_DEVS; do
    [[ $dev == nvme* ]] && continue
    [[ -e $ROOT/sys/block/$dev/device ]] || continue
    echo "disk $dev|$(readlink -f "$ROOT/sys/block/$dev/device")|disk"
  done
}

check_irqs() {
  local spec mode irq_cpus="" why=${HW[irq.cpus]}
  spec=${IRQ_CPUS_OPT:-$(host irq.cpus)}
  case $spec in
    auto)
      if (($(wc -w <<<"$CPUS") >= 8)); then
        read_val "$ROOT/sys/devices/system/cpu/cpu0/topology/thread_siblings_list" || REPLY=0
        irq_cpus=$(expand_cpus "$REPLY")
        mode=reserve
      else
        mode=spread
      fi
      ;;
    spread) mode=spread ;;
    *)
      irq_cpus=$(expand_cpus "$spec")
      [[ -n $irq_cpus ]] || die_usage "irq cpus: bad CPU list '$spec'"
      mode=reserve
      ;;
  esac
  local shard_cpus="" c
  for c in $CPUS; do
    [[ " $irq_cpus " == *" $c "* ]] || shard_cpus+=" $c"
  done
  if [[ $mode == reserve ]]; then
    IRQ_PLAN="interrupts on CPUs $(compress_cpus "$irq_cpus"), shards on $(compress_cpus "$shard_cpus")"
  else
    IRQ_PLAN="interrupts spread over all CPUs, one per CPU in turn"
  fi

  load_irq_names
  local line label dir kind irqs i aff eff cur rec next=0 seen_dirs=" " found=0
  local -a cpu_arr
  read -ra cpu_arr <<<"$CPUS"
  while IFS= read -r line; do
    label=${line%%|*}
    line=${line#*|}
    dir=${line%|*}
    kind=${line##*|}
    [[ $seen_dirs == *" $dir "* ]] && continue
    seen_dirs+="$dir "
    irqs=$(irqs_of_device "$dir")
    [[ -n ${irqs// /} ]] || continue
    found=1
    local affs="" effs="" unread=0 bad=()
    for i in $irqs; do
      if read_val "$ROOT/proc/irq/$i/smp_affinity_list"; then
        aff=$(expand_cpus "$REPLY")
        affs+=" $aff"
        eff=$aff
        # Where it lands now; the kernel keeps that within the affinity.
        if read_val "$ROOT/proc/irq/$i/effective_affinity_list" && [[ -n $REPLY ]] &&
          subset "$(expand_cpus "$REPLY")" "$aff"; then
          eff=$(expand_cpus "$REPLY")
        fi
        effs+=" ${eff%% *}"
        if [[ $mode == reserve && $kind != nvme ]] && ! subset "$aff" "$irq_cpus"; then
          bad+=("$i")
        fi
      else
        unread=1
      fi
    done
    local n_irqs
    n_irqs=$(wc -w <<<"$irqs")
    if ((unread)); then
      row "irq $label ($n_irqs)" "-" "-" skip "$(skip_reason 2)" "$why"
      continue
    fi
    if [[ $mode == reserve && $kind != nvme ]]; then
      cur=$(compress_cpus "$affs")
      rec=$(compress_cpus "$irq_cpus")
      if ((${#bad[@]} == 0)); then
        row "irq $label ($n_irqs)" "$cur" "$rec" pass "" "$why"
      else
        local which="IRQ ${bad[*]}"
        ((${#bad[@]} > 1)) && which="IRQs ${bad[*]}"
        row "irq $label ($n_irqs)" "$cur" "$rec" FAIL "$which can reach shard CPUs" "$why"
        for i in "${bad[@]}"; do
          read_val "$ROOT/proc/irq/$i/smp_affinity_list"
          plan_write "$ROOT/proc/irq/$i/smp_affinity_list" "$rec" "$REPLY" "irq $i (${IRQ_NAME[$i]:-$label}) affinity"
        done
      fi
    else
      # Spread: each interrupt lands on one CPU, no CPU has two more than another.
      local -A count=()
      local max=0 min=999999 e
      for c in $CPUS; do count[$c]=0; done
      for e in $effs; do count[$e]=$((${count[$e]:-0} + 1)); done
      for c in "${!count[@]}"; do
        ((count[$c] > max)) && max=${count[$c]}
        ((count[$c] < min)) && min=${count[$c]}
      done
      cur="on $(tr ' ' ',' <<<"${effs# }")"
      local note=""
      [[ $kind == nvme ]] && note="per-queue, kernel-managed"
      if ((max - min <= 1)); then
        row "irq $label ($n_irqs)" "$cur" "spread" pass "$note" "$why"
      else
        row "irq $label ($n_irqs)" "$cur" "spread" FAIL "$note" "$why"
        if [[ $kind != nvme ]]; then
          for i in $irqs; do
            read_val "$ROOT/proc/irq/$i/smp_affinity_list"
            plan_write "$ROOT/proc/irq/$i/smp_affinity_list" "${cpu_arr[next % ${#cpu_arr[@]}]}" "$REPLY" \
              "irq $i (${IRQ_NAME[$i]:-$label}) affinity"
            next=$((next + 1))
          done
        fi
      fi
      unset count
    fi
  done < <(irq_devices)
  if ((!found)); then
    row "irq placement" "-" "$mode" skip "no NIC or disk interrupts found here" "$why"
  fi
  # irqbalance moves interrupts on its own.
  local p running=0
  for p in "$ROOT"/proc/[0-9]*; do
    read_val "$p/comm" 2>/dev/null || continue
    [[ $REPLY == irqbalance ]] && running=1 && break
  done
  if ((!running)); then
    row "irqbalance" "not running" "-" pass "" "irqbalance moves interrupts on its own"
  elif [[ $mode == reserve ]]; then
    row "irqbalance" "running" "stopped" FAIL \
      "it moves IRQs back; stop it or set IRQBALANCE_BANNED_CPULIST=$(compress_cpus "$shard_cpus")" \
      "irqbalance moves interrupts on its own"
  else
    row "irqbalance" "running" "-" pass "it spreads IRQs too" "irqbalance moves interrupts on its own"
  fi
}

# Boot-time files -------------------------------------------------------------

check_files() {
  local src dest name
  for name in 99-sluice.conf:etc/sysctl.d/99-sluice.conf \
    60-sluice-block.rules:etc/udev/rules.d/60-sluice-block.rules \
    99-sluice-limits.conf:etc/security/limits.d/99-sluice.conf; do
    src=$PROFILE_DIR/${name%%:*}
    dest=$ROOT/${name#*:}
    if [[ -f $dest ]] && cmp -s "$src" "$dest"; then
      row "file /${name#*:}" "installed" "installed" pass "" "makes the settings survive a reboot"
    else
      local cur=missing
      [[ -e $dest ]] && cur=differs
      row "file /${name#*:}" "$cur" "installed" FAIL "" "makes the settings survive a reboot"
      ((PERSIST)) && plan_file "$src" "$dest" "boot-time file /${name#*:}"
    fi
  done
}

# --- modes --------------------------------------------------------------------

print_header() {
  echo "Sluice host check: $1"
  echo "kernel $(uname -r), $(wc -w <<<"$CPUS") CPUs, $(environment), uid $UID_NOW"
  echo "profile: $PROFILE_DIR"
  echo "$DATA_NOTE"
  echo "irq plan: $IRQ_PLAN"
}

print_table() {
  local i pass=0 fail=0 skip=0 res w1=7 w2=7 w3=11 fmt
  # Columns as wide as their widest value.
  for i in "${!R_NAME[@]}"; do
    ((${#R_NAME[i]} > w1)) && w1=${#R_NAME[i]}
    ((${#R_CUR[i]} > w2)) && w2=${#R_CUR[i]}
    ((${#R_REC[i]} > w3)) && w3=${#R_REC[i]}
  done
  fmt="%-${w1}s  %-${w2}s  %-${w3}s  %s\n"
  # shellcheck disable=SC2059 # the format is built above
  printf "$fmt" SETTING CURRENT RECOMMENDED RESULT
  for i in "${!R_NAME[@]}"; do
    res=${R_RES[i]}
    [[ -n ${R_NOTE[i]} ]] && res+=" (${R_NOTE[i]})"
    # shellcheck disable=SC2059
    printf "$fmt" "${R_NAME[i]}" "${R_CUR[i]}" "${R_REC[i]}" "$res"
    if ((WHY)) && [[ -n ${R_WHY[i]} ]]; then
      echo "    why: ${R_WHY[i]}"
    fi
    case ${R_RES[i]} in
      pass) pass=$((pass + 1)) ;;
      FAIL) fail=$((fail + 1)) ;;
      *) skip=$((skip + 1)) ;;
    esac
  done
  FAILS=$fail
  echo "summary: ${#R_NAME[@]} settings: $pass pass, $fail fail, $skip skipped (could not be checked here)"
}

evaluate() {
  CPUS=$(online_cpus)
  load_host_profile
  find_block_devices
  check_sysctls
  check_thp
  check_governor
  check_clocksource
  check_irqs
  check_limits
  check_data_fs
  check_block
  check_files
}

need_root() {
  if ((!DRY_RUN)) && [[ -z $ROOT ]] && ((UID_NOW != 0)); then
    echo "tune.sh: $1 needs root (or --dry-run to only list the changes)" >&2
    exit 1
  fi
}

# save_state KIND PATH OLD: records the value from before the first change.
save_state() {
  mkdir -p "$STATE_DIR" || return 1
  touch "$STATE_FILE" || return 1
  if awk -F '\t' -v k="$1" -v p="$2" '$1 == k && $2 == p { found = 1 } END { exit !found }' "$STATE_FILE"; then
    return 0
  fi
  printf '%s\t%s\t%s\n' "$1" "$2" "$3" >>"$STATE_FILE"
}

# write_value PATH VALUE: writes and reads back; status 1 if it did not take.
write_value() {
  local path=$1 val=$2
  if ! { printf '%s\n' "$val" >"$path"; } 2>/dev/null; then
    return 1
  fi
  read_val "$path" || return 1
  local now
  now=$(bracketed "$REPLY")
  [[ $now == "$val" || $REPLY == "$val" ]] && return 0
  # CPU lists read back in their own spelling.
  [[ $path == */smp_affinity_list && $(expand_cpus "$REPLY") == "$(expand_cpus "$val")" ]]
}

apply_mode() {
  need_root "--apply"
  evaluate
  print_header "tune.sh --apply$( ((DRY_RUN)) && echo ' --dry-run')"
  local i n=${#P_KIND[@]} failed=0 backup
  if ((n == 0)); then
    echo "nothing to change: every setting that --apply can set already matches"
  else
    echo "$n change(s):"
  fi
  for ((i = 0; i < n; i++)); do
    if [[ ${P_KIND[i]} == file ]]; then
      if ((DRY_RUN)); then
        echo "  would install ${P_PATH[i]} (from ${P_VAL[i]})"
        continue
      fi
      backup=-
      if [[ -e ${P_PATH[i]} ]]; then
        mkdir -p "$STATE_DIR/files"
        backup=$STATE_DIR/files/$(tr '/' '_' <<<"${P_PATH[i]}")
        [[ -e $backup ]] || cp -p "${P_PATH[i]}" "$backup"
      fi
      if save_state file "${P_PATH[i]}" "$backup" && mkdir -p "$(dirname "${P_PATH[i]}")" &&
        cp "${P_VAL[i]}" "${P_PATH[i]}" && chmod 0644 "${P_PATH[i]}"; then
        echo "  installed ${P_PATH[i]}"
        if [[ -z $ROOT && ${P_PATH[i]} == */udev/rules.d/* ]] && command -v udevadm >/dev/null 2>&1; then
          udevadm control --reload >/dev/null 2>&1 || true
        fi
      else
        echo "  FAILED to install ${P_PATH[i]}"
        failed=1
      fi
    else
      if ((DRY_RUN)); then
        echo "  would set ${P_DESC[i]}: ${P_OLD[i]} -> ${P_VAL[i]} (${P_PATH[i]})"
        continue
      fi
      if ! save_state write "${P_PATH[i]}" "${P_OLD[i]}"; then
        echo "  FAILED ${P_DESC[i]}: cannot save the previous value under $STATE_DIR"
        failed=1
      elif write_value "${P_PATH[i]}" "${P_VAL[i]}"; then
        echo "  set ${P_DESC[i]}: ${P_OLD[i]} -> ${P_VAL[i]}"
      else
        echo "  FAILED ${P_DESC[i]}: ${P_PATH[i]} does not take ${P_VAL[i]} (now: ${REPLY:-?})"
        failed=1
      fi
    fi
  done
  local manual=()
  for i in "${!R_NAME[@]}"; do
    if [[ ${R_RES[i]} == FAIL && ${R_FIX[i]} == 0 ]]; then
      manual+=("  ${R_NAME[i]}: ${R_CUR[i]} (recommended ${R_REC[i]})${R_NOTE[i]:+: ${R_NOTE[i]}}")
    fi
  done
  if ((${#manual[@]} > 0)); then
    echo "not changed by --apply (see kernel-tuning/README.md):"
    printf '%s\n' "${manual[@]}"
  fi
  if ((!DRY_RUN && n > 0)); then
    echo "previous values saved in $STATE_FILE; undo with: tune.sh --revert"
  fi
  exit "$failed"
}

revert_mode() {
  need_root "--revert"
  if [[ ! -s $STATE_FILE ]]; then
    echo "nothing to revert: no saved values in $STATE_FILE"
    exit 0
  fi
  local -a kind path old
  local k p o i failed=0
  while IFS=$'\t' read -r k p o; do
    kind+=("$k") path+=("$p") old+=("$o")
  done <"$STATE_FILE"
  echo "reverting ${#kind[@]} change(s) saved in $STATE_FILE$( ((DRY_RUN)) && echo ' (dry run)'):"
  for ((i = ${#kind[@]} - 1; i >= 0; i--)); do
    p=${path[i]} o=${old[i]}
    if [[ ${kind[i]} == file ]]; then
      if [[ $o == - ]]; then
        if ((DRY_RUN)); then echo "  would remove $p"; continue; fi
        if rm -f "$p"; then echo "  removed $p"; else echo "  FAILED to remove $p"; failed=1; fi
      else
        if ((DRY_RUN)); then echo "  would restore $p from $o"; continue; fi
        if cp -p "$o" "$p"; then echo "  restored $p"; else echo "  FAILED to restore $p"; failed=1; fi
      fi
    else
      read_val "$p" || REPLY="?"
      if ((DRY_RUN)); then echo "  would set $p: $(bracketed "$REPLY") -> $o"; continue; fi
      if write_value "$p" "$o"; then
        echo "  set $p: back to $o"
      else
        echo "  FAILED to set $p back to $o (now: ${REPLY:-?})"
        failed=1
      fi
    fi
  done
  if ((!DRY_RUN)); then
    if ((failed)); then
      echo "some values could not be restored; $STATE_FILE is kept"
    else
      rm -f "$STATE_FILE"
      rm -rf "$STATE_DIR/files"
      rmdir "$STATE_DIR" 2>/dev/null || true
    fi
  fi
  exit "$failed"
}

check_mode() {
  evaluate
  print_header "tune.sh --check"
  print_table
  if ((STRICT && FAILS > 0)); then
    exit 1
  fi
  exit 0
}

case $MODE in
  check) check_mode ;;
  apply) apply_mode ;;
  revert) revert_mode ;;
esac
