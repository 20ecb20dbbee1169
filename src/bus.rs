//! The appliance's one in-process stream of typed domain messages.
//!
//! Whatever changes the appliance's state publishes here: the event lifecycle
//! (the `events` module), the camera and Protect supervisors, the cloud describer. Publishers
//! never know who listens. Subscribers (`/ws`, the alert engine, MQTT) turn messages into their
//! own wire formats.
//!
//! The stream is a bounded ring (`tokio::sync::broadcast`) of cheap clones (`Arc`s inside): a
//! publisher never waits, and memory never grows with a slow subscriber. A subscriber that falls
//! more than [`CAPACITY`] messages behind loses the oldest ones; [`Subscriber::recv`] tells it how
//! many, counts them per subscriber name ([`Bus::lagged`]) and logs them, and each subscriber
//! says in its own docs what it does then.

use crate::model::{LinkStatus, LiveStatus};
use crate::store::events::EventRow;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;

/// Messages kept for a subscriber that has not read them yet.
pub const CAPACITY: usize = 1024;

/// A stored event as the stream carries it: its row and its camera's name.
#[derive(Debug, Clone)]
pub struct EventInfo {
    pub row: EventRow,
    pub camera_name: Option<String>,
}

/// What changed in an updated event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// The cloud description (or its failure) arrived.
    Description,
    /// A better frame of the same object replaced the snapshot.
    BestFrame,
    /// The event's clip is complete.
    Clip,
}

/// A doorbell ring (Protect), sent before its event is stored.
#[derive(Debug, Clone)]
pub struct Ring {
    pub camera_id: String,
    pub camera_name: String,
    pub protect_camera_id: String,
    pub protect_event_id: String,
    pub ts: i64,
}

/// An in-app notification that was just stored.
#[derive(Debug, Clone)]
pub struct Notice {
    pub id: String,
    /// `rule` (an alert rule matched an event) or `ai_cost` (a cloud AI cost cap).
    pub kind: &'static str,
    pub event_id: Option<String>,
    pub rule_id: Option<String>,
    pub rule_name: Option<String>,
    pub title: String,
    pub event_description: Option<String>,
    /// Where the event's snapshot can be fetched (signed and absolute when the appliance knows
    /// its public address), if the notification has an event with a snapshot.
    pub thumbnail_url: Option<String>,
    /// Extra fields for this kind (the cost-cap figures), merged into the `/ws` message.
    pub extra: serde_json::Value,
    pub created_at: i64,
}

/// An alert rule with an MQTT action fired for an event.
#[derive(Debug, Clone)]
pub struct Alert {
    pub rule_id: String,
    pub rule_name: String,
    pub title: String,
    pub event: Arc<EventInfo>,
    /// Where the event's snapshot can be fetched (as in [`Notice::thumbnail_url`]).
    pub thumbnail_url: Option<String>,
}

/// Objects of a camera's filter currently in view, by detection type.
pub type InView = Arc<[(&'static str, u32)]>;

/// One message on the stream.
#[derive(Debug, Clone)]
pub enum Message {
    EventCreated(Arc<EventInfo>),
    EventUpdated(Arc<EventInfo>, Change),
    EventDeleted {
        id: String,
        camera_id: String,
    },
    CameraStatus {
        camera_id: String,
        name: String,
        status: Arc<LiveStatus>,
    },
    DoorbellRing(Arc<Ring>),
    ControllerStatus {
        controller_id: String,
        name: String,
        status: Arc<LinkStatus>,
    },
    NotificationCreated(Arc<Notice>),
    /// A camera was added, changed or deleted (read it from the store to know which).
    CameraChanged {
        camera_id: String,
    },
    /// A camera's motion started (`true`) or has been quiet for a while (`false`).
    Motion {
        camera_id: String,
        active: bool,
    },
    /// The objects a camera's tracker has in view changed (every type of its filter, 0 too).
    InView {
        camera_id: String,
        counts: InView,
    },
    /// An alert rule with an MQTT action fired.
    AlertFired(Arc<Alert>),
}

/// The stream's sending side; cheap to clone.
#[derive(Clone)]
pub struct Bus {
    tx: broadcast::Sender<(i64, Message)>,
    lagged: Arc<Mutex<BTreeMap<&'static str, u64>>>,
}

impl Bus {
    pub fn new() -> Self {
        let (tx, _) = broadcast::channel(CAPACITY);
        Bus {
            tx,
            lagged: Arc::default(),
        }
    }

    /// A new subscriber, named for the counters and the log; it sees messages published from
    /// now on.
    pub fn subscribe(&self, name: &'static str) -> Subscriber {
        Subscriber {
            rx: self.tx.subscribe(),
            name,
            lagged: self.lagged.clone(),
        }
    }

    /// Publishes a message stamped `now_ms`. Never waits; with no subscriber it goes nowhere.
    pub fn publish(&self, now_ms: i64, msg: Message) {
        let _ = self.tx.send((now_ms, msg));
    }

    /// Messages each subscriber (by name) lost by falling behind, since start.
    pub fn lagged(&self) -> BTreeMap<&'static str, u64> {
        self.lagged
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl Default for Bus {
    fn default() -> Self {
        Self::new()
    }
}

/// Why [`Subscriber::recv`] returned no message.
#[derive(Debug, PartialEq, Eq)]
pub enum Missed {
    /// This many messages were dropped before this subscriber read them (already counted).
    Lagged(u64),
    /// The bus is gone: the appliance is stopping.
    Closed,
}

/// The receiving side of one subscriber.
pub struct Subscriber {
    rx: broadcast::Receiver<(i64, Message)>,
    name: &'static str,
    lagged: Arc<Mutex<BTreeMap<&'static str, u64>>>,
}

impl Subscriber {
    /// The next message and its time; a lag is counted, logged and returned, and the next
    /// call goes on with the oldest message still kept.
    pub async fn recv(&mut self) -> Result<(i64, Message), Missed> {
        match self.rx.recv().await {
            Ok(m) => Ok(m),
            Err(broadcast::error::RecvError::Lagged(n)) => {
                *self
                    .lagged
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .entry(self.name)
                    .or_default() += n;
                tracing::warn!(
                    subscriber = self.name,
                    missed = n,
                    "fell behind the event stream"
                );
                Err(Missed::Lagged(n))
            }
            Err(broadcast::error::RecvError::Closed) => Err(Missed::Closed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deleted(i: usize) -> Message {
        Message::EventDeleted {
            id: i.to_string(),
            camera_id: "c".into(),
        }
    }

    #[tokio::test]
    async fn a_slow_subscriber_loses_the_oldest_and_is_counted_while_others_get_everything() {
        let bus = Bus::new();
        let mut slow = bus.subscribe("slow");
        let mut fast = bus.subscribe("fast");
        for i in 0..CAPACITY + 10 {
            bus.publish(i as i64, deleted(i));
            // The fast one keeps up.
            let (ts, _) = fast.recv().await.unwrap();
            assert_eq!(ts, i as i64);
        }
        assert_eq!(slow.recv().await.unwrap_err(), Missed::Lagged(10));
        let (ts, m) = slow.recv().await.unwrap();
        assert_eq!(ts, 10, "goes on with the oldest message kept");
        assert!(matches!(m, Message::EventDeleted { id, .. } if id == "10"));
        assert_eq!(bus.lagged().get("slow"), Some(&10));
        assert_eq!(bus.lagged().get("fast"), None);
    }

    #[tokio::test]
    async fn publishing_without_subscribers_is_fine() {
        let bus = Bus::new();
        bus.publish(0, deleted(0));
        let mut s = bus.subscribe("late");
        bus.publish(1, deleted(1));
        assert_eq!(s.recv().await.unwrap().0, 1);
    }
}
