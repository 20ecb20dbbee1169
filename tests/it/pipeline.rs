//! The detection pipeline in the running appliance: a file camera through decode, motion, the
//! shared detector pool (the real ONNX model) and the tracker to events; what `/system/health`
//! reports; and start-up with a missing model.

use crate::capture::data;
use crate::support::*;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;

async fn detector_health(app: &TestApp) -> Value {
    let (s, h) = app.get("/api/v1/system/health", "").await;
    assert_eq!(s, StatusCode::OK);
    h["detector"].clone()
}

/// Waits until `pred` holds for the detector's health figures.
async fn wait_health(app: &TestApp, secs: u64, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let h = detector_health(app).await;
        if pred(&h) {
            return h;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out: {h}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_clip_makes_one_person_event_for_one_walk() {
    let app = TestApp::start_with(with_detector).await;
    let admin = app.admin_token().await;
    let h = detector_health(&app).await;
    assert_eq!(h["mode"], json!("objects"), "{h}");
    assert_eq!(h["backend"], json!("onnxruntime-cpu"));
    let demo = format!(
        "{}/assets/demo/person-walk.h264",
        env!("CARGO_MANIFEST_DIR")
    );
    let (s, cam) = app
        .post(
            "/api/v1/cameras",
            &admin,
            json!({"name": "Demo", "type": "file", "file_path": demo, "frame_rate": 5}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{cam}");
    assert_eq!(cam["object_filter"], json!(["person", "vehicle"]));
    // The person enters within a second of the 12 s walk.
    let h = wait_health(&app, 20, |h| h["object_events"].as_u64() >= Some(1)).await;
    assert!(h["detector_runs"].as_u64() >= Some(1));
    let (_, page) = app.get("/api/v1/events", &admin).await;
    let e = &page["items"][0];
    assert_eq!(e["detection_type"], json!("person"), "{e}");
    assert_boxed(e);
    assert_eq!(e["source_type"], json!("file"));
    assert!(e["objects_detected"]
        .as_array()
        .unwrap()
        .contains(&json!("person")));
    assert!(e["confidence"].as_u64().unwrap() >= 50, "{e}");
    let boxes = e["bounding_boxes"].as_array().unwrap();
    let person = boxes
        .iter()
        .find(|b| b["label"] == json!("person"))
        .unwrap_or_else(|| panic!("a person box: {e}"));
    assert!(person["score"].as_f64().unwrap() >= 0.5);
    for k in ["x", "y", "width", "height"] {
        let v = person[k].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&v), "{k} = {v}");
    }
    // The person walks on for seconds: many more detector runs, still one event.
    let runs = h["detector_runs"].as_u64().unwrap();
    let h = wait_health(&app, 30, |h| h["detector_runs"].as_u64() >= Some(runs + 12)).await;
    let (_, page) = app.get("/api/v1/events", &admin).await;
    assert_eq!(page["total"], json!(1), "one walk, one event: {page}");
    assert_eq!(h["object_events"], json!(1), "{h}");
    assert!(h["frames_kept_from_cloud"].as_u64() >= Some(10), "{h}");
    // Its snapshot is a real picture of the scene.
    let r = app
        .client
        .get(app.url(page["items"][0]["thumbnail_url"].as_str().unwrap()))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let f = argus::video::jpeg::Frame420::from_jpeg(&r.bytes().await.unwrap()).unwrap();
    assert_eq!((f.width, f.height), (640, 360));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn light_without_anyone_is_no_event_unless_the_filter_wants_motion() {
    let app = TestApp::start_with(with_detector).await;
    let admin = app.admin_token().await;
    let (_, cam) = app
        .post(
            "/api/v1/cameras",
            &admin,
            json!({"name": "Yard", "type": "file", "file_path": data("light-sweep-320x180.h264"), "frame_rate": 5, "motion_cooldown": 1}),
        )
        .await;
    let id = cam["id"].as_str().unwrap().to_string();
    // Two loops of the clip: the sweep is motion, the detector finds nobody.
    let h = wait_health(&app, 30, |h| {
        h["motion_frames"].as_u64() >= Some(8) && h["detector_runs"].as_u64() >= Some(8)
    })
    .await;
    let (_, page) = app.get("/api/v1/events", &admin).await;
    assert_eq!(page["total"], json!(0), "{page} {h}");
    assert!(h["frames_kept_from_cloud"].as_u64() >= Some(1), "{h}");
    assert_eq!(h["object_events"], json!(0));

    // An owner who wants every movement adds `motion` to the filter.
    let (s, _) = app
        .put(
            &format!("/api/v1/cameras/{id}"),
            &admin,
            json!({"object_filter": ["person", "motion"]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    wait_health(&app, 30, |h| h["motion_events"].as_u64() >= Some(1)).await;
    let (_, page) = app.get("/api/v1/events", &admin).await;
    assert_eq!(
        page["items"][0]["detection_type"],
        json!("motion"),
        "{page}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_model_stops_start_up_naming_it_or_runs_motion_only_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = argus::config::Config::for_data_dir(&dir.path().join("data"));
    with_detector(&mut cfg);
    cfg.detector.model = Some("/nonexistent/models/better.toml".into());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let err = argus::app::run(cfg, Default::default(), listener, std::future::pending())
        .await
        .expect_err("start-up fails");
    let msg = err.to_string();
    assert!(msg.contains("/nonexistent/models/better.toml"), "{msg}");
    assert!(
        msg.contains("motion-only"),
        "says how to run without it: {msg}"
    );

    // A broken model (not ONNX) is named too.
    let bad = dir.path().join("bad");
    std::fs::create_dir_all(&bad).unwrap();
    let spec = std::fs::read_to_string(model_toml()).unwrap();
    std::fs::write(bad.join("model.toml"), &spec).unwrap();
    std::fs::copy(
        model_toml().with_file_name("coco.names"),
        bad.join("coco.names"),
    )
    .unwrap();
    // The file the description names, not an ONNX model.
    let file = spec
        .lines()
        .find_map(|l| l.strip_prefix("file = \""))
        .and_then(|l| l.strip_suffix('"'))
        .expect("the description names its file")
        .to_string();
    std::fs::write(bad.join(&file), b"not a model").unwrap();
    let mut cfg = argus::config::Config::for_data_dir(&dir.path().join("data1"));
    with_detector(&mut cfg);
    cfg.detector.model = Some(bad.join("model.toml"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let err = argus::app::run(cfg, Default::default(), listener, std::future::pending())
        .await
        .expect_err("start-up fails");
    assert!(
        err.to_string()
            .contains(&bad.join(&file).display().to_string()),
        "{err}"
    );

    // A missing runtime library is named too.
    let mut cfg = argus::config::Config::for_data_dir(&dir.path().join("data2"));
    with_detector(&mut cfg);
    cfg.detector.runtime = Some("/opt/nowhere/libonnxruntime.so".into());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let err = argus::app::run(cfg, Default::default(), listener, std::future::pending())
        .await
        .expect_err("start-up fails");
    assert!(
        err.to_string().contains("/opt/nowhere/libonnxruntime.so"),
        "{err}"
    );

    // Asked to carry on: motion-only, loudly, and health says so.
    let app = TestApp::start_with(|cfg| {
        with_detector(cfg);
        cfg.detector.model = Some("/nonexistent/models/better.toml".into());
        cfg.detector.on_error = argus::config::OnDetectorError::MotionOnly;
    })
    .await;
    let (_, h) = app.get("/api/v1/system/health", "").await;
    assert_eq!(h["status"], json!("degraded"), "{h}");
    assert_eq!(h["detector"]["mode"], json!("motion-only"));
    assert!(h["detector"]["error"]
        .as_str()
        .unwrap()
        .contains("/nonexistent/models/better.toml"));
    // ...and motion still makes events.
    let admin = app.admin_token().await;
    app.post(
        "/api/v1/cameras",
        &admin,
        json!({"name": "Walk", "type": "file", "file_path": data("walk-320x180.h264"), "frame_rate": 15}),
    )
    .await;
    wait_health(&app, 20, |h| h["motion_events"].as_u64() >= Some(1)).await;
}

/// Every object event carries the box of what it announces, and its type among its objects.
fn assert_boxed(e: &Value) {
    let kind = e["detection_type"].as_str().unwrap();
    let objects = e["objects_detected"].as_array().unwrap();
    assert!(objects.contains(&json!(kind)), "{e}");
    let boxes = e["bounding_boxes"].as_array().unwrap();
    let b = boxes
        .iter()
        .find(|b| b["label"] == json!(kind))
        .unwrap_or_else(|| panic!("an object event without its box: {e}"));
    assert!(b["score"].as_f64().unwrap() >= 0.5, "{e}");
    assert!(b["width"].as_f64().unwrap() > 0.0 && b["height"].as_f64().unwrap() > 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_who_appears_is_one_event_with_her_box_and_a_flash_is_none() {
    let app = TestApp::start_with(with_detector).await;
    let admin = app.admin_token().await;
    // Loops every 5 s: 2 s of the empty scene, then she stands there for 3 s. The gap is
    // shorter than a track's lost time, so each loop is the same person.
    let (s, cam) = app
        .post(
            "/api/v1/cameras",
            &admin,
            json!({"name": "Door", "type": "file", "file_path": data("appear-640x360.h264"), "frame_rate": 5}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{cam}");
    // And a camera where a person is there for one frame of every 3 s, every frame analysed.
    let (s, flash) = app
        .post(
            "/api/v1/cameras",
            &admin,
            json!({"name": "Flash", "type": "file", "file_path": data("flash-640x360.h264"), "frame_rate": 15}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{flash}");
    wait_health(&app, 30, |h| h["object_events"].as_u64() >= Some(1)).await;
    // Two more loops of both.
    tokio::time::sleep(Duration::from_secs(8)).await;
    let (_, page) = app.get("/api/v1/events?limit=50", &admin).await;
    let items = page["items"].as_array().unwrap();
    let door: Vec<&Value> = items
        .iter()
        .filter(|e| e["camera_id"] == cam["id"])
        .collect();
    assert_eq!(door.len(), 1, "one person, one event: {page}");
    let e = door[0];
    assert_eq!(e["detection_type"], json!("person"), "{e}");
    assert_boxed(e);
    // Her box: x 300-358, y 160-330 of 640x360.
    let b = &e["bounding_boxes"][0];
    let x = b["x"].as_f64().unwrap() * 640.0;
    let h = b["height"].as_f64().unwrap() * 360.0;
    assert!((x - 300.0).abs() < 25.0 && (h - 170.0).abs() < 35.0, "{b}");
    assert!(
        items.iter().all(|e| e["camera_id"] != flash["id"]),
        "a one-frame flash is no event: {page}"
    );
}
