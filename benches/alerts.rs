//! Alert latency benchmark: from an event's `event.created` on `/ws` to the alert rule's
//! `notification.new` on the same socket, and to its webhook arriving at a receiver on
//! loopback, through the whole real path (the stream, the alert engine with its SQLite
//! transaction, the outbox, the dispatcher, HMAC signing, an HTTP POST). Events come in through
//! `POST /api/v1/events` one at a time, with a snapshot.
//!
//!     cargo bench --bench alerts [-- ROUNDS]      (default 100)
//!
//! Reported: median, p99 and max of each.

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

fn summary(name: &str, mut v: Vec<Duration>) {
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let p99 = v[((v.len() as f64 * 0.99).ceil() as usize).clamp(1, v.len()) - 1];
    println!(
        "{name:<40} median {:7.2} ms   p99 {:7.2} ms   max {:7.2} ms   ({} rounds)",
        ms(v[v.len() / 2]),
        ms(p99),
        ms(*v.last().unwrap()),
        v.len()
    );
}

fn main() {
    let rounds: usize = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .and_then(|a| a.parse().ok())
        .unwrap_or(100);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
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
        summary("event.created -> notification.new", to_notice);
        summary("event.created -> webhook received", to_webhook);
    });
}
