#!/usr/bin/env python3
"""Darknet (YOLOv3-tiny style) cfg + weights -> ONNX, with the YOLO decode inside the graph.

Run by scripts/make-model.sh; see models/MODELS.md.

  darknet2onnx.py convert --cfg X.cfg --weights X.weights [--names coco.names] --out model.onnx
                          [--mask LAYER=I,J,K ...] [--doc TEXT]
  darknet2onnx.py check --model model.onnx --names coco.names IMAGE...

The graph takes `images` float32 [1,3,H,W] (RGB, 0..1, letterboxed by the caller) and gives one
tensor `detections` float32 [1,N,5+classes]: rows of cx, cy, w, h (pixels of the input),
objectness and class scores (both already sigmoided). Rows are ordered by yolo layer (cfg order),
then anchor, then grid row, then grid column.

Only the layer kinds yolov3-tiny and yolov4-tiny use are supported: convolutional (with or
without batch norm, leaky or linear), maxpool, upsample, route (also AlexeyAB's groups/group_id)
and yolo (also AlexeyAB's scale_x_y). Batch norm is folded into the convolutions
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


def parse_mask_override(spec):
    """'23=1,2,3' -> (23, [1, 2, 3]): darknet layer index (0-based, as darknet prints it) of a
    [yolo] layer and the anchor indices to use there instead of the cfg's `mask`."""
    layer, _, mask = spec.partition("=")
    try:
        return int(layer), ints(mask)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--mask wants LAYER=I,J,K, not {spec!r}") from None


def convert(cfg_path, weights_path, names_path, out_path, mask_overrides=(), doc=None):
    import onnx
    from onnx import TensorProto, helper

    sections = parse_cfg(cfg_path)
    overrides = dict(mask_overrides)
    for li, m in overrides.items():
        if not 0 <= li < len(sections) - 1 or sections[li + 1][0] != "yolo":
            raise ValueError(f"--mask {li}=...: layer {li} is not a [yolo] layer")
        cfg_mask = ints(sections[li + 1][1]["mask"])
        if len(m) != len(cfg_mask):
            # the number of anchors per cell is fixed by the filters of the conv before it
            raise ValueError(f"--mask {li}=...: {len(m)} anchors, the cfg has {len(cfg_mask)}")
        print(f"darknet2onnx: layer {li} [yolo]: mask {','.join(map(str, m))} "
              f"(cfg says {','.join(map(str, cfg_mask))})")
        sections[li + 1][1]["mask"] = ",".join(map(str, m))
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
            # AlexeyAB's `groups`/`group_id`: take the group_id-th of `groups` equal channel
            # slices of each source (yolov4-tiny's CSP blocks use groups=2, group_id=1).
            groups, gid = int(o.get("groups", 1)), int(o.get("group_id", 0))
            if not 0 <= gid < groups:
                raise ValueError(f"layer {idx}: bad group_id {gid} of {groups}")
            srcs = []
            for si, r in enumerate(ints(o["layers"])):
                j = idx + r if r < 0 else r
                if not 0 <= j < idx or layers[j] is None:
                    raise ValueError(f"layer {idx}: bad route source {r}")
                src = layers[j]
                if groups != 1:
                    if src[1] % groups:
                        raise ValueError(f"layer {idx}: {src[1]} channels in {groups} groups")
                    part = src[1] // groups
                    nm = f"{p}.group{si}"
                    y = g.node("Slice", [src[0],
                                         g.init(nm + ".starts", np.array([gid * part], np.int64)),
                                         g.init(nm + ".ends", np.array([(gid + 1) * part],
                                                                       np.int64)),
                                         g.init(nm + ".axes", np.array([1], np.int64))], nm)
                    src = (y, part, src[2], src[3])
                srcs.append(src)
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
            sxy = float(o.get("scale_x_y", 1))
            if int(o.get("new_coords", 0)):
                raise ValueError(f"layer {idx}: new_coords is not supported")
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

            # Per row (anchor ai, grid row gy, column gx): cx = (sigmoid(tx) + gx) * W / w, or
            # with AlexeyAB's scale_x_y = s: cx = (sigmoid(tx) * s - (s - 1) / 2 + gx) * W / w
            ai, gy, gx = np.meshgrid(np.arange(a), np.arange(h), np.arange(w), indexing="ij")
            grid = np.stack([gx.ravel(), gy.ravel()], -1).astype(np.float32)[None]  # [1,n,2]
            cell = np.array([[[W / w, H / h]]], np.float32)  # pixels per cell
            anc = anchors[ai.ravel()][None]  # [1,n,2], pixels of the network input
            xy = g.node("Sigmoid", [sl(0, 2, "txy")], p + ".sxy")
            if sxy != 1:
                xy = g.node("Mul", [xy, g.init(p + ".scale_x_y", np.array(sxy, np.float32))],
                            p + ".sxy_scaled")
                grid = grid - np.float32((sxy - 1) / 2)
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
    model.doc_string = (doc or "darknet model") + (
        f". Input images [1,3,H,W] RGB 0..1 letterboxed; output detections "
        f"[1,N,{5 + num_classes}] = cx,cy,w,h (input pixels), objectness, class scores "
        f"(sigmoided).")
    meta = {"output_format": "yolo-cxcywh-obj-cls", "num_classes": str(num_classes)}
    if overrides:
        meta["mask_overrides"] = " ".join(
            f"{li}={','.join(map(str, m))}" for li, m in sorted(overrides.items()))
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


def appliance_input(path, size):
    """The input tensor the appliance makes of a JPEG (src/video/jpeg.rs Frame420::from_jpeg +
    src/detect/preprocess.rs whole_frame/fill_tensor), reproduced with numpy: the JPEG decoded
    to YCbCr (here by Pillow's libjpeg, there by zune-jpeg: the chroma may differ by a level),
    chroma kept at even rows/columns (4:2:0), the whole frame centred in a square of side
    max(w, h), each input pixel sampled nearest-neighbour at floor(origin + (i + 0.5) * scale),
    converted with BT.601 full-range (JFIF) coefficients, as the appliance does for JPEGs;
    outside the frame grey 0.5. Returns the
    tensor and the placement (offset_x, offset_y, scale, w, h) that maps input pixels back."""
    from PIL import Image

    im = Image.open(path)
    im.draft("YCbCr", im.size)
    ycc = np.asarray(im.convert("YCbCr") if im.mode != "YCbCr" else im)
    h, w = ycc.shape[:2]
    f32 = np.float32
    side = f32(max(w, h))
    ox, oy = (f32(w) - side) / f32(2), (f32(h) - side) / f32(2)
    scale = side / f32(size)
    i = np.arange(size, dtype=f32)
    sx = np.floor(ox + (i + f32(0.5)) * scale).astype(np.int64)
    sy = np.floor(oy + (i + f32(0.5)) * scale).astype(np.int64)
    okx, oky = (sx >= 0) & (sx < w), (sy >= 0) & (sy < h)
    canvas = np.full((size, size, 3), 0.5, f32)
    yy, xx = np.ix_(sy[oky], sx[okx])
    yv = ycc[yy, xx, 0].astype(f32)
    cb = ycc[yy // 2 * 2, xx // 2 * 2, 1].astype(f32) - f32(128)
    cr = ycc[yy // 2 * 2, xx // 2 * 2, 2].astype(f32) - f32(128)
    rgb = np.stack([np.clip(yv + f32(1.402) * cr, 0, 255),
                    np.clip(yv - f32(0.344) * cb - f32(0.714) * cr, 0, 255),
                    np.clip(yv + f32(1.772) * cb, 0, 255)], -1) * (f32(1) / f32(255))
    canvas[np.ix_(oky, okx)] = rgb
    return canvas.transpose(2, 0, 1)[None].copy(), (float(ox), float(oy), float(scale), w, h)


def placement_geom(place, size):
    """A placement (offset_x, offset_y, scale, w, h) as the (w, h, nw, nh, dx, dy) that
    postprocess() takes: image x = (cx - dx) * w / nw = offset_x + cx * scale."""
    ox, oy, scale, w, h = place
    nw, nh = w / scale, h / scale
    return (w, h, nw, nh, -ox / scale, -oy / scale)


def iou(a, b):
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def detect(sess, path, size, names, thresh=0.25, nms=0.45):
    x, geom = letterbox(path, size)
    rows = sess.run(["detections"], {"images": x})[0][0]
    return postprocess(rows[:, :4], rows[:, 4:5] * rows[:, 5:], geom, names, thresh, nms)


def postprocess(xywh, scores, geom, names, thresh=0.25, nms=0.45, best_flag=False):
    """Darknet's way: every (row, class) with objectness x class > thresh, per-class NMS.
    xywh [N,4] centre/size in input pixels, scores [N,classes] = objectness x class.
    [(name, score, box x1,y1,x2,y2 in image pixels)], best first; with best_flag a 4th item
    says whether the class is the row's best (the only one the appliance's decoder reports)."""
    w, h, nw, nh, dx, dy = geom
    rows = xywh
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
        if best_flag:
            out += [(names[k], float(scores[i, k]), boxes[i], bool(scores[i].argmax() == k))
                    for i in kept]
        else:
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


# ---------------------------------------------------------------------------------------------
# reference: the same cfg + weights through OpenCV's own darknet importer


def patched_cfg(cfg_path, overrides):
    """The cfg text with the `mask` of the given [yolo] layers replaced."""
    out, section = [], -1
    for raw in open(cfg_path, encoding="utf-8").read().splitlines():
        line = raw.split("#", 1)[0].strip()
        if line.startswith("["):
            section += 1
        elif section - 1 in overrides and line.split("=", 1)[0].strip() == "mask":
            raw = "mask = " + ",".join(map(str, overrides[section - 1]))
        out.append(raw)
    return "\n".join(out) + "\n"


def sha256(path):
    import hashlib

    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def reference(a):
    """Boxes from cv2.dnn.readNetFromDarknet on the same letterboxed input as `check`, written
    into a JSON file under a key (one per model); also compared with our ONNX model."""
    import json
    import os
    import tempfile

    import cv2

    overrides = dict(a.mask)
    names = open(a.names, encoding="utf-8").read().splitlines()
    size = int(dict(parse_cfg(a.cfg)[0][1]).get("width", 416))
    cv2.setNumThreads(1)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = os.path.join(tmp, "model.cfg")
        open(cfg, "w", encoding="utf-8").write(patched_cfg(a.cfg, overrides))
        net = cv2.dnn.readNetFromDarknet(cfg, a.weights)
    net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
    net.setPreferableTarget(cv2.dnn.DNN_TARGET_CPU)
    outs = net.getUnconnectedOutLayersNames()
    sess = None
    if a.compare:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        sess = ort.InferenceSession(a.compare, opts, providers=["CPUExecutionProvider"])
    tool = (f"opencv-python-headless {cv2.__version__} cv2.dnn.readNetFromDarknet "
            f"(DNN_BACKEND_OPENCV, CPU, 1 thread)")
    entry = {
        "tool": tool,
        "cfg": f"{os.path.basename(a.cfg)} sha256 {sha256(a.cfg)}" + (
            ", mask overridden: " + " ".join(f"layer {k} = {','.join(map(str, v))}"
                                             for k, v in sorted(overrides.items()))
            if overrides else ""),
        "weights": f"{os.path.basename(a.weights)} sha256 {sha256(a.weights)}",
        "postprocess": (f"every (row, class) with objectness x class > {a.thresh}, per-class "
                        f"NMS IoU {a.nms}; box x1,y1,x2,y2 in photo pixels, clipped to the "
                        f"photo; best_class: the class is the row's highest class score (the "
                        f"only one the appliance's decoder reports)"),
        "inputs": {
            "darknet": {
                "input": (f"{size}x{size} RGB 0..1, letterboxed as darknet does (scale "
                          f"min({size}/w, {size}/h), bilinear with corners aligned, centred, "
                          f"grey 0.5); JPEG decoded to RGB by Pillow"),
                "images": {}},
            "appliance": {
                "input": (f"{size}x{size} RGB 0..1 made as the appliance makes it from a JPEG: "
                          f"YCbCr from the JPEG decoder (Pillow here), chroma at even rows and "
                          f"columns (4:2:0), the whole frame centred in a square of side "
                          f"max(w, h), nearest-neighbour sampling at floor(origin + (i + 0.5) * "
                          f"side / {size}), BT.601 full-range (JFIF) YUV to RGB, grey 0.5 outside"),
                "images": {}},
        },
    }
    worst = (0.0, 0.0)
    for kind, spec in entry["inputs"].items():
        for path in a.images:
            base = os.path.basename(path)
            if kind == "darknet":
                x, geom = letterbox(path, size)
            else:
                x, place = appliance_input(path, size)
                geom = placement_geom(place, size)
            net.setInput(x.astype(np.float32))
            res = net.forward(outs)
            rows = np.concatenate([r.reshape(-1, r.shape[-1]) for r in res]).astype(np.float64)
            # OpenCV's yolo rows: cx, cy, w, h relative to the input size, objectness, then
            # objectness x class (set to 0 below the layer's own threshold, 0.2 < ours)
            dets = postprocess(rows[:, :4] * size, rows[:, 5:], geom, names, a.thresh, a.nms,
                               best_flag=True)
            spec["images"][base] = {
                "sha256": sha256(path), "width": geom[0], "height": geom[1],
                "detections": [{"class": n, "score": round(sc, 4),
                                "box": [round(float(v), 2) for v in b], "best_class": best}
                               for n, sc, b, best in dets]}
            print(f"{base} (OpenCV, {kind} input):")
            ours = []
            if sess:
                out = sess.run(["detections"], {"images": x})[0][0]
                ours = postprocess(out[:, :4], out[:, 4:5] * out[:, 5:], geom, names, a.thresh,
                                   a.nms)
            for n, sc, b, best in dets:
                line = (f"  {n:<10} {sc:.3f}  box x1,y1,x2,y2 = {b[0]:.1f},{b[1]:.1f},"
                        f"{b[2]:.1f},{b[3]:.1f}"
                        f"{'' if best else '  (not the best class of its row)'}")
                if sess:
                    same = [(iou(b, ob), os_, ob) for on, os_, ob in ours if on == n]
                    if same:
                        _, os_, ob = max(same, key=lambda t: t[0])
                        d = float(np.abs(np.asarray(ob) - b).max())
                        worst = (max(worst[0], d), max(worst[1], abs(os_ - sc)))
                        line += f"   onnx: corners within {d:.3f} px, score {os_ - sc:+.5f}"
                    else:
                        line += "   onnx: MISSING"
                        worst = (float("inf"), 1.0)
                print(line)
            if sess and len(ours) != len(dets):
                print(f"  onnx has {len(ours)} detections, OpenCV {len(dets)}")
                worst = (float("inf"), 1.0)
    if sess:
        print(f"reference: {a.compare} vs OpenCV: largest corner difference {worst[0]:.4f} px, "
              f"largest score difference {worst[1]:.6f}")
    data = {}
    if os.path.exists(a.json):
        data = json.load(open(a.json, encoding="utf-8"))
    data["about"] = ("Reference detections for tests/it/detect_geometry.rs, made by "
                     "scripts/make-reference-boxes.sh (scripts/make-model.sh --reference) with "
                     "OpenCV's darknet importer from the original darknet cfg + weights: an "
                     "implementation independent of scripts/darknet2onnx.py. See models/MODELS.md.")
    data.setdefault("models", {})[a.key] = entry
    with open(a.json, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1, sort_keys=True)
        f.write("\n")
    print(f"reference: wrote {a.key} into {a.json}")
    return worst[0] < a.max_px_diff


# ---------------------------------------------------------------------------------------------
# quantize: the int8 (QDQ) variant with onnxruntime's quantize_static


def video_frames(path, every, size):
    """Every `every`-th frame of an H.264 file, decoded by ffmpeg to raw YUV 4:2:0 and turned
    into RGB here (BT.601 video range, as the appliance does), letterboxed nearest-neighbour like
    the appliance's whole-frame input. [(name, [1,3,size,size] float32)]"""
    import json
    import subprocess

    info = json.loads(subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
         "stream=width,height", "-of", "json", path], check=True, capture_output=True).stdout)
    w, h = info["streams"][0]["width"], info["streams"][0]["height"]
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", path, "-f", "rawvideo", "-pix_fmt",
                          "yuv420p", "-"], check=True, capture_output=True).stdout
    fsz = w * h * 3 // 2
    out = []
    for n in range(0, len(raw) // fsz, every):
        f = np.frombuffer(raw, np.uint8, fsz, n * fsz)
        y = f[:w * h].reshape(h, w).astype(np.float32)
        u = f[w * h:w * h * 5 // 4].reshape(h // 2, w // 2).repeat(2, 0).repeat(2, 1)
        v = f[w * h * 5 // 4:].reshape(h // 2, w // 2).repeat(2, 0).repeat(2, 1)
        yv, cb, cr = (y - 16) * 1.164, u.astype(np.float32) - 128, v.astype(np.float32) - 128
        rgb = np.clip(np.stack([yv + 1.596 * cr, yv - 0.392 * cb - 0.813 * cr, yv + 2.017 * cb],
                               -1) / 255, 0, 1)
        side = max(w, h)
        scale = side / size
        src = np.floor((np.arange(size) + 0.5) * scale).astype(np.int64)
        sx, sy = src - (side - w) // 2, src - (side - h) // 2
        canvas = np.full((size, size, 3), 0.5, np.float32)
        okx, oky = (sx >= 0) & (sx < w), (sy >= 0) & (sy < h)
        canvas[np.ix_(oky, okx)] = rgb[np.ix_(sy[oky], sx[okx])]
        out.append((f"{path.rsplit('/', 1)[-1]}#{n}", canvas.transpose(2, 0, 1)[None].copy()))
    return out


def quantize(a):
    import os
    import tempfile

    import onnx
    import onnxruntime as ort
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat,
                                          QuantType, quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process

    model = onnx.load(a.model)
    size = model.graph.input[0].type.tensor_type.shape.dim[2].dim_value
    inputs = [(os.path.basename(p), letterbox(p, size)[0]) for p in a.images]
    if a.video:
        inputs += video_frames(a.video, a.every, size)
    print(f"quantize: onnxruntime {ort.__version__}, {len(inputs)} calibration inputs: "
          f"{', '.join(n for n, _ in inputs)}")

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter(inputs)

        def get_next(self):
            item = next(self.it, None)
            return None if item is None else {"images": item[1]}

    with tempfile.TemporaryDirectory() as tmp:
        pre = os.path.join(tmp, "pre.onnx")
        # onnxruntime's recommended pre-processing: shape inference + graph optimisation
        quant_pre_process(a.model, pre, skip_symbolic_shape=True)
        quantize_static(
            pre, a.out, Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
            # Keep the YOLO decode (Sigmoid/Exp/Mul/Add on the boxes and scores, after the last
            # convolutions) in float: only Conv (and what runs between them) is quantized.
            op_types_to_quantize=["Conv", "MaxPool", "Concat", "Resize", "LeakyRelu", "Slice"],
            nodes_to_exclude=[n.name for n in onnx.load(pre).graph.node
                              if ".r5" in n.name or n.name.split(".")[-1] in
                              ("t", "rows", "txy", "twh", "tscores", "sxy", "sxy_scaled", "gxy",
                               "xy", "ewh", "wh", "scores", "out") or n.name == "detections"],
            extra_options={"CalibTensorRangeSymmetric": False, "WeightSymmetric": True,
                           "ActivationSymmetric": False})
    m = onnx.load(a.out)
    m.doc_string = (model.doc_string + " int8 (QDQ, per-channel int8 weights, uint8 "
                    f"activations) by onnxruntime {ort.__version__} quantize_static, MinMax "
                    f"calibration on {len(inputs)} inputs.")
    onnx.helper.set_model_props(m, {p.key: p.value for p in model.metadata_props})
    # quant_pre_process's graph optimisation declares every domain ONNX Runtime knows; keep only
    # the ones a node uses (plain ONNX), for other runtimes (tract)
    used = {n.domain for n in m.graph.node} | {""}
    keep = [o for o in m.opset_import if o.domain in used]
    del m.opset_import[:]
    m.opset_import.extend(keep)
    onnx.checker.check_model(m)
    with open(a.out, "wb") as f:
        f.write(m.SerializeToString(deterministic=True))
    print(f"quantize: {a.model} -> {a.out} ({os.path.getsize(a.out)} bytes)")


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
    c.add_argument("--mask", action="append", default=[], type=parse_mask_override,
                   metavar="LAYER=I,J,K",
                   help="use anchors I,J,K for the [yolo] layer with darknet index LAYER "
                        "instead of the cfg's mask (repeatable)")
    c.add_argument("--doc", help="what the model is and where it comes from (doc_string)")
    k = sub.add_parser("check")
    k.add_argument("--model", required=True)
    k.add_argument("--names", required=True)
    k.add_argument("images", nargs="+")
    r = sub.add_parser("reference")
    r.add_argument("--cfg", required=True)
    r.add_argument("--weights", required=True)
    r.add_argument("--names", required=True)
    r.add_argument("--mask", action="append", default=[], type=parse_mask_override)
    r.add_argument("--key", required=True, help="model name in the JSON file")
    r.add_argument("--json", required=True)
    r.add_argument("--compare", help="ONNX model to compare with (our conversion)")
    r.add_argument("--thresh", type=float, default=0.25)
    r.add_argument("--nms", type=float, default=0.45)
    r.add_argument("--max-px-diff", type=float, default=0.05,
                   help="fail if --compare differs from OpenCV by more (photo pixels)")
    r.add_argument("images", nargs="+")
    q = sub.add_parser("quantize")
    q.add_argument("--model", required=True)
    q.add_argument("--out", required=True)
    q.add_argument("--video", help="H.264 file whose frames are added to the calibration set")
    q.add_argument("--every", type=int, default=10, help="take every N-th frame of --video")
    q.add_argument("images", nargs="*")
    a = ap.parse_args()
    if a.cmd == "convert":
        convert(a.cfg, a.weights, a.names, a.out, a.mask, a.doc)
    elif a.cmd == "reference":
        sys.exit(0 if reference(a) else 1)
    elif a.cmd == "quantize":
        quantize(a)
    else:
        sys.exit(0 if check(a.model, a.names, a.images, EXPECT) else 1)


if __name__ == "__main__":
    main()
