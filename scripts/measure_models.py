#!/usr/bin/env python3
"""Measures the detector models with ONNX Runtime (CPU) from Python; see models/MODELS.md.

  measure_models.py speed     ms per 416x416 frame (1 and 2 intra-op threads) and the RSS that
                              creating the session adds, default and memory-saving options;
                              every configuration in a fresh subprocess; a markdown table
  measure_models.py int8      detections of each int8 model against its float model on the
                              sample photos
  measure_models.py tract     the int8 (and float) models in tract's Python bindings: load, run,
                              output against ONNX Runtime's

Run it with the model venv (scripts/make-model.sh --check makes it, with onnxruntime 1.32.0);
`tract` needs `pip install tract==0.23.9` in that venv. Paths are relative to the repository.
YOLOX-nano is read from ../shared/models/yolox-nano/yolox_nano.onnx (or $YOLOX_NANO); its input
is BGR 0..255 (see its README), which matters for nothing here but is fed so.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
import darknet2onnx as d2o  # noqa: E402

YOLOX = os.environ.get("YOLOX_NANO",
                       os.path.join(ROOT, "..", "shared/models/yolox-nano/yolox_nano.onnx"))
if not os.path.exists(YOLOX):
    YOLOX = "/work/shared/models/yolox-nano/yolox_nano.onnx"
MODELS = {
    "yolov3-tiny-416": "models/yolov3-tiny-416.onnx",
    "yolov3-tiny-416-int8": "models/yolov3-tiny-416-int8.onnx",
    "yolov4-tiny-416": "models/yolov4-tiny-416.onnx",
    "yolov4-tiny-416-int8": "models/yolov4-tiny-416-int8.onnx",
    "yolox-nano": YOLOX,
}
PHOTOS = ["tests/data/images/person.jpg", "tests/data/images/dog.jpg",
          "tests/data/images/horses.jpg", "tests/data/images/eagle.jpg"]


def rss_kib():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def model_input(name):
    x, _ = d2o.letterbox(os.path.join(ROOT, "tests/data/images/person.jpg"), 416)
    if name == "yolox-nano":
        x = (x[:, ::-1] * 255).astype(np.float32).copy()  # BGR 0..255 (padding differs: no matter)
    return x


# Session option sets: "default"; "lean": the memory-saving options (no CPU arena, no memory
# pattern, no pre-packed weight copies, initializers allocated directly rather than through an
# arena); "lean+prepack": the same but keeping pre-packing (int8 convolutions need it to be
# fast); "lean+basic": lean with only basic graph optimisations (no NCHWc layout rewrite, which
# keeps re-ordered copies of the convolution weights).
OPTIONS = ("default", "lean", "lean+prepack", "lean+basic")


def apply_options(ort, o, kind):
    if kind == "default":
        return
    o.enable_cpu_mem_arena = False
    o.enable_mem_pattern = False
    # initializers allocated directly, not through the (here disabled) arena
    o.add_session_config_entry("session.use_device_allocator_for_initializers", "1")
    if kind != "lean+prepack":
        o.add_session_config_entry("session.disable_prepacking", "1")
    if kind == "lean+basic":
        o.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC


def one(name, threads, lean, runs):
    """In this (fresh) process: RSS before/after session creation and after the first run, then
    the run times."""
    import onnxruntime as ort

    x = model_input(name)
    path = os.path.join(ROOT, MODELS[name]) if not os.path.isabs(MODELS[name]) else MODELS[name]
    o = ort.SessionOptions()
    o.intra_op_num_threads = threads
    o.inter_op_num_threads = 1
    apply_options(ort, o, lean)
    before = rss_kib()
    sess = ort.InferenceSession(path, o, providers=["CPUExecutionProvider"])
    created = rss_kib()
    feed = {sess.get_inputs()[0].name: x}
    sess.run(None, feed)
    first = rss_kib()
    sess.run(None, feed)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        sess.run(None, feed)
        times.append((time.perf_counter() - t) * 1000)
    return {"model": name, "threads": threads, "lean": lean, "ort": ort.__version__,
            "size": os.path.getsize(path),
            "rss_session_mib": (created - before) / 1024, "rss_first_run_mib": (first - before) / 1024,
            "ms_median": statistics.median(times), "ms_min": min(times)}


def speed(a):
    rows = []
    for name in a.models:
        for lean in a.options:
            for threads in (1, 2):
                out = subprocess.run([sys.executable, __file__, "_one", name, str(threads),
                                      lean, str(a.runs)], check=True,
                                     capture_output=True, text=True).stdout
                r = json.loads(out.strip().splitlines()[-1])
                rows.append(r)
                print(json.dumps(r), file=sys.stderr)
    print(f"onnxruntime {rows[0]['ort']} CPU, {a.runs} timed runs after 2 warm-up runs, one "
          f"fresh process per row; RSS: VmRSS growth from just before creating the session")
    print()
    print("| model | file MiB | options | threads | ms/frame median (min) | RSS after session "
          "creation MiB | RSS after first run MiB |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['model']} | {r['size'] / 2**20:.1f} | {r['lean']} "
              f"| {r['threads']} | {r['ms_median']:.1f} ({r['ms_min']:.1f}) | "
              f"{r['rss_session_mib']:.0f} | {r['rss_first_run_mib']:.0f} |")


def session(path, threads=1):
    import onnxruntime as ort

    o = ort.SessionOptions()
    o.intra_op_num_threads = threads
    return ort.InferenceSession(os.path.join(ROOT, path), o, providers=["CPUExecutionProvider"])


def compare_dets(ref, got):
    """For each detection of `ref`: the same-class detection of `got` with the best IoU."""
    out = []
    for n, s, b in ref:
        same = [(d2o.iou(b, gb), gs, gb) for gn, gs, gb in got if gn == n]
        if not same:
            out.append((n, s, b, None))
            continue
        i, gs, gb = max(same, key=lambda t: t[0])
        out.append((n, s, b, (i, gs, float(np.abs(np.asarray(gb) - b).max()))))
    return out


def int8(a):
    names = open(os.path.join(ROOT, "models/coco.names"), encoding="utf-8").read().splitlines()
    photos = [os.path.join(ROOT, p) for p in PHOTOS] + [
        p for p in ("/usr/share/darknet/data/kite.jpg",) if os.path.exists(p)]
    for m in ("yolov3-tiny-416", "yolov4-tiny-416"):
        f, q = session(MODELS[m]), session(MODELS[m + "-int8"])
        print(f"{m}-int8 against {m} (darknet letterbox, threshold 0.25, per-class NMS 0.45):")
        worst_px, worst_s, lost, extra = 0.0, 0.0, [], []
        for p in photos:
            df = d2o.detect(f, p, 416, names)
            dq = d2o.detect(q, p, 416, names)
            base = os.path.basename(p)
            for n, s, b, m8 in compare_dets(df, dq):
                if m8 is None or m8[0] < 0.5:
                    lost.append(f"{base} {n} {s:.3f}")
                    print(f"  {base:<11} {n:<9} {s:.3f}  int8: none (IoU >= 0.5)")
                    continue
                i, gs, px = m8
                if s >= 0.5:
                    worst_px, worst_s = max(worst_px, px), max(worst_s, abs(gs - s))
                print(f"  {base:<11} {n:<9} {s:.3f}  int8 {gs:.3f} ({gs - s:+.3f}), IoU {i:.3f}, "
                      f"corners within {px:.1f} px")
            for n, s, b, m8 in compare_dets(dq, df):
                if m8 is None or m8[0] < 0.5:
                    extra.append(f"{base} {n} {s:.3f}")
                    print(f"  {base:<11} {n:<9} int8 only: {s:.3f}")
        print(f"  float detections >= 0.5: corners within {worst_px:.1f} px, scores within "
              f"{worst_s:.3f}; lost {lost or 'none'}; int8 only {extra or 'none'}")


def tract_check(a):
    import tract

    names = open(os.path.join(ROOT, "models/coco.names"), encoding="utf-8").read().splitlines()
    print(f"tract (Python bindings) {tract.version()}")
    for m in ("yolov3-tiny-416-int8", "yolov4-tiny-416-int8", "yolov3-tiny-416",
              "yolov4-tiny-416"):
        path = os.path.join(ROOT, MODELS[m])
        t0 = time.perf_counter()
        try:
            model = tract.onnx().load(path).into_model().into_runnable()
        except Exception as e:  # noqa: BLE001
            print(f"  {m}: tract cannot load it: {e}")
            continue
        load = time.perf_counter() - t0
        sess = session(MODELS[m])
        worst = 0.0
        times = []
        for p in PHOTOS:
            x, geom = d2o.letterbox(os.path.join(ROOT, p), 416)
            t = time.perf_counter()
            y = model.run([x])[0].to_numpy()[0]
            times.append((time.perf_counter() - t) * 1000)
            o = sess.run(None, {"images": x})[0][0]
            dt = d2o.postprocess(y[:, :4], y[:, 4:5] * y[:, 5:], geom, names)
            do = d2o.postprocess(o[:, :4], o[:, 4:5] * o[:, 5:], geom, names)
            for n, s, b, mt in compare_dets(do, dt):
                if mt is None:
                    print(f"  {m}: {os.path.basename(p)} {n} {s:.3f} missing in tract")
                    worst = float("inf")
                else:
                    worst = max(worst, mt[2])
            diff = np.abs(y - o)
            print(f"  {m}: {os.path.basename(p)}: {len(dt)} detections (onnxruntime {len(do)}), "
                  f"raw output max |diff| boxes {diff[:, :4].max():.3f} px, scores "
                  f"{diff[:, 4:].max():.4f}")
        print(f"  {m}: loads in {load:.1f} s, runs in {statistics.median(times):.0f} ms "
              f"(median, 1 run per photo); detections' corners within {worst:.3f} px of "
              f"onnxruntime's on the same model")


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "_one":
        name, threads, lean, runs = sys.argv[2], int(sys.argv[3]), sys.argv[4], \
            int(sys.argv[5])
        print(json.dumps(one(name, threads, lean, runs)))
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("speed")
    s.add_argument("--runs", type=int, default=10)
    s.add_argument("--options", nargs="+", default=list(OPTIONS), choices=OPTIONS)
    s.add_argument("models", nargs="*", default=list(MODELS))
    sub.add_parser("int8")
    sub.add_parser("tract")
    a = ap.parse_args()
    {"speed": speed, "int8": int8, "tract": tract_check}[a.cmd](a)


if __name__ == "__main__":
    main()
