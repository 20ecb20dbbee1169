//! The client for one UniFi Protect console (UniFi OS): login, bootstrap, snapshots and the
//! update socket, over HTTP/1.1 on our own TLS connection (rustls + ring, see [`super::net`]).
//!
//! - **Login** (`POST /api/auth/login`, `{username, password, rememberMe}`) keeps the session
//!   cookie (`TOKEN`, or `UOS_TOKEN` on newer consoles) and the `X-CSRF-Token` header; both go
//!   on every later request, and a newer token in any answer replaces the old one.
//! - A **401** on a request means the session expired: the client logs in again and repeats the
//!   request once. Concurrent callers share one re-login.
//! - Each request opens its own connection (a console sees a handful of requests a minute), so
//!   a console that rebooted never leaves a dead pooled connection behind.
//! - A **video export** (`GET /proxy/protect/api/video/export?camera=&channel=0&start=&end=`,
//!   times in unix ms, as uiprotect's `get_camera_video` asks for it) is streamed to a file and
//!   checked by [`super::export`]; a 401 there re-logs in the same way.
//! - The **update socket** is a WebSocket upgrade of the same kind of request, decoded by
//!   [`super::packet`] into an [`UpdateStream`]. Reconnecting (and how often) is the caller's
//!   job: the stream ends when the socket does, and [`UpdateStream::last_update_id`] says where
//!   to resume.
//!
//! Secrets: the password, the cookie and the CSRF token never appear in errors, logs or `Debug`
//! output.

use super::bootstrap::Bootstrap;
use super::export::{self, ExportError, ExportedVideo};
use super::net::{self, Endpoint};
use super::packet::{self, UpdateMessage};
use base64::Engine;
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::fmt;
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

const USER_AGENT: &str = concat!("argus-edge/", env!("CARGO_PKG_VERSION"));
const LOGIN_PATH: &str = "/api/auth/login";
const BOOTSTRAP_PATH: &str = "/proxy/protect/api/bootstrap";
const UPDATES_PATH: &str = "/proxy/protect/ws/updates";
const EXPORT_PATH: &str = "/proxy/protect/api/video/export";
/// Session cookies, newest first.
const SESSION_COOKIES: [&str; 2] = ["UOS_TOKEN", "TOKEN"];
/// Headers that carry a (new) CSRF token.
const CSRF_HEADERS: [&str; 2] = ["x-updated-csrf-token", "x-csrf-token"];

const MAX_BOOTSTRAP: usize = 32 * 1024 * 1024;
const MAX_SNAPSHOT: usize = 16 * 1024 * 1024;
const MAX_SMALL_BODY: usize = 1024 * 1024;
/// The largest video export accepted (a 2-minute 4K clip is about 100 MiB).
pub const MAX_EXPORT: u64 = 200 * 1024 * 1024;
/// The whole export, answer and body, within this; the answer's head within [`EXPORT_HEAD`]
/// (a console may assemble the file before it answers); and no pause longer than
/// [`EXPORT_STALL`] between two pieces of the body.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(180);
const EXPORT_HEAD: Duration = Duration::from_secs(60);
const EXPORT_STALL: Duration = Duration::from_secs(30);
/// The largest update message accepted on the socket (the decoder caps inflation separately).
const MAX_WS_MESSAGE: usize = 8 * 1024 * 1024;

/// How to reach and log in to one console.
#[derive(Clone)]
pub struct ControllerConfig {
    /// `host` or `host:port` (default port 443; IPv6 as `[addr]:port`). See [`host_with_port`].
    pub host: String,
    /// A local UniFi OS account with at least View Only rights in Protect.
    pub username: String,
    pub password: String,
    /// Check the console's certificate against the public CAs. Off by default in the API:
    /// consoles ship self-signed certificates.
    pub verify_ssl: bool,
}

impl fmt::Debug for ControllerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ControllerConfig")
            .field("host", &self.host)
            .field("username", &self.username)
            .field("password", &"[redacted]")
            .field("verify_ssl", &self.verify_ssl)
            .finish()
    }
}

/// `host` (a name or an address, without port) and `port` as a [`ControllerConfig::host`].
pub fn host_with_port(host: &str, port: u16) -> String {
    let host = host.trim();
    if host.parse::<std::net::Ipv6Addr>().is_ok() {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Time limits. Each HTTP exchange (connect, TLS, answer and body) has its own limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// TCP connect, and the TLS handshake, each.
    pub connect: Duration,
    /// Login and bootstrap.
    pub request: Duration,
    /// One snapshot.
    pub snapshot: Duration,
    /// Opening the update socket.
    pub websocket: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(10),
            request: Duration::from_secs(10),
            snapshot: Duration::from_secs(5),
            websocket: Duration::from_secs(30),
        }
    }
}

/// Why a call to the console failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtectError {
    /// The console refused the username or password (401/403 on login).
    #[error("the console refused the username or password (use a local UniFi OS account)")]
    BadCredentials,
    /// No connection: name resolution failed, connection refused, no route.
    #[error("cannot reach the console: {0}")]
    Unreachable(String),
    /// The TLS handshake failed, e.g. an untrusted certificate with `verify_ssl` on.
    #[error("TLS with the console failed: {0}")]
    Tls(String),
    #[error("the console did not answer in time")]
    Timeout,
    /// An unexpected status or body.
    #[error("unexpected answer from the console: {0}")]
    Protocol(String),
    /// A bad host or camera id, before anything was sent.
    #[error("{0}")]
    InvalidInput(String),
}

/// A value kept out of `Debug` output.
#[derive(Clone)]
struct Secret(String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// A logged-in session.
#[derive(Debug)]
struct Session {
    /// Tells a stale session from a newer one when several callers see a 401.
    generation: u64,
    /// `NAME=value`, as sent in `Cookie`.
    cookie: Mutex<Secret>,
    csrf: Mutex<Option<Secret>>,
}

impl Session {
    fn cookie(&self) -> Secret {
        self.cookie
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn csrf(&self) -> Option<Secret> {
        self.csrf.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Takes a refreshed cookie or CSRF token from an answer.
    fn absorb(&self, headers: &HeaderMap) {
        if let Some(cookie) = session_cookie(headers) {
            *self.cookie.lock().unwrap_or_else(|e| e.into_inner()) = cookie;
        }
        if let Some(csrf) = csrf_token(headers) {
            *self.csrf.lock().unwrap_or_else(|e| e.into_inner()) = Some(csrf);
        }
    }
}

/// The session cookie of a `Set-Cookie` list, as `NAME=value`.
fn session_cookie(headers: &HeaderMap) -> Option<Secret> {
    let pairs: Vec<(&str, &str)> = headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next()?.trim().split_once('='))
        .map(|(k, v)| (k.trim(), v.trim().trim_matches('"')))
        .filter(|(_, v)| !v.is_empty())
        .collect();
    SESSION_COOKIES.iter().find_map(|name| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(k, v)| Secret(format!("{k}={v}")))
    })
}

fn csrf_token(headers: &HeaderMap) -> Option<Secret> {
    CSRF_HEADERS.iter().find_map(|name| {
        headers
            .get(*name)
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty())
            .map(|v| Secret(v.to_string()))
    })
}

/// Aborts a connection task that was not finished (a timeout, an unread body).
struct ConnTask(tokio::task::JoinHandle<()>);

impl Drop for ConnTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

struct Inner {
    endpoint: Endpoint,
    username: String,
    password: Secret,
    tls: tokio_rustls::TlsConnector,
    timeouts: Timeouts,
    session: tokio::sync::Mutex<Option<Arc<Session>>>,
    generation: AtomicU64,
}

/// A client for one console; cheap to clone (clones share the session).
#[derive(Clone)]
pub struct ProtectClient {
    inner: Arc<Inner>,
}

impl fmt::Debug for ProtectClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProtectClient")
            .field("host", &self.inner.endpoint.authority)
            .field("username", &self.inner.username)
            .finish_non_exhaustive()
    }
}

/// The answer to a plain request, body read.
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl ProtectClient {
    /// Checks the host; nothing is sent until the first call.
    pub fn new(cfg: ControllerConfig) -> Result<ProtectClient, ProtectError> {
        Self::with_timeouts(cfg, Timeouts::default())
    }

    pub fn with_timeouts(
        cfg: ControllerConfig,
        timeouts: Timeouts,
    ) -> Result<ProtectClient, ProtectError> {
        let endpoint = Endpoint::parse(&cfg.host)?;
        Ok(ProtectClient {
            inner: Arc::new(Inner {
                endpoint,
                username: cfg.username,
                password: Secret(cfg.password),
                tls: net::connector(cfg.verify_ssl)?,
                timeouts,
                session: tokio::sync::Mutex::new(None),
                generation: AtomicU64::new(0),
            }),
        })
    }

    /// The console as `host[:port]`.
    pub fn host(&self) -> &str {
        &self.inner.endpoint.authority
    }

    /// Logs in now, replacing any session (the other calls log in by themselves when needed).
    pub async fn login(&self) -> Result<(), ProtectError> {
        let mut slot = self.inner.session.lock().await;
        *slot = None;
        *slot = Some(self.fresh_session().await?);
        Ok(())
    }

    /// NVR information, cameras and the update id to resume from.
    pub async fn bootstrap(&self) -> Result<Bootstrap, ProtectError> {
        let answer = self
            .get(BOOTSTRAP_PATH, MAX_BOOTSTRAP, self.inner.timeouts.request)
            .await?;
        check_status("the bootstrap", answer.status)?;
        Bootstrap::parse(&answer.body).map_err(ProtectError::Protocol)
    }

    /// A current JPEG from a camera (full resolution, not from the console's cache).
    pub async fn snapshot(&self, camera_id: &str) -> Result<Bytes, ProtectError> {
        check_id(camera_id)?;
        let ts = crate::clock::Clock::now_ms(&crate::clock::SystemClock);
        let path = format!("/proxy/protect/api/cameras/{camera_id}/snapshot?ts={ts}&force=true");
        let answer = self
            .get(&path, MAX_SNAPSHOT, self.inner.timeouts.snapshot)
            .await?;
        check_status("the snapshot", answer.status)?;
        if !answer.body.starts_with(&[0xff, 0xd8]) {
            return Err(ProtectError::Protocol(format!(
                "the snapshot is not a JPEG ({} bytes, {})",
                answer.body.len(),
                answer
                    .headers
                    .get(header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("no content type")
            )));
        }
        Ok(answer.body)
    }

    /// Exports a camera's recording of `[start_ms, end_ms]` (unix ms) as MP4 into `dest`,
    /// streamed chunk by chunk (at most [`MAX_EXPORT`] bytes, within 3 minutes), and checks it
    /// (`ftyp` first, a `moov` with its duration). A 401 logs in again and repeats the request
    /// once. On error `dest` is removed. The console's window is approximate (it cuts at key
    /// frames, a few seconds either way).
    pub async fn export_video(
        &self,
        camera_id: &str,
        start_ms: i64,
        end_ms: i64,
        dest: &Path,
    ) -> Result<ExportedVideo, ExportError> {
        check_id(camera_id).map_err(ExportError::Refused)?;
        if start_ms < 0 || end_ms <= start_ms {
            return Err(ExportError::Refused(ProtectError::InvalidInput(format!(
                "the export window {start_ms}..{end_ms} is empty"
            ))));
        }
        let path =
            format!("{EXPORT_PATH}?camera={camera_id}&channel=0&start={start_ms}&end={end_ms}");
        let done = tokio::time::timeout(EXPORT_TIMEOUT, self.export_to(&path, dest))
            .await
            .unwrap_or(Err(ExportError::Transient(ProtectError::Timeout)));
        if done.is_err() {
            let _ = tokio::fs::remove_file(dest).await;
        }
        done
    }

    async fn export_to(&self, path: &str, dest: &Path) -> Result<ExportedVideo, ExportError> {
        let mut session = self.session().await.map_err(ExportError::from_call)?;
        for attempt in 0..2 {
            let req = self
                .request(Method::GET, path, Some(&session), None)
                .map_err(ExportError::Refused)?;
            let (resp, _conn) = tokio::time::timeout(EXPORT_HEAD, self.exchange(req))
                .await
                .map_err(|_| ExportError::Transient(ProtectError::Timeout))?
                .map_err(ExportError::from_call)?;
            session.absorb(resp.headers());
            let status = resp.status();
            if status == StatusCode::UNAUTHORIZED && attempt == 0 {
                session = self
                    .relogin(&session)
                    .await
                    .map_err(ExportError::from_call)?;
                continue;
            }
            if !status.is_success() {
                let e = status_error("the video export", status);
                let again = status == StatusCode::NOT_FOUND
                    || status == StatusCode::REQUEST_TIMEOUT
                    || status == StatusCode::TOO_MANY_REQUESTS
                    || status.is_server_error();
                return Err(if again {
                    ExportError::Transient(e)
                } else {
                    ExportError::Refused(e)
                });
            }
            let declared = resp
                .headers()
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            if declared.is_some_and(|n| n > MAX_EXPORT) {
                return Err(ExportError::Refused(ProtectError::Protocol(format!(
                    "the export is larger than {} MiB",
                    MAX_EXPORT >> 20
                ))));
            }
            // `_conn` keeps the connection task alive while the body is read.
            return export::save(resp.into_body(), dest, MAX_EXPORT, EXPORT_STALL).await;
        }
        Err(ExportError::Refused(status_error(
            "the video export",
            StatusCode::UNAUTHORIZED,
        )))
    }

    /// Opens the update socket, resuming after `last_update_id` (from the bootstrap, or from
    /// the previous stream's [`UpdateStream::last_update_id`]).
    pub async fn updates(
        &self,
        last_update_id: Option<&str>,
    ) -> Result<UpdateStream, ProtectError> {
        let mut path = UPDATES_PATH.to_string();
        if let Some(id) = last_update_id {
            path.push_str("?lastUpdateId=");
            path.extend(form_urlencoded::byte_serialize(id.as_bytes()));
        }
        let mut session = self.session().await?;
        for attempt in 0..2 {
            let key = websocket_key()?;
            let mut req = self.request(Method::GET, &path, Some(&session), None)?;
            let h = req.headers_mut();
            h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
            h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
            h.insert(
                header::SEC_WEBSOCKET_VERSION,
                HeaderValue::from_static("13"),
            );
            h.insert(header::SEC_WEBSOCKET_KEY, header_value(&key)?);
            let opened = tokio::time::timeout(self.inner.timeouts.websocket, async {
                let (mut resp, _conn) = self.exchange(req).await?;
                session.absorb(resp.headers());
                match resp.status() {
                    StatusCode::SWITCHING_PROTOCOLS => {}
                    StatusCode::UNAUTHORIZED => return Ok(None),
                    status => return Err(status_error("the update socket", status)),
                }
                let accept = resp.headers().get(header::SEC_WEBSOCKET_ACCEPT);
                if accept.map(|v| v.as_bytes()) != Some(accept_key(key.as_bytes()).as_bytes()) {
                    return Err(ProtectError::Protocol(
                        "the update socket answered with a wrong Sec-WebSocket-Accept".into(),
                    ));
                }
                let upgraded = hyper::upgrade::on(&mut resp).await.map_err(|e| {
                    ProtectError::Protocol(format!("the update socket upgrade failed: {e}"))
                })?;
                Ok(Some(upgraded))
            })
            .await
            .map_err(|_| ProtectError::Timeout)??;
            match opened {
                Some(upgraded) => {
                    let config = WebSocketConfig::default()
                        .max_message_size(Some(MAX_WS_MESSAGE))
                        .max_frame_size(Some(MAX_WS_MESSAGE));
                    let ws = WebSocketStream::from_raw_socket(
                        TokioIo::new(upgraded),
                        Role::Client,
                        Some(config),
                    )
                    .await;
                    return Ok(UpdateStream {
                        ws,
                        host: self.inner.endpoint.authority.clone(),
                        last_update_id: last_update_id.map(str::to_string),
                        end: None,
                    });
                }
                None if attempt == 0 => session = self.relogin(&session).await?,
                None => break,
            }
        }
        Err(status_error("the update socket", StatusCode::UNAUTHORIZED))
    }

    /// The current session, logging in when there is none.
    async fn session(&self) -> Result<Arc<Session>, ProtectError> {
        let mut slot = self.inner.session.lock().await;
        if let Some(s) = slot.as_ref() {
            return Ok(s.clone());
        }
        let s = self.fresh_session().await?;
        *slot = Some(s.clone());
        Ok(s)
    }

    /// A new session after `stale` was refused, unless another caller already made one.
    async fn relogin(&self, stale: &Session) -> Result<Arc<Session>, ProtectError> {
        let mut slot = self.inner.session.lock().await;
        if let Some(s) = slot.as_ref().filter(|s| s.generation != stale.generation) {
            return Ok(s.clone());
        }
        *slot = None;
        tracing::info!(host = %self.inner.endpoint.authority, "Protect session expired; logging in again");
        let s = self.fresh_session().await?;
        *slot = Some(s.clone());
        Ok(s)
    }

    async fn fresh_session(&self) -> Result<Arc<Session>, ProtectError> {
        let body = serde_json::json!({
            "username": self.inner.username,
            "password": self.inner.password.0,
            "rememberMe": true,
        });
        let req = self.request(
            Method::POST,
            LOGIN_PATH,
            None,
            Some(serde_json::to_vec(&body).unwrap_or_default()),
        )?;
        let answer = self
            .round_trip(req, MAX_SMALL_BODY, self.inner.timeouts.request)
            .await?;
        match answer.status {
            s if s.is_success() => {}
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                return Err(ProtectError::BadCredentials)
            }
            StatusCode::TOO_MANY_REQUESTS => {
                return Err(ProtectError::Protocol(
                    "the console refuses logins for now (429, too many attempts)".into(),
                ))
            }
            s => return Err(status_error("the login", s)),
        }
        let cookie = session_cookie(&answer.headers)
            .ok_or_else(|| ProtectError::Protocol("the login answer set no TOKEN cookie".into()))?;
        tracing::debug!(host = %self.inner.endpoint.authority, "logged in to the Protect console");
        Ok(Arc::new(Session {
            generation: self.inner.generation.fetch_add(1, Ordering::Relaxed) + 1,
            cookie: Mutex::new(cookie),
            csrf: Mutex::new(csrf_token(&answer.headers)),
        }))
    }

    /// An authenticated GET, logging in again and repeating it once on a 401.
    async fn get(
        &self,
        path: &str,
        limit: usize,
        timeout: Duration,
    ) -> Result<Answer, ProtectError> {
        let mut session = self.session().await?;
        let mut answer = self
            .round_trip(
                self.request(Method::GET, path, Some(&session), None)?,
                limit,
                timeout,
            )
            .await?;
        session.absorb(&answer.headers);
        if answer.status == StatusCode::UNAUTHORIZED {
            session = self.relogin(&session).await?;
            answer = self
                .round_trip(
                    self.request(Method::GET, path, Some(&session), None)?,
                    limit,
                    timeout,
                )
                .await?;
            session.absorb(&answer.headers);
        }
        Ok(answer)
    }

    fn request(
        &self,
        method: Method,
        path: &str,
        session: Option<&Session>,
        json: Option<Vec<u8>>,
    ) -> Result<Request<Full<Bytes>>, ProtectError> {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, header_value(&self.inner.endpoint.authority)?)
            .header(header::USER_AGENT, USER_AGENT)
            .header(header::ACCEPT, "application/json, image/jpeg, */*");
        if let Some(s) = session {
            req = req.header(header::COOKIE, header_value(&s.cookie().0)?);
            if let Some(csrf) = s.csrf() {
                req = req.header(
                    HeaderName::from_static("x-csrf-token"),
                    header_value(&csrf.0)?,
                );
            }
        }
        if json.is_some() {
            req = req.header(header::CONTENT_TYPE, "application/json");
        }
        req.body(Full::new(Bytes::from(json.unwrap_or_default())))
            .map_err(|e| ProtectError::InvalidInput(format!("cannot build the request: {e}")))
    }

    /// One request on a new connection; the answer's body is not read yet. The connection
    /// task lives as long as the returned guard.
    async fn exchange(
        &self,
        req: Request<Full<Bytes>>,
    ) -> Result<(Response<Incoming>, ConnTask), ProtectError> {
        let what = format!("{} {}", req.method(), req.uri().path());
        let tls = net::connect(
            &self.inner.tls,
            &self.inner.endpoint,
            self.inner.timeouts.connect,
        )
        .await?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| ProtectError::Protocol(format!("{what}: {e}")))?;
        let task = ConnTask(tokio::spawn(async move {
            if let Err(e) = conn.with_upgrades().await {
                tracing::debug!(error = %e, "Protect connection ended with an error");
            }
        }));
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| ProtectError::Protocol(format!("{what}: {e}")))?;
        Ok((resp, task))
    }

    /// A whole exchange, body read (at most `limit` bytes), within `timeout`.
    async fn round_trip(
        &self,
        req: Request<Full<Bytes>>,
        limit: usize,
        timeout: Duration,
    ) -> Result<Answer, ProtectError> {
        let what = format!("{} {}", req.method(), req.uri().path());
        tokio::time::timeout(timeout, async {
            let (resp, _conn) = self.exchange(req).await?;
            let (parts, body) = resp.into_parts();
            let body = Limited::new(body, limit)
                .collect()
                .await
                .map_err(|e| {
                    ProtectError::Protocol(format!("{what}: the answer could not be read: {e}"))
                })?
                .to_bytes();
            Ok(Answer {
                status: parts.status,
                headers: parts.headers,
                body,
            })
        })
        .await
        .map_err(|_| ProtectError::Timeout)?
    }
}

fn header_value(s: &str) -> Result<HeaderValue, ProtectError> {
    HeaderValue::from_str(s)
        .map_err(|_| ProtectError::Protocol("a header value has invalid characters".into()))
}

/// Protect ids are short hex strings; anything that could change the path is refused.
fn check_id(id: &str) -> Result<(), ProtectError> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(ProtectError::InvalidInput(format!(
            "invalid Protect camera id {id:?}"
        )))
    }
}

fn status_error(what: &str, status: StatusCode) -> ProtectError {
    ProtectError::Protocol(match status {
        StatusCode::UNAUTHORIZED => {
            format!("{what}: the console refused a fresh session (401)")
        }
        StatusCode::FORBIDDEN => format!(
            "{what}: forbidden (403); the account needs at least View Only rights in Protect"
        ),
        StatusCode::NOT_FOUND => {
            format!("{what}: not found (404); is UniFi Protect installed and running?")
        }
        s => format!("{what}: HTTP {}", s.as_u16()),
    })
}

fn check_status(what: &str, status: StatusCode) -> Result<(), ProtectError> {
    if status.is_success() {
        Ok(())
    } else {
        Err(status_error(what, status))
    }
}

fn websocket_key() -> Result<String, ProtectError> {
    use ring::rand::SecureRandom;
    let mut nonce = [0u8; 16];
    ring::rand::SystemRandom::new()
        .fill(&mut nonce)
        .map_err(|_| ProtectError::Protocol("no randomness for the WebSocket key".into()))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(nonce))
}

/// RFC 6455 §4.2.2: base64(SHA-1(key + GUID)).
fn accept_key(key: &[u8]) -> String {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY);
    ctx.update(key);
    ctx.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    base64::engine::general_purpose::STANDARD.encode(ctx.finish())
}

/// The decoded messages of one update socket, in order. Malformed packets are logged and
/// skipped, as are messages whose action is not `add`, `update` or `remove`; the stream ends
/// (`None`) when the socket closes or fails, never on a bad packet.
pub struct UpdateStream {
    ws: WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>,
    host: String,
    last_update_id: Option<String>,
    end: Option<String>,
}

impl fmt::Debug for UpdateStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpdateStream")
            .field("host", &self.host)
            .field("last_update_id", &self.last_update_id)
            .field("end", &self.end)
            .finish_non_exhaustive()
    }
}

impl UpdateStream {
    /// The `newUpdateId` of the last message received (or the id the stream was opened with):
    /// give it to [`ProtectClient::updates`] to resume.
    pub fn last_update_id(&self) -> Option<&str> {
        self.last_update_id.as_deref()
    }

    /// Why the stream ended, once it has.
    pub fn end_reason(&self) -> Option<&str> {
        self.end.as_deref()
    }

    /// Closes the socket politely.
    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }

    fn finish(&mut self, reason: String) {
        tracing::debug!(host = %self.host, reason = %reason, "Protect update socket ended");
        self.end.get_or_insert(reason);
    }
}

impl Stream for UpdateStream {
    type Item = UpdateMessage;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<UpdateMessage>> {
        let this = &mut *self;
        if this.end.is_some() {
            return Poll::Ready(None);
        }
        loop {
            let next = match this.ws.poll_next_unpin(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(next) => next,
            };
            match next {
                Some(Ok(Message::Binary(bytes))) => match packet::decode(&bytes) {
                    Ok(msg) => {
                        if let Some(id) = &msg.action.new_update_id {
                            this.last_update_id = Some(id.clone());
                        }
                        if matches!(msg.action.action.as_str(), "add" | "update" | "remove") {
                            return Poll::Ready(Some(msg));
                        }
                        tracing::debug!(host = %this.host, action = %msg.action.action,
                            "Protect update with an unknown action ignored");
                    }
                    Err(e) => tracing::warn!(host = %this.host, error = %e, bytes = bytes.len(),
                        "malformed Protect update packet skipped"),
                },
                Some(Ok(Message::Close(frame))) => {
                    let reason = match frame {
                        Some(f) => format!("closed by the console ({}: {})", f.code, f.reason),
                        None => "closed by the console".to_string(),
                    };
                    this.finish(reason);
                }
                // Text is not part of the protocol; pings are answered by tungstenite.
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    this.finish(format!("socket error: {e}"));
                    return Poll::Ready(None);
                }
                None => {
                    this.finish("the socket closed".into());
                    return Poll::Ready(None);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(list: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in list {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn session_cookies() {
        let h = headers(&[
            ("set-cookie", "other=1; Path=/"),
            (
                "set-cookie",
                "TOKEN=abc.def; path=/; samesite=none; secure; httponly",
            ),
        ]);
        assert_eq!(session_cookie(&h).unwrap().0, "TOKEN=abc.def");
        let h = headers(&[
            ("set-cookie", "TOKEN=old"),
            ("set-cookie", "UOS_TOKEN=new; Secure"),
        ]);
        assert_eq!(session_cookie(&h).unwrap().0, "UOS_TOKEN=new");
        assert!(session_cookie(&headers(&[("set-cookie", "TOKEN=; Max-Age=0")])).is_none());
        assert!(session_cookie(&headers(&[("set-cookie", "TOKENX=1")])).is_none());
    }

    #[test]
    fn csrf_tokens() {
        let h = headers(&[("x-csrf-token", "a"), ("x-updated-csrf-token", "b")]);
        assert_eq!(csrf_token(&h).unwrap().0, "b");
        assert_eq!(
            csrf_token(&headers(&[("X-CSRF-Token", "a")])).unwrap().0,
            "a"
        );
        assert!(csrf_token(&HeaderMap::new()).is_none());
    }

    #[test]
    fn secrets_stay_out_of_debug_output() {
        let cfg = ControllerConfig {
            host: "unvr.local".into(),
            username: "viewer".into(),
            password: "hunter2-secret".into(),
            verify_ssl: false,
        };
        let printed = format!("{cfg:?}");
        assert!(!printed.contains("hunter2") && printed.contains("viewer"));
        let client = ProtectClient::new(cfg).unwrap();
        assert!(!format!("{client:?}").contains("hunter2"));
        let session = Session {
            generation: 1,
            cookie: Mutex::new(Secret("TOKEN=cookie-secret".into())),
            csrf: Mutex::new(Some(Secret("csrf-secret".into()))),
        };
        let printed = format!("{session:?}");
        assert!(!printed.contains("secret"), "{printed}");
    }

    #[test]
    fn hosts_with_ports() {
        assert_eq!(host_with_port("unvr.local", 443), "unvr.local:443");
        assert_eq!(host_with_port(" 10.0.0.2 ", 7443), "10.0.0.2:7443");
        assert_eq!(host_with_port("fe80::1", 8443), "[fe80::1]:8443");
        let cfg = |host: String| ControllerConfig {
            host,
            username: "u".into(),
            password: "p".into(),
            verify_ssl: false,
        };
        let client = ProtectClient::new(cfg(host_with_port("fe80::1", 8443))).unwrap();
        assert_eq!(client.host(), "[fe80::1]:8443");
        assert!(matches!(
            ProtectClient::new(cfg("bad host".into())),
            Err(ProtectError::InvalidInput(_))
        ));
    }

    /// The API spawns these: the futures and the stream must be `Send`.
    #[test]
    fn futures_and_streams_can_move_between_threads() {
        fn send<T: Send>(_: T) {}
        fn send_unpin<T: Send + Unpin + 'static>() {}
        let client = ProtectClient::new(ControllerConfig {
            host: "127.0.0.1:9".into(),
            username: "u".into(),
            password: "p".into(),
            verify_ssl: false,
        })
        .unwrap();
        send(client.login());
        send(client.bootstrap());
        send(client.snapshot("c1"));
        send(client.export_video("c1", 1, 2, Path::new("/nonexistent")));
        send(client.updates(Some("u1")));
        send_unpin::<UpdateStream>();
        send_unpin::<ProtectClient>();
    }

    #[test]
    fn camera_ids() {
        assert!(check_id("65f0c0ffee0000000000abcd").is_ok());
        for bad in ["", "../nvr", "a/b", "a?b", "a b", &"x".repeat(65)] {
            assert!(check_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn websocket_accept_key_matches_rfc_6455() {
        assert_eq!(
            accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
        assert_eq!(websocket_key().unwrap().len(), 24);
    }
}
