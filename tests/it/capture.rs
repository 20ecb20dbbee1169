//! Capture end to end with real parts: an H.264 file camera (the demo path) through the real
//! decoder and motion detector, events with snapshots, and status on the WebSocket.

use crate::support::*;
use futures_util::StreamExt;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

pub fn data(name: &str) -> String {
    format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_camera_streams_and_a_walking_person_makes_a_motion_event() {
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    let (mut ws, _) =
        tokio_tungstenite::connect_async(format!("ws://{}/ws?token={admin}", app.addr))
            .await
            .unwrap();
    let (s, cam) = app
        .post(
            "/api/v1/cameras",
            &admin,
            json!({"name": "Walk", "type": "file", "file_path": data("walk-bframes-320x180.h264"), "frame_rate": 15, "motion_cooldown": 600}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{cam}");
    let id = cam["id"].as_str().unwrap().to_string();
    let v = app.wait_camera_status(&admin, &id, "streaming", 10).await;
    assert_eq!(v["status"]["resolution"], json!("320x180"));

    // camera.status and then event.created arrive on the socket.
    let mut saw_status = false;
    let mut event: Option<Value> = None;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while event.is_none() && tokio::time::Instant::now() < deadline {
        if let Ok(Some(Ok(Message::Text(t)))) =
            tokio::time::timeout(Duration::from_secs(1), ws.next()).await
        {
            let m: Value = serde_json::from_str(t.as_str()).unwrap();
            match m["type"].as_str() {
                Some("camera.status") if m["data"]["camera_id"] == json!(id) => saw_status = true,
                Some("event.created") => event = Some(m["data"].clone()),
                _ => {}
            }
        }
    }
    assert!(saw_status, "camera.status was sent");
    let e = event.expect("a motion event within 15 s");
    assert_eq!(e["camera_id"], json!(id));
    assert_eq!(e["detection_type"], json!("motion"));
    assert!(!e["bounding_boxes"].as_array().unwrap().is_empty(), "{e}");
    let r = app
        .client
        .get(app.url(e["thumbnail_url"].as_str().unwrap()))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let jpeg = r.bytes().await.unwrap();
    let frame = argus::video::jpeg::Frame420::from_jpeg(&jpeg).unwrap();
    assert_eq!((frame.width, frame.height), (320, 180));

    // Stopping the camera stops its task; starting it again brings it back.
    let (s, v) = app
        .post(&format!("/api/v1/cameras/{id}/stop"), &admin, json!({}))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["status"]["status"], json!("stopped"));
    let (s, _) = app
        .post(&format!("/api/v1/cameras/{id}/start"), &admin, json!({}))
        .await;
    assert_eq!(s, StatusCode::OK);
    app.wait_camera_status(&admin, &id, "streaming", 10).await;
    // Disabling it through an update stops it too; deleting it leaves no status behind.
    let (_, v) = app
        .put(
            &format!("/api/v1/cameras/{id}"),
            &admin,
            json!({"is_enabled": false}),
        )
        .await;
    assert_eq!(v["status"]["status"], json!("stopped"));
    app.delete(&format!("/api/v1/cameras/{id}"), &admin).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_still_flickering_scene_makes_no_event() {
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    let (_, cam) = app
        .post(
            "/api/v1/cameras",
            &admin,
            json!({"name": "Still", "type": "file", "file_path": data("static-flicker-320x180.h264"), "frame_rate": 15, "motion_sensitivity": "high"}),
        )
        .await;
    let id = cam["id"].as_str().unwrap().to_string();
    app.wait_camera_status(&admin, &id, "streaming", 10).await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    let (_, page) = app.get("/api/v1/events", &admin).await;
    assert_eq!(page["total"], json!(0), "{page}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_file_is_an_error_status_and_the_test_endpoint_says_why() {
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    let (_, cam) = app
        .post(
            "/api/v1/cameras",
            &admin,
            json!({"name": "Gone", "type": "file", "file_path": "/nonexistent.h264"}),
        )
        .await;
    let id = cam["id"].as_str().unwrap().to_string();
    let v = app.wait_camera_status(&admin, &id, "error", 5).await;
    assert!(
        v["status"]["error"]
            .as_str()
            .unwrap()
            .contains("cannot read"),
        "{v}"
    );

    let (s, v) = app
        .post(
            "/api/v1/cameras/test",
            &admin,
            json!({"type": "file", "file_path": data("walk-320x180.h264")}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["success"], json!(true), "{v}");
    assert_eq!(v["resolution"], json!("320x180"));
    assert_eq!(v["codec"], json!("h264"));
    assert!(v["thumbnail"]
        .as_str()
        .unwrap()
        .starts_with("data:image/jpeg;base64,"));
    let (_, v) = app
        .post(
            "/api/v1/cameras/test",
            &admin,
            json!({"type": "rtsp", "rtsp_url": "rtsp://127.0.0.1:1/none"}),
        )
        .await;
    assert_eq!(v["success"], json!(false));
    assert!(v["message"].as_str().unwrap().contains("reach"), "{v}");
    let (_, v) = app
        .post(
            "/api/v1/cameras/test",
            &admin,
            json!({"type": "rtsp", "rtsp_url": "rtsps://127.0.0.1:1/none"}),
        )
        .await;
    assert!(
        v["message"].as_str().unwrap().contains("cannot reach"),
        "{v}"
    );
}
