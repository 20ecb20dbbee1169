//! UniFi Protect through the running appliance, against the fake console of `fake_protect`
//! (HTTPS with a self-signed certificate, cookie + CSRF login, bootstrap, binary update socket):
//! controllers through the API, camera discovery and enabling, smart detections and rings
//! becoming events on `/ws`, filters, deduplication, reconnect with resume, re-login on 401,
//! the idle watchdog, connecting at boot, the cloud description of a Protect event, a Protect
//! camera's current picture (`GET /cameras/{id}/snapshot`) from its console, and event clips
//! (the console's export of the event window, retried while it answers 404, only for cameras
//! with `record_clips`).

use crate::fake_ai::FakeAi;
use crate::fake_protect::{self as fp, FakeProtect};
use crate::support::*;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn ws(app: &TestApp, token: &str) -> Ws {
    tokio_tungstenite::connect_async(format!("ws://{}/ws?token={token}", app.addr))
        .await
        .unwrap()
        .0
}

fn controller_body(fake: &FakeProtect, password: &str) -> Value {
    json!({
        "name": "Home UNVR",
        "host": "127.0.0.1",
        "port": fake.addr.port(),
        "username": fp::USERNAME,
        "password": password,
    })
}

async fn wait_controller(app: &TestApp, admin: &str, id: &str, want: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let (s, v) = app
            .get(&format!("/api/v1/protect/controllers/{id}"), admin)
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        if v["status"] == json!(want) {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "controller never reached {want}: {v}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A controller added through the API, connected, with its update socket open.
async fn connected(app: &TestApp, admin: &str, fake: &FakeProtect) -> String {
    let (s, c) = app
        .post(
            "/api/v1/protect/controllers",
            admin,
            controller_body(fake, fp::PASSWORD),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{c}");
    let id = c["id"].as_str().unwrap().to_string();
    wait_controller(app, admin, &id, "connected").await;
    fake.wait_sockets(1).await;
    id
}

async fn enable(app: &TestApp, admin: &str, ctrl: &str, pid: &str, types: Value) -> Value {
    let (s, v) = app
        .post(
            &format!("/api/v1/protect/controllers/{ctrl}/cameras/{pid}/enable"),
            admin,
            json!({"smart_detection_types": types}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    v
}

/// Sets a camera's cooldown (seconds between events).
/// Enables the driveway camera (people and vehicles) and the front door (these types); returns
/// their appliance camera ids.
async fn drive_and_door(app: &TestApp, admin: &str, ctrl: &str, door: Value) -> (String, String) {
    let e = enable(
        app,
        admin,
        ctrl,
        fp::DRIVEWAY_ID,
        json!(["person", "vehicle"]),
    )
    .await;
    let d = enable(app, admin, ctrl, fp::FRONT_DOOR_ID, door).await;
    (
        e["camera_id"].as_str().unwrap().to_string(),
        d["camera_id"].as_str().unwrap().to_string(),
    )
}

async fn cooldown(app: &TestApp, admin: &str, camera: &str, secs: u32) {
    let (s, v) = app
        .put(
            &format!("/api/v1/cameras/{camera}"),
            admin,
            json!({"motion_cooldown": secs}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
}

fn smart(fake: &FakeProtect, event: &str, camera: &str, types: &[&str], update: &str, zlib: bool) {
    fake.push(
        "add",
        "event",
        event,
        update,
        json!({"id": event, "type": "smartDetectZone", "camera": camera,
               "start": 1_714_000_100_000i64, "end": null, "score": 87,
               "smartDetectTypes": types, "modelKey": "event"}),
        zlib,
    );
}

fn ring(fake: &FakeProtect, event: &str, update: &str) {
    fake.push(
        "add",
        "event",
        event,
        update,
        json!({"id": event, "type": "ring", "camera": fp::FRONT_DOOR_ID,
               "start": 1_714_000_200_000i64, "end": 1_714_000_200_000i64}),
        false,
    );
}

async fn events_of(app: &TestApp, admin: &str, camera: &str) -> Vec<Value> {
    let (s, v) = app
        .get(
            &format!("/api/v1/events?camera_id={camera}&limit=100"),
            admin,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["items"].as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_controller_is_added_tested_and_its_person_detections_become_events() {
    let fake = FakeProtect::start().await;
    let app = TestApp::start().await;
    let admin = app.admin_token().await;

    // Test first: wrong password, then the right one.
    let mut body = controller_body(&fake, "wrong-password");
    body.as_object_mut().unwrap().remove("name");
    let (s, v) = app
        .post("/api/v1/protect/controllers/test", &admin, body.clone())
        .await;
    assert_error(s, &v, 422, "username or password");
    body["password"] = json!(fp::PASSWORD);
    let (s, v) = app
        .post("/api/v1/protect/controllers/test", &admin, body)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["success"], json!(true));
    assert_eq!(v["camera_count"], json!(2));
    assert_eq!(v["firmware_version"], json!(fp::NVR_FIRMWARE));

    let mut live = ws(&app, &admin).await;
    let ctrl = connected(&app, &admin, &fake).await;
    let status = next_matching(&mut live, 10, |m| {
        m["type"] == json!("protect.status") && m["data"]["status"] == json!("connected")
    })
    .await;
    assert_eq!(status["data"]["controller_id"], json!(ctrl));
    // The update socket was opened from the bootstrap's update id.
    assert_eq!(
        fake.socket_update_ids()[0].as_deref(),
        Some(fp::BOOTSTRAP_UPDATE_ID)
    );

    // The controller JSON: state, never the password.
    let (_, c) = app
        .get(&format!("/api/v1/protect/controllers/{ctrl}"), &admin)
        .await;
    assert_eq!(c["is_connected"], json!(true));
    let (_, h) = app.get("/api/v1/system/health", &admin).await;
    assert_eq!(
        h["protect"],
        json!({"controllers": 1, "connected": 1}),
        "{h}"
    );
    assert!(c["last_connected_at"].is_string(), "{c}");
    assert!(c["last_error"].is_null(), "{c}");
    let (_, all) = app.get("/api/v1/protect/controllers", &admin).await;
    assert_eq!(all.as_array().unwrap().len(), 1);
    for text in [c.to_string(), all.to_string()] {
        assert!(!text.contains(fp::PASSWORD), "{text}");
        assert!(!text.contains("password"), "{text}");
    }
    let (s, v) = app
        .post(
            &format!("/api/v1/protect/controllers/{ctrl}/test"),
            &admin,
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");

    // Discovery: the camera and the doorbell, none analysed yet.
    let (s, cams) = app
        .get(
            &format!("/api/v1/protect/controllers/{ctrl}/cameras"),
            &admin,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{cams}");
    let cams = cams.as_array().unwrap();
    assert_eq!(cams.len(), 2);
    let drive = cams
        .iter()
        .find(|c| c["protect_camera_id"] == json!(fp::DRIVEWAY_ID))
        .unwrap();
    assert_eq!(drive["name"], json!("Driveway"));
    assert_eq!(drive["type"], json!("camera"));
    assert_eq!(drive["is_online"], json!(true));
    assert_eq!(drive["is_enabled_for_ai"], json!(false));
    assert_eq!(
        drive["smart_detection_capabilities"],
        json!(["person", "vehicle"])
    );
    let door = cams
        .iter()
        .find(|c| c["protect_camera_id"] == json!(fp::FRONT_DOOR_ID))
        .unwrap();
    assert_eq!(door["type"], json!("doorbell"));

    // Enable the driveway for people only.
    let e = enable(&app, &admin, &ctrl, fp::DRIVEWAY_ID, json!(["person"])).await;
    assert_eq!(e["is_enabled_for_ai"], json!(true));
    let camera = e["camera_id"].as_str().unwrap().to_string();
    let (_, cam) = app.get(&format!("/api/v1/cameras/{camera}"), &admin).await;
    assert_eq!(cam["type"], json!("protect"));
    assert_eq!(cam["source_type"], json!("protect"));
    assert_eq!(cam["protect_controller_id"], json!(ctrl));
    assert_eq!(cam["smart_detection_types"], json!(["person"]));
    assert_eq!(cam["status"]["status"], json!("connected"), "{cam}");
    cooldown(&app, &admin, &camera, 0).await;

    // A vehicle on a person-only camera: nothing. Then a person (zlib-compressed): an event.
    smart(
        &fake,
        "ev-vehicle-1",
        fp::DRIVEWAY_ID,
        &["vehicle"],
        "u-1",
        false,
    );
    smart(
        &fake,
        "ev-person-1",
        fp::DRIVEWAY_ID,
        &["person"],
        "u-2",
        true,
    );
    let created = next_matching(&mut live, 10, |m| m["type"] == json!("event.created")).await;
    let ev = &created["data"];
    assert_eq!(ev["camera_id"], json!(camera));
    assert_eq!(ev["camera_name"], json!("Driveway"));
    assert_eq!(ev["source_type"], json!("protect"));
    assert_eq!(ev["protect_event_id"], json!("ev-person-1"));
    assert_eq!(ev["smart_detection_type"], json!("person"));
    assert_eq!(ev["detection_type"], json!("person"));
    assert_eq!(ev["objects_detected"], json!(["person"]));
    assert_eq!(ev["confidence"], json!(87));
    // The thumbnail is the console's snapshot (person.jpg, 640 px wide, re-encoded).
    let id = ev["id"].as_str().unwrap();
    let r = app
        .client
        .get(app.url(&format!("/api/v1/events/{id}/thumbnail")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let jpeg = r.bytes().await.unwrap();
    let thumb = argus::ai::image::prepare(&jpeg).unwrap();
    let original = std::fs::read(format!(
        "{}/tests/data/images/person.jpg",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let original = argus::ai::image::prepare(&original).unwrap();
    assert_eq!(
        (thumb.width, thumb.height),
        (original.width, original.height)
    );
    assert!(fake
        .requests()
        .iter()
        .any(|q| q.path == format!("/proxy/protect/api/cameras/{}/snapshot", fp::DRIVEWAY_ID)));
    // No AI provider is configured: the event is not left pending.
    assert_eq!(ev["description_pending"], json!(false));

    // The same Protect event again (a replay): still one event. A later update of it adds
    // nothing either.
    smart(
        &fake,
        "ev-person-1",
        fp::DRIVEWAY_ID,
        &["person"],
        "u-3",
        false,
    );
    fake.push(
        "update",
        "event",
        "ev-person-1",
        "u-4",
        json!({"end": 1_714_000_105_000i64, "smartDetectTypes": ["person", "vehicle"]}),
        false,
    );
    smart(
        &fake,
        "ev-person-2",
        fp::DRIVEWAY_ID,
        &["person"],
        "u-5",
        false,
    );
    let second = next_matching(&mut live, 10, |m| m["type"] == json!("event.created")).await;
    assert_eq!(second["data"]["protect_event_id"], json!("ev-person-2"));
    let list = events_of(&app, &admin, &camera).await;
    let ids: Vec<&str> = list
        .iter()
        .map(|e| e["protect_event_id"].as_str().unwrap())
        .collect();
    assert_eq!(list.len(), 2, "{ids:?}");
    assert!(ids.contains(&"ev-person-1") && ids.contains(&"ev-person-2"));

    // Filters can be changed; unknown values and `ring` on a camera are refused.
    let filters = format!(
        "/api/v1/protect/controllers/{ctrl}/cameras/{}/filters",
        fp::DRIVEWAY_ID
    );
    let (s, v) = app
        .put(
            &filters,
            &admin,
            json!({"smart_detection_types": ["person", "cat"]}),
        )
        .await;
    assert_error(s, &v, 422, "cat");
    let (s, v) = app
        .put(&filters, &admin, json!({"smart_detection_types": ["ring"]}))
        .await;
    assert_error(s, &v, 422, "doorbells");
    let (s, v) = app
        .put(&filters, &admin, json!({"smart_detection_types": []}))
        .await;
    assert_error(s, &v, 422, "at least one");
    let (s, v) = app
        .put(
            &filters,
            &admin,
            json!({"smart_detection_types": ["person", "vehicle"]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["smart_detection_types"], json!(["person", "vehicle"]));
    smart(
        &fake,
        "ev-vehicle-2",
        fp::DRIVEWAY_ID,
        &["vehicle"],
        "u-6",
        false,
    );
    let third = next_matching(&mut live, 10, |m| m["type"] == json!("event.created")).await;
    assert_eq!(third["data"]["smart_detection_type"], json!("vehicle"));

    // Disabled: detections are ignored, events are kept.
    let (s, v) = app
        .post(
            &format!(
                "/api/v1/protect/controllers/{ctrl}/cameras/{}/disable",
                fp::DRIVEWAY_ID
            ),
            &admin,
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["is_enabled_for_ai"], json!(false));
    smart(
        &fake,
        "ev-person-3",
        fp::DRIVEWAY_ID,
        &["person"],
        "u-7",
        false,
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(events_of(&app, &admin, &camera).await.len(), 3);

    // Deleting the controller deletes its cameras, their events and thumbnails.
    let thumbs = app.data_dir().join("thumbnails");
    let count = |d: &std::path::Path| walk(d).len();
    assert_eq!(count(&thumbs), 3);
    let (s, _) = app
        .delete(&format!("/api/v1/protect/controllers/{ctrl}"), &admin)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = app.get(&format!("/api/v1/cameras/{camera}"), &admin).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(count(&thumbs), 0);
    let (s, _) = app
        .get(&format!("/api/v1/protect/controllers/{ctrl}"), &admin)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ring_goes_out_at_once_and_reconnects_resume_and_relogin() {
    let fake = FakeProtect::start().await;
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    let mut live = ws(&app, &admin).await;
    let ctrl = connected(&app, &admin, &fake).await;
    // The doorbell's default filter includes rings.
    let (s, door) = app
        .post(
            &format!(
                "/api/v1/protect/controllers/{ctrl}/cameras/{}/enable",
                fp::FRONT_DOOR_ID
            ),
            &admin,
            json!({"name": "Front door bell"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{door}");
    assert_eq!(
        door["smart_detection_types"],
        json!(["person", "vehicle", "package", "ring"])
    );
    let camera = door["camera_id"].as_str().unwrap().to_string();

    // A person and then, within the cooldown, a ring: the ring still goes out, first as
    // `doorbell.ring`, then as its event.
    smart(
        &fake,
        "ev-door-person",
        fp::FRONT_DOOR_ID,
        &["person"],
        "u-10",
        false,
    );
    let first = next_matching(&mut live, 10, |m| m["type"] == json!("event.created")).await;
    assert_eq!(first["data"]["smart_detection_type"], json!("person"));
    ring(&fake, "ev-ring-1", "u-11");
    let rang = next_matching(&mut live, 10, |m| {
        m["type"] == json!("doorbell.ring") || m["type"] == json!("event.created")
    })
    .await;
    assert_eq!(rang["type"], json!("doorbell.ring"), "{rang}");
    assert_eq!(rang["data"]["camera_id"], json!(camera));
    assert_eq!(rang["data"]["camera_name"], json!("Front door bell"));
    assert_eq!(rang["data"]["protect_event_id"], json!("ev-ring-1"));
    let ev = next_matching(&mut live, 10, |m| m["type"] == json!("event.created")).await;
    assert_eq!(ev["data"]["is_doorbell_ring"], json!(true));
    assert_eq!(ev["data"]["smart_detection_type"], json!("ring"));
    // Another person within the cooldown: no event.
    smart(
        &fake,
        "ev-door-person-2",
        fp::FRONT_DOOR_ID,
        &["person"],
        "u-12",
        false,
    );

    // The console drops the socket: the appliance reconnects and resumes from the last
    // update id it saw.
    fake.drop_sockets();
    fake.wait_sockets(2).await;
    assert_eq!(fake.socket_update_ids()[1].as_deref(), Some("u-12"));
    wait_controller(&app, &admin, &ctrl, "connected").await;
    cooldown(&app, &admin, &camera, 0).await;
    smart(
        &fake,
        "ev-after-drop",
        fp::FRONT_DOOR_ID,
        &["package"],
        "u-13",
        false,
    );
    let ev = next_matching(&mut live, 10, |m| m["type"] == json!("event.created")).await;
    assert_eq!(ev["data"]["protect_event_id"], json!("ev-after-drop"));

    // The session expires and the socket drops: the appliance logs in again and resumes.
    let logins = fake.logins();
    fake.expire_sessions();
    fake.drop_sockets();
    fake.wait_sockets(3).await;
    assert!(fake.logins() > logins, "no new login");
    assert_eq!(fake.socket_update_ids()[2].as_deref(), Some("u-13"));
    smart(
        &fake,
        "ev-after-login",
        fp::FRONT_DOOR_ID,
        &["person"],
        "u-14",
        false,
    );
    let ev = next_matching(&mut live, 10, |m| m["type"] == json!("event.created")).await;
    assert_eq!(ev["data"]["protect_event_id"], json!("ev-after-login"));

    // Garbage on the socket is skipped, not fatal.
    fake.push_raw(vec![1, 2, 3, 4, 5]);
    fake.push(
        "update",
        "nvr",
        "nvr-1",
        "u-15",
        json!({"uptime": 5}),
        false,
    );
    smart(
        &fake,
        "ev-after-garbage",
        fp::FRONT_DOOR_ID,
        &["person"],
        "u-16",
        false,
    );
    let ev = next_matching(&mut live, 10, |m| m["type"] == json!("event.created")).await;
    assert_eq!(ev["data"]["protect_event_id"], json!("ev-after-garbage"));
    assert_eq!(fake.socket_update_ids().len(), 3);
    assert_eq!(events_of(&app, &admin, &camera).await.len(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_socket_is_reopened_and_controllers_connect_at_boot() {
    let fake = FakeProtect::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = argus::config::Config::for_data_dir(&dir.path().join("data"));
    cfg.protect.idle_timeout_secs = 1;
    let app = TestApp::start_in(dir, cfg).await;
    let admin = app.admin_token().await;
    let mut live = ws(&app, &admin).await;
    let ctrl = connected(&app, &admin, &fake).await;
    // Nothing arrives for a second: the socket is reopened, from where it was.
    fake.wait_sockets(2).await;
    let ids = fake.socket_update_ids();
    assert_eq!(ids[1], ids[0]);
    let st = next_matching(&mut live, 10, |m| {
        m["type"] == json!("protect.status")
            && m["data"]["status"] == json!("connecting")
            && m["data"]["error"].is_string()
    })
    .await;
    assert!(
        st["data"]["error"]
            .as_str()
            .unwrap()
            .contains("no update for 1 s"),
        "{st}"
    );

    // Disabled: the socket closes and stays closed.
    let (s, v) = app
        .put(
            &format!("/api/v1/protect/controllers/{ctrl}"),
            &admin,
            json!({"is_enabled": false}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["status"], json!("disconnected"));
    let opened = fake.socket_update_ids().len();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(fake.socket_update_ids().len(), opened);
    let (s, v) = app
        .put(
            &format!("/api/v1/protect/controllers/{ctrl}"),
            &admin,
            json!({"is_enabled": true}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    wait_controller(&app, &admin, &ctrl, "connected").await;

    // Restart: the enabled controller connects at boot.
    let before = fake.socket_update_ids().len();
    let dir = app.stop_keep_dir().await;
    let mut cfg2 = argus::config::Config::for_data_dir(&dir.path().join("data"));
    cfg2.protect.idle_timeout_secs = 60;
    let app = TestApp::start_in(dir, cfg2).await;
    fake.wait_sockets(before + 1).await;
    let admin = app.admin_token().await;
    wait_controller(&app, &admin, &ctrl, "connected").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_input_errors_and_unreachable_consoles() {
    let fake = FakeProtect::start().await;
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    let base = controller_body(&fake, fp::PASSWORD);
    for (patch, needle) in [
        (json!({"name": ""}), "name"),
        (json!({"host": "https://x/y"}), "host"),
        (json!({"host": "127.0.0.1:7443"}), "give the port in `port`"),
        (json!({"host": "console:443"}), "give the port in `port`"),
        (json!({"host": "bad<name>.lan"}), "not a valid host name"),
        (json!({"port": 0}), "port"),
        (json!({"port": 70000}), "port"),
        (json!({"password": ""}), "password"),
        (json!({"username": " "}), "username"),
        (json!({"extra": 1}), "extra"),
    ] {
        let mut body = base.clone();
        for (k, v) in patch.as_object().unwrap() {
            body[k] = v.clone();
        }
        let (s, v) = app.post("/api/v1/protect/controllers", &admin, body).await;
        assert_error(s, &v, 422, needle);
    }
    // A wrong password is stored (the owner may fix it later); the state says what is wrong.
    let (s, c) = app
        .post(
            "/api/v1/protect/controllers",
            &admin,
            controller_body(&fake, "wrong"),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{c}");
    let id = c["id"].as_str().unwrap().to_string();
    let v = wait_controller(&app, &admin, &id, "error").await;
    assert!(
        v["last_error"]
            .as_str()
            .unwrap()
            .contains("username or password"),
        "{v}"
    );
    // A duplicate name: 409.
    let (s, v) = app
        .post(
            "/api/v1/protect/controllers",
            &admin,
            controller_body(&fake, fp::PASSWORD),
        )
        .await;
    assert_error(s, &v, 409, "already exists");
    // The cameras of a controller that cannot log in: the console's answer, as a 422.
    let (s, v) = app
        .get(&format!("/api/v1/protect/controllers/{id}/cameras"), &admin)
        .await;
    assert_error(s, &v, 422, "username or password");
    // Fixing the password connects it.
    let (s, v) = app
        .put(
            &format!("/api/v1/protect/controllers/{id}"),
            &admin,
            json!({"password": fp::PASSWORD}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    wait_controller(&app, &admin, &id, "connected").await;
    // Unknown ids.
    let (s, v) = app
        .post(
            &format!("/api/v1/protect/controllers/{id}/cameras/nosuchcamera/enable"),
            &admin,
            json!({}),
        )
        .await;
    assert_error(s, &v, 404, "no camera");
    let (s, v) = app
        .post(
            &format!(
                "/api/v1/protect/controllers/{id}/cameras/{}/disable",
                fp::DRIVEWAY_ID
            ),
            &admin,
            json!({}),
        )
        .await;
    assert_error(s, &v, 404, "not enabled");
    let (s, v) = app
        .get(
            "/api/v1/protect/controllers/3f1c0a52-0000-4000-8000-000000000000",
            &admin,
        )
        .await;
    assert_error(s, &v, 404, "not found");
    // An unreachable console: 502 on test.
    let closed = {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap().port()
    };
    let mut body = controller_body(&fake, fp::PASSWORD);
    body["port"] = json!(closed);
    body.as_object_mut().unwrap().remove("name");
    let (s, v) = app
        .post("/api/v1/protect/controllers/test", &admin, body)
        .await;
    assert_error(s, &v, 502, "cannot be reached");
    // A read-only key cannot add controllers.
    let (_, key) = app.api_key(&admin, &["read:cameras"], None).await;
    let (s, v) = app
        .post(
            "/api/v1/protect/controllers",
            &key,
            controller_body(&fake, fp::PASSWORD),
        )
        .await;
    assert_error(s, &v, 403, "write:cameras");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_protect_event_is_described_by_the_cloud() {
    let answer = r#"{"description": "A person stands on the driveway.", "objects": ["person"], "confidence": 90, "threat_level": "none"}"#;
    let ai = FakeAi::answering(answer).await;
    let fake = FakeProtect::start().await;
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    let (s, v) = app
        .put(
            "/api/v1/system/settings",
            &admin,
            json!({"ai_provider_order": ["openai"],
                   "ai_providers": {"openai": {"api_key": "sk-test-key-0001", "base_url": ai.base("openai")}}}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let mut live = ws(&app, &admin).await;
    let ctrl = connected(&app, &admin, &fake).await;
    enable(&app, &admin, &ctrl, fp::DRIVEWAY_ID, json!(["person"])).await;
    smart(
        &fake,
        "ev-described",
        fp::DRIVEWAY_ID,
        &["person"],
        "u-20",
        false,
    );
    let created = next_matching(&mut live, 10, |m| m["type"] == json!("event.created")).await;
    assert_eq!(created["data"]["description_pending"], json!(true));
    let id = created["data"]["id"].clone();
    let updated = next_matching(&mut live, 15, |m| {
        m["type"] == json!("event.updated") && m["data"]["id"] == id
    })
    .await;
    assert_eq!(
        updated["data"]["description"],
        json!("A person stands on the driveway.")
    );
    // The provider got the camera's name and Protect's detection, without a box.
    let reqs = ai.requests();
    assert_eq!(reqs.len(), 1);
    let body = reqs[0].body.to_string();
    assert!(body.contains("Camera: Driveway"), "{body}");
    assert!(body.contains("UniFi Protect"), "{body}");
    assert!(body.contains("person (score 87%)"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protect_smart_detections_and_rings_fire_alert_rules() {
    let hook = crate::webhook_receiver::Receiver::start().await;
    let fake = FakeProtect::start().await;
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    let ctrl = connected(&app, &admin, &fake).await;
    let (drive, door) = drive_and_door(&app, &admin, &ctrl, json!(["ring"])).await;
    cooldown(&app, &admin, &drive, 0).await;
    let (s, people) = app
        .post(
            "/api/v1/alert-rules",
            &admin,
            json!({"name": "People on the drive", "conditions": {"object_types": ["person"], "cameras": [drive]},
                   "actions": {"webhook": {"url": hook.url}}, "cooldown_minutes": 0}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{people}");
    let (s, rings) = app
        .post(
            "/api/v1/alert-rules",
            &admin,
            json!({"name": "Doorbell", "conditions": {"object_types": ["ring"]}, "cooldown_minutes": 0}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{rings}");
    // A vehicle: the people rule stays quiet. A person: it fires.
    smart(&fake, "ev-a1", fp::DRIVEWAY_ID, &["vehicle"], "u-a1", false);
    smart(&fake, "ev-a2", fp::DRIVEWAY_ID, &["person"], "u-a2", true);
    let hits = hook.wait(1, 15).await;
    assert_eq!(hits[0].body["rule"]["id"], people["id"]);
    assert_eq!(hits[0].body["camera"]["id"], json!(drive));
    assert_eq!(hits[0].body["detection_type"], json!("person"));
    assert_eq!(hits[0].body["source_type"], json!("protect"));
    // A ring fires the doorbell rule (an in-app notification).
    ring(&fake, "ev-ring-a", "u-a3");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let (_, list) = app.get("/api/v1/notifications", &admin).await;
        let ring_notes: Vec<&Value> = list["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|n| n["rule_id"] == rings["id"])
            .collect();
        if let Some(n) = ring_notes.first() {
            let (_, ev) = app
                .get(
                    &format!("/api/v1/events/{}", n["event_id"].as_str().unwrap()),
                    &admin,
                )
                .await;
            assert_eq!(ev["camera_id"], json!(door));
            assert_eq!(ev["is_doorbell_ring"], json!(true));
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no ring notification: {list}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        hook.hits().len(),
        1,
        "the vehicle did not fire the people rule"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protect_detections_and_rings_reach_mqtt_and_home_assistant() {
    use crate::mosquitto::{Broker, Sub};
    let broker = Broker::start().await;
    let fake = FakeProtect::start().await;
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    let ctrl = connected(&app, &admin, &fake).await;
    let v = crate::mqtt::enable_mqtt(&app, &admin, broker.port(), json!({})).await;
    let node = v["node_id"].as_str().unwrap().to_string();
    crate::mqtt::wait_connected(&app, &admin, true, 10).await;
    let mut ha = Sub::connect(broker.port(), &["homeassistant/#", "argus/#"]).await;
    let (drive, door) = drive_and_door(&app, &admin, &ctrl, json!(["ring", "person"])).await;
    // Enabling a Protect camera announces its device; the doorbell has a doorbell entity.
    let door_cfg = format!(
        "homeassistant/device/{node}_{}/config",
        door.replace('-', "_")
    );
    let c = ha.wait_for(10, |m| m.topic == door_cfg).await.json();
    assert_eq!(c["dev"]["model"], json!("UniFi Protect camera"));
    assert_eq!(c["cmps"]["doorbell"]["p"], json!("event"));
    assert_eq!(c["cmps"]["doorbell"]["device_class"], json!("doorbell"));
    let slug = c["cmps"]["doorbell"]["state_topic"]
        .as_str()
        .unwrap()
        .trim_end_matches("/doorbell")
        .to_string();
    let (_, drive_cam) = app.get(&format!("/api/v1/cameras/{drive}"), &admin).await;
    let drive_base = format!(
        "argus/{node}/{}",
        argus::mqtt::topics::slug(drive_cam["name"].as_str().unwrap())
    );
    // A person on the drive: the event, the detection entity, motion and one person in view.
    smart(&fake, "ev-m1", fp::DRIVEWAY_ID, &["person"], "u-m1", false);
    let ev = ha
        .wait_for(15, |m| m.topic == format!("{drive_base}/events"))
        .await
        .json();
    assert_eq!(ev["event_type"], json!("person"));
    assert_eq!(ev["source_type"], json!("protect"));
    assert_eq!(ev["camera_id"], json!(drive));
    let rest = ha.collect(1.0).await;
    let has = |t: &str, p: &str| rest.iter().any(|m| m.topic == t && m.text() == p);
    assert!(has(&format!("{drive_base}/motion"), "ON"));
    assert!(has(&format!("{drive_base}/person"), "1"));
    assert!(rest
        .iter()
        .any(|m| m.topic == format!("{drive_base}/detection")
            && m.json()["event_type"] == json!("person")));
    // A ring: the doorbell topic.
    ring(&fake, "ev-ring-m", "u-m2");
    let r = ha
        .wait_for(15, |m| m.topic == format!("{slug}/doorbell"))
        .await
        .json();
    assert_eq!(r["event_type"], json!("ring"));
    assert_eq!(r["camera_id"], json!(door));
}

#[tokio::test]
async fn a_protect_camera_snapshot_comes_from_its_console() {
    let fake = FakeProtect::start().await;
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    let ctrl = connected(&app, &admin, &fake).await;
    let e = enable(&app, &admin, &ctrl, fp::DRIVEWAY_ID, json!(["person"])).await;
    let cam = e["camera_id"].as_str().unwrap();
    let r = app
        .client
        .get(app.url(&format!("/api/v1/cameras/{cam}/snapshot")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "image/jpeg");
    let got = r.bytes().await.unwrap();
    let want = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/images/person.jpg"
    ))
    .unwrap();
    assert_eq!(got.as_ref(), want.as_slice(), "the console's picture");
    assert!(fake.requests().iter().any(|r| r
        .path
        .contains(&format!("/cameras/{}/snapshot", fp::DRIVEWAY_ID))));
    // A controller that is not followed is not logged in to for a picture.
    let (s, v) = app
        .put(
            &format!("/api/v1/protect/controllers/{ctrl}"),
            &admin,
            json!({"is_enabled": false}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let logins = fake.logins();
    let (s, v) = app
        .get(&format!("/api/v1/cameras/{cam}/snapshot"), &admin)
        .await;
    assert_error(s, &v, 503, "not followed");
    assert_eq!(fake.logins(), logins, "no login for it");
    app.stop().await;
}

/// Clip timing for tests: the real one waits 3 s after the end and retries after 3, 6, 12 s.
fn fast_clips(cfg: &mut argus::config::Config) {
    cfg.protect.clip_timing = argus::config::ProtectClipTiming {
        after_end: Duration::from_millis(100),
        retry: Duration::from_millis(200),
        attempts: 5,
        max_open: Duration::from_secs(2),
    };
}

/// A smart detection starting at `start` (unix ms, the console's clock), not ended yet.
fn smart_at(fake: &FakeProtect, event: &str, camera: &str, update: &str, start: i64) {
    fake.push(
        "add",
        "event",
        event,
        update,
        json!({"id": event, "type": "smartDetectZone", "camera": camera, "start": start,
               "end": null, "score": 90, "smartDetectTypes": ["person"], "modelKey": "event"}),
        false,
    );
}

fn end_event(fake: &FakeProtect, event: &str, update: &str, end: i64) {
    fake.push("update", "event", event, update, json!({"end": end}), false);
}

/// Polls the event until it has its clip.
async fn wait_clip(app: &TestApp, admin: &str, id: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (s, v) = app.get(&format!("/api/v1/events/{id}"), admin).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        if v["has_clip"] == json!(true) {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the event never got its clip: {v}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn created_id(live: &mut Ws, protect_event: &str) -> String {
    let created = next_matching(live, 10, |m| {
        m["type"] == json!("event.created") && m["data"]["protect_event_id"] == json!(protect_event)
    })
    .await;
    created["data"]["id"].as_str().unwrap().to_string()
}

async fn clip_bytes(app: &TestApp, admin: &str, id: &str) -> Vec<u8> {
    let r = app
        .client
        .get(app.url(&format!("/api/v1/events/{id}/clip")))
        .bearer_auth(admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "video/mp4");
    r.bytes().await.unwrap().to_vec()
}

/// The codec ffprobe reads in an MP4.
fn probe_codec(mp4: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("clip.mp4");
    std::fs::write(&path, mp4).unwrap();
    let out = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-show_entries"])
        .args(["stream=codec_name", "-of", "default=nw=1:nk=1"])
        .arg(&path)
        .output()
        .expect("ffprobe runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_protect_events_clip_is_the_consoles_export_of_its_window() {
    let fake = FakeProtect::start().await;
    let app = TestApp::start_with(fast_clips).await;
    let admin = app.admin_token().await;
    let mut live = ws(&app, &admin).await;
    let ctrl = connected(&app, &admin, &fake).await;
    let e = enable(&app, &admin, &ctrl, fp::DRIVEWAY_ID, json!(["person"])).await;
    let camera = e["camera_id"].as_str().unwrap().to_string();
    cooldown(&app, &admin, &camera, 0).await;

    // A person from 100.000 to 105.000: once it ends, the export of [98.000, 107.000].
    let start = 1_714_000_100_000i64;
    smart_at(&fake, "ev-clip-1", fp::DRIVEWAY_ID, "u-c1", start);
    let id = created_id(&mut live, "ev-clip-1").await;
    let (_, before) = app.get(&format!("/api/v1/events/{id}"), &admin).await;
    assert_eq!(before["has_clip"], json!(false), "{before}");
    assert!(fake.exports().is_empty(), "nothing before the end");
    end_event(&fake, "ev-clip-1", "u-c2", start + 5_000);
    let ev = wait_clip(&app, &admin, &id).await;
    assert_eq!(
        fake.exports(),
        vec![fp::ExportSeen {
            camera: Some(fp::DRIVEWAY_ID.into()),
            channel: Some("0".into()),
            start: Some(start - 2_000),
            end: Some(start + 5_000 + 2_000),
            status: 200,
        }]
    );
    assert_eq!(ev["clip_url"], json!(format!("/api/v1/events/{id}/clip")));
    // The duration is the file's (4 s of video), the event starts 2 s into it.
    let secs = ev["clip_duration_seconds"].as_f64().unwrap();
    assert!((secs - 4.0).abs() < 0.1, "{ev}");
    assert_eq!(ev["clip_event_offset_seconds"].as_f64(), Some(2.0), "{ev}");
    let got = clip_bytes(&app, &admin, &id).await;
    assert_eq!(
        got.as_slice(),
        fp::export_mp4(),
        "the console's file, untouched"
    );
    assert_eq!(probe_codec(&got), "h264");
    // The export went with the session, and no temp file is left behind.
    let q = fake
        .requests()
        .into_iter()
        .find(|r| r.path == "/proxy/protect/api/video/export")
        .unwrap();
    assert!(q.cookie.unwrap_or_default().contains("TOKEN=fake-session-"));
    let tmp = app.data_dir().join("clips/.tmp");
    assert!(walk(&tmp).is_empty(), "{:?}", walk(&tmp));

    // The console is slow: two 404s, then the file (after 0.2 s and 0.4 s here).
    fake.exports_not_ready_for(2);
    let start2 = start + 60_000;
    smart_at(&fake, "ev-clip-2", fp::DRIVEWAY_ID, "u-c3", start2);
    let id2 = created_id(&mut live, "ev-clip-2").await;
    end_event(&fake, "ev-clip-2", "u-c4", start2 + 3_000);
    wait_clip(&app, &admin, &id2).await;
    let tries: Vec<(Option<i64>, Option<i64>, u16)> = fake
        .exports()
        .into_iter()
        .skip(1)
        .map(|x| (x.start, x.end, x.status))
        .collect();
    let window = (Some(start2 - 2_000), Some(start2 + 5_000));
    assert_eq!(
        tries,
        vec![
            (window.0, window.1, 404),
            (window.0, window.1, 404),
            (window.0, window.1, 200)
        ]
    );
    assert_eq!(
        clip_bytes(&app, &admin, &id2).await.as_slice(),
        fp::export_mp4()
    );

    // The session expires before the export: a 401, a new login, the file.
    fake.exports_not_ready_for(0);
    let start3 = start + 120_000;
    smart_at(&fake, "ev-clip-3", fp::DRIVEWAY_ID, "u-c5", start3);
    let id3 = created_id(&mut live, "ev-clip-3").await;
    fake.expire_sessions();
    let logins = fake.logins();
    end_event(&fake, "ev-clip-3", "u-c6", start3 + 1_000);
    wait_clip(&app, &admin, &id3).await;
    assert_eq!(fake.logins(), logins + 1);
    let asked = fake
        .requests()
        .iter()
        .filter(|r| {
            r.path == "/proxy/protect/api/video/export"
                && r.query
                    .as_deref()
                    .is_some_and(|q| q.contains(&format!("start={}", start3 - 2_000)))
        })
        .count();
    assert_eq!(asked, 2, "refused once, then answered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protect_clips_only_for_recording_cameras_and_a_window_closes_without_an_end() {
    let fake = FakeProtect::start().await;
    let app = TestApp::start_with(fast_clips).await;
    let admin = app.admin_token().await;
    let mut live = ws(&app, &admin).await;
    let ctrl = connected(&app, &admin, &fake).await;
    let (drive, _door) = drive_and_door(&app, &admin, &ctrl, json!(["ring", "person"])).await;
    // The driveway records no clips.
    let (s, v) = app
        .put(
            &format!("/api/v1/cameras/{drive}"),
            &admin,
            json!({"record_clips": false, "motion_cooldown": 0}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["record_clips"], json!(false), "{v}");
    let start = 1_714_000_300_000i64;
    smart_at(&fake, "ev-nr-1", fp::DRIVEWAY_ID, "u-n1", start);
    let no_clip = created_id(&mut live, "ev-nr-1").await;
    end_event(&fake, "ev-nr-1", "u-n2", start + 2_000);

    // The door: a person the console never ends (closed 2 s after its start here), and a ring
    // (its add carries its end, the same as its start).
    let door_start = start + 10_000;
    smart_at(&fake, "ev-open-1", fp::FRONT_DOOR_ID, "u-n3", door_start);
    let open = created_id(&mut live, "ev-open-1").await;
    ring(&fake, "ev-ring-c", "u-n4");
    let rung = created_id(&mut live, "ev-ring-c").await;
    wait_clip(&app, &admin, &rung).await;
    wait_clip(&app, &admin, &open).await;
    let mut door_windows: Vec<(Option<i64>, Option<i64>)> = fake
        .exports()
        .into_iter()
        .filter(|x| x.camera.as_deref() == Some(fp::FRONT_DOOR_ID))
        .map(|x| (x.start, x.end))
        .collect();
    door_windows.sort();
    let ring_at = 1_714_000_200_000i64;
    assert_eq!(
        door_windows,
        vec![
            (Some(ring_at - 2_000), Some(ring_at + 2_000)),
            (Some(door_start - 2_000), Some(door_start + 2_000 + 2_000)),
        ]
    );
    // Nothing was asked for the driveway, and its event has no clip.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        fake.exports()
            .iter()
            .all(|x| x.camera.as_deref() != Some(fp::DRIVEWAY_ID)),
        "{:?}",
        fake.exports()
    );
    let (_, ev) = app.get(&format!("/api/v1/events/{no_clip}"), &admin).await;
    assert_eq!(ev["has_clip"], json!(false), "{ev}");
    assert!(ev["clip_url"].is_null(), "{ev}");
}
