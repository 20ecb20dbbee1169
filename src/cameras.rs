//! The camera supervisor: one task per running camera that opens its source, restarts it with
//! exponential backoff (1 s doubling to 30 s) when it fails or stalls, and feeds its packets to
//! an analysis thread (H.264 decode, motion detection, snapshots) through a bounded queue.
//! Motion that passes the camera's zones, schedule and cooldown becomes an event through
//! [`crate::events::Events::record`]. Status changes are published on the [`crate::bus`].
//! The supervisor gets the handles it uses ([`Env`]), never the application state.
//!
//! Invariants: at most one task per camera; stopping a camera stops its task and thread before
//! the call returns (or within 5 s); decode and motion never run on tokio workers; a full
//! queue drops packets (and then waits for the next key frame) instead of growing.

use crate::bus::{Bus, Message};
use crate::capture::{CaptureError, Opener, Packet, Source, SourceSpec};
use crate::clips::{ClipSettings, Recorder};
use crate::clock::Clock;
use crate::describe::Describer;
use crate::detect::pool::{Job, Outcome as DetectOutcome};
use crate::detect::preprocess::{regions_for, Region};
use crate::detect::service::DetectorService;
use crate::detect::track::{Area, Observation, Tracker};
use crate::events::Events;
pub use crate::model::LiveStatus;
use crate::model::{CameraType, Schedule};
use crate::motion::{MotionBox, MotionDetector};
use crate::store::cameras::CameraRow;
use crate::store::events::EventRow;
use crate::video::decode::{H264Decoder, Picture};
use crate::video::jpeg::{encode_picture, Frame420, SNAPSHOT_MAX_WIDTH};
use crate::video::latest::LatestFrame;
use crate::video::live::LiveFeed;
use crate::video::Au;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};

const OPEN_TIMEOUT: Duration = Duration::from_secs(15);
/// No decoded picture for this long while connected: the stream is stalled.
pub const WATCHDOG: Duration = Duration::from_secs(10);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
const QUEUE: usize = 16;
/// After motion stops, the last regions are looked at once more after this long.
const CHECK_AFTER: Duration = Duration::from_secs(3);
/// Detections this weak continue a track (but never start one).
const TRACK_MIN_SCORE: f32 = 0.3;
/// A track's best frame replaces its event's snapshot when the track ends, or after this long.
const IMPROVE_AFTER_MS: u64 = 10_000;
/// While the detector has an unconfirmed candidate, this many following decoded frames are
/// analysed at the camera's frame rate instead of the analysis rate, so the confirming run
/// comes one frame later instead of one analysis interval later.
const BURST_FRAMES: u32 = 1;
/// Motion is reported over (`Message::Motion` false) after this long without any.
pub const MOTION_OFF_AFTER: Duration = Duration::from_secs(10);
/// An object not seen for this long no longer counts as in view (`Message::InView`).
pub const IN_VIEW_HOLD_MS: u64 = 60_000;

struct Running {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

/// What the camera supervisor uses.
pub struct Env {
    pub store: crate::store::Store,
    pub keys: crate::crypto::Keys,
    pub clock: Arc<dyn Clock>,
    pub bus: Bus,
    pub events: Events,
    pub detector: Arc<DetectorService>,
    pub describer: Arc<Describer>,
    pub opener: Arc<dyn Opener>,
    /// Clips and live viewing (`[video]`).
    pub video: crate::config::VideoSection,
    /// Recording stops below the free-disk floor.
    pub retention: Arc<crate::retention::Retention>,
}

/// The handles and live status the camera tasks share.
struct Shared {
    env: Env,
    status: Mutex<HashMap<String, LiveStatus>>,
    /// Each running camera's latest decoded picture.
    latest: Mutex<HashMap<String, Arc<LatestFrame>>>,
    /// Each streaming H.264 camera's live fan-out (replaced when its stream restarts).
    live: Mutex<HashMap<String, Arc<LiveFeed>>>,
}

pub struct CameraManager {
    shared: Arc<Shared>,
    running: tokio::sync::Mutex<HashMap<String, Running>>,
}

/// True for cameras whose frames the appliance captures itself.
pub fn capturable(kind: CameraType) -> bool {
    matches!(kind, CameraType::Rtsp | CameraType::Usb | CameraType::File)
}

pub fn spec_for(row: &CameraRow, keys: &crate::crypto::Keys) -> SourceSpec {
    SourceSpec {
        kind: row.camera_type,
        rtsp_url: row.rtsp_url.clone(),
        username: row.username.clone(),
        password: row
            .password_sealed
            .as_ref()
            .and_then(|s| keys.unseal(s).ok())
            .and_then(|p| String::from_utf8(p).ok()),
        rtsp_transport: row.rtsp_transport.clone(),
        device_index: row.device_index,
        device_path: row.device_path.clone(),
        file_path: row.file_path.clone(),
        frame_rate: row.frame_rate,
    }
}

impl CameraManager {
    pub fn new(env: Env) -> Self {
        CameraManager {
            shared: Arc::new(Shared {
                env,
                status: Default::default(),
                latest: Default::default(),
                live: Default::default(),
            }),
            running: Default::default(),
        }
    }

    /// The latest picture of a running camera (none for a stopped or Protect camera).
    pub fn latest(&self, id: &str) -> Option<Arc<LatestFrame>> {
        self.shared
            .latest
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
    }

    /// The live fan-out of a camera whose H.264 stream is running (none for a stopped,
    /// connecting, V4L2 or Protect camera).
    pub fn live(&self, id: &str) -> Option<Arc<LiveFeed>> {
        self.shared
            .live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .filter(|f| f.is_open())
            .cloned()
    }

    /// Live viewers per camera (`[video] max_live_viewers`).
    pub fn max_live_viewers(&self) -> usize {
        self.shared.env.video.max_live_viewers
    }

    pub fn opener(&self) -> &Arc<dyn Opener> {
        &self.shared.env.opener
    }

    pub fn status(&self, id: &str) -> LiveStatus {
        self.shared
            .status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
            .unwrap_or_default()
    }

    /// Starts (or restarts) capture for a camera.
    pub async fn start(&self, row: CameraRow) {
        // One lock over stop-then-start, so two concurrent calls for a camera can never leave
        // two tasks running.
        let mut running = self.running.lock().await;
        self.start_locked(&mut running, row).await;
    }

    async fn start_locked(&self, running: &mut HashMap<String, Running>, row: CameraRow) {
        Self::stop_locked(running, &row.id).await;
        if !capturable(row.camera_type) {
            return;
        }
        self.shared.set_status(&row, |s| {
            s.status = "connecting";
            s.error = None;
        });
        let (stop_tx, stop_rx) = watch::channel(false);
        let st = self.shared.clone();
        let id = row.id.clone();
        let task = tokio::spawn(async move { run_camera(st, row, stop_rx).await });
        running.insert(
            id,
            Running {
                stop: stop_tx,
                task,
            },
        );
    }

    /// Stops a camera's capture and waits (up to 5 s) for its task to end.
    pub async fn stop(&self, id: &str) {
        let mut running = self.running.lock().await;
        Self::stop_locked(&mut running, id).await;
    }

    async fn stop_locked(running: &mut HashMap<String, Running>, id: &str) {
        if let Some(r) = running.remove(id) {
            let _ = r.stop.send(true);
            let abort = r.task.abort_handle();
            if tokio::time::timeout(Duration::from_secs(5), r.task)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
    }

    pub async fn is_running(&self, id: &str) -> bool {
        self.running.lock().await.contains_key(id)
    }

    /// Brings a camera's capture in line with its stored settings (after create, update,
    /// delete). The settings are read under the same lock as the restart, so concurrent
    /// changes are applied in order.
    pub async fn sync(&self, id: &str) {
        self.sync_locked(id).await;
        let env = &self.shared.env;
        env.bus.publish(
            env.clock.now_ms(),
            Message::CameraChanged {
                camera_id: id.to_string(),
            },
        );
    }

    async fn sync_locked(&self, id: &str) {
        let mut running = self.running.lock().await;
        let cam = id.to_string();
        match self
            .shared
            .env
            .store
            .read(move |c| crate::store::cameras::get(c, &cam))
            .await
        {
            Ok(row) if row.is_enabled && capturable(row.camera_type) => {
                self.start_locked(&mut running, row).await
            }
            Ok(_) => Self::stop_locked(&mut running, id).await,
            Err(_) => {
                Self::stop_locked(&mut running, id).await;
                self.shared
                    .status
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(id);
            }
        }
    }

    /// Turns a camera's capture (`is_enabled`) and its motion and object detection
    /// (`motion_enabled`) on or off, saves it and applies it, as the camera API does. `None`
    /// leaves a flag as it is. A Protect camera that is not enabled has its console's events
    /// ignored; with detection off, only its rings come through.
    pub async fn set_flags(
        &self,
        id: &str,
        enabled: Option<bool>,
        detection: Option<bool>,
    ) -> Result<CameraRow, crate::store::StoreError> {
        let env = &self.shared.env;
        let (cam, now) = (id.to_string(), env.clock.now_ms());
        let row = env
            .store
            .write(move |c| {
                let mut row = crate::store::cameras::get(c, &cam)?;
                if let Some(e) = enabled {
                    row.is_enabled = e;
                }
                if let Some(d) = detection {
                    row.motion_enabled = d;
                }
                row.updated_at = now;
                crate::store::cameras::update(c, &row)?;
                Ok(row)
            })
            .await?;
        self.sync(id).await;
        Ok(row)
    }

    /// Starts every enabled camera (at boot).
    pub async fn start_enabled(&self) {
        match self
            .shared
            .env
            .store
            .read(|c| crate::store::cameras::list(c, Some(true)))
            .await
        {
            Ok(rows) => {
                for row in rows.into_iter().filter(|r| capturable(r.camera_type)) {
                    self.start(row).await;
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot list cameras to start"),
        }
    }

    /// Stops every camera (at shutdown).
    pub async fn stop_all(&self) {
        let mut running = self.running.lock().await;
        let ids: Vec<String> = running.keys().cloned().collect();
        for id in ids {
            Self::stop_locked(&mut running, &id).await;
        }
    }
}

impl Shared {
    fn publish_motion(&self, camera_id: &str, active: bool) {
        self.env.bus.publish(
            self.env.clock.now_ms(),
            Message::Motion {
                camera_id: camera_id.to_string(),
                active,
            },
        );
    }

    fn set_status(&self, row: &CameraRow, update: impl FnOnce(&mut LiveStatus)) {
        let (changed, now) = {
            let mut map = self.status.lock().unwrap_or_else(|e| e.into_inner());
            let s = map.entry(row.id.clone()).or_default();
            let before = (s.status, s.error.clone());
            update(s);
            ((s.status, s.error.clone()) != before, s.clone())
        };
        if changed {
            match &now.error {
                Some(e) => {
                    tracing::warn!(camera.id = %row.id, camera.name = %row.name, status = now.status, error = %e, "camera status")
                }
                None => {
                    tracing::info!(camera.id = %row.id, camera.name = %row.name, status = now.status, "camera status")
                }
            }
            self.env.bus.publish(
                self.env.clock.now_ms(),
                Message::CameraStatus {
                    camera_id: row.id.clone(),
                    name: row.name.clone(),
                    status: Arc::new(now),
                },
            );
        }
    }
}

/// What a connection test found.
pub struct Probe {
    pub codec: &'static str,
    pub width: usize,
    pub height: usize,
    pub fps: Option<f32>,
    pub jpeg: Vec<u8>,
}

/// Opens a source and decodes its first picture, within 15 s in all.
pub async fn probe(opener: &dyn Opener, spec: &SourceSpec) -> Result<Probe, CaptureError> {
    let work = async {
        let mut source = opener.open(spec).await?;
        let codec = source.codec();
        let fps = source.nominal_fps();
        let mut decoder: Option<H264Decoder> = None;
        loop {
            let pkt = source.next().await?;
            let picture = tokio::task::block_in_place(
                || -> Result<Option<(usize, usize, Vec<u8>)>, CaptureError> {
                    let mut out = None;
                    let mut take = |p: &Picture<'_>| {
                        if out.is_none() {
                            out = encode_picture(p, SNAPSHOT_MAX_WIDTH, 80)
                                .ok()
                                .map(|j| (p.width, p.height, j));
                        }
                    };
                    match pkt {
                        Packet::H264(au) => {
                            if decoder.is_none() {
                                decoder = Some(
                                    H264Decoder::new()
                                        .map_err(|e| CaptureError::Stream(e.to_string()))?,
                                );
                            }
                            if let Some(d) = decoder.as_mut() {
                                d.decode(&au, &mut take);
                            }
                        }
                        Packet::Picture(f) => take(&f.picture()),
                    }
                    Ok(out)
                },
            )?;
            if let Some((width, height, jpeg)) = picture {
                return Ok(Probe {
                    codec,
                    width,
                    height,
                    fps,
                    jpeg,
                });
            }
        }
    };
    match tokio::time::timeout(OPEN_TIMEOUT, work).await {
        Ok(r) => r,
        Err(_) => Err(CaptureError::Timeout(format!(
            "no picture within {} s",
            OPEN_TIMEOUT.as_secs()
        ))),
    }
}

enum Outcome {
    Stopped,
    Failed(CaptureError),
}

async fn run_camera(state: Arc<Shared>, row: CameraRow, mut stop: watch::Receiver<bool>) {
    let mgr = &state;
    let spec = spec_for(&row, &state.env.keys);
    let mut backoff = Duration::from_secs(1);
    // Kept across reconnects: a parked car is not re-announced because the stream dropped.
    let mut objects = Objects::default();
    loop {
        mgr.set_status(&row, |s| {
            s.status = "connecting";
        });
        let opened = tokio::select! {
            r = tokio::time::timeout(OPEN_TIMEOUT, mgr.env.opener.open(&spec)) => r,
            _ = stop.changed() => break,
        };
        let err = match opened {
            Ok(Ok(source)) => {
                match stream(&state, &row, source, &mut stop, &mut backoff, &mut objects).await {
                    Outcome::Stopped => break,
                    Outcome::Failed(e) => e,
                }
            }
            Ok(Err(e)) => e,
            Err(_) => CaptureError::Timeout(format!(
                "could not open the stream within {} s",
                OPEN_TIMEOUT.as_secs()
            )),
        };
        mgr.set_status(&row, |s| {
            s.status = "error";
            s.error = Some(err.to_string());
            s.fps = None;
        });
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = stop.changed() => break,
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
    mgr.set_status(&row, |s| {
        *s = LiveStatus::default();
    });
    if let Some(l) = mgr
        .latest
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&row.id)
    {
        l.clear();
    }
    // A stopped camera sees nothing: its motion is over and nothing is in view.
    if objects.motion_on {
        mgr.publish_motion(&row.id, false);
    }
    objects.tracker = Tracker::default();
    report_in_view(&state, &row, &mut objects);
}

/// Presentation times for a stream whose packets carry none: the arrival time, smoothed. A
/// steady stream gets steady frame durations (network and scheduling jitter would otherwise
/// make some nearly zero, which players dislike), while the times follow the arrival clock
/// (a gap in the stream stays a gap). 90 kHz ticks, strictly increasing.
struct StreamClock {
    last: Option<u64>,
    /// The frame interval, averaged over the arrivals.
    interval: f64,
}

impl StreamClock {
    fn new(nominal_fps: Option<f32>) -> Self {
        let fps = nominal_fps
            .filter(|f| (1.0..=120.0).contains(f))
            .unwrap_or(15.0);
        StreamClock {
            last: None,
            interval: 90_000.0 / f64::from(fps),
        }
    }

    /// A time the source knows exactly (kept strictly increasing).
    fn exact(&mut self, t: u64) -> u64 {
        let t = self.last.map_or(t, |l| t.max(l + 1));
        self.last = Some(t);
        t
    }

    fn stamp(&mut self, arrival: u64) -> u64 {
        let Some(last) = self.last else {
            self.last = Some(arrival);
            return arrival;
        };
        let seen = arrival.saturating_sub(last) as f64;
        let predicted = last as f64 + self.interval;
        let err = arrival as f64 - predicted;
        let pts = if err.abs() > 4.0 * self.interval {
            // A gap or a burst far off the rhythm: follow the arrival clock.
            arrival.max(last + 1)
        } else {
            self.interval += (seen.clamp(0.0, 4.0 * self.interval) - self.interval) / 32.0;
            // A slow correction: durations stay within a few per cent of the interval.
            let p = (predicted + err / 64.0) as u64;
            p.max(last + (self.interval / 2.0) as u64).max(last + 1)
        };
        self.last = Some(pts);
        pts
    }
}

/// What the camera's task hands its analysis thread.
enum Work {
    Au(Arc<Au>),
    Picture(Frame420),
}

/// What the analysis thread reports.
enum Report {
    /// Motion started (`true`) or has been quiet for [`MOTION_OFF_AFTER`].
    MotionState(bool),
    Frames {
        fps: f32,
        width: usize,
        height: usize,
    },
    /// Motion, detector off: the event's snapshot and motion boxes.
    Motion {
        jpeg: Vec<u8>,
        boxes: Vec<MotionBox>,
        fraction: f32,
    },
    /// A detector run finished.
    Detected {
        outcome: DetectOutcome,
        /// Motion boxes and changed fraction of the frame (empty for a check run).
        boxes: Vec<MotionBox>,
        fraction: f32,
        /// A look at the last regions after motion stopped.
        check: bool,
    },
}

/// The best frame of a track: the frame and the objects of the camera's filter seen on it at or
/// above the minimum score (the event's boxes).
#[derive(Clone)]
struct Best {
    frame: Arc<Frame420>,
    seen: Arc<[Observation]>,
}

/// An event's `bounding_boxes` for these objects.
fn boxes_json(seen: &[Observation], labels: &[String]) -> serde_json::Value {
    seen.iter()
        .map(|o| {
            let d = &o.det;
            serde_json::json!({
                "x": d.x, "y": d.y, "width": d.width, "height": d.height,
                "label": o.kind, "class": labels.get(d.class).map_or("", |n| n.as_str()),
                "score": (d.score * 1000.0).round() / 1000.0,
            })
        })
        .collect()
}

/// A camera's object tracking state.
struct Objects {
    tracker: Tracker<Option<Best>>,
    /// Frames the analysis thread should analyse at once (a candidate waits for confirmation).
    burst: Arc<AtomicU32>,
    epoch: Instant,
    last_motion_event: Option<Instant>,
    /// Tracks whose best frame was already written to their event.
    improved: std::collections::HashSet<u64>,
    /// Motion last reported on.
    motion_on: bool,
    /// Objects in view last reported (`Message::InView`).
    in_view: Vec<(&'static str, u32)>,
    /// The stream's clip recorder (off between streams).
    recorder: Recorder,
}

impl Default for Objects {
    fn default() -> Self {
        Objects {
            tracker: Tracker::default(),
            burst: Arc::new(AtomicU32::new(0)),
            epoch: Instant::now(),
            last_motion_event: None,
            improved: Default::default(),
            motion_on: false,
            in_view: Vec::new(),
            recorder: Recorder::off(),
        }
    }
}

/// Analysis settings taken from the camera row.
#[derive(Clone)]
struct Analysis {
    frame_rate: u32,
    motion_enabled: bool,
    threshold: f32,
    zones: Vec<crate::model::Zone>,
    cooldown: Duration,
    schedule: Option<Schedule>,
    camera: Arc<str>,
    detector: Arc<DetectorService>,
    /// The filter names an object class (not only `motion`): run the detector.
    wants_objects: bool,
    /// Set by the camera's task while a candidate waits for confirmation (see [`BURST_FRAMES`]).
    burst: Arc<AtomicU32>,
    /// Where the latest decoded picture is kept for the snapshot endpoint.
    latest: Arc<LatestFrame>,
}

async fn stream(
    state: &Arc<Shared>,
    row: &CameraRow,
    mut source: Box<dyn Source>,
    stop: &mut watch::Receiver<bool>,
    backoff: &mut Duration,
    objects: &mut Objects,
) -> Outcome {
    let mgr = state;
    let codec = source.codec();
    let (pkt_tx, pkt_rx) = std::sync::mpsc::sync_channel::<Work>(QUEUE);
    // H.264 streams get a live fan-out and (with `record_clips`) a clip recorder.
    let h264 = codec == "h264";
    let live = h264.then(|| {
        let feed = LiveFeed::new(state.env.video.max_live_viewers);
        mgr.live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(row.id.clone(), feed.clone());
        feed
    });
    objects.recorder = if h264 && row.record_clips {
        let sink = crate::clips::Sink {
            events: state.env.events.clone(),
            retention: state.env.retention.clone(),
            runtime: tokio::runtime::Handle::current(),
        };
        match Recorder::start(&row.id, ClipSettings::from(&state.env.video), sink) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(camera.id = %row.id, error = %e, "cannot start the clip recorder");
                Recorder::off()
            }
        }
    } else {
        Recorder::off()
    };
    let epoch = Instant::now();
    let mut clock = StreamClock::new(source.nominal_fps());
    let (rep_tx, mut rep_rx) = mpsc::channel::<Report>(8);
    let cfg = Analysis {
        frame_rate: row.frame_rate.max(1),
        motion_enabled: row.motion_enabled,
        threshold: row.motion_sensitivity.changed_fraction(),
        zones: row.detection_zones.clone(),
        cooldown: Duration::from_secs(row.motion_cooldown as u64),
        schedule: row.detection_schedule.clone(),
        camera: Arc::from(row.id.as_str()),
        detector: state.env.detector.clone(),
        wants_objects: row.object_filter.iter().any(|c| c != "motion"),
        burst: objects.burst.clone(),
        latest: mgr
            .latest
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(row.id.clone())
            .or_default()
            .clone(),
    };
    let thread = std::thread::Builder::new()
        .name(format!("analyse-{}", &row.id[..8.min(row.id.len())]))
        .spawn(move || analyse(pkt_rx, rep_tx, cfg));
    let thread = match thread {
        Ok(t) => t,
        Err(e) => {
            return Outcome::Failed(CaptureError::Device(format!(
                "cannot start the analysis thread: {e}"
            )))
        }
    };
    let mut last_picture = Instant::now();
    let mut check = tokio::time::interval(Duration::from_secs(1));
    let mut dropping = false;
    let outcome = loop {
        tokio::select! {
            pkt = source.next() => match pkt {
                Ok(p) => {
                    let work = match p {
                        Packet::H264(data) => {
                            let t = (epoch.elapsed().as_micros() as u64) * 9 / 100;
                            let pts = match source.decode_time() {
                                Some(exact) => clock.exact(exact),
                                None => clock.stamp(t),
                            };
                            let key = crate::video::h264::is_idr(&data);
                            let au = Arc::new(Au { data: Arc::from(data), pts, key });
                            if let Some(feed) = &live {
                                feed.push(&au);
                            }
                            objects.recorder.push(au.clone());
                            Work::Au(au)
                        }
                        Packet::Picture(f) => Work::Picture(f),
                    };
                    if dropping {
                        // After an overflow, H.264 can only resume at a key frame.
                        if let Work::Au(au) = &work {
                            if !au.key {
                                continue;
                            }
                        }
                        dropping = false;
                    }
                    match pkt_tx.try_send(work) {
                        Ok(()) => {}
                        Err(std::sync::mpsc::TrySendError::Full(_)) => dropping = true,
                        Err(std::sync::mpsc::TrySendError::Disconnected(_)) => {
                            break Outcome::Failed(CaptureError::Stream("the analysis thread stopped".into()));
                        }
                    }
                }
                Err(e) => break Outcome::Failed(e),
            },
            rep = rep_rx.recv() => match rep {
                Some(Report::Frames { fps, width, height }) => {
                    last_picture = Instant::now();
                    *backoff = Duration::from_secs(1);
                    let now = state.env.clock.now_ms();
                    mgr.set_status(row, |s| {
                        s.status = "streaming";
                        s.error = None;
                        s.fps = Some((fps * 10.0).round() / 10.0);
                        s.resolution = Some((width, height));
                        s.codec = Some(codec);
                        s.last_frame_at = Some(now);
                    });
                }
                Some(Report::MotionState(on)) => {
                    objects.motion_on = on;
                    mgr.publish_motion(&row.id, on);
                }
                Some(Report::Motion { jpeg, boxes, fraction }) => {
                    record_motion(state, row, jpeg, boxes, fraction).await;
                }
                Some(Report::Detected { outcome, boxes, fraction, check }) => {
                    on_detections(state, row, objects, outcome, boxes, fraction, check).await;
                }
                None => break Outcome::Failed(CaptureError::Stream("the analysis thread stopped".into())),
            },
            _ = check.tick() => {
                report_in_view(state, row, objects);
                let rec = objects.recorder.state().as_str();
                mgr.set_status(row, |s| s.recording = Some(rec));
                if last_picture.elapsed() > WATCHDOG {
                    break Outcome::Failed(CaptureError::Timeout(format!("no decodable video for {} s", WATCHDOG.as_secs())));
                }
            }
            _ = stop.changed() => break Outcome::Stopped,
        }
    };
    drop(pkt_tx);
    drop(source);
    if let Some(feed) = live {
        feed.close();
        let mut map = mgr.live.lock().unwrap_or_else(|e| e.into_inner());
        if map.get(&row.id).is_some_and(|f| Arc::ptr_eq(f, &feed)) {
            map.remove(&row.id);
        }
    }
    // The clips being written end with the stream (finished and attached).
    std::mem::replace(&mut objects.recorder, Recorder::off())
        .stop()
        .await;
    // The thread ends when its queue closes; it holds no lock the runtime needs.
    let _ = tokio::task::spawn_blocking(move || thread.join()).await;
    outcome
}

async fn record_motion(
    state: &Arc<Shared>,
    row: &CameraRow,
    jpeg: Vec<u8>,
    boxes: Vec<MotionBox>,
    fraction: f32,
) {
    let threshold = row.motion_sensitivity.changed_fraction();
    let confidence = ((fraction / (2.0 * threshold)).min(1.0) * 100.0).round() as u8;
    let now = state.env.clock.now_ms();
    let bounding_boxes: Vec<serde_json::Value> = boxes
        .iter()
        .map(|b| serde_json::json!({"x": b.x, "y": b.y, "width": b.width, "height": b.height, "label": "motion", "score": fraction}))
        .collect();
    let ev = EventRow {
        id: crate::crypto::new_uuid(),
        camera_id: row.id.clone(),
        ts: now,
        detection_type: "motion".into(),
        confidence,
        objects_detected: vec!["motion".into()],
        bounding_boxes: serde_json::Value::Array(bounding_boxes),
        source_type: row.camera_type.as_str().into(),
        created_at: now,
        ..Default::default()
    };
    match state.env.events.record(ev, Some(jpeg)).await {
        Ok(e) => {
            state
                .env
                .detector
                .counters
                .motion_events
                .fetch_add(1, Ordering::Relaxed);
            tracing::info!(camera.id = %row.id, event.id = %e.row.id, motion.fraction = fraction, "motion event")
        }
        Err(e) => tracing::warn!(camera.id = %row.id, error = ?e, "could not store a motion event"),
    }
}

/// Local weekday (0 = Monday) and minute of the day, from the system's time zone.
fn local_now() -> (u8, u16) {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0) as libc::time_t;
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: `t` and `tm` are valid for the call; localtime_r is thread-safe.
    unsafe { libc::localtime_r(&t, &mut tm) };
    (
        ((tm.tm_wday + 6) % 7) as u8,
        (tm.tm_hour * 60 + tm.tm_min) as u16,
    )
}

/// The analysis thread: decode, cap the analysis rate, detect motion, hand motion frames to the
/// detector pool (or, with the detector off, make motion snapshots).
fn analyse(rx: std::sync::mpsc::Receiver<Work>, tx: mpsc::Sender<Report>, cfg: Analysis) {
    let mut decoder = match H264Decoder::new() {
        Ok(d) => Some(d),
        Err(e) => {
            tracing::error!(error = %e, "no H.264 decoder");
            None
        }
    };
    let mut motion = MotionDetector::new(cfg.threshold, &cfg.zones);
    let min_interval = Duration::from_secs_f32(1.0 / cfg.frame_rate as f32);
    let mut last_analysed: Option<Instant> = None;
    let mut last_event: Option<Instant> = None;
    let mut window_start = Instant::now();
    let mut window_frames = 0u32;
    // The last motion sent to the detector: when, and where it looked.
    let mut episode: Option<(Instant, Vec<Region>, bool)> = None;
    // Motion as last reported, and when it was last seen.
    let mut motion_on = false;
    let mut last_motion: Option<Instant> = None;
    let svc = cfg.detector.clone();
    let pool = svc.pool.as_ref().filter(|_| cfg.wants_objects);
    let mut on_picture = |p: &Picture<'_>| {
        let now = Instant::now();
        cfg.latest.offer(p, now);
        window_frames += 1;
        let elapsed = now.duration_since(window_start);
        if elapsed >= Duration::from_secs(1) || window_frames == 1 && last_analysed.is_none() {
            let fps = window_frames as f32 / elapsed.as_secs_f32().max(0.001);
            let _ = tx.try_send(Report::Frames {
                fps: if last_analysed.is_none() { 0.0 } else { fps },
                width: p.width,
                height: p.height,
            });
            window_start = now;
            window_frames = 0;
        }
        // A candidate waiting for confirmation: this frame is analysed whatever the rate.
        let burst = cfg
            .burst
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok();
        if !burst && last_analysed.is_some_and(|t| now.duration_since(t) < min_interval) {
            return;
        }
        last_analysed = Some(now);
        let r = motion.analyse(p.y, p.width, p.height, p.y_stride);
        let active = cfg.motion_enabled
            && cfg.schedule.as_ref().is_none_or(|s| {
                let (day, minute) = local_now();
                s.is_active(day, minute)
            });
        if active && r.motion {
            last_motion = Some(now);
        }
        let moving = last_motion.is_some_and(|t| now.duration_since(t) < MOTION_OFF_AFTER);
        if moving != motion_on {
            motion_on = moving;
            let _ = tx.blocking_send(Report::MotionState(moving));
        }
        if !active {
            return;
        }
        if !r.motion {
            // Motion stopped: look at the last regions once more, so objects that left end
            // their tracks and those that stayed are confirmed. A burst frame looks there at
            // once (the candidate stood still).
            if let (Some(pool), Some((at, regions, checked))) = (pool, episode.as_mut()) {
                let check = !*checked && now.duration_since(*at) >= CHECK_AFTER;
                if burst || check {
                    *checked |= check;
                    submit(
                        pool,
                        &cfg,
                        &svc,
                        &tx,
                        p,
                        regions.clone(),
                        Vec::new(),
                        0.0,
                        true,
                    );
                }
            }
            return;
        }
        svc.counters.motion_frames.fetch_add(1, Ordering::Relaxed);
        if let Some(pool) = pool {
            let boxes = motion.boxes();
            let regions = regions_for(&boxes, p.width, p.height, pool.input_size);
            episode = Some((now, regions.clone(), false));
            submit(pool, &cfg, &svc, &tx, p, regions, boxes, r.fraction, false);
            return;
        }
        // No detector (off, failed to load, or only `motion` in the filter): motion is the event.
        if last_event.is_some_and(|t| now.duration_since(t) < cfg.cooldown) {
            return;
        }
        match encode_picture(p, SNAPSHOT_MAX_WIDTH, 80) {
            Ok(jpeg) => {
                last_event = Some(now);
                let _ = tx.blocking_send(Report::Motion {
                    jpeg,
                    boxes: motion.boxes(),
                    fraction: r.fraction,
                });
            }
            Err(e) => tracing::warn!(error = %e, "could not encode a snapshot"),
        }
    };
    while let Ok(pkt) = rx.recv() {
        match pkt {
            Work::Au(au) => {
                if let Some(d) = decoder.as_mut() {
                    d.decode(&au.data, &mut on_picture);
                }
            }
            Work::Picture(f) => on_picture(&f.picture()),
        }
    }
}

/// Hands a copy of the frame to the detector pool; the result comes back as a report. Never
/// blocks: a result the camera's task cannot take is dropped and counted.
#[allow(clippy::too_many_arguments)]
fn submit(
    pool: &crate::detect::pool::Pool,
    cfg: &Analysis,
    svc: &Arc<DetectorService>,
    tx: &mpsc::Sender<Report>,
    p: &Picture<'_>,
    regions: Vec<Region>,
    boxes: Vec<MotionBox>,
    fraction: f32,
    check: bool,
) {
    let tx = tx.clone();
    let svc = svc.clone();
    pool.submit(Job {
        camera: cfg.camera.clone(),
        frame: Arc::new(Frame420::from_picture(p)),
        regions,
        min_score: TRACK_MIN_SCORE.min(cfg.detector.min_score()),
        done: Box::new(move |outcome| {
            let report = Report::Detected {
                outcome,
                boxes,
                fraction,
                check,
            };
            if tx.try_send(report).is_err() {
                svc.counters.results_dropped.fetch_add(1, Ordering::Relaxed);
            }
        }),
    });
}

/// Detection types in announcement priority.
const PRIORITY: [&str; 3] = ["person", "vehicle", "animal"];

fn rank(kind: &str) -> usize {
    PRIORITY
        .iter()
        .position(|k| *k == kind)
        .unwrap_or(PRIORITY.len())
}

/// A detector result for one frame: track, announce new objects, improve snapshots of objects
/// that are done, or make a motion event when the filter asks for motion.
async fn on_detections(
    state: &Arc<Shared>,
    row: &CameraRow,
    objects: &mut Objects,
    outcome: DetectOutcome,
    boxes: Vec<MotionBox>,
    fraction: f32,
    check: bool,
) {
    let svc = &state.env.detector;
    let Some(pool) = svc.pool.as_ref() else {
        return;
    };
    let detections = match outcome.detections {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(camera.id = %row.id, error = %e, "detector run failed");
            return;
        }
    };
    let min = svc.min_score();
    let labels = &pool.labels;
    let frame = outcome.frame;
    let (fw, fh) = (frame.width as f32, frame.height as f32);
    let obs: Vec<Observation> = crate::detect::by_type(detections, labels)
        .into_iter()
        .filter(|(kind, _)| row.object_filter.iter().any(|c| c == kind))
        .map(|(kind, det)| Observation { kind, det })
        .collect();
    let strong: Arc<[Observation]> = obs.iter().filter(|o| o.det.score >= min).cloned().collect();
    svc.counters
        .objects
        .fetch_add(strong.len() as u64, Ordering::Relaxed);
    let covered: Vec<Area> = outcome
        .regions
        .iter()
        .map(|r| {
            let x0 = (r.x / fw).max(0.0);
            let y0 = (r.y / fh).max(0.0);
            Area {
                x: x0,
                y: y0,
                width: ((r.x + r.side) / fw).min(1.0) - x0,
                height: ((r.y + r.side) / fh).min(1.0) - y0,
            }
        })
        .collect();
    let now = objects.epoch.elapsed().as_millis() as u64;
    let payload = Some(Best {
        frame: frame.clone(),
        seen: strong.clone(),
    });
    let up = objects.tracker.update(now, &obs, &covered, min, &payload);
    // A new candidate: look again on the next decoded frame instead of the next analysis slot.
    let fresh = objects
        .tracker
        .tracks()
        .iter()
        .any(|t| !t.confirmed && t.first_seen == now);
    objects
        .burst
        .store(if fresh { BURST_FRAMES } else { 0 }, Ordering::Relaxed);
    report_in_view(state, row, objects);

    if !up.started.is_empty() {
        // Confirmed tracks, best first. Each was seen at least once at or above the minimum
        // score; the event shows the frame of the main track's best sighting with that
        // frame's boxes, so it is never without the box of what it announces.
        let mut new: Vec<(u64, &'static str, f32, Option<Best>)> = objects
            .tracker
            .tracks()
            .iter()
            .filter(|t| up.started.contains(&t.id))
            .map(|t| (t.id, t.kind, t.best_score, t.best.clone()))
            .collect();
        new.sort_by(|a, b| rank(a.1).cmp(&rank(b.1)).then(b.2.total_cmp(&a.2)));
        let main = new[0].1;
        let score = new[0].2;
        let best = new[0].3.clone().unwrap_or_else(|| Best {
            frame: frame.clone(),
            seen: strong.clone(),
        });
        let mut kinds: Vec<&'static str> = new.iter().map(|n| n.1).collect();
        kinds.extend(best.seen.iter().map(|o| o.kind));
        kinds.sort_by_key(|k| rank(k));
        kinds.dedup();
        let confidence = (score * 100.0).round().clamp(0.0, 100.0) as u8;
        let jpeg = encode(best.frame.clone()).await;
        let now_ms = state.env.clock.now_ms();
        // The cloud description (if any) follows the event; decide before storing it so it is
        // stored as pending.
        let describe = jpeg.is_some() && state.env.describer.admit(&row.id).await.is_ok();
        let seen: Vec<crate::ai::SeenObject> = best
            .seen
            .iter()
            .map(|o| crate::ai::SeenObject {
                label: o.kind.to_string(),
                score: o.det.score,
                bbox: Some([o.det.x, o.det.y, o.det.width, o.det.height]),
            })
            .collect();
        let ev = EventRow {
            id: crate::crypto::new_uuid(),
            camera_id: row.id.clone(),
            ts: now_ms,
            detection_type: main.into(),
            confidence,
            objects_detected: kinds.iter().map(|k| k.to_string()).collect(),
            bounding_boxes: boxes_json(&best.seen, labels),
            source_type: row.camera_type.as_str().into(),
            created_at: now_ms,
            description_pending: describe,
            ..Default::default()
        };
        match state.env.events.record(ev, jpeg.clone()).await {
            Ok(e) => {
                svc.counters.object_events.fetch_add(1, Ordering::Relaxed);
                if let (true, Some(jpeg)) = (describe, jpeg) {
                    crate::describe::spawn(
                        &state.env.describer,
                        crate::describe::Job {
                            event_id: e.row.id.clone(),
                            camera_id: row.id.clone(),
                            camera_name: row.name.clone(),
                            prompt_override: row.prompt_override.clone(),
                            jpeg,
                            seen,
                            ts_ms: now_ms,
                        },
                    );
                }
                tracing::info!(camera.id = %row.id, event.id = %e.row.id, detection = main, confidence, objects = new.len(), "object event");
                for (id, _, s, _) in &new {
                    if let Some(t) = objects.tracker.get_mut(*id) {
                        t.announced = Some((e.row.id.clone(), *s));
                    }
                }
                objects.recorder.event(&e.row.id);
                report_in_view(state, row, objects);
            }
            Err(e) => {
                tracing::warn!(camera.id = %row.id, error = ?e, "could not store an object event")
            }
        }
    } else if !check && strong.is_empty() {
        if row.object_filter.iter().any(|c| c == "motion")
            && objects
                .last_motion_event
                .is_none_or(|t| t.elapsed() >= Duration::from_secs(row.motion_cooldown as u64))
        {
            objects.last_motion_event = Some(Instant::now());
            if let Some(jpeg) = encode(frame.clone()).await {
                record_motion(state, row, jpeg, boxes, fraction).await;
            }
        } else {
            svc.counters.kept_from_cloud.fetch_add(1, Ordering::Relaxed);
        }
    } else if !check {
        // Objects already announced: nothing new for the cloud.
        svc.counters.kept_from_cloud.fetch_add(1, Ordering::Relaxed);
    }

    // Snapshots: a track's best frame replaces its event's first one when the track ends or
    // has lasted long enough.
    let mut done: Vec<(String, f32, f32, Option<Best>)> = Vec::new();
    for t in &up.ended {
        if let Some((eid, _)) = &t.announced {
            // The event's clip ends once none of its objects is tracked any more.
            let still = objects
                .tracker
                .tracks()
                .iter()
                .any(|o| o.announced.as_ref().is_some_and(|(e, _)| e == eid));
            if !still {
                objects.recorder.ended(eid);
            }
        }
        if let Some((eid, s)) = &t.announced {
            if !objects.improved.remove(&t.id) {
                done.push((eid.clone(), *s, t.best_score, t.best.clone()));
            }
        } else {
            objects.improved.remove(&t.id);
        }
    }
    for t in objects.tracker.tracks() {
        if let Some((eid, s)) = &t.announced {
            if now.saturating_sub(t.first_seen) >= IMPROVE_AFTER_MS && objects.improved.insert(t.id)
            {
                done.push((eid.clone(), *s, t.best_score, t.best.clone()));
            }
        }
    }
    for (eid, announced, best, frame) in done {
        let Some(b) = frame else { continue };
        if best < announced + 0.02 {
            continue;
        }
        let st = state.clone();
        let boxes = boxes_json(&b.seen, labels);
        tokio::spawn(async move {
            let confidence = (best * 100.0).round().clamp(0.0, 100.0) as u8;
            if let Some(jpeg) = encode(b.frame).await {
                if let Err(e) = st.env.events.improve(&eid, confidence, boxes, jpeg).await {
                    tracing::debug!(event.id = %eid, error = ?e, "could not improve a snapshot");
                }
            }
        });
    }
}

/// Publishes the objects in view by type when they changed: announced tracks of each type of
/// the camera's filter seen within [`IN_VIEW_HOLD_MS`].
fn report_in_view(state: &Arc<Shared>, row: &CameraRow, objects: &mut Objects) {
    let now = objects.epoch.elapsed().as_millis() as u64;
    let counts: Vec<(&'static str, u32)> = PRIORITY
        .iter()
        .filter(|k| row.object_filter.iter().any(|c| c == *k))
        .map(|k| {
            let n = objects
                .tracker
                .tracks()
                .iter()
                .filter(|t| {
                    t.kind == *k
                        && t.announced.is_some()
                        && now.saturating_sub(t.last_seen) < IN_VIEW_HOLD_MS
                })
                .count();
            (*k, n as u32)
        })
        .collect();
    if counts != objects.in_view {
        objects.in_view = counts.clone();
        state.env.bus.publish(
            state.env.clock.now_ms(),
            Message::InView {
                camera_id: row.id.clone(),
                counts: counts.into(),
            },
        );
    }
}

/// A snapshot of a frame, encoded off the runtime.
async fn encode(frame: Arc<Frame420>) -> Option<Vec<u8>> {
    let r = tokio::task::spawn_blocking(move || {
        encode_picture(&frame.picture(), SNAPSHOT_MAX_WIDTH, 80)
    })
    .await;
    match r {
        Ok(Ok(j)) => Some(j),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "could not encode a snapshot");
            None
        }
        Err(_) => None,
    }
}

#[cfg(test)]
mod stream_clock_tests {
    use super::StreamClock;

    #[test]
    fn jittery_arrivals_get_steady_durations_and_gaps_stay_gaps() {
        let mut c = StreamClock::new(Some(15.0));
        let mut last = None;
        let mut durations = Vec::new();
        // 15 fps with ±25 ms of jitter, and now and then two packets at once.
        for i in 0..300u64 {
            let jitter = [0i64, 2250, -2250, 1000, -1500, 0, 2000][(i % 7) as usize];
            let mut t = (i * 6000) as i64 + jitter;
            if i % 50 == 25 {
                t = (i as i64 - 1) * 6000 + 100; // arrived with the previous one
            }
            let pts = c.stamp(t.max(0) as u64);
            if let Some(l) = last {
                assert!(pts > l);
                durations.push(pts - l);
            }
            last = Some(pts);
        }
        let steady = &durations[20..];
        assert!(
            steady.iter().all(|d| (3000..=9000).contains(d)),
            "{steady:?}"
        );
        // A 5 s gap is kept.
        let before = last.unwrap();
        let pts = c.stamp(300 * 6000 + 450_000);
        assert!(pts - before > 400_000);
    }
}
