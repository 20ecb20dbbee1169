//! MQTT latency benchmark: from an event's `event.created` on `/ws` to its JSON on
//! `<prefix>/<node>/<camera>/events` at a subscriber of a real Mosquitto broker on loopback,
//! through the whole real path (the stream, the MQTT service, its outbox, rumqttc, the broker).
//! Events come in through `POST /api/v1/events` one at a time, with a snapshot, at QoS 1.
//!
//!     cargo bench --bench mqtt [-- ROUNDS]      (default 200)
//!
//! Reported: median, p99 and max.

mod latency;
#[path = "../tests/it/mosquitto.rs"]
mod mosquitto;
#[allow(dead_code)]
#[path = "../tests/it/support.rs"]
mod support;

use serde_json::json;
use std::time::{Duration, Instant};
use support::{TestApp, TINY_JPEG_B64};

fn main() {
    let rounds = latency::rounds(200);
    latency::runtime().block_on(async move {
        let broker = mosquitto::Broker::start().await;
        let app = TestApp::start().await;
        let admin = app.admin_token().await;
        let cam = app.camera(&admin, "Door").await;
        let (s, v) = app
            .put(
                "/api/v1/integrations/mqtt/config",
                &admin,
                json!({"enabled": true, "broker_host": "127.0.0.1", "broker_port": broker.port()}),
            )
            .await;
        assert_eq!(s.as_u16(), 200, "{v}");
        let node = v["node_id"].as_str().unwrap().to_string();
        let topic = format!("argus/{node}/door/events");
        let mut sub = mosquitto::Sub::connect(broker.port(), &[&topic]).await;
        for _ in 0..100 {
            let (_, st) = app.get("/api/v1/integrations/mqtt/status", &admin).await;
            if st["connected"] == json!(true) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let (mut ws, _) =
            tokio_tungstenite::connect_async(format!("ws://{}/ws?token={admin}", app.addr))
                .await
                .unwrap();
        let mut to_mqtt = Vec::new();
        for i in 0..rounds + 5 {
            let e = app
                .event(
                    &admin,
                    json!({"camera_id": cam, "detection_type": "person", "confidence": 90,
                           "description": "A person.", "thumbnail_base64": TINY_JPEG_B64}),
                )
                .await;
            let id = e["id"].clone();
            let created = latency::ws_message(&mut ws, |m| {
                m["type"] == json!("event.created") && m["data"]["id"] == id
            })
            .await;
            let m = sub.wait_for(10, |m| m.json()["id"] == id).await;
            let at = Instant::now();
            drop(m);
            // The first rounds warm the connections and caches.
            if i >= 5 {
                to_mqtt.push(at.saturating_duration_since(created));
            }
        }
        latency::summary("event.created -> MQTT subscriber", to_mqtt, 99);
    });
}
