#!/usr/bin/env bash
# Installs the Kafka clients that the integration tests (tests/*.rs) drive:
#   - kcat (Debian package), only if `kcat` is not on PATH;
#   - a Python venv with confluent-kafka, kafka-python and aiokafka (pinned);
#   - kafkajs (pinned) in a node_modules outside the repo.
# Everything goes under $HOME/.cache (downloads are cached there too); nothing
# is written into the repository. Idempotent: a second run only checks stamps.
#
# The tests find the clients at these paths (see tests/common/mod.rs):
#   venv:         ${SLUICE_TEST_CACHE:-$HOME/.cache/sluice-test}/venv
#   node_modules: ${SLUICE_TEST_CACHE:-$HOME/.cache/sluice-test}/node/node_modules
set -euo pipefail

CACHE="${SLUICE_TEST_CACHE:-$HOME/.cache/sluice-test}"
VENV="$CACHE/venv"
NODE_PREFIX="$CACHE/node"
PYTHON="${PYTHON:-python3}"

# Pinned client versions (see shared kafka-compat notes).
PY_REQUIREMENTS=(
  "confluent-kafka==2.16.1"
  "kafka-python==3.0.12"
  "aiokafka==0.14.0"
)
KAFKAJS_VERSION="2.2.4"

export PIP_CACHE_DIR="${PIP_CACHE_DIR:-$HOME/.cache/pip}"
export PIP_DISABLE_PIP_VERSION_CHECK=1
export npm_config_cache="${npm_config_cache:-$HOME/.cache/npm}"
export npm_config_update_notifier=false

log() { echo "test-deps: $*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    log "need root (or sudo) to run: $*"
    return 1
  fi
}

install_kcat() {
  if command -v kcat >/dev/null 2>&1; then
    return 0
  fi
  log "installing kcat (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  # On a fresh machine the package lists may be empty: update once, then retry.
  if ! as_root apt-get install -y -q kcat >/dev/null; then
    as_root apt-get update -q >/dev/null
    as_root apt-get install -y -q kcat >/dev/null
  fi
  command -v kcat >/dev/null 2>&1 || { log "kcat still missing after apt-get install"; return 1; }
}

install_python_clients() {
  local stamp="$VENV/.sluice-requirements" want
  want="$(printf '%s\n' "${PY_REQUIREMENTS[@]}")"
  if [ -x "$VENV/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] \
    && "$VENV/bin/python" -c 'import confluent_kafka, kafka, aiokafka' >/dev/null 2>&1; then
    return 0
  fi
  log "creating Python venv at $VENV with: ${PY_REQUIREMENTS[*]}"
  command -v "$PYTHON" >/dev/null 2>&1 || { log "$PYTHON not found"; return 1; }
  rm -rf "$VENV"
  mkdir -p "$CACHE"
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q "${PY_REQUIREMENTS[@]}"
  "$VENV/bin/python" -c 'import confluent_kafka, kafka, aiokafka'
  printf '%s\n' "$want" >"$stamp"
}

install_kafkajs() {
  local pkg="$NODE_PREFIX/node_modules/kafkajs/package.json"
  if [ -f "$pkg" ] && grep -q "\"version\": \"$KAFKAJS_VERSION\"" "$pkg"; then
    return 0
  fi
  command -v npm >/dev/null 2>&1 || { log "npm not found: the kafkajs tests need node and npm"; return 1; }
  log "installing kafkajs@$KAFKAJS_VERSION into $NODE_PREFIX"
  mkdir -p "$NODE_PREFIX"
  npm install --prefix "$NODE_PREFIX" --no-audit --no-fund --save-exact --loglevel=error \
    "kafkajs@$KAFKAJS_VERSION" >/dev/null
  grep -q "\"version\": \"$KAFKAJS_VERSION\"" "$pkg" || { log "kafkajs $KAFKAJS_VERSION not installed"; return 1; }
}

install_kcat
install_python_clients
install_kafkajs
