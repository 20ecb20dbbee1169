//! The clips of Protect events: the console's export of each event's window, fetched in the
//! background after the event ends, for one controller.
//!
//! An event whose camera has `record_clips` is followed from when it is stored until its end
//! arrives on the update socket (an end can also arrive first, before the event is stored; it
//! is kept for a while). A console that never sends the end gets the window closed
//! `max_open` (60 s) after the start. Then, `after_end` (3 s) later, the export of
//! `[start - 2 s, end + 2 s]` (at most `[video] max_clip_seconds` long) is asked for, again
//! after 3, 6, 12 and 24 s when the console answers 404 (not ready yet), 5xx or not at all,
//! and attached to the event with [`Events::attach_clip`].
//!
//! Bounds: at most [`EXPORTS_AT_ONCE`] exports talk to the console at a time, at most
//! [`MAX_WAITING`] events wait for their clip (more get none, with a log line). Nothing here
//! blocks the controller's update loop. Stopping the controller aborts every wait and export
//! (a half-written file is removed; the start-up sweep removes any other). A failure is logged
//! and leaves the event without a clip.

use crate::config::ProtectClipTiming;
use crate::events::Events;
use crate::protect::{ExportError, ProtectClient, ProtectEventEnd};
use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tokio::sync::{oneshot, Semaphore};
use tokio::task::JoinSet;

/// Exports talking to the console at once, per controller.
pub const EXPORTS_AT_ONCE: usize = 2;
/// Events waiting for their clip at once, per controller.
pub const MAX_WAITING: usize = 32;
/// Ends kept for events not stored yet.
const EARLY_ENDS: usize = 256;
/// Video before the event's start and after its end.
pub const MARGIN_MS: i64 = 2_000;

/// An event that was stored and wants a clip.
#[derive(Debug, Clone)]
pub struct Stored {
    pub protect_event_id: String,
    pub protect_camera_id: String,
    /// The appliance's event.
    pub event_id: String,
    pub camera_id: String,
    /// The event's start (unix ms, the console's clock).
    pub start_ms: i64,
}

/// The export window of an event: `[start - margin, end + margin]`, at most `max_ms` long
/// (cut at the end), never empty; and where the event starts in it.
pub fn window(start_ms: i64, end_ms: i64, max_ms: i64) -> (i64, i64, u64) {
    let from = (start_ms - MARGIN_MS).max(0);
    let to = (end_ms.max(start_ms) + MARGIN_MS).min(from + max_ms.max(1_000));
    (from, to, (start_ms - from).max(0) as u64)
}

#[derive(Default)]
struct Inner {
    /// Stored events waiting for their end, by Protect event id.
    open: HashMap<String, oneshot::Sender<i64>>,
    /// Ends of events not stored (yet), oldest first.
    early: HashMap<String, i64>,
    early_order: VecDeque<String>,
    tasks: JoinSet<()>,
}

pub struct Clips {
    client: Arc<ProtectClient>,
    events: Events,
    timing: ProtectClipTiming,
    max_clip_ms: i64,
    slots: Semaphore,
    inner: Mutex<Inner>,
}

impl Clips {
    pub fn new(
        client: Arc<ProtectClient>,
        events: Events,
        timing: ProtectClipTiming,
        max_clip_seconds: u32,
    ) -> Arc<Clips> {
        Arc::new(Clips {
            client,
            events,
            timing,
            max_clip_ms: i64::from(max_clip_seconds) * 1000,
            slots: Semaphore::new(EXPORTS_AT_ONCE),
            inner: Mutex::new(Inner::default()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A Protect event ended (from the update socket).
    pub fn ended(&self, end: &ProtectEventEnd) {
        let mut inner = self.lock();
        if let Some(tx) = inner.open.remove(&end.event_id) {
            let _ = tx.send(end.end_ms);
            return;
        }
        if inner
            .early
            .insert(end.event_id.clone(), end.end_ms)
            .is_none()
        {
            inner.early_order.push_back(end.event_id.clone());
        }
        while inner.early_order.len() > EARLY_ENDS {
            if let Some(old) = inner.early_order.pop_front() {
                inner.early.remove(&old);
            }
        }
    }

    /// An event was stored for a camera that records clips: its clip is fetched once it ends.
    pub fn stored(self: &Arc<Self>, ev: Stored) {
        let mut inner = self.lock();
        while inner.tasks.try_join_next().is_some() {}
        if inner.tasks.len() >= MAX_WAITING {
            tracing::warn!(camera.id = %ev.camera_id, event.id = %ev.event_id,
                "{MAX_WAITING} Protect events already wait for their clip; this one gets none");
            return;
        }
        let end = match inner.early.remove(&ev.protect_event_id) {
            Some(end) => {
                inner.early_order.retain(|id| id != &ev.protect_event_id);
                End::Known(end)
            }
            None => {
                let (tx, rx) = oneshot::channel();
                inner.open.insert(ev.protect_event_id.clone(), tx);
                End::Wait(rx)
            }
        };
        let me = self.clone();
        inner.tasks.spawn(async move { me.fetch(ev, end).await });
    }

    /// Ends every wait and export (the controller stops).
    pub fn abort_all(&self) {
        let mut inner = self.lock();
        inner.tasks.abort_all();
        inner.open.clear();
    }

    async fn fetch(self: Arc<Self>, ev: Stored, end: End) {
        let end_ms = match end {
            End::Known(e) => e,
            End::Wait(rx) => match tokio::time::timeout(self.timing.max_open, rx).await {
                Ok(Ok(e)) => e,
                _ => {
                    self.lock().open.remove(&ev.protect_event_id);
                    let open = self.timing.max_open.as_millis() as i64;
                    tracing::info!(camera.id = %ev.camera_id, event.id = %ev.event_id,
                        protect.event = %ev.protect_event_id,
                        "the console sent no end for the Protect event; its clip covers {} s from its start",
                        open / 1000);
                    ev.start_ms + open
                }
            },
        };
        tokio::time::sleep(self.timing.after_end).await;
        let (from, to, offset_ms) = window(ev.start_ms, end_ms, self.max_clip_ms);
        let dir = self.events.clip_tmp_dir();
        if let Err(e) = tokio::fs::create_dir_all(&dir).await {
            tracing::warn!(event.id = %ev.event_id, error = %e, "cannot make the clip directory; the Protect event gets no clip");
            return;
        }
        let part = TempFile(dir.join(format!("protect-{}.mp4", ev.event_id)));
        let mut wait = self.timing.retry;
        for attempt in 1..=self.timing.attempts.max(1) {
            let tried = {
                let Ok(_slot) = self.slots.acquire().await else {
                    return;
                };
                self.client
                    .export_video(&ev.protect_camera_id, from, to, &part.0)
                    .await
            };
            match tried {
                Ok(video) => {
                    self.attach(&ev, part, video.bytes, video.duration_ms, offset_ms)
                        .await;
                    return;
                }
                Err(e) if e.is_transient() && attempt < self.timing.attempts => {
                    tracing::debug!(event.id = %ev.event_id, attempt, error = %e,
                        retry_in_ms = wait.as_millis() as u64, "Protect export not ready");
                    tokio::time::sleep(wait).await;
                    wait = wait.saturating_mul(2);
                }
                Err(e) => {
                    log_failure(&ev, attempt, &e);
                    return;
                }
            }
        }
    }

    async fn attach(&self, ev: &Stored, part: TempFile, bytes: u64, duration_ms: u64, offset: u64) {
        let path = part.keep();
        match self
            .events
            .attach_clip(&ev.event_id, path, duration_ms, Some(offset))
            .await
        {
            Ok(true) => tracing::info!(camera.id = %ev.camera_id, event.id = %ev.event_id,
                bytes, duration_ms, "Protect event clip from the console"),
            Ok(false) => tracing::debug!(event.id = %ev.event_id,
                "the Protect event was deleted, or storage is short; its clip was dropped"),
            Err(e) => tracing::warn!(event.id = %ev.event_id, error = ?e,
                "cannot store the Protect event's clip"),
        }
    }
}

/// How a waiting export learns its event's end.
enum End {
    Known(i64),
    Wait(oneshot::Receiver<i64>),
}

fn log_failure(ev: &Stored, attempts: u32, e: &ExportError) {
    tracing::warn!(camera.id = %ev.camera_id, event.id = %ev.event_id,
        protect.event = %ev.protect_event_id, attempts, error = %e,
        "no clip from the Protect console; the event stays without one");
}

/// A file in the clip temp dir, removed when dropped unless kept (an aborted export).
struct TempFile(PathBuf);

impl TempFile {
    fn keep(self) -> PathBuf {
        let p = self.0.clone();
        std::mem::forget(self);
        p
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Aborts a controller's clip work when dropped (its task ended).
pub struct AbortOnDrop(pub Arc<Clips>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows() {
        // The margins; the event starts 2 s in.
        assert_eq!(window(10_000, 15_000, 120_000), (8_000, 17_000, 2_000));
        // At most the longest clip, cut at the end.
        assert_eq!(window(10_000, 500_000, 120_000), (8_000, 128_000, 2_000));
        // An end before the start (clock trouble) is the start.
        assert_eq!(window(10_000, 9_000, 120_000), (8_000, 12_000, 2_000));
        // Near the epoch the start margin is what there is.
        assert_eq!(window(1_000, 2_000, 120_000), (0, 4_000, 1_000));
    }
}
