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
#[allow(dead_code)]
#[path = "../tests/it/support.rs"]
mod support;

use fake_protect::{FakeProtect, DRIVEWAY_ID, FRONT_DOOR_ID, PASSWORD, USERNAME};
use futures_util::StreamExt;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use support::TestApp;
use tokio_tungstenite::tungstenite::Message;

async fn wait_for(
    ws: &mut (impl futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>>
              + Unpin),
    pick: impl Fn(&Value) -> bool,
) -> Instant {
    loop {
        let next = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a message within 10 s");
        if let Some(Ok(Message::Text(t))) = next {
            let m: Value = serde_json::from_str(t.as_str()).unwrap();
            if pick(&m) {
                return Instant::now();
            }
        }
    }
}

fn summary(name: &str, mut v: Vec<Duration>) {
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let p95 = v[((v.len() as f64 * 0.95).ceil() as usize).clamp(1, v.len()) - 1];
    println!(
        "{name:<36} median {:7.2} ms   p95 {:7.2} ms   max {:7.2} ms   ({} rounds)",
        ms(v[v.len() / 2]),
        ms(p95),
        ms(*v.last().unwrap()),
        v.len()
    );
}

fn main() {
    let rounds: usize = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .and_then(|a| a.parse().ok())
        .unwrap_or(50);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
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
            let rang = wait_for(&mut ws, |m| m["type"] == json!("doorbell.ring")).await;
            let stored = wait_for(&mut ws, |m| m["type"] == json!("event.created")).await;
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
            let stored = wait_for(&mut ws, |m| m["type"] == json!("event.created")).await;
            person_event.push(stored - sent);
        }
        summary("ring -> doorbell.ring", ring_msg);
        summary("ring -> event.created", ring_event);
        summary("person detection -> event.created", person_event);
        app.stop().await;
    });
}
