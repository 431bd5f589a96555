#!/usr/bin/env bash
# Runs Sluice's whole test suite: unit, property, crash and integration tests.
# Installs what the tests need first (idempotent; downloads cached under ~/.cache).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -x scripts/test-deps.sh ]; then
  scripts/test-deps.sh
fi

# The broker and the tests in release mode: crash and integration tests
# drive real processes, and debug builds make them slow.
cargo build --release --workspace --all-targets

log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
cargo test --release --workspace "$@" 2>&1 | tee "$log" || status=$?

# One closing line over every test binary (cargo prints one per binary).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed/) p += $(i-1); if ($i ~ /^failed/) f += $(i-1) } }
     END { printf "%d passed, %d failed\n", p, f }' "$log"
exit "$status"
