#!/usr/bin/env bash
# Runs the whole test suite for an ARM target under qemu-user, without Docker:
#
#   scripts/test-arm.sh [TARGET] [cargo test args...]
#       TARGET: aarch64-unknown-linux-gnu (default) or armv7-unknown-linux-gnueabihf
#
# The tests are cross-compiled (rustup target + Debian's cross gcc), then every test binary and
# every `argus` process the tests start runs under qemu-user (scripts/qemu-run.sh). Servers the
# tests talk to (the loopback RTSP server, the fake Protect console and AI providers) run
# natively or inside the test binary, over real loopback sockets. On aarch64 the detector tests
# use ONNX Runtime's aarch64 build from PyPI; armv7 has none and uses tract.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${1:-aarch64-unknown-linux-gnu}"
shift || true
scripts/cross-deps.sh "$target"
scripts/make-model.sh >/dev/null
# shellcheck source=scripts/cross-env.sh
. scripts/cross-env.sh "$target"
runner="$(pwd)/scripts/qemu-run.sh"
_T="$(echo "${target//-/_}" | tr '[:lower:]' '[:upper:]')"
export "CARGO_TARGET_${_T}_RUNNER=$runner"
export ARGUS_TEST_EXEC_WRAPPER="$runner"
features=()
case "$target" in
  aarch64-unknown-linux-gnu)
    ORT_DYLIB_PATH="$(scripts/fetch-onnxruntime.sh aarch64)"
    export ORT_DYLIB_PATH
    ;;
  armv7-unknown-linux-gnueabihf) unset ORT_DYLIB_PATH ;;
esac
start=$SECONDS
cargo test --locked --target "$target" "${features[@]}" --no-run
echo "test-arm: built the $target tests in $((SECONDS - start)) s" >&2
start=$SECONDS
cargo test --locked --target "$target" "${features[@]}" "$@"
echo "test-arm: ran the $target tests under qemu in $((SECONDS - start)) s" >&2
