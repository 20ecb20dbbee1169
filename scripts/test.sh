#!/usr/bin/env bash
# Runs every test: unit tests and the integration suite (real server, SQLite, HTTP, WebSocket).
# Installs what the tests need first, so it works on a fresh Debian/Ubuntu machine.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cargo test --locked "$@"
