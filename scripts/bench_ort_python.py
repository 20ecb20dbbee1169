# Times bare inference of an ONNX model with the onnxruntime Python package (1 and 2 threads),
# for comparison with the appliance (scripts/bench-detect.sh).
import sys, time, numpy as np, onnxruntime as ort
for threads in (1, 2):
    o = ort.SessionOptions(); o.intra_op_num_threads = threads
    s = ort.InferenceSession(sys.argv[1], o, providers=["CPUExecutionProvider"])
    x = np.random.rand(1, 3, 416, 416).astype(np.float32)
    s.run(None, {"images": x})
    best = 1e9
    for _ in range(3):
        t = time.perf_counter(); n = 0
        while time.perf_counter() - t < 3:
            s.run(None, {"images": x}); n += 1
        best = min(best, (time.perf_counter() - t) * 1000 / n)
    print(f"python onnxruntime {ort.__version__}, {threads} thread(s): {best:.2f} ms")
