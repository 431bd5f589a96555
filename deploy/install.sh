#!/usr/bin/env bash
# install.sh: installs Sluice on a systemd host:
#   /usr/local/bin/sluice                       the broker (from --bin)
#   /etc/sluice/sluice.properties               the config (kept if present)
#   /etc/default/sluice                         SLUICE_* overrides (kept if present)
#   /etc/systemd/system/sluice.service          the unit (replaced)
#   /etc/systemd/system/sluice.service.d/cpus.conf  with --shard-cpus only
#   /var/lib/sluice/data                        the data dir, owned by sluice
#   /usr/local/share/sluice/                    tune.sh and kernel-tuning/
# and creates the system user sluice. Idempotent: run it again to upgrade the
# binary and the unit; the config and the data are left alone.
#
# --prefix DIR installs under DIR instead of / (no user is created, nothing is
# chowned, systemd is not told), so it can be tried without touching the
# system; --dry-run prints what it would do and does nothing.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: deploy/install.sh [options]

  --bin PATH          the sluice binary to install
                      (default: target/release/sluice of this repository)
  --prefix DIR        install under DIR instead of / (for packaging and tests)
  --shard-cpus LIST   run the broker on these CPUs only (e.g. 1-15) and one
                      shard per CPU: writes a drop-in with CPUAffinity= and
                      SLUICE_CORES=, leaving the other CPUs to interrupts
  --enable            also `systemctl enable --now sluice` (prefix / only)
  --dry-run           print every step, change nothing
  -h, --help          this text
EOF
}

REPO=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
BIN=""
PREFIX=/
SHARD_CPUS=""
ENABLE=0
DRY_RUN=0

while (($# > 0)); do
  case $1 in
    --bin | --prefix | --shard-cpus)
      (($# >= 2)) || {
        echo "install.sh: $1 needs a value" >&2
        exit 2
      }
      case $1 in
        --bin) BIN=$2 ;;
        --prefix) PREFIX=$2 ;;
        --shard-cpus) SHARD_CPUS=$2 ;;
      esac
      shift
      ;;
    --enable) ENABLE=1 ;;
    --dry-run) DRY_RUN=1 ;;
    -h | --help)
      usage
      exit 0
      ;;
    *)
      echo "install.sh: unknown argument: $1 (see --help)" >&2
      exit 2
      ;;
  esac
  shift
done

BIN=${BIN:-$REPO/target/release/sluice}
if [[ ! -x $BIN ]]; then
  echo "install.sh: no executable sluice at $BIN: build it (cargo build --release --bin sluice) or give --bin PATH" >&2
  exit 1
fi
if [[ -n $SHARD_CPUS && ! $SHARD_CPUS =~ ^[0-9]+(-[0-9]+)?(,[0-9]+(-[0-9]+)?)*$ ]]; then
  echo "install.sh: --shard-cpus $SHARD_CPUS: expected a CPU list like 1-15 or 2,4,6-9" >&2
  exit 2
fi
[[ $PREFIX == /* ]] || PREFIX=$PWD/$PREFIX
PREFIX=${PREFIX%/}
SYSTEM=0
[[ -z $PREFIX ]] && SYSTEM=1
if ((SYSTEM && !DRY_RUN)) && (($(id -u) != 0)); then
  echo "install.sh: installing into / needs root (or --prefix DIR, or --dry-run)" >&2
  exit 1
fi
if ((ENABLE && !SYSTEM)); then
  echo "install.sh: --enable works only without --prefix" >&2
  exit 2
fi

step() {
  if ((DRY_RUN)); then
    echo "would: $*"
  else
    echo "+ $*"
    "$@"
  fi
}

# install_file SRC DEST MODE [keep]: "keep" leaves an existing DEST alone.
install_file() {
  local src=$1 dest=$PREFIX$2 mode=$3 keep=${4:-}
  if [[ -n $keep && -e $dest ]]; then
    if cmp -s "$src" "$dest"; then
      echo "unchanged: $dest"
    else
      echo "kept: $dest (differs from $src; compare them after an upgrade)"
    fi
    return
  fi
  if [[ -e $dest ]] && cmp -s "$src" "$dest"; then
    echo "unchanged: $dest"
    return
  fi
  step install -D -m "$mode" "$src" "$dest"
}

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# The environment file: commented examples only.
cat >"$TMP/default" <<'EOF'
# Environment of sluice.service. SLUICE_<KEY>=value sets a broker setting
# (the key upper-cased, dots as underscores) and overrides
# /etc/sluice/sluice.properties, e.g.:
#SLUICE_ADVERTISED_LISTENERS=PLAINTEXT://broker1.example.com:9092
#SLUICE_NUM_PARTITIONS=3
# Log filter (tracing EnvFilter syntax): error, warn, info, debug, trace.
#SLUICE_LOG=info
EOF

echo "installing Sluice into ${PREFIX:-/}$( ((DRY_RUN)) && echo ' (dry run)')"

# 1. The system user (real installs only).
if ((SYSTEM)); then
  if getent passwd sluice >/dev/null 2>&1; then
    echo "unchanged: user sluice"
  else
    nologin=/usr/sbin/nologin
    [[ -x $nologin ]] || nologin=/bin/false
    step useradd --system --user-group --home-dir /var/lib/sluice --no-create-home --shell "$nologin" sluice
  fi
fi

# 2. Binary, config, unit, tuning tools.
install_file "$BIN" /usr/local/bin/sluice 0755
install_file "$REPO/deploy/sluice.properties" /etc/sluice/sluice.properties 0644 keep
install_file "$TMP/default" /etc/default/sluice 0644 keep
install_file "$REPO/deploy/sluice.service" /etc/systemd/system/sluice.service 0644
install_file "$REPO/scripts/tune.sh" /usr/local/share/sluice/tune.sh 0755
for f in "$REPO"/kernel-tuning/*; do
  install_file "$f" "/usr/local/share/sluice/kernel-tuning/${f##*/}" 0644
done

if [[ -n $SHARD_CPUS ]]; then
  ncpus=0
  IFS=, read -ra parts <<<"$SHARD_CPUS"
  for p in "${parts[@]}"; do
    if [[ $p == *-* ]]; then
      ncpus=$((ncpus + ${p#*-} - ${p%-*} + 1))
    else
      ncpus=$((ncpus + 1))
    fi
  done
  cat >"$TMP/cpus.conf" <<EOF
# Written by deploy/install.sh --shard-cpus $SHARD_CPUS: the broker runs on
# these CPUs only, one shard each; the others are left to NIC and disk
# interrupts (scripts/tune.sh --irq-cpus).
[Service]
CPUAffinity=$SHARD_CPUS
Environment=SLUICE_CORES=$ncpus
EOF
  install_file "$TMP/cpus.conf" /etc/systemd/system/sluice.service.d/cpus.conf 0644
fi

# 3. The data dir (the unit's StateDirectory= creates /var/lib/sluice too).
if [[ -d $PREFIX/var/lib/sluice/data ]]; then
  echo "unchanged: $PREFIX/var/lib/sluice/data"
else
  step install -d -m 0750 "$PREFIX/var/lib/sluice" "$PREFIX/var/lib/sluice/data"
fi
if ((SYSTEM)); then
  step chown sluice:sluice /var/lib/sluice /var/lib/sluice/data
fi

# 4. Tell systemd.
if ((SYSTEM)) && [[ -d /run/systemd/system ]]; then
  step systemctl daemon-reload
  if ((ENABLE)); then
    step systemctl enable --now sluice.service
  else
    echo "start it with: systemctl enable --now sluice"
  fi
elif ((SYSTEM)); then
  echo "systemd is not running here: start the broker with"
  echo "  sudo -u sluice /usr/local/bin/sluice serve --config /etc/sluice/sluice.properties"
fi
echo "check the host with: $PREFIX/usr/local/share/sluice/tune.sh --check"
