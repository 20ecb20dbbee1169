#!/usr/bin/env bash
# API benchmark: seeds 100,000 events into a fresh appliance and drives the event endpoints with
# wrk over loopback, printing requests/s and p50/p99 latency for each.
#
#   scripts/bench-api.sh            # defaults: 100000 events, 15 s per endpoint, 16 connections
#   EVENTS=1000000 DURATION=30 scripts/bench-api.sh
#
# Needs wrk and sqlite3 (apt); installs them if missing. Uses the release binary.
set -euo pipefail
cd "$(dirname "$0")/.."
EVENTS="${EVENTS:-100000}"
DURATION="${DURATION:-15}"
CONNS="${CONNS:-16}"
PORT="${PORT:-18931}"

need() { command -v "$1" >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null; }; }
need wrk wrk
need sqlite3 sqlite3
need curl curl
need bc bc

cargo build --release --locked --bin argus >&2
BIN=target/release/argus
DATA="$(mktemp -d)"
trap 'kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; rm -rf "$DATA"' EXIT
ARGUS_LOG=warn "$BIN" serve --data-dir "$DATA" --listen "127.0.0.1:$PORT" &
PID=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/api/v1/system/health" >/dev/null && break; sleep 0.1; done

# A browser login (JWT + session lookup per request): API keys would hit their own per-minute
# rate limit (at most 100000/min) long before the server runs out of breath.
PW="$(cat "$DATA/initial-admin-password")"
login() { curl -sf -H 'content-type: application/json' -d "{\"username\":\"admin\",\"password\":\"$1\"}" \
  "http://127.0.0.1:$PORT/api/v1/auth/login" | sed -E 's/.*"access_token":"([^"]+)".*/\1/'; }
TOKEN="$(login "$PW")"
curl -sf -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' \
  -d "{\"current_password\":\"$PW\",\"new_password\":\"Bench-Password-1\"}" \
  "http://127.0.0.1:$PORT/api/v1/auth/change-password" >/dev/null
TOKEN="$(login Bench-Password-1)"
H="Authorization: Bearer $TOKEN"
cams=()
for n in Front Back Garage Drive; do
  id="$(curl -sf -H "$H" -H 'content-type: application/json' \
    -d "{\"name\":\"$n\",\"type\":\"rtsp\",\"rtsp_url\":\"rtsp://127.0.0.1:1/$n\",\"is_enabled\":false}" \
    "http://127.0.0.1:$PORT/api/v1/cameras" | sed -E 's/.*"id":"([^"]+)".*/\1/')"
  cams+=("$id")
done

echo "seeding $EVENTS events over 30 days on ${#cams[@]} cameras..." >&2
start_ms=$(( $(date +%s) * 1000 - 30 * 86400000 ))
t0=$(date +%s.%N)
sqlite3 "$DATA/argus.db" >/dev/null <<SQL
PRAGMA busy_timeout = 10000;
BEGIN;
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < $EVENTS - 1)
INSERT INTO events (id, camera_id, ts, detection_type, confidence, description, objects_detected,
                    source_type, created_at)
SELECT lower(hex(randomblob(4)) || '-' || hex(randomblob(2)) || '-4' || substr(hex(randomblob(2)), 2)
             || '-a' || substr(hex(randomblob(2)), 2) || '-' || hex(randomblob(6))),
       CASE i % 4 WHEN 0 THEN '${cams[0]}' WHEN 1 THEN '${cams[1]}' WHEN 2 THEN '${cams[2]}' ELSE '${cams[3]}' END,
       $start_ms + i * (30 * 86400000 / $EVENTS),
       CASE i % 5 WHEN 0 THEN 'vehicle' WHEN 1 THEN 'animal' ELSE 'person' END,
       40 + i % 61,
       CASE i % 7 WHEN 0 THEN 'A person in a red jacket walks to the front door'
                  WHEN 1 THEN 'A white van parks in the driveway'
                  WHEN 2 THEN 'A cat crosses the lawn'
                  WHEN 3 THEN 'Two people talk by the gate'
                  WHEN 4 THEN 'A delivery driver leaves a package on the porch'
                  WHEN 5 THEN 'A cyclist rides past the garage'
                  ELSE 'Someone checks the mailbox' END || ' (' || i || ')',
       '["person"]', 'api', $start_ms + i * (30 * 86400000 / $EVENTS)
FROM n;
COMMIT;
SQL
t1=$(date +%s.%N)
echo "seeded in $(echo "$t1 - $t0" | bc) s; database $(du -h "$DATA/argus.db" | cut -f1)" >&2

cat > "$DATA/report.lua" <<'LUA'
done = function(summary, latency, requests)
  io.write(string.format("RESULT %.1f %.2f %.2f %.2f %d %d\n",
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
    summary.requests, summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
LUA

run() {
  local name="$1" path="$2" conns="${3:-$CONNS}"
  local line
  line="$(wrk -t2 -c"$conns" -d"${DURATION}s" --latency -H "$H" -s "$DATA/report.lua" "http://127.0.0.1:$PORT$path" | grep '^RESULT')"
  read -r _ rps p50 p99 max total errs <<<"$line"
  printf "%-34s %10s %9s %9s %9s %8s\n" "$name" "$rps" "$p50" "$p99" "$max" "$errs"
}

echo
echo "events: $EVENTS, connections: $CONNS, $DURATION s each, $(nproc) cores"
printf "%-34s %10s %9s %9s %9s %8s\n" "endpoint" "req/s" "p50 ms" "p99 ms" "max ms" "errors"
run "events page (limit=20)" "/api/v1/events?limit=20"
run "events page 50 (offset 980)" "/api/v1/events?limit=20&page=50"
run "events camera+type filter" "/api/v1/events?limit=20&camera_id=${cams[1]}&detection_type=person"
run "events date range" "/api/v1/events?limit=20&start_date=$(date -u -d '-10 days' +%F)&end_date=$(date -u -d '-9 days' +%F)"
run "events min_confidence=95" "/api/v1/events?limit=20&min_confidence=95"
run "events full-text search" "/api/v1/events?limit=20&search=red%20jacket"
run "event stats (30 days)" "/api/v1/events/stats"
run "CSV export (all events)" "/api/v1/events/export" 2
echo
t0=$(date +%s.%N)
bytes=$(curl -sf -H "$H" "http://127.0.0.1:$PORT/api/v1/events/export" | wc -c)
t1=$(date +%s.%N)
echo "one CSV export: $bytes bytes in $(echo "$t1 - $t0" | bc) s"
echo "server RSS after the run: $(( $(grep VmRSS /proc/$PID/status | awk '{print $2}') / 1024 )) MiB"
