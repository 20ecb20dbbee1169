//! Cheap motion detection on the luma plane.
//!
//! Each analysed frame is box-averaged down to about 120 rows (averaging also removes most
//! sensor noise), compared with a running-average background, and corrected for global
//! brightness shifts (auto-exposure, lights dimming). Changed cells need changed neighbours, so
//! isolated noise never counts. A frame whose change covers most of the picture is a lighting
//! change: the background is reset and no motion is reported. Motion is the share of changed
//! cells inside the enabled zones (the whole frame when there are none), compared with the
//! camera's sensitivity (low 5 %, medium 2 %, high 0.5 %), and judged per region as well: one
//! compact connected region (a small person far away, 1/6 of the frame high, is about 1 % of
//! the frame) counts on its own when it has at least [`region_cells`] cells and fills at least
//! [`REGION_FILL`] of its bounding box, while scattered changes of the same total do not.
//! Connected changed regions become boxes for the object detector.

use crate::model::{Point, Zone};

/// Rows of the analysis grid (the frame is scaled down by a whole factor to about this many).
const GRID_ROWS: usize = 100;
/// Difference (0-255 luma) above which a cell counts as changed, after brightness correction.
const DIFF_THRESHOLD: i16 = 18;
/// Above this share of the whole frame changing at once, it is a lighting change, not motion.
const LIGHTING_CHANGE: f32 = 0.55;
/// Frames used to learn the background before motion can be reported.
const WARMUP_FRAMES: u32 = 3;
/// A region needs at least this many cells to become a box.
const MIN_BOX_CELLS: usize = 4;
/// A region counts as motion on its own only when its cells fill at least this share of its
/// bounding box (a walking person fills 40-90 %; a line of flicker along an edge much less).
pub const REGION_FILL: f32 = 0.3;

/// Cells a single compact region needs to count as motion on its own, for a sensitivity
/// threshold (share of the frame): an eighth of the whole-frame threshold's cells on the
/// analysis grid (about 14,000 cells for 16:9), at least 9 cells (3x3). High: 9 cells, medium
/// 36, low 90 on a 160x90 grid.
pub fn region_cells(threshold: f32, grid_cells: usize) -> usize {
    ((threshold * grid_cells as f32 / 8.0).round() as usize).max(9)
}

/// A motion region in normalised coordinates (0..1, origin top left).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct MotionBox {
    pub x: f32,
    pub y: f32,
    pub width: f32,
    pub height: f32,
}

/// The verdict on one frame.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MotionResult {
    /// Changed share of the watched area (0..1).
    pub fraction: f32,
    pub motion: bool,
    /// Share of the watched area covered by the largest compact region (0..1).
    pub region: f32,
    pub lighting_change: bool,
}

pub struct MotionDetector {
    threshold: f32,
    zones: Vec<Zone>,
    // Geometry of the current stream; everything below is rebuilt when it changes.
    src: (usize, usize),
    factor: usize,
    gw: usize,
    gh: usize,
    /// Background, luma × 16 (fixed point).
    bg: Vec<u16>,
    cur: Vec<u8>,
    /// Offsets of the sampled pixels inside a cell for `offsets_stride` (kept across frames).
    offsets: Vec<usize>,
    offsets_stride: usize,
    /// Per-frame scratch: difference to the background, changed (0/1), changed and confirmed.
    diff: Vec<i16>,
    changed: Vec<u8>,
    kept: Vec<bool>,
    mask: Vec<bool>,
    mask_cells: usize,
    frames: u32,
    /// Connected regions of the last analysed frame: (cells, box), largest first.
    blobs: Vec<(usize, MotionBox)>,
    /// Flood-fill scratch.
    seen: Vec<bool>,
    stack: Vec<usize>,
}

fn point_in_polygon(px: f32, py: f32, poly: &[Point]) -> bool {
    let mut inside = false;
    let n = poly.len();
    let mut j = n - 1;
    for i in 0..n {
        let (a, b) = (poly[i], poly[j]);
        if (a.y > py) != (b.y > py) && px < (b.x - a.x) * (py - a.y) / (b.y - a.y) + a.x {
            inside = !inside;
        }
        j = i;
    }
    inside
}

impl MotionDetector {
    /// `changed_fraction` is the sensitivity threshold (`Sensitivity::changed_fraction`).
    pub fn new(changed_fraction: f32, zones: &[Zone]) -> Self {
        MotionDetector {
            threshold: changed_fraction,
            zones: zones
                .iter()
                .filter(|z| z.enabled && z.vertices.len() >= 3)
                .cloned()
                .collect(),
            src: (0, 0),
            factor: 1,
            gw: 0,
            gh: 0,
            bg: Vec::new(),
            cur: Vec::new(),
            offsets: Vec::new(),
            offsets_stride: 0,
            diff: Vec::new(),
            changed: Vec::new(),
            kept: Vec::new(),
            mask: Vec::new(),
            mask_cells: 0,
            frames: 0,
            blobs: Vec::new(),
            seen: Vec::new(),
            stack: Vec::new(),
        }
    }

    fn reset(&mut self, width: usize, height: usize) {
        self.src = (width, height);
        self.factor = height.div_ceil(GRID_ROWS).max(1);
        self.offsets.clear();
        self.gw = (width / self.factor).max(1);
        self.gh = (height / self.factor).max(1);
        let n = self.gw * self.gh;
        self.bg = vec![0; n];
        self.cur = vec![0; n];
        self.diff = vec![0; n];
        self.changed = vec![0; n];
        self.kept = vec![false; n];
        self.seen = vec![false; n];
        self.blobs.clear();
        self.mask = (0..n)
            .map(|i| {
                if self.zones.is_empty() {
                    return true;
                }
                let x = ((i % self.gw) as f32 + 0.5) / self.gw as f32;
                let y = ((i / self.gw) as f32 + 0.5) / self.gh as f32;
                self.zones
                    .iter()
                    .any(|z| point_in_polygon(x, y, &z.vertices))
            })
            .collect();
        self.mask_cells = self.mask.iter().filter(|m| **m).count();
        self.frames = 0;
    }

    /// Averages each cell of the luma plane into the analysis grid. Large cells are sampled on
    /// a sub-grid (every `step`-th pixel and row): enough to average out sensor noise at a
    /// fraction of the reads.
    fn downscale(&mut self, y: &[u8], stride: usize) {
        let f = self.factor;
        let step = (f / 2).max(1);
        // Offsets of the sampled pixels inside a cell, and 1/count in 16.16 fixed point (a
        // division per cell would cost more than the sums).
        if self.offsets_stride != stride || self.offsets.is_empty() {
            self.offsets = (0..f)
                .step_by(step)
                .flat_map(|r| (0..f).step_by(step).map(move |c| r * stride + c))
                .collect();
            self.offsets_stride = stride;
        }
        let offsets = &self.offsets;
        let recip = (1u32 << 16) / offsets.len() as u32;
        for gy in 0..self.gh {
            let row_base = gy * f * stride;
            let out = &mut self.cur[gy * self.gw..(gy + 1) * self.gw];
            for (gx, o) in out.iter_mut().enumerate() {
                let base = row_base + gx * f;
                let cell = &y[base..base + offsets[offsets.len() - 1] + 1];
                let sum: u32 = offsets.iter().map(|&off| cell[off] as u32).sum();
                *o = ((sum * recip) >> 16).min(255) as u8;
            }
        }
    }

    /// Analyses one frame's luma plane (`stride` bytes per row).
    pub fn analyse(
        &mut self,
        y: &[u8],
        width: usize,
        height: usize,
        stride: usize,
    ) -> MotionResult {
        if width == 0 || height == 0 || y.len() < stride * (height - 1) + width {
            return MotionResult::default();
        }
        if self.src != (width, height) {
            self.reset(width, height);
        }
        self.downscale(y, stride);
        let n = self.cur.len();
        self.blobs.clear();
        if self.frames == 0 {
            for i in 0..n {
                self.bg[i] = (self.cur[i] as u16) << 4;
            }
            self.frames = 1;
            return MotionResult::default();
        }
        // Global brightness shift, measured as the median difference so a person does not
        // move it.
        let mut hist = [0u32; 511];
        for ((d, &c), &b) in self.diff.iter_mut().zip(&self.cur).zip(&self.bg) {
            *d = c as i16 - (b >> 4) as i16;
            hist[(*d + 255) as usize] += 1;
        }
        let mut acc = 0u32;
        let mut shift = 0i16;
        for (k, c) in hist.iter().enumerate() {
            acc += c;
            if acc * 2 >= n as u32 {
                shift = k as i16 - 255;
                break;
            }
        }
        let mut raw_changed = 0usize;
        for (ch, &d) in self.changed.iter_mut().zip(&self.diff) {
            *ch = ((d - shift).abs() > DIFF_THRESHOLD) as u8;
            raw_changed += *ch as usize;
        }
        let whole_share = raw_changed as f32 / n as f32;
        if whole_share > LIGHTING_CHANGE {
            for (b, &c) in self.bg.iter_mut().zip(&self.cur) {
                *b = (c as u16) << 4;
            }
            self.frames += 1;
            return MotionResult {
                fraction: whole_share,
                lighting_change: true,
                ..Default::default()
            };
        }
        // Keep changed cells that have at least two changed neighbours (border cells never
        // count: a moving object is more than one cell wide).
        let (gw, gh) = (self.gw, self.gh);
        self.kept.iter_mut().for_each(|k| *k = false);
        let c = &self.changed;
        for gy in 1..gh.saturating_sub(1) {
            for gx in 1..gw - 1 {
                let i = gy * gw + gx;
                if c[i] == 0 {
                    continue;
                }
                let nb = c[i - gw - 1]
                    + c[i - gw]
                    + c[i - gw + 1]
                    + c[i - 1]
                    + c[i + 1]
                    + c[i + gw - 1]
                    + c[i + gw]
                    + c[i + gw + 1];
                self.kept[i] = nb >= 2;
            }
        }
        let in_zone = self
            .kept
            .iter()
            .zip(&self.mask)
            .filter(|(k, m)| **k && **m)
            .count();
        let fraction = if self.mask_cells == 0 {
            0.0
        } else {
            in_zone as f32 / self.mask_cells as f32
        };
        // Learn: quickly where nothing moves, slowly under moving things (so a parked car
        // becomes background within minutes).
        for ((b, &cur), &moving) in self.bg.iter_mut().zip(&self.cur).zip(&self.kept) {
            let target = (cur as i32) << 4;
            let old = *b as i32;
            let step = if moving {
                (target - old) / 64
            } else {
                (target - old) / 8
            };
            *b = (old + step).clamp(0, 255 << 4) as u16;
        }
        self.frames += 1;
        self.find_regions();
        let need = region_cells(self.threshold, self.mask_cells);
        let compact = self
            .blobs
            .iter()
            .filter(|(cells, b)| {
                let area = b.width * self.gw as f32 * b.height * self.gh as f32;
                *cells >= need && *cells as f32 >= REGION_FILL * area
            })
            .map(|(cells, _)| *cells)
            .max()
            .unwrap_or(0);
        let region = if self.mask_cells == 0 {
            0.0
        } else {
            compact as f32 / self.mask_cells as f32
        };
        let motion = self.frames > WARMUP_FRAMES && (fraction >= self.threshold || compact > 0);
        MotionResult {
            fraction,
            motion,
            region,
            lighting_change: false,
        }
    }

    /// Bounding boxes of the connected changed regions of the last analysed frame inside the
    /// zones, largest first (at most 16).
    pub fn boxes(&self) -> Vec<MotionBox> {
        self.blobs.iter().map(|(_, b)| *b).take(16).collect()
    }

    /// Connected regions of changed cells inside the zones, into `self.blobs`.
    fn find_regions(&mut self) {
        let (gw, gh) = (self.gw, self.gh);
        let kept = &self.kept;
        let seen = &mut self.seen;
        seen.iter_mut().for_each(|s| *s = false);
        let stack = &mut self.stack;
        let out = &mut self.blobs;
        out.clear();
        for start in 0..kept.len() {
            if !kept[start] || seen[start] || !self.mask[start] {
                continue;
            }
            let (mut x0, mut y0, mut x1, mut y1, mut cells) = (gw, gh, 0, 0, 0);
            stack.push(start);
            seen[start] = true;
            while let Some(i) = stack.pop() {
                let (x, y) = (i % gw, i / gw);
                cells += 1;
                x0 = x0.min(x);
                y0 = y0.min(y);
                x1 = x1.max(x);
                y1 = y1.max(y);
                for (dx, dy) in [
                    (-1i32, 0i32),
                    (1, 0),
                    (0, -1),
                    (0, 1),
                    (-1, -1),
                    (1, 1),
                    (-1, 1),
                    (1, -1),
                ] {
                    let (nx, ny) = (x as i32 + dx, y as i32 + dy);
                    if nx < 0 || ny < 0 || nx as usize >= gw || ny as usize >= gh {
                        continue;
                    }
                    let j = ny as usize * gw + nx as usize;
                    if kept[j] && !seen[j] && self.mask[j] {
                        seen[j] = true;
                        stack.push(j);
                    }
                }
            }
            if cells >= MIN_BOX_CELLS {
                out.push((
                    cells,
                    MotionBox {
                        x: x0 as f32 / gw as f32,
                        y: y0 as f32 / gh as f32,
                        width: (x1 - x0 + 1) as f32 / gw as f32,
                        height: (y1 - y0 + 1) as f32 / gh as f32,
                    },
                ));
            }
        }
        out.sort_by_key(|c| std::cmp::Reverse(c.0));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic noisy scene with a bright square at `obj` (x, y) when given.
    fn frame(
        w: usize,
        h: usize,
        seed: u32,
        brightness: i32,
        obj: Option<(usize, usize)>,
    ) -> Vec<u8> {
        let mut s = seed.wrapping_mul(2_654_435_761);
        (0..w * h)
            .map(|i| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                let (x, y) = (i % w, i / w);
                let base = 60 + ((x / 40 + y / 30) % 3) as i32 * 40 + brightness;
                let noise = (s % 17) as i32 - 8;
                let mut v = base + noise;
                if let Some((ox, oy)) = obj {
                    if x >= ox && x < ox + 60 && y >= oy && y < oy + 120 {
                        v = 235;
                    }
                }
                v.clamp(0, 255) as u8
            })
            .collect()
    }

    fn run(d: &mut MotionDetector, frames: impl Iterator<Item = Vec<u8>>) -> Vec<MotionResult> {
        frames.map(|f| d.analyse(&f, 640, 360, 640)).collect()
    }

    #[test]
    fn noise_and_flicker_on_a_static_scene_are_not_motion() {
        let mut d = MotionDetector::new(0.005, &[]);
        let res = run(
            &mut d,
            (0..60).map(|i| frame(640, 360, i, ((i % 7) as i32 - 3) * 6, None)),
        );
        assert!(
            res.iter().all(|r| !r.motion),
            "{:?}",
            res.iter().map(|r| r.fraction).collect::<Vec<_>>()
        );
        // A sudden global lighting change is recognised as such.
        let r = d.analyse(
            &frame(640, 360, 99, 90, None)
                .iter()
                .map(|v| v / 3)
                .collect::<Vec<_>>(),
            640,
            360,
            640,
        );
        assert!(!r.motion);
    }

    #[test]
    fn a_moving_object_is_motion_with_a_box_around_it() {
        let mut d = MotionDetector::new(0.02, &[]);
        let res = run(
            &mut d,
            (0..13).map(|i| {
                frame(
                    640,
                    360,
                    i,
                    0,
                    (i >= 10).then_some((100 + i as usize * 10, 120)),
                )
            }),
        );
        assert!(res[..10].iter().all(|r| !r.motion));
        // The boxes are those of the last frame analysed, frame 12.
        let hit = &res[12];
        assert!(hit.motion, "{hit:?}");
        let b = d.boxes()[0];
        let (cx, cy) = (b.x + b.width / 2.0, b.y + b.height / 2.0);
        assert!(
            (cx - (220.0 + 30.0) / 640.0).abs() < 0.08 && (cy - 180.0 / 360.0).abs() < 0.1,
            "{b:?}"
        );
    }

    #[test]
    fn movement_outside_every_zone_is_ignored() {
        let right_half = Zone {
            id: None,
            name: "right".into(),
            vertices: vec![
                Point { x: 0.6, y: 0.0 },
                Point { x: 1.0, y: 0.0 },
                Point { x: 1.0, y: 1.0 },
                Point { x: 0.6, y: 1.0 },
            ],
            enabled: true,
        };
        let mut d = MotionDetector::new(0.005, std::slice::from_ref(&right_half));
        let res = run(
            &mut d,
            (0..20).map(|i| {
                frame(
                    640,
                    360,
                    i,
                    0,
                    (i >= 10).then_some((50 + i as usize * 5, 100)),
                )
            }),
        );
        assert!(res.iter().all(|r| !r.motion));
        // The same object inside the zone is seen.
        let mut d = MotionDetector::new(0.005, &[right_half]);
        let res = run(
            &mut d,
            (0..20).map(|i| {
                frame(
                    640,
                    360,
                    i,
                    0,
                    (i >= 10).then_some((450 + i as usize * 5, 100)),
                )
            }),
        );
        assert!(res[15].motion);
    }

    /// A noisy 1280x720 scene with bright rectangles (x, y, w, h) drawn on it.
    fn hd(seed: u32, rects: &[(usize, usize, usize, usize)]) -> Vec<u8> {
        let (w, h) = (1280, 720);
        let mut f = frame(w, h, seed, 0, None);
        for &(rx, ry, rw, rh) in rects {
            for y in ry..(ry + rh).min(h) {
                for x in rx..(rx + rw).min(w) {
                    f[y * w + x] = 235;
                }
            }
        }
        f
    }

    #[test]
    fn a_small_far_person_is_motion_but_scattered_changes_of_the_same_size_are_not() {
        // 40x120 px (1/6 of 720p high, about 0.5 % of the frame) walking: below the medium
        // whole-frame threshold (2 %), but one compact region.
        let mut d = MotionDetector::new(0.02, &[]);
        let res: Vec<MotionResult> = (0..14u32)
            .map(|i| {
                let person = (i >= 10).then_some((300 + i as usize * 12, 400, 40, 120));
                d.analyse(&hd(i, person.as_slice()), 1280, 720, 1280)
            })
            .collect();
        assert!(res[..10].iter().all(|r| !r.motion));
        let r = &res[13];
        assert!(r.motion && r.fraction < 0.02 && r.region > 0.0, "{r:?}");
        let b = d.boxes()[0];
        assert!(
            (b.x * 1280.0 - 420.0).abs() < 60.0 && (b.height * 720.0 - 120.0).abs() < 30.0,
            "{b:?}"
        );
        // The same changed area as many small spots (24x24 px each, a few cells): no motion.
        let mut d = MotionDetector::new(0.02, &[]);
        let res: Vec<MotionResult> = (0..14u32)
            .map(|i| {
                let spots: Vec<_> = if i >= 10 {
                    (0..10)
                        .map(|k| (100 + k * 110 + i as usize * 3, 80 + (k % 4) * 150, 24, 24))
                        .collect()
                } else {
                    Vec::new()
                };
                d.analyse(&hd(i, &spots), 1280, 720, 1280)
            })
            .collect();
        assert!(
            res.iter().all(|r| !r.motion),
            "{:?}",
            res.iter()
                .map(|r| (r.fraction, r.region))
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn region_size_follows_the_sensitivity() {
        assert_eq!(region_cells(0.005, 14_400), 9);
        assert_eq!(region_cells(0.02, 14_400), 36);
        assert_eq!(region_cells(0.05, 14_400), 90);
    }

    #[test]
    fn polygon_test() {
        let tri = [
            Point { x: 0.0, y: 0.0 },
            Point { x: 1.0, y: 0.0 },
            Point { x: 0.0, y: 1.0 },
        ];
        assert!(point_in_polygon(0.2, 0.2, &tri));
        assert!(!point_in_polygon(0.8, 0.8, &tri));
    }
}
