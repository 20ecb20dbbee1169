use crate::support::*;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn camera_crud_keeps_secrets_secret() {
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    let (s, v) = app
        .post(
            "/api/v1/cameras",
            &admin,
            json!({"name": "Front door", "type": "rtsp", "rtsp_url": "rtsp://viewer:s3cr%40t@127.0.0.1:1/sub",
                   "motion_sensitivity": "high", "frame_rate": 10,
                   "detection_zones": [{"name": "path", "vertices": [{"x": 0.1, "y": 0.1}, {"x": 0.9, "y": 0.1}, {"x": 0.5, "y": 0.9}]}],
                   "detection_schedule": {"days": [0, 1, 2, 3, 4], "time_ranges": [{"start": "22:00", "end": "06:00"}]}}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    assert!(uuid_like(&id));
    assert_eq!(v["rtsp_url"], json!("rtsp://127.0.0.1:1/sub"));
    assert_eq!(v["username"], json!("viewer"));
    assert_eq!(v["has_password"], json!(true));
    assert!(v.get("password").is_none());
    assert!(!v.to_string().contains("s3cr"));
    assert_eq!(v["motion_sensitivity"], json!("high"));
    assert_eq!(v["motion_cooldown"], json!(60));
    assert_eq!(v["object_filter"], json!(["person", "vehicle"]));
    // An enabled camera starts capturing as soon as it is added.
    assert_eq!(v["status"]["status"], json!("connecting"));
    assert!(v["created_at"].as_str().unwrap().ends_with('Z'));
    // The password is sealed at rest.
    let db = std::fs::read(app.data_dir().join("argus.db-wal")).unwrap();
    assert!(!db.windows(5).any(|w| w == b"s3cr@"));

    let (s, v) = app.get(&format!("/api/v1/cameras/{id}"), &admin).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["detection_zones"][0]["name"], json!("path"));

    let (s, v) = app
        .put(
            &format!("/api/v1/cameras/{id}"),
            &admin,
            json!({"name": "Front", "password": null, "motion_cooldown": 30}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["name"], json!("Front"));
    assert_eq!(v["has_password"], json!(false));
    assert_eq!(v["motion_cooldown"], json!(30));
    assert_eq!(v["username"], json!("viewer"));

    let (s, v) = app
        .post(
            "/api/v1/cameras",
            &admin,
            json!({"name": "Front", "type": "usb", "device_index": 0}),
        )
        .await;
    assert_error(s, &v, 409, "already exists");
    let (s, v) = app
        .put(
            &format!("/api/v1/cameras/{id}"),
            &admin,
            json!({"frame_rate": 99}),
        )
        .await;
    assert_error(s, &v, 422, "frame_rate");

    let (s, list) = app.get("/api/v1/cameras", &admin).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(list.as_array().unwrap().len(), 1);
    let (_, list) = app.get("/api/v1/cameras?is_enabled=false", &admin).await;
    assert_eq!(list.as_array().unwrap().len(), 0);

    let (s, _) = app.delete(&format!("/api/v1/cameras/{id}"), &admin).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, v) = app.get(&format!("/api/v1/cameras/{id}"), &admin).await;
    assert_error(s, &v, 404, "Camera not found");
    let (s, v) = app.delete(&format!("/api/v1/cameras/{id}"), &admin).await;
    assert_error(s, &v, 404, "Camera not found");
}

#[tokio::test]
async fn camera_validation_names_the_field() {
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    let cases = [
        (json!({"name": "a", "type": "rtsp"}), "rtsp_url"),
        (
            json!({"name": "a", "type": "rtsp", "rtsp_url": "http://x/y"}),
            "rtsp_url",
        ),
        (json!({"name": "a", "type": "usb"}), "device_index"),
        (json!({"name": "a", "type": "file"}), "file_path"),
        (json!({"name": "a", "type": "protect"}), "type"),
        (
            json!({"name": " ", "type": "usb", "device_index": 0}),
            "name",
        ),
        (
            json!({"name": "a", "type": "usb", "device_index": 0, "motion_cooldown": 4000}),
            "motion_cooldown",
        ),
        (
            json!({"name": "a", "type": "usb", "device_index": 0, "motion_sensitivity": "extreme"}),
            "motion_sensitivity",
        ),
        (
            json!({"name": "a", "type": "usb", "device_index": 0, "object_filter": ["unicorn"]}),
            "object_filter",
        ),
        (
            json!({"name": "a", "type": "usb", "device_index": 0, "detection_zones": [{"vertices": [{"x": 0, "y": 0}]}]}),
            "detection_zones[0].vertices",
        ),
        (
            json!({"name": "a", "type": "usb", "device_index": 0, "detection_schedule": {"days": [7], "time_ranges": [{"start": "08:00", "end": "09:00"}]}}),
            "detection_schedule.days",
        ),
        (
            json!({"name": "a", "type": "usb", "device_index": 0, "detection_schedule": {"days": [1], "time_ranges": [{"start": "8am", "end": "09:00"}]}}),
            "detection_schedule.time_ranges[0]",
        ),
    ];
    for (body, field) in cases {
        let (s, v) = app.post("/api/v1/cameras", &admin, body.clone()).await;
        assert_error(s, &v, 422, field);
    }
    let zones: Vec<_> = (0..11)
        .map(|_| json!({"vertices": [{"x": 0, "y": 0}, {"x": 1, "y": 0}, {"x": 1, "y": 1}]}))
        .collect();
    let (s, v) = app
        .post(
            "/api/v1/cameras",
            &admin,
            json!({"name": "z", "type": "usb", "device_index": 0, "detection_zones": zones}),
        )
        .await;
    assert_error(s, &v, 422, "at most 10");
}

fn uuid_like(s: &str) -> bool {
    s.len() == 36 && s.chars().filter(|c| *c == '-').count() == 4
}

#[tokio::test]
async fn record_clips_is_on_by_default_and_can_be_turned_off() {
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    let id = app.camera(&admin, "Drive").await;
    let path = format!("/api/v1/cameras/{id}");
    let (_, v) = app.get(&path, &admin).await;
    assert_eq!(v["record_clips"], json!(true), "{v}");
    let (s, v) = app.put(&path, &admin, json!({"record_clips": false})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["record_clips"], json!(false));
    let (_, v) = app.get(&path, &admin).await;
    assert_eq!(v["record_clips"], json!(false), "saved");
    let (s, v) = app.put(&path, &admin, json!({"record_clips": "no"})).await;
    assert_error(s, &v, 422, "record_clips");
    let (s, v) = app
        .post(
            "/api/v1/cameras",
            &admin,
            json!({"name": "Yard", "type": "rtsp", "rtsp_url": "rtsp://127.0.0.1:1/s",
                   "record_clips": false}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["record_clips"], json!(false));
    let (s, v) = app
        .post(
            "/api/v1/cameras",
            &admin,
            json!({"name": "Gate", "type": "rtsp", "rtsp_url": "rtsp://127.0.0.1:1/s",
                   "record_clips": 1}),
        )
        .await;
    assert_error(s, &v, 422, "record_clips");
}
