//! Object tracking across frames, so that one person walking through is one event and a parked car
//! is announced once, not every time something moves near it.
//!
//! Each track remembers its last box and its velocity, and is expected where that puts it now
//! (at most one second ahead). Detections are matched to tracks of the same detection type by
//! IoU with that expected box (or, for a fast mover whose boxes no longer overlap, by centre
//! distance within a short time), greedily, best pair first. A detection that matches no track
//! starts a tentative one if its score reaches the announce threshold; a tentative track is
//! confirmed (and the caller announces it) when the next run sees it again and its two best
//! sightings average at least the threshold (0.1 more when the two runs were less than 150 ms
//! apart, on nearly the same picture), and dropped when a run looks and misses it: a single-frame
//! false positive (a lamp's glow taken for a car) never becomes an event. A confirmed track only
//! loses an object when detector runs looked at its expected place (its centre lies in a region
//! that was run) and did not find it: twice over at least 2.5 s, or once after three seconds
//! unseen. A small person far away is not found in every frame; these rules keep one person one
//! track through such gaps. Objects nobody looked at are kept (the detector only runs where
//! there is motion, so a stationary object is not looked for and must not be forgotten and
//! re-announced).
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
    /// The second best score of its sightings.
    second_score: f32,
    /// The caller's payload of the best-scoring observation.
    pub best: P,
    /// What the caller attached when it announced the track (e.g. an event id).
    pub announced: Option<(String, f32)>,
    /// Velocity of the box centre, frame widths and heights per millisecond.
    vx: f32,
    vy: f32,
}

impl<P> Track<P> {
    /// The last box moved by the track's velocity to `now` (at most [`PREDICT_MS`] ahead).
    /// Before a track has three sightings its velocity is not trusted (the first pair may be
    /// two different objects).
    pub fn expected(&self, now: u64) -> Detection {
        if self.hits < 3 {
            return self.last.clone();
        }
        let dt = now.saturating_sub(self.last_seen).min(PREDICT_MS) as f32;
        Detection {
            x: self.last.x + self.vx * dt,
            y: self.last.y + self.vy * dt,
            ..self.last.clone()
        }
    }
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
/// Sightings closer than this are of nearly the same picture...
const QUICK_MS: u64 = 150;
/// ...and confirm an object only when they average this much above the threshold.
const QUICK_MARGIN: f32 = 0.1;
/// IoU at which a detection continues a track.
const MATCH_IOU: f32 = 0.2;
/// A non-overlapping detection continues a track when its centre is within this many box widths
/// (across) and heights (up and down) of where the track is expected, plus [`MATCH_GROWTH`] for
/// every second the track went unseen, and the track was seen within [`MATCH_RECENT_MS`].
const MATCH_DISTANCE: f32 = 0.75;
const MATCH_GROWTH: f32 = 2.5;
const MATCH_RECENT_MS: u64 = 3_000;
/// A track ends after this many runs that looked and missed it, when it has been unseen for
/// [`LOST_MS`]...
const MISSES_TO_END: u32 = 2;
const LOST_MS: u64 = 2_500;
/// ...or after one such run when it has been unseen this long.
const UNSEEN_END_MS: u64 = 3_000;
/// Tracks nobody looked at are dropped after this long (memory bound; a re-announcement a day
/// is acceptable).
const MAX_UNSEEN_MS: u64 = 24 * 3600 * 1000;
/// At most this many tracks per camera; the longest unseen go first.
const MAX_TRACKS: usize = 64;
/// How far ahead a track's position is predicted from its velocity.
const PREDICT_MS: u64 = 1_000;
/// Velocities above this (frame sizes per millisecond: the frame in a quarter second) are noise.
const MAX_SPEED: f32 = 0.004;

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
            // A moving object is expected where its velocity puts it, but only for a short
            // while; after that it is looked for where it was last seen.
            let expected = if now.saturating_sub(t.last_seen) <= MATCH_RECENT_MS {
                t.expected(now)
            } else {
                t.last.clone()
            };
            for (oi, o) in obs.iter().enumerate() {
                if o.kind != t.kind {
                    continue;
                }
                let iou = expected.iou(&o.det).max(t.last.iou(&o.det));
                if iou >= MATCH_IOU {
                    pairs.push((iou, ti, oi));
                    continue;
                }
                // Centre distance in box widths and heights (people are narrow: two people
                // side by side are far apart in widths, however close in pixels).
                let (tx, ty) = centre(&expected);
                let (ox, oy) = centre(&o.det);
                let w = t.last.width.max(o.det.width).max(1e-3);
                let h = t.last.height.max(o.det.height).max(1e-3);
                let dist = (((tx - ox) / w).powi(2) + ((ty - oy) / h).powi(2)).sqrt();
                let unseen = now.saturating_sub(t.last_seen);
                let gate = MATCH_DISTANCE + MATCH_GROWTH * unseen.min(2_000) as f32 / 1000.0;
                if dist <= gate && unseen <= MATCH_RECENT_MS {
                    // Below any IoU match in priority.
                    pairs.push((MATCH_IOU * (1.0 - dist / gate) * 0.99, ti, oi));
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
            let dt = now.saturating_sub(t.last_seen);
            if dt > 0 {
                let (ox, oy) = centre(&t.last);
                let (nx, ny) = centre(d);
                let (ix, iy) = ((nx - ox) / dt as f32, (ny - oy) / dt as f32);
                let (vx, vy) = if t.hits == 1 {
                    (ix, iy)
                } else {
                    ((t.vx + ix) / 2.0, (t.vy + iy) / 2.0)
                };
                t.vx = vx.clamp(-MAX_SPEED, MAX_SPEED);
                t.vy = vy.clamp(-MAX_SPEED, MAX_SPEED);
            }
            t.last = d.clone();
            t.last_seen = now;
            t.hits += 1;
            t.misses = 0;
            if d.score > t.best_score {
                t.second_score = t.best_score;
                t.best_score = d.score;
                t.best = payload.clone();
                up.improved.push(t.id);
            } else if d.score > t.second_score {
                t.second_score = d.score;
            }
            // Confirmed on a second sighting when its two best sightings average at least the
            // threshold: a sighting at 0.6 and a weak one at 0.3 in the next frame (a horse's
            // head cut by a fence, seen twice) is not yet an object; 0.6 and 0.45 is.
            // Two looks at nearly the same picture (the burst's next frame, 67 ms later at
            // 15 fps) are less independent than two analysis slots apart: a false positive
            // that is there in one frame is there in the next. Confirming that quickly needs
            // the sightings to average QUICK_MARGIN more.
            let quick = now.saturating_sub(t.first_seen) < QUICK_MS;
            let need = announce_min + if quick { QUICK_MARGIN } else { 0.0 };
            if !t.confirmed
                && t.hits >= CONFIRM_HITS
                && t.best_score >= announce_min
                && (t.best_score + t.second_score) / 2.0 >= need
            {
                t.confirmed = true;
                up.started.push(t.id);
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
                let (cx, cy) = centre(&t.expected(now));
                if covered
                    .iter()
                    .any(|a| a.contains(cx.clamp(0.0, 1.0), cy.clamp(0.0, 1.0)))
                {
                    t.misses += 1;
                }
                let unseen = now.saturating_sub(t.last_seen);
                if (t.misses >= MISSES_TO_END && unseen >= LOST_MS)
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
                second_score: 0.0,
                best: payload.clone(),
                announced: None,
                vx: 0.0,
                vy: 0.0,
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
    fn small_walkers_found_in_one_run_of_three_stay_one_track_each() {
        // Three small people walking side by side (0.1 apart, 0.03 wide, 0.17 high), each
        // found in only some runs, as a small person far away is.
        let mut t: Tracker<()> = Tracker::default();
        let mut started = 0;
        for step in 0..40u64 {
            let mut seen = Vec::new();
            for k in 0..3u64 {
                if (step + k) % 3 == 0 || step < 2 {
                    let x = 0.01 * step as f32 + 0.1 * k as f32;
                    seen.push(obs("person", x, 0.6, 0.03, 0.17, 0.6));
                }
            }
            let u = t.update(step * 200, &seen, &[ALL], 0.5, &());
            started += u.started.len();
            assert!(u.ended.is_empty(), "step {step}: {:?}", u.ended);
        }
        assert_eq!(started, 3);
        assert_eq!(t.tracks().len(), 3);
    }

    #[test]
    fn a_track_is_confirmed_only_with_a_sighting_at_the_threshold() {
        let mut t: Tracker<()> = Tracker::default();
        t.update(
            0,
            &[obs("person", 0.1, 0.1, 0.2, 0.5, 0.55)],
            &[ALL],
            0.5,
            &(),
        );
        // The threshold was raised since: a weak second sighting does not confirm it.
        let u = t.update(
            200,
            &[obs("person", 0.1, 0.1, 0.2, 0.5, 0.4)],
            &[ALL],
            0.6,
            &(),
        );
        assert!(u.started.is_empty());
        let u = t.update(
            400,
            &[obs("person", 0.1, 0.1, 0.2, 0.5, 0.7)],
            &[ALL],
            0.6,
            &(),
        );
        assert_eq!(u.started.len(), 1);
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
            300,
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
        // The person missed once, recently seen: kept. Missed again soon after: still kept
        // (small objects are not found in every frame). Missed again 2.5 s after it was last
        // seen: ended.
        assert!(u.ended.is_empty());
        let u = t.update(200, &[animal()], &[ALL], 0.5, &());
        assert_eq!(u.started.len(), 1);
        assert!(u.ended.is_empty());
        let u = t.update(2_600, &[animal()], &[ALL], 0.5, &());
        assert_eq!(u.ended.len(), 1);
        assert_eq!(u.ended[0].kind, "person");
    }
}
