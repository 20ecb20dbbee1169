//! Live video of a camera: `GET /cameras/{id}/live`, a WebSocket that carries the camera's own
//! H.264 as fragmented MP4 for Media Source Extensions (a `stream` text message, the init
//! segment, then one fragment per access unit, never re-encoded), and
//! `GET /cameras/{id}/live.mjpeg`, multipart JPEG of the decoded pictures at the camera's
//! analysis rate for browsers without MSE. Both count against the camera's viewer limit
//! (`[video] max_live_viewers`), checked before answering.
//!
//! Nothing here buffers without bound. The WebSocket sends each fragment with a short
//! timeout: one that does not go out in time stays queued in the socket (at most one message,
//! and [`MAX_WRITE_BUFFER`] in all) and the viewer skips to the next key frame; a viewer that
//! falls further behind the camera's broadcast skips too ([`crate::video::live::Viewer`]); a
//! client that reads nothing is cut off by the server's write timeout. The muxing itself (init
//! segment, one fragment per access unit, durations, decode times, composition offsets) is
//! [`crate::video::live_mux`].

use super::upgrade::{Socket, Upgrade};
use super::{check_uuid, Ctx};
use crate::api::body::{Body, BoxError};
use crate::auth::Credentials;
use crate::cameras::CameraManager;
use crate::error::{AppError, AppResult, ErrorKind};
use crate::model::CameraType;
use crate::state::AppState;
use crate::store::cameras::{self as rows, CameraRow};
use crate::video::latest::{self, LatestFrame};
use crate::video::live::{Full, LiveFeed, Place, Viewer};
use crate::video::live_mux::{LiveMuxer, Muxed};
use crate::video::mp4::Track;
use bytes::Bytes;
use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{CACHE_CONTROL, CONTENT_TYPE};
use hyper::{HeaderMap, Request, Response};
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message;
use utoipa::ToSchema;

/// A fragment that has not gone out after this makes the viewer skip to the next key frame.
const SEND_TIMEOUT: Duration = Duration::from_secs(2);
/// For the `stream` message, the init segment, pings and the close.
const CONTROL_TIMEOUT: Duration = Duration::from_secs(10);
const PING_EVERY: Duration = Duration::from_secs(30);
/// Largest message a client may send (clients only send `ping`).
const MAX_CLIENT_MESSAGE: usize = 4096;
/// What the socket may hold unsent: a fragment waiting plus the next key frame's.
pub const MAX_WRITE_BUFFER: usize = 8 << 20;
/// An MJPEG stream ends when no new picture came for this long (the camera stalled or stopped).
const PICTURE_WAIT: Duration = Duration::from_secs(10);
/// A picture older than this is not sent.
const PICTURE_MAX_AGE: Duration = Duration::from_secs(5);
const BOUNDARY: &str = "frame";

/// The first message of the live WebSocket, and again when the stream's parameters change:
/// what to give `MediaSource.addSourceBuffer`. The init segment follows as a binary message.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LiveStreamMessage {
    /// Always `stream`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// RFC 6381 codec, e.g. `avc1.64001f`.
    pub codec: String,
    /// `video/mp4; codecs="..."`.
    pub mime: String,
    pub width: u32,
    pub height: u32,
}

impl LiveStreamMessage {
    fn of(t: &Track) -> Self {
        let codec = t.codec();
        LiveStreamMessage {
            kind: "stream",
            mime: format!("video/mp4; codecs=\"{codec}\""),
            codec,
            width: t.width,
            height: t.height,
        }
    }
}

async fn camera(ctx: &Ctx) -> AppResult<CameraRow> {
    let id = ctx.param("id").to_string();
    check_uuid("Camera", &id)?;
    Ok(ctx.state.store.read(move |c| rows::get(c, &id)).await?)
}

/// 503: why the camera has no live video now.
fn not_live(ctx: &Ctx, row: &CameraRow, what: &str) -> AppError {
    let why = if row.camera_type == CameraType::Protect {
        "it is a UniFi Protect camera (its video stays on the console)".to_string()
    } else {
        let s = ctx.state.cameras.status(&row.id);
        match (&s.error, s.status) {
            (Some(e), _) => format!("error: {e}"),
            (None, "") => "stopped".to_string(),
            (None, "streaming") => "it sends pictures, not H.264 (use live.mjpeg)".to_string(),
            (None, status) => status.to_string(),
        }
    };
    AppError::new(
        ErrorKind::Unavailable,
        format!("camera is not {what}: {why}"),
    )
    .with_header("retry-after", "2")
}

fn full(Full(n): Full) -> AppError {
    AppError::new(
        ErrorKind::Unavailable,
        format!("at most {n} live viewers per camera"),
    )
    .with_header("retry-after", "5")
}

/// Live video over WebSocket (fragmented MP4 for Media Source Extensions).
#[utoipa::path(get, path = "/api/v1/cameras/{id}/live", tag = "cameras",
    params(("id" = String, Path, description = "Camera id"),
        ("token" = Option<String>, Query, description = "A login JWT, for browsers (as on `/ws`)")),
    responses((status = 101, body = LiveStreamMessage, description = "Upgraded. The server sends the text message shown (JSON), then a binary init segment (ftyp+moov), then one binary fragment (moof+mdat) per access unit of the camera's H.264, starting at a key frame, decode times from 0. When the stream's parameters change, the text message and an init segment come again and decode time restarts at 0. A viewer that falls behind skips to the next key frame. When the camera stops, a close frame 1001. A text `ping` gets `pong`."),
        (status = 400, body = super::ErrorBody, description = "Not a WebSocket upgrade"),
        (status = 401, body = super::ErrorBody),
        (status = 403, body = super::ErrorBody, description = "Missing read:cameras, or the session cookie from another site's page"),
        (status = 404, body = super::ErrorBody),
        (status = 503, body = super::ErrorBody, description = "The camera is not streaming H.264 now (the detail says why), or it has `max_live_viewers` viewers already")),
    security(("api_key" = ["read:cameras"]), ("bearer" = [])))]
pub async fn websocket(ctx: Ctx, req: Request<Incoming>) -> AppResult<Response<Body>> {
    let row = camera(&ctx).await?;
    let feed = ctx
        .state
        .cameras
        .live(&row.id)
        .ok_or_else(|| not_live(&ctx, &row, "streaming H.264"))?;
    let place = feed.reserve().map_err(full)?;
    let viewer = feed.viewer(place);
    let token = form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned());
    let creds = (req.headers().clone(), token);
    let state = ctx.state.clone();
    let config = WebSocketConfig::default()
        .max_message_size(Some(MAX_CLIENT_MESSAGE))
        .max_frame_size(Some(MAX_CLIENT_MESSAGE))
        .max_write_buffer_size(MAX_WRITE_BUFFER);
    tracing::debug!(camera.id = %row.id, viewers = feed.viewers(), "live viewer joined");
    Ok(Upgrade::response(config, move |socket, stop| {
        stream_live(state, creds, viewer, socket, stop)
    }))
}

async fn close(tx: &mut SplitSink<Socket, Message>, code: CloseCode, reason: &str) {
    let frame = CloseFrame {
        code,
        reason: reason.to_string().into(),
    };
    let _ = tokio::time::timeout(CONTROL_TIMEOUT, tx.send(Message::Close(Some(frame)))).await;
}

async fn send_control(tx: &mut SplitSink<Socket, Message>, m: Message) -> bool {
    matches!(
        tokio::time::timeout(CONTROL_TIMEOUT, tx.send(m)).await,
        Ok(Ok(()))
    )
}

/// Turns a viewer's access units into the MSE stream.
async fn stream_live(
    state: Arc<AppState>,
    creds: (HeaderMap, Option<String>),
    mut viewer: Viewer,
    ws: Socket,
    mut stop: watch::Receiver<bool>,
) {
    let (mut tx, mut rx) = ws.split();
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + PING_EVERY, PING_EVERY);
    let mut mux = LiveMuxer::default();
    let mut late = 0u64;
    loop {
        tokio::select! {
            au = viewer.next() => {
                let Some(au) = au else {
                    close(&mut tx, CloseCode::Away, "the camera stopped or restarted its stream").await;
                    break;
                };
                let frag = match mux.push(&au) {
                    Muxed::Skip => continue,
                    Muxed::Fragment(f) => f,
                    Muxed::Start(track, init, f) => {
                        let msg = LiveStreamMessage::of(&track);
                        let text = serde_json::to_string(&msg).unwrap_or_default();
                        if !send_control(&mut tx, Message::text(text)).await
                            || !send_control(&mut tx, Message::binary(init)).await
                        {
                            break;
                        }
                        f
                    }
                };
                match tokio::time::timeout(SEND_TIMEOUT, tx.send(Message::binary(frag))).await {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) => break,
                    // It stays queued and goes out before the next one: skip to a key frame.
                    Err(_) => {
                        late += 1;
                        mux.resync();
                    }
                }
            }
            incoming = rx.next() => match incoming {
                Some(Ok(Message::Text(t))) if t.as_str() == "ping" => {
                    if !send_control(&mut tx, Message::text("pong")).await {
                        break;
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
            _ = ping.tick() => {
                let still_valid = state
                    .auth
                    .authenticate(Credentials { headers: &creds.0, query_token: creds.1.as_deref() })
                    .await
                    .is_ok();
                if !still_valid {
                    close(&mut tx, CloseCode::Policy, "credentials no longer valid").await;
                    break;
                }
                if !send_control(&mut tx, Message::Ping(Default::default())).await {
                    break;
                }
            }
            _ = stop.changed() => {
                close(&mut tx, CloseCode::Away, "server shutting down").await;
                break;
            }
        }
    }
    tracing::debug!(fragments = mux.fragments(), late, "live viewer left");
}

/// Live pictures as multipart JPEG (`multipart/x-mixed-replace`).
#[utoipa::path(get, path = "/api/v1/cameras/{id}/live.mjpeg", tag = "cameras",
    params(("id" = String, Path, description = "Camera id")),
    responses((status = 200, content_type = "multipart/x-mixed-replace; boundary=frame", description = "One JPEG part (`Content-Type: image/jpeg`, `Content-Length`) per analysed picture, at the camera's `frame_rate`, scaled to at most 1280 px wide, until the client leaves, the camera stops or the server shuts down. For browsers without Media Source Extensions (an `<img>` shows it)."),
        (status = 401, body = super::ErrorBody),
        (status = 403, body = super::ErrorBody, description = "Missing read:cameras"),
        (status = 404, body = super::ErrorBody),
        (status = 503, body = super::ErrorBody, description = "The camera is not capturing now (the detail says why), or it has `max_live_viewers` viewers already (WebSocket and MJPEG together)")),
    security(("api_key" = ["read:cameras"]), ("bearer" = [])))]
pub async fn mjpeg(ctx: Ctx) -> AppResult<Response<Body>> {
    let row = camera(&ctx).await?;
    let cams = ctx.state.cameras.clone();
    let latest = cams
        .latest(&row.id)
        .ok_or_else(|| not_live(&ctx, &row, "capturing"))?;
    let seat = match cams.live(&row.id) {
        Some(feed) => feed.reserve().map(|p| Seat::Feed {
            feed: feed.clone(),
            _place: p,
        }),
        None => latest
            .seat(cams.max_live_viewers())
            .map(|s| Seat::Pictures { _seat: s }),
    }
    .map_err(full)?;
    let every = Duration::from_secs_f64(1.0 / f64::from(row.frame_rate.max(1)));
    let m = Mjpeg {
        cams,
        camera_id: row.id,
        watch: latest.watch(every),
        seat,
        stop: ctx.stop.clone(),
        last: None,
        first: true,
    };
    let parts = futures_util::stream::unfold(m, |mut m| async move {
        let part = m.next_part().await?;
        Some((Ok::<_, BoxError>(Frame::data(part)), m))
    });
    Ok(Response::builder()
        .header(
            CONTENT_TYPE,
            format!("multipart/x-mixed-replace; boundary={BOUNDARY}"),
        )
        .header(CACHE_CONTROL, "no-store")
        .body(BodyExt::boxed(StreamBody::new(parts)))
        .expect("static headers are valid"))
}

/// An MJPEG viewer's place: on the camera's live feed (shared with the WebSocket viewers), or,
/// for a camera without one, among its picture viewers.
enum Seat {
    Feed { feed: Arc<LiveFeed>, _place: Place },
    Pictures { _seat: latest::Seat },
}

struct Mjpeg {
    cams: Arc<CameraManager>,
    camera_id: String,
    watch: latest::Watch,
    seat: Seat,
    stop: watch::Receiver<bool>,
    /// When the last picture sent was taken.
    last: Option<std::time::Instant>,
    first: bool,
}

impl Mjpeg {
    /// Keeps the seat on the camera's current live feed (a restarted stream has a new one);
    /// false when that one is full.
    fn reseat(&mut self) -> bool {
        let Some(current) = self.cams.live(&self.camera_id) else {
            return true;
        };
        if matches!(&self.seat, Seat::Feed { feed, .. } if Arc::ptr_eq(feed, &current)) {
            return true;
        }
        match current.reserve() {
            Ok(p) => {
                self.seat = Seat::Feed {
                    feed: current,
                    _place: p,
                };
                true
            }
            Err(_) => false,
        }
    }

    /// The next part; `None` ends the stream.
    async fn next_part(&mut self) -> Option<Bytes> {
        loop {
            if *self.stop.borrow() {
                return None;
            }
            if !std::mem::take(&mut self.first) {
                tokio::select! {
                    got = self.watch.changed(PICTURE_WAIT) => if !got { return None },
                    _ = self.stop.changed() => return None,
                }
            }
            if !self.reseat() {
                return None;
            }
            let latest: Arc<LatestFrame> = self.watch.latest().clone();
            let snap = tokio::task::spawn_blocking(move || latest.jpeg(PICTURE_MAX_AGE))
                .await
                .ok()?;
            let s = match snap {
                // The camera stopped (its picture was cleared), or nothing recent yet.
                None if self.last.is_some() => return None,
                None => continue,
                Some(Err(e)) => {
                    tracing::warn!(camera.id = %self.camera_id, error = %e, "MJPEG: cannot encode a picture");
                    return None;
                }
                Some(Ok(s)) => s,
            };
            if self.last == Some(s.taken) {
                continue;
            }
            self.last = Some(s.taken);
            return Some(part(&s.jpeg));
        }
    }
}

/// One multipart part: its boundary line, headers, the JPEG and the line end.
fn part(jpeg: &[u8]) -> Bytes {
    let head = format!(
        "--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n",
        jpeg.len()
    );
    let mut out = Vec::with_capacity(head.len() + jpeg.len() + 2);
    out.extend_from_slice(head.as_bytes());
    out.extend_from_slice(jpeg);
    out.extend_from_slice(b"\r\n");
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::video::Au;

    fn au(data: &[u8], pts: u64, key: bool) -> Au {
        Au {
            data: Arc::from(data),
            pts,
            key,
        }
    }

    #[test]
    fn the_stream_message_names_the_codec_and_size() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/demo/person-walk.h264");
        let bytes = std::fs::read(path).unwrap();
        let units = crate::video::h264::access_units(&bytes);
        let Muxed::Start(track, _, _) = LiveMuxer::default().push(&au(&units[0], 0, true)) else {
            panic!("a key frame with SPS/PPS starts the stream");
        };
        let msg = LiveStreamMessage::of(&track);
        assert_eq!((msg.kind, msg.width, msg.height), ("stream", 640, 360));
        assert!(
            msg.mime.starts_with("video/mp4; codecs=\"avc1."),
            "{}",
            msg.mime
        );
    }

    #[test]
    fn parts_are_delimited_and_sized() {
        let p = part(b"\xff\xd8jpeg\xff\xd9");
        let text = String::from_utf8_lossy(&p);
        assert!(
            text.starts_with("--frame\r\nContent-Type: image/jpeg\r\nContent-Length: 8\r\n\r\n")
        );
        assert!(p.ends_with(b"\xff\xd9\r\n"));
    }
}
