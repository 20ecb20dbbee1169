//! The `/ws` WebSocket: authenticated like the REST API (plus `?token=` for browsers), then fed
//! from the [`crate::bus`]: each client is a subscriber that turns the typed messages into the
//! ArgusAI wire envelope `{"type", "data", "timestamp"}`. Each client gets only the messages its
//! scopes allow, a protocol ping every 30 s, and a credential re-check at the same pace (a
//! revoked key or ended session is disconnected). A client that falls behind the stream's
//! bounded ring is disconnected (close code 1008, counted as `ws` in the stream's lag
//! counters), never waited for.
//!
//! A browser's cookie is accepted only from the appliance's own pages ([`super::origin`]); an
//! explicit credential (header or `?token=`) wins over the cookie, and an invalid one is a 401,
//! never a fall-back to the cookie. The upgrade handler answers `101` and leaves the session in
//! the connection's [`Handoff`]; the connection loop then runs [`run`] on the connection.
//!
//! The API's WebSocket routes (the live video) go through the same steps: the server's wrapper
//! checks the handshake ([`handshake`]) and authenticates the way `/ws` does, the handler
//! answers `101` with an [`Upgrade`], [`accept`] completes it and leaves it in the handoff,
//! and [`run`] runs its session on the connection.

use crate::api::body::{empty, Body};
use crate::api::upgrade::{Io, Upgrade};
use crate::auth::{Credentials, Principal, Source};
use crate::bus::{Message, Missed};
use crate::error::{AppError, AppResult, ErrorKind};
use crate::model::Scope;
use crate::state::AppState;
use base64::Engine;
use futures_util::{SinkExt, StreamExt};
use hyper::body::Incoming;
use hyper::header::{
    CONNECTION, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_VERSION, UPGRADE,
};
use hyper::{HeaderMap, Request, Response, StatusCode};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::WebSocketStream;

const PING_EVERY: Duration = Duration::from_secs(30);
/// Largest message a client may send (clients only send `ping`; tungstenite's default is 64 MiB).
const MAX_CLIENT_MESSAGE: usize = 4096;
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

fn accept_key(key: &[u8]) -> String {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY);
    ctx.update(key);
    ctx.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    base64::engine::general_purpose::STANDARD.encode(ctx.finish())
}

pub(super) fn query_token(req: &Request<Incoming>) -> Option<String> {
    form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned())
}

fn header_is(h: &HeaderMap, name: hyper::header::HeaderName, token: &str) -> bool {
    h.get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// An accepted `/ws` client, waiting for its connection.
pub struct Events {
    principal: Principal,
    creds: (HeaderMap, Option<String>),
}

/// An accepted WebSocket, waiting for its connection.
pub enum Session {
    /// A `/ws` client.
    Events(Events),
    /// An API route's session.
    Api(Upgrade),
}

/// Where the upgrade handler leaves the session for the connection loop.
#[derive(Default)]
pub struct Handoff(Mutex<Option<Session>>);

impl Handoff {
    fn put(&self, s: Session) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(s);
    }

    pub fn take(&self) -> Option<Session> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

/// Checks a WebSocket upgrade request; its `Sec-WebSocket-Key`.
pub(super) fn handshake(h: &HeaderMap) -> AppResult<Vec<u8>> {
    if !header_is(h, UPGRADE, "websocket") || !header_is(h, CONNECTION, "upgrade") {
        return Err(AppError::new(
            ErrorKind::BadRequest,
            "This endpoint speaks WebSocket: send an Upgrade: websocket request",
        ));
    }
    if h.get(SEC_WEBSOCKET_VERSION).map(|v| v.as_bytes()) != Some(b"13") {
        return Err(AppError::bad_request("Sec-WebSocket-Version must be 13")
            .with_header("sec-websocket-version", "13"));
    }
    h.get(SEC_WEBSOCKET_KEY)
        .map(|v| v.as_bytes().to_vec())
        .ok_or_else(|| AppError::bad_request("Sec-WebSocket-Key is missing"))
}

fn switching(b: hyper::http::response::Builder, key: &[u8]) -> hyper::http::response::Builder {
    b.status(StatusCode::SWITCHING_PROTOCOLS)
        .header(UPGRADE, "websocket")
        .header(CONNECTION, "Upgrade")
        .header(SEC_WEBSOCKET_ACCEPT, accept_key(key))
}

/// Completes an API route's `101`: the handshake headers, and its session in the handoff. A
/// response that is not an upgrade passes unchanged.
pub(super) fn accept(
    mut resp: Response<Body>,
    key: &[u8],
    handoff: &Handoff,
) -> AppResult<Response<Body>> {
    if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
        return Ok(resp);
    }
    let Some(up) = resp.extensions_mut().remove::<Upgrade>() else {
        return Err(AppError::internal(std::io::Error::other(
            "a 101 without a session",
        )));
    };
    handoff.put(Session::Api(up));
    Ok(switching(Response::builder(), key)
        .body(empty())
        .expect("static headers are valid"))
}

pub async fn upgrade(
    state: Arc<AppState>,
    req: Request<Incoming>,
    public_origin: Option<&super::origin::Origin>,
    handoff: &Handoff,
) -> AppResult<Response<Body>> {
    let key = handshake(req.headers())?;
    let token = query_token(&req);
    let (principal, source) = state
        .auth
        .identify(Credentials {
            headers: req.headers(),
            query_token: token.as_deref(),
        })
        .await?;
    // A browser always sends `Origin` on a WebSocket; a cookie from another site's page is
    // refused, whatever else the URL carries.
    if source == Source::Cookie && req.headers().contains_key(hyper::header::ORIGIN) {
        super::origin::check(req.headers(), public_origin, false)?;
    }
    if let Principal::User(u) = &principal {
        if u.must_change_password {
            return Err(AppError::forbidden(
                "Change the initial password first: POST /api/v1/auth/change-password",
            ));
        }
    }
    handoff.put(Session::Events(Events {
        principal,
        creds: (req.headers().clone(), token),
    }));
    Ok(switching(Response::builder(), &key)
        .body(empty())
        .expect("static headers are valid"))
}

/// Which scope a client needs to receive a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Topic {
    Events,
    Cameras,
}

fn allowed(p: &Principal, topic: Topic) -> bool {
    match topic {
        Topic::Events => p.allows(Scope::ReadEvents),
        Topic::Cameras => p.allows(Scope::ReadCameras),
    }
}

/// The wire form of a stream message: its topic and its JSON text (`None`: not sent on `/ws`).
fn wire(ts: i64, msg: &Message) -> Option<(Topic, String)> {
    use crate::api::{cameras, events, notifications};
    let (topic, kind, data) = match msg {
        Message::EventCreated(e) => (
            Topic::Events,
            "event.created",
            serde_json::to_value(events::EventDto::from_info(e)),
        ),
        Message::EventUpdated(e, _) => (
            Topic::Events,
            "event.updated",
            serde_json::to_value(events::EventDto::from_info(e)),
        ),
        Message::EventDeleted { id, camera_id } => (
            Topic::Events,
            "event.deleted",
            Ok(serde_json::json!({ "id": id, "camera_id": camera_id })),
        ),
        Message::CameraStatus {
            camera_id,
            name,
            status,
        } => (
            Topic::Cameras,
            "camera.status",
            serde_json::to_value(cameras::status_message(camera_id, name, status)),
        ),
        Message::ControllerStatus {
            controller_id,
            name,
            status,
        } => (
            Topic::Cameras,
            "protect.status",
            Ok(serde_json::json!({
                "controller_id": controller_id,
                "name": name,
                "status": status.status,
                "error": status.error,
            })),
        ),
        Message::DoorbellRing(r) => (
            Topic::Events,
            "doorbell.ring",
            Ok(serde_json::json!({
                "camera_id": r.camera_id,
                "camera_name": r.camera_name,
                "protect_camera_id": r.protect_camera_id,
                "protect_event_id": r.protect_event_id,
                "timestamp": crate::clock::format_rfc3339(r.ts),
            })),
        ),
        // Notifications point at events (or at the AI cost caps): `read:events` sees them.
        Message::NotificationCreated(n) => (
            Topic::Events,
            "notification.new",
            Ok(notifications::ws_data(n)),
        ),
        // Internal signals for MQTT: `/ws` clients get cameras and events in their own form.
        Message::CameraChanged { .. }
        | Message::Motion { .. }
        | Message::InView { .. }
        | Message::AlertFired(_) => return None,
    };
    let env = serde_json::json!({
        "type": kind,
        "data": data.unwrap_or_default(),
        "timestamp": crate::clock::format_rfc3339(ts),
    });
    Some((topic, env.to_string()))
}

/// Runs an accepted session on its connection; `early` holds bytes the client sent after its
/// upgrade request.
pub async fn run<S>(
    state: Arc<AppState>,
    session: Session,
    io: S,
    early: Vec<u8>,
    stop: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    match session {
        Session::Events(session) => {
            let config = WebSocketConfig::default()
                .max_message_size(Some(MAX_CLIENT_MESSAGE))
                .max_frame_size(Some(MAX_CLIENT_MESSAGE));
            let ws =
                WebSocketStream::from_partially_read(io, early, Role::Server, Some(config)).await;
            client(state, session.principal, session.creds, ws, stop).await;
        }
        Session::Api(up) => {
            let io: Box<dyn Io> = Box::new(io);
            let ws = WebSocketStream::from_partially_read(io, early, Role::Server, Some(up.config))
                .await;
            up.run(ws, stop).await;
        }
    }
}

async fn close<S: AsyncRead + AsyncWrite + Unpin>(
    ws: &mut futures_util::stream::SplitSink<WebSocketStream<S>, WsMessage>,
    code: CloseCode,
    reason: &str,
) {
    let frame = CloseFrame {
        code,
        reason: reason.to_string().into(),
    };
    let _ = tokio::time::timeout(SEND_TIMEOUT, ws.send(WsMessage::Close(Some(frame)))).await;
}

async fn client<S: AsyncRead + AsyncWrite + Unpin>(
    state: Arc<AppState>,
    principal: Principal,
    creds: (HeaderMap, Option<String>),
    ws: WebSocketStream<S>,
    mut stop: watch::Receiver<bool>,
) {
    let (mut tx, mut rx_ws) = ws.split();
    let mut rx = state.bus.subscribe("ws");
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + PING_EVERY, PING_EVERY);
    struct Counted<'a>(&'a std::sync::atomic::AtomicUsize);
    impl Drop for Counted<'_> {
        fn drop(&mut self) {
            self.0.fetch_sub(1, Ordering::Relaxed);
        }
    }
    let clients = state.ws_clients.fetch_add(1, Ordering::Relaxed) + 1;
    let _counted = Counted(&state.ws_clients);
    tracing::debug!(clients, "WebSocket client connected");
    loop {
        tokio::select! {
            msg = rx.recv() => match msg {
                Ok((ts, m)) => {
                    let Some((topic, json)) = wire(ts, &m) else { continue };
                    if !allowed(&principal, topic) {
                        continue;
                    }
                    let sent = tokio::time::timeout(SEND_TIMEOUT, tx.send(WsMessage::text(json))).await;
                    if !matches!(sent, Ok(Ok(()))) {
                        break;
                    }
                }
                Err(Missed::Lagged(_)) => {
                    close(&mut tx, CloseCode::Policy, "client too slow").await;
                    break;
                }
                Err(Missed::Closed) => break,
            },
            incoming = rx_ws.next() => match incoming {
                Some(Ok(WsMessage::Text(t))) if t.as_str() == "ping" => {
                    if tx.send(WsMessage::text("pong")).await.is_err() {
                        break;
                    }
                }
                Some(Ok(WsMessage::Close(_))) | None | Some(Err(_)) => break,
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
                let sent = tokio::time::timeout(SEND_TIMEOUT, tx.send(WsMessage::Ping(Default::default()))).await;
                if !matches!(sent, Ok(Ok(()))) {
                    break;
                }
            }
            _ = stop.changed() => {
                close(&mut tx, CloseCode::Away, "server shutting down").await;
                break;
            }
        }
    }
}
