#!/usr/bin/env bash
# Builds the Debian package for Raspberry Pi OS / Jetson Linux with cargo-deb, without Docker:
#
#   scripts/build-deb.sh [TARGET]    aarch64-unknown-linux-gnu (default, arm64: with ONNX
#                                    Runtime) or armv7-unknown-linux-gnueabihf (armhf: tract)
#
# It installs the binary (/usr/bin/argus), the systemd unit (argus.service, enabled and started
# on install), the default config (/etc/argus/argus.toml, a conffile), the model
# (/usr/share/argus/models) and on arm64 ONNX Runtime (/usr/lib/argus/libonnxruntime.so), and
# creates the system user "argus". Prints the .deb's path; `dpkg-deb --info/--contents` show it.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${1:-aarch64-unknown-linux-gnu}"
scripts/build-arm.sh "$target" >/dev/null
command -v cargo-deb >/dev/null || cargo install cargo-deb --locked --version 3.8.0
variant=()
[ "$target" = aarch64-unknown-linux-gnu ] && variant=(--variant arm64)
mkdir -p target/debian
cargo deb --target "$target" --no-build --no-strip "${variant[@]}" -o target/debian/ | tail -1
