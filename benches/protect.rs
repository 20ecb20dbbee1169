//! UniFi Protect latency benchmark: how long from the console sending a detection to the
//! appliance's `/ws` clients hearing of it, through the whole real path (update socket,
//! packet decoding, event mapping, filter, dedupe, snapshot fetch and scaling, event storage in
//! SQLite with its thumbnail, WebSocket fan-out). The console is the tests' fake
//! (`tests/it/fake_protect.rs`: HTTPS on loopback, a 640x424 JPEG snapshot); the appliance is
//! the real server.
//!
//!     cargo bench --bench protect [-- ROUNDS]      (default 50)
//!
//! Reported: a ring until `doorbell.ring` (sent before the snapshot is fetched), a ring until
//! its `event.created`, and a person smart detection until `event.created`; median, p95 and max.

#[path = "../tests/it/fake_protect.rs"]
mod fake_protect;
mod latency;
#[allow(dead_code)]
#[path = "../tests/it/support.rs"]
mod support;

use fake_protect::{FakeProtect, DRIVEWAY_ID, FRONT_DOOR_ID, PASSWORD, USERNAME};
use serde_json::json;
use std::time::Instant;
use support::TestApp;

fn main() {
    let rounds = latency::rounds(50);
    latency::runtime().block_on(async move {
        let fake = FakeProtect::start().await;
        let app = TestApp::start().await;
        let admin = app.admin_token().await;
        let (s, c) = app
            .post(
                "/api/v1/protect/controllers",
                &admin,
                json!({"name": "bench", "host": "127.0.0.1", "port": fake.addr.port(),
                       "username": USERNAME, "password": PASSWORD}),
            )
            .await;
        assert_eq!(s.as_u16(), 201, "{c}");
        let ctrl = c["id"].as_str().unwrap().to_string();
        fake.wait_sockets(1).await;
        for (pid, types) in [
            (DRIVEWAY_ID, json!(["person"])),
            (FRONT_DOOR_ID, json!(["ring"])),
        ] {
            let (s, v) = app
                .post(
                    &format!("/api/v1/protect/controllers/{ctrl}/cameras/{pid}/enable"),
                    &admin,
                    json!({"smart_detection_types": types}),
                )
                .await;
            assert_eq!(s.as_u16(), 201, "{v}");
            let (s, v) = app
                .put(
                    &format!("/api/v1/cameras/{}", v["camera_id"].as_str().unwrap()),
                    &admin,
                    json!({"motion_cooldown": 0}),
                )
                .await;
            assert_eq!(s.as_u16(), 200, "{v}");
        }
        let (mut ws, _) =
            tokio_tungstenite::connect_async(format!("ws://{}/ws?token={admin}", app.addr))
                .await
                .unwrap();
        let (mut ring_msg, mut ring_event, mut person_event) = (vec![], vec![], vec![]);
        for i in 0..rounds {
            let id = format!("bench-ring-{i}");
            let sent = Instant::now();
            fake.push(
                "add",
                "event",
                &id,
                &format!("u-r{i}"),
                json!({"id": id, "type": "ring", "camera": FRONT_DOOR_ID, "start": 1_714_000_000_000i64}),
                false,
            );
            let rang = latency::ws_message(&mut ws, |m| m["type"] == json!("doorbell.ring")).await;
            let stored = latency::ws_message(&mut ws, |m| m["type"] == json!("event.created")).await;
            ring_msg.push(rang - sent);
            ring_event.push(stored - sent);

            let id = format!("bench-person-{i}");
            let sent = Instant::now();
            fake.push(
                "add",
                "event",
                &id,
                &format!("u-p{i}"),
                json!({"id": id, "type": "smartDetectZone", "camera": DRIVEWAY_ID,
                       "start": 1_714_000_000_000i64, "smartDetectTypes": ["person"], "score": 90}),
                true,
            );
            let stored = latency::ws_message(&mut ws, |m| m["type"] == json!("event.created")).await;
            person_event.push(stored - sent);
        }
        latency::summary("ring -> doorbell.ring", ring_msg, 95);
        latency::summary("ring -> event.created", ring_event, 95);
        latency::summary("person detection -> event.created", person_event, 95);
        app.stop().await;
    });
}
