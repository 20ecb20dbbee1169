//! Hostile clients on the LAN and the appliance's memory: the real `argus` binary as a child
//! process (so its allocator settings from `main` apply), its peak resident memory (`VmHWM`,
//! reset before each flood through `/proc/<pid>/clear_refs`) read while a flood of
//! wrong-password logins from many addresses, or of oversized images, hits it.

use crate::fake_ai::FakeAi;
use crate::support::*;
use base64::Engine as _;
use serde_json::{json, Value};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::{Child, Stdio};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const MB: u64 = 1_000_000;

/// Growth of the peak resident memory a flood may cause. Before the fixes, 100 wrong-password
/// logins grew it by about 1.9 GB and four uploads of the crafted PNG by about 2 GB.
const MAX_GROWTH: u64 = 100 * MB;

/// `argus serve` on a free loopback port, with its own data dir and config file; killed when
/// dropped.
struct Argus {
    child: Child,
    addr: SocketAddr,
    dir: tempfile::TempDir,
}

impl Drop for Argus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Argus {
    async fn start(config: &str) -> Argus {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("argus.toml");
        std::fs::write(&file, config).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let child = argus_command()
            .arg("--config")
            .arg(&file)
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .args(["--listen", &addr.to_string(), "--motion-only", "serve"])
            .env_remove("ARGUS_CONFIG")
            .env_remove("ARGUS_LISTEN")
            .env_remove("ARGUS_DATA_DIR")
            .env("ARGUS_LOG", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut argus = Argus { child, addr, dir };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = argus.child.try_wait().unwrap() {
                panic!("argus exited at start-up: {status}");
            }
            if let Ok(Ok((200, _, _))) = tokio::time::timeout(
                Duration::from_secs(5),
                http(local(), addr, "GET", "/api/v1/system/health", None, None),
            )
            .await
            {
                return argus;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "argus did not come up"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A `/proc/<pid>/status` figure (`VmHWM`, `VmRSS`), in bytes.
    fn status(&self, field: &str) -> u64 {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let line = s
            .lines()
            .find(|l| l.starts_with(&format!("{field}:")))
            .unwrap_or_else(|| panic!("no {field} in /proc/<pid>/status"));
        let kb: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
        kb * 1024
    }

    /// Resets `VmHWM` to the current RSS (Linux 4.0+); false when not allowed.
    fn reset_peak(&self) -> bool {
        std::fs::write(format!("/proc/{}/clear_refs", self.child.id()), "5").is_ok()
    }

    fn initial_password(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("data/initial-admin-password"))
            .unwrap()
            .trim()
            .to_string()
    }

    /// Logs in with the one-time password and changes it; returns the session's token.
    async fn admin_token(&self) -> String {
        let first = self.initial_password();
        let (s, _, v) = self
            .call("POST", "/api/v1/auth/login", None, Some(login(&first)))
            .await;
        assert_eq!(s, 200, "{v}");
        let token = v["access_token"].as_str().unwrap().to_string();
        let (s, _, v) = self
            .call(
                "POST",
                "/api/v1/auth/change-password",
                Some(&token),
                Some(json!({"current_password": first, "new_password": ADMIN_PASSWORD})),
            )
            .await;
        assert_eq!(s, 200, "{v}");
        token
    }

    async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Vec<(String, String)>, Value) {
        tokio::time::timeout(
            Duration::from_secs(60),
            http(local(), self.addr, method, path, token, body.as_ref()),
        )
        .await
        .expect("an answer within 60 s")
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }
}

fn local() -> IpAddr {
    IpAddr::V4(Ipv4Addr::LOCALHOST)
}

fn login(password: &str) -> Value {
    json!({"username": "admin", "password": password})
}

/// One HTTP/1.1 request on its own connection from `source` (all of 127.0.0.0/8 is
/// loopback, so each test client can have its own address). Returns status, headers (names in
/// lower case) and the JSON body.
async fn http(
    source: IpAddr,
    to: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> std::io::Result<(u16, Vec<(String, String)>, Value)> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(source, 0))?;
    let mut stream = socket.connect(to).await?;
    let body = body.map(Value::to_string).unwrap_or_default();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {to}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if !body.is_empty() {
        head.push_str("Content-Type: application/json\r\n");
    }
    if let Some(t) = token {
        head.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await?;
    let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string());
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("no end of headers"))?;
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("no status line"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut payload = raw[split + 4..].to_vec();
    if headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"))
    {
        payload = unchunk(&payload);
    }
    let v = if payload.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&payload)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&payload).into()))
    };
    Ok((status, headers, v))
}

fn unchunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = b.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(
            String::from_utf8_lossy(&b[..eol])
                .split(';')
                .next()
                .unwrap()
                .trim(),
            16,
        )
        .unwrap_or(0);
        if size == 0 {
            break;
        }
        out.extend_from_slice(&b[eol + 2..eol + 2 + size]);
        b = &b[eol + 2 + size + 2..];
    }
    out
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// `n` concurrent wrong-password logins, the i-th from 127.0.`net`.i; every answer.
async fn login_flood(to: SocketAddr, net: u8, n: u8) -> Vec<(u16, Vec<(String, String)>, Value)> {
    let tasks: Vec<_> = (1..=n)
        .map(|i| {
            tokio::spawn(async move {
                let from = IpAddr::V4(Ipv4Addr::new(127, 0, net, i));
                http(
                    from,
                    to,
                    "POST",
                    "/api/v1/auth/login",
                    None,
                    Some(&login("not-the-password-1")),
                )
                .await
                .unwrap_or_else(|e| panic!("login from {from}: {e}"))
            })
        })
        .collect();
    let all = async {
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap());
        }
        out
    };
    tokio::time::timeout(Duration::from_secs(180), all)
        .await
        .expect("the flood is answered within 180 s")
}

/// A 429 as the API sends it: `Retry-After` in seconds and the JSON error body.
#[track_caller]
fn assert_too_many(headers: &[(String, String)], body: &Value) {
    let wait: u64 = header(headers, "retry-after")
        .unwrap_or_else(|| panic!("429 without Retry-After: {body}"))
        .parse()
        .expect("Retry-After in seconds");
    assert!((1..=3600).contains(&wait), "{wait}");
    assert_eq!(body["status_code"], json!(429), "{body}");
    assert!(body["detail"].is_string(), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_flood_from_100_addresses_costs_a_few_hashes_of_memory_and_leaves_login_working() {
    // The global limit raised out of the way: the bound on hashes in flight is what is tested.
    let argus = Argus::start("[auth]\nlogin_attempts_per_minute = 100000\n").await;
    // One failed login first, so what every login needs once (the dummy hash, buffers) is
    // there before the measurement.
    let (s, _, _) = argus
        .call(
            "POST",
            "/api/v1/auth/login",
            None,
            Some(login("nope-nope-1")),
        )
        .await;
    assert_eq!(s, 401);
    let rss_before = argus.status("VmRSS");
    let reset = argus.reset_peak();
    let hwm_before = argus.status("VmHWM");

    let answers = login_flood(argus.addr, 1, 100).await;

    let hwm_after = argus.status("VmHWM");
    let rss_after = argus.status("VmRSS");
    let (mut unauthorized, mut busy) = (0, 0);
    for (s, h, v) in &answers {
        match s {
            401 => unauthorized += 1,
            429 => {
                assert_too_many(h, v);
                busy += 1;
            }
            other => panic!("login answered {other}: {v}"),
        }
    }
    let growth = hwm_after.saturating_sub(hwm_before);
    eprintln!(
        "login flood: {unauthorized} x 401, {busy} x 429; VmHWM {} -> {} MB (+{} MB, peak reset: \
         {reset}); VmRSS {} -> {} MB",
        hwm_before / MB,
        hwm_after / MB,
        growth / MB,
        rss_before / MB,
        rss_after / MB
    );
    assert!(unauthorized > 0, "no password was checked at all");
    assert!(
        growth < MAX_GROWTH,
        "VmHWM grew by {} MB during the flood",
        growth / MB
    );
    // And the memory went back: no more than the flood's peak stays resident.
    assert!(
        rss_after < rss_before + MAX_GROWTH,
        "VmRSS {} MB after the flood, {} MB before",
        rss_after / MB,
        rss_before / MB
    );
    // The owner can still log in.
    let (s, _, v) = argus
        .call(
            "POST",
            "/api/v1/auth/login",
            None,
            Some(login(&argus.initial_password())),
        )
        .await;
    assert_eq!(s, 200, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_logins_over_the_global_limit_gets_429() {
    // Default configuration: 60 attempts a minute in all, each address well within its own 10.
    let app = TestApp::start().await;
    let answers = login_flood(app.addr, 2, 80).await;
    let global: Vec<_> = answers
        .iter()
        .filter(|(s, _, v)| {
            *s == 429
                && v["detail"]
                    .as_str()
                    .is_some_and(|d| d.contains("receiving too many login attempts"))
        })
        .collect();
    for (_, h, v) in &global {
        assert_too_many(h, v);
    }
    // 80 at once against a budget of 60 (refilling one a second while they arrive).
    assert!(
        (10..=20).contains(&global.len()),
        "{} refused by the global limit",
        global.len()
    );
    for (s, _, v) in &answers {
        assert!(*s == 401 || *s == 429, "{s}: {v}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_every_hashing_slot_stays_taken_logins_get_429_with_retry_after() {
    // One hash at a time and 1 s of patience: 40 attempts at once (each hash takes well over
    // 25 ms) cannot all be checked in time.
    let app = TestApp::start_with(|c| {
        c.auth.password_hashes_in_flight = Some(1);
        c.auth.password_hash_wait_secs = 1;
    })
    .await;
    let answers = login_flood(app.addr, 3, 40).await;
    let mut busy = 0;
    for (s, h, v) in &answers {
        match s {
            401 => {}
            429 => {
                assert_too_many(h, v);
                assert_eq!(header(h, "retry-after"), Some("1"));
                let d = v["detail"].as_str().unwrap();
                assert!(d.contains("busy checking other passwords"), "{d}");
                busy += 1;
            }
            other => panic!("{other}: {v}"),
        }
    }
    assert!((1..40).contains(&busy), "{busy} of 40 refused as busy");
    let (s, v) = app.login("admin", &app.initial_password()).await;
    assert_eq!(s, reqwest::StatusCode::OK, "{v}");
}

#[test]
fn the_new_auth_settings_are_validated() {
    use argus::config::{Config, FileConfig, Overrides};
    let parse = |t: &str| {
        Config::from_parts(
            toml::from_str::<FileConfig>(t).unwrap(),
            &Overrides::default(),
        )
    };
    let c = parse("").unwrap();
    assert_eq!(c.auth.login_attempts_per_minute, 60);
    assert_eq!(c.auth.password_hashes_in_flight, None);
    assert_eq!(c.auth.password_hash_wait_secs, 5);
    let c = parse("[auth]\npassword_hashes_in_flight = 2\npassword_hash_wait_secs = 10").unwrap();
    assert_eq!(c.auth.password_hashes_in_flight, Some(2));
    for (bad, needle) in [
        (
            "login_attempts_per_minute = 0",
            "auth.login_attempts_per_minute",
        ),
        (
            "password_hashes_in_flight = 0",
            "auth.password_hashes_in_flight",
        ),
        (
            "password_hashes_in_flight = 1000",
            "auth.password_hashes_in_flight",
        ),
        (
            "password_hash_wait_secs = 0",
            "auth.password_hash_wait_secs",
        ),
    ] {
        let e = parse(&format!("[auth]\n{bad}")).unwrap_err().to_string();
        assert!(e.contains(needle), "{bad}: {e}");
    }
}

/// The issue's upload: about 280 KB of PNG that decodes to 6000x6000 16-bit RGBA (288 MB, just
/// inside the old 40-megapixel limit): zero rows, filter byte 0, zlib-compressed one row at a
/// time.
fn crafted_png() -> Vec<u8> {
    use miniz_oxide::deflate::core::{
        compress_to_output, create_comp_flags_from_zip_params, CompressorOxide, TDEFLFlush,
    };
    let (w, h) = (6000u32, 6000u32);
    let row = vec![0u8; 1 + w as usize * 8];
    let mut c = CompressorOxide::new(create_comp_flags_from_zip_params(6, 1, 0));
    let mut z = Vec::new();
    for _ in 0..h {
        compress_to_output(&mut c, &row, TDEFLFlush::None, |b| {
            z.extend_from_slice(b);
            true
        });
    }
    compress_to_output(&mut c, &[], TDEFLFlush::Finish, |b| {
        z.extend_from_slice(b);
        true
    });
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[16, 6, 0, 0, 0]);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    for (kind, data) in [(b"IHDR", &ihdr[..]), (b"IDAT", &z[..]), (b"IEND", &[][..])] {
        png.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let start = png.len();
        png.extend_from_slice(kind);
        png.extend_from_slice(data);
        let crc = crc32(&png[start..]);
        png.extend_from_slice(&crc.to_be_bytes());
    }
    png
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A real 64x48 JPEG whose frame header claims `w`x`h`.
fn jpeg_claiming(w: u16, h: u16) -> Vec<u8> {
    let rgb: Vec<u8> = (0..64 * 48 * 3).map(|i| (i % 251) as u8).collect();
    let mut j = Vec::new();
    jpeg_encoder::Encoder::new(&mut j, 85)
        .encode(&rgb, 64, 48, jpeg_encoder::ColorType::Rgb)
        .unwrap();
    let sof = j.windows(2).position(|m| m == [0xFF, 0xC0]).unwrap();
    j[sof + 5..sof + 7].copy_from_slice(&h.to_be_bytes());
    j[sof + 7..sof + 9].copy_from_slice(&w.to_be_bytes());
    j
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_images_are_refused_from_their_headers_before_any_decoding() {
    let b64 = base64::engine::general_purpose::STANDARD;
    let fake = FakeAi::answering(
        r#"{"description": "A garden.", "objects": [], "confidence": 80, "threat_level": "none"}"#,
    )
    .await;
    let argus = Argus::start("").await;
    let admin = argus.admin_token().await;
    let (s, _, v) = argus
        .call(
            "PUT",
            "/api/v1/system/settings",
            Some(&admin),
            Some(json!({
                "ai_provider_order": ["openai"],
                "ai_providers": {"openai": {"api_key": "sk-test-openai-key-abcd", "base_url": fake.base("openai"), "model": "gpt-4o-mini"}},
            })),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    // The provider is reachable: a real photo is described.
    let person = std::fs::read(format!(
        "{}/tests/data/images/person.jpg",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let (s, _, v) = argus
        .call(
            "POST",
            "/api/v1/ai/describe",
            Some(&admin),
            Some(json!({"image_base64": b64.encode(&person)})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let sent = fake.requests().len();
    assert_eq!(sent, 1);

    let png = crafted_png();
    assert!(png.len() < 400_000, "{} bytes", png.len());
    let body = json!({"image_base64": b64.encode(&png)});
    let reset = argus.reset_peak();
    let hwm_before = argus.status("VmHWM");
    let uploads: Vec<_> = (0..4)
        .map(|_| {
            let (addr, admin, body) = (argus.addr, admin.clone(), body.clone());
            tokio::spawn(async move {
                http(
                    local(),
                    addr,
                    "POST",
                    "/api/v1/ai/describe",
                    Some(&admin),
                    Some(&body),
                )
                .await
                .unwrap()
            })
        })
        .collect();
    for u in uploads {
        let (s, _, v) = tokio::time::timeout(Duration::from_secs(120), u)
            .await
            .expect("answered within 120 s")
            .unwrap();
        assert_error(
            reqwest::StatusCode::from_u16(s).unwrap(),
            &v,
            422,
            "too large",
        );
        assert!(v["detail"].as_str().unwrap().starts_with("image:"), "{v}");
    }
    let hwm_after = argus.status("VmHWM");
    let growth = hwm_after.saturating_sub(hwm_before);
    eprintln!(
        "4 uploads of the crafted PNG ({} KB): VmHWM {} -> {} MB (+{} MB, peak reset: {reset})",
        png.len() / 1000,
        hwm_before / MB,
        hwm_after / MB,
        growth / MB
    );
    assert!(growth < MAX_GROWTH, "VmHWM grew by {} MB", growth / MB);
    assert_eq!(
        fake.requests().len(),
        sent,
        "nothing more reached the provider"
    );
    assert!(fake.violations().is_empty(), "{:?}", fake.violations());

    // As an event's thumbnail (decoded later by re-analysis): a JPEG claiming 12000x12000.
    let (s, _, cam) = argus
        .call(
            "POST",
            "/api/v1/cameras",
            Some(&admin),
            Some(json!({"name": "Porch", "type": "rtsp", "rtsp_url": "rtsp://127.0.0.1:1/stream", "is_enabled": false})),
        )
        .await;
    assert_eq!(s, 201, "{cam}");
    let (s, _, v) = argus
        .call(
            "POST",
            "/api/v1/events",
            Some(&admin),
            Some(json!({
                "camera_id": cam["id"],
                "detection_type": "person",
                "thumbnail_base64": b64.encode(jpeg_claiming(12000, 12000)),
            })),
        )
        .await;
    assert_error(
        reqwest::StatusCode::from_u16(s).unwrap(),
        &v,
        422,
        "thumbnail_base64",
    );
    assert!(v["detail"].as_str().unwrap().contains("too large"), "{v}");
    let (s, _, list) = argus
        .call("GET", "/api/v1/events", Some(&admin), None)
        .await;
    assert_eq!(s, 200, "{list}");
    assert_eq!(list["total"], json!(0), "no event stored: {list}");
    // A thumbnail of an ordinary size is still stored.
    let (s, _, v) = argus
        .call(
            "POST",
            "/api/v1/events",
            Some(&admin),
            Some(json!({
                "camera_id": cam["id"],
                "detection_type": "person",
                "thumbnail_base64": b64.encode(&person),
            })),
        )
        .await;
    assert_eq!(s, 201, "{v}");
}
