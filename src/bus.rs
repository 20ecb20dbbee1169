//! The fan-out of live messages to WebSocket clients.
//!
//! A message is serialised once into its wire envelope `{"type", "data", "timestamp"}` and shared
//! by every client. The channel is a bounded ring: a client that falls behind by more than its
//! capacity gets `Lagged` and is disconnected, so a slow client never stalls the others or grows
//! memory.

use serde::Serialize;
use std::sync::Arc;
use tokio::sync::broadcast;

/// Which scope a client needs to receive a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topic {
    Events,
    Cameras,
    Notifications,
}

#[derive(Debug)]
pub struct BusMessage {
    pub topic: Topic,
    pub kind: &'static str,
    /// The serialised envelope, ready to send as a text frame.
    pub json: String,
}

#[derive(Clone)]
pub struct Bus {
    tx: broadcast::Sender<Arc<BusMessage>>,
}

/// Per-client backlog before the client is dropped.
pub const CLIENT_QUEUE: usize = 256;

impl Bus {
    pub fn new() -> Self {
        let (tx, _) = broadcast::channel(CLIENT_QUEUE);
        Bus { tx }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<BusMessage>> {
        self.tx.subscribe()
    }

    /// Sends `data` to every connected client as a message of type `kind`.
    pub fn publish<T: Serialize>(&self, topic: Topic, kind: &'static str, data: &T, now_ms: i64) {
        let env = serde_json::json!({
            "type": kind,
            "data": data,
            "timestamp": crate::clock::format_rfc3339(now_ms),
        });
        let msg = BusMessage {
            topic,
            kind,
            json: env.to_string(),
        };
        // No receivers is fine: nobody is watching.
        let _ = self.tx.send(Arc::new(msg));
    }

    pub fn client_count(&self) -> usize {
        self.tx.receiver_count()
    }
}

impl Default for Bus {
    fn default() -> Self {
        Self::new()
    }
}
