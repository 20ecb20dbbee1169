#!/usr/bin/env bash
# Fuzzes the UniFi Protect update-packet decoder (src/protect/packet.rs, target `protect_packet`
# in fuzz/) for a bounded time, starting from hand-built packets of each payload format.
#
#   scripts/fuzz-protect.sh [SECONDS]     default 60; exits non-zero when a crash is found
#
# Needs a nightly toolchain and cargo-fuzz (installed from crates.io when missing) and a C++
# compiler (libFuzzer is built from source). Crashes land in fuzz/artifacts/protect_packet/;
# replay one with `cd fuzz && cargo +nightly fuzz run protect_packet <file>`.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"

if ! rustup toolchain list | grep -q '^nightly'; then
    echo "fuzz-protect: installing a nightly toolchain (cargo-fuzz needs one)" >&2
    rustup toolchain install nightly --profile minimal || {
        echo "fuzz-protect: no nightly toolchain; the decoder's randomized unit test" \
            "(packet::tests::random_and_mutated_inputs_never_panic) is the fallback" >&2
        exit 1
    }
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

# Seeds: one valid message per payload format, plain and zlib, plus a zip bomb.
corpus=fuzz/corpus/protect_packet
mkdir -p "$corpus"
python3 - "$corpus" <<'PY'
import json, struct, sys, zlib, os
out = sys.argv[1]
def frame(ptype, fmt, payload, deflate):
    body = zlib.compress(payload) if deflate else payload
    return struct.pack(">BBBBI", ptype, fmt, 1 if deflate else 0, 0, len(body)) + body
action = json.dumps({"action": "add", "newUpdateId": "0b8e1c52-5e0a-4c43-9a1e-3f0a00000001",
                     "modelKey": "event", "id": "663a1f0c00e1d203e4000b01"}).encode()
event = json.dumps({"type": "smartDetectZone", "camera": "663a1f0c00e1d203e4000a01",
                    "start": 1714000001000, "smartDetectTypes": ["person", "vehicle"]}).encode()
payloads = {1: event, 2: "état ✓".encode(), 3: bytes(range(256))}
for deflate in (False, True):
    for fmt, data in payloads.items():
        name = f"seed-format{fmt}-{'zlib' if deflate else 'plain'}"
        with open(os.path.join(out, name), "wb") as f:
            f.write(frame(1, 1, action, deflate) + frame(2, fmt, data, deflate))
with open(os.path.join(out, "seed-zip-bomb"), "wb") as f:
    f.write(frame(1, 1, action, False) + frame(2, 3, b"\0" * (5 << 20), True))
PY

cd fuzz
exec cargo +nightly fuzz run protect_packet -- -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=1024
