//! RTSP cameras through retina: DESCRIBE/SETUP/PLAY over TCP (interleaved, the default) or UDP,
//! basic and digest authentication, H.264 delivered as Annex B access units with the parameter
//! sets before every key frame. retina sets no timeouts of its own, so every step here has one.
//!
//! `rtsps://` (RTSP over TLS) goes through a local TLS tunnel (`tls_tunnel.rs`), since retina
//! speaks plain RTSP only; such cameras always use TCP transport.

use super::{BoxFuture, CaptureError, Packet, Source, SourceSpec};
use futures_util::StreamExt;
use retina::client::{
    Credentials, Demuxed, PlayOptions, Session, SessionOptions, SetupOptions, Transport,
};
use retina::codec::{CodecItem, FrameFormat};
use std::time::Duration;

const STEP_TIMEOUT: Duration = Duration::from_secs(10);
/// No packet for this long is a stalled stream.
pub const STALL_TIMEOUT: Duration = Duration::from_secs(10);

pub struct RtspSource {
    demuxed: Demuxed,
    /// Keeps an `rtsps://` camera's tunnel open while the session uses it.
    _tunnel: Option<super::tls_tunnel::Tunnel>,
    video_stream: usize,
    fps: Option<f32>,
    /// Packets were lost: drop frames until the next key frame.
    need_key_frame: bool,
}

fn classify(e: retina::Error) -> CaptureError {
    match e.status_code() {
        Some(401) | Some(403) => CaptureError::Unauthorized,
        Some(404) => {
            CaptureError::Unreachable("the camera has no stream at that path (404)".into())
        }
        Some(code) => CaptureError::Stream(format!("the camera answered RTSP status {code}")),
        None => {
            let msg = e.to_string();
            if msg.contains("Unable to connect")
                || msg.contains("onnection refused")
                || msg.contains("resolve")
            {
                CaptureError::Unreachable(msg)
            } else {
                CaptureError::Stream(msg)
            }
        }
    }
}

async fn step<T>(
    what: &str,
    f: impl std::future::Future<Output = Result<T, retina::Error>>,
) -> Result<T, CaptureError> {
    match tokio::time::timeout(STEP_TIMEOUT, f).await {
        Ok(r) => r.map_err(classify),
        Err(_) => Err(CaptureError::Timeout(format!(
            "no answer to {what} within {} s",
            STEP_TIMEOUT.as_secs()
        ))),
    }
}

impl RtspSource {
    pub async fn open(spec: &SourceSpec) -> Result<RtspSource, CaptureError> {
        let raw = spec
            .rtsp_url
            .as_deref()
            .ok_or_else(|| CaptureError::Config("rtsp_url is missing".into()))?;
        let mut url =
            url::Url::parse(raw).map_err(|e| CaptureError::Config(format!("rtsp_url: {e}")))?;
        // Credentials travel in the session options, never in the URL.
        let mut username = spec.username.clone().filter(|u| !u.is_empty());
        let mut password = spec.password.clone();
        if !url.username().is_empty() {
            username.get_or_insert_with(|| url.username().to_string());
            if password.is_none() {
                password = url.password().map(str::to_string);
            }
            let _ = url.set_username("");
            let _ = url.set_password(None);
        }
        let tls = url.scheme() == "rtsps";
        let tunnel = if tls {
            Some(super::tls_tunnel::open(&url).await?)
        } else {
            None
        };
        if let Some(t) = &tunnel {
            url = t.local_url.clone();
        }
        let creds = username.map(|username| Credentials {
            username,
            password: password.unwrap_or_default(),
        });
        let opts = SessionOptions::default()
            .creds(creds)
            .user_agent(format!("argus/{}", env!("CARGO_PKG_VERSION")));
        let mut session = step("DESCRIBE", Session::describe(url, opts)).await?;
        let video_stream = session
            .streams()
            .iter()
            .position(|s| s.media() == "video" && s.encoding_name().eq_ignore_ascii_case("h264"))
            .ok_or_else(|| {
                let found: Vec<String> = session
                    .streams()
                    .iter()
                    .map(|s| format!("{}/{}", s.media(), s.encoding_name()))
                    .collect();
                CaptureError::Unsupported(format!(
                    "no H.264 video stream (found: {}); set the camera to H.264",
                    if found.is_empty() {
                        "none".into()
                    } else {
                        found.join(", ")
                    }
                ))
            })?;
        let fps = session.streams()[video_stream].framerate();
        let transport = match spec.rtsp_transport.as_str() {
            "udp" if !tls => Transport::Udp(Default::default()),
            _ => Transport::Tcp(Default::default()),
        };
        let setup = SetupOptions::default()
            .transport(transport)
            .frame_format(FrameFormat::SIMPLE);
        step("SETUP", session.setup(video_stream, setup)).await?;
        let playing = step("PLAY", session.play(PlayOptions::default())).await?;
        let demuxed = playing.demuxed().map_err(classify)?;
        Ok(RtspSource {
            demuxed,
            _tunnel: tunnel,
            video_stream,
            fps,
            need_key_frame: false,
        })
    }
}

impl Source for RtspSource {
    fn codec(&self) -> &'static str {
        "h264"
    }

    fn nominal_fps(&self) -> Option<f32> {
        self.fps
    }

    fn next(&mut self) -> BoxFuture<'_, Result<Packet, CaptureError>> {
        Box::pin(async move {
            loop {
                let item = match tokio::time::timeout(STALL_TIMEOUT, self.demuxed.next()).await {
                    Err(_) => {
                        return Err(CaptureError::Timeout(format!(
                            "no video for {} s",
                            STALL_TIMEOUT.as_secs()
                        )))
                    }
                    Ok(None) => {
                        return Err(CaptureError::Stream("the camera ended the stream".into()))
                    }
                    Ok(Some(Err(e))) => return Err(classify(e)),
                    Ok(Some(Ok(item))) => item,
                };
                if let CodecItem::VideoFrame(f) = item {
                    if f.stream_id() != self.video_stream {
                        continue;
                    }
                    if f.loss() > 0 {
                        self.need_key_frame = true;
                    }
                    if self.need_key_frame {
                        if !f.is_random_access_point() {
                            continue;
                        }
                        self.need_key_frame = false;
                    }
                    return Ok(Packet::H264(f.into_data()));
                }
            }
        })
    }
}
