//! Serving an event's clip over HTTP, against the real pipeline (demo file camera, real
//! detector, the recorder): whole file with `Accept-Ranges`; single, middle, open-ended and
//! suffix ranges byte-exact; unsatisfiable and malformed ranges as 416 JSON with
//! `Content-Range: bytes */LEN`; several ranges as the whole file; `If-Range`,
//! `If-None-Match`, HEAD; the event's `has_clip` in `event.updated`; a signed media link opens
//! the clip too; an event without a clip is a 404.

use crate::clips::{demo_camera, event_with_clip, with_short_clips};
use crate::support::*;
use reqwest::header::HeaderMap;
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

struct Got {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Got {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap())
            .unwrap_or("")
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

async fn fetch(
    app: &TestApp,
    auth: &str,
    method: reqwest::Method,
    url: &str,
    headers: &[(&str, &str)],
) -> Got {
    let mut rb = app.client.request(method, app.url(url)).bearer_auth(auth);
    for (k, v) in headers {
        rb = rb.header(*k, *v);
    }
    let r = rb.send().await.unwrap();
    Got {
        status: r.status(),
        headers: r.headers().clone(),
        body: r.bytes().await.unwrap().to_vec(),
    }
}

async fn get(app: &TestApp, auth: &str, url: &str, headers: &[(&str, &str)]) -> Got {
    fetch(app, auth, reqwest::Method::GET, url, headers).await
}

#[track_caller]
fn unsatisfiable(g: &Got, len: usize) {
    assert_eq!(g.status, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(g.header("content-range"), format!("bytes */{len}"));
    assert_eq!(g.header("content-type"), "application/json");
    let v = g.json();
    assert_eq!(v["status_code"], json!(416), "{v}");
    assert!(v["detail"].as_str().unwrap().contains("Range"), "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clip_is_served_with_byte_ranges() {
    let app = TestApp::start_with(with_short_clips).await;
    let admin = app.admin_token().await;
    // The event's clip completes after it: `event.updated` says so.
    let (mut ws, _) = tokio_tungstenite::connect_async(
        format!("ws://{}/ws?token={admin}", app.addr)
            .into_client_request()
            .unwrap(),
    )
    .await
    .unwrap();
    // A rule that notifies: its notification carries a signed link to the event's media.
    let (s, v) = app
        .post(
            "/api/v1/alert-rules",
            &admin,
            json!({"name": "People", "conditions": {"object_types": ["person"]},
                   "actions": {"dashboard_notification": true}}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    demo_camera(&app, &admin, json!({})).await;
    let e = event_with_clip(&app, &admin, 1, 60).await;
    let id = e["id"].as_str().unwrap();
    let m = next_matching(&mut ws, 10, |m| {
        m["type"] == json!("event.updated")
            && m["data"]["id"] == json!(id)
            && m["data"]["has_clip"] == json!(true)
    })
    .await;
    assert_eq!(
        m["data"]["clip_url"],
        json!(format!("/api/v1/events/{id}/clip"))
    );
    assert!(
        m["data"]["clip_duration_seconds"].as_f64().unwrap() > 1.0,
        "{m}"
    );
    let url = e["clip_url"].as_str().unwrap().to_string();

    let whole = get(&app, &admin, &url, &[]).await;
    assert_eq!(whole.status, StatusCode::OK);
    assert_eq!(whole.header("content-type"), "video/mp4");
    assert_eq!(whole.header("accept-ranges"), "bytes");
    assert_eq!(whole.header("cache-control"), "private, no-cache");
    let etag = whole.header("etag").to_string();
    assert!(
        etag.starts_with('"') && etag.ends_with('"'),
        "strong: {etag}"
    );
    let file = whole.body.clone();
    let len = file.len();
    assert!(len > 10_000, "{len} bytes");
    assert_eq!(whole.header("content-length"), len.to_string());
    assert_eq!(&file[4..8], b"ftyp");

    // The start, as a browser's first request for a <video> asks.
    let g = get(&app, &admin, &url, &[("range", "bytes=0-99")]).await;
    assert_eq!(g.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(g.body, &file[..100]);
    assert_eq!(g.header("content-range"), format!("bytes 0-99/{len}"));
    assert_eq!(g.header("content-length"), "100");
    assert_eq!(g.header("accept-ranges"), "bytes");
    assert_eq!(g.header("etag"), etag);
    // The middle, spanning several read chunks.
    let (a, b) = (len / 3, len / 3 + 150_000.min(len / 2));
    let g = get(&app, &admin, &url, &[("range", &format!("bytes={a}-{b}"))]).await;
    assert_eq!(g.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(g.body, &file[a..=b]);
    assert_eq!(g.header("content-range"), format!("bytes {a}-{b}/{len}"));
    // Open-ended, an end past the file, and a suffix.
    let g = get(
        &app,
        &admin,
        &url,
        &[("range", &format!("bytes={}-", len - 10))],
    )
    .await;
    assert_eq!(
        (g.status, g.body.as_slice()),
        (StatusCode::PARTIAL_CONTENT, &file[len - 10..])
    );
    let g = get(
        &app,
        &admin,
        &url,
        &[("range", &format!("bytes={}-{}", len - 5, len + 1000))],
    )
    .await;
    assert_eq!(
        g.header("content-range"),
        format!("bytes {}-{}/{len}", len - 5, len - 1)
    );
    assert_eq!(g.body, &file[len - 5..]);
    let g = get(&app, &admin, &url, &[("range", "bytes=-500")]).await;
    assert_eq!(g.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(g.body, &file[len - 500..]);
    assert_eq!(
        g.header("content-range"),
        format!("bytes {}-{}/{len}", len - 500, len - 1)
    );
    // Nothing to give, or nonsense: 416 JSON naming the length.
    for r in ["bytes=-0", "bytes=999999999-", "bytes=abc", "bytes=20-10"] {
        unsatisfiable(&get(&app, &admin, &url, &[("range", r)]).await, len);
    }
    // Several ranges: the whole file.
    let g = get(&app, &admin, &url, &[("range", "bytes=0-9,20-29")]).await;
    assert_eq!((g.status, g.body.len()), (StatusCode::OK, len));
    // If-Range: the current ETag keeps the range, another one gets the whole file.
    let g = get(
        &app,
        &admin,
        &url,
        &[("range", "bytes=0-9"), ("if-range", &etag)],
    )
    .await;
    assert_eq!(
        (g.status, g.body.as_slice()),
        (StatusCode::PARTIAL_CONTENT, &file[..10])
    );
    let g = get(
        &app,
        &admin,
        &url,
        &[("range", "bytes=0-9"), ("if-range", "\"older\"")],
    )
    .await;
    assert_eq!((g.status, g.body.len()), (StatusCode::OK, len));
    // If-None-Match: 304 without a body.
    let g = get(&app, &admin, &url, &[("if-none-match", &etag)]).await;
    assert_eq!(g.status, StatusCode::NOT_MODIFIED);
    assert!(g.body.is_empty());
    assert_eq!(g.header("etag"), etag);
    // HEAD: the headers of the GET, no body.
    let g = fetch(&app, &admin, reqwest::Method::HEAD, &url, &[]).await;
    assert_eq!(g.status, StatusCode::OK);
    assert_eq!(g.header("content-length"), len.to_string());
    assert_eq!(g.header("accept-ranges"), "bytes");
    assert!(g.body.is_empty());
    let g = fetch(
        &app,
        &admin,
        reqwest::Method::HEAD,
        &url,
        &[("range", "bytes=-500")],
    )
    .await;
    assert_eq!(g.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(g.header("content-length"), "500");
    assert!(g.body.is_empty());

    // A signed media link of the event opens its clip without a credential.
    let (_, list) = app.get("/api/v1/notifications", &admin).await;
    let n = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["event_id"] == json!(id))
        .unwrap_or_else(|| panic!("a notification for the event: {list}"));
    let thumb = n["thumbnail_url"].as_str().unwrap();
    let signed = thumb.replace("/thumbnail?", "/clip?");
    assert!(signed.contains("/clip?exp="), "{signed}");
    let plain = reqwest::Client::new();
    let link = if signed.starts_with("http") {
        signed.clone()
    } else {
        app.url(&signed)
    };
    let r = plain
        .get(&link)
        .header("range", "bytes=0-99")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(r.bytes().await.unwrap().as_ref(), &file[..100]);
    let tampered = link.replace("sig=", "sig=A");
    let r = plain.get(&tampered).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = plain.get(app.url(&url)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    // An event without a clip.
    let cam = app.camera(&admin, "Door").await;
    let other = app
        .event(&admin, json!({"camera_id": cam, "detection_type": "ring"}))
        .await;
    assert_eq!(other["has_clip"], json!(false));
    assert_eq!(other["clip_url"], Value::Null);
    let (s, v) = app
        .get(
            &format!("/api/v1/events/{}/clip", other["id"].as_str().unwrap()),
            &admin,
        )
        .await;
    assert_error(s, &v, 404, "no clip");
}
