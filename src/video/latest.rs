//! The most recent decoded picture of one camera, for "what does it see now" (the snapshot,
//! the live page, the zone editor, the MJPEG live stream). The analysis thread offers every
//! decoded picture; one is copied in at most every [`LatestFrame::EVERY`] (a copy of one
//! frame, a few times a second, whatever the stream's rate), or at the rate a [`Watch`] asks
//! for while one is held (an MJPEG viewer: the camera's analysis rate). A reader gets the
//! picture as a JPEG, encoded once per copied picture however many read it (concurrent
//! readers wait for the one encoding). Encoding is CPU work: call [`LatestFrame::jpeg`] off the
//! async runtime. The viewer count of [`LatestFrame::seat`] limits MJPEG viewers of a camera
//! that has no compressed live feed (one that yields pictures, such as V4L2).

use crate::video::decode::Picture;
use crate::video::jpeg::{encode_picture, Frame420};
use crate::video::live::Full;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Snapshots are scaled down to at most this width.
pub const MAX_WIDTH: usize = 1280;
const QUALITY: u8 = 75;

#[derive(Default)]
struct Slot {
    frame: Option<(Instant, Arc<Frame420>)>,
    /// The JPEG of the frame taken at that instant.
    jpeg: Option<(Instant, Arc<Vec<u8>>)>,
    /// The copy intervals watchers asked for, by watcher.
    watchers: Vec<(u64, Duration)>,
    next_watcher: u64,
    /// When the last picture was offered (the stream's frame spacing).
    last_offer: Option<Instant>,
}

impl Slot {
    /// Whether a picture offered at `now` replaces the kept one: when the kept one is
    /// [`LatestFrame::EVERY`] old, or, while watched, the watch's interval old give or take
    /// half a frame (the frame nearest the due time is taken, so a 15 fps stream watched at
    /// 6 fps gives 6 pictures a second, not 5).
    fn due(&self, now: Instant) -> bool {
        let Some((at, _)) = &self.frame else {
            return true;
        };
        let elapsed = now.saturating_duration_since(*at);
        let Some(every) = self.watchers.iter().map(|(_, d)| *d).min() else {
            return elapsed >= LatestFrame::EVERY;
        };
        let every = every.min(LatestFrame::EVERY);
        let spacing = self
            .last_offer
            .map_or(Duration::ZERO, |l| now.saturating_duration_since(l));
        elapsed + spacing.min(every) / 2 >= every
    }
}

pub struct LatestFrame {
    slot: Mutex<Slot>,
    /// Held while encoding, so a picture is encoded once however many wait for it.
    encoding: Mutex<()>,
    /// Counts copies and clears: what a [`Watch`] waits on.
    copies: watch::Sender<u64>,
    encoded: AtomicU64,
    /// Holders of a [`Seat`].
    viewers: AtomicUsize,
}

impl Default for LatestFrame {
    fn default() -> Self {
        LatestFrame {
            slot: Mutex::default(),
            encoding: Mutex::default(),
            copies: watch::channel(0).0,
            encoded: AtomicU64::new(0),
            viewers: AtomicUsize::new(0),
        }
    }
}

/// A snapshot and how old its picture is.
pub struct Snapshot {
    pub jpeg: Arc<Vec<u8>>,
    pub age: Duration,
    /// When its picture was copied in (the same instant: the same picture).
    pub taken: Instant,
    pub width: usize,
    pub height: usize,
}

impl LatestFrame {
    /// A new picture is copied in when the kept one is at least this old (unless a [`Watch`]
    /// asks for more).
    pub const EVERY: Duration = Duration::from_millis(400);

    fn lock(&self) -> std::sync::MutexGuard<'_, Slot> {
        self.slot.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Called for every decoded picture; copies it when the kept one is due for replacing.
    pub fn offer(&self, p: &Picture<'_>, now: Instant) {
        let due = {
            let mut slot = self.lock();
            let due = slot.due(now);
            slot.last_offer = Some(now);
            due
        };
        if due {
            // Copied outside the lock: a reader encoding the previous picture is not held up.
            let frame = Arc::new(Frame420::from_picture(p));
            self.lock().frame = Some((now, frame));
            self.copies.send_modify(|n| *n += 1);
        }
    }

    /// Forgets the picture (the camera stopped: what it saw last is not what it sees now).
    pub fn clear(&self) {
        {
            let mut slot = self.lock();
            slot.frame = None;
            slot.jpeg = None;
        }
        self.copies.send_modify(|n| *n += 1);
    }

    /// The kept picture as a JPEG, when it is at most `max_age` old. Blocking (encodes).
    pub fn jpeg(&self, max_age: Duration) -> Option<Result<Snapshot, String>> {
        let (at, frame) = self.lock().frame.clone()?;
        let age = at.elapsed();
        if age > max_age {
            return None;
        }
        let (width, height) = scaled(frame.width, frame.height);
        let snapshot = |jpeg| Snapshot {
            jpeg,
            age,
            taken: at,
            width,
            height,
        };
        let cached = |slot: &Slot| {
            slot.jpeg
                .as_ref()
                .filter(|(jat, _)| *jat == at)
                .map(|(_, j)| j.clone())
        };
        if let Some(j) = cached(&self.lock()) {
            return Some(Ok(snapshot(j)));
        }
        let _one = self.encoding.lock().unwrap_or_else(|e| e.into_inner());
        // Another reader may have encoded it while this one waited.
        if let Some(j) = cached(&self.lock()) {
            return Some(Ok(snapshot(j)));
        }
        let jpeg = match encode_picture(&frame.picture(), MAX_WIDTH, QUALITY) {
            Ok(j) => Arc::new(j),
            Err(e) => return Some(Err(e)),
        };
        self.encoded.fetch_add(1, Ordering::Relaxed);
        let mut slot = self.lock();
        // Keep the newest encoding only (a newer frame may have been encoded meanwhile).
        if slot.jpeg.as_ref().is_none_or(|(j, _)| *j < at) {
            slot.jpeg = Some((at, jpeg.clone()));
        }
        Some(Ok(snapshot(jpeg)))
    }

    /// Pictures encoded so far.
    pub fn encodings(&self) -> u64 {
        self.encoded.load(Ordering::Relaxed)
    }

    /// Asks for a copy every `every` (at most [`LatestFrame::EVERY`]) while the watch is held,
    /// and lets its holder wait for each new picture.
    pub fn watch(self: &Arc<Self>, every: Duration) -> Watch {
        let id = {
            let mut slot = self.lock();
            let id = slot.next_watcher;
            slot.next_watcher += 1;
            slot.watchers.push((id, every));
            id
        };
        Watch {
            latest: self.clone(),
            id,
            rx: self.copies.subscribe(),
        }
    }

    /// A place among at most `max` viewers of the pictures, or `Full`.
    pub fn seat(self: &Arc<Self>, max: usize) -> Result<Seat, Full> {
        self.viewers
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .map_err(|_| Full(max))?;
        Ok(Seat(self.clone()))
    }

    /// Holders of a [`Seat`].
    pub fn viewers(&self) -> usize {
        self.viewers.load(Ordering::Acquire)
    }
}

/// A held request for pictures at a rate (see [`LatestFrame::watch`]); dropping it restores
/// the default interval unless other watches remain.
pub struct Watch {
    latest: Arc<LatestFrame>,
    id: u64,
    rx: watch::Receiver<u64>,
}

impl Watch {
    /// Waits for the next copied picture (or the picture being cleared); `false` when none
    /// came within `timeout`.
    pub async fn changed(&mut self, timeout: Duration) -> bool {
        matches!(
            tokio::time::timeout(timeout, self.rx.changed()).await,
            Ok(Ok(()))
        )
    }

    pub fn latest(&self) -> &Arc<LatestFrame> {
        &self.latest
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.latest.lock().watchers.retain(|(id, _)| *id != self.id);
    }
}

/// A place among a camera's picture viewers; dropping it frees it.
pub struct Seat(Arc<LatestFrame>);

impl Drop for Seat {
    fn drop(&mut self) {
        self.0.viewers.fetch_sub(1, Ordering::AcqRel);
    }
}

fn scaled(w: usize, h: usize) -> (usize, usize) {
    if w > MAX_WIDTH {
        (MAX_WIDTH, (h * MAX_WIDTH / w).max(2) & !1)
    } else {
        (w, h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(w: usize, h: usize, luma: u8) -> Frame420 {
        let mut f = Frame420::black(w, h);
        f.y.iter_mut().for_each(|y| *y = luma);
        f
    }

    #[test]
    fn copies_at_most_every_interval_and_encodes_once_per_picture() {
        let latest = LatestFrame::default();
        assert!(latest.jpeg(Duration::from_secs(1)).is_none(), "nothing yet");
        let t0 = Instant::now();
        let a = frame(64, 36, 200);
        latest.offer(&a.picture(), t0);
        let b = frame(64, 36, 20);
        // Too soon: the first picture stays.
        latest.offer(&b.picture(), t0 + Duration::from_millis(100));
        let s1 = latest.jpeg(Duration::from_secs(5)).unwrap().unwrap();
        let s2 = latest.jpeg(Duration::from_secs(5)).unwrap().unwrap();
        assert!(Arc::ptr_eq(&s1.jpeg, &s2.jpeg), "encoded once");
        assert_eq!((s1.width, s1.height), (64, 36));
        let bright = Frame420::from_jpeg(&s1.jpeg).unwrap();
        assert!(bright.y[0] > 150, "the first picture: {}", bright.y[0]);
        // Due: the second picture replaces it.
        latest.offer(&b.picture(), t0 + LatestFrame::EVERY);
        let s3 = latest.jpeg(Duration::from_secs(5)).unwrap().unwrap();
        assert!(!Arc::ptr_eq(&s1.jpeg, &s3.jpeg));
        assert!(Frame420::from_jpeg(&s3.jpeg).unwrap().y[0] < 60);
    }

    #[test]
    fn old_or_cleared_pictures_are_not_given() {
        let latest = LatestFrame::default();
        let f = frame(32, 32, 128);
        latest.offer(&f.picture(), Instant::now() - Duration::from_secs(3));
        assert!(latest.jpeg(Duration::from_secs(2)).is_none(), "too old");
        assert!(latest.jpeg(Duration::from_secs(10)).is_some());
        latest.clear();
        assert!(latest.jpeg(Duration::from_secs(10)).is_none(), "cleared");
    }

    #[tokio::test]
    async fn a_watch_lowers_the_interval_and_wakes_for_each_copy() {
        let latest = Arc::new(LatestFrame::default());
        let f = frame(32, 32, 90);
        let t0 = Instant::now();
        latest.offer(&f.picture(), t0);
        let mut w = latest.watch(Duration::from_millis(200));
        assert!(
            !w.changed(Duration::from_millis(20)).await,
            "nothing new yet"
        );
        // A 15 fps stream watched at 5 fps: every third frame (the slack lets 199.9 ms count).
        let mut copied = 0;
        for i in 1..=15u64 {
            latest.offer(&f.picture(), t0 + Duration::from_micros(66_666 * i));
            if w.changed(Duration::from_millis(5)).await {
                copied += 1;
            }
        }
        assert_eq!(copied, 5, "one copy per 200 ms");
        // The fastest watch wins; without one, the default interval is back.
        let mut fast = latest.watch(Duration::from_millis(50));
        drop(w);
        let t1 = t0 + Duration::from_secs(2);
        let offers = |from: Instant| {
            (1..=7u64)
                .filter(|i| {
                    let before = latest.copies.borrow().to_owned();
                    latest.offer(&f.picture(), from + Duration::from_millis(67 * i));
                    *latest.copies.borrow() != before
                })
                .count()
        };
        assert_eq!(offers(t1), 7, "every frame");
        latest.clear();
        assert!(
            fast.changed(Duration::from_millis(20)).await,
            "a clear wakes watchers"
        );
        assert!(latest.jpeg(Duration::from_secs(5)).is_none());
        drop(fast);
        let t2 = t1 + Duration::from_secs(2);
        assert_eq!(
            offers(t2),
            2,
            "the first (nothing kept) and the one 400 ms later"
        );
    }

    #[test]
    fn concurrent_readers_share_one_encoding() {
        let latest = Arc::new(LatestFrame::default());
        let f = frame(640, 360, 77);
        latest.offer(&f.picture(), Instant::now());
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let l = latest.clone();
                std::thread::spawn(move || l.jpeg(Duration::from_secs(5)).unwrap().unwrap())
            })
            .collect();
        let snaps: Vec<Snapshot> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        assert_eq!(latest.encodings(), 1);
        assert!(snaps.iter().all(|s| Arc::ptr_eq(&s.jpeg, &snaps[0].jpeg)));
        assert!(snaps.iter().all(|s| s.taken == snaps[0].taken));
    }

    #[test]
    fn seats_are_limited_and_freed() {
        let latest = Arc::new(LatestFrame::default());
        let a = latest.seat(2).unwrap();
        let _b = latest.seat(2).unwrap();
        assert_eq!(latest.seat(2).err(), Some(Full(2)));
        drop(a);
        assert_eq!(latest.viewers(), 1);
        assert!(latest.seat(2).is_ok());
    }

    #[test]
    fn large_pictures_are_scaled_down() {
        assert_eq!(scaled(1920, 1080), (1280, 720));
        assert_eq!(scaled(640, 360), (640, 360));
    }
}
