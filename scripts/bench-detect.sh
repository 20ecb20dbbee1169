#!/usr/bin/env bash
# Detector benchmark: the appliance's detector (Rust, ort + ONNX Runtime from PyPI) beside the
# same model under the onnxruntime Python package, on 1 and 2 threads.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/make-model.sh --check >/dev/null   # a venv with onnxruntime
scripts/make-model.sh --model yolov4-tiny --int8 >/dev/null   # the default model
ORT_DYLIB_PATH="$(scripts/fetch-onnxruntime.sh)"
export ORT_DYLIB_PATH
cargo bench --locked --bench detect
"${MODEL_CACHE:-target/model-cache}/venv/bin/python" scripts/bench_ort_python.py models/yolov4-tiny-416-int8.onnx
