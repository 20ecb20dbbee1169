//! `TestApp`: the real server on 127.0.0.1:0 with a fresh data dir and a manual clock, plus a
//! real HTTP client. Dropping it shuts the server down.

use argus::app::{self, Deps};
use argus::clock::{Clock, ManualClock, SystemClock};
use argus::config::Config;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

pub const ADMIN_PASSWORD: &str = "Correct-Horse-42";

pub struct TestApp {
    pub addr: SocketAddr,
    pub base: String,
    pub client: reqwest::Client,
    pub clock: ManualClock,
    pub dir: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl TestApp {
    pub async fn start() -> TestApp {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> TestApp {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = Config::for_data_dir(&dir.path().join("data"));
        tweak(&mut cfg);
        Self::start_in(dir, cfg).await
    }

    pub async fn start_in(dir: tempfile::TempDir, cfg: Config) -> TestApp {
        Self::start_with_deps(dir, cfg, ManualClock::new(SystemClock.now_ms()), None).await
    }

    /// Starts with a given clock and, optionally, a filesystem probe (free-disk tests).
    pub async fn start_with_deps(
        dir: tempfile::TempDir,
        cfg: Config,
        clock: ManualClock,
        fs_probe: Option<Arc<dyn argus::retention::FsProbe>>,
    ) -> TestApp {
        let mut deps = Deps {
            clock: Arc::new(clock.clone()),
            ..Default::default()
        };
        if let Some(p) = fs_probe {
            deps.fs_probe = p;
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            app::run(cfg, deps, listener, async {
                let _ = rx.await;
            })
            .await
            .expect("server runs");
        });
        let app = TestApp {
            addr,
            base: format!("http://{addr}"),
            client: {
                // reqwest is built without a default TLS crypto provider (ring is installed
                // explicitly, see `argus::ai::http_client`).
                let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();
                reqwest::Client::new()
            },
            clock,
            dir,
            stop: Some(tx),
            task: Some(task),
        };
        for _ in 0..200 {
            if let Ok(r) = app
                .client
                .get(app.url("/api/v1/system/health"))
                .send()
                .await
            {
                if r.status() == StatusCode::OK {
                    return app;
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        panic!("server did not come up");
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Stops the server and waits for it.
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.unwrap();
        }
    }

    /// Stops the server and hands back its directory, to start another server on it.
    pub async fn stop_keep_dir(mut self) -> tempfile::TempDir {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.unwrap();
        }
        std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap())
    }

    /// A request with an optional credential (`argus_...` key or JWT).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        auth: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        let mut rb = self.client.request(method, self.url(path));
        if let Some(a) = auth {
            if a.starts_with("argus_") {
                rb = rb.header("X-API-Key", a);
            } else {
                rb = rb.bearer_auth(a);
            }
        }
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let r = rb.send().await.unwrap();
        let status = r.status();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap();
        let v = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, headers, v)
    }

    pub async fn get(&self, path: &str, auth: &str) -> (StatusCode, Value) {
        let (s, _, v) = self.call(Method::GET, path, Some(auth), None).await;
        (s, v)
    }

    pub async fn post(&self, path: &str, auth: &str, body: Value) -> (StatusCode, Value) {
        let (s, _, v) = self.call(Method::POST, path, Some(auth), Some(body)).await;
        (s, v)
    }

    pub async fn put(&self, path: &str, auth: &str, body: Value) -> (StatusCode, Value) {
        let (s, _, v) = self.call(Method::PUT, path, Some(auth), Some(body)).await;
        (s, v)
    }

    pub async fn delete(&self, path: &str, auth: &str) -> (StatusCode, Value) {
        let (s, _, v) = self.call(Method::DELETE, path, Some(auth), None).await;
        (s, v)
    }

    pub fn initial_password(&self) -> String {
        std::fs::read_to_string(self.data_dir().join("initial-admin-password"))
            .unwrap()
            .trim()
            .to_string()
    }

    pub async fn login(&self, username: &str, password: &str) -> (StatusCode, Value) {
        let (s, _, v) = self
            .call(
                Method::POST,
                "/api/v1/auth/login",
                None,
                Some(json!({"username": username, "password": password})),
            )
            .await;
        (s, v)
    }

    /// Logs in as admin, changing the initial password on first use; returns a JWT.
    pub async fn admin_token(&self) -> String {
        let (s, v) = self.login("admin", ADMIN_PASSWORD).await;
        if s == StatusCode::OK {
            return v["access_token"].as_str().unwrap().to_string();
        }
        let (s, v) = self.login("admin", &self.initial_password()).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let first = v["access_token"].as_str().unwrap().to_string();
        let (s, v) = self
            .post(
                "/api/v1/auth/change-password",
                &first,
                json!({"current_password": self.initial_password(), "new_password": ADMIN_PASSWORD}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        first
    }

    /// Creates an API key through the API; returns (id, key).
    pub async fn api_key(
        &self,
        admin: &str,
        scopes: &[&str],
        rate: Option<u32>,
    ) -> (String, String) {
        let mut body = json!({"name": format!("test {}", scopes.join(" ")), "scopes": scopes});
        if let Some(r) = rate {
            body["rate_limit_per_minute"] = json!(r);
        }
        let (s, v) = self.post("/api/v1/api-keys", admin, body).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        (
            v["id"].as_str().unwrap().to_string(),
            v["key"].as_str().unwrap().to_string(),
        )
    }

    /// Adds an RTSP camera; returns its id.
    pub async fn camera(&self, auth: &str, name: &str) -> String {
        let (s, v) = self
            .post(
                "/api/v1/cameras",
                auth,
                json!({"name": name, "type": "rtsp", "rtsp_url": "rtsp://127.0.0.1:1/stream"}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        v["id"].as_str().unwrap().to_string()
    }

    /// Polls a camera until its capture status is `want`; returns the camera JSON.
    pub async fn wait_camera_status(&self, auth: &str, id: &str, want: &str, secs: u64) -> Value {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(secs);
        loop {
            let (_, v) = self.get(&format!("/api/v1/cameras/{id}"), auth).await;
            if v["status"]["status"] == json!(want) {
                return v;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "camera never reached {want}: {}",
                v["status"]
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    /// Creates an event through the API; returns its JSON.
    pub async fn event(&self, auth: &str, body: Value) -> Value {
        let (s, v) = self.post("/api/v1/events", auth, body).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        v
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

/// Asserts an error response: status, JSON body shape, and that the detail contains `needle`.
#[track_caller]
pub fn assert_error(status: StatusCode, body: &Value, want: u16, needle: &str) {
    assert_eq!(status.as_u16(), want, "body: {body}");
    assert_eq!(body["status_code"], json!(want), "body: {body}");
    let d = body["detail"]
        .as_str()
        .unwrap_or_else(|| panic!("no detail in {body}"));
    assert!(d.contains(needle), "detail {d:?} lacks {needle:?}");
}

/// A tiny valid JPEG (1x1 grey), base64.
pub const TINY_JPEG_B64: &str = "/9j/4AAQSkZJRgABAQEASABIAAD/2wBDAAMCAgICAgMCAgIDAwMDBAYEBAQEBAgGBgUGCQgKCgkICQkKDA8MCgsOCwkJDRENDg8QEBEQCgwSExIQEw8QEBD/yQALCAABAAEBAREA/8wABgAQEAX/2gAIAQEAAD8A0s8g/9k=";

/// The ONNX Runtime library the scripts fetch (`scripts/test.sh` sets `ORT_DYLIB_PATH`).
pub fn ort_lib() -> PathBuf {
    let lib = std::env::var_os("ORT_DYLIB_PATH")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("target/onnxruntime")
                .join(std::env::consts::ARCH)
                .join("libonnxruntime.so")
        });
    assert!(
        lib.exists(),
        "no ONNX Runtime at {}: run scripts/fetch-onnxruntime.sh",
        lib.display()
    );
    lib
}

/// The shipped model's description (the model itself is made by `scripts/make-model.sh`).
/// The default model's description (the one the binary picks for this target), or the one
/// `ARGUS_TEST_MODEL` names (to run the detector tests against another model).
pub fn model_toml() -> PathBuf {
    match std::env::var_os("ARGUS_TEST_MODEL") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("models")
            .join(argus::detect::service::DEFAULT_MODEL),
    }
}

/// What tract runs by default (on armv7): the float YOLOv4-tiny.
pub fn tract_model_toml() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/yolov4-tiny-416.toml")
}

/// Switches the real detector on (one worker, two threads).
pub fn with_detector(cfg: &mut Config) {
    cfg.detector = argus::config::DetectorSection {
        model: Some(model_toml()),
        runtime: Some(ort_lib()),
        threads: Some(2),
        ..Default::default()
    };
}

/// Reads WebSocket messages until `pick` returns something, for at most `secs`.
pub async fn next_matching<S>(ws: &mut S, secs: u64, pick: impl Fn(&Value) -> bool) -> Value
where
    S: futures_util::Stream<
            Item = Result<
                tokio_tungstenite::tungstenite::Message,
                tokio_tungstenite::tungstenite::Error,
            >,
        > + Unpin,
{
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        assert!(
            !left.is_zero(),
            "no matching WebSocket message within {secs} s"
        );
        if let Ok(Some(Ok(tokio_tungstenite::tungstenite::Message::Text(t)))) =
            tokio::time::timeout(left, futures_util::StreamExt::next(ws)).await
        {
            let m: Value = serde_json::from_str(t.as_str()).unwrap();
            if pick(&m) {
                return m;
            }
        }
    }
}

/// A command running the `argus` binary under test. When the tests run for another
/// architecture (`scripts/test-arm.sh`), `ARGUS_TEST_EXEC_WRAPPER` names the emulator wrapper
/// that runs it.
pub fn argus_command() -> std::process::Command {
    let bin = env!("CARGO_BIN_EXE_argus");
    match std::env::var_os("ARGUS_TEST_EXEC_WRAPPER") {
        Some(w) if !w.is_empty() => {
            let mut c = std::process::Command::new(w);
            c.arg(bin);
            c
        }
        _ => std::process::Command::new(bin),
    }
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Every file under `dir`, recursively (none when it does not exist).
pub fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}
