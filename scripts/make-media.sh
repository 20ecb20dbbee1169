#!/usr/bin/env bash
# Makes the H.264 clips the tests and the demo camera use, from darknet's sample photos
# (Debian package `darknet`, /usr/share/darknet/data; licence GPL-3.0+ or MIT or WTFPL, used here
# under MIT/WTFPL). A person cut from person.jpg walks across horses.jpg. Encoded with ffmpeg's
# libx264 as Annex B. The outputs are committed; run this only to regenerate them.
set -euo pipefail
cd "$(dirname "$0")/.."
for p in ffmpeg darknet; do dpkg -s "$p" >/dev/null 2>&1 || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$p" >/dev/null; }; done
D=/usr/share/darknet/data
mkdir -p tests/data assets/demo
x264="-c:v libx264 -preset veryfast -tune zerolatency -g 30 -bsf:v h264_mp4toannexb -f h264"

# walk W H SECONDS FPS OUT [extra x264 options]: the person walks from left to right.
walk() {
  local w=$1 h=$2 secs=$3 fps=$4 out=$5; shift 5
  local ph=$((h * 48 / 100))
  ffmpeg -v error -y -loop 1 -i "$D/horses.jpg" -loop 1 -i "$D/person.jpg" -filter_complex \
    "[0]scale=${w}:${h},setsar=1[bg];[1]crop=110:290:180:88,scale=-2:${ph}[p];[bg][p]overlay=x='-w+(W+w)*t/${secs}':y=H-h-${h}/12:shortest=1,format=yuv420p" \
    -t "$secs" -r "$fps" $x264 "$@" "$out"
}

walk 320 180 4 15 tests/data/walk-320x180.h264 -bf 0 -profile:v baseline
walk 320 180 4 15 tests/data/walk-bframes-320x180.h264 -bf 2 -profile:v main -tune film
walk 480 270 2 15 /tmp/walk-480.h264 -bf 0 -profile:v baseline
cat tests/data/walk-320x180.h264 /tmp/walk-480.h264 > tests/data/resolution-change.h264
# A still scene with sensor noise and lighting flicker: must never be motion.
ffmpeg -v error -y -loop 1 -i "$D/horses.jpg" -vf \
  "scale=320:180,setsar=1,noise=alls=10:allf=t,eq=brightness='0.06*sin(2*PI*t*1.5)',format=yuv420p" \
  -t 4 -r 15 $x264 -bf 0 -crf 30 tests/data/static-flicker-320x180.h264
# Only light moving: a lamp's glow sweeps across the still scene, then the scene brightens (a light
# switched on). Motion, but no person or vehicle: the detector must keep it from becoming events.
ffmpeg -v error -y -loop 1 -i "$D/horses.jpg" -f lavfi \
  -i "color=c=black:s=100x100:r=15,format=rgba,geq=r=255:g=255:b=220:a='clip(300*(1-hypot(X-50\,Y-50)/50)\,0\,255)'" \
  -filter_complex "[0]scale=320:180,setsar=1[bg];[bg][1]overlay=x='-w+(W+w)*t/4':y=45:shortest=1,eq=brightness='if(gt(t\,2.5)\,0.12\,0)',format=yuv420p" \
  -t 4 -r 15 $x264 -bf 0 -profile:v baseline tests/data/light-sweep-320x180.h264
# The detection clips (issue 14). P is the person cut from person.jpg, 110x290.
P="crop=110:290:180:88"
bg() { echo "[0]scale=$1:$2,setsar=1[bg]"; }
# A small person far away: 120 px high (1/6 of 720p) walking across 1280x720 in 8 s.
ffmpeg -v error -y -loop 1 -i "$D/horses.jpg" -loop 1 -i "$D/person.jpg" -filter_complex \
  "$(bg 1280 720);[1]$P,scale=-2:120[p];[bg][p]overlay=x='-w+(W+w)*t/8':y=440:shortest=1,format=yuv420p" \
  -t 8 -r 15 $x264 -bf 0 -profile:v baseline -crf 28 tests/data/far-walk-1280x720.h264
# A person close to the camera: 480 px high (2/3 of 720p) walking across in 6 s.
ffmpeg -v error -y -loop 1 -i "$D/horses.jpg" -loop 1 -i "$D/person.jpg" -filter_complex \
  "$(bg 1280 720);[1]$P,scale=-2:480[p];[bg][p]overlay=x='-w+(W+w)*t/6':y=220:shortest=1,format=yuv420p" \
  -t 6 -r 15 $x264 -bf 0 -profile:v baseline -crf 28 tests/data/close-walk-1280x720.h264
# A group of three small people (one mirrored), about 1/6 of the frame high, walking across
# together.
ffmpeg -v error -y -loop 1 -i "$D/horses.jpg" -loop 1 -i "$D/person.jpg" -filter_complex \
  "$(bg 640 360);[1]$P,split=3[a][b][c];[a]scale=-2:60[a1];[b]hflip,scale=-2:56[b1];[c]scale=-2:64[c1];\
[bg][a1]overlay=x='-w+(W+w+170)*t/9':y=250:shortest=1[g1];\
[g1][b1]overlay=x='-w+(W+w+170)*t/9-80':y=244:shortest=1[g2];\
[g2][c1]overlay=x='-w+(W+w+170)*t/9-160':y=252:shortest=1,format=yuv420p" \
  -t 9 -r 15 $x264 -bf 0 -profile:v baseline -crf 26 tests/data/group-walk-640x360.h264
# At night: the scene and the person dark and noisy (a camera at high gain), and the same night
# with nobody there.
night="eq=brightness=-0.36:contrast=0.45:saturation=0.2,noise=alls=26:allf=t+u,format=yuv420p"
ffmpeg -v error -y -loop 1 -i "$D/horses.jpg" -loop 1 -i "$D/person.jpg" -filter_complex \
  "$(bg 640 360);[1]$P,scale=-2:170[p];[bg][p]overlay=x='-w+(W+w)*t/7':y=170:shortest=1,$night" \
  -t 7 -r 15 $x264 -bf 0 -profile:v baseline -crf 30 tests/data/night-walk-640x360.h264
ffmpeg -v error -y -loop 1 -i "$D/horses.jpg" -vf "scale=640:360,setsar=1,$night" \
  -t 7 -r 15 $x264 -bf 0 -profile:v baseline -crf 30 tests/data/night-empty-640x360.h264
# For the latency benchmark: 2 s of the empty scene, then a person standing there from frame 30
# on (t = 2.0 s at 15 fps), 3 s.
ffmpeg -v error -y -framerate 15 -loop 1 -i "$D/horses.jpg" -framerate 15 -loop 1 -i "$D/person.jpg" -filter_complex \
  "$(bg 640 360);[1]$P,scale=-2:170[p];[bg][p]overlay=x=300:y=160:enable='gte(t,2)':shortest=1,format=yuv420p" \
  -t 5 -r 15 $x264 -bf 0 -profile:v baseline -crf 26 tests/data/appear-640x360.h264
# A one-frame false positive: the person is there in frame 30 only (t = 2.0 s), 3 s.
ffmpeg -v error -y -framerate 15 -loop 1 -i "$D/horses.jpg" -framerate 15 -loop 1 -i "$D/person.jpg" -filter_complex \
  "$(bg 640 360);[1]$P,scale=-2:170[p];[bg][p]overlay=x=300:y=160:enable='eq(n,30)':shortest=1,format=yuv420p" \
  -t 3 -r 15 $x264 -bf 0 -profile:v baseline -crf 26 tests/data/flash-640x360.h264
# For the ingest benchmark: 2 s at 1080p.
walk 1920 1080 2 15 tests/data/walk-1920x1080.h264 -bf 2 -profile:v main -tune film -crf 30
# The demo camera: 12 s at 640x360, 15 fps, with B-frames like a real camera's main profile.
walk 640 360 12 15 assets/demo/person-walk.h264 -bf 2 -profile:v main -tune film -crf 26
ls -l tests/data/*.h264 assets/demo/*.h264
