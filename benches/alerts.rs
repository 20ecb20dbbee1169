//! Alert latency benchmark: from an event's `event.created` on `/ws` to the alert rule's
//! `notification.new` on the same socket, and to its webhook arriving at a receiver on
//! loopback, through the whole real path (the stream, the alert engine with its SQLite
//! transaction, the outbox, the dispatcher, HMAC signing, an HTTP POST). Events come in through
//! `POST /api/v1/events` one at a time, with a snapshot.
//!
//!     cargo bench --bench alerts [-- ROUNDS]      (default 100)
//!
//! Reported: median, p99 and max of each.

mod latency;
#[allow(dead_code)]
#[path = "../tests/it/support.rs"]
mod support;
#[allow(dead_code)]
#[path = "../tests/it/webhook_receiver.rs"]
mod webhook_receiver;

use futures_util::StreamExt;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use support::{TestApp, TINY_JPEG_B64};
use tokio_tungstenite::tungstenite::Message;
use webhook_receiver::Receiver;

fn main() {
    let rounds = latency::rounds(100);
    latency::runtime().block_on(async move {
        let hook = Receiver::start().await;
        let app = TestApp::start().await;
        let admin = app.admin_token().await;
        let cam = app.camera(&admin, "Door").await;
        let (s, r) = app
            .post(
                "/api/v1/alert-rules",
                &admin,
                json!({"name": "Door", "conditions": {"object_types": ["person"]},
                       "actions": {"webhook": {"url": hook.url}}, "cooldown_minutes": 0}),
            )
            .await;
        assert_eq!(s.as_u16(), 201, "{r}");
        let (mut ws, _) =
            tokio_tungstenite::connect_async(format!("ws://{}/ws?token={admin}", app.addr))
                .await
                .unwrap();
        let mut to_notice = Vec::new();
        let mut to_webhook = Vec::new();
        for i in 0..rounds + 5 {
            let before = hook.hits().len();
            app.event(
                &admin,
                json!({"camera_id": cam, "detection_type": "person", "confidence": 90,
                       "description": "A person.", "thumbnail_base64": TINY_JPEG_B64}),
            )
            .await;
            let mut seen: HashMap<&str, Instant> = HashMap::new();
            while seen.len() < 2 {
                let next = tokio::time::timeout(Duration::from_secs(10), ws.next())
                    .await
                    .expect("a message within 10 s");
                if let Some(Ok(Message::Text(t))) = next {
                    let m: Value = serde_json::from_str(t.as_str()).unwrap();
                    match m["type"].as_str() {
                        Some("event.created") => {
                            seen.insert("created", Instant::now());
                        }
                        Some("notification.new") => {
                            seen.insert("notice", Instant::now());
                        }
                        _ => {}
                    }
                }
            }
            let hit = hook.wait(before + 1, 10).await[before].at;
            // The first rounds warm the connections and caches.
            if i >= 5 {
                to_notice.push(seen["notice"] - seen["created"]);
                to_webhook.push(hit.saturating_duration_since(seen["created"]));
            }
        }
        latency::summary("event.created -> notification.new", to_notice, 99);
        latency::summary("event.created -> webhook received", to_webhook, 99);
    });
}
