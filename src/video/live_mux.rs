//! The live view's muxing: one camera stream's access units, as a viewer receives them, into
//! fragmented MP4 for Media Source Extensions: an init segment when the stream's parameters
//! are new or changed, then one fragment per access unit. A sample's duration is the interval
//! from the unit before it (the next one's time is not known yet; holding one back would add a
//! frame of latency); decode times run on from 0 by the durations written, so units skipped
//! leave no gap in the player's timeline; B-frame streams get composition offsets from the
//! pictures' order counts.

use super::h264::{self, PocCounter, SpsInfo};
use super::mp4::{self, Sample, Track};
use super::Au;

/// The duration given to a sample with no interval before it (15 fps).
const DEFAULT_DURATION: u32 = 6000;

#[derive(Default)]
pub struct LiveMuxer {
    track: Option<Track>,
    seq: u32,
    decode_time: u64,
    last_pts: Option<u64>,
    interval: Option<u32>,
    /// Skipping to the next key frame.
    resync: bool,
    /// Presentation order of B-frame streams: the pictures' order counts, the smallest step
    /// between them (2 for frame pictures) and the decoding index since the key frame.
    sps: Option<SpsInfo>,
    poc: PocCounter,
    poc_step: i64,
    index: i64,
}

/// What to send for one access unit.
pub enum Muxed {
    /// The stream's parameters are new or changed: its track and init segment, then the
    /// fragment.
    Start(Track, Vec<u8>, Vec<u8>),
    Fragment(Vec<u8>),
    /// Nothing to send (no parameter sets yet, or waiting for a key frame after a skip).
    Skip,
}

impl LiveMuxer {
    /// Fragments made so far.
    pub fn fragments(&self) -> u32 {
        self.seq
    }

    /// Drops units until the next key frame (the viewer could not keep up).
    pub fn resync(&mut self) {
        self.resync = true;
    }

    /// Presentation minus decoding time of a picture: its place in display order (its order
    /// count over the step) minus its place in decoding order, in frame durations. Zero for
    /// streams without B-frames.
    fn composition_offset(&mut self, au: &[u8], duration: u32) -> i32 {
        let idx = self.index;
        self.index += 1;
        let Some(sps) = self.sps.as_ref() else {
            return 0;
        };
        let Some(slice) = h264::nal_units(au)
            .into_iter()
            .find(|n| (1..=5).contains(&h264::nal_type(n)))
        else {
            return 0;
        };
        let Some(poc) = self.poc.next(sps, slice) else {
            return 0;
        };
        if poc > 0 && poc < self.poc_step {
            self.poc_step = poc;
        }
        let frames = poc / self.poc_step.max(1) - idx;
        if frames.abs() > 32 {
            return 0; // not a reordering this muxer understands
        }
        (frames * i64::from(duration)) as i32
    }

    pub fn push(&mut self, au: &Au) -> Muxed {
        if let Some(p) = self.last_pts {
            let d = au.pts.saturating_sub(p);
            // A jump (a stall, a wrap) is not a frame interval.
            if (1..=u64::from(mp4::TIMESCALE)).contains(&d) {
                self.interval = Some(d as u32);
            }
        }
        self.last_pts = Some(au.pts);
        let mut start = None;
        if au.key {
            if let Some(t) = Track::from_au(&au.data) {
                self.index = 0;
                if self.track.as_ref() != Some(&t) {
                    self.sps = h264::parse_sps(&t.sps);
                    self.poc_step = 2;
                    start = Some((t.clone(), mp4::init_segment(&t)));
                    self.track = Some(t);
                    self.decode_time = 0;
                    self.resync = false;
                }
            }
        }
        // Nothing can be decoded before parameter sets, nor after a skip before a key frame.
        if self.track.is_none() || (self.resync && !au.key) {
            return Muxed::Skip;
        }
        self.resync = false;
        let duration = self.interval.unwrap_or(DEFAULT_DURATION);
        let composition_offset = self.composition_offset(&au.data, duration);
        self.seq = self.seq.wrapping_add(1);
        let frag = mp4::fragment(
            self.seq,
            self.decode_time,
            &[Sample {
                au: &au.data,
                duration,
                key: au.key,
                composition_offset,
            }],
        );
        self.decode_time += u64::from(duration);
        match start {
            Some((track, init)) => Muxed::Start(track, init, frag),
            None => Muxed::Fragment(frag),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn au(data: &[u8], pts: u64, key: bool) -> Au {
        Au {
            data: Arc::from(data),
            pts,
            key,
        }
    }

    /// The first key frame of the demo clip (with its SPS and PPS) and the frame after it.
    fn demo_units() -> (Vec<u8>, Vec<u8>) {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/demo/person-walk.h264");
        let bytes = std::fs::read(path).unwrap();
        let units = crate::video::h264::access_units(&bytes);
        (units[0].to_vec(), units[1].to_vec())
    }

    #[test]
    fn the_muxer_starts_at_a_key_frame_with_parameters_and_times_by_intervals() {
        let (key, delta) = demo_units();
        let mut m = LiveMuxer::default();
        assert!(
            matches!(m.push(&au(&delta, 0, false)), Muxed::Skip),
            "no parameters yet"
        );
        let Muxed::Start(track, init, f1) = m.push(&au(&key, 3000, true)) else {
            panic!("a key frame with SPS/PPS starts the stream");
        };
        assert_eq!((track.width, track.height), (640, 360));
        assert!(track.codec().starts_with("avc1."), "{}", track.codec());
        assert_eq!(&init[4..8], b"ftyp");
        assert_eq!(&f1[4..8], b"moof");
        // The interval from the unit before (3000) is this one's duration.
        assert_eq!((m.decode_time, m.seq), (3000, 1));
        assert!(matches!(
            m.push(&au(&delta, 9000, false)),
            Muxed::Fragment(_)
        ));
        assert_eq!(m.decode_time, 9000);
        // The same parameters again: no new init segment.
        assert!(matches!(m.push(&au(&key, 15000, true)), Muxed::Fragment(_)));
        // After a late send: nothing until the next key frame.
        m.resync();
        assert!(matches!(m.push(&au(&delta, 21000, false)), Muxed::Skip));
        assert!(matches!(m.push(&au(&key, 27000, true)), Muxed::Fragment(_)));
        assert!(matches!(
            m.push(&au(&delta, 33000, false)),
            Muxed::Fragment(_)
        ));
        // A jump in time keeps the last interval.
        let before = m.decode_time;
        assert!(matches!(
            m.push(&au(&delta, 10_000_000, false)),
            Muxed::Fragment(_)
        ));
        assert_eq!(m.decode_time - before, 6000);
    }
}
