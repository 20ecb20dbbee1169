#!/usr/bin/env bash
# Builds the .deb for each target (scripts/build-deb.sh) and checks it: control fields, the
# files it installs, the conffile, the maintainer scripts and the systemd unit; then unpacks it
# and runs the packaged binary under qemu-user with the packaged model and ONNX Runtime until
# it serves /api/v1/system/health with the detector loaded.
#
#   scripts/check-deb.sh [TARGET...]     default: aarch64-unknown-linux-gnu
set -euo pipefail
cd "$(dirname "$0")/.."
targets=("$@")
((${#targets[@]})) || targets=(aarch64-unknown-linux-gnu)
fail() { echo "check-deb: $*" >&2; exit 1; }
for t in "${targets[@]}"; do
  start=$SECONDS
  deb="$(scripts/build-deb.sh "$t" | tail -n1)"
  [ -f "$deb" ] || fail "no package built for $t"
  echo "== $deb (built in $((SECONDS - start)) s, $(stat -c %s "$deb") bytes)"
  dpkg-deb --info "$deb"
  contents="$(dpkg-deb --contents "$deb")"
  echo "$contents"
  case "$t" in
    aarch64-*) arch=arm64 ;;
    armv7-*) arch=armhf ;;
  esac
  [ "$(dpkg-deb --field "$deb" Architecture)" = "$arch" ] || fail "Architecture is not $arch"
  [ "$(dpkg-deb --field "$deb" Package)" = argus-edge ] || fail "Package is not argus-edge"
  dpkg-deb --field "$deb" Depends | grep -q adduser || fail "Depends lacks adduser"
  want=(./usr/bin/argus ./etc/argus/argus.toml
    ./usr/share/argus/models/yolov4-tiny-416-int8.toml ./usr/share/argus/models/yolov4-tiny-416-int8.onnx
    ./usr/share/argus/models/yolov4-tiny-416.toml ./usr/share/argus/models/yolov4-tiny-416.onnx
    ./usr/share/argus/models/coco.names argus.service)
  [ "$arch" = arm64 ] && want+=(./usr/lib/argus/libonnxruntime.so)
  for f in "${want[@]}"; do
    grep -q -- "$f\$" <<<"$contents" || fail "$f is not in the package"
  done
  [ "$arch" = armhf ] && grep -q libonnxruntime <<<"$contents" && fail "armhf must not ship ONNX Runtime"
  ctl="$(mktemp -d)"
  root="$(mktemp -d)"
  trap 'rm -rf "$ctl" "$root"; [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null || true' EXIT
  dpkg-deb --control "$deb" "$ctl"
  grep -qx /etc/argus/argus.toml "$ctl/conffiles" || fail "argus.toml is not a conffile"
  grep -q "adduser --system" "$ctl/postinst" || fail "postinst does not create the user"
  grep -q "systemctl\|deb-systemd" "$ctl/postinst" || fail "postinst does not enable the unit"
  dpkg-deb --extract "$deb" "$root"
  unit="$(find "$root" -name argus.service | head -n1)"
  grep -q '^Type=notify' "$unit" || fail "the unit is not Type=notify"
  # The packaged binary, model and runtime, run as a new user would (under qemu here).
  [ "$(od -An -tx1 -j18 -N2 "$root/usr/bin/argus" | tr -d ' \n')" = "$([ "$arch" = arm64 ] && echo b700 || echo 2800)" ] ||
    fail "usr/bin/argus is not a $arch binary"
  readelf="$([ "$arch" = arm64 ] && echo aarch64-linux-gnu-readelf || echo arm-linux-gnueabihf-readelf)"
  if "$readelf" -S "$root/usr/bin/argus" | grep -q '\.symtab'; then
    fail "usr/bin/argus is not stripped"
  fi
  port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
  args=(--listen "127.0.0.1:$port" --data-dir "$root/var/lib/argus"
    --model "$root/usr/share/argus/models/$([ "$arch" = arm64 ] && echo yolov4-tiny-416-int8 || echo yolov4-tiny-416).toml")
  [ "$arch" = arm64 ] && args+=(--onnxruntime "$root/usr/lib/argus/libonnxruntime.so")
  env -u ARGUS_CONFIG scripts/qemu-run.sh "$root/usr/bin/argus" "${args[@]}" serve >"$root/argus.log" 2>&1 &
  pid=$!
  health=""
  for _ in $(seq 1 240); do
    health="$(curl -fsS "http://127.0.0.1:$port/api/v1/system/health" 2>/dev/null)" && break
    kill -0 "$pid" 2>/dev/null || { cat "$root/argus.log" >&2; fail "the packaged binary exited"; }
    sleep 0.5
  done
  [ -n "$health" ] || { cat "$root/argus.log" >&2; fail "no health answer within 120 s"; }
  echo "health: $health"
  grep -q '"status":"ok"' <<<"$health" || fail "health is not ok"
  want_backend=$([ "$arch" = arm64 ] && echo onnxruntime || echo tract)
  grep -q "\"backend\":\"$want_backend" <<<"$health" || fail "the detector backend is not $want_backend"
  kill "$pid"
  wait "$pid" || true
  pid=""
  echo "check-deb: $arch package ok"
done
