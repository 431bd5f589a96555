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
cargo test --release --workspace "$@"
