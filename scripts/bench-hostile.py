#!/usr/bin/env python3
"""Hostile clients against the real appliance on loopback, and what a well-behaved client sees.

Starts `argus` (ARGUS_BIN, default target/release/argus) on a fresh data dir, then for each
attack measures the latency of a normal client connecting from 127.0.0.9 (a new connection per
request) and the server's memory (VmRSS, VmHWM):

  baseline     no attack
  slowloris-1  400 connections from 127.0.0.1, each sending a request line and then one header
               byte every 3 s
  slowloris-n  300 connections from 30 addresses (127.0.2.x), the same way
  slow-bodies  40 logins from 8 addresses (127.0.3.x) with a 2,000-byte body sent a byte every 3 s;
               the normal client logs in

Loopback only, bounded in count and time (about a minute in all). Usage:
  scripts/bench-hostile.py [--seconds 10]
"""

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLIENT = "127.0.0.9"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def mem(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM"):
                out[k] = int(v.split()[0]) // 1024
    return out


async def request(port, raw, timeout=20.0):
    """One request on a new connection from CLIENT; returns (status, seconds)."""
    t = time.perf_counter()
    r, w = await asyncio.wait_for(
        asyncio.open_connection("127.0.0.1", port, local_addr=(CLIENT, 0)), timeout
    )
    w.write(raw)
    await w.drain()
    line = await asyncio.wait_for(r.readline(), timeout)
    took = time.perf_counter() - t
    w.close()
    return int(line.split()[1]), took


async def slow_conn(port, src, body_head, seconds, results):
    try:
        r, w = await asyncio.open_connection("127.0.0.1", port, local_addr=(src, 0))
    except OSError:
        results.append("connect-failed")
        return
    w.write(body_head)
    end = time.monotonic() + seconds
    try:
        while time.monotonic() < end:
            try:
                line = await asyncio.wait_for(r.readline(), 3.0)
                results.append(line.split()[1].decode() if line else "closed")
                return
            except asyncio.TimeoutError:
                w.write(b"a")
                await w.drain()
        results.append("held")
    except (ConnectionError, OSError):
        results.append("closed")
    finally:
        w.close()


def summary(lat):
    lat = sorted(lat)
    ms = [x * 1000 for x in lat]
    return {
        "n": len(ms),
        "p50_ms": round(statistics.median(ms), 1),
        "p99_ms": round(ms[min(len(ms) - 1, int(len(ms) * 0.99))], 1),
        "max_ms": round(ms[-1], 1),
    }


async def normal_client(port, seconds, raw, expect):
    lat, statuses = [], []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            status, took = await request(port, raw)
        except (asyncio.TimeoutError, OSError):
            status, took = "timeout", 20.0
        statuses.append(status)
        lat.append(took)
        await asyncio.sleep(0.2)
    bad = [s for s in statuses if s != expect]
    return summary(lat), bad


async def scenario(name, port, pid, seconds, attackers, raw, expect):
    results = []
    before = mem(pid)
    tasks = [asyncio.create_task(slow_conn(port, src, head, seconds + 2, results)) for src, head in attackers]
    await asyncio.sleep(1.5)
    lat, bad = await normal_client(port, seconds, raw, expect)
    await asyncio.gather(*tasks)
    after = mem(pid)
    counts = {}
    for r in results:
        counts[r] = counts.get(r, 0) + 1
    print(
        json.dumps(
            {
                "scenario": name,
                "normal_client": lat,
                "normal_client_unexpected": bad[:5],
                "attackers": counts,
                "rss_mib": [before["VmRSS"], after["VmRSS"]],
                "hwm_growth_mib": after["VmHWM"] - before["VmHWM"],
            }
        ),
        flush=True,
    )


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=10)
    a = ap.parse_args()
    binary = os.environ.get("ARGUS_BIN", os.path.join(ROOT, "target/release/argus"))
    port = free_port()
    data = tempfile.mkdtemp(prefix="argus-hostile-")
    # The normal client logs in every 0.2 s: lift the per-address login limit for it.
    config = os.path.join(data, "argus.toml")
    with open(config, "w") as f:
        f.write("[auth]\nlogin_attempts_per_15min = 100000\n")
    proc = subprocess.Popen(
        [binary, "--config", config, "--data-dir", os.path.join(data, "d"),
         "--listen", f"127.0.0.1:{port}", "--motion-only"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/system/health", timeout=1)
                break
            except OSError:
                time.sleep(0.05)
        password = open(os.path.join(data, "d", "initial-admin-password")).read().strip()
        health = b"GET /api/v1/system/health HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n"
        body = json.dumps({"username": "admin", "password": password}).encode()
        login = (
            b"POST /api/v1/auth/login HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n"
            b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)
        ) + body
        slow_head = b"GET /api/v1/system/health HTTP/1.1\r\nX-Slow: "
        slow_body = (
            b"POST /api/v1/auth/login HTTP/1.1\r\nHost: bench\r\n"
            b"Content-Type: application/json\r\nContent-Length: 2000\r\n\r\n"
        )
        s = a.seconds
        await scenario("baseline", port, proc.pid, s, [], health, 200)
        await scenario("slowloris-1", port, proc.pid, s, [("127.0.0.1", slow_head)] * 400, health, 200)
        many = [(f"127.0.2.{i}", slow_head) for i in range(1, 31) for _ in range(10)]
        await scenario("slowloris-n", port, proc.pid, s, many, health, 200)
        bodies = [(f"127.0.3.{i % 8 + 1}", slow_body) for i in range(40)]
        await scenario("slow-bodies", port, proc.pid, s, bodies, login, 200)
    finally:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
