#!/usr/bin/env bash
# Fetches the ONNX Runtime shared library for a target from the onnxruntime wheel on PyPI
# (ort's own download needs a host this build environment cannot reach), into
# target/onnxruntime/<arch>/libonnxruntime.so, and prints that path.
#
#   scripts/fetch-onnxruntime.sh [x86_64|aarch64]     (default: this machine's)
#
# armv7 has no ONNX Runtime wheel; that target uses the pure-Rust fallback (see README).
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION="${ORT_VERSION:-1.31.1}"
ARCH="${1:-$(uname -m)}"
case "$ARCH" in
  x86_64|aarch64) ;;
  *) echo "no ONNX Runtime wheel for $ARCH (x86_64 and aarch64 only)" >&2; exit 2 ;;
esac
OUT="target/onnxruntime/$ARCH"
LIB="$OUT/libonnxruntime.so"
if [ ! -f "$LIB" ]; then
  TMP="$(mktemp -d)"
  trap 'rm -rf "$TMP"' EXIT
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.11 \
    --platform "manylinux_2_28_$ARCH" "onnxruntime==$VERSION" -d "$TMP" >&2
  python3 - "$TMP"/onnxruntime-*.whl "$TMP" <<'PY'
import sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
name = next(n for n in z.namelist() if n.startswith("onnxruntime/capi/libonnxruntime.so."))
open(sys.argv[2] + "/libonnxruntime.so", "wb").write(z.read(name))
PY
  mkdir -p "$OUT"
  mv "$TMP/libonnxruntime.so" "$LIB"
fi
echo "$(pwd)/$LIB"
