#!/usr/bin/env bash
# Runs a program under qemu-user when it is an ARM binary (aarch64 or 32-bit ARM), else directly.
# scripts/test-arm.sh makes this cargo's target runner and the tests' wrapper for the `argus`
# binary they start.
#
# ONNX Runtime reads /proc/cpuinfo when it loads; under qemu-user it would read the x86 host's
# and crash. As root, the program therefore runs in a private mount namespace where an ARM
# cpuinfo (a 4-core Cortex-A72, as on a Raspberry Pi 4) is bind-mounted over /proc/cpuinfo.
set -euo pipefail
bin="$1"
shift
machine="$(od -An -tx1 -j18 -N2 "$bin" 2>/dev/null | tr -d ' \n' || true)"
case "$machine" in
  # A Cortex-A72 (the Raspberry Pi 4's core, as the cpuinfo below says): qemu's default "max" CPU
  # offers SVE and SME, ONNX Runtime then picks kernels qemu emulates very slowly (one detector
  # test: over 600 s, against 50 s as a Cortex-A72), and no board we ship to has them anyway.
  b700) qemu=qemu-aarch64-static; sysroot=/usr/aarch64-linux-gnu; export QEMU_CPU="${QEMU_CPU:-cortex-a72}" ;;
  2800) qemu=qemu-arm-static; sysroot=/usr/arm-linux-gnueabihf ;;
  *) exec "$bin" "$@" ;;
esac
cpuinfo="${TMPDIR:-/tmp}/argus-qemu-cpuinfo-$machine"
if [ ! -s "$cpuinfo" ]; then
  tmp="$(mktemp "${cpuinfo}.XXXXXX")"
  for n in 0 1 2 3; do
    if [ "$machine" = b700 ]; then
      printf 'processor\t: %s\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm crc32 cpuid\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: 0xd08\nCPU revision\t: 3\n\n' "$n"
    else
      printf 'processor\t: %s\nmodel name\t: ARMv7 Processor rev 3 (v7l)\nBogoMIPS\t: 108.00\nFeatures\t: half thumb fastmult vfp edsp neon vfpv3 tls vfpv4 idiva idivt vfpd32 lpae evtstrm crc32\nCPU implementer\t: 0x41\nCPU architecture: 7\nCPU variant\t: 0x0\nCPU part\t: 0xd08\nCPU revision\t: 3\n\n' "$n"
    fi
  done >"$tmp"
  mv "$tmp" "$cpuinfo"
fi
if [ "$(id -u)" = 0 ] && command -v unshare >/dev/null &&
  unshare -m true 2>/dev/null; then
  exec unshare -m sh -c 'mount --bind "$0" /proc/cpuinfo && exec "$@"' \
    "$cpuinfo" "$qemu" -L "$sysroot" "$bin" "$@"
fi
exec "$qemu" -L "$sysroot" "$bin" "$@"
