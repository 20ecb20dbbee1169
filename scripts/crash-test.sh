#!/usr/bin/env bash
# Crash test: starts the appliance, drives events with snapshots through the API from several
# concurrent clients, kills it with SIGKILL at a random moment, restarts it and verifies:
#   - `argus db check --grace 0` passes (SQLite integrity and foreign keys, no orphaned or temp
#     files, no row without its file);
#   - every event acknowledged (201) before any kill is there, with its snapshot byte for byte;
#   - the snapshot files are exactly those of the events (nothing orphaned).
# Repeats for ROUNDS rounds (default 20) on the same data dir; exits non-zero on any failure.
#
#   scripts/crash-test.sh                      # builds the debug binary
#   ARGUS_BIN=path/to/argus ROUNDS=50 scripts/crash-test.sh
#
# The debug binary is used by default: CI has just built it for the tests (a release build
# would add minutes of LTO), and crash safety does not depend on the optimisation level.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS="${ROUNDS:-20}"
CLIENTS="${CLIENTS:-6}"
if [[ -z "${ARGUS_BIN:-}" ]]; then
  cargo build --locked --bin argus >&2
  ARGUS_BIN="${CARGO_TARGET_DIR:-target}/debug/argus"
fi
DATA="$(mktemp -d)"
trap 'rm -rf "$DATA"' EXIT
python3 - "$ARGUS_BIN" "$DATA/data" "$ROUNDS" "$CLIENTS" <<'PY'
import hashlib, http.client, json, os, random, signal, socket, subprocess, sys, threading, time, base64

BIN, DATA, ROUNDS, CLIENTS = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
ENV = dict(os.environ, ARGUS_LOG="warn")
ENV.pop("ARGUS_CONFIG", None)

def fail(msg):
    print(f"crash test: FAILED: {msg}", file=sys.stderr)
    sys.exit(1)

def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p

def cli(*args):
    r = subprocess.run([BIN, *args, "--data-dir", DATA], env=ENV, capture_output=True, text=True)
    return r.returncode, r.stdout, r.stderr

class Server:
    def __init__(self):
        self.port = free_port()
        self.proc = subprocess.Popen(
            [BIN, "serve", "--motion-only", "--data-dir", DATA, "--listen", f"127.0.0.1:{self.port}"],
            env=ENV, stdout=subprocess.DEVNULL, stderr=open(os.path.join(os.path.dirname(DATA), "server.log"), "a"))
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                c.request("GET", "/api/v1/system/health")
                if c.getresponse().status == 200:
                    return
            except OSError:
                pass
            if self.proc.poll() is not None:
                fail(f"the appliance exited with {self.proc.returncode} at start")
            time.sleep(0.05)
        fail("the appliance did not come up")

    def kill(self):
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

def request(port, key, method, path, body=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    h = {"X-API-Key": key}
    if body is not None:
        h["Content-Type"] = "application/json"
        body = json.dumps(body)
    c.request(method, path, body=body, headers=h)
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, data

def jpeg(n):
    return b"\xff\xd8\xff\xe0" + os.urandom(n - 4)

server = Server()
code, out, err = cli("api-keys", "create", "--name", "crash-test", "--scopes", "admin",
                     "--rate-limit", "100000")
if code != 0:
    fail(f"api-keys create: {err}")
KEY = out.strip().splitlines()[-1]
st, body = request(server.port, KEY, "POST", "/api/v1/cameras",
                   {"name": "Crash", "type": "rtsp", "rtsp_url": "rtsp://127.0.0.1:1/x", "is_enabled": False})
if st != 201:
    fail(f"camera: {st} {body[:200]}")
CAM = json.loads(body)["id"]

acked = {}          # id -> sha256 of the snapshot sent
lock = threading.Lock()
total_checked = swept_orphans = swept_temp = 0
for rnd in range(1, ROUNDS + 1):
    new = {}
    stop = threading.Event()
    def client():
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        while not stop.is_set():
            img = jpeg(random.randint(2_000, 24_000))
            body = json.dumps({"camera_id": CAM, "detection_type": "person",
                               "thumbnail_base64": base64.b64encode(img).decode()})
            try:
                conn.request("POST", "/api/v1/events", body=body,
                             headers={"X-API-Key": KEY, "Content-Type": "application/json"})
                r = conn.getresponse()
                data = r.read()
            except (OSError, http.client.HTTPException):
                return          # killed mid-request: not acknowledged
            if r.status != 201:
                print(f"crash test: unexpected {r.status}: {data[:200]!r}", file=sys.stderr)
                os._exit(1)
            ev = json.loads(data)
            with lock:
                new[ev["id"]] = hashlib.sha256(img).hexdigest()
    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    for t in threads:
        t.start()
    time.sleep(random.uniform(0.3, 2.0))
    server.kill()
    stop.set()
    for t in threads:
        t.join()
    acked.update(new)

    server = Server()
    st, body = request(server.port, KEY, "GET", "/api/v1/system/storage")
    sweep = json.loads(body)["consistency"]
    swept_orphans += sweep["orphans_removed"]
    swept_temp += sweep["temp_files_removed"]
    if sweep["rows_missing_file"]:
        fail(f"round {rnd}: {sweep['rows_missing_file']} rows lost their snapshot file")
    code, out, err = cli("db", "check", "--grace", "0")
    if code != 0:
        fail(f"round {rnd}: argus db check failed:\n{out}\n{err}")
    # Every event acknowledged in this round, with its snapshot byte for byte.
    for eid, digest in new.items():
        st, body = request(server.port, KEY, "GET", f"/api/v1/events/{eid}")
        if st != 200:
            fail(f"round {rnd}: acknowledged event {eid} is gone ({st})")
        st, img = request(server.port, KEY, "GET", f"/api/v1/events/{eid}/thumbnail")
        if st != 200 or hashlib.sha256(img).hexdigest() != digest:
            fail(f"round {rnd}: the snapshot of acknowledged event {eid} is missing or different ({st})")
    total_checked += len(new)
    # Every event acknowledged so far is listed, and the files are exactly the events' snapshots.
    listed, with_thumb, page = set(), set(), 1
    while True:
        st, body = request(server.port, KEY, "GET", f"/api/v1/events?limit=500&page={page}")
        v = json.loads(body)
        for e in v["items"]:
            listed.add(e["id"])
            if e["thumbnail_url"]:
                with_thumb.add(e["id"])
        if page >= v["pages"]:
            break
        page += 1
    lost = set(acked) - listed
    if lost:
        fail(f"round {rnd}: {len(lost)} acknowledged events lost, e.g. {sorted(lost)[:3]}")
    files = set()
    for root, _, names in os.walk(os.path.join(DATA, "thumbnails")):
        for n in names:
            files.add(n)
    want = {f"{i}.jpg" for i in with_thumb}
    if files != want:
        fail(f"round {rnd}: files and rows differ: {len(files - want)} orphaned, {len(want - files)} missing")
    print(f"round {rnd}: {len(new)} acknowledged before the kill, all present; start-up sweep "
          f"removed {sweep['orphans_removed']} orphaned and {sweep['temp_files_removed']} temp files; "
          f"{len(listed)} events, {len(files)} snapshots, integrity ok, no orphans", file=sys.stderr)
server.kill()
unacked = len(listed) - len(acked)
print(f"crash test: {ROUNDS} rounds, {len(acked)} acknowledged events checked "
      f"({total_checked} byte for byte right after their round), 0 lost, 0 orphans; "
      f"{unacked} more events committed whose answer the kill cut off; the start-up sweeps removed "
      f"{swept_orphans} orphaned snapshots and {swept_temp} temp files left by the kills")
PY
