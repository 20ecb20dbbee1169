//! Object tracking across frames, so that one person walking through is one event and a parked car
//! is announced once, not every time something moves near it.
//!
//! Detections are matched to tracks of the same detection type by IoU (or, for a fast mover whose
//! boxes no longer overlap, by centre distance within a short time), greedily, best pair first.
//! A detection that matches no track starts a tentative one if its score reaches the announce
//! threshold; a tentative track is confirmed (and the caller announces it) when the next run
//! sees it again, and dropped when a run looks and misses it: a single-frame false positive
//! (a lamp's glow taken for a car) never becomes an event. A track only loses an object when a detector run looked at its
//! place (its centre lies in a region that was run) and did not find it: twice, or once after
//! three seconds unseen. Objects nobody looked at are kept (the detector only runs where there is
//! motion, so a stationary object is not looked for and must not be forgotten and re-announced).
//! Each track keeps its best-scoring observation (the caller's payload, e.g. the frame) so the
//! event's snapshot can be the best frame of the track.

use super::postprocess::Detection;

/// A detection with its detection type (`person`, `vehicle`, `animal`).
#[derive(Debug, Clone)]
pub struct Observation {
    pub kind: &'static str,
    pub det: Detection,
}

/// A square (or any rectangle) a detector run covered, normalised to the frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Area {
    pub x: f32,
    pub y: f32,
    pub width: f32,
    pub height: f32,
}

impl Area {
    fn contains(&self, x: f32, y: f32) -> bool {
        x >= self.x && x <= self.x + self.width && y >= self.y && y <= self.y + self.height
    }
}

#[derive(Debug, Clone)]
pub struct Track<P> {
    pub id: u64,
    pub kind: &'static str,
    /// The last matched box.
    pub last: Detection,
    /// Monotonic milliseconds.
    pub first_seen: u64,
    pub last_seen: u64,
    pub hits: u32,
    misses: u32,
    /// Seen in at least [`CONFIRM_HITS`] runs.
    pub confirmed: bool,
    pub best_score: f32,
    /// The caller's payload of the best-scoring observation.
    pub best: P,
    /// What the caller attached when it announced the track (e.g. an event id).
    pub announced: Option<(String, f32)>,
}

/// What one update changed.
#[derive(Debug)]
pub struct Update<P> {
    /// Ids of tracks confirmed by this update (to announce).
    pub started: Vec<u64>,
    /// Ids of tracks whose best observation is now this one.
    pub improved: Vec<u64>,
    /// Tracks that ended (the object left).
    pub ended: Vec<Track<P>>,
    /// Observations matched to a track or starting one (the rest were below the threshold
    /// and matched nothing).
    pub kept: usize,
}

pub struct Tracker<P> {
    tracks: Vec<Track<P>>,
    next_id: u64,
}

/// Runs that must see an object before it is announced.
pub const CONFIRM_HITS: u32 = 2;
/// IoU at which a detection continues a track.
const MATCH_IOU: f32 = 0.2;
/// A non-overlapping detection continues a track when its centre is within this many box sizes
/// and the track was seen this recently.
const MATCH_DISTANCE: f32 = 0.75;
const MATCH_RECENT_MS: u64 = 2_000;
/// A track ends after this many runs that looked and missed it...
const MISSES_TO_END: u32 = 2;
/// ...or after one such run when it has been unseen this long.
const UNSEEN_END_MS: u64 = 3_000;
/// Tracks nobody looked at are dropped after this long (memory bound; a re-announcement a day
/// is acceptable).
const MAX_UNSEEN_MS: u64 = 24 * 3600 * 1000;
/// At most this many tracks per camera; the longest unseen go first.
const MAX_TRACKS: usize = 64;

impl<P: Clone> Default for Tracker<P> {
    fn default() -> Self {
        Tracker {
            tracks: Vec::new(),
            next_id: 1,
        }
    }
}

fn centre(d: &Detection) -> (f32, f32) {
    (d.x + d.width / 2.0, d.y + d.height / 2.0)
}

impl<P: Clone> Tracker<P> {
    pub fn tracks(&self) -> &[Track<P>] {
        &self.tracks
    }

    pub fn get_mut(&mut self, id: u64) -> Option<&mut Track<P>> {
        self.tracks.iter_mut().find(|t| t.id == id)
    }

    /// Feeds one detector run: what it found (`obs`), where it looked (`covered`), at `now`
    /// (monotonic ms). New tracks start only from observations scoring at least `announce_min`;
    /// weaker ones only continue tracks. `payload` is stored as the best observation of tracks
    /// it improves.
    pub fn update(
        &mut self,
        now: u64,
        obs: &[Observation],
        covered: &[Area],
        announce_min: f32,
        payload: &P,
    ) -> Update<P> {
        // Candidate pairs, best first.
        let mut pairs: Vec<(f32, usize, usize)> = Vec::new();
        for (ti, t) in self.tracks.iter().enumerate() {
            for (oi, o) in obs.iter().enumerate() {
                if o.kind != t.kind {
                    continue;
                }
                let iou = t.last.iou(&o.det);
                if iou >= MATCH_IOU {
                    pairs.push((iou, ti, oi));
                    continue;
                }
                let (tx, ty) = centre(&t.last);
                let (ox, oy) = centre(&o.det);
                let size = t
                    .last
                    .width
                    .max(t.last.height)
                    .max(o.det.width.max(o.det.height));
                let dist = ((tx - ox).powi(2) + (ty - oy).powi(2)).sqrt();
                if dist <= MATCH_DISTANCE * size
                    && now.saturating_sub(t.last_seen) <= MATCH_RECENT_MS
                {
                    // Below any IoU match in priority.
                    pairs.push((
                        MATCH_IOU * (1.0 - dist / (MATCH_DISTANCE * size)) * 0.99,
                        ti,
                        oi,
                    ));
                }
            }
        }
        pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
        let mut track_used = vec![false; self.tracks.len()];
        let mut obs_used = vec![false; obs.len()];
        let mut up = Update {
            started: Vec::new(),
            improved: Vec::new(),
            ended: Vec::new(),
            kept: 0,
        };
        for (_, ti, oi) in pairs {
            if track_used[ti] || obs_used[oi] {
                continue;
            }
            track_used[ti] = true;
            obs_used[oi] = true;
            up.kept += 1;
            let t = &mut self.tracks[ti];
            let d = &obs[oi].det;
            t.last = d.clone();
            t.last_seen = now;
            t.hits += 1;
            t.misses = 0;
            if !t.confirmed && t.hits >= CONFIRM_HITS {
                t.confirmed = true;
                up.started.push(t.id);
            }
            if d.score > t.best_score {
                t.best_score = d.score;
                t.best = payload.clone();
                up.improved.push(t.id);
            }
        }
        // Tracks this run looked for and did not find.
        let mut i = 0;
        let mut idx = 0;
        while i < self.tracks.len() {
            let t = &mut self.tracks[i];
            let was_used = track_used[idx];
            idx += 1;
            if !was_used {
                let (cx, cy) = centre(&t.last);
                if covered.iter().any(|a| a.contains(cx, cy)) {
                    t.misses += 1;
                }
                let unseen = now.saturating_sub(t.last_seen);
                if t.misses >= MISSES_TO_END
                    || (t.misses >= 1 && (unseen >= UNSEEN_END_MS || !t.confirmed))
                    || (!t.confirmed && unseen > MATCH_RECENT_MS)
                    || unseen >= MAX_UNSEEN_MS
                {
                    up.ended.push(self.tracks.remove(i));
                    continue;
                }
            }
            i += 1;
        }
        for (oi, o) in obs.iter().enumerate() {
            if obs_used[oi] || o.det.score < announce_min {
                continue;
            }
            up.kept += 1;
            let id = self.next_id;
            self.next_id += 1;
            self.tracks.push(Track {
                id,
                kind: o.kind,
                last: o.det.clone(),
                first_seen: now,
                last_seen: now,
                hits: 1,
                misses: 0,
                confirmed: CONFIRM_HITS <= 1,
                best_score: o.det.score,
                best: payload.clone(),
                announced: None,
            });
            if CONFIRM_HITS <= 1 {
                up.started.push(id);
            }
        }
        while self.tracks.len() > MAX_TRACKS {
            let oldest = self
                .tracks
                .iter()
                .enumerate()
                .min_by_key(|(_, t)| t.last_seen)
                .map(|(i, _)| i)
                .unwrap_or(0);
            up.ended.push(self.tracks.remove(oldest));
        }
        up
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(kind: &'static str, x: f32, y: f32, w: f32, h: f32, score: f32) -> Observation {
        Observation {
            kind,
            det: Detection {
                class: 0,
                score,
                x,
                y,
                width: w,
                height: h,
            },
        }
    }

    const ALL: Area = Area {
        x: 0.0,
        y: 0.0,
        width: 1.0,
        height: 1.0,
    };

    #[test]
    fn a_walk_across_the_frame_is_one_track_with_its_best_frame() {
        let mut t: Tracker<u32> = Tracker::default();
        let mut started = 0;
        // 5 detections a second, the person moves 0.05 of the frame per step.
        for step in 0..18u32 {
            let x = 0.05 * step as f32;
            let score = if step == 9 { 0.9 } else { 0.6 };
            let u = t.update(
                step as u64 * 200,
                &[obs("person", x, 0.3, 0.1, 0.4, score)],
                &[ALL],
                0.5,
                &step,
            );
            started += u.started.len();
            assert!(u.ended.is_empty());
        }
        assert_eq!(started, 1);
        assert_eq!(t.tracks()[0].best, 9);
        assert_eq!(t.tracks()[0].hits, 18);
        // Gone: a run that looks everywhere, 3 s later, ends the track.
        let u = t.update(7_000, &[], &[ALL], 0.5, &99);
        assert_eq!(u.ended.len(), 1);
        assert_eq!(u.ended[0].best, 9);
        assert!(t.tracks().is_empty());
    }

    #[test]
    fn a_fast_mover_with_no_overlap_stays_one_track() {
        let mut t: Tracker<()> = Tracker::default();
        let a = t.update(
            0,
            &[obs("person", 0.1, 0.3, 0.1, 0.4, 0.8)],
            &[ALL],
            0.5,
            &(),
        );
        let b = t.update(
            300,
            &[obs("person", 0.22, 0.3, 0.1, 0.4, 0.8)],
            &[ALL],
            0.5,
            &(),
        );
        let c = t.update(
            600,
            &[obs("person", 0.34, 0.3, 0.1, 0.4, 0.8)],
            &[ALL],
            0.5,
            &(),
        );
        assert!(a.started.is_empty(), "tentative until seen again");
        assert_eq!(b.started.len(), 1);
        assert!(c.started.is_empty());
        assert_eq!(t.tracks().len(), 1);
        // Far away and much later: a new object.
        t.update(
            5_000,
            &[obs("person", 0.8, 0.3, 0.1, 0.4, 0.8)],
            &[ALL],
            0.5,
            &(),
        );
        let d = t.update(
            5_200,
            &[obs("person", 0.8, 0.3, 0.1, 0.4, 0.8)],
            &[ALL],
            0.5,
            &(),
        );
        assert_eq!(d.started.len(), 1);
    }

    #[test]
    fn a_single_frame_false_positive_is_never_announced() {
        let mut t: Tracker<()> = Tracker::default();
        let a = t.update(
            0,
            &[obs("vehicle", 0.4, 0.2, 0.3, 0.2, 0.52)],
            &[ALL],
            0.5,
            &(),
        );
        assert!(a.started.is_empty());
        let b = t.update(200, &[], &[ALL], 0.5, &());
        assert!(b.started.is_empty());
        assert_eq!(b.ended.len(), 1);
        assert!(t.tracks().is_empty());
    }

    #[test]
    fn a_parked_car_is_announced_once_while_people_pass() {
        let mut t: Tracker<()> = Tracker::default();
        let car = || obs("vehicle", 0.6, 0.5, 0.3, 0.2, 0.8);
        t.update(0, &[car()], &[ALL], 0.5, &());
        let u = t.update(200, &[car()], &[ALL], 0.5, &());
        assert_eq!(u.started.len(), 1);
        // Hours of nothing near it: no runs cover it, it is kept.
        let near_door = Area {
            x: 0.0,
            y: 0.0,
            width: 0.3,
            height: 0.5,
        };
        for i in 1..100u64 {
            let u = t.update(i * 60_000, &[], &[near_door], 0.5, &());
            assert!(u.ended.is_empty());
        }
        // Someone walks past it: the crop sees the car again; only the person is new.
        let person = || obs("person", 0.5, 0.3, 0.1, 0.4, 0.7);
        let u = t.update(6_100_000, &[car(), person()], &[ALL], 0.5, &());
        assert!(u.started.is_empty());
        let u = t.update(6_100_200, &[car(), person()], &[ALL], 0.5, &());
        assert_eq!(u.started.len(), 1);
        assert_eq!(t.tracks().len(), 2);
        assert_eq!(t.tracks().iter().filter(|x| x.kind == "vehicle").count(), 1);
    }

    #[test]
    fn weak_detections_continue_tracks_but_never_start_them() {
        let mut t: Tracker<()> = Tracker::default();
        let u = t.update(
            0,
            &[obs("person", 0.1, 0.1, 0.2, 0.5, 0.35)],
            &[ALL],
            0.5,
            &(),
        );
        assert!(u.started.is_empty());
        assert_eq!(u.kept, 0);
        assert!(t.tracks().is_empty());
        t.update(
            100,
            &[obs("person", 0.1, 0.1, 0.2, 0.5, 0.7)],
            &[ALL],
            0.5,
            &(),
        );
        // A weak sighting confirms a tracked object.
        let u = t.update(
            200,
            &[obs("person", 0.11, 0.1, 0.2, 0.5, 0.35)],
            &[ALL],
            0.5,
            &(),
        );
        assert_eq!(u.kept, 1);
        assert_eq!(u.started.len(), 1);
        assert_eq!(t.tracks()[0].hits, 2);
    }

    #[test]
    fn types_do_not_mix_and_one_miss_is_not_the_end() {
        let mut t: Tracker<()> = Tracker::default();
        let person = || obs("person", 0.1, 0.1, 0.2, 0.5, 0.7);
        let animal = || obs("animal", 0.1, 0.1, 0.2, 0.5, 0.7);
        t.update(0, &[person()], &[ALL], 0.5, &());
        t.update(50, &[person()], &[ALL], 0.5, &());
        // Same place, other type: a new track.
        let u = t.update(100, &[animal()], &[ALL], 0.5, &());
        assert_eq!(t.tracks().len(), 2);
        // The person missed once, recently seen: kept. Missed again: ended.
        assert!(u.ended.is_empty());
        let u = t.update(200, &[animal()], &[ALL], 0.5, &());
        assert_eq!(u.started.len(), 1);
        assert_eq!(u.ended.len(), 1);
        assert_eq!(u.ended[0].kind, "person");
    }
}
