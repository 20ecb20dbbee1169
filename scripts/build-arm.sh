#!/usr/bin/env bash
# Builds the release `argus` for an ARM board without Docker (rustup target + Debian's cross
# gcc), and lays it out with what it loads at run time:
#
#   scripts/build-arm.sh [TARGET]     aarch64-unknown-linux-gnu (default) or
#                                     armv7-unknown-linux-gnueabihf
#
# Output: target/TARGET/release/argus and target/dist/TARGET/ holding argus, models/ (the
# detector) and, on aarch64, libonnxruntime.so (from PyPI's onnxruntime wheel); armv7 has no
# ONNX Runtime build and uses the built-in tract backend. Copy the dist folder to the board and
# run ./argus there (it finds the model and the library beside itself).
set -euo pipefail
cd "$(dirname "$0")/.."
target="${1:-aarch64-unknown-linux-gnu}"
scripts/cross-deps.sh "$target"
# shellcheck source=scripts/cross-env.sh
. scripts/cross-env.sh "$target"
start=$SECONDS
cargo build --release --locked --target "$target" --bin argus
echo "build-arm: built in $((SECONDS - start)) s" >&2
# The profile's `strip = true` leaves cross-linked binaries unstripped here (rustc does not run
# the target's strip), so strip with the cross binutils: about 2.4 MB less on aarch64.
case "$target" in
  aarch64-*) cross_strip=aarch64-linux-gnu-strip ;;
  armv7-*) cross_strip=arm-linux-gnueabihf-strip ;;
esac
"$cross_strip" "target/$target/release/argus"
echo "build-arm: target/$target/release/argus is $(stat -c %s "target/$target/release/argus") bytes stripped" >&2
scripts/make-model.sh --model yolov4-tiny --int8 >/dev/null
dist="target/dist/$target"
rm -rf "$dist"
mkdir -p "$dist/models"
cp "target/$target/release/argus" "$dist/"
cp models/yolov4-tiny-416-int8.toml models/yolov4-tiny-416-int8.onnx models/yolov4-tiny-416.toml \
  models/yolov4-tiny-416.onnx models/coco.names models/MODELS.md "$dist/models/"
if [ "$target" = aarch64-unknown-linux-gnu ]; then
  cp "$(scripts/fetch-onnxruntime.sh aarch64)" "$dist/libonnxruntime.so"
fi
cp -r assets "$dist/" 2>/dev/null || true
ls -l "$dist" "$dist/models" >&2
echo "$(pwd)/$dist/argus"
