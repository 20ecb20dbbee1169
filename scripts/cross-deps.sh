#!/usr/bin/env bash
# Installs what cross-building needs, when missing: Debian's cross compilers (which also bring
# the targets' kernel headers for bindgen), qemu-user to run ARM binaries, the Rust targets.
#
#   scripts/cross-deps.sh TARGET...      e.g. aarch64-unknown-linux-gnu
set -euo pipefail
cd "$(dirname "$0")/.."
pkgs=(qemu-user-static)
for t in "$@"; do
  case "$t" in
    aarch64-unknown-linux-gnu) pkgs+=(gcc-aarch64-linux-gnu g++-aarch64-linux-gnu libc6-dev-arm64-cross) ;;
    armv7-unknown-linux-gnueabihf) pkgs+=(gcc-arm-linux-gnueabihf g++-arm-linux-gnueabihf libc6-dev-armhf-cross) ;;
    *) echo "cross-deps: unsupported target $t (aarch64-unknown-linux-gnu, armv7-unknown-linux-gnueabihf)" >&2; exit 2 ;;
  esac
done
scripts/deps.sh "${pkgs[@]}"
installed="$(rustup target list --installed)"
for t in "$@"; do
  grep -qx "$t" <<<"$installed" || rustup target add "$t"
done
