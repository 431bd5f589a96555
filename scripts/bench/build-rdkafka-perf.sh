#!/usr/bin/env bash
# Builds librdkafka's own load tool, rdkafka_performance, from the librdkafka
# source that the `rdkafka-sys` crate vendors (crates.io is reachable; the
# librdkafka repository is not). Everything goes under
# ${SLUICE_BENCH_CACHE:-~/.cache/sluice-bench}; nothing into the repository.
# Prints the path of the binary on stdout. Idempotent.
set -euo pipefail

RDKAFKA_SYS_VERSION="${RDKAFKA_SYS_VERSION:-4.10.0+2.12.1}"   # librdkafka 2.12.1
CACHE="${SLUICE_BENCH_CACHE:-$HOME/.cache/sluice-bench}"
OUT="$CACHE/librdkafka-${RDKAFKA_SYS_VERSION#*+}"
BIN="$OUT/examples/rdkafka_performance"

log() { echo "build-rdkafka-perf: $*" >&2; }

if [ -x "$BIN" ]; then
  echo "$BIN"
  exit 0
fi

# 1. Fetch the crate with cargo itself (a throwaway manifest; `cargo fetch`
#    unpacks it under $CARGO_HOME/registry/src).
FETCH="$CACHE/rdkafka-fetch"
mkdir -p "$FETCH/src"
cat >"$FETCH/Cargo.toml" <<TOML
[package]
name = "rdkafka-src-fetch"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
rdkafka-sys = { version = "=${RDKAFKA_SYS_VERSION}", default-features = false }
TOML
echo 'fn main() {}' >"$FETCH/src/main.rs"
log "fetching rdkafka-sys $RDKAFKA_SYS_VERSION with cargo"
(cd "$FETCH" && cargo fetch -q)
SRC="$(find "${CARGO_HOME:-$HOME/.cargo}"/registry/src -maxdepth 3 -type d -path "*/rdkafka-sys-${RDKAFKA_SYS_VERSION}/librdkafka" | head -1)"
[ -f "$SRC/configure" ] || { log "librdkafka source not found under the cargo registry"; exit 1; }

# 2. Build a private copy (the registry source must stay pristine).
rm -rf "$OUT.tmp"
cp -r "$SRC" "$OUT.tmp"
chmod +x "$OUT.tmp/configure" "$OUT.tmp"/mklove/*.sh 2>/dev/null || true
log "building rdkafka_performance in $OUT (a few minutes)"
(
  cd "$OUT.tmp"
  ./configure --disable-curl --disable-gssapi --disable-zstd --disable-ssl --disable-sasl >sluice-configure.txt 2>&1 \
    || { tail -30 sluice-configure.txt >&2; exit 1; }
  make -j"$(nproc)" libs >sluice-make.txt 2>&1 || { tail -30 sluice-make.txt >&2; exit 1; }
  make -C examples rdkafka_performance >>sluice-make.txt 2>&1 || { tail -30 sluice-make.txt >&2; exit 1; }
)
rm -rf "$OUT"
mv "$OUT.tmp" "$OUT"
[ -x "$BIN" ] || { log "build finished but $BIN is missing"; exit 1; }
echo "$BIN"
