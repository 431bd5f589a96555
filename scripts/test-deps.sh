#!/usr/bin/env bash
# Installs the Kafka clients that the integration tests (tests/*.rs) drive:
#   - Debian packages (kcat, shellcheck, systemd, a JDK, Maven), only if missing;
#   - a Python venv with confluent-kafka, kafka-python, aiokafka and pyspark (pinned);
#   - kafkajs (pinned) in a node_modules outside the repo;
#   - from Maven Central (mvn dependency:copy-dependencies on the poms in
#     tests/deps/): the Java client kafka-clients 4.3.0 with its run-time jars,
#     Spark's Kafka connector matching pyspark, and Apache Kafka 4.3.0 itself
#     (broker and tools, the reference broker and the tutorials' tools);
#   - the Go modules of tests/go (franz-go, sarama) from the Go module proxy.
# Everything goes under $HOME/.cache (downloads are cached there too: Maven's
# repository, pip's, npm's and Go's caches); nothing is written into the
# repository. Idempotent: a second run only checks stamps.
#
# The tests find the clients at these paths (see tests/common/mod.rs):
#   venv:         ${SLUICE_TEST_CACHE:-$HOME/.cache/sluice-test}/venv
#   node_modules: ${SLUICE_TEST_CACHE:-$HOME/.cache/sluice-test}/node/node_modules
#   Java jars:    ${SLUICE_TEST_CACHE:-$HOME/.cache/sluice-test}/jars/*.jar
#   Spark jars:   ${SLUICE_TEST_CACHE:-$HOME/.cache/sluice-test}/spark-jars/*.jar
#   Kafka:        ${SLUICE_TEST_CACHE:-$HOME/.cache/sluice-test}/kafka/libs/*.jar
#   Go caches:    ${SLUICE_TEST_CACHE:-$HOME/.cache/sluice-test}/go/{mod,build}
set -euo pipefail

CACHE="${SLUICE_TEST_CACHE:-$HOME/.cache/sluice-test}"
VENV="$CACHE/venv"
NODE_PREFIX="$CACHE/node"
PYTHON="${PYTHON:-python3}"

# Pinned client versions (see shared kafka-compat notes). pyspark's version
# must equal the connector's in tests/deps/spark/pom.xml.
PYSPARK_VERSION="4.1.1"
PY_REQUIREMENTS=(
  "confluent-kafka==2.16.1"
  "kafka-python==3.0.12"
  "aiokafka==0.14.0"
  "pyspark==$PYSPARK_VERSION"
)
KAFKAJS_VERSION="2.2.4"

DEPS_POMS="$(cd "$(dirname "$0")/.." && pwd)/tests/deps"
GO_MODULE="$(cd "$(dirname "$0")/.." && pwd)/tests/go"
M2_REPO="${SLUICE_M2_REPO:-$HOME/.cache/sluice-test-m2}"
export GOMODCACHE="${GOMODCACHE:-$CACHE/go/mod}"
export GOCACHE="${GOCACHE:-$CACHE/go/build}"
export GOFLAGS="${GOFLAGS:--modcacherw}"

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
  for pair in kcat:kcat shellcheck:shellcheck systemd-analyze:systemd javac:openjdk-17-jdk-headless mvn:maven; do
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
  for pair in kcat:kcat shellcheck:shellcheck systemd-analyze:systemd javac:openjdk-17-jdk-headless mvn:maven; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || { log "${pair%%:*} still missing after apt-get install"; return 1; }
  done
}

install_python_clients() {
  local stamp="$VENV/.sluice-requirements" want
  want="$(printf '%s\n' "${PY_REQUIREMENTS[@]}")"
  if [ -x "$VENV/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] \
    && "$VENV/bin/python" -c 'import confluent_kafka, kafka, aiokafka, pyspark' >/dev/null 2>&1; then
    return 0
  fi
  command -v "$PYTHON" >/dev/null 2>&1 || { log "$PYTHON not found"; return 1; }
  mkdir -p "$CACHE"
  # A working venv is updated in place (pinned versions: pip changes only what
  # differs), so tests running meanwhile keep their interpreter.
  if ! "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1; then
    log "creating Python venv at $VENV"
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV"
  fi
  log "installing into $VENV: ${PY_REQUIREMENTS[*]}"
  "$VENV/bin/python" -m pip install -q "${PY_REQUIREMENTS[@]}"
  "$VENV/bin/python" -c 'import confluent_kafka, kafka, aiokafka, pyspark'
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

# mvn dependency:copy-dependencies of tests/deps/NAME/pom.xml into DEST
# (replaced whole, through a temp dir); EXTRA are more mvn -D options. The
# stamp is the pom itself, so editing a version re-resolves.
maven_copy() {
  local name="$1" dest="$2" check="$3"
  shift 3
  local pom="$DEPS_POMS/$name/pom.xml" stamp="$dest/.sluice-pom" tmp
  if [ -f "$stamp" ] && cmp -s "$pom" "$stamp" && [ -f "$dest/$check" ]; then
    return 0
  fi
  command -v mvn >/dev/null 2>&1 || { log "mvn not found"; return 1; }
  log "resolving $name (Maven Central) into $dest"
  mkdir -p "$CACHE"
  tmp="$(mktemp -d "$CACHE/$name.tmp.XXXXXX")"
  chmod 755 "$tmp"
  if ! mvn -q -B -f "$pom" -Dmaven.repo.local="$M2_REPO" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$tmp" "$@" >"$tmp/.mvn.log" 2>&1; then
    log "mvn failed for $pom:"
    tail -30 "$tmp/.mvn.log" >&2
    rm -rf "$tmp"
    return 1
  fi
  rm -f "$tmp/.mvn.log"
  [ -f "$tmp/$check" ] || { log "$name: $check missing after mvn"; rm -rf "$tmp"; return 1; }
  cp "$pom" "$tmp/.sluice-pom"
  mkdir -p "$(dirname "$dest")"
  rm -rf "$dest"
  mv "$tmp" "$dest"
}

install_java_jars() {
  maven_copy java-client "$CACHE/jars" kafka-clients-4.3.0.jar
}

install_spark_jars() {
  maven_copy spark "$CACHE/spark-jars" "spark-sql-kafka-0-10_2.13-$PYSPARK_VERSION.jar" \
    -DincludeArtifactIds=spark-sql-kafka-0-10_2.13,spark-token-provider-kafka-0-10_2.13,kafka-clients,commons-pool2
}

install_kafka() {
  maven_copy kafka "$CACHE/kafka/libs" kafka_2.13-4.3.0.jar
}

install_go_modules() {
  [ -f "$GO_MODULE/go.mod" ] || return 0
  command -v go >/dev/null 2>&1 || { log "go not found: the Go client tests need a Go toolchain"; return 1; }
  local stamp="$CACHE/go/.sluice-go-sum"
  if [ -f "$stamp" ] && cmp -s "$GO_MODULE/go.sum" "$stamp"; then
    return 0
  fi
  log "downloading the Go modules of tests/go into $GOMODCACHE"
  mkdir -p "$CACHE/go"
  (cd "$GO_MODULE" && go mod download)
  cp "$GO_MODULE/go.sum" "$stamp"
}

install_apt_tools
install_python_clients
install_kafkajs
install_java_jars
install_spark_jars
install_kafka
install_go_modules
