#!/usr/bin/env bash
# Hardware smoke test, for a board with a real camera (it cannot run in CI: there is no
# /dev/video* there). Starts the appliance on a scratch data dir, adds the V4L2 device as a
# camera, and checks that it reaches `streaming` with a resolution, then runs a connection test.
#
#   scripts/hw-smoke.sh [/dev/video0] [path/to/argus]
set -euo pipefail
DEV="${1:-/dev/video0}"
BIN="${2:-target/release/argus}"
PORT="${PORT:-18932}"
[ -e "$DEV" ] || { echo "no $DEV: plug in a camera (or pass its device path)" >&2; exit 2; }
[ -x "$BIN" ] || { echo "build first: cargo build --release (or pass the binary)" >&2; exit 2; }
DATA="$(mktemp -d)"
trap 'kill "$PID" 2>/dev/null || true; rm -rf "$DATA"' EXIT
ARGUS_LOG=info "$BIN" serve --data-dir "$DATA" --listen "127.0.0.1:$PORT" &
PID=$!
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$PORT/api/v1/system/health" >/dev/null && break; sleep 0.2; done
KEY="$("$BIN" api-keys create --data-dir "$DATA" --name smoke --scopes admin | tail -n1)"
H="X-API-Key: $KEY"
echo "connection test:"
curl -sf -H "$H" -H 'content-type: application/json' -d "{\"type\":\"usb\",\"device_path\":\"$DEV\"}" \
  "http://127.0.0.1:$PORT/api/v1/cameras/test" | sed -E 's/"thumbnail":"[^"]*"/"thumbnail":"..."/'
echo
ID="$(curl -sf -H "$H" -H 'content-type: application/json' \
  -d "{\"name\":\"smoke\",\"type\":\"usb\",\"device_path\":\"$DEV\",\"frame_rate\":5}" \
  "http://127.0.0.1:$PORT/api/v1/cameras" | sed -E 's/.*"id":"([^"]+)".*/\1/')"
for _ in $(seq 40); do
  S="$(curl -sf -H "$H" "http://127.0.0.1:$PORT/api/v1/cameras/$ID")"
  case "$S" in *'"status":"streaming"'*) echo "streaming: $(echo "$S" | sed -E 's/.*"status":(\{[^}]*\}).*/\1/')"; exit 0 ;; esac
  sleep 0.5
done
echo "the camera did not reach streaming: $S" >&2
exit 1
