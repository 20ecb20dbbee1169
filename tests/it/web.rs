//! The web app as HTTP sees it (the browser tests are in `ui`): pages answer the embedded
//! `index.html` with its Content-Security-Policy, the app's files are gzip-compressed with
//! strong ETags and cached for good under their version, JSON clients keep the landing
//! document, and errors stay JSON. And `GET /cameras/{id}/snapshot`, the picture the live page
//! and the zone editor show: a capturing camera's latest frame, a clear 503 when there is none
//! (a Protect camera's comes from its console: `protect::a_protect_camera_snapshot_...`).

use crate::support::*;
use reqwest::header::{ACCEPT, ACCEPT_ENCODING, IF_NONE_MATCH};
use reqwest::StatusCode;
use serde_json::{json, Value};

async fn page(app: &TestApp, path: &str) -> (reqwest::header::HeaderMap, String) {
    let r = app
        .client
        .get(app.url(path))
        .header(ACCEPT, "text/html,application/xhtml+xml,*/*;q=0.8")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{path}");
    let h = r.headers().clone();
    (h, r.text().await.unwrap())
}

/// The `/app/<version>/app.mjs` URL in the page.
fn app_url(index: &str) -> String {
    let start = index.find("/app/").expect("the page loads the app");
    let end = start + index[start..].find('"').unwrap();
    let src = &index[start..end];
    let dir = &src[..src.rfind('/').unwrap()];
    format!("{dir}/app.mjs")
}

#[tokio::test]
async fn the_app_is_served_from_the_binary() {
    let app = TestApp::start().await;
    let (h, index) = page(&app, "/").await;
    assert!(h["content-type"].to_str().unwrap().starts_with("text/html"));
    let csp = h["content-security-policy"].to_str().unwrap();
    for want in [
        "default-src 'none'",
        "script-src 'self'",
        "connect-src 'self'",
        "media-src 'self' blob:",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(want), "{csp}");
    }
    assert!(!csp.contains("unsafe"), "no inline script or eval: {csp}");
    assert_eq!(h["cache-control"], "no-cache", "the page revalidates");
    assert!(h.contains_key("etag"));
    assert!(!index.contains("<script>"), "no inline script: {index}");
    // Every page of the app answers the same document; others stay JSON 404s.
    for path in [
        "/events",
        "/events/1234",
        "/cameras/new",
        "/settings",
        "/login",
    ] {
        let (_, body) = page(&app, path).await;
        assert_eq!(body, index, "{path}");
    }
    let r = app
        .client
        .get(app.url("/nothing-here"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["status_code"], json!(404));

    // API clients asking for JSON keep the landing document.
    let r = app
        .client
        .get(app.url("/"))
        .header(ACCEPT, "application/json")
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["api"], json!("/api/v1"));
    assert_eq!(v["name"], json!("Argus Edge"));

    // The app's files: compressed, strong ETag, cached for a year under their version.
    let js = app_url(&index);
    let r = app
        .client
        .get(app.url(&js))
        .header(ACCEPT_ENCODING, "gzip, br")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-encoding"], "gzip");
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/javascript"));
    assert!(r.headers()["cache-control"]
        .to_str()
        .unwrap()
        .contains("immutable"));
    let etag = r.headers()["etag"].clone();
    assert!(etag.to_str().unwrap().starts_with('"'), "a strong ETag");
    let gz = r.bytes().await.unwrap();
    assert_eq!(&gz[..2], &[0x1f, 0x8b]);
    let r = app
        .client
        .get(app.url(&js))
        .header(ACCEPT_ENCODING, "gzip")
        .header(IF_NONE_MATCH, etag.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
    assert!(r.bytes().await.unwrap().is_empty());
    // A client without gzip gets the plain text, the same ETag.
    let r = app
        .client
        .get(app.url(&js))
        .header(ACCEPT_ENCODING, "identity")
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("content-encoding").is_none());
    assert_eq!(r.headers()["etag"], etag);
    let text = r.text().await.unwrap();
    assert!(text.contains("import"), "{}", &text[..200.min(text.len())]);
    assert!(text.len() > gz.len());

    // Errors stay JSON: a missing file, a wrong method.
    let missing = format!("{}/nope.mjs", &js[..js.rfind('/').unwrap()]);
    let r = app.client.get(app.url(&missing)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["status_code"], json!(404));
    let r = app.client.post(app.url("/events")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.headers()["allow"], "GET, HEAD");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["status_code"], json!(405));
    app.stop().await;
}

#[tokio::test]
async fn a_camera_snapshot_is_its_latest_picture() {
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    let demo = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/demo/person-walk.h264");
    let (s, cam) = app
        .post(
            "/api/v1/cameras",
            &admin,
            json!({"name": "Door", "type": "file", "file_path": demo, "frame_rate": 5, "object_filter": ["motion"]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{cam}");
    let id = cam["id"].as_str().unwrap().to_string();
    app.wait_camera_status(&admin, &id, "streaming", 20).await;
    let snap = |auth: String| {
        let app = &app;
        let id = id.clone();
        async move {
            app.client
                .get(app.url(&format!("/api/v1/cameras/{id}/snapshot")))
                .bearer_auth(auth)
                .send()
                .await
                .unwrap()
        }
    };
    let r = snap(admin.clone()).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "image/jpeg");
    assert_eq!(r.headers()["cache-control"], "no-store");
    let age: u64 = r.headers()["x-frame-age-ms"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(age <= 1000, "at most about a second old: {age} ms");
    let jpeg = r.bytes().await.unwrap();
    let frame = argus::video::jpeg::Frame420::from_jpeg(&jpeg).unwrap();
    assert_eq!(
        (frame.width, frame.height),
        (640, 360),
        "the camera's own size"
    );
    // Two reads a moment apart see the stream move on.
    tokio::time::sleep(std::time::Duration::from_millis(900)).await;
    let later = snap(admin.clone()).await.bytes().await.unwrap();
    assert_ne!(later, jpeg, "a newer picture");

    // read:cameras is needed; a key with only read:events is refused.
    let (_, events_only) = app.api_key(&admin, &["read:events"], None).await;
    let r = app
        .client
        .get(app.url(&format!("/api/v1/cameras/{id}/snapshot")))
        .header("X-API-Key", &events_only)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let (_, viewer) = app.api_key(&admin, &["read:cameras"], None).await;
    let (s, _, _) = app
        .call(
            reqwest::Method::GET,
            &format!("/api/v1/cameras/{id}/snapshot"),
            Some(&viewer),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);

    // Stopped: no picture, and a clear reason.
    let (s, _) = app
        .post(&format!("/api/v1/cameras/{id}/stop"), &admin, json!({}))
        .await;
    assert_eq!(s, StatusCode::OK);
    let r = snap(admin.clone()).await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let v: Value = r.json().await.unwrap();
    assert_error(
        StatusCode::SERVICE_UNAVAILABLE,
        &v,
        503,
        "No recent picture",
    );
    // A camera that cannot be reached says why.
    let bad = app.camera(&admin, "Nowhere").await;
    app.wait_camera_status(&admin, &bad, "error", 20).await;
    let (s, v) = app
        .get(&format!("/api/v1/cameras/{bad}/snapshot"), &admin)
        .await;
    assert_error(s, &v, 503, "failing");
    let (s, v) = app
        .get(
            "/api/v1/cameras/00000000-0000-4000-8000-000000000000/snapshot",
            &admin,
        )
        .await;
    assert_error(s, &v, 404, "");
    app.stop().await;
}
