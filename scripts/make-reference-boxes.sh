#!/usr/bin/env bash
# Writes tests/data/reference-boxes.json: the detections of YOLOv3-tiny and YOLOv4-tiny on the
# photos in tests/data/images/, computed by OpenCV's own darknet importer
# (cv2.dnn.readNetFromDarknet, opencv-python-headless pinned in scripts/make-model.sh) from the
# original darknet cfg + weights (yolov3-tiny's cfg with its 26x26 head's mask set to 1,2,3, as
# the weights were trained), fed the letterboxed input darknet itself would use. This is an
# implementation independent of scripts/darknet2onnx.py; tests/it/detect_geometry.rs checks the
# appliance's detector against it. Each model is also re-converted and sha256-verified, and its
# ONNX output compared with OpenCV's (the script fails if a box differs by more than 0.05 px).
# Deterministic (one OpenCV thread): rerunning it gives the same file.
set -euo pipefail
cd "$(dirname "$0")/.."
for m in yolov3-tiny yolov4-tiny; do
  scripts/make-model.sh --model "$m" --reference "$@"
done
