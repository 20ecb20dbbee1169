//! The Protect client against the fake console: login, bootstrap, snapshots, error kinds,
//! re-login, and the update socket with detections mapped from it.

use crate::fake_protect::{self, FakeProtect};
use argus::protect::{
    DetectionKind, EventMapper, Payload, ProtectClient, ProtectError, Timeouts, UpdateMessage,
    UpdateStream,
};
use futures_util::StreamExt;
use serde_json::json;
use std::time::Duration;

fn client(fake: &FakeProtect) -> ProtectClient {
    ProtectClient::new(fake.config(fake_protect::PASSWORD, false)).unwrap()
}

/// The next message, failing the test after 5 s.
async fn next(stream: &mut UpdateStream) -> Option<UpdateMessage> {
    tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .expect("an update (or the end of the stream) within 5 s")
}

#[tokio::test]
async fn login_bootstrap_and_snapshot() {
    let fake = FakeProtect::start().await;
    let c = client(&fake);
    c.login().await.unwrap();
    let b = c.bootstrap().await.unwrap();
    assert_eq!(b.nvr.name, fake_protect::NVR_NAME);
    assert_eq!(
        b.nvr.firmware_version.as_deref(),
        Some(fake_protect::NVR_FIRMWARE)
    );
    assert_eq!(b.nvr.version.as_deref(), Some(fake_protect::NVR_VERSION));
    assert_eq!(
        b.last_update_id.as_deref(),
        Some(fake_protect::BOOTSTRAP_UPDATE_ID)
    );
    let names: Vec<(&str, bool)> = b
        .cameras
        .iter()
        .map(|c| (c.name.as_str(), c.is_doorbell))
        .collect();
    assert_eq!(names, [("Driveway", false), ("Front Door", true)]);
    assert!(b.cameras.iter().all(|c| c.is_connected));

    let jpeg = c.snapshot(fake_protect::DRIVEWAY_ID).await.unwrap();
    let expected = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/images/person.jpg"
    ))
    .unwrap();
    assert_eq!(&jpeg[..], &expected[..]);
    let missing = c.snapshot("663a1f0c00e1d203e4000aff").await.unwrap_err();
    assert!(
        matches!(missing, ProtectError::Protocol(ref m) if m.contains("404")),
        "{missing:?}"
    );
    assert!(matches!(
        c.snapshot("../nvr").await,
        Err(ProtectError::InvalidInput(_))
    ));

    assert_eq!(fake.logins(), 1, "one session for every call");
    // The cookie and the CSRF token from the login go on every later request.
    let later: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|r| r.path != "/api/auth/login")
        .collect();
    assert_eq!(later.len(), 3);
    for r in &later {
        assert_eq!(r.cookie.as_deref(), Some("TOKEN=fake-session-1"), "{r:?}");
        assert_eq!(r.csrf.as_deref(), Some("fake-csrf-4d1f3b"), "{r:?}");
    }
    assert!(later[1].query.as_deref().unwrap().contains("force=true"));
}

#[tokio::test]
async fn the_first_call_logs_in_by_itself() {
    let fake = FakeProtect::start().await;
    let b = client(&fake).bootstrap().await.unwrap();
    assert_eq!(b.cameras.len(), 2);
    assert_eq!(fake.logins(), 1);
}

#[tokio::test]
async fn wrong_password_is_bad_credentials() {
    let fake = FakeProtect::start().await;
    let c = ProtectClient::new(fake.config("wrong-password", false)).unwrap();
    assert_eq!(c.login().await, Err(ProtectError::BadCredentials));
    assert_eq!(
        c.bootstrap().await.unwrap_err(),
        ProtectError::BadCredentials
    );
    let err = c.updates(None).await.unwrap_err();
    assert_eq!(err, ProtectError::BadCredentials);
    // Nothing secret in what the caller may show or log.
    let shown = format!("{err} {err:?} {c:?}");
    assert!(!shown.contains("wrong-password"), "{shown}");
}

#[tokio::test]
async fn nothing_listening_is_unreachable() {
    let port = {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap().port()
    };
    let c = ProtectClient::new(argus::protect::ControllerConfig {
        host: format!("127.0.0.1:{port}"),
        username: "u".into(),
        password: "p".into(),
        verify_ssl: false,
    })
    .unwrap();
    let err = c.bootstrap().await.unwrap_err();
    assert!(matches!(err, ProtectError::Unreachable(_)), "{err:?}");
}

#[tokio::test]
async fn verify_ssl_refuses_the_self_signed_certificate() {
    let fake = FakeProtect::start().await;
    let c = ProtectClient::new(fake.config(fake_protect::PASSWORD, true)).unwrap();
    let err = c.login().await.unwrap_err();
    match &err {
        ProtectError::Tls(m) => assert!(m.contains("certificate"), "{m}"),
        other => panic!("expected a TLS error, got {other:?}"),
    }
    assert_eq!(fake.logins(), 0);
}

#[tokio::test]
async fn a_console_that_never_answers_is_a_timeout() {
    // Accepts TCP connections and then says nothing, so the TLS handshake never finishes.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hold = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            open.push(s);
        }
    });
    let timeouts = Timeouts {
        connect: Duration::from_millis(300),
        request: Duration::from_millis(300),
        snapshot: Duration::from_millis(300),
        websocket: Duration::from_millis(300),
    };
    let c = ProtectClient::with_timeouts(
        argus::protect::ControllerConfig {
            host: addr.to_string(),
            username: "u".into(),
            password: "p".into(),
            verify_ssl: false,
        },
        timeouts,
    )
    .unwrap();
    assert_eq!(c.login().await, Err(ProtectError::Timeout));
    hold.abort();
}

#[tokio::test]
async fn an_expired_session_is_renewed_transparently() {
    let fake = FakeProtect::start().await;
    let c = client(&fake);
    c.bootstrap().await.unwrap();
    fake.expire_sessions();
    let b = c.bootstrap().await.unwrap();
    assert_eq!(b.cameras.len(), 2);
    assert_eq!(fake.logins(), 2);
    let bootstraps: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/bootstrap"))
        .map(|r| r.cookie.unwrap())
        .collect();
    assert_eq!(
        bootstraps,
        [
            "TOKEN=fake-session-1",
            "TOKEN=fake-session-1",
            "TOKEN=fake-session-2"
        ],
        "the refused request is repeated once with the new session"
    );
    // Clones share the session; a snapshot after another expiry renews it too.
    fake.expire_sessions();
    c.clone()
        .snapshot(fake_protect::FRONT_DOOR_ID)
        .await
        .unwrap();
    assert_eq!(fake.logins(), 3);
}

#[tokio::test]
async fn concurrent_calls_after_an_expiry_share_one_login() {
    let fake = FakeProtect::start().await;
    let c = client(&fake);
    c.login().await.unwrap();
    fake.expire_sessions();
    let (a, b) = tokio::join!(c.bootstrap(), c.snapshot(fake_protect::DRIVEWAY_ID));
    a.unwrap();
    b.unwrap();
    assert_eq!(fake.logins(), 2);
}

#[tokio::test]
async fn updates_yield_detections_and_skip_malformed_packets() {
    let fake = FakeProtect::start().await;
    let c = client(&fake);
    let b = c.bootstrap().await.unwrap();
    let mut stream = c.updates(b.last_update_id.as_deref()).await.unwrap();
    fake.wait_sockets(1).await;
    assert_eq!(
        fake.socket_update_ids(),
        [Some(fake_protect::BOOTSTRAP_UPDATE_ID.to_string())]
    );
    let mut mapper = EventMapper::new();

    // A person, plain JSON.
    fake.push(
        "add",
        "event",
        "ev-person-1",
        "upd-1",
        json!({"id": "ev-person-1", "type": "smartDetectZone", "camera": fake_protect::DRIVEWAY_ID,
               "start": 1_714_000_001_000i64, "end": null, "smartDetectTypes": ["person"], "score": 88}),
        false,
    );
    let msg = next(&mut stream).await.unwrap();
    assert_eq!(msg.action.model_key, "event");
    let d = mapper.map(&msg).unwrap();
    assert_eq!(d.event_id, "ev-person-1");
    assert_eq!(d.camera_id, fake_protect::DRIVEWAY_ID);
    assert_eq!(d.kind, DetectionKind::Smart(vec!["person".into()]));
    assert_eq!(d.start_ms, Some(1_714_000_001_000));
    assert_eq!(stream.last_update_id(), Some("upd-1"));

    // A malformed packet (a truncated frame), then a zlib garbage one: skipped.
    let mut truncated = argus::protect::packet::encode(
        &argus::protect::Action {
            action: "add".into(),
            new_update_id: Some("upd-x".into()),
            model_key: "event".into(),
            id: "x".into(),
        },
        &Payload::Json(json!({"type": "ring"})),
        false,
    );
    truncated.truncate(truncated.len() - 3);
    fake.push_raw(truncated);
    fake.push_raw(vec![1, 1, 1, 0, 0, 0, 0, 4, 0xde, 0xad, 0xbe, 0xef]);
    // A camera update (another model) and an unknown action arrive; the first is passed on.
    fake.push(
        "update",
        "camera",
        fake_protect::DRIVEWAY_ID,
        "upd-2",
        json!({"isMotionDetected": true}),
        false,
    );
    fake.push("sync", "event", "e", "upd-3", json!({}), false);

    // The end of the person event: passed on, but no new detection.
    fake.push(
        "update",
        "event",
        "ev-person-1",
        "upd-4",
        json!({"end": 1_714_000_009_000i64}),
        true,
    );

    // A ring, zlib-compressed.
    fake.push(
        "add",
        "event",
        "ev-ring-1",
        "upd-5",
        json!({"type": "ring", "camera": fake_protect::FRONT_DOOR_ID, "start": 1_714_000_010_000i64}),
        true,
    );

    let camera = next(&mut stream).await.unwrap();
    assert_eq!(camera.action.model_key, "camera");
    assert_eq!(mapper.map(&camera), None);
    let end = next(&mut stream).await.unwrap();
    assert_eq!(end.action.action, "update");
    assert_eq!(mapper.map(&end), None);
    let ring = next(&mut stream).await.unwrap();
    let d = mapper.map(&ring).unwrap();
    assert_eq!(d.kind, DetectionKind::Ring);
    assert_eq!(d.camera_id, fake_protect::FRONT_DOOR_ID);
    assert_eq!(stream.last_update_id(), Some("upd-5"));
}

#[tokio::test]
async fn a_dropped_socket_ends_the_stream_and_a_reconnect_resumes() {
    let fake = FakeProtect::start().await;
    let c = client(&fake);
    let b = c.bootstrap().await.unwrap();
    let mut stream = c.updates(b.last_update_id.as_deref()).await.unwrap();
    fake.wait_sockets(1).await;
    fake.push(
        "add",
        "event",
        "ev-motion-1",
        "upd-7",
        json!({"type": "motion", "camera": fake_protect::DRIVEWAY_ID, "start": 1}),
        false,
    );
    let msg = next(&mut stream).await.unwrap();
    assert_eq!(
        argus::protect::detection_from(&msg).unwrap().kind,
        DetectionKind::Motion
    );

    fake.drop_sockets();
    assert!(
        next(&mut stream).await.is_none(),
        "the stream ends with the socket"
    );
    assert!(stream.end_reason().is_some());
    assert!(next(&mut stream).await.is_none(), "and stays ended");

    // Reconnect from where the stream stopped, with an expired session on top: the client
    // logs in again before the socket opens.
    fake.expire_sessions();
    let resume = stream.last_update_id().map(str::to_string);
    assert_eq!(resume.as_deref(), Some("upd-7"));
    let mut again = c.updates(resume.as_deref()).await.unwrap();
    fake.wait_sockets(2).await;
    assert_eq!(
        fake.socket_update_ids(),
        [
            Some(fake_protect::BOOTSTRAP_UPDATE_ID.to_string()),
            Some("upd-7".to_string())
        ]
    );
    assert_eq!(fake.logins(), 2);
    fake.push(
        "add",
        "event",
        "ev-person-2",
        "upd-8",
        json!({"type": "smartDetectLine", "camera": fake_protect::DRIVEWAY_ID, "smartDetectTypes": ["vehicle"]}),
        true,
    );
    let msg = next(&mut again).await.unwrap();
    assert_eq!(
        argus::protect::detection_from(&msg).unwrap().kind,
        DetectionKind::Smart(vec!["vehicle".into()])
    );
    again.close().await;
}

/// `POST /protect/controllers/test` through the appliance's API against the fake console.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_test_endpoint_connects_and_says_clearly_what_is_wrong() {
    use crate::support::{assert_error, TestApp};
    use serde_json::json;
    let fake = crate::fake_protect::FakeProtect::start().await;
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    let port = fake.addr.port();
    let body = |password: &str, verify: bool| {
        json!({"host": "127.0.0.1", "port": port, "username": crate::fake_protect::USERNAME,
               "password": password, "verify_ssl": verify})
    };
    let (s, v) = app
        .post(
            "/api/v1/protect/controllers/test",
            &admin,
            body(crate::fake_protect::PASSWORD, false),
        )
        .await;
    assert_eq!(s, reqwest::StatusCode::OK, "{v}");
    assert_eq!(v["success"], json!(true));
    assert_eq!(v["camera_count"], json!(2));
    assert!(v["message"]
        .as_str()
        .unwrap()
        .contains(crate::fake_protect::NVR_NAME));
    assert!(v["firmware_version"].is_string(), "{v}");
    let (s, v) = app
        .post(
            "/api/v1/protect/controllers/test",
            &admin,
            body("wrong-password", false),
        )
        .await;
    assert_error(s, &v, 422, "username or password");
    assert!(!v.to_string().contains("wrong-password"));
    let (s, v) = app
        .post(
            "/api/v1/protect/controllers/test",
            &admin,
            body(crate::fake_protect::PASSWORD, true),
        )
        .await;
    assert_error(s, &v, 422, "verify_ssl");
    let (s, v) = app
        .post(
            "/api/v1/protect/controllers/test",
            &admin,
            json!({"host": "127.0.0.1", "port": 1, "username": "u", "password": "p"}),
        )
        .await;
    assert_error(s, &v, 502, "cannot be reached");
    let (s, v) = app
        .post(
            "/api/v1/protect/controllers/test",
            &admin,
            json!({"host": "", "username": "u", "password": "p"}),
        )
        .await;
    assert_error(s, &v, 422, "host");
}
