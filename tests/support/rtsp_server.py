#!/usr/bin/python3
"""A real RTSP server on loopback for the integration tests (GStreamer's gst-rtsp-server,
through Debian's python3-gi; run it with /usr/bin/python3).

    rtsp_server.py PORT [--user U --password P] [--codec h264|vp8] [--tls-cert C --tls-key K]
                        [--frames 'DIR/%04d.jpg' --mark N]

Serves rtsp://127.0.0.1:PORT/test: a live 320x180, 15 fps test picture with a moving ball,
encoded as H.264 (x264, with B-frames off) or as VP8 (a codec the appliance does not take). With --user/--password the server
requires those credentials (Basic and Digest); with --tls-cert/--tls-key it speaks RTSP over
TLS (rtsps). Prints READY when it listens.

With --frames, each client instead gets its own stream of those numbered JPEG frames (from 0,
15 fps, once), paced in real time; with --mark N the server prints `MARK <unix time>` when it
sends frame N of a client's stream and `START <unix time>` when its first frame goes (the
latency benchmark, scripts/bench-latency.py, measures from the marked frame).
"""
import time
import argparse
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import Gio, GLib, Gst, GstRtspServer  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("port", type=int)
ap.add_argument("--user")
ap.add_argument("--password")
ap.add_argument("--codec", default="h264", choices=["h264", "vp8"])
ap.add_argument("--tls-cert")
ap.add_argument("--tls-key")
ap.add_argument("--frames")
ap.add_argument("--mark", type=int)
args = ap.parse_args()

Gst.init(None)
src = ("videotestsrc is-live=true pattern=ball motion=sweep background-color=0xff406040 "
       "! video/x-raw,width=320,height=180,framerate=15/1 ! videoconvert ")
if args.frames:
    # identity sync=true holds every frame until its time: the stream runs at 15 fps from PLAY.
    src = (f'multifilesrc location="{args.frames}" index=0 caps="image/jpeg,framerate=15/1" '
           "! jpegdec ! videoconvert ! identity name=pace sync=true ")
if args.codec == "h264":
    enc = ("! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=15 bframes=0 "
           "! video/x-h264,profile=baseline ! rtph264pay name=pay0 pt=96 config-interval=1")
else:
    enc = "! vp8enc deadline=1 ! rtpvp8pay name=pay0 pt=96"

server = GstRtspServer.RTSPServer()
server.set_address("127.0.0.1")
server.set_service(str(args.port))
factory = GstRtspServer.RTSPMediaFactory()
factory.set_launch(f"( {src} {enc} )")
factory.set_shared(not args.frames)


def on_media(_factory, media):
    """Logs when the marked frame of this client's stream leaves the pacer."""
    pace = media.get_element().get_by_name("pace")
    count = [0]

    def probe(_pad, _info):
        if count[0] == 0:
            print(f"START {time.time():.6f}", flush=True)
        if count[0] == args.mark:
            print(f"MARK {time.time():.6f}", flush=True)
        count[0] += 1
        return Gst.PadProbeReturn.OK

    pace.get_static_pad("src").add_probe(Gst.PadProbeType.BUFFER, probe)


if args.frames and args.mark is not None:
    factory.connect("media-configure", on_media)

auth = None
if args.user or args.tls_cert:
    auth = GstRtspServer.RTSPAuth()
if args.tls_cert:
    auth.set_tls_certificate(Gio.TlsCertificate.new_from_files(args.tls_cert, args.tls_key))
    if not args.user:
        # Anonymous access, but over TLS.
        token = GstRtspServer.RTSPToken()
        token.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, "anonymous")
        auth.set_default_token(token)
        perms = GstRtspServer.RTSPPermissions()
        perms.add_permission_for_role("anonymous", GstRtspServer.RTSP_PERM_MEDIA_FACTORY_ACCESS, True)
        perms.add_permission_for_role("anonymous", GstRtspServer.RTSP_PERM_MEDIA_FACTORY_CONSTRUCT, True)
        factory.set_permissions(perms)
    server.set_auth(auth)
if args.user:
    token = GstRtspServer.RTSPToken()
    token.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, "user")
    try:
        auth.set_supported_methods(GstRtspServer.RTSPAuthMethod.BASIC | GstRtspServer.RTSPAuthMethod.DIGEST)
        auth.add_digest(args.user, args.password, token)
    except AttributeError:
        pass
    auth.add_basic(GstRtspServer.RTSPAuth.make_basic(args.user, args.password), token)
    server.set_auth(auth)
    perms = GstRtspServer.RTSPPermissions()
    perms.add_permission_for_role("user", GstRtspServer.RTSP_PERM_MEDIA_FACTORY_ACCESS, True)
    perms.add_permission_for_role("user", GstRtspServer.RTSP_PERM_MEDIA_FACTORY_CONSTRUCT, True)
    factory.set_permissions(perms)

server.get_mount_points().add_factory("/test", factory)
if server.attach(None) == 0:
    print("cannot listen", file=sys.stderr)
    sys.exit(1)
print("READY", flush=True)
GLib.MainLoop().run()
