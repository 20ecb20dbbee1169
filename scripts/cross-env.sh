#!/usr/bin/env bash
# Source this with a Rust target triple to cross-compile without Docker, using Debian's cross gcc
# and qemu-user as the test runner:  . scripts/cross-env.sh aarch64-unknown-linux-gnu
# It also sets CROSS_CONFIG so `cross` (which needs Docker) reads our lowercase cross.toml.
target="${1:?usage: . scripts/cross-env.sh TARGET}"
case "$target" in
  aarch64-unknown-linux-gnu) gnu=aarch64-linux-gnu; qemu=qemu-aarch64-static ;;
  armv7-unknown-linux-gnueabihf) gnu=arm-linux-gnueabihf; qemu=qemu-arm-static ;;
  *) echo "unsupported target: $target (aarch64-unknown-linux-gnu, armv7-unknown-linux-gnueabihf)" >&2; return 1 2>/dev/null || exit 1 ;;
esac
_t="${target//-/_}"
_T="$(echo "$_t" | tr '[:lower:]' '[:upper:]')"
export "CC_${_t}=${gnu}-gcc" "CXX_${_t}=${gnu}-g++" "AR_${_t}=${gnu}-ar"
export "CARGO_TARGET_${_T}_LINKER=${gnu}-gcc"
export "CARGO_TARGET_${_T}_RUNNER=${qemu} -L /usr/${gnu}"
export CROSS_CONFIG="${CROSS_CONFIG:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/cross.toml}"
