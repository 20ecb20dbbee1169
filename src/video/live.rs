//! The live fan-out of one camera's compressed stream to its viewers (the live WebSocket): a
//! bounded broadcast of access units, the units since the last key frame for a viewer that
//! joins (so it decodes from its first picture: a key frame alone would leave the pictures
//! between it and the join missing), and the viewer limit. Nothing here waits on a viewer: a
//! viewer that falls behind loses access units and starts again at the next key frame.

use super::Au;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;

/// Access units a viewer may be behind before it skips to the next key frame (about 4 s at
/// 15 fps).
const BEHIND: usize = 64;
/// The group of pictures kept for joining viewers, at most (the units are the ones the
/// pre-capture ring holds too); a longer group makes a new viewer wait for the next key frame.
const GOP_MAX_UNITS: usize = 600;
const GOP_MAX_BYTES: usize = 8 << 20;

/// The units since the latest key frame.
#[derive(Default)]
struct Gop {
    units: Vec<Arc<Au>>,
    bytes: usize,
    /// False before the first key frame and after the group outgrew the bounds.
    whole: bool,
}

/// One running camera stream's live fan-out.
pub struct LiveFeed {
    /// `None` once the stream ended ([`LiveFeed::close`]).
    tx: Mutex<Option<broadcast::Sender<Arc<Au>>>>,
    /// Where a new viewer starts.
    gop: Mutex<Gop>,
    viewers: AtomicUsize,
    max_viewers: usize,
}

/// `max_viewers` are already watching.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full(pub usize);

impl LiveFeed {
    pub fn new(max_viewers: usize) -> Arc<Self> {
        let (tx, _) = broadcast::channel(BEHIND);
        Arc::new(LiveFeed {
            tx: Mutex::new(Some(tx)),
            gop: Mutex::default(),
            viewers: AtomicUsize::new(0),
            max_viewers,
        })
    }

    /// Offers an access unit to the viewers (never blocks; a copy of the pointer only).
    pub fn push(&self, au: &Arc<Au>) {
        // Held while the unit is sent too, so a viewer joining meanwhile gets it once: in its
        // group or from the broadcast.
        let mut gop = self.gop.lock().unwrap_or_else(|e| e.into_inner());
        if au.key {
            *gop = Gop {
                whole: true,
                ..Gop::default()
            };
        }
        if gop.whole {
            if gop.units.len() < GOP_MAX_UNITS && gop.bytes + au.data.len() <= GOP_MAX_BYTES {
                gop.bytes += au.data.len();
                gop.units.push(au.clone());
            } else {
                *gop = Gop::default();
            }
        }
        if let Some(tx) = self.tx.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            if tx.receiver_count() > 0 {
                let _ = tx.send(au.clone());
            }
        }
    }

    /// The stream ended: every viewer's [`Viewer::next`] returns `None` after what it has.
    pub fn close(&self) {
        let mut gop = self.gop.lock().unwrap_or_else(|e| e.into_inner());
        self.tx.lock().unwrap_or_else(|e| e.into_inner()).take();
        *gop = Gop::default();
    }

    /// True until [`LiveFeed::close`].
    pub fn is_open(&self) -> bool {
        self.tx.lock().unwrap_or_else(|e| e.into_inner()).is_some()
    }

    /// A place among the viewers, or `Full` when `max_viewers` are watching. Dropping the
    /// [`Place`] frees it.
    pub fn reserve(self: &Arc<Self>) -> Result<Place, Full> {
        self.viewers
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max_viewers).then_some(n + 1)
            })
            .map_err(|_| Full(self.max_viewers))?;
        Ok(Place { feed: self.clone() })
    }

    /// A viewer of the compressed stream (see [`Viewer::next`]), or `Full`.
    pub fn join(self: &Arc<Self>) -> Result<Viewer, Full> {
        let place = self.reserve()?;
        Ok(self.viewer(place))
    }

    /// A viewer in a place already reserved (an HTTP upgrade reserves before it answers).
    pub fn viewer(self: &Arc<Self>, place: Place) -> Viewer {
        let gop = self.gop.lock().unwrap_or_else(|e| e.into_inner());
        // A closed feed gives a viewer that ends at once.
        let rx = match self.tx.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            Some(tx) => tx.subscribe(),
            None => broadcast::channel(1).1,
        };
        let start: VecDeque<Arc<Au>> = if gop.whole {
            gop.units.iter().cloned().collect()
        } else {
            VecDeque::new()
        };
        drop(gop);
        Viewer {
            rx,
            start,
            last_pts: None,
            synced: false,
            _place: place,
        }
    }

    pub fn viewers(&self) -> usize {
        self.viewers.load(Ordering::Acquire)
    }

    pub fn max_viewers(&self) -> usize {
        self.max_viewers
    }
}

/// A reserved place among a feed's viewers (also used by the MJPEG stream).
pub struct Place {
    feed: Arc<LiveFeed>,
}

impl Drop for Place {
    fn drop(&mut self) {
        self.feed.viewers.fetch_sub(1, Ordering::AcqRel);
    }
}

pub struct Viewer {
    rx: broadcast::Receiver<Arc<Au>>,
    /// The units to start with: the feed's latest key frame and those after it when the
    /// viewer joined.
    start: VecDeque<Arc<Au>>,
    last_pts: Option<u64>,
    /// False until a key frame was handed out (and again after falling behind).
    synced: bool,
    _place: Place,
}

impl Viewer {
    /// The next access unit. The first is always a key frame; after the viewer fell behind
    /// it skips to the next key frame. `None` when the stream ended (the camera stopped or
    /// reconnected: a new stream has a new feed).
    pub async fn next(&mut self) -> Option<Arc<Au>> {
        if let Some(k) = self.start.pop_front() {
            self.synced = true;
            self.last_pts = Some(k.pts);
            return Some(k);
        }
        loop {
            match self.rx.recv().await {
                Ok(au) => {
                    // Units older than the start frame were queued before it was handed out.
                    if self.last_pts.is_some_and(|p| au.pts <= p) {
                        continue;
                    }
                    if !self.synced && !au.key {
                        continue;
                    }
                    self.synced = true;
                    self.last_pts = Some(au.pts);
                    return Some(au);
                }
                Err(broadcast::error::RecvError::Lagged(_)) => self.synced = false,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn au(pts: u64, key: bool) -> Arc<Au> {
        Arc::new(Au {
            data: Arc::from(&[0u8, 0, 0, 1, if key { 0x65 } else { 0x41 }][..]),
            pts,
            key,
        })
    }

    #[tokio::test]
    async fn a_viewer_starts_at_the_last_key_frame_and_skips_after_falling_behind() {
        let feed = LiveFeed::new(2);
        feed.push(&au(0, false));
        feed.push(&au(1, true));
        feed.push(&au(2, false));
        let mut v = feed.join().unwrap();
        assert_eq!(
            v.next().await.unwrap().pts,
            1,
            "the key frame it joined after"
        );
        assert_eq!(v.next().await.unwrap().pts, 2, "and the units since");
        feed.push(&au(3, false));
        assert_eq!(v.next().await.unwrap().pts, 3);
        // Far behind: everything until the next key frame is skipped.
        for p in 4..(4 + BEHIND as u64 * 2) {
            feed.push(&au(p, false));
        }
        let k = 4 + BEHIND as u64 * 2;
        feed.push(&au(k, true));
        feed.push(&au(k + 1, false));
        assert_eq!(v.next().await.unwrap().pts, k);
        assert_eq!(v.next().await.unwrap().pts, k + 1);
    }

    #[tokio::test]
    async fn a_viewer_joining_mid_group_gets_every_unit_once_or_waits_for_a_key_frame() {
        let feed = LiveFeed::new(2);
        feed.push(&au(10, true));
        for p in 11..15 {
            feed.push(&au(p, false));
        }
        let mut v = feed.join().unwrap();
        feed.push(&au(15, false));
        let mut got = Vec::new();
        for _ in 0..6 {
            got.push(v.next().await.unwrap().pts);
        }
        assert_eq!(
            got,
            (10..16).collect::<Vec<_>>(),
            "from the key frame, nothing missing"
        );
        // A group longer than what is kept: the next viewer starts at the next key frame.
        for p in 16..(16 + GOP_MAX_UNITS as u64) {
            feed.push(&au(p, false));
        }
        let mut late = feed.join().unwrap();
        let k = 16 + GOP_MAX_UNITS as u64;
        feed.push(&au(k - 1, false));
        feed.push(&au(k, true));
        assert_eq!(late.next().await.unwrap().pts, k);
    }

    #[tokio::test]
    async fn the_viewer_limit_holds_and_a_place_is_freed_on_drop() {
        let feed = LiveFeed::new(2);
        let a = feed.join().unwrap();
        let _b = feed.join().unwrap();
        assert_eq!(feed.join().err(), Some(Full(2)));
        assert_eq!(feed.viewers(), 2);
        drop(a);
        assert!(feed.reserve().is_ok());
    }

    #[tokio::test]
    async fn a_viewer_ends_when_the_feed_goes() {
        let feed = LiveFeed::new(1);
        feed.push(&au(0, true));
        let mut v = feed.join().unwrap();
        assert!(v.next().await.unwrap().key);
        feed.close();
        assert!(v.next().await.is_none());
        drop(v);
        let mut late = feed.join().unwrap();
        assert!(
            late.next().await.is_none(),
            "a viewer of a closed feed ends at once"
        );
    }
}
