//! RTSP cameras against a real RTSP server on loopback (GStreamer's gst-rtsp-server, started
//! from tests/support/rtsp_server.py): authentication, streaming, motion events, the connection
//! test, and recovery after the server dies and comes back.

use crate::support::*;
use reqwest::StatusCode;
use serde_json::json;
use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

struct RtspServer {
    child: Child,
}

impl RtspServer {
    fn start(port: u16, extra: &[&str]) -> RtspServer {
        let script = format!(
            "{}/tests/support/rtsp_server.py",
            env!("CARGO_MANIFEST_DIR")
        );
        let mut child = Command::new("/usr/bin/python3")
            .arg(&script)
            .arg(port.to_string())
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the RTSP test server needs /usr/bin/python3 with GStreamer (scripts/deps.sh installs it)");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "READY", "the RTSP test server did not start");
        RtspServer { child }
    }
}

impl Drop for RtspServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rtsp_camera_streams_makes_events_and_recovers_after_the_server_restarts() {
    let port = free_port();
    let server = RtspServer::start(port, &["--user", "viewer", "--password", "s3cret"]);
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    let (s, cam) = app
        .post(
            "/api/v1/cameras",
            &admin,
            json!({"name": "Gate", "type": "rtsp", "rtsp_url": format!("rtsp://viewer:s3cret@127.0.0.1:{port}/test"),
                   "frame_rate": 5, "motion_sensitivity": "high"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{cam}");
    assert_eq!(
        cam["rtsp_url"],
        json!(format!("rtsp://127.0.0.1:{port}/test"))
    );
    let id = cam["id"].as_str().unwrap().to_string();
    let v = app.wait_camera_status(&admin, &id, "streaming", 20).await;
    assert_eq!(v["status"]["resolution"], json!("320x180"));

    // The moving ball is motion: an event with a snapshot.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let event = loop {
        let (_, page) = app.get("/api/v1/events", &admin).await;
        if page["total"].as_u64().unwrap() > 0 {
            break page["items"][0].clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no motion event from the RTSP camera"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(event["source_type"], json!("rtsp"));
    assert!(event["thumbnail_url"].is_string());

    // The server dies: the camera goes to error; it comes back: streaming again, without
    // restarting the appliance.
    drop(server);
    let v = app.wait_camera_status(&admin, &id, "error", 20).await;
    assert!(v["status"]["error"].is_string());
    let _server = RtspServer::start(port, &["--user", "viewer", "--password", "s3cret"]);
    app.wait_camera_status(&admin, &id, "streaming", 40).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_test_reports_credentials_and_codec_problems() {
    let port = free_port();
    let _h264 = RtspServer::start(port, &["--user", "viewer", "--password", "s3cret"]);
    let mport = free_port();
    let _vp8 = RtspServer::start(mport, &["--codec", "vp8"]);
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    let url = format!("rtsp://127.0.0.1:{port}/test");

    let (s, v) = app
        .post(
            "/api/v1/cameras/test",
            &admin,
            json!({"type": "rtsp", "rtsp_url": url, "username": "viewer", "password": "s3cret"}),
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
            json!({"type": "rtsp", "rtsp_url": url, "username": "viewer", "password": "wrong"}),
        )
        .await;
    assert_eq!(v["success"], json!(false));
    assert!(
        v["message"].as_str().unwrap().contains("credentials"),
        "{v}"
    );

    let (_, v) = app
        .post(
            "/api/v1/cameras/test",
            &admin,
            json!({"type": "rtsp", "rtsp_url": url}),
        )
        .await;
    assert_eq!(v["success"], json!(false));
    assert!(
        v["message"].as_str().unwrap().contains("credentials"),
        "{v}"
    );

    let (_, v) = app
        .post(
            "/api/v1/cameras/test",
            &admin,
            json!({"type": "rtsp", "rtsp_url": format!("rtsp://127.0.0.1:{mport}/test")}),
        )
        .await;
    assert_eq!(v["success"], json!(false));
    assert!(v["message"].as_str().unwrap().contains("H.264"), "{v}");

    let (_, v) = app
        .post(
            "/api/v1/cameras/test",
            &admin,
            json!({"type": "rtsp", "rtsp_url": format!("rtsp://127.0.0.1:{}/test", free_port())}),
        )
        .await;
    assert!(
        v["message"].as_str().unwrap().contains("cannot reach"),
        "{v}"
    );
    // Nothing was saved.
    let (_, list) = app.get("/api/v1/cameras", &admin).await;
    assert_eq!(list.as_array().unwrap().len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rtsps_cameras_stream_through_tls() {
    let dir = tempfile::tempdir().unwrap();
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.signing_key.serialize_pem()).unwrap();
    let port = free_port();
    let _server = RtspServer::start(
        port,
        &[
            "--user",
            "viewer",
            "--password",
            "s3cret",
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    let url = format!("rtsps://127.0.0.1:{port}/test");
    let (_, v) = app
        .post(
            "/api/v1/cameras/test",
            &admin,
            json!({"type": "rtsp", "rtsp_url": url, "username": "viewer", "password": "s3cret"}),
        )
        .await;
    assert_eq!(v["success"], json!(true), "{v}");
    // Plain RTSP to a TLS port does not work, and says so instead of hanging.
    let (_, v) = app
        .post("/api/v1/cameras/test", &admin, json!({"type": "rtsp", "rtsp_url": format!("rtsp://127.0.0.1:{port}/test"), "username": "viewer", "password": "s3cret"}))
        .await;
    assert_eq!(v["success"], json!(false), "{v}");
    let (_, cam) = app
        .post("/api/v1/cameras", &admin, json!({"name": "Secure", "type": "rtsp", "rtsp_url": url, "username": "viewer", "password": "s3cret"}))
        .await;
    let id = cam["id"].as_str().unwrap().to_string();
    let v = app.wait_camera_status(&admin, &id, "streaming", 20).await;
    assert_eq!(v["status"]["resolution"], json!("320x180"));
}

/// Writes the pictures of an H.264 clip as numbered JPEGs (`0000.jpg`, ...) with the
/// appliance's own decoder, for the RTSP server's `--frames`.
fn clip_frames(clip: &str, dir: &std::path::Path) -> usize {
    let bytes = std::fs::read(clip).unwrap();
    let mut dec = argus::video::decode::H264Decoder::new().unwrap();
    let mut n = 0;
    for au in argus::video::h264::access_units(&bytes) {
        dec.decode(&au, &mut |p: &argus::video::decode::Picture<'_>| {
            let jpeg = argus::video::jpeg::encode_picture(p, p.width, 90).unwrap();
            std::fs::write(dir.join(format!("{n:04}.jpg")), jpeg).unwrap();
            n += 1;
        });
    }
    n
}

/// The loopback RTSP server playing the clip of a person who appears (its frames, the server,
/// its port).
fn appearing_person() -> (tempfile::TempDir, RtspServer, u16) {
    let frames = tempfile::tempdir().unwrap();
    let n = clip_frames(&crate::capture::data("appear-640x360.h264"), frames.path());
    assert!(n >= 60, "{n} frames");
    let port = free_port();
    let pattern = frames.path().join("%04d.jpg");
    let server = RtspServer::start(port, &["--frames", pattern.to_str().unwrap()]);
    (frames, server, port)
}

/// Adds the RTSP camera "Door" (5 fps) on the loopback server; returns its JSON.
async fn door_camera(app: &TestApp, admin: &str, port: u16) -> serde_json::Value {
    let (s, cam) = app
        .post(
            "/api/v1/cameras",
            admin,
            json!({"name": "Door", "type": "rtsp", "rtsp_url": format!("rtsp://127.0.0.1:{port}/test"),
                   "frame_rate": 5}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{cam}");
    cam
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_rtsp_person_fires_the_person_rule_and_not_the_vehicle_rule() {
    let (_frames, _server, port) = appearing_person();
    let hook = crate::webhook_receiver::Receiver::start().await;
    let app = TestApp::start_with(with_detector).await;
    let admin = app.admin_token().await;
    let (s, person) = app
        .post(
            "/api/v1/alert-rules",
            &admin,
            json!({"name": "Person", "conditions": {"object_types": ["person"]},
                   "actions": {"webhook": {"url": hook.url}}}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{person}");
    let (s, vehicle) = app
        .post(
            "/api/v1/alert-rules",
            &admin,
            json!({"name": "Vehicle", "conditions": {"object_types": ["vehicle"]},
                   "actions": {"webhook": {"url": hook.url}}}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{vehicle}");
    let cam = door_camera(&app, &admin, port).await;
    let hits = hook.wait(1, 60).await;
    let h = &hits[0];
    assert_eq!(h.body["rule"]["id"], person["id"]);
    assert_eq!(h.body["camera"]["id"], cam["id"]);
    assert_eq!(h.body["detection_type"], json!("person"));
    assert_eq!(h.body["source_type"], json!("rtsp"));
    assert!(h.header("x-argus-signature").starts_with("t="));
    let (_, list) = app.get("/api/v1/notifications", &admin).await;
    assert_eq!(list["data"][0]["rule_id"], person["id"], "{list}");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        hook.hits()
            .iter()
            .all(|h| h.body["rule"]["id"] == person["id"]),
        "the vehicle rule fired"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_rtsp_person_reaches_mqtt_with_motion_and_the_count_in_view() {
    use crate::mosquitto::{Broker, Sub};
    let (_frames, _server, port) = appearing_person();
    let broker = Broker::start().await;
    let app = TestApp::start_with(with_detector).await;
    let admin = app.admin_token().await;
    let v = crate::mqtt::enable_mqtt(&app, &admin, broker.port(), json!({})).await;
    let node = v["node_id"].as_str().unwrap().to_string();
    crate::mqtt::wait_connected(&app, &admin, true, 10).await;
    let base = format!("argus/{node}/door");
    let mut sub = Sub::connect(broker.port(), &[&format!("{base}/#")]).await;
    let cam = door_camera(&app, &admin, port).await;
    let mut seen = Vec::new();
    let ev = loop {
        let m = sub.wait_for(60, |m| !m.topic.ends_with("/status")).await;
        if m.topic == format!("{base}/events") {
            break m.json();
        }
        seen.push((m.topic.clone(), m.text()));
    };
    assert_eq!(ev["event_type"], json!("person"), "{ev}");
    assert_eq!(ev["camera_id"], cam["id"]);
    assert_eq!(ev["source_type"], json!("rtsp"));
    assert!(
        seen.contains(&(format!("{base}/motion"), "ON".to_string())),
        "motion came first: {seen:?}"
    );
    // Then the detection event entity, the snapshot and one person in view.
    let after = sub.collect(3.0).await;
    let detection = after
        .iter()
        .find(|m| m.topic == format!("{base}/detection"))
        .expect("the detection message");
    assert_eq!(detection.json()["event_type"], json!("person"));
    assert_eq!(detection.json()["event_id"], ev["id"]);
    let snap = after
        .iter()
        .find(|m| m.topic == format!("{base}/snapshot"))
        .expect("the snapshot");
    assert_eq!(&snap.payload[..2], &[0xFF, 0xD8]);
    assert!(
        after
            .iter()
            .any(|m| m.topic == format!("{base}/person") && m.text() == "1"),
        "one person in view: {:?}",
        after.iter().map(|m| &m.topic).collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rtsp_motion_fires_an_alert_rule_with_a_webhook() {
    let port = free_port();
    let _server = RtspServer::start(port, &[]);
    let hook = crate::webhook_receiver::Receiver::start().await;
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    let (s, cam) = app
        .post(
            "/api/v1/cameras",
            &admin,
            json!({"name": "Yard", "type": "rtsp", "rtsp_url": format!("rtsp://127.0.0.1:{port}/test"),
                   "frame_rate": 5, "motion_sensitivity": "high"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{cam}");
    let (s, r) = app
        .post(
            "/api/v1/alert-rules",
            &admin,
            json!({"name": "Yard motion", "conditions": {"object_types": ["motion"], "cameras": [cam["id"]]},
                   "actions": {"webhook": {"url": hook.url}}}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    let hits = hook.wait(1, 30).await;
    assert_eq!(hits[0].body["rule"]["id"], r["id"]);
    assert_eq!(hits[0].body["camera"]["id"], cam["id"]);
    assert_eq!(hits[0].body["source_type"], json!("rtsp"));
    let (_, list) = app.get("/api/v1/notifications", &admin).await;
    assert!(list["total_count"].as_u64() >= Some(1), "{list}");
}
