//! A hostile client on the LAN: slow headers and bodies (slowloris), floods of connections from
//! one host and from many, malformed request heads, and pages of other origins using the
//! owner's session cookie. Attackers are raw sockets from loopback addresses of their own; the
//! well-behaved client connects from 127.0.0.9. Every loop is bounded in count and time.

use crate::support::*;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const CLIENT: &str = "127.0.0.9";

async fn connect_from(addr: SocketAddr, from: &str) -> std::io::Result<TcpStream> {
    let s = TcpSocket::new_v4()?;
    s.bind(SocketAddr::new(from.parse::<IpAddr>().unwrap(), 0))?;
    s.connect(addr).await
}

/// A response read off a raw socket: status, lower-case head, body.
struct Raw {
    status: u16,
    head: String,
    body: Vec<u8>,
    /// The server closed the connection after it.
    closed: bool,
}

impl Raw {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|_| panic!("not JSON: {:?}", String::from_utf8_lossy(&self.body)))
    }

    #[track_caller]
    fn assert_json_error(&self, want: u16) {
        assert_eq!(self.status, want, "{}", self.head);
        assert!(
            self.head.contains("content-type: application/json"),
            "{}",
            self.head
        );
        let v = self.json();
        assert_eq!(v["status_code"], json!(want), "{v}");
        assert!(v["detail"].as_str().is_some_and(|d| !d.is_empty()), "{v}");
    }
}

/// Reads one response (head, then a `Content-Length` body) from `s`; `carry` holds bytes read
/// before and keeps those read past it. `None` if the connection ends or time runs out first.
async fn read_one(
    s: &mut TcpStream,
    carry: &mut Vec<u8>,
    within: Duration,
) -> Option<(u16, String, Vec<u8>)> {
    let deadline = tokio::time::Instant::now() + within;
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(i) = carry.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&carry[..i + 4]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map(|v| v.trim().parse().unwrap())
                .unwrap_or(0);
            if carry.len() >= i + 4 + len {
                let body = carry[i + 4..i + 4 + len].to_vec();
                carry.drain(..i + 4 + len);
                let status = head.split(' ').nth(1)?.parse().ok()?;
                return Some((status, head, body));
            }
        }
        match tokio::time::timeout_at(deadline, s.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return None,
            Ok(Ok(n)) => carry.extend_from_slice(&chunk[..n]),
        }
    }
}

/// Reads one response; `closed` says whether the server closed the connection after it.
async fn read_response(s: &mut TcpStream, within: Duration) -> Option<Raw> {
    let (status, head, body) = read_one(s, &mut Vec::new(), within).await?;
    let mut chunk = [0u8; 512];
    let closed = matches!(
        tokio::time::timeout(Duration::from_millis(1500), s.read(&mut chunk)).await,
        Ok(Ok(0)) | Ok(Err(_))
    );
    Some(Raw {
        status,
        head,
        body,
        closed,
    })
}

/// Sends `bytes` on a new connection from the well-behaved client's address and reads the answer.
async fn raw_request(app: &TestApp, bytes: &[u8]) -> Raw {
    let s = connect_from(app.addr, CLIENT).await.unwrap();
    let std = s.into_std().unwrap();
    let writer = TcpStream::from_std(std.try_clone().unwrap()).unwrap();
    let mut s = TcpStream::from_std(std).unwrap();
    // The server answers (and stops reading) before all of a huge request is written: write
    // while reading.
    let bytes = bytes.to_vec();
    let w = tokio::spawn(async move {
        let mut writer = writer;
        let _ = writer.write_all(&bytes).await;
        writer
    });
    let r = read_response(&mut s, Duration::from_secs(10))
        .await
        .expect("an answer");
    drop(w);
    r
}

/// The well-behaved client: a fresh connection from its own address, timed.
async fn timed_health(app: &TestApp) -> Duration {
    let client = reqwest::Client::builder()
        .local_address(CLIENT.parse::<IpAddr>().unwrap())
        .timeout(Duration::from_secs(20))
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let t = Instant::now();
    let r = client
        .get(app.url("/api/v1/system/health"))
        .send()
        .await
        .expect("the normal client is served");
    assert_eq!(r.status(), StatusCode::OK);
    t.elapsed()
}

#[tokio::test]
async fn heads_the_router_never_sees_still_get_json_errors() {
    let app = TestApp::start().await;
    let long_path = format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "a".repeat(100_000));
    raw_request(&app, long_path.as_bytes())
        .await
        .assert_json_error(414);
    let long_query = format!(
        "GET /api/v1/events?q={} HTTP/1.1\r\nHost: a\r\n\r\n",
        "a".repeat(100_000)
    );
    raw_request(&app, long_query.as_bytes())
        .await
        .assert_json_error(414);
    let big_header = format!(
        "GET / HTTP/1.1\r\nHost: a\r\nX-Big: {}\r\n\r\n",
        "b".repeat(1 << 20)
    );
    let r = raw_request(&app, big_header.as_bytes()).await;
    r.assert_json_error(431);
    assert!(r.closed);
    let many: String = (0..500).map(|i| format!("X-H{i}: v\r\n")).collect();
    raw_request(
        &app,
        format!("GET / HTTP/1.1\r\nHost: a\r\n{many}\r\n").as_bytes(),
    )
    .await
    .assert_json_error(431);
    for bad in [
        &b"GET /\xff\xff HTTP/1.1\r\nHost: a\r\n\r\n"[..],
        b"GET /a\0b HTTP/1.1\r\nHost: a\r\n\r\n",
        b"POST /api/v1/auth/login HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\nhello",
        b"POST /api/v1/auth/login HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"GET / HTTP/1.1\r\nBad Header: x\r\n\r\n",
    ] {
        raw_request(&app, bad).await.assert_json_error(400);
    }
    raw_request(&app, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .await
        .assert_json_error(505);

    // On a kept-alive connection: two pipelined requests are both answered, in order; a bad
    // third one gets its JSON error too.
    let mut s = connect_from(app.addr, CLIENT).await.unwrap();
    s.write_all(
        b"GET /api/v1/system/health HTTP/1.1\r\nHost: a\r\n\r\nGET /nope HTTP/1.1\r\nHost: a\r\n\r\n",
    )
    .await
    .unwrap();
    let mut chunk = Vec::new();
    let first = read_response_keep(&mut s, &mut chunk).await;
    assert_eq!(first.0, 200, "{}", first.1);
    let second = read_response_keep(&mut s, &mut chunk).await;
    assert_eq!(second.0, 404);
    assert_eq!(
        serde_json::from_slice::<Value>(&second.2).unwrap()["status_code"],
        404
    );
    s.write_all(b"GET /\x01 HTTP/1.1\r\n\r\n").await.unwrap();
    let third = read_response_keep(&mut s, &mut chunk).await;
    assert_eq!(third.0, 400);
    assert_eq!(
        serde_json::from_slice::<Value>(&third.2).unwrap()["status_code"],
        400
    );
}

/// Reads one response from a connection that stays open.
async fn read_response_keep(s: &mut TcpStream, carry: &mut Vec<u8>) -> (u16, String, Vec<u8>) {
    read_one(s, carry, Duration::from_secs(10))
        .await
        .expect("a response in time")
}

/// Opens `n` connections from `from`, each sending a request line and then one header byte
/// every `every`, for `for_how_long`; returns how many were answered with each status.
fn slowloris(
    addr: SocketAddr,
    from: Vec<String>,
    per_address: usize,
    every: Duration,
    for_how_long: Duration,
) -> tokio::task::JoinHandle<Vec<u16>> {
    tokio::spawn(async move {
        let mut tasks = Vec::new();
        for ip in &from {
            for _ in 0..per_address {
                let ip = ip.clone();
                tasks.push(tokio::spawn(async move {
                    let Ok(mut s) = connect_from(addr, &ip).await else {
                        return 0u16;
                    };
                    let end = tokio::time::Instant::now() + for_how_long;
                    if s.write_all(b"GET /api/v1/system/health HTTP/1.1\r\nX-Slow: ")
                        .await
                        .is_err()
                    {
                        return 0;
                    }
                    let mut buf = [0u8; 512];
                    while tokio::time::Instant::now() < end {
                        tokio::select! {
                            r = s.read(&mut buf) => {
                                // Answered (a refusal or a timeout) or closed: report the status.
                                return match r {
                                    Ok(n) if n > 12 => String::from_utf8_lossy(&buf[9..12]).parse().unwrap_or(1),
                                    _ => 1,
                                };
                            }
                            _ = tokio::time::sleep(every) => {
                                if s.write_all(b"a").await.is_err() {
                                    return 1;
                                }
                            }
                        }
                    }
                    0
                }));
            }
        }
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap_or(0));
        }
        out
    })
}

/// Runs a slowloris from `hosts` (`per_address` connections each, a header byte every 3 s, for
/// 8 s) and meanwhile times the well-behaved client five times; returns the attackers' answers.
async fn under_slowloris(app: &TestApp, hosts: Vec<String>, per_address: usize) -> Vec<u16> {
    let attack = slowloris(
        app.addr,
        hosts,
        per_address,
        Duration::from_secs(3),
        Duration::from_secs(8),
    );
    tokio::time::sleep(Duration::from_millis(2000)).await;
    for _ in 0..5 {
        let took = timed_health(app).await;
        assert!(
            took < Duration::from_secs(1),
            "the normal client waited {took:?}"
        );
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    attack.await.unwrap()
}

#[tokio::test]
async fn slow_headers_from_one_host_do_not_keep_another_out() {
    let app = TestApp::start().await;
    let statuses = under_slowloris(&app, vec!["127.0.0.1".into()], 400).await;
    // One address holds at most 32 connections: the rest were refused at once (429 JSON, or
    // closed when more refusals than the server answers at a time came in).
    let refused = statuses.iter().filter(|s| **s == 429 || **s == 1).count();
    assert!(refused >= 400 - 32, "only {refused} refused: {statuses:?}");
    assert!(statuses.contains(&429), "{statuses:?}");
}

#[tokio::test]
async fn slow_headers_from_many_hosts_give_way_to_a_new_client() {
    let app = TestApp::start().await;
    // 300 connections from 30 addresses (within the per-address cap, over the global 256).
    let hosts: Vec<String> = (1..=30).map(|i| format!("127.0.2.{i}")).collect();
    let statuses = under_slowloris(&app, hosts, 10).await;
    // The oldest slow heads were shed to make room (503 with JSON, or closed).
    let shed = statuses.iter().filter(|s| **s == 503 || **s == 1).count();
    assert!(shed >= 300 - 256, "{statuses:?}");
}

#[tokio::test]
async fn headers_that_never_finish_get_408_and_idle_connections_close() {
    let app = TestApp::start_with(|c| {
        c.http.header_timeout_secs = 1;
        c.http.keep_alive_timeout_secs = 1;
    })
    .await;
    let mut s = connect_from(app.addr, CLIENT).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n").await.unwrap();
    let t = Instant::now();
    let r = read_response(&mut s, Duration::from_secs(5)).await.unwrap();
    r.assert_json_error(408);
    assert!(r.closed);
    assert!(t.elapsed() < Duration::from_secs(4));
    // An idle keep-alive connection is closed without a word after its timeout.
    let mut s = connect_from(app.addr, CLIENT).await.unwrap();
    s.write_all(b"GET /api/v1/system/health HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .unwrap();
    let mut carry = Vec::new();
    assert_eq!(read_response_keep(&mut s, &mut carry).await.0, 200);
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
        .await
        .expect("closed in time")
        .unwrap_or(0);
    assert_eq!(n, 0, "no stray answer on an idle connection");
}

/// Sends a request head and then `body_len` bytes of body one byte every `every`, until the
/// server answers; returns the answer and how long it took.
async fn slow_body(
    addr: SocketAddr,
    from: &str,
    head: String,
    every: Duration,
) -> (Option<Raw>, Duration) {
    let mut s = connect_from(addr, from).await.unwrap();
    s.write_all(head.as_bytes()).await.unwrap();
    let t = Instant::now();
    let end = tokio::time::Instant::now() + Duration::from_secs(20);
    let mut peek = [0u8; 1];
    loop {
        tokio::select! {
            r = s.peek(&mut peek) => {
                if matches!(r, Ok(n) if n > 0) {
                    let raw = read_response(&mut s, Duration::from_secs(5)).await;
                    return (raw, t.elapsed());
                }
                return (None, t.elapsed());
            }
            _ = tokio::time::sleep(every) => {
                if tokio::time::Instant::now() > end || s.write_all(b"{").await.is_err() {
                    return (None, t.elapsed());
                }
            }
        }
    }
}

#[tokio::test]
async fn slow_bodies_get_408_and_lock_nobody_out() {
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    // A login body larger than a login needs is refused before it is read.
    let big = "POST /api/v1/auth/login HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n";
    let r = raw_request(&app, big.as_bytes()).await;
    r.assert_json_error(413);
    assert!(r.closed);
    // 40 logins from 8 hosts, with a 2,000-byte body sent one byte every 3 s.
    let mut attackers = Vec::new();
    for i in 0..40 {
        let addr = app.addr;
        attackers.push(tokio::spawn(async move {
            let head = "POST /api/v1/auth/login HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nContent-Length: 2000\r\n\r\n".to_string();
            slow_body(addr, &format!("127.0.3.{}", i % 8 + 1), head, Duration::from_secs(3)).await
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let client = reqwest::Client::builder()
        .local_address(CLIENT.parse::<IpAddr>().unwrap())
        .build()
        .unwrap();
    let t = Instant::now();
    let r = client
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({"username": "admin", "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
    for a in attackers {
        let (raw, took) = a.await.unwrap();
        let raw = raw.expect("the slow login was answered");
        raw.assert_json_error(408);
        assert!(raw.closed, "the connection closes after the 408");
        // Below the minimum rate, a body is refused when its grace ends, well inside the 5 s a
        // login body may take at most.
        assert!(took < Duration::from_secs(8), "{took:?}");
    }
    // A route behind credentials allows more time, and refuses a trickle all the same.
    let head = format!(
        "POST /api/v1/cameras HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer {admin}\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n\r\n"
    );
    let (raw, _) = slow_body(app.addr, CLIENT, head, Duration::from_millis(500)).await;
    raw.expect("answered").assert_json_error(408);
    let (_, cams) = app.get("/api/v1/cameras", &admin).await;
    assert_eq!(
        cams,
        json!([]),
        "no camera was created by the trickled body"
    );
}

/// The session cookie of a fresh admin login, and the JWT in it.
async fn admin_cookie(app: &TestApp) -> (String, String) {
    let jwt = app.admin_token().await;
    let (s, v) = app.login("admin", ADMIN_PASSWORD).await;
    assert_eq!(s, StatusCode::OK);
    let token = v["access_token"].as_str().unwrap().to_string();
    (format!("access_token={token}"), jwt)
}

/// Creates an API key with the given headers (the credential under test).
async fn post_key(app: &TestApp, headers: &[(&str, String)]) -> (StatusCode, Value) {
    let body = json!({"name": "from a page", "scopes": ["read:events"]});
    send(
        app,
        reqwest::Method::POST,
        "/api/v1/api-keys",
        headers,
        Some(body),
    )
    .await
}

async fn send(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    headers: &[(&str, String)],
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut rb = app.client.request(method, app.url(path));
    for (k, v) in headers {
        rb = rb.header(*k, v);
    }
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    let r = rb.send().await.unwrap();
    let s = r.status();
    (s, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn cookie_requests_from_other_origins_change_nothing() {
    let app = TestApp::start().await;
    let (cookie, jwt) = admin_cookie(&app).await;
    let cam = app.camera(&jwt, "Porch").await;
    let before = app.get(&format!("/api/v1/cameras/{cam}"), &jwt).await.1;
    let own = format!("http://{}", app.addr);
    let keys = |v: &Value| v["items"].as_array().map(|a| a.len()).unwrap_or(usize::MAX);
    let keys_before = keys(&app.get("/api/v1/api-keys", &jwt).await.1);

    for origin in ["http://127.0.0.1:9999", "http://evil.example", "null"] {
        let h = [("cookie", cookie.clone()), ("origin", origin.to_string())];
        let (s, v) = send(
            &app,
            reqwest::Method::POST,
            &format!("/api/v1/cameras/{cam}/stop"),
            &h,
            None,
        )
        .await;
        assert_error(s, &v, 403, "Cross-site request refused");
        let (s, v) = post_key(&app, &h).await;
        assert_error(s, &v, 403, "Cross-site request refused");
        let (s, v) = send(
            &app,
            reqwest::Method::DELETE,
            &format!("/api/v1/cameras/{cam}"),
            &h,
            None,
        )
        .await;
        assert_error(s, &v, 403, "Cross-site request refused");
        // Reading is not a change: a foreign page cannot read the answer anyway.
        let (s, _) = send(&app, reqwest::Method::GET, "/api/v1/cameras", &h, None).await;
        assert_eq!(s, StatusCode::OK);
    }
    // Neither Origin nor Referer: refused too.
    let (s, v) = post_key(&app, &[("cookie", cookie.clone())]).await;
    assert_error(s, &v, 403, "no Origin or Referer");
    // A foreign Referer is no better.
    let (s, _) = post_key(
        &app,
        &[
            ("cookie", cookie.clone()),
            ("referer", "http://evil.example/x".into()),
        ],
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // Nothing changed.
    assert_eq!(
        app.get(&format!("/api/v1/cameras/{cam}"), &jwt).await.1["is_enabled"],
        before["is_enabled"]
    );
    assert_eq!(
        keys(&app.get("/api/v1/api-keys", &jwt).await.1),
        keys_before
    );

    // The appliance's own pages: by Origin, or by Referer when a browser sends no Origin.
    let (s, v) = post_key(&app, &[("cookie", cookie.clone()), ("origin", own.clone())]).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, _) = post_key(
        &app,
        &[
            ("cookie", cookie.clone()),
            ("referer", format!("{own}/settings")),
        ],
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    // Explicit credentials are not affected by the Origin.
    let (s, _) = post_key(
        &app,
        &[
            ("authorization", format!("Bearer {jwt}")),
            ("origin", "http://evil.example".into()),
        ],
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    let (_, key) = app.api_key(&jwt, &["admin"], None).await;
    let (s, _) = send(
        &app,
        reqwest::Method::POST,
        &format!("/api/v1/cameras/{cam}/stop"),
        &[("x-api-key", key), ("origin", "http://evil.example".into())],
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test]
async fn behind_a_reverse_proxy_the_public_url_is_the_appliance() {
    let app =
        TestApp::start_with(|c| c.http.public_url = Some("https://cams.example.org".into())).await;
    let (cookie, _) = admin_cookie(&app).await;
    let (s, v) = post_key(
        &app,
        &[
            ("cookie", cookie.clone()),
            ("origin", "https://cams.example.org".into()),
        ],
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, _) = post_key(
        &app,
        &[
            ("cookie", cookie),
            ("origin", "https://other.example.org".into()),
        ],
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}

async fn ws_status(app: &TestApp, query: &str, headers: &[(&str, String)]) -> u16 {
    let mut req = format!("ws://{}/ws{query}", app.addr)
        .into_client_request()
        .unwrap();
    for (k, v) in headers {
        let name: tokio_tungstenite::tungstenite::http::HeaderName = k.parse().unwrap();
        req.headers_mut().insert(name, v.parse().unwrap());
    }
    match tokio_tungstenite::connect_async(req).await {
        Ok((_ws, resp)) => resp.status().as_u16(),
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => resp.status().as_u16(),
        Err(e) => panic!("{e}"),
    }
}

#[tokio::test]
async fn websocket_origin_follows_the_credential_that_was_used() {
    let app = TestApp::start().await;
    let (cookie, jwt) = admin_cookie(&app).await;
    let evil = ("origin", "http://evil.example".to_string());
    // The cookie with a foreign Origin: refused, whatever the URL carries.
    assert_eq!(
        ws_status(&app, "", &[("cookie", cookie.clone()), evil.clone()]).await,
        403
    );
    // A present but invalid token is a 401, not a fall-back to the cookie.
    assert_eq!(
        ws_status(
            &app,
            "?token=x",
            &[("cookie", cookie.clone()), evil.clone()]
        )
        .await,
        401
    );
    assert_eq!(
        ws_status(&app, "?token=", &[("cookie", cookie.clone()), evil.clone()]).await,
        401
    );
    // A valid explicit token authenticates on its own, from any page.
    assert_eq!(
        ws_status(
            &app,
            &format!("?token={jwt}"),
            &[("cookie", cookie.clone()), evil.clone()]
        )
        .await,
        101
    );
    // The cookie from the appliance's own page.
    let own = ("origin", format!("http://{}", app.addr));
    assert_eq!(
        ws_status(&app, "", &[("cookie", cookie.clone()), own]).await,
        101
    );
}

#[tokio::test]
async fn a_websocket_survives_the_connection_handoff() {
    use futures_util::{SinkExt, StreamExt};
    let app = TestApp::start().await;
    let jwt = app.admin_token().await;
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/ws?token={jwt}", app.addr))
        .await
        .unwrap();
    ws.send(tokio_tungstenite::tungstenite::Message::text("ping"))
        .await
        .unwrap();
    let pong = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if let Some(Ok(tokio_tungstenite::tungstenite::Message::Text(t))) = ws.next().await {
                return t.to_string();
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(pong, "pong");
}

#[tokio::test]
async fn clients_that_stop_reading_give_way_when_the_server_is_full() {
    let app = TestApp::start_with(|c| c.http.max_connections = 4).await;
    // Four clients ask for the API document 40 times over (pipelined, megabytes of answers)
    // and never read (small receive buffers: the answers cannot just sit in the kernel).
    let mut held = Vec::new();
    for i in 1..=4 {
        let s = TcpSocket::new_v4().unwrap();
        s.set_recv_buffer_size(4096).unwrap();
        s.bind(format!("127.0.4.{i}:0").parse().unwrap()).unwrap();
        let mut c = s.connect(app.addr).await.unwrap();
        c.write_all(&b"GET /openapi.json HTTP/1.1\r\nHost: a\r\n\r\n".repeat(40))
            .await
            .unwrap();
        held.push(c);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let took = timed_health(&app).await;
    assert!(took < Duration::from_secs(1), "{took:?}");
    drop(held);
}

#[tokio::test]
async fn a_websocket_client_sending_a_huge_message_is_disconnected() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let app = TestApp::start().await;
    let jwt = app.admin_token().await;
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/ws?token={jwt}", app.addr))
        .await
        .unwrap();
    let _ = ws.send(Message::binary(vec![0u8; 1 << 20])).await;
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match ws.next().await {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the server kept a client that sent 1 MiB");
    assert!(timed_health(&app).await < Duration::from_secs(1));
}
