#!/usr/bin/env bash
# Clips and live video benchmark (benches/clips.rs): the CPU one camera's clip recorder adds,
# the CPU one live viewer adds (its pipeline alone, and end to end through the real server), and
# the pre-capture ring's memory, for the demo stream (640x360, 15 fps) fed in real time.
# About 100 s of measuring after the release build.
#
#   scripts/bench-clips.sh
#   BENCH_DIR=/mnt/sd RECORD_SECS=64 scripts/bench-clips.sh   # clips on the card you care about
#   ONLY=record scripts/bench-clips.sh                          # one part: record|pipe|server|memory
set -euo pipefail
cd "$(dirname "$0")/.."
ORT_DYLIB_PATH="$(scripts/fetch-onnxruntime.sh)"
export ORT_DYLIB_PATH
export ARGUS_LOG="${ARGUS_LOG:-warn}"
cargo bench --locked --features tract --bench clips
