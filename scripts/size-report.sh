#!/usr/bin/env bash
# Prints the stripped size of the release `argus` per target and its largest contributors
# (cargo-bloat, by crate and by function), against the size budget.
#
#   scripts/size-report.sh [TARGET...]    default: aarch64-unknown-linux-gnu
#                                         armv7-unknown-linux-gnueabihf
#
# The binary is built once per target with the release profile but unstripped (cargo-bloat
# needs the symbols), in target/size/; the size reported is that of a copy stripped with the
# target's strip, which is what `strip = true` ships. The ONNX model and ONNX Runtime are files
# installed beside the binary, not part of it; their sizes are printed too.
set -euo pipefail
cd "$(dirname "$0")/.."
targets=("$@")
((${#targets[@]})) || targets=(aarch64-unknown-linux-gnu armv7-unknown-linux-gnueabihf)
budget_aarch64=$((12 * 1024 * 1024))
scripts/cross-deps.sh "${targets[@]}"
command -v cargo-bloat >/dev/null || cargo install cargo-bloat --locked --version 0.12.1
export CARGO_PROFILE_RELEASE_STRIP=false CARGO_TARGET_DIR=target/size
status=0
for t in "${targets[@]}"; do
  (
    # shellcheck source=scripts/cross-env.sh
    . scripts/cross-env.sh "$t"
    case "$t" in
      aarch64-*) strip=aarch64-linux-gnu-strip ;;
      armv7-*) strip=arm-linux-gnueabihf-strip ;;
    esac
    echo "== $t"
    cargo bloat --release --locked --target "$t" --bin argus --crates -n 20 2>/dev/null
    cargo bloat --release --locked --target "$t" --bin argus -n 15 2>/dev/null | tail -n +1
    bin="target/size/$t/release/argus"
    $strip -o "$bin.stripped" "$bin"
    size=$(stat -c %s "$bin.stripped")
    awk -v s="$size" 'BEGIN { printf "stripped binary: %d bytes (%.2f MiB)\n", s, s / 1048576 }'
    if [ "$t" = aarch64-unknown-linux-gnu ]; then
      if ((size > budget_aarch64)); then
        echo "OVER BUDGET: the aarch64 binary may be at most 12 MiB" >&2
        exit 1
      fi
      echo "budget: 12 MiB, $(((budget_aarch64 - size) / 1024)) KiB left"
    fi
  ) || status=1
done
echo "== installed beside the binary"
scripts/make-model.sh --model yolov4-tiny --int8 >/dev/null
stat -c '%n: %s bytes' models/yolov4-tiny-416-int8.onnx models/yolov4-tiny-416.onnx
ort="$(scripts/fetch-onnxruntime.sh aarch64)"
echo "ONNX Runtime 1.31.1 (aarch64): $(stat -c %s "$ort") bytes"
exit $status
