#!/usr/bin/env bash
# Memory budget of the release binary: starts `argus serve` in each scenario, each with its own
# temporary data dir and config on a free loopback port, and reads its resident memory from
# /proc/<pid>/status and /proc/<pid>/smaps_rollup.
#
#   scripts/bench-memory.sh [MODEL.toml ...]
#
# Scenarios (budget in brackets):
#   motion-idle   detector off, no camera                                  [<= 30 MB]
#   detector      detector loaded, no camera, per model                    [<= 100 MB]
#   4cams         detector + 4 file cameras replaying a 640x360 clip for
#                 CAM_SECS (60) s, sampled every 5 s: max and final, per model [<= 150 MB]
#
# Columns: RSS (VmRSS), HWM (VmHWM, the peak), anon (RssAnon), file (RssFile: the binary's and
# libraries' pages, the model file if mapped), in MB (10^6 bytes); for 4cams also the inference
# time the detector reported (/system/health avg_inference_ms).
#
# Environment:
#   ARGUS_BIN=path   measure another binary (default: build target/release/argus)
#   MODELS="a.toml b.toml"   models for the detector scenarios (default: every models/*.toml,
#                    or the arguments)
#   SCENARIOS="motion-idle detector 4cams"   which to run
#   CAM_SECS=60      how long the 4-camera scenario runs
#   CLIP=assets/demo/person-walk.h264   the clip the cameras replay (640x360)
#   SETTLE=5         seconds to wait after start-up before reading the idle scenarios
#   EXTRA_TOML=...   appended to the [detector] section of every config (e.g. "workers = 2")
#   SMAPS=1          also print the largest mappings (per smaps) at the end of each scenario
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

if [ -z "${ARGUS_BIN:-}" ]; then
  cargo build --release --locked >&2
  ARGUS_BIN=$ROOT/target/release/argus
fi
ORT_DYLIB_PATH=$(scripts/fetch-onnxruntime.sh)
export ORT_DYLIB_PATH
scripts/make-model.sh >&2

if [ $# -gt 0 ]; then MODELS="$*"; fi
if [ -z "${MODELS:-}" ]; then MODELS=$(ls models/*.toml); fi
SCENARIOS=${SCENARIOS:-"motion-idle detector 4cams"}
CAM_SECS=${CAM_SECS:-60}
CLIP=$(realpath "${CLIP:-assets/demo/person-walk.h264}")
SETTLE=${SETTLE:-5}

TMP=$(mktemp -d)
PID=
cleanup() {
  if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
  rm -rf "$TMP"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# kB field of /proc/PID/status, in MB
status_mb() { awk -v k="$2:" '$1==k {printf "%.1f", $2*1024/1e6}' "/proc/$1/status"; }

# Starts argus with detector settings $1 (TOML lines for [detector]); sets PID, URL, DIR.
start() {
  DIR=$(mktemp -d "$TMP/run.XXXX")
  local port; port=$(free_port)
  URL=http://127.0.0.1:$port
  printf '[detector]\n%b\n%b\n' "$1" "${EXTRA_TOML:-}" >"$DIR/argus.toml"
  ARGUS_LOG=${ARGUS_LOG:-warn} "$ARGUS_BIN" --config "$DIR/argus.toml" --data-dir "$DIR/data" \
    --listen "127.0.0.1:$port" serve 2>"$DIR/log" &
  PID=$!
  for _ in $(seq 600); do
    if ! kill -0 "$PID" 2>/dev/null; then echo "argus exited at start-up:" >&2; cat "$DIR/log" >&2; exit 1; fi
    if curl -fs -o /dev/null "$URL/api/v1/system/health"; then return; fi
    sleep 0.1
  done
  echo "argus did not come up" >&2; exit 1
}

stop() { kill "$PID"; wait "$PID" 2>/dev/null || true; PID=; }

# One row: scenario, model, RSS, HWM, anon, file [, extra]
row() { printf '%-12s %-28s %8s %8s %8s %8s  %s\n' "$@"; }
sample() { echo "$(status_mb "$PID" VmRSS) $(status_mb "$PID" VmHWM) $(status_mb "$PID" RssAnon) $(status_mb "$PID" RssFile)"; }

smaps_top() {
  [ "${SMAPS:-0}" = 1 ] || return 0
  echo "  -- largest mappings of $1 (Rss kB, name) --"
  awk '/^[0-9a-f]+-[0-9a-f]+ /{name=($6==""?"[anon]":$6)} /^Rss:/{rss[name]+=$2} END{for(n in rss) printf "  %8d %s\n", rss[n], n}' \
    "/proc/$PID/smaps" | sort -rn | head -12
  grep -E '^(Rss|Pss|Anonymous|Private_Dirty|Shared_Clean):' "/proc/$PID/smaps_rollup" | sed 's/^/  /'
}

health_ms() {
  curl -fs -H "X-API-Key: ${key:-}" "$URL/api/v1/system/health" |
    python3 -c 'import json,sys; d=json.load(sys.stdin).get("detector",{}); print("infer_ms=%s runs=%s dropped=%s" % (d.get("avg_inference_ms"), d.get("detector_runs"), d.get("frames_dropped")))' 2>/dev/null || true
}

echo "binary: $ARGUS_BIN"
row scenario model "RSS MB" "HWM MB" "anon MB" "file MB"
for sc in $SCENARIOS; do
  case $sc in
    motion-idle)
      start 'enabled = false'
      sleep "$SETTLE"
      # shellcheck disable=SC2046
      row motion-idle - $(sample)
      smaps_top motion-idle
      stop
      ;;
    detector)
      for m in $MODELS; do
        start "model = \"$(realpath "$m")\""
        sleep "$SETTLE"
        # shellcheck disable=SC2046
        row detector "$(basename "$m" .toml)" $(sample)
        smaps_top "detector $m"
        stop
      done
      ;;
    4cams)
      for m in $MODELS; do
        start "model = \"$(realpath "$m")\""
        key=$("$ARGUS_BIN" --data-dir "$DIR/data" --config "$DIR/argus.toml" api-keys create \
          --name bench --scopes read:cameras,write:cameras,read:events,admin --rate-limit 10000 2>/dev/null | tail -1)
        for i in 1 2 3 4; do
          curl -fs -o /dev/null -X POST "$URL/api/v1/cameras" -H "X-API-Key: $key" \
            -H 'content-type: application/json' \
            -d "{\"name\": \"cam$i\", \"type\": \"file\", \"file_path\": \"$CLIP\"}" ||
            { echo "cannot create camera $i" >&2; exit 1; }
        done
        max=0 maxline=
        for _ in $(seq $((CAM_SECS / 5))); do
          sleep 5
          line=$(sample)
          rss=${line%% *}
          if awk -v a="$rss" -v b="$max" 'BEGIN{exit !(a>b)}'; then max=$rss; maxline=$line; fi
        done
        # shellcheck disable=SC2086
        row 4cams-max "$(basename "$m" .toml)" $maxline
        # shellcheck disable=SC2046
        row 4cams-final "$(basename "$m" .toml)" $(sample) "$(health_ms)"
        smaps_top "4cams $m"
        stop
      done
      ;;
    *) echo "unknown scenario $sc" >&2; exit 2 ;;
  esac
done
