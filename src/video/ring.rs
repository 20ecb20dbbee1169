//! The pre-capture ring: the last seconds of one camera's compressed stream, so an event's
//! clip starts before the moment it was noticed. It holds access units back to a key frame at
//! least `keep` old (a clip must start at a key frame) and never more than `max_bytes`: over
//! that, the oldest groups of pictures go first, whole.

use super::Au;
use std::collections::VecDeque;
use std::sync::Arc;

pub struct PreCapture {
    aus: VecDeque<Arc<Au>>,
    bytes: usize,
    /// 90 kHz ticks to keep before the newest unit.
    keep: u64,
    max_bytes: usize,
}

impl PreCapture {
    pub fn new(keep_ms: u64, max_bytes: usize) -> Self {
        PreCapture {
            aus: VecDeque::new(),
            bytes: 0,
            keep: keep_ms * 90,
            max_bytes,
        }
    }

    pub fn push(&mut self, au: Arc<Au>) {
        if self.aus.is_empty() && !au.key {
            return; // nothing can be played before the first key frame
        }
        self.bytes += au.data.len();
        self.aus.push_back(au);
        self.trim();
    }

    fn trim(&mut self) {
        let newest = self.aus.back().map_or(0, |a| a.pts);
        // The latest key frame that is at least `keep` old: everything before it can go.
        let cut = self
            .aus
            .iter()
            .enumerate()
            .filter(|(_, a)| a.key && a.pts.saturating_add(self.keep) <= newest)
            .map(|(i, _)| i)
            .next_back()
            .unwrap_or(0);
        self.drop_front(cut);
        // Over the byte limit: whole groups of pictures from the oldest.
        while self.bytes > self.max_bytes {
            let next_key = self.aus.iter().skip(1).position(|a| a.key).map(|i| i + 1);
            match next_key {
                Some(i) => self.drop_front(i),
                None => {
                    // One group alone is over the limit: nothing playable can be kept.
                    self.drop_front(self.aus.len());
                }
            }
        }
    }

    fn drop_front(&mut self, n: usize) {
        for a in self.aus.drain(..n) {
            self.bytes -= a.data.len();
        }
    }

    /// The units held, oldest first; the first is a key frame (or there are none).
    pub fn units(&self) -> impl Iterator<Item = &Arc<Au>> {
        self.aus.iter()
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn len(&self) -> usize {
        self.aus.len()
    }

    pub fn is_empty(&self) -> bool {
        self.aus.is_empty()
    }

    /// Forgets everything (the stream restarted: the old units cannot precede the new ones).
    pub fn clear(&mut self) {
        self.aus.clear();
        self.bytes = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 15 fps, a key frame every `gop` pictures, `size` bytes each.
    fn feed(r: &mut PreCapture, frames: u64, gop: u64, size: usize) {
        for i in 0..frames {
            r.push(Arc::new(Au {
                data: Arc::from(vec![0u8; size]),
                pts: i * 6000,
                key: i % gop == 0,
            }));
        }
    }

    #[test]
    fn keeps_back_to_a_key_frame_at_least_the_pre_capture_old() {
        let mut r = PreCapture::new(5_000, 8 << 20);
        feed(&mut r, 300, 30, 1000); // 20 s, a key frame every 2 s
        let first = r.units().next().unwrap();
        let newest = r.units().last().unwrap().pts;
        assert!(first.key);
        let span = newest - first.pts;
        assert!(span >= 5 * 90_000, "at least 5 s: {span}");
        assert!(span < 7 * 90_000, "and less than 5 s plus a group: {span}");
        assert_eq!(r.bytes(), r.len() * 1000);
    }

    #[test]
    fn the_byte_limit_drops_whole_groups_from_the_oldest() {
        let mut r = PreCapture::new(5_000, 40_000);
        feed(&mut r, 300, 15, 1000); // 1 s groups of 15 kB
        assert!(r.bytes() <= 40_000, "{}", r.bytes());
        assert!(r.units().next().unwrap().key);
        assert!(r.len() >= 15, "at least the newest group stays");
        // A single group over the limit keeps nothing (it could not start a clip).
        let mut r = PreCapture::new(5_000, 10_000);
        feed(&mut r, 30, 100, 1000);
        assert!(r.bytes() <= 10_000);
        assert!(r.units().next().is_none_or(|a| a.key));
    }

    #[test]
    fn nothing_is_kept_before_the_first_key_frame() {
        let mut r = PreCapture::new(5_000, 1 << 20);
        r.push(Arc::new(Au {
            data: Arc::from(vec![1u8; 10]),
            pts: 0,
            key: false,
        }));
        assert!(r.is_empty());
    }
}
