//! The MQTT service: a subscriber of the event stream (`mqtt`) that keeps one connection to
//! the owner's broker and publishes what happens on the appliance.
//!
//! - Connects with the settings in use and again whenever they change; a lost connection is
//!   retried after 1 s, doubling to 30 s. The appliance's status topic is `online` (retained)
//!   while connected and `offline` (the retained last will, or sent at shutdown) otherwise.
//! - Each message goes through the [`Outbox`]: nothing here waits on the broker. While it is
//!   down, the last 1,000 messages wait and the oldest are dropped and counted.
//! - On every connection, and whenever Home Assistant announces itself (`<discovery>/status`
//!   `online`), the discovery configs and every camera's current states are published again;
//!   a changed camera gets a new config, a deleted one an empty retained config.
//! - Retained discovery configs of this node for cameras that no longer exist (deleted while
//!   the broker or the appliance was away) are removed when they are seen after connecting.
//! - The cameras' switches (`.../enabled/set`, `.../detect/set`, `ON`/`OFF`) act through the
//!   camera supervisor like the API does; anything else on those topics is logged and ignored.
//!
//! Protect cameras have no local motion detector or tracker: their motion and objects in view
//! follow the console's events, held for [`PROTECT_HOLD`] after the last one.

use super::config::Runtime;
use super::connect;
use super::discovery::{self, Cam, COUNTED};
use super::outbox::{Out, Outbox, WINDOW};
use super::topics::{self, Topics};
use super::{Control, MqttStatus};
use crate::alerts::links::MediaLinks;
use crate::bus::{Change, EventInfo, Message, Missed, Subscriber};
use crate::cameras::CameraManager;
use crate::clock::Clock;
use crate::store::Store;
use rumqttc::{AsyncClient, ConnectionError, Event, Outgoing, Packet, QoS};
use serde_json::json;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

/// A Protect camera's motion and objects stay on this long after its last event.
pub const PROTECT_HOLD: Duration = Duration::from_secs(30);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// Home Assistant's state can be at most 255 characters.
const DESCRIPTION_MAX: usize = 255;

/// What the service uses.
pub struct Env {
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    pub cameras: Arc<CameraManager>,
    pub links: MediaLinks,
    pub data_dir: PathBuf,
}

type ConnEvent = (u64, Result<Event, ConnectionError>);

struct Conn {
    client: AsyncClient,
    task: tokio::task::JoinHandle<()>,
}

/// A camera's last published states, republished on every connection.
#[derive(Default, Clone)]
struct States {
    motion: bool,
    counts: Vec<(&'static str, u32)>,
    status: Option<String>,
    /// Until when a Protect camera's motion and objects are held.
    hold: Option<Instant>,
}

struct Svc {
    env: Arc<Env>,
    status: Arc<Mutex<MqttStatus>>,
    rt: Runtime,
    topics: Topics,
    conn: Option<Conn>,
    connected: bool,
    gen: u64,
    retry_at: Option<Instant>,
    backoff: Duration,
    outbox: Outbox,
    cams: HashMap<String, Cam>,
    /// What discovery and the switch states were last published for.
    announced: HashMap<String, Cam>,
    states: HashMap<String, States>,
    rediscover_at: Option<Instant>,
    ev_tx: mpsc::Sender<ConnEvent>,
}

fn topics_of(rt: &Runtime) -> Topics {
    Topics {
        prefix: rt.cfg.topic_prefix.clone(),
        node: rt.node_id.clone(),
        discovery: rt.cfg.discovery_prefix.clone(),
    }
}

fn on_off(b: bool) -> &'static str {
    if b {
        "ON"
    } else {
        "OFF"
    }
}

/// Runs until `stop`; then publishes `offline` and disconnects (within 2 s).
pub async fn run(
    env: Arc<Env>,
    ctl: Control,
    mut sub: Subscriber,
    mut stop: watch::Receiver<bool>,
) {
    let Control {
        config: mut cfg_rx,
        status,
        rediscover,
    } = ctl;
    let rt = cfg_rx.borrow_and_update().clone();
    let (ev_tx, mut ev_rx) = mpsc::channel::<ConnEvent>(256);
    let mut svc = Svc {
        env,
        status,
        topics: topics_of(&rt),
        retry_at: rt.cfg.enabled.then(Instant::now),
        rt,
        conn: None,
        connected: false,
        gen: 0,
        backoff: Duration::from_secs(1),
        outbox: Outbox::default(),
        cams: HashMap::new(),
        announced: HashMap::new(),
        states: HashMap::new(),
        rediscover_at: None,
        ev_tx,
    };
    svc.reload_cameras().await;
    svc.announced = svc.cams.clone();
    svc.refresh_status();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        let retry = svc.retry_at;
        let redisc = svc.rediscover_at;
        tokio::select! {
            _ = stop.changed() => break,
            r = cfg_rx.changed() => {
                if r.is_err() { break; }
                let rt = cfg_rx.borrow_and_update().clone();
                svc.reconfigure(rt).await;
            }
            m = sub.recv() => match m {
                Ok((_, msg)) => svc.on_message(msg).await,
                // Counted and logged by the stream; states catch up with the next messages.
                Err(Missed::Lagged(_)) => {}
                Err(Missed::Closed) => break,
            },
            Some((gen, ev)) = ev_rx.recv() => {
                if gen == svc.gen {
                    svc.on_conn_event(ev);
                }
            }
            _ = sleep_until(retry) => svc.connect(),
            _ = sleep_until(redisc) => {
                svc.rediscover_at = None;
                svc.announce_all();
            }
            _ = rediscover.notified() => svc.announce_all(),
            _ = tick.tick() => svc.expire_holds(),
        }
        svc.pump();
        svc.refresh_status();
    }
    svc.shutdown(&mut ev_rx).await;
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

impl Svc {
    fn out(&self, topic: String, payload: impl Into<Vec<u8>>, retain: bool) -> Out {
        Out {
            topic,
            payload: payload.into(),
            retain,
            qos: self.rt.cfg.qos,
        }
    }

    /// A state message: retained if the settings say so.
    fn state(&mut self, topic: String, payload: impl Into<Vec<u8>>) {
        let m = self.out(topic, payload, self.rt.cfg.retain);
        self.outbox.push(m);
    }

    /// A message that is never retained (events, rings, alerts).
    fn message(&mut self, topic: String, payload: impl Into<Vec<u8>>) {
        let m = self.out(topic, payload, false);
        self.outbox.push(m);
    }

    /// Discovery configs and availability: always retained.
    fn retained(&mut self, topic: String, payload: impl Into<Vec<u8>>) {
        let m = self.out(topic, payload, true);
        self.outbox.push(m);
    }

    async fn reload_cameras(&mut self) {
        let rows = match self
            .env
            .store
            .read(|c| crate::store::cameras::list(c, None))
            .await
        {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "MQTT: cannot read the cameras");
                return;
            }
        };
        let keyed: Vec<(String, String, i64)> = rows
            .iter()
            .map(|r| (r.id.clone(), r.name.clone(), r.created_at))
            .collect();
        let slugs = topics::assign(&keyed);
        self.cams = rows
            .into_iter()
            .map(|r| {
                let cam = Cam {
                    slug: slugs.get(&r.id).cloned().unwrap_or_else(|| "camera".into()),
                    name: r.name,
                    kind: r.camera_type.as_str(),
                    // A Protect camera's filter is the console's smart detection types.
                    filter: if r.camera_type == crate::model::CameraType::Protect {
                        r.smart_detection_types
                    } else {
                        r.object_filter
                    },
                    doorbell: r.is_doorbell,
                    enabled: r.is_enabled,
                    detect: r.motion_enabled,
                    id: r.id,
                };
                (cam.id.clone(), cam)
            })
            .collect();
    }

    /// The retained state topics of a camera (cleared when it goes or its slug changes).
    fn state_topics(&self, cam: &Cam) -> Vec<String> {
        let base = self.topics.camera(&cam.slug);
        let mut t: Vec<String> = [
            "motion",
            "snapshot",
            "status",
            "enabled",
            "detect",
            "description",
        ]
        .iter()
        .map(|s| format!("{base}/{s}"))
        .collect();
        t.extend(COUNTED.iter().map(|k| format!("{base}/{k}")));
        t
    }

    fn clear_camera(&mut self, cam: &Cam) {
        for t in self.state_topics(cam) {
            self.retained(t, Vec::new());
        }
    }

    fn publish_discovery(&mut self, cam: &Cam) {
        if !self.rt.cfg.discovery_enabled {
            return;
        }
        let cfg = discovery::device_config(&self.topics, cam, self.rt.cfg.qos);
        self.retained(self.topics.device_config(&cam.id), cfg.to_string());
    }

    /// A camera's switches, status, motion and objects in view, as last known.
    fn publish_states(&mut self, cam: &Cam) {
        let base = self.topics.camera(&cam.slug);
        let st = self.states.get(&cam.id).cloned().unwrap_or_default();
        self.state(format!("{base}/enabled"), on_off(cam.enabled));
        self.state(format!("{base}/detect"), on_off(cam.detect));
        self.state(format!("{base}/motion"), on_off(st.motion));
        let status = st.status.or_else(|| {
            crate::model::CameraType::parse(cam.kind)
                .is_some_and(crate::cameras::capturable)
                .then(|| self.env.cameras.status(&cam.id).status.to_string())
        });
        if let Some(s) = status {
            self.state(format!("{base}/status"), s);
        }
        for kind in cam.counted() {
            let n = st
                .counts
                .iter()
                .find(|(k, _)| *k == kind)
                .map_or(0, |(_, n)| *n);
            self.state(format!("{base}/{kind}"), n.to_string());
        }
    }

    /// Everything again: on connection, when Home Assistant restarts, when asked.
    fn announce_all(&mut self) {
        if !self.connected {
            return;
        }
        let mut cams: Vec<Cam> = self.cams.values().cloned().collect();
        cams.sort_by(|a, b| a.slug.cmp(&b.slug));
        for cam in &cams {
            self.publish_discovery(cam);
            self.publish_states(cam);
        }
        self.announced = self.cams.clone();
        tracing::info!(cameras = cams.len(), "MQTT: discovery and states published");
    }

    /// A camera was added, changed or deleted: publish what differs from what was announced.
    async fn cameras_changed(&mut self) {
        self.reload_cameras().await;
        let gone: Vec<Cam> = self
            .announced
            .values()
            .filter(|a| !self.cams.contains_key(&a.id))
            .cloned()
            .collect();
        for cam in gone {
            // Sent even while disconnected: a retained config left behind is a ghost device.
            if self.rt.cfg.discovery_enabled {
                self.retained(self.topics.device_config(&cam.id), Vec::new());
            }
            self.clear_camera(&cam);
            self.states.remove(&cam.id);
        }
        if self.connected {
            let cams: Vec<Cam> = self.cams.values().cloned().collect();
            for cam in cams {
                match self.announced.get(&cam.id).cloned() {
                    Some(old) if old == cam => {}
                    Some(old) => {
                        if old.slug != cam.slug {
                            self.clear_camera(&old);
                        }
                        let same_device = Cam {
                            enabled: cam.enabled,
                            detect: cam.detect,
                            ..old.clone()
                        } == cam;
                        if !same_device {
                            self.publish_discovery(&cam);
                        }
                        self.publish_states(&cam);
                    }
                    None => {
                        self.publish_discovery(&cam);
                        self.publish_states(&cam);
                    }
                }
            }
            self.announced = self.cams.clone();
        } else {
            self.announced.retain(|id, _| self.cams.contains_key(id));
        }
    }

    fn event_json(&self, e: &EventInfo, action: &str) -> serde_json::Value {
        let r = &e.row;
        json!({
            "action": action,
            "id": r.id,
            "camera_id": r.camera_id,
            "camera_name": e.camera_name,
            "camera": self.cams.get(&r.camera_id).map(|c| c.slug.clone()),
            "timestamp": crate::clock::format_rfc3339(r.ts),
            "event_type": r.detection_type,
            "detection_type": r.detection_type,
            "confidence": r.confidence,
            "objects_detected": r.objects_detected,
            "bounding_boxes": r.bounding_boxes,
            "description": r.description,
            "description_pending": r.description_pending,
            "provider_used": r.provider_used,
            "ai_cost_usd": r.ai_cost_usd,
            "source_type": r.source_type,
            "smart_detection_type": r.smart_detection_type,
            "is_doorbell_ring": r.is_doorbell_ring,
            "thumbnail_url": self.env.links.thumbnail_url(r),
            "has_clip": r.clip_path.is_some(),
            "clip_url": self.env.links.clip_url(r),
            "clip_duration_seconds": r.clip_duration_ms.filter(|_| r.clip_path.is_some()).map(|ms| ms as f64 / 1000.0),
        })
    }

    async fn snapshot(&mut self, base: &str, e: &EventInfo) {
        let Some(rel) = &e.row.thumbnail_path else {
            return;
        };
        match tokio::fs::read(self.env.data_dir.join(rel)).await {
            Ok(jpeg) => self.state(format!("{base}/snapshot"), jpeg),
            Err(err) => {
                tracing::debug!(event.id = %e.row.id, error = %err, "MQTT: no snapshot to publish")
            }
        }
    }

    async fn on_message(&mut self, msg: Message) {
        if !self.rt.cfg.enabled {
            return;
        }
        match msg {
            Message::EventCreated(e) => {
                if !self.cams.contains_key(&e.row.camera_id) {
                    self.cameras_changed().await;
                }
                let Some(cam) = self.cams.get(&e.row.camera_id).cloned() else {
                    return;
                };
                let base = self.topics.camera(&cam.slug);
                let body = self.event_json(&e, "created");
                self.message(format!("{base}/events"), body.to_string());
                // The detection entity knows these types (rings have their own entity).
                if discovery::DETECTIONS.contains(&e.row.detection_type.as_str()) {
                    let d = json!({
                        "event_type": e.row.detection_type,
                        "event_id": e.row.id,
                        "confidence": e.row.confidence,
                        "objects_detected": e.row.objects_detected,
                    });
                    self.message(format!("{base}/detection"), d.to_string());
                }
                self.snapshot(&base, &e).await;
                if cam.kind == "protect" && e.row.detection_type != "ring" {
                    self.protect_activity(&cam, &e.row.detection_type);
                }
            }
            Message::EventUpdated(e, change) => {
                let Some(cam) = self.cams.get(&e.row.camera_id).cloned() else {
                    return;
                };
                let base = self.topics.camera(&cam.slug);
                let body = self.event_json(&e, "updated");
                self.message(format!("{base}/events"), body.to_string());
                match change {
                    Change::Description => {
                        if let Some(d) = &e.row.description {
                            let text: String = d.chars().take(DESCRIPTION_MAX).collect();
                            self.state(format!("{base}/description"), text);
                        }
                    }
                    Change::BestFrame => self.snapshot(&base, &e).await,
                    // The event message above carries `has_clip`.
                    Change::Clip => {}
                }
            }
            Message::CameraStatus {
                camera_id, status, ..
            } => {
                let s = status.status.to_string();
                self.states.entry(camera_id.clone()).or_default().status = Some(s.clone());
                if let Some(cam) = self.cams.get(&camera_id) {
                    let t = format!("{}/status", self.topics.camera(&cam.slug));
                    self.state(t, s);
                }
            }
            Message::DoorbellRing(r) => {
                if let Some(cam) = self.cams.get(&r.camera_id) {
                    let t = format!("{}/doorbell", self.topics.camera(&cam.slug));
                    let body = json!({
                        "event_type": "ring",
                        "camera_id": r.camera_id,
                        "camera_name": r.camera_name,
                        "protect_event_id": r.protect_event_id,
                        "timestamp": crate::clock::format_rfc3339(r.ts),
                    });
                    self.message(t, body.to_string());
                }
            }
            Message::CameraChanged { .. } => self.cameras_changed().await,
            Message::Motion { camera_id, active } => self.set_motion(&camera_id, active),
            Message::InView { camera_id, counts } => self.set_counts(&camera_id, counts.to_vec()),
            Message::AlertFired(a) => {
                let body = json!({
                    "rule_id": a.rule_id,
                    "rule_name": a.rule_name,
                    "title": a.title,
                    "thumbnail_url": a.thumbnail_url,
                    "event": self.event_json(&a.event, "alert"),
                });
                self.message(self.topics.alerts(), body.to_string());
            }
            Message::EventDeleted { .. }
            | Message::ControllerStatus { .. }
            | Message::NotificationCreated(_) => {}
        }
    }

    fn set_motion(&mut self, camera_id: &str, active: bool) {
        self.states.entry(camera_id.to_string()).or_default().motion = active;
        if let Some(cam) = self.cams.get(camera_id) {
            let t = format!("{}/motion", self.topics.camera(&cam.slug));
            self.state(t, on_off(active));
        }
    }

    /// Publishes the counts that changed.
    fn set_counts(&mut self, camera_id: &str, counts: Vec<(&'static str, u32)>) {
        let st = self.states.entry(camera_id.to_string()).or_default();
        let before = std::mem::replace(&mut st.counts, counts.clone());
        let Some(cam) = self.cams.get(camera_id) else {
            return;
        };
        let base = self.topics.camera(&cam.slug);
        for (kind, n) in counts {
            if !before.contains(&(kind, n)) {
                self.state(format!("{base}/{kind}"), n.to_string());
            }
        }
    }

    /// A Protect event: motion on, its object type in view, until [`PROTECT_HOLD`] passes.
    fn protect_activity(&mut self, cam: &Cam, kind: &str) {
        let st = self.states.entry(cam.id.clone()).or_default();
        st.hold = Some(Instant::now() + PROTECT_HOLD);
        let mut counts = st.counts.clone();
        if let Some(k) = COUNTED.iter().find(|k| **k == kind) {
            match counts.iter_mut().find(|(c, _)| c == k) {
                Some(c) => c.1 = c.1.max(1),
                None => counts.push((k, 1)),
            }
        }
        if !st.motion {
            self.set_motion(&cam.id, true);
        }
        self.set_counts(&cam.id, counts);
    }

    fn expire_holds(&mut self) {
        let now = Instant::now();
        let due: Vec<String> = self
            .states
            .iter()
            .filter(|(_, s)| s.hold.is_some_and(|h| h <= now))
            .map(|(id, _)| id.clone())
            .collect();
        for id in due {
            if let Some(st) = self.states.get_mut(&id) {
                st.hold = None;
            }
            self.set_motion(&id, false);
            let zero: Vec<(&'static str, u32)> = self
                .cams
                .get(&id)
                .map(|c| c.counted().into_iter().map(|k| (k, 0)).collect())
                .unwrap_or_default();
            self.set_counts(&id, zero);
        }
    }

    fn connect(&mut self) {
        self.retry_at = None;
        if !self.rt.cfg.enabled {
            return;
        }
        self.gen += 1;
        let client_id = format!("argus-{}", self.rt.node_id);
        let opts = match connect::options(&self.rt, &client_id, Some(&self.topics.status())) {
            Ok(o) => o,
            Err(e) => {
                self.failed(e);
                return;
            }
        };
        let (client, mut el) = connect::client(opts, WINDOW + 16);
        let (tx, gen) = (self.ev_tx.clone(), self.gen);
        let task = tokio::spawn(async move {
            loop {
                let r = el.poll().await;
                let failed = r.is_err();
                if tx.send((gen, r)).await.is_err() || failed {
                    break;
                }
            }
        });
        if let Some(old) = self.conn.replace(Conn { client, task }) {
            old.task.abort();
        }
        tracing::debug!(broker = %self.rt.broker(), "MQTT: connecting");
    }

    fn failed(&mut self, why: String) {
        let was = self.connected;
        self.connected = false;
        if let Some(c) = self.conn.take() {
            c.task.abort();
        }
        self.outbox.requeue();
        {
            let mut s = self.status.lock().unwrap_or_else(|e| e.into_inner());
            s.reconnect_attempt += 1;
            s.last_error = Some(why.clone());
        }
        if was {
            tracing::warn!(broker = %self.rt.broker(), error = %why, "MQTT: connection lost");
        } else {
            tracing::warn!(broker = %self.rt.broker(), error = %why, retry_in_s = self.backoff.as_secs(), "MQTT: cannot connect");
        }
        self.retry_at = Some(Instant::now() + self.backoff);
        self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
    }

    fn on_conn_event(&mut self, ev: Result<Event, ConnectionError>) {
        match ev {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                self.connected = true;
                self.backoff = Duration::from_secs(1);
                {
                    let mut s = self.status.lock().unwrap_or_else(|e| e.into_inner());
                    s.reconnect_attempt = 0;
                    s.last_error = None;
                    s.last_connected_at = Some(self.env.clock.now_ms());
                }
                tracing::info!(broker = %self.rt.broker(), node_id = %self.rt.node_id, "MQTT: connected");
                if let Some(c) = &self.conn {
                    let _ = c
                        .client
                        .try_subscribe(self.topics.commands(), QoS::AtLeastOnce);
                    if self.rt.cfg.discovery_enabled {
                        let _ = c
                            .client
                            .try_subscribe(self.topics.ha_status(), QoS::AtLeastOnce);
                        // The retained configs on the broker: ours of cameras deleted while
                        // the appliance was away from it are removed (no ghost devices).
                        let _ = c
                            .client
                            .try_subscribe(self.topics.device_configs(), QoS::AtLeastOnce);
                    }
                }
                // Availability first, then discovery and states, then what waited.
                let online = self.out(self.topics.status(), "online", true);
                self.outbox.push_front(online);
                self.announce_all();
            }
            Ok(Event::Outgoing(Outgoing::Publish(pkid))) => self.outbox.sent(pkid),
            Ok(Event::Incoming(Packet::PubAck(a))) => self.outbox.acked(a.pkid),
            Ok(Event::Incoming(Packet::PubComp(a))) => self.outbox.acked(a.pkid),
            Ok(Event::Incoming(Packet::Publish(p))) => self.on_incoming(&p.topic, &p.payload),
            Ok(_) => {}
            Err(e) => {
                let why = connect::explain(&e, &self.rt);
                self.failed(why);
            }
        }
    }

    /// Home Assistant's birth, or a switch command.
    fn on_incoming(&mut self, topic: &str, payload: &[u8]) {
        let text = String::from_utf8_lossy(payload).trim().to_string();
        if topic == self.topics.ha_status() {
            if text == "online" {
                // A little later, at a random moment: many devices answer the same birth.
                let jitter = u64::from(crate::crypto::random_bytes::<1>()[0]) * 8;
                self.rediscover_at = Some(Instant::now() + Duration::from_millis(500 + jitter));
                tracing::info!("MQTT: Home Assistant started; discovery follows");
            }
            return;
        }
        if let Some(camera) = self.topics.own_device(topic) {
            let known = self.cams.keys().any(|id| topics::id_part(id) == camera);
            if !known && !payload.is_empty() {
                tracing::info!(
                    topic,
                    "MQTT: removing the discovery config of a deleted camera"
                );
                self.retained(topic.to_string(), Vec::new());
            }
            return;
        }
        if topic.starts_with(&format!("{}/device/", self.topics.discovery)) {
            return;
        }
        let prefix = format!("{}/", self.topics.base());
        let parts: Vec<&str> = topic
            .strip_prefix(&prefix)
            .map(|r| r.split('/').collect())
            .unwrap_or_default();
        let [slug, switch, "set"] = parts.as_slice() else {
            tracing::warn!(topic, "MQTT: ignoring a message on an unknown topic");
            return;
        };
        let Some(cam) = self.cams.values().find(|c| c.slug == *slug).cloned() else {
            tracing::warn!(topic, "MQTT: ignoring a command for an unknown camera");
            return;
        };
        let on = match text.to_ascii_uppercase().as_str() {
            "ON" | "TRUE" | "1" => true,
            "OFF" | "FALSE" | "0" => false,
            _ => {
                tracing::warn!(topic, payload = %text.chars().take(40).collect::<String>(), "MQTT: ignoring a command that is not ON or OFF");
                return;
            }
        };
        let (enabled, detect) = match *switch {
            "enabled" => (Some(on), None),
            "detect" => (None, Some(on)),
            _ => {
                tracing::warn!(topic, "MQTT: ignoring a command for an unknown switch");
                return;
            }
        };
        tracing::info!(camera.id = %cam.id, switch, on, "MQTT command");
        let cameras = self.env.cameras.clone();
        tokio::spawn(async move {
            if let Err(e) = cameras.set_flags(&cam.id, enabled, detect).await {
                tracing::warn!(camera.id = %cam.id, error = %e, "MQTT command failed");
            }
        });
    }

    /// Hands waiting messages to the client while connected and the window has room.
    fn pump(&mut self) {
        if !self.connected {
            return;
        }
        let Some(c) = &self.conn else { return };
        while let Some(m) = self.outbox.take() {
            if c.client
                .try_publish(m.topic, connect::qos(m.qos), m.retain, m.payload)
                .is_err()
            {
                self.outbox.untake();
                break;
            }
        }
    }

    fn refresh_status(&self) {
        let mut s = self.status.lock().unwrap_or_else(|e| e.into_inner());
        s.enabled = self.rt.cfg.enabled;
        s.connected = self.connected;
        s.broker = (!self.rt.cfg.broker_host.is_empty()).then(|| self.rt.broker());
        s.messages_published = self.outbox.published;
        s.messages_queued = self.outbox.len() as u64;
        s.messages_dropped = self.outbox.dropped;
        s.node_id = self.rt.node_id.clone();
    }

    /// New settings: say `offline` on the old connection, forget its queue, connect anew.
    async fn reconfigure(&mut self, rt: Runtime) {
        if rt == self.rt {
            return;
        }
        self.disconnect().await;
        self.outbox.clear();
        self.announced.clear();
        self.topics = topics_of(&rt);
        self.rt = rt;
        self.backoff = Duration::from_secs(1);
        {
            let mut s = self.status.lock().unwrap_or_else(|e| e.into_inner());
            s.reconnect_attempt = 0;
            s.last_error = None;
        }
        self.reload_cameras().await;
        self.retry_at = self.rt.cfg.enabled.then(Instant::now);
        tracing::info!(enabled = self.rt.cfg.enabled, broker = %self.rt.broker(), "MQTT settings applied");
    }

    /// A clean goodbye: `offline` (retained), then DISCONNECT, within 2 s.
    async fn disconnect(&mut self) {
        self.retry_at = None;
        let Some(c) = self.conn.take() else {
            self.connected = false;
            return;
        };
        if self.connected {
            let _ = c.client.try_publish(
                self.topics.status(),
                connect::qos(self.rt.cfg.qos),
                true,
                "offline",
            );
            let _ = c.client.try_disconnect();
            let mut task = c.task;
            if tokio::time::timeout(Duration::from_secs(2), &mut task)
                .await
                .is_err()
            {
                task.abort();
            }
        } else {
            c.task.abort();
        }
        self.connected = false;
        self.gen += 1;
    }

    async fn shutdown(&mut self, ev_rx: &mut mpsc::Receiver<ConnEvent>) {
        // Let what is queued go out first (briefly), then say goodbye.
        if self.connected {
            let until = Instant::now() + Duration::from_secs(1);
            while !self.outbox.is_empty() && Instant::now() < until {
                self.pump();
                match tokio::time::timeout_at(until, ev_rx.recv()).await {
                    Ok(Some((gen, ev))) if gen == self.gen => self.on_conn_event(ev),
                    Ok(Some(_)) => {}
                    _ => break,
                }
            }
        }
        self.disconnect().await;
    }
}
