//! Event clips of the cameras the appliance captures: each running H.264 camera has a
//! recorder thread that keeps the pre-capture ring ([`crate::video::ring::PreCapture`]) and,
//! for every object event, writes an MP4 of the camera's own H.264 (no decoding, no encoding)
//! from the pre-capture until the event's objects are gone plus the post-capture, at most
//! `max_clip_seconds`. A clip is written fragmented while it grows (`clips/.tmp/<event>.part`,
//! each fragment fsynced), so a crash leaves a playable file or none; when it ends it is
//! rewritten as a fast-start MP4 and handed to [`crate::events::Events::attach_clip`], which
//! moves it into place, names it in the event row and publishes the update.
//!
//! The camera task talks to its recorder through [`Recorder`] (never blocking: a full queue
//! drops the unit and the clips being written end there). The thread does file I/O only;
//! below the free-disk floor it starts no clip and ends the ones being written.

mod clip;

use crate::events::Events;
use crate::retention::Retention;
use crate::video::ring::PreCapture;
use crate::video::Au;
use clip::Clip;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Access units waiting for the recorder thread (pointers; about 17 s at 15 fps).
const QUEUE: usize = 256;
/// Clips one camera writes at once; a further event waits for none and gets no clip.
const MAX_OPEN: usize = 4;

/// What a camera's recorder is doing, for the camera's health.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum RecState {
    /// Keeping the pre-capture, no clip being written.
    Idle = 0,
    Recording = 1,
    /// Below the free-disk floor: no clip is written.
    LowDisk = 2,
    /// The camera's `record_clips` is off.
    Off = 3,
}

impl RecState {
    pub fn as_str(self) -> &'static str {
        match self {
            RecState::Idle => "idle",
            RecState::Recording => "recording",
            RecState::LowDisk => "paused_low_disk",
            RecState::Off => "off",
        }
    }
    fn from_u8(v: u8) -> RecState {
        match v {
            1 => RecState::Recording,
            2 => RecState::LowDisk,
            3 => RecState::Off,
            _ => RecState::Idle,
        }
    }
}

/// Clip lengths, from `[video]`.
#[derive(Debug, Clone, Copy)]
pub struct ClipSettings {
    pub pre: Duration,
    pub post: Duration,
    pub max: Duration,
    pub ring_bytes: usize,
}

impl From<&crate::config::VideoSection> for ClipSettings {
    fn from(v: &crate::config::VideoSection) -> Self {
        ClipSettings {
            pre: Duration::from_secs(v.pre_capture_seconds.into()),
            post: Duration::from_secs(v.post_capture_seconds.into()),
            max: Duration::from_secs(v.max_clip_seconds.into()),
            ring_bytes: v.pre_capture_max_bytes,
        }
    }
}

enum Cmd {
    Au(Arc<Au>),
    /// Units were dropped before this one: the clips being written end.
    Gap,
    /// An object event was stored: start its clip.
    Event(String),
    /// The event's objects are gone: its clip ends after the post-capture.
    Ended(String),
}

/// What the recorder thread needs besides its commands.
pub struct Sink {
    pub events: Events,
    pub retention: Arc<Retention>,
    pub runtime: tokio::runtime::Handle,
}

/// A camera's recorder: the handle the camera task keeps.
pub struct Recorder {
    tx: Option<SyncSender<Cmd>>,
    thread: Option<std::thread::JoinHandle<()>>,
    state: Arc<AtomicU8>,
    gap: bool,
}

impl Recorder {
    /// Starts the recorder thread of one camera stream.
    pub fn start(camera_id: &str, settings: ClipSettings, sink: Sink) -> std::io::Result<Self> {
        let (tx, rx) = std::sync::mpsc::sync_channel(QUEUE);
        let state = Arc::new(AtomicU8::new(RecState::Idle as u8));
        let st = state.clone();
        let camera = camera_id.to_string();
        let thread = std::thread::Builder::new()
            .name(format!("record-{}", &camera_id[..8.min(camera_id.len())]))
            .spawn(move || run(rx, camera, settings, sink, st))?;
        Ok(Recorder {
            tx: Some(tx),
            thread: Some(thread),
            state,
            gap: false,
        })
    }

    /// A recorder that records nothing (`record_clips` off): it only reports `off`.
    pub fn off() -> Self {
        Recorder {
            tx: None,
            thread: None,
            state: Arc::new(AtomicU8::new(RecState::Off as u8)),
            gap: false,
        }
    }

    fn send(&mut self, cmd: Cmd) -> bool {
        let Some(tx) = &self.tx else { return false };
        match tx.try_send(cmd) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) => {
                self.gap = true;
                false
            }
            Err(TrySendError::Disconnected(_)) => {
                self.tx = None;
                false
            }
        }
    }

    /// Every access unit of the stream, in order. Never blocks.
    pub fn push(&mut self, au: Arc<Au>) {
        if self.gap && self.send(Cmd::Gap) {
            self.gap = false;
        }
        if !self.gap {
            self.send(Cmd::Au(au));
        }
    }

    /// An object event was stored: its clip starts with the pre-capture.
    pub fn event(&mut self, event_id: &str) {
        self.send(Cmd::Event(event_id.to_string()));
    }

    /// The event's objects are gone: its clip ends after the post-capture.
    pub fn ended(&mut self, event_id: &str) {
        self.send(Cmd::Ended(event_id.to_string()));
    }

    pub fn state(&self) -> RecState {
        RecState::from_u8(self.state.load(Ordering::Relaxed))
    }

    /// Ends the clips being written (they are finished and attached) and the thread; call off
    /// the async runtime, or use [`Recorder::stop`].
    pub fn stop_blocking(mut self) {
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    pub async fn stop(self) {
        let _ = tokio::task::spawn_blocking(move || self.stop_blocking()).await;
    }
}

fn run(rx: Receiver<Cmd>, camera: String, s: ClipSettings, sink: Sink, state: Arc<AtomicU8>) {
    let mut ring = PreCapture::new(s.pre.as_millis() as u64, s.ring_bytes);
    let mut open: Vec<Clip> = Vec::new();
    let tmp = sink.events.clip_tmp_dir();
    let set = |st: RecState| state.store(st as u8, Ordering::Relaxed);
    let mut probed = Instant::now();
    loop {
        let cmd = match rx.recv_timeout(Duration::from_millis(500)) {
            Ok(c) => Some(c),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        let now = Instant::now();
        match cmd {
            Some(Cmd::Au(au)) => {
                ring.push(au.clone());
                let mut i = 0;
                while i < open.len() {
                    if let Err(e) = open[i].add(&au) {
                        tracing::warn!(camera.id = %camera, event.id = %open[i].event_id, error = %e, "clip writing failed");
                        open.swap_remove(i).abandon();
                        continue;
                    }
                    i += 1;
                }
            }
            Some(Cmd::Gap) => {
                ring.clear();
                finish_all(&mut open, &sink, &camera, "units were dropped");
            }
            Some(Cmd::Event(id)) => {
                if sink.retention.status().low_disk {
                    set(RecState::LowDisk);
                    tracing::warn!(camera.id = %camera, event.id = %id, "no clip: storage is below the free-disk floor");
                } else if open.len() >= MAX_OPEN {
                    tracing::warn!(camera.id = %camera, event.id = %id, "no clip: {MAX_OPEN} clips are being written");
                } else {
                    match Clip::start(&tmp, id.clone(), ring.units(), now, s) {
                        Ok(Some(c)) => open.push(c),
                        Ok(None) => {
                            tracing::info!(camera.id = %camera, event.id = %id, "no clip: no key frame yet")
                        }
                        Err(e) => {
                            tracing::warn!(camera.id = %camera, event.id = %id, error = %e, "cannot start a clip")
                        }
                    }
                }
            }
            Some(Cmd::Ended(id)) => {
                if let Some(c) = open.iter_mut().find(|c| c.event_id == id) {
                    c.objects_gone(now);
                }
            }
            None => {}
        }
        // Clips that are due, and all of them below the floor (the disk is looked at once a
        // second while clips are written or recording is paused, else every 10 s).
        let watching = !open.is_empty() || state.load(Ordering::Relaxed) == RecState::LowDisk as u8;
        let every = Duration::from_secs(if watching { 1 } else { 10 });
        if now.duration_since(probed) >= every {
            probed = now;
            sink.retention.status();
        }
        let low = sink.retention.low_disk();
        let mut i = 0;
        while i < open.len() {
            if low || open[i].due(now) {
                let c = open.swap_remove(i);
                finish(c, &sink, &camera);
                continue;
            }
            i += 1;
        }
        set(if low {
            RecState::LowDisk
        } else if open.is_empty() {
            RecState::Idle
        } else {
            RecState::Recording
        });
    }
    finish_all(&mut open, &sink, &camera, "the stream ended");
}

fn finish_all(open: &mut Vec<Clip>, sink: &Sink, camera: &str, why: &str) {
    for c in open.drain(..) {
        tracing::debug!(camera.id = %camera, event.id = %c.event_id, why, "clip ends early");
        finish(c, sink, camera);
    }
}

/// Rewrites a clip as fast-start MP4 and hands it to the event lifecycle (on the runtime).
fn finish(c: Clip, sink: &Sink, camera: &str) {
    let id = c.event_id.clone();
    match c.finish() {
        Ok(done) => {
            let events = sink.events.clone();
            let camera = camera.to_string();
            sink.runtime.spawn(async move {
                match events
                    .attach_clip(&id, done.path, done.duration_ms, Some(done.offset_ms))
                    .await
                {
                    Ok(true) => {
                        tracing::info!(camera.id = %camera, event.id = %id, duration_ms = done.duration_ms, bytes = done.bytes, "clip recorded")
                    }
                    Ok(false) => {
                        tracing::info!(camera.id = %camera, event.id = %id, "clip dropped: the event is gone or storage is full")
                    }
                    Err(e) => {
                        tracing::warn!(camera.id = %camera, event.id = %id, error = ?e, "cannot store a clip")
                    }
                }
            });
        }
        Err(e) => {
            tracing::warn!(camera.id = %camera, event.id = %id, error = %e, "cannot finish a clip")
        }
    }
}

/// Recovers the clips a crash interrupted (`clips/.tmp/<event>.part`): each is rewritten as
/// fast-start MP4 up to its last complete fragment, moved into place and named in its event's
/// row (or removed when nothing in it is playable or its event is gone). Leftover temp files
/// are removed. Runs at start-up, before the consistency pass and any camera; returns how
/// many clips were recovered.
pub fn recover_at_start(
    store: &crate::store::Store,
    data_dir: &std::path::Path,
) -> crate::store::StoreResult<usize> {
    let mut n = 0;
    for r in clip::recover(&data_dir.join(crate::events::CLIP_TMP_DIR)) {
        let id = r.event_id.clone();
        let ts = match store.read_blocking(move |c| crate::store::events::get(c, &id)) {
            Ok(row) => row.ts,
            Err(crate::store::StoreError::NotFound(_)) => {
                let _ = std::fs::remove_file(&r.path);
                continue;
            }
            Err(e) => return Err(e),
        };
        let rel = format!("clips/{}/{}.mp4", crate::clock::utc_day(ts), r.event_id);
        let bytes = std::fs::metadata(&r.path).map(|m| m.len()).unwrap_or(0);
        if let Err(e) = crate::fsutil::move_into_place(&r.path, &data_dir.join(&rel)) {
            tracing::warn!(event.id = %r.event_id, error = %e, "cannot move a recovered clip into place");
            let _ = std::fs::remove_file(&r.path);
            continue;
        }
        let (id, dur) = (r.event_id.clone(), r.duration_ms);
        store.write_blocking(move |c| {
            crate::store::events::set_clip(c, &id, &rel, bytes, dur, None)
        })?;
        n += 1;
    }
    Ok(n)
}
