//! Turning a YOLO-family model's output into detections: confidence threshold, per-class
//! non-maximum suppression, boxes mapped from the model's input (letterboxed or cropped) back to
//! the frame and normalised to 0..1. Pure functions, tested on fixture tensors.

/// A detected object in normalised frame coordinates (0..1, origin top left).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Detection {
    /// COCO class index.
    pub class: usize,
    pub score: f32,
    pub x: f32,
    pub y: f32,
    pub width: f32,
    pub height: f32,
}

impl Detection {
    pub fn area(&self) -> f32 {
        self.width.max(0.0) * self.height.max(0.0)
    }

    pub fn iou(&self, o: &Detection) -> f32 {
        let x0 = self.x.max(o.x);
        let y0 = self.y.max(o.y);
        let x1 = (self.x + self.width).min(o.x + o.width);
        let y1 = (self.y + self.height).min(o.y + o.height);
        let inter = (x1 - x0).max(0.0) * (y1 - y0).max(0.0);
        let union = self.area() + o.area() - inter;
        if union <= 0.0 {
            0.0
        } else {
            inter / union
        }
    }
}

/// How the model's input square maps onto the frame: input pixel (u, v) is frame pixel
/// (offset_x + u * scale, offset_y + v * scale). Covers both a letterboxed whole frame and a
/// square crop around a motion region.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Placement {
    pub offset_x: f32,
    pub offset_y: f32,
    /// Frame pixels per input pixel.
    pub scale: f32,
    pub frame_width: f32,
    pub frame_height: f32,
}

/// Decodes rows of `[cx, cy, w, h, objectness, class scores...]` (input pixels, scores already
/// in 0..1) into frame-normalised detections with score = objectness x class score at least
/// `min_score`, then applies per-class NMS.
pub fn decode(
    output: &[f32],
    num_classes: usize,
    place: &Placement,
    min_score: f32,
    nms_iou: f32,
) -> Vec<Detection> {
    let row = 5 + num_classes;
    let mut out = Vec::new();
    for r in output.chunks_exact(row) {
        let obj = r[4];
        if obj < min_score {
            continue;
        }
        let (class, best) =
            r[5..].iter().enumerate().fold(
                (0, 0f32),
                |acc, (i, &s)| if s > acc.1 { (i, s) } else { acc },
            );
        let score = obj * best;
        if score < min_score {
            continue;
        }
        let (cx, cy, w, h) = (r[0], r[1], r[2], r[3]);
        let x0 = place.offset_x + (cx - w / 2.0) * place.scale;
        let y0 = place.offset_y + (cy - h / 2.0) * place.scale;
        let x1 = place.offset_x + (cx + w / 2.0) * place.scale;
        let y1 = place.offset_y + (cy + h / 2.0) * place.scale;
        let (x0, y0) = (
            x0.clamp(0.0, place.frame_width),
            y0.clamp(0.0, place.frame_height),
        );
        let (x1, y1) = (
            x1.clamp(0.0, place.frame_width),
            y1.clamp(0.0, place.frame_height),
        );
        if x1 <= x0 || y1 <= y0 {
            continue;
        }
        out.push(Detection {
            class,
            score,
            x: x0 / place.frame_width,
            y: y0 / place.frame_height,
            width: (x1 - x0) / place.frame_width,
            height: (y1 - y0) / place.frame_height,
        });
    }
    nms(out, nms_iou)
}

/// Turns YOLOX rows (one per grid cell of each stride, row-major, strides in order; columns
/// x, y offsets in cells, log w, h in cells, objectness, class scores) into the rows [`decode`]
/// reads: cx, cy, w, h in input pixels. Fails when the row count does not match the grids.
pub fn yolox_to_pixels(
    output: &mut [f32],
    input: usize,
    strides: &[usize],
    num_classes: usize,
) -> Result<(), super::DetectError> {
    let row = 5 + num_classes;
    let cells: usize = strides.iter().map(|s| (input / s) * (input / s)).sum();
    if output.len() != cells * row {
        return Err(super::DetectError::Inference(format!(
            "a yolox output of {} values is not {cells} rows of {row} for strides {strides:?}",
            output.len()
        )));
    }
    let mut rows = output.chunks_exact_mut(row);
    for &stride in strides {
        let n = input / stride;
        let s = stride as f32;
        for gy in 0..n {
            for gx in 0..n {
                let Some(r) = rows.next() else {
                    return Ok(());
                };
                r[0] = (r[0] + gx as f32) * s;
                r[1] = (r[1] + gy as f32) * s;
                r[2] = r[2].min(20.0).exp() * s;
                r[3] = r[3].min(20.0).exp() * s;
            }
        }
    }
    Ok(())
}

/// Share of a box's area that must lie inside a better box of the same class for it to be taken
/// as a part of that object (a head, legs) rather than another object.
pub const CONTAINED: f32 = 0.7;

/// Merges the detections of one frame (possibly from several overlapping crops): per-class NMS,
/// then a box mostly inside another box of its class (or containing most of it) is taken as a
/// part of the same object (a head, legs), which plain IoU keeps because the areas differ: the
/// pair becomes the larger box with the better score.
pub fn merge(dets: Vec<Detection>, iou: f32) -> Vec<Detection> {
    let dets = nms(dets, iou);
    let mut keep: Vec<Detection> = Vec::with_capacity(dets.len());
    // `nms` returns best first.
    for d in dets {
        let part_of = keep.iter_mut().find(|k| {
            k.class == d.class && {
                let x0 = k.x.max(d.x);
                let y0 = k.y.max(d.y);
                let x1 = (k.x + k.width).min(d.x + d.width);
                let y1 = (k.y + k.height).min(d.y + d.height);
                let inter = (x1 - x0).max(0.0) * (y1 - y0).max(0.0);
                let smaller = d.area().min(k.area());
                smaller > 0.0 && inter / smaller >= CONTAINED
            }
        });
        match part_of {
            Some(k) => {
                if d.area() > k.area() {
                    let score = k.score;
                    *k = Detection { score, ..d };
                }
            }
            None => keep.push(d),
        }
    }
    keep
}

/// Per-class non-maximum suppression: keeps the best-scoring box of each overlapping group.
pub fn nms(mut dets: Vec<Detection>, iou: f32) -> Vec<Detection> {
    dets.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut keep: Vec<Detection> = Vec::with_capacity(dets.len());
    for d in dets {
        if keep.iter().all(|k| k.class != d.class || k.iou(&d) <= iou) {
            keep.push(d);
        }
    }
    keep
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(cx: f32, cy: f32, w: f32, h: f32, obj: f32, class: usize, score: f32) -> Vec<f32> {
        let mut r = vec![cx, cy, w, h, obj, 0.0, 0.0, 0.0];
        r[5 + class] = score;
        r
    }

    const PLACE: Placement = Placement {
        offset_x: 0.0,
        offset_y: -40.0,
        scale: 2.0,
        frame_width: 640.0,
        frame_height: 240.0,
    };

    #[test]
    fn threshold_nms_and_mapping() {
        let out: Vec<f32> = [
            row(100.0, 80.0, 40.0, 60.0, 0.9, 0, 0.95), // best person
            row(102.0, 82.0, 40.0, 60.0, 0.8, 0, 0.9),  // overlaps it: suppressed
            row(102.0, 82.0, 40.0, 60.0, 0.8, 1, 0.9),  // same place, other class: kept
            row(300.0, 80.0, 20.0, 20.0, 0.3, 2, 0.5),  // 0.15 < 0.25: dropped
            row(10.0, 10.0, 4.0, 4.0, 0.1, 0, 0.99),    // objectness too low
        ]
        .concat();
        let d = decode(&out, 3, &PLACE, 0.25, 0.45);
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].class, 0);
        assert!((d[0].score - 0.855).abs() < 1e-4);
        // x0 = (100-20)*2 = 160 -> 0.25 of 640; y0 = -40 + (80-30)*2 = 60 -> 0.25 of 240.
        assert!(
            (d[0].x - 0.25).abs() < 1e-5 && (d[0].y - 0.25).abs() < 1e-5,
            "{:?}",
            d[0]
        );
        assert!((d[0].width - 0.125).abs() < 1e-5 && (d[0].height - 0.5).abs() < 1e-5);
        assert_eq!(d[1].class, 1);
    }

    #[test]
    fn yolox_rows_become_pixels() {
        // Input 32, strides 16 and 32: a 2x2 grid then a 1x1 grid, one class.
        let mut out = vec![0f32; 5 * 6];
        // Cell (col 1, row 0) of stride 16: x offset 0.5, y 0.25, w = e^0 cells, h = e^ln2.
        out[6..12].copy_from_slice(&[0.5, 0.25, 0.0, 2f32.ln(), 0.9, 0.8]);
        // The stride-32 cell.
        out[24..30].copy_from_slice(&[0.5, 0.5, 0.0, 0.0, 0.1, 0.1]);
        yolox_to_pixels(&mut out, 32, &[16, 32], 1).unwrap();
        assert_eq!(&out[6..10], &[24.0, 4.0, 16.0, 32.0]);
        assert_eq!(&out[24..28], &[16.0, 16.0, 32.0, 32.0]);
        // A row count that does not match the grids is an error, not a guess.
        assert!(yolox_to_pixels(&mut out[..24], 32, &[16, 32], 1).is_err());
    }

    #[test]
    fn boxes_are_clipped_to_the_frame() {
        let out = row(2.0, 100.0, 20.0, 400.0, 1.0, 0, 1.0);
        let d = decode(&out, 3, &PLACE, 0.25, 0.45);
        assert_eq!(d[0].x, 0.0);
        assert_eq!(d[0].y, 0.0);
        assert!((d[0].y + d[0].height - 1.0).abs() < 1e-6);
    }

    #[test]
    fn iou() {
        let a = Detection {
            class: 0,
            score: 1.0,
            x: 0.0,
            y: 0.0,
            width: 0.5,
            height: 0.5,
        };
        let b = Detection {
            x: 0.25,
            ..a.clone()
        };
        assert!((a.iou(&b) - (0.125 / 0.375)).abs() < 1e-6);
        assert_eq!(
            a.iou(&Detection {
                x: 0.6,
                ..a.clone()
            }),
            0.0
        );
    }

    #[test]
    fn merge_drops_parts_of_a_better_box_but_keeps_neighbours() {
        let d = |class, score, x, y, w, h| Detection {
            class,
            score,
            x,
            y,
            width: w,
            height: h,
        };
        let person = d(0, 0.9, 0.50, 0.40, 0.10, 0.45);
        let legs = d(0, 0.5, 0.56, 0.55, 0.03, 0.30); // inside the person
        let neighbour = d(0, 0.6, 0.58, 0.40, 0.10, 0.45); // overlaps, another person
        let dog = d(16, 0.7, 0.52, 0.70, 0.05, 0.10); // inside, other class
        let out = merge(
            vec![legs, person.clone(), neighbour.clone(), dog.clone()],
            0.45,
        );
        assert_eq!(out, vec![person.clone(), dog.clone(), neighbour.clone()]);
        // A part scoring better than the whole: the whole's box, the part's score.
        let torso = d(0, 0.95, 0.52, 0.45, 0.06, 0.25);
        let out = merge(vec![person.clone(), torso, neighbour.clone()], 0.45);
        assert_eq!(
            out,
            vec![
                Detection {
                    score: 0.95,
                    ..person
                },
                neighbour
            ]
        );
    }
}
