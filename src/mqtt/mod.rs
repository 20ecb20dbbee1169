//! MQTT and Home Assistant: the appliance's events, camera states and snapshots published to
//! an owner's broker, Home Assistant discovery, and the camera switches' commands back.
//!
//! [`service`] subscribes to the event stream as `mqtt` and never blocks it: messages go into a
//! bounded [`outbox`] that the client drains while connected; the broker being down, slow or
//! misconfigured changes nothing for the rest of the appliance. [`Mqtt`] is the handle the API
//! uses to change the settings (applied at once, no restart), read the status and ask for
//! discovery again.

pub mod config;
pub mod connect;
pub mod discovery;
pub mod outbox;
pub mod service;
pub mod topics;

use std::sync::{Arc, Mutex};
use tokio::sync::{watch, Notify};

/// The connection's state, kept by the service.
#[derive(Debug, Clone, Default)]
pub struct MqttStatus {
    pub enabled: bool,
    pub connected: bool,
    /// `host:port` of the configured broker.
    pub broker: Option<String>,
    /// Unix milliseconds.
    pub last_connected_at: Option<i64>,
    /// Acknowledged by the broker (QoS 1/2) or sent (QoS 0), since start.
    pub messages_published: u64,
    /// Waiting or in flight.
    pub messages_queued: u64,
    /// Dropped because the queue was full.
    pub messages_dropped: u64,
    pub last_error: Option<String>,
    /// Failed connection attempts since the last success.
    pub reconnect_attempt: u32,
    pub node_id: String,
}

/// The handle: cheap to clone.
#[derive(Clone)]
pub struct Mqtt {
    config: watch::Sender<config::Runtime>,
    status: Arc<Mutex<MqttStatus>>,
    rediscover: Arc<Notify>,
}

/// The service's side of the handle.
pub struct Control {
    pub config: watch::Receiver<config::Runtime>,
    pub status: Arc<Mutex<MqttStatus>>,
    pub rediscover: Arc<Notify>,
}

impl Mqtt {
    pub fn new(initial: config::Runtime) -> Mqtt {
        Mqtt {
            config: watch::channel(initial).0,
            status: Arc::default(),
            rediscover: Arc::new(Notify::new()),
        }
    }

    /// The service's side (settings as they change, the status to keep, discovery requests).
    pub fn control(&self) -> Control {
        Control {
            config: self.config.subscribe(),
            status: self.status.clone(),
            rediscover: self.rediscover.clone(),
        }
    }

    /// The settings in use.
    pub fn config(&self) -> config::Runtime {
        self.config.borrow().clone()
    }

    /// Applies new settings now: the client reconnects with them (or disconnects).
    pub fn apply(&self, rt: config::Runtime) {
        self.config.send_replace(rt);
    }

    pub fn status(&self) -> MqttStatus {
        self.status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Publishes discovery (and the current states) again.
    pub fn publish_discovery(&self) {
        self.rediscover.notify_one();
    }
}
