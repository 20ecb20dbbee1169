#!/usr/bin/env bash
# Installs the system packages the build and tests need, when missing. Idempotent; needs root
# (or sudo) only when something is missing. Extra package names may be given as arguments.
set -euo pipefail
# gcc/g++: OpenH264 and SQLite are built from source; libclang-dev: bindgen for the V4L2
# headers; GStreamer's RTSP server (through Debian's python3-gi): the loopback camera the RTSP
# tests talk to.
# unzip, systemd (systemd-analyze) and shellcheck: the Buildroot and systemd unit checks.
# mosquitto (and its clients): the real MQTT broker each MQTT test starts on loopback.
# chromium and chromium-driver: the headless browser the web app's tests (ui::) drive over
# WebDriver (/usr/bin/chromium, /usr/bin/chromedriver).
# ffmpeg (ffprobe): the clip and live-video tests check the MP4 they get with the real tools.
pkgs=(gcc g++ pkg-config curl libclang-dev python3-gi gir1.2-gst-rtsp-server-1.0
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly
  unzip systemd shellcheck mosquitto mosquitto-clients chromium chromium-driver ffmpeg "$@")
missing=()
for p in "${pkgs[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
command -v cargo >/dev/null || { echo "cargo not found: install Rust from rustup.rs" >&2; exit 1; }
