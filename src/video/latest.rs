//! The most recent decoded picture of one camera, for "what does it see now" (the live page, the
//! zone editor). The analysis thread copies a decoded picture in at most every
//! [`LatestFrame::EVERY`] (a copy of one frame, a few times a second, whatever the stream's
//! rate); a reader gets it as a JPEG, encoded once per copied picture however many read it.
//! Encoding is CPU work: call [`LatestFrame::jpeg`] off the async runtime.

use crate::video::decode::Picture;
use crate::video::jpeg::{encode_picture, Frame420};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Snapshots are scaled down to at most this width.
pub const MAX_WIDTH: usize = 1280;
const QUALITY: u8 = 75;

#[derive(Default)]
struct Slot {
    frame: Option<(Instant, Arc<Frame420>)>,
    /// The JPEG of the frame taken at that instant.
    jpeg: Option<(Instant, Arc<Vec<u8>>)>,
}

#[derive(Default)]
pub struct LatestFrame {
    slot: Mutex<Slot>,
}

/// A snapshot and how old its picture is.
pub struct Snapshot {
    pub jpeg: Arc<Vec<u8>>,
    pub age: Duration,
    pub width: usize,
    pub height: usize,
}

impl LatestFrame {
    /// A new picture is copied in when the kept one is at least this old.
    pub const EVERY: Duration = Duration::from_millis(400);

    fn lock(&self) -> std::sync::MutexGuard<'_, Slot> {
        self.slot.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Called for every decoded picture; copies it when the kept one is due for replacing.
    pub fn offer(&self, p: &Picture<'_>, now: Instant) {
        let due = self
            .lock()
            .frame
            .as_ref()
            .is_none_or(|(at, _)| now.saturating_duration_since(*at) >= Self::EVERY);
        if due {
            // Copied outside the lock: a reader encoding the previous picture is not held up.
            let frame = Arc::new(Frame420::from_picture(p));
            self.lock().frame = Some((now, frame));
        }
    }

    /// Forgets the picture (the camera stopped: what it saw last is not what it sees now).
    pub fn clear(&self) {
        *self.lock() = Slot::default();
    }

    /// The kept picture as a JPEG, when it is at most `max_age` old. Blocking (encodes).
    pub fn jpeg(&self, max_age: Duration) -> Option<Result<Snapshot, String>> {
        let (at, frame) = self.lock().frame.clone()?;
        let age = at.elapsed();
        if age > max_age {
            return None;
        }
        let (width, height) = scaled(frame.width, frame.height);
        if let Some((jat, jpeg)) = self.lock().jpeg.clone() {
            if jat == at {
                return Some(Ok(Snapshot {
                    jpeg,
                    age,
                    width,
                    height,
                }));
            }
        }
        let jpeg = match encode_picture(&frame.picture(), MAX_WIDTH, QUALITY) {
            Ok(j) => Arc::new(j),
            Err(e) => return Some(Err(e)),
        };
        let mut slot = self.lock();
        // Keep the newest encoding only (a newer frame may have been encoded meanwhile).
        if slot.jpeg.as_ref().is_none_or(|(j, _)| *j < at) {
            slot.jpeg = Some((at, jpeg.clone()));
        }
        Some(Ok(Snapshot {
            jpeg,
            age,
            width,
            height,
        }))
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

    #[test]
    fn large_pictures_are_scaled_down() {
        assert_eq!(scaled(1920, 1080), (1280, 720));
        assert_eq!(scaled(640, 360), (640, 360));
    }
}
