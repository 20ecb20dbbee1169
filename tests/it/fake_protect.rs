//! A fake UniFi Protect console, written from the protocol description (the reference's
//! section 7): HTTPS with a self-signed certificate on 127.0.0.1:0, the UniFi OS login with a
//! `TOKEN` cookie and an `X-CSRF-Token` header, the bootstrap (a camera "Driveway" and a
//! doorbell "Front Door"), snapshots (a real JPEG), video exports (an MP4 made with ffmpeg from
//! `assets/demo/person-walk.h264`, 404 for the first answers of a window when told to) and the
//! binary update WebSocket.
//!
//! The test drives it: push messages (plain or zlib) or raw bytes to the connected update
//! sockets, drop the sockets, expire the sessions (the next authenticated request answers 401),
//! and look at what the client did (logins, requests, the `lastUpdateId` of each socket).

#![allow(dead_code)]

use argus::protect::packet::{self, Action, Payload};
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_rustls::rustls;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

pub const USERNAME: &str = "argus-viewer";
pub const PASSWORD: &str = "Pr0tect-Viewer-Pass";
pub const DRIVEWAY_ID: &str = "663a1f0c00e1d203e4000a01";
pub const FRONT_DOOR_ID: &str = "663a1f0c00e1d203e4000a02";
pub const NVR_NAME: &str = "Fake UNVR";
pub const NVR_FIRMWARE: &str = "4.1.13";
pub const NVR_VERSION: &str = "5.2.49";
pub const BOOTSTRAP_UPDATE_ID: &str = "0b8e1c52-5e0a-4c43-9a1e-3f0a00000001";
const CSRF: &str = "fake-csrf-4d1f3b";

/// What the fake saw of one request.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub cookie: Option<String>,
    pub csrf: Option<String>,
}

/// One `GET /proxy/protect/api/video/export` the fake answered (with the session).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportSeen {
    pub camera: Option<String>,
    pub channel: Option<String>,
    pub start: Option<i64>,
    pub end: Option<i64>,
    /// 200, or 404 while the window is "not ready".
    pub status: u16,
}

/// The MP4 every export answers with: 4 s of `assets/demo/person-walk.h264` (640x360, 15 fps
/// H.264) remuxed by ffmpeg, made once per test run.
pub fn export_mp4() -> &'static [u8] {
    static MP4: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    MP4.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("export.mp4");
        let src = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/demo/person-walk.h264");
        let status = std::process::Command::new("ffmpeg")
            .args(["-v", "error", "-f", "h264", "-framerate", "15", "-i", src])
            .args(["-c", "copy", "-t", "4", "-movflags", "+faststart"])
            .arg(&out)
            .status()
            .expect("ffmpeg runs");
        assert!(status.success(), "ffmpeg made the export");
        std::fs::read(&out).unwrap()
    })
}

enum WsCmd {
    Send(Vec<u8>),
    Drop,
}

#[derive(Default)]
struct State {
    tokens: HashSet<String>,
    issued: u64,
    logins: usize,
    requests: Vec<Seen>,
    ws_clients: Vec<mpsc::UnboundedSender<WsCmd>>,
    /// The `lastUpdateId` of each update socket opened, in order.
    ws_update_ids: Vec<Option<String>>,
    /// Exports of a window answer 404 this many times before the MP4.
    export_not_ready: usize,
    /// Requests per export window (`camera start end`).
    export_tries: HashMap<String, usize>,
    exports: Vec<ExportSeen>,
}

pub struct FakeProtect {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeProtect {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn tls_acceptor() -> tokio_rustls::TlsAcceptor {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert = rustls_pki_types::CertificateDer::from(ck.cert.der().to_vec());
    let key = rustls_pki_types::PrivateKeyDer::Pkcs8(ck.signing_key.serialize_der().into());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    tokio_rustls::TlsAcceptor::from(Arc::new(cfg))
}

impl FakeProtect {
    pub async fn start() -> FakeProtect {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State::default()));
        let acceptor = tls_acceptor();
        let st = state.clone();
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, st) = (acceptor.clone(), st.clone());
                conns.spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return; // e.g. the client refused our certificate
                    };
                    let svc = hyper::service::service_fn(move |req| {
                        let st = st.clone();
                        async move { Ok::<_, std::convert::Infallible>(handle(st, req).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), svc)
                        .with_upgrades()
                        .await;
                });
            }
        });
        FakeProtect { addr, state, task }
    }

    /// `127.0.0.1:PORT`, for [`argus::protect::ControllerConfig::host`].
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    pub fn config(&self, password: &str, verify_ssl: bool) -> argus::protect::ControllerConfig {
        argus::protect::ControllerConfig {
            host: self.host(),
            username: USERNAME.into(),
            password: password.into(),
            verify_ssl,
        }
    }

    pub fn logins(&self) -> usize {
        self.state.lock().unwrap().logins
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.state.lock().unwrap().requests.clone()
    }

    /// Ends every session: the next authenticated request answers 401 until a new login.
    pub fn expire_sessions(&self) {
        self.state.lock().unwrap().tokens.clear();
    }

    /// The `lastUpdateId` of each update socket opened so far.
    pub fn socket_update_ids(&self) -> Vec<Option<String>> {
        self.state.lock().unwrap().ws_update_ids.clone()
    }

    /// Waits until `n` update sockets have been opened in all.
    pub async fn wait_sockets(&self, n: usize) {
        for _ in 0..500 {
            if self.state.lock().unwrap().ws_update_ids.len() >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the client did not open update socket #{n}");
    }

    fn broadcast(&self, make: impl Fn() -> WsCmd) {
        let mut st = self.state.lock().unwrap();
        st.ws_clients.retain(|tx| tx.send(make()).is_ok());
    }

    /// Sends raw bytes as one binary message on every open update socket.
    pub fn push_raw(&self, bytes: Vec<u8>) {
        self.broadcast(|| WsCmd::Send(bytes.clone()));
    }

    /// Sends one update message (both frames zlib-compressed when `deflate`).
    pub fn push(
        &self,
        action: &str,
        model: &str,
        id: &str,
        update_id: &str,
        data: Value,
        deflate: bool,
    ) {
        let action = Action {
            action: action.into(),
            new_update_id: Some(update_id.into()),
            model_key: model.into(),
            id: id.into(),
        };
        self.push_raw(packet::encode(&action, &Payload::Json(data), deflate));
    }

    /// From now on, the first `n` export requests of each window answer 404 (the console has
    /// not made the export yet), the next ones the MP4.
    pub fn exports_not_ready_for(&self, n: usize) {
        self.state.lock().unwrap().export_not_ready = n;
    }

    /// The export requests answered so far, in order.
    pub fn exports(&self) -> Vec<ExportSeen> {
        self.state.lock().unwrap().exports.clone()
    }

    /// Drops every update socket without a closing handshake, like a console that restarts.
    pub fn drop_sockets(&self) {
        self.broadcast(|| WsCmd::Drop);
        self.state.lock().unwrap().ws_clients.clear();
    }
}

fn reply(status: StatusCode, body: Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}

fn bootstrap() -> Value {
    json!({
        "authUserId": "663a1f0c00e1d203e4000001",
        "accessKey": "not-for-the-client",
        "lastUpdateId": BOOTSTRAP_UPDATE_ID,
        "nvr": {
            "id": "663a1f0c00e1d203e4000100",
            "name": NVR_NAME,
            "type": "UNVR",
            "marketName": "UNVR",
            "version": NVR_VERSION,
            "firmwareVersion": NVR_FIRMWARE,
            "isConnectedToCloud": false
        },
        "cameras": [
            {
                "id": DRIVEWAY_ID,
                "modelKey": "camera",
                "name": "Driveway",
                "type": "UVC G4 Bullet",
                "marketName": "G4 Bullet",
                "state": "CONNECTED",
                "isConnected": true,
                "lastMotion": 1_714_000_000_000i64,
                "featureFlags": {"isDoorbell": false, "hasSmartDetect": true,
                                 "smartDetectTypes": ["person", "vehicle"]}
            },
            {
                "id": FRONT_DOOR_ID,
                "modelKey": "camera",
                "name": "Front Door",
                "type": "UVC G4 Doorbell Pro",
                "marketName": "G4 Doorbell Pro",
                "state": "CONNECTED",
                "isConnected": true,
                "lastRing": null,
                "featureFlags": {"isDoorbell": true, "hasSmartDetect": true,
                                 "smartDetectTypes": ["person", "package"]}
            }
        ],
        "users": [],
        "groups": [],
        "liveviews": []
    })
}

fn cookie_token(req: &Request<Incoming>) -> Option<String> {
    req.headers()
        .get_all("cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == "TOKEN")
        .map(|(_, v)| v.to_string())
}

async fn handle(st: Arc<Mutex<State>>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_string();
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    st.lock().unwrap().requests.push(Seen {
        method: req.method().to_string(),
        path: path.clone(),
        query: req.uri().query().map(str::to_string),
        cookie: header("cookie"),
        csrf: header("x-csrf-token"),
    });
    if req.method() == hyper::Method::POST && path == "/api/auth/login" {
        let body = req.into_body().collect().await.unwrap().to_bytes();
        let creds: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        if creds["username"] != USERNAME || creds["password"] != PASSWORD {
            return reply(
                StatusCode::UNAUTHORIZED,
                json!({"code": "AUTHENTICATION_FAILED_INVALID_CREDENTIALS", "message": "Invalid username or password"}),
            );
        }
        assert_eq!(
            creds["rememberMe"], true,
            "the client asks for a remembered session"
        );
        let mut s = st.lock().unwrap();
        s.logins += 1;
        s.issued += 1;
        let token = format!("fake-session-{}", s.issued);
        s.tokens.insert(token.clone());
        let mut resp = reply(
            StatusCode::OK,
            json!({"unique_id": "u1", "username": USERNAME, "isOwner": false}),
        );
        let h = resp.headers_mut();
        h.append("set-cookie", "theme=dark; path=/".parse().unwrap());
        h.append(
            "set-cookie",
            format!("TOKEN={token}; path=/; samesite=none; secure; httponly")
                .parse()
                .unwrap(),
        );
        h.insert("x-csrf-token", CSRF.parse().unwrap());
        return resp;
    }
    let authed = cookie_token(&req).is_some_and(|t| st.lock().unwrap().tokens.contains(&t));
    if !authed {
        return reply(StatusCode::UNAUTHORIZED, json!({"error": "unauthorized"}));
    }
    if path == "/proxy/protect/api/bootstrap" {
        return reply(StatusCode::OK, bootstrap());
    }
    if path == "/proxy/protect/ws/updates" {
        return upgrade(st, req);
    }
    if path == "/proxy/protect/api/video/export" {
        return export(&st, req.uri().query().unwrap_or("")).await;
    }
    if let Some(id) = path
        .strip_prefix("/proxy/protect/api/cameras/")
        .and_then(|rest| rest.strip_suffix("/snapshot"))
    {
        if id != DRIVEWAY_ID && id != FRONT_DOOR_ID {
            return reply(StatusCode::NOT_FOUND, json!({"error": "no such camera"}));
        }
        let jpeg = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/images/person.jpg"
        ))
        .unwrap();
        return Response::builder()
            .header("content-type", "image/jpeg")
            .body(Full::new(Bytes::from(jpeg)))
            .unwrap();
    }
    reply(StatusCode::NOT_FOUND, json!({"error": "not found"}))
}

/// `GET /proxy/protect/api/video/export?camera=&channel=&start=&end=` (times in unix ms).
async fn export(st: &Mutex<State>, query: &str) -> Response<Full<Bytes>> {
    let param = |k: &str| {
        form_urlencoded::parse(query.as_bytes())
            .find(|(name, _)| name == k)
            .map(|(_, v)| v.into_owned())
    };
    let mut seen = ExportSeen {
        camera: param("camera"),
        channel: param("channel"),
        start: param("start").and_then(|v| v.parse().ok()),
        end: param("end").and_then(|v| v.parse().ok()),
        status: 200,
    };
    let known = matches!(seen.camera.as_deref(), Some(DRIVEWAY_ID | FRONT_DOOR_ID));
    let window_ok = matches!((seen.start, seen.end), (Some(a), Some(b)) if a < b);
    if !known || !window_ok {
        seen.status = 400;
        st.lock().unwrap().exports.push(seen);
        return reply(
            StatusCode::BAD_REQUEST,
            json!({"error": "camera, start and end are required"}),
        );
    }
    let not_ready = {
        let mut s = st.lock().unwrap();
        let key = format!("{:?} {:?} {:?}", seen.camera, seen.start, seen.end);
        let tries = s.export_tries.entry(key).or_insert(0);
        *tries += 1;
        let n = *tries;
        n <= s.export_not_ready
    };
    if not_ready {
        seen.status = 404;
        st.lock().unwrap().exports.push(seen);
        return reply(
            StatusCode::NOT_FOUND,
            json!({"error": "The requested recording is not available"}),
        );
    }
    let mp4 = tokio::task::spawn_blocking(export_mp4).await.unwrap();
    st.lock().unwrap().exports.push(seen);
    Response::builder()
        .header("content-type", "video/mp4")
        .header("content-disposition", "attachment; filename=\"export.mp4\"")
        .body(Full::new(Bytes::from_static(mp4)))
        .unwrap()
}

fn upgrade(st: Arc<Mutex<State>>, mut req: Request<Incoming>) -> Response<Full<Bytes>> {
    let Some(key) = req.headers().get("sec-websocket-key").cloned() else {
        return reply(
            StatusCode::BAD_REQUEST,
            json!({"error": "not a WebSocket request"}),
        );
    };
    let last_update_id = form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
        .find(|(k, _)| k == "lastUpdateId")
        .map(|(_, v)| v.into_owned());
    let (tx, mut rx) = mpsc::unbounded_channel();
    {
        let mut s = st.lock().unwrap();
        s.ws_clients.push(tx);
        s.ws_update_ids.push(last_update_id);
    }
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let Ok(upgraded) = on_upgrade.await else {
            return;
        };
        let mut ws =
            WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
        loop {
            tokio::select! {
                cmd = rx.recv() => match cmd {
                    Some(WsCmd::Send(bytes)) => {
                        if ws.send(Message::Binary(bytes.into())).await.is_err() {
                            return;
                        }
                    }
                    // Dropping the stream closes TCP without a closing handshake.
                    Some(WsCmd::Drop) | None => return,
                },
                incoming = ws.next() => match incoming {
                    Some(Ok(_)) => {}
                    _ => return,
                },
            }
        }
    });
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header("connection", "Upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-accept", accept)
        .body(Full::new(Bytes::new()))
        .unwrap()
}
