//! The UniFi Protect supervisor: one task per enabled controller that logs in, reads the
//! bootstrap, follows the update socket and turns the console's smart detections and doorbell
//! rings into events. It also keeps each controller's connection state and a short-lived cache
//! of its bootstrap (its camera list) for the API.
//!
//! Connection: bootstrap, then the update socket from the bootstrap's `lastUpdateId`; after a
//! drop it reopens from the last update id it saw, so nothing the console sent in between is
//! lost. Failures back off 1 s doubling to 30 s; a socket silent for `protect.idle_timeout_secs`
//! is reopened; a 401 makes the client log in again (see [`crate::protect::ProtectClient`]).
//! State changes are published on the stream (`/ws` sends `protect.status`) and written into the
//! controller row.
//!
//! Events: a detection passes when its camera is enabled for analysis and its kind is in the
//! camera's `smart_detection_types`; one event per Protect event id; after an event a camera
//! raises no other for its `motion_cooldown` (rings count apart from other detections, so a
//! ring right after a person still goes out). A ring is announced on `/ws` (`doorbell.ring`)
//! before the snapshot is fetched. The event carries the console's snapshot, shrunk to the
//! appliance's thumbnail size, and is then described by the cloud AI like any other event.
//! When the Protect event ends, the console's export of its window becomes the event's clip
//! (cameras with `record_clips`; see `controllers/clips.rs`).
//!
//! Invariants: the password and session cookie never leave `ProtectClient` (not in logs, not in
//! the API); at most one task per controller; stopping a controller ends its task before the
//! call returns.

mod clips;

use crate::bus::{Bus, Message, Ring};
use crate::clock::Clock;
use crate::describe::Describer;
use crate::events::Events;
pub use crate::model::LinkStatus;
use crate::protect::{
    Bootstrap, ControllerConfig, DetectionKind, EventMapper, ProtectClient, ProtectDetection,
    ProtectError,
};
use crate::store::cameras::CameraRow;
use crate::store::events::EventRow;
use crate::store::protect::{self as rows, ControllerRow};
use futures_util::StreamExt;
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{watch, Semaphore};

const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// A connection that lasted this long resets the backoff.
const STABLE_AFTER: Duration = Duration::from_secs(30);
/// Snapshots fetched at once per controller.
const SNAPSHOTS_AT_ONCE: usize = 3;
/// The long side of a stored Protect snapshot (the appliance's own snapshots are 640 wide).
const THUMB_LONG_SIDE: usize = 640;

/// The smart-detection filter values a Protect camera accepts.
pub const FILTER_TYPES: [&str; 6] = ["person", "vehicle", "package", "animal", "motion", "ring"];

/// The Protect part of `/system/health` (public, so counts only).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ProtectHealth {
    /// Enabled controllers the appliance follows.
    pub controllers: usize,
    pub connected: usize,
}

/// The `protect.status` message.
struct Running {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    client: Arc<ProtectClient>,
}

struct Cached {
    at: Instant,
    at_ms: i64,
    bootstrap: Arc<Bootstrap>,
}

/// A bootstrap for the API, with where it came from.
pub struct CameraList {
    pub bootstrap: Arc<Bootstrap>,
    /// True when it came from the cache.
    pub cached: bool,
    /// When it was read from the console (unix ms).
    pub read_at_ms: i64,
}

/// What the controller supervisor uses.
pub struct Env {
    pub store: crate::store::Store,
    pub keys: crate::crypto::Keys,
    pub clock: Arc<dyn Clock>,
    pub bus: Bus,
    pub events: Events,
    pub describer: Arc<Describer>,
    pub protect: crate::config::ProtectSection,
    /// `max_clip_seconds` bounds a Protect event's export.
    pub video: crate::config::VideoSection,
}

/// Held in an `Arc` (its tasks keep a clone).
pub struct ControllerManager {
    env: Env,
    running: tokio::sync::Mutex<HashMap<String, Running>>,
    status: Mutex<HashMap<String, LinkStatus>>,
    cache: Mutex<HashMap<String, Cached>>,
}

/// The client settings of a stored controller (the password unsealed).
pub fn client_config(
    row: &ControllerRow,
    keys: &crate::crypto::Keys,
) -> Result<ControllerConfig, ProtectError> {
    let password = keys
        .unseal(&row.password_sealed)
        .ok()
        .and_then(|p| String::from_utf8(p).ok())
        .ok_or_else(|| {
            ProtectError::InvalidInput(
                "the stored password cannot be read (was the data dir's key replaced?); set the \
                 password again"
                    .into(),
            )
        })?;
    Ok(ControllerConfig {
        host: crate::protect::host_with_port(&row.host, row.port),
        username: row.username.clone(),
        password,
        verify_ssl: row.verify_ssl,
    })
}

impl ControllerManager {
    pub fn new(env: Env) -> Self {
        ControllerManager {
            env,
            running: Default::default(),
            status: Default::default(),
            cache: Default::default(),
        }
    }

    pub fn status(&self, id: &str) -> LinkStatus {
        self.status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
            .unwrap_or_default()
    }

    pub fn health(&self) -> ProtectHealth {
        let map = self.status.lock().unwrap_or_else(|e| e.into_inner());
        ProtectHealth {
            controllers: map.values().filter(|s| s.status != "disconnected").count(),
            connected: map.values().filter(|s| s.status == "connected").count(),
        }
    }

    fn set_status(&self, row: &ControllerRow, now: LinkStatus) {
        let changed = {
            let mut map = self.status.lock().unwrap_or_else(|e| e.into_inner());
            let slot = map.entry(row.id.clone()).or_default();
            let changed = *slot != now;
            *slot = now.clone();
            changed
        };
        if !changed {
            return;
        }
        match &now.error {
            Some(e) => {
                tracing::warn!(controller.id = %row.id, controller.name = %row.name, status = now.status, error = %e, "Protect controller")
            }
            None => {
                tracing::info!(controller.id = %row.id, controller.name = %row.name, status = now.status, "Protect controller")
            }
        }
        self.env.bus.publish(
            self.env.clock.now_ms(),
            Message::ControllerStatus {
                controller_id: row.id.clone(),
                name: row.name.clone(),
                status: Arc::new(now),
            },
        );
    }

    /// Starts (or restarts) following a controller; a disabled one is stopped instead.
    pub async fn start(self: &Arc<Self>, row: ControllerRow) {
        let mut running = self.running.lock().await;
        Self::stop_locked(&mut running, &row.id).await;
        self.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&row.id);
        if !row.is_enabled {
            self.set_status(&row, LinkStatus::default());
            return;
        }
        let client = match client_config(&row, &self.env.keys).and_then(ProtectClient::new) {
            Ok(c) => Arc::new(c),
            Err(e) => {
                self.set_status(
                    &row,
                    LinkStatus {
                        status: "error",
                        error: Some(e.to_string()),
                    },
                );
                return;
            }
        };
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(follow(self.clone(), row.clone(), client.clone(), stop_rx));
        running.insert(row.id.clone(), Running { stop, task, client });
    }

    /// Stops following a controller and forgets its state.
    pub async fn stop(&self, id: &str) {
        Self::stop_locked(&mut *self.running.lock().await, id).await;
        self.status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
        self.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
    }

    async fn stop_locked(running: &mut HashMap<String, Running>, id: &str) {
        if let Some(r) = running.remove(id) {
            let _ = r.stop.send(true);
            let mut task = r.task;
            if tokio::time::timeout(Duration::from_secs(5), &mut task)
                .await
                .is_err()
            {
                task.abort();
            }
        }
    }

    /// Follows every enabled controller (at boot).
    pub async fn start_enabled(self: &Arc<Self>) {
        match self.env.store.read(rows::list).await {
            Ok(list) => {
                for row in list.into_iter().filter(|r| r.is_enabled) {
                    self.start(row).await;
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot read the Protect controllers"),
        }
    }

    pub async fn stop_all(&self) {
        let mut running = self.running.lock().await;
        let ids: Vec<String> = running.keys().cloned().collect();
        for id in ids {
            Self::stop_locked(&mut running, &id).await;
        }
    }

    /// The running client of a controller, else a new one from its row.
    async fn client(&self, row: &ControllerRow) -> Result<Arc<ProtectClient>, ProtectError> {
        if let Some(r) = self.running.lock().await.get(&row.id) {
            return Ok(r.client.clone());
        }
        Ok(Arc::new(ProtectClient::new(client_config(
            row,
            &self.env.keys,
        )?)?))
    }

    /// A Protect camera's current picture, from its console through the followed controller's
    /// session; `None` when the controller is not followed (disabled): a page refreshing the
    /// picture must not make the appliance log in to the console every second.
    pub async fn snapshot(
        &self,
        controller_id: &str,
        protect_camera_id: &str,
    ) -> Option<Result<bytes::Bytes, ProtectError>> {
        let client = self
            .running
            .lock()
            .await
            .get(controller_id)
            .map(|r| r.client.clone())?;
        Some(client.snapshot(protect_camera_id).await)
    }

    fn remember(&self, id: &str, bootstrap: Arc<Bootstrap>, now_ms: i64) {
        self.cache.lock().unwrap_or_else(|e| e.into_inner()).insert(
            id.to_string(),
            Cached {
                at: Instant::now(),
                at_ms: now_ms,
                bootstrap,
            },
        );
    }

    /// The last bootstrap read from a controller, however old.
    pub fn cached(&self, id: &str) -> Option<Arc<Bootstrap>> {
        self.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .map(|c| c.bootstrap.clone())
    }

    /// A controller's cameras: from the cache when it is fresher than `protect.camera_cache_secs`
    /// (and `force` is off), else read from the console.
    pub async fn camera_list(
        &self,
        row: &ControllerRow,
        force: bool,
    ) -> Result<CameraList, ProtectError> {
        let ttl = Duration::from_secs(self.env.protect.camera_cache_secs);
        if !force {
            let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(c) = cache.get(&row.id).filter(|c| c.at.elapsed() < ttl) {
                return Ok(CameraList {
                    bootstrap: c.bootstrap.clone(),
                    cached: true,
                    read_at_ms: c.at_ms,
                });
            }
        }
        let client = self.client(row).await?;
        let b = Arc::new(client.bootstrap().await?);
        let now = self.env.clock.now_ms();
        self.remember(&row.id, b.clone(), now);
        Ok(CameraList {
            bootstrap: b,
            cached: false,
            read_at_ms: now,
        })
    }
}

/// What the event handlers of one controller share.
struct Shared {
    state: Arc<ControllerManager>,
    controller_id: String,
    client: Arc<ProtectClient>,
    snapshots: Semaphore,
    dedupe: Mutex<Dedupe>,
    clips: Arc<clips::Clips>,
}

#[derive(Default)]
struct Dedupe {
    /// Protect event ids being turned into events now.
    in_flight: HashSet<String>,
    /// Last event per (appliance camera id, is a ring), unix ms.
    last: HashMap<(String, bool), i64>,
}

/// Follows one controller until told to stop.
async fn follow(
    state: Arc<ControllerManager>,
    row: ControllerRow,
    client: Arc<ProtectClient>,
    mut stop: watch::Receiver<bool>,
) {
    let mgr = &state;
    let idle = Duration::from_secs(state.env.protect.idle_timeout_secs);
    let shared = Arc::new(Shared {
        state: state.clone(),
        controller_id: row.id.clone(),
        client: client.clone(),
        snapshots: Semaphore::new(SNAPSHOTS_AT_ONCE),
        dedupe: Mutex::new(Dedupe::default()),
        clips: clips::Clips::new(
            client.clone(),
            state.env.events.clone(),
            state.env.protect.clip_timing,
            state.env.video.max_clip_seconds,
        ),
    });
    // However this task ends, the clips it was waiting for are given up.
    let _clips = clips::AbortOnDrop(shared.clips.clone());
    // Kept across reconnects: a resumed socket may replay what was already seen.
    let mut mapper = EventMapper::new();
    let mut resume: Option<String> = None;
    let mut backoff = Duration::from_secs(1);
    loop {
        mgr.set_status(
            &row,
            LinkStatus {
                status: "connecting",
                error: mgr.status(&row.id).error,
            },
        );
        let open = async {
            let b = Arc::new(client.bootstrap().await?);
            mgr.remember(&row.id, b.clone(), state.env.clock.now_ms());
            let from = resume.clone().or_else(|| b.last_update_id.clone());
            client.updates(from.as_deref()).await
        };
        let opened = tokio::select! {
            r = open => r,
            _ = stop.changed() => return,
        };
        let why = match opened {
            Err(e) => {
                let msg = e.to_string();
                record(&state.env, &row.id, None, Some(&msg)).await;
                mgr.set_status(
                    &row,
                    LinkStatus {
                        status: "error",
                        error: Some(msg),
                    },
                );
                None
            }
            Ok(mut stream) => {
                let since = Instant::now();
                record(&state.env, &row.id, Some(state.env.clock.now_ms()), None).await;
                mgr.set_status(
                    &row,
                    LinkStatus {
                        status: "connected",
                        error: None,
                    },
                );
                let why = loop {
                    tokio::select! {
                        next = tokio::time::timeout(idle, stream.next()) => match next {
                            Err(_) => break format!("no update for {} s", idle.as_secs()),
                            Ok(None) => break stream
                                .end_reason()
                                .unwrap_or("the update socket closed")
                                .to_string(),
                            Ok(Some(msg)) => {
                                let mapped = mapper.map_all(&msg);
                                if let Some(d) = mapped.detection {
                                    let shared = shared.clone();
                                    tokio::spawn(async move { on_detection(shared, d).await });
                                }
                                if let Some(end) = mapped.end {
                                    shared.clips.ended(&end);
                                }
                            }
                        },
                        _ = stop.changed() => {
                            stream.close().await;
                            return;
                        }
                    }
                };
                resume = stream.last_update_id().map(str::to_string);
                if since.elapsed() >= STABLE_AFTER {
                    backoff = Duration::from_secs(1);
                }
                let msg = format!("update socket: {why}");
                record(&state.env, &row.id, None, Some(&msg)).await;
                Some(msg)
            }
        };
        if let Some(msg) = why {
            mgr.set_status(
                &row,
                LinkStatus {
                    status: "connecting",
                    error: Some(msg),
                },
            );
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = stop.changed() => return,
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

async fn record(state: &Env, id: &str, connected_at: Option<i64>, error: Option<&str>) {
    let (id, error) = (id.to_string(), error.map(str::to_string));
    if let Err(e) = state
        .store
        .write(move |c| rows::record_connection(c, &id, connected_at, error.as_deref()))
        .await
    {
        tracing::warn!(error = %e, "cannot record a Protect connection state");
    }
}

/// What a detection becomes on a camera, if its filter lets it through.
#[derive(Debug, PartialEq, Eq)]
pub struct Admitted {
    /// `person`, `vehicle`, `package`, `animal`, `motion` or `ring`.
    pub main: String,
    /// Every admitted kind, main first.
    pub kinds: Vec<String>,
    pub ring: bool,
}

/// Applies a camera's filter to a detection.
pub fn admit(filter: &[String], kind: &DetectionKind) -> Option<Admitted> {
    let listed = |t: &str| filter.iter().any(|f| f == t);
    let (kinds, ring) = match kind {
        DetectionKind::Smart(types) => (
            types
                .iter()
                .filter(|t| listed(t))
                .cloned()
                .collect::<Vec<_>>(),
            false,
        ),
        DetectionKind::Ring if listed("ring") => (vec!["ring".to_string()], true),
        DetectionKind::Motion if listed("motion") => (vec!["motion".to_string()], false),
        _ => return None,
    };
    Some(Admitted {
        main: kinds.first()?.clone(),
        kinds,
        ring,
    })
}

/// Clears an event id from the in-flight set when the handler ends, however it ends.
struct InFlight<'a> {
    shared: &'a Shared,
    id: String,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.shared
            .dedupe
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .in_flight
            .remove(&self.id);
    }
}

async fn on_detection(shared: Arc<Shared>, d: ProtectDetection) {
    let state = &shared.state.env;
    let (ctrl, pid) = (shared.controller_id.clone(), d.camera_id.clone());
    let camera = state
        .store
        .read(move |c| {
            Ok(rows::cameras(c, &ctrl)?
                .into_iter()
                .find(|c| c.protect_camera_id.as_deref() == Some(pid.as_str())))
        })
        .await;
    let cam = match camera {
        Ok(Some(c)) if c.is_enabled => c,
        Ok(_) => {
            tracing::debug!(protect.camera = %d.camera_id, protect.event = %d.event_id, "detection on a camera not enabled for analysis");
            return;
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the Protect cameras");
            return;
        }
    };
    let Some(admitted) = admit(&cam.smart_detection_types, &d.kind) else {
        tracing::debug!(camera.id = %cam.id, protect.event = %d.event_id, kind = ?d.kind, "Protect detection outside the camera's filter");
        return;
    };
    // Detection switched off (`motion_enabled`): rings still come through.
    if !cam.motion_enabled && !admitted.ring {
        tracing::debug!(camera.id = %cam.id, protect.event = %d.event_id, "detection is off for this camera");
        return;
    }
    let now = state.clock.now_ms();
    // One event per Protect event id, and the camera's cooldown.
    {
        let mut dd = shared.dedupe.lock().unwrap_or_else(|e| e.into_inner());
        if !dd.in_flight.insert(d.event_id.clone()) {
            return;
        }
        let key = (cam.id.clone(), admitted.ring);
        let cooldown = i64::from(cam.motion_cooldown) * 1000;
        if dd.last.get(&key).is_some_and(|t| now - t < cooldown) {
            dd.in_flight.remove(&d.event_id);
            tracing::debug!(camera.id = %cam.id, protect.event = %d.event_id, "Protect detection within the camera's cooldown");
            return;
        }
        dd.last.insert(key, now);
    }
    let _guard = InFlight {
        shared: &shared,
        id: d.event_id.clone(),
    };
    let eid = d.event_id.clone();
    match state.store.read(move |c| rows::has_event(c, &eid)).await {
        Ok(false) => {}
        Ok(true) => return,
        Err(e) => {
            tracing::warn!(error = %e, "cannot check for a Protect event");
            return;
        }
    }
    if admitted.ring {
        state.bus.publish(
            now,
            Message::DoorbellRing(Arc::new(Ring {
                camera_id: cam.id.clone(),
                camera_name: cam.name.clone(),
                protect_camera_id: d.camera_id.clone(),
                protect_event_id: d.event_id.clone(),
                ts: now,
            })),
        );
    }
    let full = snapshot(&shared, &cam, &d.camera_id).await;
    let thumb = match &full {
        Some(jpeg) => shrink(jpeg.clone()).await,
        None => None,
    };
    let describe = full.is_some() && state.describer.admit(&cam.id).await.is_ok();
    let ts = state.clock.now_ms();
    let ev = EventRow {
        id: crate::crypto::new_uuid(),
        camera_id: cam.id.clone(),
        ts,
        detection_type: admitted.main.clone(),
        confidence: d.score.unwrap_or(0).min(100),
        objects_detected: admitted.kinds.clone(),
        bounding_boxes: serde_json::Value::Array(Vec::new()),
        source_type: "protect".into(),
        protect_event_id: Some(d.event_id.clone()),
        smart_detection_type: Some(admitted.main.clone()),
        is_doorbell_ring: admitted.ring,
        description_pending: describe,
        created_at: ts,
        ..Default::default()
    };
    match state.events.record(ev, thumb).await {
        Ok(e) => {
            tracing::info!(camera.id = %cam.id, event.id = %e.row.id, protect.event = %d.event_id, detection = %admitted.main, "Protect event");
            if cam.record_clips {
                shared.clips.stored(clips::Stored {
                    protect_event_id: d.event_id.clone(),
                    protect_camera_id: d.camera_id.clone(),
                    event_id: e.row.id.clone(),
                    camera_id: cam.id.clone(),
                    start_ms: d.start_ms.unwrap_or(ts),
                });
            }
            if let (true, Some(jpeg)) = (describe, full) {
                let seen = admitted
                    .kinds
                    .iter()
                    .map(|k| crate::ai::SeenObject {
                        label: k.clone(),
                        score: f32::from(d.score.unwrap_or(0)) / 100.0,
                        bbox: None,
                    })
                    .collect();
                crate::describe::spawn(
                    &state.describer,
                    crate::describe::Job {
                        event_id: e.row.id.clone(),
                        camera_id: cam.id.clone(),
                        camera_name: cam.name.clone(),
                        prompt_override: cam.prompt_override.clone(),
                        jpeg: jpeg.to_vec(),
                        seen,
                        ts_ms: ts,
                    },
                );
            }
        }
        Err(e) => {
            tracing::warn!(camera.id = %cam.id, protect.event = %d.event_id, error = ?e, "could not store a Protect event")
        }
    }
}

/// The console's current snapshot of a camera: one retry after half a second; `None` (the
/// event is stored without a picture) when both fail.
async fn snapshot(shared: &Shared, cam: &CameraRow, protect_id: &str) -> Option<bytes::Bytes> {
    let _permit = shared.snapshots.acquire().await.ok()?;
    let mut last = None;
    for attempt in 0..2 {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        match shared.client.snapshot(protect_id).await {
            Ok(j) => return Some(j),
            Err(e) => last = Some(e),
        }
    }
    if let Some(e) = last {
        tracing::warn!(camera.id = %cam.id, error = %e, "no snapshot from the Protect console; the event is stored without one");
    }
    None
}

/// The stored thumbnail: the snapshot shrunk to [`THUMB_LONG_SIDE`], off the runtime (with the
/// process-wide bound on decodes and their memory).
async fn shrink(jpeg: bytes::Bytes) -> Option<Vec<u8>> {
    match crate::ai::image::prepare_bounded(jpeg, THUMB_LONG_SIDE).await {
        Ok(p) => Some(p.jpeg),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the Protect snapshot");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn filters() {
        let smart = DetectionKind::Smart(filter(&["vehicle", "person"]));
        let a = admit(&filter(&["person"]), &smart).unwrap();
        assert_eq!(
            (a.main.as_str(), a.kinds.len(), a.ring),
            ("person", 1, false)
        );
        let both = admit(&filter(&["person", "vehicle"]), &smart).unwrap();
        assert_eq!(both.kinds, filter(&["vehicle", "person"]));
        assert_eq!(admit(&filter(&["package"]), &smart), None);
        assert_eq!(admit(&filter(&["person"]), &DetectionKind::Ring), None);
        let ring = admit(&filter(&["person", "ring"]), &DetectionKind::Ring).unwrap();
        assert!(ring.ring);
        assert_eq!(ring.main, "ring");
        assert_eq!(admit(&filter(&["person"]), &DetectionKind::Motion), None);
        assert_eq!(
            admit(&filter(&["motion"]), &DetectionKind::Motion)
                .unwrap()
                .main,
            "motion"
        );
        // `motion` does not let smart detections through: they are listed by kind.
        assert_eq!(admit(&filter(&["motion"]), &smart), None);
    }
}
