#!/usr/bin/env bash
# Measures the web app's first load in a real browser: ten loads of the app, logged in, each in
# a fresh headless Chromium profile (no cache), against the appliance started by the test
# (`ui::first_load_measure`, an ignored test). For each load: the bytes moved (the page plus
# every resource but pictures, from the browser's transferSize) and when the events page marked
# itself rendered (`argus:events-rendered`, ms after navigation start). Writes the median and
# the maximum to target/ui-screenshots/first-load-bench.json.
#
#   scripts/bench-ui.sh
#
# Built like the tests: the debug (test) profile, with the tract feature. The appliance's own
# files are compressed at build time, so the bytes are the release build's; the time is on a
# debug server and this machine, so compare it only with runs made the same way.
# Needs chromium and chromium-driver (scripts/deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh >/dev/null
ORT_DYLIB_PATH="$(scripts/fetch-onnxruntime.sh)"
export ORT_DYLIB_PATH
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
if ! cargo test --locked --features tract --test it -- --ignored ui::first_load_measure --exact \
  --nocapture >"$log" 2>&1; then
  tail -n 40 "$log" >&2
  echo "bench-ui: the measurement failed" >&2
  exit 1
fi
# The test's own table: one line per load, then the median and the maximum.
grep -E '^(run |median | *[0-9]+ +[0-9]+ +[0-9]+$)' "$log"
out=target/ui-screenshots/first-load-bench.json
echo "bench-ui: debug build; written to $out" >&2
cat "$out"
echo
