//! Live video against the real server and a file camera replaying the demo clip: the WebSocket
//! delivers a `stream` message, an init segment and fragments that ffprobe and ffmpeg read as the
//! camera's 640x360 H.264 (first sample a key frame, decode times from 0); the viewer limit
//! refuses the next viewer with 503 JSON before upgrading and frees a place when a viewer
//! leaves; the MJPEG fallback sends decodable JPEG parts at the analysis rate; and both are
//! authenticated as `/ws` is.

use crate::support::*;
use futures_util::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

fn demo() -> String {
    format!(
        "{}/assets/demo/person-walk.h264",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// A file camera replaying the demo clip, once it streams.
async fn streaming_camera(app: &TestApp, admin: &str) -> String {
    let (s, cam) = app
        .post(
            "/api/v1/cameras",
            admin,
            json!({"name": "Live", "type": "file", "file_path": demo(), "frame_rate": 5,
                   "object_filter": ["motion"]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{cam}");
    let id = cam["id"].as_str().unwrap().to_string();
    app.wait_camera_status(admin, &id, "streaming", 20).await;
    id
}

/// Opens the live WebSocket; the refusal's status and JSON body otherwise.
async fn connect(
    app: &TestApp,
    camera: &str,
    query: &str,
    headers: &[(&str, &str)],
) -> Result<Ws, (u16, Value)> {
    let mut req = format!("ws://{}/api/v1/cameras/{camera}/live{query}", app.addr)
        .into_client_request()
        .unwrap();
    for (k, v) in headers {
        let name: tokio_tungstenite::tungstenite::http::HeaderName = k.parse().unwrap();
        req.headers_mut().insert(name, v.parse().unwrap());
    }
    match tokio_tungstenite::connect_async(req).await {
        Ok((ws, _)) => Ok(ws),
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            let body = resp
                .body()
                .as_deref()
                .map(|b| serde_json::from_slice(b).unwrap_or(Value::Null))
                .unwrap_or(Value::Null);
            Err((resp.status().as_u16(), body))
        }
        Err(e) => panic!("{e}"),
    }
}

/// The next data message (text or binary), skipping control frames.
async fn next_data(ws: &mut Ws, secs: u64) -> Message {
    loop {
        match tokio::time::timeout(Duration::from_secs(secs), ws.next()).await {
            Ok(Some(Ok(m @ (Message::Text(_) | Message::Binary(_))))) => return m,
            Ok(Some(Ok(Message::Close(c)))) => panic!("closed: {c:?}"),
            Ok(Some(Ok(_))) => continue,
            other => panic!("no message within {secs} s: {other:?}"),
        }
    }
}

/// The children of an ISO BMFF box body: (type, body).
fn boxes(mut b: &[u8]) -> Vec<([u8; 4], &[u8])> {
    let mut out = Vec::new();
    while b.len() >= 8 {
        let size = u32::from_be_bytes(b[..4].try_into().unwrap()) as usize;
        assert!(
            size >= 8 && size <= b.len(),
            "box size {size} of {}",
            b.len()
        );
        out.push((b[4..8].try_into().unwrap(), &b[8..size]));
        b = &b[size..];
    }
    assert!(b.is_empty(), "trailing bytes");
    out
}

fn child<'a>(b: &'a [u8], kind: &[u8; 4]) -> &'a [u8] {
    boxes(b)
        .into_iter()
        .find(|(k, _)| k == kind)
        .unwrap_or_else(|| panic!("no {}", String::from_utf8_lossy(kind)))
        .1
}

/// What one fragment says: its base decode time, sample count, first sample's flags, and the
/// NAL unit types in its mdat.
fn fragment(f: &[u8]) -> (u64, u32, u32, Vec<u8>) {
    let top = boxes(f);
    assert_eq!(top.len(), 2, "moof + mdat");
    assert_eq!(&top[0].0, b"moof");
    assert_eq!(&top[1].0, b"mdat");
    let traf = child(top[0].1, b"traf");
    let tfdt = child(traf, b"tfdt");
    let decode = if tfdt[0] == 1 {
        u64::from_be_bytes(tfdt[4..12].try_into().unwrap())
    } else {
        u64::from(u32::from_be_bytes(tfdt[4..8].try_into().unwrap()))
    };
    let trun = child(traf, b"trun");
    let flags = u32::from_be_bytes(trun[..4].try_into().unwrap()) & 0xff_ffff;
    let count = u32::from_be_bytes(trun[4..8].try_into().unwrap());
    let mut at = 8;
    if flags & 0x1 != 0 {
        at += 4;
    }
    let first_flags = if flags & 0x4 != 0 {
        u32::from_be_bytes(trun[at..at + 4].try_into().unwrap())
    } else {
        // Per-sample: duration, size, then flags.
        let mut p = at;
        if flags & 0x100 != 0 {
            p += 4;
        }
        if flags & 0x200 != 0 {
            p += 4;
        }
        assert!(flags & 0x400 != 0, "sample flags are given");
        u32::from_be_bytes(trun[p..p + 4].try_into().unwrap())
    };
    let mut nals = Vec::new();
    let mut m = top[1].1;
    while m.len() >= 4 {
        let n = u32::from_be_bytes(m[..4].try_into().unwrap()) as usize;
        assert!(n >= 1 && 4 + n <= m.len(), "length-prefixed NAL units");
        nals.push(m[4] & 0x1f);
        m = &m[4 + n..];
    }
    assert!(m.is_empty());
    (decode, count, first_flags, nals)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_websocket_is_fragmented_mp4_that_ffmpeg_decodes() {
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    let cam = streaming_camera(&app, &admin).await;
    let (_, key) = app.api_key(&admin, &["read:cameras"], None).await;
    let mut ws = connect(&app, &cam, "", &[("x-api-key", &key)])
        .await
        .expect("upgraded");
    let Message::Text(t) = next_data(&mut ws, 10).await else {
        panic!("the stream message comes first");
    };
    let m: Value = serde_json::from_str(t.as_str()).unwrap();
    assert_eq!(m["type"], json!("stream"), "{m}");
    assert_eq!(
        (m["width"].clone(), m["height"].clone()),
        (json!(640), json!(360))
    );
    let codec = m["codec"].as_str().unwrap();
    assert!(codec.starts_with("avc1.") && codec.len() == 11, "{codec}");
    assert_eq!(m["mime"], json!(format!("video/mp4; codecs=\"{codec}\"")));
    let Message::Binary(init) = next_data(&mut ws, 10).await else {
        panic!("then the init segment");
    };
    let top = boxes(&init);
    assert_eq!(
        top.iter().map(|(k, _)| *k).collect::<Vec<_>>(),
        vec![*b"ftyp", *b"moov"]
    );
    let mut file = init.to_vec();
    let mut last_decode = None;
    for i in 0..45 {
        let Message::Binary(f) = next_data(&mut ws, 10).await else {
            panic!("fragments are binary");
        };
        let (decode, count, flags, nals) = fragment(&f);
        assert_eq!(count, 1, "one access unit per fragment");
        if i == 0 {
            assert_eq!(decode, 0, "the first fragment starts at decode time 0");
            assert_eq!(flags & 0x0001_0000, 0, "the first sample is a sync sample");
            assert!(
                nals.contains(&5),
                "the first sample is an IDR picture: {nals:?}"
            );
        } else {
            assert!(decode > last_decode.unwrap(), "decode times run on");
        }
        assert!(
            !nals.iter().any(|n| [7, 8, 9].contains(n)),
            "SPS, PPS and AUD live in avcC, not in samples: {nals:?}"
        );
        last_decode = Some(decode);
        file.extend_from_slice(&f);
    }
    // About 3 s of 15 fps video: decode times follow the camera's clock.
    let secs = last_decode.unwrap() as f64 / 90_000.0;
    assert!((2.0..4.5).contains(&secs), "{secs} s for 45 frames");
    ws.close(None).await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("live.mp4");
    std::fs::write(&path, &file).unwrap();
    let probe = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-print_format", "json", "-show_streams"])
        .arg(&path)
        .output()
        .expect("ffprobe");
    assert!(
        probe.status.success() && probe.stderr.is_empty(),
        "ffprobe: {}",
        String::from_utf8_lossy(&probe.stderr)
    );
    let v: Value = serde_json::from_slice(&probe.stdout).unwrap();
    let s = &v["streams"][0];
    assert_eq!(s["codec_name"], json!("h264"), "{v}");
    assert_eq!(
        (s["width"].clone(), s["height"].clone()),
        (json!(640), json!(360))
    );
    let out = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(&path)
        .args(["-f", "null", "-"])
        .output()
        .expect("ffmpeg");
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "ffmpeg: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_most_max_live_viewers_watch_a_camera() {
    let app = TestApp::start_with(|c| c.video.max_live_viewers = 2).await;
    let admin = app.admin_token().await;
    let cam = streaming_camera(&app, &admin).await;
    let auth = [("authorization", format!("Bearer {admin}"))];
    let auth: Vec<(&str, &str)> = auth.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut a = connect(&app, &cam, "", &auth).await.expect("first viewer");
    let mut b = connect(&app, &cam, &format!("?token={admin}"), &[])
        .await
        .expect("second viewer");
    for ws in [&mut a, &mut b] {
        assert!(matches!(next_data(ws, 10).await, Message::Text(_)));
    }
    let (status, body) = connect(&app, &cam, "", &auth).await.expect_err("refused");
    assert_error(
        StatusCode::from_u16(status).unwrap(),
        &body,
        503,
        "at most 2 live viewers per camera",
    );
    // MJPEG viewers count against the same limit.
    let r = app
        .client
        .get(app.url(&format!("/api/v1/cameras/{cam}/live.mjpeg")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let v: Value = r.json().await.unwrap();
    assert_error(StatusCode::SERVICE_UNAVAILABLE, &v, 503, "at most 2");
    // One leaves: its place is free again.
    a.close(None).await.unwrap();
    drop(a);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let mut c = loop {
        match connect(&app, &cam, "", &auth).await {
            Ok(ws) => break ws,
            Err((503, _)) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(e) => panic!("{e:?}"),
        }
    };
    assert!(matches!(next_data(&mut c, 10).await, Message::Text(_)));
    assert!(matches!(next_data(&mut c, 10).await, Message::Binary(_)));
    // A text ping gets a pong, between the fragments.
    c.send(Message::text("ping")).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        if let Message::Text(t) = next_data(&mut c, 5).await {
            assert_eq!(t.as_str(), "pong");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no pong");
    }
    // The server shutting down says goodbye (1001) and does not wait for the viewers.
    let t = std::time::Instant::now();
    let (_, close) = tokio::join!(app.stop(), async {
        loop {
            match tokio::time::timeout(Duration::from_secs(10), c.next()).await {
                Ok(Some(Ok(Message::Close(f)))) => break f,
                Ok(Some(Ok(_))) => continue,
                other => panic!("no close frame: {other:?}"),
            }
        }
    });
    assert_eq!(close.map(|f| u16::from(f.code)), Some(1001));
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_camera_closes_its_viewers_and_refuses_new_ones() {
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    let cam = streaming_camera(&app, &admin).await;
    let auth = format!("Bearer {admin}");
    let mut ws = connect(&app, &cam, "", &[("authorization", &auth)])
        .await
        .unwrap();
    assert!(matches!(next_data(&mut ws, 10).await, Message::Text(_)));
    let (s, v) = app
        .post(&format!("/api/v1/cameras/{cam}/stop"), &admin, json!({}))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let close = loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
            Ok(Some(Ok(Message::Close(c)))) => break c,
            Ok(Some(Ok(_))) => continue,
            other => panic!("no close frame: {other:?}"),
        }
    };
    let close = close.expect("a close code");
    assert_eq!(u16::from(close.code), 1001, "{close:?}");
    let (status, body) = connect(&app, &cam, "", &[("authorization", &auth)])
        .await
        .expect_err("refused");
    assert_error(
        StatusCode::from_u16(status).unwrap(),
        &body,
        503,
        "camera is not streaming H.264: stopped",
    );
    let unknown = "00000000-0000-4000-8000-000000000000";
    let (status, body) = connect(&app, unknown, "", &[("authorization", &auth)])
        .await
        .err()
        .unwrap();
    assert_error(StatusCode::from_u16(status).unwrap(), &body, 404, "Camera");
}

/// Reads multipart parts from a streamed response until `want` JPEGs arrived.
async fn mjpeg_parts(r: &mut reqwest::Response, want: usize, secs: u64) -> Vec<Vec<u8>> {
    let mut buf: Vec<u8> = Vec::new();
    let mut parts = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while parts.len() < want {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let chunk = tokio::time::timeout(left, r.chunk())
            .await
            .unwrap_or_else(|_| panic!("{} parts within {secs} s", parts.len()))
            .unwrap()
            .expect("the stream goes on");
        buf.extend_from_slice(&chunk);
        // Take every complete part in the buffer.
        while let Some(head_end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
            assert!(head.starts_with("--frame\r\n"), "{head}");
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("Content-Length: "))
                .expect("each part has its length")
                .trim()
                .parse()
                .unwrap();
            assert!(head.contains("Content-Type: image/jpeg"), "{head}");
            let start = head_end + 4;
            if buf.len() < start + len + 2 {
                break;
            }
            assert_eq!(&buf[start + len..start + len + 2], b"\r\n");
            parts.push(buf[start..start + len].to_vec());
            buf.drain(..start + len + 2);
        }
    }
    parts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_mjpeg_sends_a_jpeg_per_analysed_picture() {
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    let cam = streaming_camera(&app, &admin).await;
    let (_, key) = app.api_key(&admin, &["read:cameras"], None).await;
    let started = std::time::Instant::now();
    let mut r = app
        .client
        .get(app.url(&format!("/api/v1/cameras/{cam}/live.mjpeg")))
        .header("x-api-key", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.headers()["content-type"],
        "multipart/x-mixed-replace; boundary=frame"
    );
    let parts = mjpeg_parts(&mut r, 10, 10).await;
    let secs = started.elapsed().as_secs_f64();
    for p in &parts {
        let f = argus::video::jpeg::Frame420::from_jpeg(p).expect("a JPEG");
        assert_eq!((f.width, f.height), (640, 360));
    }
    // The camera analyses 5 pictures a second: about 2 s for 10 (not 0.4 s apart, nor every
    // one of the stream's 15).
    assert!(
        (1.2..6.0).contains(&secs),
        "10 parts in {secs:.2} s at frame_rate 5"
    );
    // A server shutting down ends the stream at once (it would wait 10 s for it otherwise).
    let t = std::time::Instant::now();
    let (_, end) = tokio::join!(app.stop(), async {
        loop {
            match r.chunk().await {
                Ok(Some(_)) => continue,
                other => break other.map(|_| ()),
            }
        }
    });
    assert!(end.is_ok(), "the stream ends cleanly: {end:?}");
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
}

#[tokio::test]
async fn live_video_is_authenticated_like_ws() {
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    let cam = app.camera(&admin, "Porch").await;
    let (status, body) = connect(&app, &cam, "", &[]).await.err().unwrap();
    assert_error(StatusCode::from_u16(status).unwrap(), &body, 401, "");
    let (status, body) = connect(&app, &cam, "?token=garbage", &[])
        .await
        .err()
        .unwrap();
    assert_error(StatusCode::from_u16(status).unwrap(), &body, 401, "");
    let (_, events_only) = app.api_key(&admin, &["read:events"], None).await;
    let (status, body) = connect(&app, &cam, "", &[("x-api-key", &events_only)])
        .await
        .err()
        .unwrap();
    assert_error(
        StatusCode::from_u16(status).unwrap(),
        &body,
        403,
        "read:cameras",
    );
    // A cookie from another site's page is refused; from the appliance's own, it passes the
    // authentication (and the camera, pointing at a closed port, is not streaming).
    let cookie = format!("access_token={admin}");
    let evil = [
        ("cookie", cookie.as_str()),
        ("origin", "http://evil.example"),
    ];
    let (status, _) = connect(&app, &cam, "", &evil).await.err().unwrap();
    assert_eq!(status, 403);
    let own = format!("http://{}", app.addr);
    let ok = [("cookie", cookie.as_str()), ("origin", own.as_str())];
    let (status, body) = connect(&app, &cam, "", &ok).await.err().unwrap();
    assert_error(
        StatusCode::from_u16(status).unwrap(),
        &body,
        503,
        "camera is not streaming H.264",
    );
    // A plain GET is not an upgrade.
    let (s, v) = app
        .get(&format!("/api/v1/cameras/{cam}/live"), &admin)
        .await;
    assert_error(s, &v, 400, "WebSocket");
    // The MJPEG stream, as any GET.
    let path = format!("/api/v1/cameras/{cam}/live.mjpeg");
    let (s, _, v) = app.call(reqwest::Method::GET, &path, None, None).await;
    assert_error(s, &v, 401, "");
    let (s, v) = app.get(&path, &events_only).await;
    assert_error(s, &v, 403, "read:cameras");
    let (s, v) = app.get(&path, &admin).await;
    assert_error(s, &v, 503, "camera is not capturing");
}
