#!/usr/bin/env bash
# Detector evaluation (benches/eval.rs): fetches the labelled evaluation set
# (scripts/fetch-eval-set.sh) and ONNX Runtime (scripts/fetch-onnxruntime.sh), then runs every
# model description there is through the appliance's own detector path, and prints a markdown
# table (also written to target/eval-set/report.md).
#
#   scripts/eval-detector.sh                     models/*.toml and target/eval-models/*.toml
#   scripts/eval-detector.sh a.toml name=b.toml  just those
#
# Models taken without arguments: every models/*.toml, and every target/eval-models/*.toml (for
# candidates that are not shipped, e.g. the previous model: when /tmp/yolov3-tiny-416-before.onnx
# exists it is set up there as `yolov3-tiny-416-before`, and so is YOLOX-nano from
# ../shared/models/ until models/ describes it). A description that the detector cannot
# load yet (an output format it does not decode) is reported as not loaded; the others still run.
# Environment: ARGUS_EVAL_THREADS (default 1), ARGUS_EVAL_VERBOSE=1 (every miss and false
# positive), ARGUS_EVAL_JSON (counts as JSON).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/fetch-eval-set.sh >/dev/null
ORT_DYLIB_PATH="$(scripts/fetch-onnxruntime.sh)"
export ORT_DYLIB_PATH

if [ -f /tmp/yolov3-tiny-416-before.onnx ] && [ ! -f target/eval-models/yolov3-tiny-416-before.toml ]; then
  mkdir -p target/eval-models
  cp /tmp/yolov3-tiny-416-before.onnx models/coco.names target/eval-models/
  sed 's/^file = .*/file = "yolov3-tiny-416-before.onnx"/' models/yolov3-tiny-416.toml \
    > target/eval-models/yolov3-tiny-416-before.toml
fi

# YOLOX-nano is not shipped (../shared/models/yolox-nano/README.md): when its file is there,
# models/yolox*.toml is copied to target/eval-models/ pointing at it (or, before models/ has a
# description, one is written there). Needs the detector's `yolox` output format.
YOLOX="$(pwd)/../shared/models/yolox-nano/yolox_nano.onnx"
if [ -f "$YOLOX" ]; then
  mkdir -p target/eval-models
  cp models/coco.names target/eval-models/
  found=0
  for t in models/yolox*.toml; do
    [ -f "$t" ] || continue
    found=1
    sed "s|^file = .*|file = \"$YOLOX\"|" "$t" > "target/eval-models/$(basename "$t")"
  done
  if [ $found -eq 0 ]; then
    cat > target/eval-models/yolox-nano-416.toml <<TOML
# YOLOX-nano (COCO), see ../shared/models/yolox-nano/README.md. Written by scripts/eval-detector.sh.
file = "$YOLOX"
input_name = "images"
input_size = 416
layout = "nchw"
channels = "bgr"
normalise = "0..255"
letterbox = "top-left"
letterbox_pad = 114.0
output_name = "output"
output_format = "yolox"
strides = [8, 16, 32]
labels = "coco.names"
num_classes = 80
TOML
  fi
fi

MODELS=("$@")
if [ ${#MODELS[@]} -eq 0 ]; then
  for t in models/*.toml target/eval-models/*.toml; do
    [ -f "$t" ] || continue
    # Descriptions whose model file is not there (not shipped) are skipped, with a note; a
    # copy under target/eval-models/ may stand in for them (above).
    f="$(sed -n 's/^file = "\(.*\)"/\1/p' "$t")"
    case "$f" in /*) ;; *) f="$(dirname "$t")/$f" ;; esac
    if [ ! -f "$f" ]; then echo "skipping $t: no $f" >&2; continue; fi
    MODELS+=("$t")
  done
fi
[ ${#MODELS[@]} -gt 0 ] || { echo "no model descriptions found" >&2; exit 2; }
echo "models: ${MODELS[*]}" >&2
mkdir -p target/eval-set
cargo bench --bench eval -- "${MODELS[@]}" | tee target/eval-set/report.md
