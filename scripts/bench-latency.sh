#!/usr/bin/env bash
# First-sighting latency benchmark (see scripts/bench-latency.py): the release binary, the real
# detector, a loopback RTSP camera whose first frame with a person is known, `event.created` on
# /ws. Arguments go to bench-latency.py (--runs N, --bin PATH, --model TOML).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh ffmpeg
scripts/make-model.sh >/dev/null
ORT_DYLIB_PATH="$(scripts/fetch-onnxruntime.sh)"
export ORT_DYLIB_PATH
if [[ " $* " != *" --bin "* ]]; then cargo build --release --locked --bin argus >&2; fi
exec python3 scripts/bench-latency.py "$@"
