//! Every class of bad input gets a JSON error with the right 4xx status.

use crate::support::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

async fn raw(
    app: &TestApp,
    method: &str,
    path: &str,
    auth: &str,
    ctype: Option<&str>,
    body: Vec<u8>,
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let mut rb = app
        .client
        .request(method.parse().unwrap(), app.url(path))
        .bearer_auth(auth)
        .body(body);
    if let Some(c) = ctype {
        rb = rb.header("content-type", c);
    }
    let r = rb.send().await.unwrap();
    let s = r.status();
    let h = r.headers().clone();
    let ct = h
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string());
    let v: Value = r.json().await.unwrap_or(Value::Null);
    assert_eq!(
        ct.as_deref(),
        Some("application/json"),
        "{method} {path}: {v}"
    );
    (s, h, v)
}

#[tokio::test]
async fn bad_input_classes() {
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    let j = Some("application/json");

    let (s, _, v) = raw(&app, "GET", "/api/v1/nothing-here", &admin, None, vec![]).await;
    assert_error(s, &v, 404, "No route");
    let (s, _, v) = raw(&app, "GET", "/elsewhere", &admin, None, vec![]).await;
    assert_error(s, &v, 404, "No route");
    let (s, h, v) = raw(&app, "DELETE", "/api/v1/cameras", &admin, None, vec![]).await;
    assert_error(s, &v, 405, "not allowed");
    assert_eq!(h["allow"], "GET, POST, HEAD");

    let big = format!(
        "{{\"name\": \"{}\", \"type\": \"rtsp\"}}",
        "x".repeat(2 << 20)
    );
    let (s, _, v) = raw(&app, "POST", "/api/v1/cameras", &admin, j, big.into_bytes()).await;
    assert_error(s, &v, 413, "larger than");

    let (s, _, v) = raw(
        &app,
        "POST",
        "/api/v1/cameras",
        &admin,
        Some("text/plain"),
        b"{}".to_vec(),
    )
    .await;
    assert_error(s, &v, 415, "application/json");
    let (s, _, v) = raw(
        &app,
        "POST",
        "/api/v1/cameras",
        &admin,
        None,
        b"{}".to_vec(),
    )
    .await;
    assert_error(s, &v, 415, "application/json");

    let (s, _, v) = raw(
        &app,
        "POST",
        "/api/v1/cameras",
        &admin,
        j,
        b"{\"name\": ".to_vec(),
    )
    .await;
    assert_error(s, &v, 422, "malformed JSON");
    let (s, _, v) = raw(&app, "POST", "/api/v1/cameras", &admin, j, vec![]).await;
    assert_error(s, &v, 422, "body");
    let (s, _, v) = raw(
        &app,
        "POST",
        "/api/v1/cameras",
        &admin,
        j,
        b"[1,2]".to_vec(),
    )
    .await;
    assert_error(s, &v, 422, "body");
    let (s, _, v) = raw(
        &app,
        "POST",
        "/api/v1/cameras",
        &admin,
        j,
        br#"{"type": "rtsp"}"#.to_vec(),
    )
    .await;
    assert_error(s, &v, 422, "name");
    let (s, _, v) = raw(
        &app,
        "POST",
        "/api/v1/cameras",
        &admin,
        j,
        br#"{"name": "a", "type": "webcam"}"#.to_vec(),
    )
    .await;
    assert_error(s, &v, 422, "type");
    let (s, _, v) = raw(
        &app,
        "POST",
        "/api/v1/cameras",
        &admin,
        j,
        br#"{"name": "a", "type": "usb", "frame_rate": "fast"}"#.to_vec(),
    )
    .await;
    assert_error(s, &v, 422, "frame_rate");
    let (s, _, v) = raw(
        &app,
        "POST",
        "/api/v1/cameras",
        &admin,
        j,
        br#"{"name": "a", "type": "usb", "device_index": 0, "colour": 1}"#.to_vec(),
    )
    .await;
    assert_error(s, &v, 422, "colour");
    // Bad query parameters and unknown ids, each a JSON 4xx naming what is wrong.
    for (path, code, needle) in [
        ("/api/v1/events?limit=0", 422, "limit"),
        ("/api/v1/events?page=x", 422, "page"),
        ("/api/v1/events?start_date=yesterday", 422, "start_date"),
        ("/api/v1/events?min_confidence=101", 422, "min_confidence"),
        (
            "/api/v1/events?start_date=2025-02-01&end_date=2025-01-01",
            422,
            "end_date",
        ),
        (
            "/api/v1/events/00000000-0000-4000-8000-000000000000",
            404,
            "Event not found",
        ),
    ] {
        let (s, _, v) = raw(&app, "GET", path, &admin, None, vec![]).await;
        assert_error(s, &v, code, needle);
    }
    let (s, _, v) = raw(
        &app,
        "GET",
        "/api/v1/events/../../etc/passwd",
        &admin,
        None,
        vec![],
    )
    .await;
    assert_eq!(s.as_u16() / 100, 4, "{v}");
}

#[tokio::test]
async fn missing_fields_are_named_and_scopes_apply() {
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    let (s, v) = app
        .post("/api/v1/protect/controllers", &admin, json!({"name": "x"}))
        .await;
    assert_error(s, &v, 422, "host");
    // And scopes still apply.
    let (_, key) = app.api_key(&admin, &["read:events"], None).await;
    let (s, v) = app.get("/api/v1/ai/usage", &key).await;
    assert_error(s, &v, 403, "admin");
}
