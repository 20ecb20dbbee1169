#!/usr/bin/env bash
# Runs the whole test suite for an ARM target under qemu-user, without Docker:
#
#   scripts/test-arm.sh [TARGET] [cargo test args...]
#       TARGET: aarch64-unknown-linux-gnu (default) or armv7-unknown-linux-gnueabihf
#
# The tests are cross-compiled (rustup target + Debian's cross gcc), then every test binary and
# every `argus` process the tests start runs under qemu-user (scripts/qemu-run.sh). Servers the
# tests talk to (the loopback RTSP server, the fake Protect console and AI providers) run
# natively or inside the test binary, over real loopback sockets. On aarch64 the detector tests
# use ONNX Runtime's aarch64 build from PyPI; armv7 has none and uses tract.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${1:-aarch64-unknown-linux-gnu}"
shift || true
scripts/cross-deps.sh "$target"
scripts/make-model.sh >/dev/null
# shellcheck source=scripts/cross-env.sh
. scripts/cross-env.sh "$target"
runner="$(pwd)/scripts/qemu-run.sh"
_T="$(echo "${target//-/_}" | tr '[:lower:]' '[:upper:]')"
export "CARGO_TARGET_${_T}_RUNNER=$runner"
export ARGUS_TEST_EXEC_WRAPPER="$runner"
features=()
case "$target" in
  aarch64-unknown-linux-gnu)
    ORT_DYLIB_PATH="$(scripts/fetch-onnxruntime.sh aarch64)"
    export ORT_DYLIB_PATH
    ;;
  armv7-unknown-linux-gnueabihf)
    # No ONNX Runtime for armv7: its detector is tract, whose tests (detect_tract) run instead
    # of the ONNX Runtime ones (detect::, and pipeline::, which loads ONNX Runtime).
    unset ORT_DYLIB_PATH
    features=(--features tract)
    ;;
esac
# Left out under emulation, and why: qemu-user runs one inference of the detector in about
# 30-40 s (about 0.04 s natively), so tests that need the detector to keep up with a camera in
# real time (the demo clip at 5 fps through the whole pipeline), or that run hundreds of
# inferences (every analysed frame of the recorded walks), cannot finish or mean nothing here.
# They run natively (scripts/test.sh); the detector's aarch64 build is still exercised here by
# the single-image detection tests (person, dog, vehicles; empty scene and crops; CPU fallback).
# The three attack tests (hostile::) time a well-behaved client (under 1 s) while hundreds of
# slow connections run, and one Argon2 login takes about 1 s under emulation: they measure the
# emulator, not the server, so they run natively only (the code is the same on every target).
# The memory tests (memory::) read the peak RSS of the `argus` process: under emulation that is
# qemu's, and their login floods take minutes of emulated Argon2; they too run natively. So
# do the decoder's peak-allocation and camera-size checks (they encode and decode 4K and 12 MP
# pictures: 12 s and 4 s natively). The detection clips (detect_clips::: every analysed frame of
# 720p and night clips, at three phases, hundreds of inferences) and the appearing person through
# the whole pipeline in real time (from a file camera, and from the RTSP server firing an alert
# rule or reaching MQTT) are left out for the same reason as the walks. The web app's browser
# tests (ui::) drive Chromium through chromedriver, which the cross set-up does not provide (no
# Chromium under qemu); the app is the same files on every target and the server code that
# serves it is tested here by the other suites, so they run natively only. The clip tests
# (clips::, clips_http::) wait for person events of the demo walk through the real-time pipeline
# with the detector, like the walks above; the muxer, the ring, the fan-out and the Range parser
# are unit-tested here, and the live video (live::) runs here.
skips=(
  ui::
  clips::
  clips_http::
  detect_clips::
  pipeline::a_person_who_appears_is_one_event_with_her_box_and_a_flash_is_none
  rtsp::an_rtsp_person_fires_the_person_rule_and_not_the_vehicle_rule
  rtsp::an_rtsp_person_reaches_mqtt_with_motion_and_the_count_in_view
  ai::image::tests::the_estimate_bounds_what_a_decode_allocates
  ai::image::tests::camera_sized_images_fit_the_budget
  memory::a_login_flood_from_100_addresses_costs_a_few_hashes_of_memory_and_leaves_login_working
  memory::a_burst_of_logins_over_the_global_limit_gets_429
  memory::when_every_hashing_slot_stays_taken_logins_get_429_with_retry_after
  memory::oversized_images_are_refused_from_their_headers_before_any_decoding
  hostile::slow_headers_from_one_host_do_not_keep_another_out
  hostile::slow_headers_from_many_hosts_give_way_to_a_new_client
  hostile::slow_bodies_get_408_and_lock_nobody_out
  detect::a_walk_through_is_one_person_and_a_light_sweep_is_nobody
  detect::the_pool_serves_every_camera_and_drops_the_oldest_under_overload
  pipeline::the_demo_clip_makes_one_person_event_for_one_walk
  pipeline::light_without_anyone_is_no_event_unless_the_filter_wants_motion
  describe::the_demo_person_is_announced_then_described_with_fallback_in_the_owners_order
)
[ "$target" = armv7-unknown-linux-gnueabihf ] && skips+=(
  detect::finds_the_person_the_dog_and_the_vehicles
  detect::an_empty_scene_has_nothing_and_crops_map_back_to_the_frame
  detect::asking_for_cuda_or_tensorrt_without_them_falls_back_to_the_cpu
  detect::a_yolox_model_is_described_by_configuration_and_finds_the_same_objects
  pipeline::a_missing_model_stops_start_up_naming_it_or_runs_motion_only_when_asked
)
skip_args=()
for s in "${skips[@]}"; do skip_args+=(--skip "$s"); done
start=$SECONDS
cargo test --locked --target "$target" "${features[@]}" --no-run
echo "test-arm: built the $target tests in $((SECONDS - start)) s" >&2
start=$SECONDS
cargo test --locked --target "$target" "${features[@]}" "$@" -- "${skip_args[@]}"
echo "test-arm: ran the $target tests under qemu in $((SECONDS - start)) s" >&2
