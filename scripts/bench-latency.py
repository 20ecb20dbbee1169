#!/usr/bin/env python3
"""First-sighting latency: from the first frame that shows a person to `event.created` on /ws.

    scripts/bench-latency.sh [--runs 30] [--bin target/release/argus]

The loopback RTSP server (tests/support/rtsp_server.py, GStreamer) gives every client its own
stream of tests/data/appear-640x360.h264's frames at 15 fps: 2 s of an empty scene, then a person
standing there from frame 30 on. It prints the wall-clock time at which frame 30 of each stream
leaves its pacer (MARK). Each run adds an RTSP camera (analysis at 5 fps, the default filter),
waits for its `event.created` on a WebSocket opened before, records the difference, and deletes
the camera. Everything is on loopback and one machine's clock. Prints each run and p50/p90/p99.
Only the standard library is used (the WebSocket client is the few lines below).
"""
import argparse
import base64
import json
import os
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def api(port, method, path, body=None, token=None):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method)
    if body is not None:
        req.data = json.dumps(body).encode()
        req.add_header("content-type", "application/json")
    if token:
        req.add_header("authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=10) as r:
        data = r.read()
        return json.loads(data) if data else None


class WebSocket:
    """A minimal RFC 6455 client: text frames in, pongs out."""

    def __init__(self, port, token):
        self.sock = socket.create_connection(("127.0.0.1", port))
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            (f"GET /ws?token={token} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
             f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n")
            .encode())
        head = b""
        while b"\r\n\r\n" not in head:
            head += self.sock.recv(1)
        if b" 101 " not in head.split(b"\r\n")[0]:
            raise SystemExit(f"WebSocket refused: {head!r}")

    def _exact(self, n):
        b = b""
        while len(b) < n:
            c = self.sock.recv(n - len(b))
            if not c:
                raise EOFError
            b += c
        return b

    def _send(self, opcode, payload):
        mask = os.urandom(4)
        masked = bytes(c ^ mask[i % 4] for i, c in enumerate(payload))
        self.sock.sendall(bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + masked)

    def recv(self):
        """The next text message, with the time its last byte arrived."""
        while True:
            b0, b1 = self._exact(2)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack(">H", self._exact(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self._exact(8))[0]
            payload = self._exact(n)
            at = time.time()
            op = b0 & 0x0F
            if op == 9:
                self._send(10, payload)
            elif op == 8:
                raise EOFError
            elif op == 1:
                return json.loads(payload), at


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--bin", default=os.path.join(ROOT, "target/release/argus"))
    ap.add_argument("--clip", default=os.path.join(ROOT, "tests/data/appear-640x360.h264"))
    ap.add_argument("--mark", type=int, default=30, help="first frame (from 0) with the person")
    ap.add_argument("--model", help="a model description (default: the shipped one)")
    a = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="argus-latency-")
    frames = os.path.join(tmp, "frames")
    os.mkdir(frames)
    subprocess.run(["ffmpeg", "-v", "error", "-i", a.clip, "-q:v", "2", "-start_number", "0",
                    os.path.join(frames, "%04d.jpg")], check=True)

    rtsp_port, port = free_port(), free_port()
    rtsp = subprocess.Popen(
        ["/usr/bin/python3", os.path.join(ROOT, "tests/support/rtsp_server.py"), str(rtsp_port),
         "--frames", os.path.join(frames, "%04d.jpg"), "--mark", str(a.mark)],
        stdout=subprocess.PIPE, text=True)
    marks = []
    ready = threading.Event()

    def read_server():
        for line in rtsp.stdout:
            if line.startswith("READY"):
                ready.set()
            elif line.startswith("MARK "):
                marks.append(float(line.split()[1]))

    threading.Thread(target=read_server, daemon=True).start()
    if not ready.wait(20):
        raise SystemExit("the RTSP server did not start")

    env = dict(os.environ, ARGUS_LOG=os.environ.get("ARGUS_LOG", "warn"))
    data = os.path.join(tmp, "data")
    cmd = [a.bin, "serve", "--data-dir", data, "--listen", f"127.0.0.1:{port}"]
    if a.model:
        cmd += ["--model", a.model]
    app = subprocess.Popen(cmd, env=env, cwd=ROOT)
    try:
        for _ in range(200):
            try:
                health = api(port, "GET", "/api/v1/system/health")
                break
            except OSError:
                time.sleep(0.1)
        else:
            raise SystemExit("the appliance did not start")
        pw = open(os.path.join(data, "initial-admin-password")).read().strip()
        tok = api(port, "POST", "/api/v1/auth/login", {"username": "admin", "password": pw})
        tok = tok["access_token"]
        api(port, "POST", "/api/v1/auth/change-password",
            {"current_password": pw, "new_password": "Bench-Password-1"}, tok)
        tok = api(port, "POST", "/api/v1/auth/login",
                  {"username": "admin", "password": "Bench-Password-1"})["access_token"]
        det = api(port, "GET", "/api/v1/system/health")["detector"]
        print(f"detector: {det.get('mode')} {det.get('backend')} {det.get('model')}",
              file=sys.stderr)
        ws = WebSocket(port, tok)
        got = {}
        lock = threading.Condition()

        def read_ws():
            try:
                while True:
                    msg, at = ws.recv()
                    if msg.get("type") == "event.created":
                        with lock:
                            got.setdefault(msg["data"]["camera_id"], (at, msg["data"]))
                            lock.notify_all()
            except (EOFError, OSError):
                pass

        threading.Thread(target=read_ws, daemon=True).start()
        lat = []
        for run in range(a.runs):
            seen = len(marks)
            cam = api(port, "POST", "/api/v1/cameras",
                      {"name": f"Door {run}", "type": "rtsp", "frame_rate": 5,
                       "rtsp_url": f"rtsp://127.0.0.1:{rtsp_port}/test"}, tok)
            with lock:
                lock.wait_for(lambda: cam["id"] in got, timeout=20)
            if cam["id"] not in got or len(marks) <= seen:
                print(f"run {run + 1}: no event (marks {len(marks) - seen})", file=sys.stderr)
            else:
                at, ev = got[cam["id"]]
                ms = (at - marks[seen]) * 1000
                lat.append(ms)
                print(f"run {run + 1:2}: {ms:6.0f} ms  {ev['detection_type']} "
                      f"{ev['confidence']}%", file=sys.stderr)
            api(port, "DELETE", f"/api/v1/cameras/{cam['id']}", token=tok)
            time.sleep(0.3)
        if not lat:
            raise SystemExit("no run produced an event")
        q = statistics.quantiles(lat, n=100, method="inclusive") if len(lat) > 1 else lat * 99
        print(f"| binary | runs | events | min | p50 | p90 | p99 | max |")
        print(f"| --- | --- | --- | --- | --- | --- | --- | --- |")
        print(f"| {a.bin} | {a.runs} | {len(lat)} | {min(lat):.0f} ms | {q[49]:.0f} ms | "
              f"{q[89]:.0f} ms | {q[98]:.0f} ms | {max(lat):.0f} ms |")
    finally:
        app.terminate()
        rtsp.terminate()
        app.wait()
        rtsp.wait()


if __name__ == "__main__":
    main()
