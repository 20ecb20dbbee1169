//! Alert rules, in-app notifications, signed webhooks and signed media links, end to end: a real
//! HTTP receiver on loopback gets the webhooks (its signatures are checked here with ring, not
//! with the appliance's code), `/ws` carries `notification.new`, and a kill -9 with deliveries
//! pending is followed by exactly one delivery after the restart.

use crate::fake_ai::FakeAi;
use crate::support::*;
use crate::webhook_receiver::{Hit, Receiver};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;

/// Checks `X-Argus-Signature: t=<ts>,v1=<hex>` against HMAC-SHA256(secret, "<ts>.<body>").
fn signed_by(hit: &Hit, secret: &str) -> bool {
    let header = hit.header("x-argus-signature");
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", x)) => t = Some(x.to_string()),
            Some(("v1", x)) => v1 = Some(x.to_string()),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else {
        return false;
    };
    if t != hit.header("x-argus-timestamp") {
        return false;
    }
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let mut msg = format!("{t}.").into_bytes();
    msg.extend_from_slice(&hit.raw);
    let want: String = ring::hmac::sign(&key, &msg)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    want == v1
}

async fn rule(app: &TestApp, admin: &str, body: Value) -> Value {
    let (s, v) = app.post("/api/v1/alert-rules", admin, body).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    v
}

async fn notifications(app: &TestApp, auth: &str) -> Value {
    let (s, v) = app.get("/api/v1/notifications?limit=100", auth).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v
}

/// A real photo (the cloud AI fake decodes what it is sent), base64.
fn photo_b64() -> String {
    let jpeg = std::fs::read(format!(
        "{}/tests/data/images/person.jpg",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    base64::Engine::encode(&base64::engine::general_purpose::STANDARD, jpeg)
}

/// Points the cloud describer at the fake and re-describes an event (its description arrives
/// as an update).
async fn describe_again(app: &TestApp, admin: &str, fake: &FakeAi, event: &Value) {
    let (s, v) = app
        .put(
            "/api/v1/system/settings",
            admin,
            json!({"ai_provider_order": ["openai"], "ai_providers": {"openai": {"api_key": "sk-test-key-1234", "base_url": fake.base("openai")}}}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = app
        .post(
            &format!("/api/v1/events/{}/reanalyse", event["id"].as_str().unwrap()),
            admin,
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
}

fn person(cam: &str) -> Value {
    json!({"camera_id": cam, "detection_type": "person", "confidence": 90,
           "objects_detected": ["person"], "description": "A person at the door.",
           "thumbnail_base64": TINY_JPEG_B64})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_fires_its_rule_with_a_notification_a_ws_message_and_a_signed_webhook() {
    let hook = Receiver::start().await;
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    let cam = app.camera(&admin, "Front door").await;
    let other = app.camera(&admin, "Garage").await;
    let (mut live, _) =
        tokio_tungstenite::connect_async(format!("ws://{}/ws?token={admin}", app.addr))
            .await
            .unwrap();

    let door = rule(
        &app,
        &admin,
        json!({"name": "Person at the door", "conditions": {"object_types": ["person"], "cameras": [cam]},
               "actions": {"dashboard_notification": true,
                           "webhook": {"url": hook.url, "headers": {"Authorization": "Bearer ha-token"}}},
               "cooldown_minutes": 1}),
    )
    .await;
    let secret = door["webhook_secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("whsec_"), "{door}");
    // Header values are sealed and never shown again; neither is the secret.
    assert_eq!(
        door["actions"]["webhook"]["headers"]["Authorization"],
        json!("********")
    );
    let (_, again) = app
        .get(
            &format!("/api/v1/alert-rules/{}", door["id"].as_str().unwrap()),
            &admin,
        )
        .await;
    assert!(
        again.get("webhook_secret").is_none() && !again.to_string().contains("ha-token"),
        "{again}"
    );
    let vehicle = rule(
        &app,
        &admin,
        json!({"name": "Vehicle", "conditions": {"object_types": ["vehicle"]},
               "actions": {"webhook": {"url": hook.url}}}),
    )
    .await;

    // A person on the door camera: the door rule fires, the vehicle rule stays quiet.
    let e = app.event(&admin, person(&cam)).await;
    let hits = hook.wait(1, 10).await;
    let h = &hits[0];
    assert!(signed_by(h, &secret), "bad signature: {:?}", h.headers);
    assert_eq!(h.header("authorization"), "Bearer ha-token");
    assert!(!h.header("x-argus-delivery").is_empty());
    assert_eq!(h.body["type"], json!("alert"));
    assert_eq!(h.body["event_id"], e["id"]);
    assert_eq!(h.body["camera"], json!({"id": cam, "name": "Front door"}));
    assert_eq!(
        h.body["rule"],
        json!({"id": door["id"], "name": "Person at the door"})
    );
    assert_eq!(h.body["detection_type"], json!("person"));
    assert_eq!(h.body["objects_detected"], json!(["person"]));
    assert_eq!(h.body["confidence"], json!(90));
    let n = next_matching(&mut live, 10, |m| m["type"] == json!("notification.new")).await;
    assert_eq!(n["data"]["rule_id"], door["id"]);
    assert_eq!(n["data"]["event_id"], e["id"]);

    // The webhook's thumbnail link works without an API key, as an absolute URL.
    let link = h.body["thumbnail_url"].as_str().unwrap().to_string();
    assert!(
        link.starts_with(&format!("http://{}/api/v1/events/", app.addr)),
        "{link}"
    );
    let plain = reqwest::Client::new();
    let r = plain.get(&link).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "image/jpeg");
    // Tampered, for another event, or without a signature: refused.
    let tampered = format!("{}A", &link[..link.len() - 1]);
    let tampered = if tampered == link {
        format!("{}B", &link[..link.len() - 1])
    } else {
        tampered
    };
    let r = plain.get(&tampered).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["status_code"], json!(403), "{body}");
    let e2 = app.event(&admin, person(&other)).await;
    let foreign = link.replace(e["id"].as_str().unwrap(), e2["id"].as_str().unwrap());
    assert_eq!(
        plain.get(&foreign).send().await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    let bare = link.split('?').next().unwrap();
    assert_eq!(
        plain.get(bare).send().await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    // The ordinary authenticated thumbnail still works.
    let (s, _, _) = app
        .call(
            reqwest::Method::GET,
            &format!("/api/v1/events/{}/thumbnail", e["id"].as_str().unwrap()),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);

    // Within the cooldown: nothing; after it, the rule fires again.
    app.event(&admin, person(&cam)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(hook.hits().len(), 1, "the cooldown holds");
    app.clock.advance_ms(61_000);
    let e3 = app.event(&admin, person(&cam)).await;
    let hits = hook.wait(2, 10).await;
    assert_eq!(hits[1].body["event_id"], e3["id"]);
    assert!(
        hits.iter().all(|h| h.body["rule"]["id"] == door["id"]),
        "the vehicle rule fired"
    );

    // Notifications: two, unread, for the door rule, with a signed thumbnail link.
    let list = notifications(&app, &admin).await;
    assert_eq!(list["total_count"], json!(2), "{list}");
    assert_eq!(list["unread_count"], json!(2));
    let first = &list["data"][0];
    assert_eq!(first["event_id"], e3["id"]);
    assert_eq!(first["rule_name"], json!("Person at the door"));
    assert_eq!(first["read"], json!(false));
    assert_eq!(first["event_description"], json!("A person at the door."));
    let thumb = first["thumbnail_url"].as_str().unwrap();
    assert_eq!(
        plain.get(thumb).send().await.unwrap().status(),
        StatusCode::OK
    );
    // A read:events key sees them and marks them read; it cannot touch the rules.
    let (_, reader) = app.api_key(&admin, &["read:events"], None).await;
    let (s, v) = app.get("/api/v1/alert-rules", &reader).await;
    assert_error(s, &v, 403, "admin");
    let nid = first["id"].as_str().unwrap();
    let (s, _, v) = app
        .call(
            reqwest::Method::PATCH,
            &format!("/api/v1/notifications/{nid}/read"),
            Some(&reader),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["read"], json!(true));
    let list = notifications(&app, &reader).await;
    assert_eq!(list["unread_count"], json!(1));
    let (_, unread) = app.get("/api/v1/notifications?read=false", &reader).await;
    assert_eq!(unread["total_count"], json!(1));
    let (s, _, v) = app
        .call(
            reqwest::Method::PATCH,
            "/api/v1/notifications/mark-all-read",
            Some(&reader),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v, json!({"success": true, "updated_count": 1}));
    let (s, v) = app.get("/api/v1/notifications?limit=101", &reader).await;
    assert_error(s, &v, 422, "limit");

    // The delivery log and its CSV.
    let (s, logs) = app
        .get(
            &format!(
                "/api/v1/webhooks/logs?rule_id={}",
                door["id"].as_str().unwrap()
            ),
            &admin,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{logs}");
    assert_eq!(logs["total_count"], json!(2), "{logs}");
    assert!(logs["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|l| l["success"] == json!(true) && l["status_code"] == json!(200)));
    let csv = reqwest::Client::new()
        .get(app.url("/api/v1/webhooks/logs/export"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(csv.lines().count(), 3, "{csv}");
    assert!(csv.starts_with("id,created_at,alert_rule_id"));

    // The dry run: the three door events match, the garage one does not.
    let (s, t) = app
        .post(
            &format!("/api/v1/alert-rules/{}/test", door["id"].as_str().unwrap()),
            &admin,
            json!({"limit": 10}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{t}");
    assert_eq!(t["events_tested"], json!(4));
    assert_eq!(t["events_matched"], json!(3));
    let (_, t) = app
        .post(
            &format!(
                "/api/v1/alert-rules/{}/test",
                vehicle["id"].as_str().unwrap()
            ),
            &admin,
            json!({}),
        )
        .await;
    assert_eq!(t["events_matched"], json!(0), "{t}");

    // Deleting notifications: the read ones, then all; deleting the event removes its own.
    let (s, _, v) = app
        .call(
            reqwest::Method::DELETE,
            "/api/v1/notifications?read_only=true",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["deleted_count"], json!(2));
    app.clock.advance_ms(61_000);
    let e4 = app.event(&admin, person(&cam)).await;
    hook.wait(3, 10).await;
    assert_eq!(notifications(&app, &admin).await["total_count"], json!(1));
    let (s, _) = app
        .delete(
            &format!("/api/v1/events/{}", e4["id"].as_str().unwrap()),
            &admin,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(
        notifications(&app, &admin).await["total_count"],
        json!(0),
        "pruned with its event"
    );

    // An expired link is refused.
    app.clock.advance_ms(25 * 3_600_000);
    assert_eq!(
        plain.get(&link).send().await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
}

/// Unix ms of a local wall-clock time `minutes` after the local midnight that began yesterday.
fn yesterday_at(now_ms: i64, minutes: i64) -> i64 {
    let (_, minute) = argus::clock::local_parts(now_ms);
    let midnight = now_ms - now_ms.rem_euclid(60_000) - minute as i64 * 60_000;
    midnight - 86_400_000 + minutes * 60_000
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overnight_windows_days_and_description_words() {
    let fake = FakeAi::answering(
        r#"{"description": "A courier leaves a package on the step.", "objects": ["person", "package"], "confidence": 80, "threat_level": "none"}"#,
    )
    .await;
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    let cam = app.camera(&admin, "Porch").await;
    let night = rule(
        &app,
        &admin,
        json!({"name": "Night", "conditions": {"time_of_day": {"start": "22:00", "end": "06:00"}}, "cooldown_minutes": 0}),
    )
    .await;
    let words = rule(
        &app,
        &admin,
        json!({"name": "Red car", "conditions": {"description_contains": ["red car"]}, "cooldown_minutes": 0}),
    )
    .await;
    let parcel = rule(
        &app,
        &admin,
        json!({"name": "Parcel", "conditions": {"description_contains": ["PACKAGE"]}, "cooldown_minutes": 0}),
    )
    .await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let at = |minutes: i64, description: &str| {
        json!({"camera_id": cam, "detection_type": "vehicle", "confidence": 70,
               "timestamp": argus::clock::format_rfc3339(yesterday_at(now, minutes)),
               "description": description, "thumbnail_base64": TINY_JPEG_B64})
    };
    let late = app
        .event(&admin, at(23 * 60 + 30, "A red car parks."))
        .await;
    let early = app
        .event(&admin, at(24 * 60 + 2 * 60, "A red carpet is rolled out."))
        .await;
    let mut photo = at(12 * 60, "Nothing much.");
    photo["thumbnail_base64"] = json!(photo_b64());
    let noon = app.event(&admin, photo).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let fired = |list: &Value, rule: &Value| -> Vec<Value> {
        list["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|n| n["rule_id"] == rule["id"])
            .map(|n| n["event_id"].clone())
            .collect()
    };
    loop {
        let list = notifications(&app, &admin).await;
        if list["total_count"].as_u64() >= Some(3) || tokio::time::Instant::now() > deadline {
            let mut n = fired(&list, &night);
            n.sort_by_key(|v| v.to_string());
            let mut want = vec![late["id"].clone(), early["id"].clone()];
            want.sort_by_key(|v| v.to_string());
            assert_eq!(
                n, want,
                "22:00-06:00 takes 23:30 and 02:00, not 12:00: {list}"
            );
            assert_eq!(
                fired(&list, &words),
                vec![late["id"].clone()],
                "whole words: {list}"
            );
            assert!(fired(&list, &parcel).is_empty());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = noon;

    // The description comes later (a re-analysis): the word rule fires then.
    describe_again(&app, &admin, &fake, &noon).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let list = notifications(&app, &admin).await;
        let p = fired(&list, &parcel);
        if !p.is_empty() {
            assert_eq!(p, vec![noon["id"].clone()], "{list}");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the word rule never fired on the description: {list}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Days: a rule for yesterday's weekday takes yesterday's noon, one for another day does not.
    let (weekday, _) = argus::clock::local_parts(yesterday_at(now, 12 * 60));
    let other = weekday % 7 + 1;
    let today_rule = rule(
        &app,
        &admin,
        json!({"name": "Yesterday", "conditions": {"days_of_week": [weekday]}}),
    )
    .await;
    let other_rule = rule(
        &app,
        &admin,
        json!({"name": "Other", "conditions": {"days_of_week": [other]}}),
    )
    .await;
    let (_, t) = app
        .post(
            &format!(
                "/api/v1/alert-rules/{}/test",
                today_rule["id"].as_str().unwrap()
            ),
            &admin,
            json!({}),
        )
        .await;
    assert!(
        t["matching_event_ids"]
            .as_array()
            .unwrap()
            .contains(&noon["id"]),
        "{t}"
    );
    let (_, t) = app
        .post(
            &format!(
                "/api/v1/alert-rules/{}/test",
                other_rule["id"].as_str().unwrap()
            ),
            &admin,
            json!({}),
        )
        .await;
    assert!(
        !t["matching_event_ids"]
            .as_array()
            .unwrap()
            .contains(&noon["id"]),
        "{t}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_receiver_is_retried_logged_and_never_blocks_events() {
    let hook = Receiver::start().await;
    hook.script.lock().unwrap().extend([500, 503]);
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    let cam = app.camera(&admin, "Drive").await;
    let r = rule(
        &app,
        &admin,
        json!({"name": "Any", "actions": {"webhook": {"url": hook.url}}}),
    )
    .await;
    let e = app.event(&admin, person(&cam)).await;
    // 500, then 503 after 1 s, then 200 after 2 s more.
    let hits = hook.wait(3, 15).await;
    assert_eq!(
        hits.iter().map(|h| h.answered).collect::<Vec<_>>(),
        vec![500, 503, 200]
    );
    let ids: Vec<&str> = hits.iter().map(|h| h.header("x-argus-delivery")).collect();
    assert!(
        ids.iter().all(|i| *i == ids[0]),
        "one delivery, retried: {ids:?}"
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let logs = loop {
        let (_, logs) = app
            .get(
                &format!(
                    "/api/v1/webhooks/logs?rule_id={}",
                    r["id"].as_str().unwrap()
                ),
                &admin,
            )
            .await;
        if logs["total_count"] == json!(3) || tokio::time::Instant::now() > deadline {
            break logs;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let rows = logs["data"].as_array().unwrap();
    assert_eq!(rows.len(), 3, "{logs}");
    // Newest first.
    assert_eq!(rows[0]["success"], json!(true));
    assert_eq!(rows[0]["retry_count"], json!(2));
    assert_eq!(rows[2]["status_code"], json!(500));
    assert_eq!(rows[2]["retry_count"], json!(0));
    assert!(rows[2]["error_message"].as_str().unwrap().contains("500"));
    let (_, failed) = app.get("/api/v1/webhooks/logs?success=false", &admin).await;
    assert_eq!(failed["total_count"], json!(2));
    assert_eq!(e["detection_type"], json!("person"));

    // A receiver that refuses connections: every attempt fails, the events are all stored.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}/hook", closed.local_addr().unwrap());
    drop(closed);
    let gone = rule(
        &app,
        &admin,
        json!({"name": "Gone", "actions": {"webhook": {"url": dead}}, "cooldown_minutes": 0}),
    )
    .await;
    for _ in 0..3 {
        app.event(&admin, person(&cam)).await;
    }
    let (_, page) = app
        .get(&format!("/api/v1/events?camera_id={cam}"), &admin)
        .await;
    assert_eq!(page["total"], json!(4));
    // They wait in the outbox between their attempts (7 s of backoff in all).
    let (_, h) = app.get("/api/v1/system/health", &admin).await;
    assert!(h["webhooks_pending"].as_u64() >= Some(1), "{h}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (_, logs) = app
            .get(
                &format!(
                    "/api/v1/webhooks/logs?rule_id={}&limit=200",
                    gone["id"].as_str().unwrap()
                ),
                &admin,
            )
            .await;
        // 3 deliveries of 4 attempts each.
        if logs["total_count"] == json!(12) {
            // Given up: out of the outbox.
            tokio::time::sleep(Duration::from_millis(200)).await;
            let (_, h) = app.get("/api/v1/system/health", &admin).await;
            assert_eq!(h["webhooks_pending"], json!(0), "{h}");
            assert!(
                logs["data"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .all(|l| l["success"] == json!(false)
                        && l["error_message"].as_str().unwrap().contains("connect")),
                "{logs}"
            );
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{logs}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // POST /webhooks/test reports what the receiver said.
    hook.script.lock().unwrap().push_back(418);
    let (s, v) = app
        .post(
            "/api/v1/webhooks/test",
            &admin,
            json!({"url": hook.url, "payload": {"hello": "there"}}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["success"], json!(false));
    assert_eq!(v["status_code"], json!(418));
    assert_eq!(v["response_body"], json!("thanks"));
    assert!(v["response_time_ms"].is_u64());
    assert_eq!(hook.hits().last().unwrap().body, json!({"hello": "there"}));
    let (s, v) = app
        .post("/api/v1/webhooks/test", &admin, json!({"url": dead}))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["success"], json!(false));
    assert!(v["error"].as_str().unwrap().contains("connect"), "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_rules_and_webhook_targets_are_422_and_change_nothing() {
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    let cam = app.camera(&admin, "Yard").await;
    let cases = [
        (json!({"name": ""}), "name"),
        (
            json!({"name": "x", "cooldown_minutes": 1441}),
            "cooldown_minutes",
        ),
        (
            json!({"name": "x", "conditions": {"object_types": ["dragon"]}}),
            "conditions.object_types[0]",
        ),
        (
            json!({"name": "x", "conditions": {"cameras": ["00000000-0000-4000-8000-000000000000"]}}),
            "conditions.cameras[0]",
        ),
        (
            json!({"name": "x", "conditions": {"time_of_day": {"start": "25:00", "end": "06:00"}}}),
            "conditions.time_of_day.start",
        ),
        (
            json!({"name": "x", "conditions": {"days_of_week": [0]}}),
            "conditions.days_of_week",
        ),
        (
            json!({"name": "x", "conditions": {"min_confidence": 101}}),
            "min_confidence",
        ),
        (
            json!({"name": "x", "conditions": {"colour": "red"}}),
            "colour",
        ),
        (
            json!({"name": "x", "actions": {"webhook": {"url": "ftp://nas.local/x"}}}),
            "actions.webhook.url",
        ),
        (
            json!({"name": "x", "actions": {"webhook": {"url": "http://169.254.169.254/latest"}}}),
            "actions.webhook.url",
        ),
        (
            json!({"name": "x", "actions": {"webhook": {"url": "http://[fe80::1]/x"}}}),
            "actions.webhook.url",
        ),
        (
            json!({"name": "x", "actions": {"webhook": {"url": "http://224.0.0.1/x"}}}),
            "actions.webhook.url",
        ),
        (
            json!({"name": "x", "actions": {"webhook": {"url": "http://ha.local/x", "headers": {"X-A": "ok\r\nInjected: 1"}}}}),
            "actions.webhook.headers",
        ),
        (
            json!({"name": "x", "actions": {"webhook": {"url": "http://ha.local/x", "headers": {"Bad\r\nName": "v"}}}}),
            "actions.webhook.headers",
        ),
    ];
    for (body, field) in cases {
        let (s, v) = app.post("/api/v1/alert-rules", &admin, body.clone()).await;
        assert_error(s, &v, 422, field);
    }
    let (_, list) = app.get("/api/v1/alert-rules", &admin).await;
    assert_eq!(list["total_count"], json!(0), "nothing stored: {list}");

    // LAN targets are fine; an update with a bad target leaves the rule as it was.
    let r = rule(
        &app,
        &admin,
        json!({"name": "HA", "conditions": {"cameras": [cam]}, "actions": {"webhook": {"url": "http://192.168.1.20:8123/api/webhook/door"}}}),
    )
    .await;
    let path = format!("/api/v1/alert-rules/{}", r["id"].as_str().unwrap());
    let (s, v) = app
        .put(
            &path,
            &admin,
            json!({"name": "Renamed", "webhook": {"url": "http://169.254.1.1/"}}),
        )
        .await;
    assert_error(s, &v, 422, "actions.webhook.url");
    let (_, now) = app.get(&path, &admin).await;
    assert_eq!(now["name"], json!("HA"));
    assert_eq!(
        now["actions"]["webhook"]["url"],
        json!("http://192.168.1.20:8123/api/webhook/door")
    );
    // A partial update changes only what it names; `webhook: null` removes the webhook.
    let (s, v) = app
        .put(&path, &admin, json!({"is_enabled": false, "webhook": null}))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["is_enabled"], json!(false));
    assert!(v["actions"]["webhook"].is_null());
    assert_eq!(v["conditions"]["cameras"], json!([cam]));
    let (_, only) = app.get("/api/v1/alert-rules?is_enabled=true", &admin).await;
    assert_eq!(only["total_count"], json!(0));
    let (s, v) = app
        .post(
            "/api/v1/webhooks/test",
            &admin,
            json!({"url": "gopher://x"}),
        )
        .await;
    assert_error(s, &v, 422, "url");
    let (s, v) = app
        .get(
            "/api/v1/alert-rules/00000000-0000-4000-8000-000000000000",
            &admin,
        )
        .await;
    assert_error(s, &v, 404, "Alert rule");
    let (s, _) = app.delete(&path, &admin).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, v) = app.delete(&path, &admin).await;
    assert_error(s, &v, 404, "Alert rule");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_pending_at_a_kill_are_sent_once_after_the_restart() {
    // Set up a rule and a key in-process, then run the real binary on that data dir.
    let hook = Receiver::start().await;
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    let cam = app.camera(&admin, "Door").await;
    let (_, key) = app.api_key(&admin, &["admin"], None).await;
    rule(
        &app,
        &admin,
        json!({"name": "Door", "actions": {"webhook": {"url": hook.url}}, "cooldown_minutes": 0}),
    )
    .await;
    let dir = app.stop_keep_dir().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let spawn = || {
        argus_command()
            .args([
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--motion-only",
                "--data-dir",
            ])
            .arg(dir.path().join("data"))
            .arg("serve")
            .env_remove("ARGUS_CONFIG")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let client = reqwest::Client::new();
    let up = |client: reqwest::Client| async move {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while client
            .get(format!("http://127.0.0.1:{port}/api/v1/system/health"))
            .send()
            .await
            .is_err()
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the appliance did not start"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    // The receiver fails everything while the appliance runs the first time.
    hook.script.lock().unwrap().extend([500; 100]);
    let mut child = spawn();
    up(client.clone()).await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        let r = client
            .post(format!("http://127.0.0.1:{port}/api/v1/events"))
            .header("X-API-Key", &key)
            .json(&person(&cam))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        ids.push(r.json::<Value>().await.unwrap()["id"].clone());
    }
    // Each delivery was tried (and refused) once: kill -9 while they wait for their retry.
    let hits = hook.wait(3, 10).await;
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(hits.iter().all(|h| h.answered == 500));
    let tried = hook.hits().len();
    hook.script.lock().unwrap().clear();

    let mut child = spawn();
    up(client.clone()).await;
    let hits = hook.wait(tried + 3, 20).await;
    // A while longer: nothing more comes.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after: Vec<Hit> = hook.hits().into_iter().skip(tried).collect();
    let _ = hits;
    child.kill().unwrap();
    child.wait().unwrap();
    let ok: Vec<&Hit> = after.iter().filter(|h| h.answered == 200).collect();
    assert_eq!(
        ok.len(),
        3,
        "each pending delivery once: {:?}",
        after
            .iter()
            .map(|h| h.body["event_id"].clone())
            .collect::<Vec<_>>()
    );
    let mut got: Vec<Value> = ok.iter().map(|h| h.body["event_id"].clone()).collect();
    got.sort_by_key(|v| v.to_string());
    ids.sort_by_key(|v| v.to_string());
    assert_eq!(got, ids);
    let mut delivery: Vec<&str> = ok.iter().map(|h| h.header("x-argus-delivery")).collect();
    delivery.dedup();
    assert_eq!(delivery.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rule_sends_at_most_100_webhooks_a_minute_and_the_rest_follow() {
    let hook = Receiver::start().await;
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    let cam = app.camera(&admin, "Busy street").await;
    rule(
        &app,
        &admin,
        json!({"name": "Everything", "actions": {"dashboard_notification": false, "webhook": {"url": hook.url}},
               "cooldown_minutes": 0}),
    )
    .await;
    for _ in 0..105 {
        app.event(&admin, person(&cam)).await;
    }
    let hits = hook.wait(105, 30).await;
    // 100 at once, then one every 0.6 s: the 105th comes at least 3 s after the first.
    let span = hits[104].at.duration_since(hits[0].at);
    assert!(
        span >= Duration::from_millis(2900),
        "105 webhooks in {span:?}"
    );
    let mut events: Vec<Value> = hits.iter().map(|h| h.body["event_id"].clone()).collect();
    events.sort_by_key(|v| v.to_string());
    events.dedup();
    assert_eq!(events.len(), 105, "every event once");
    assert_eq!(
        notifications(&app, &admin).await["total_count"],
        json!(0),
        "no in-app notification asked for"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_description_that_comes_later_follows_the_webhook_as_an_update() {
    let fake = FakeAi::answering(
        r#"{"description": "A white van stops at the gate.", "objects": ["vehicle"], "confidence": 85, "threat_level": "none"}"#,
    )
    .await;
    let hook = Receiver::start().await;
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    let cam = app.camera(&admin, "Gate").await;
    let r = rule(
        &app,
        &admin,
        json!({"name": "Vehicles", "conditions": {"object_types": ["vehicle"]},
               "actions": {"webhook": {"url": hook.url}}}),
    )
    .await;
    let secret = r["webhook_secret"].as_str().unwrap().to_string();
    let e = app
        .event(
            &admin,
            json!({"camera_id": cam, "detection_type": "vehicle", "confidence": 80,
                   "description": "Something at the gate.",
                   "thumbnail_base64": photo_b64()}),
        )
        .await;
    let first = hook.wait(1, 10).await;
    assert_eq!(first[0].body["type"], json!("alert"));
    describe_again(&app, &admin, &fake, &e).await;
    let hits = hook.wait(2, 10).await;
    let update = &hits[1];
    assert_eq!(update.body["type"], json!("alert.updated"));
    assert_eq!(update.body["event_id"], e["id"]);
    assert_eq!(
        update.body["description"],
        json!("A white van stops at the gate.")
    );
    assert!(signed_by(update, &secret));
    assert_ne!(
        update.header("x-argus-delivery"),
        first[0].header("x-argus-delivery")
    );
    // The rule fired once: one notification.
    assert_eq!(notifications(&app, &admin).await["total_count"], json!(1));
}
