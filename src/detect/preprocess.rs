//! Preparing a decoded picture for a square-input detector: the region to look at (the whole
//! frame, letterboxed, or a square crop around a motion region, as Frigate does, so that a small
//! far-away person is not shrunk away), scaled into an NCHW RGB float tensor in 0..1. Pure
//! functions; the [`Placement`] maps detections back to the frame.

use super::postprocess::Placement;
use crate::motion::MotionBox;
use crate::video::decode::Picture;

/// A square region of the frame, in frame pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Region {
    pub x: f32,
    pub y: f32,
    pub side: f32,
}

/// The whole frame, letterboxed: the square that contains it, centred.
pub fn whole_frame(width: usize, height: usize) -> Region {
    let side = width.max(height) as f32;
    Region {
        x: (width as f32 - side) / 2.0,
        y: (height as f32 - side) / 2.0,
        side,
    }
}

/// A square around a motion box: 20 % larger than the box's longer side, at least the model's
/// input size (so small objects are seen at full resolution) and at most the frame's shorter
/// side, moved inside the frame.
pub fn around(b: &MotionBox, width: usize, height: usize, input: usize) -> Region {
    let (w, h) = (width as f32, height as f32);
    let (bw, bh) = (b.width * w, b.height * h);
    let side = (bw.max(bh) * 1.2).max(input as f32).min(w.min(h));
    let cx = (b.x + b.width / 2.0) * w;
    let cy = (b.y + b.height / 2.0) * h;
    let x = (cx - side / 2.0).clamp(0.0, (w - side).max(0.0));
    let y = (cy - side / 2.0).clamp(0.0, (h - side).max(0.0));
    Region { x, y, side }
}

/// At most this many crops per frame; more motion regions than that get the whole frame.
pub const MAX_REGIONS: usize = 3;

/// The regions to run the detector on for a frame with these motion boxes (largest first):
/// a square crop around each box (boxes already inside a chosen crop add none), or the whole
/// frame, letterboxed, when there is no box, a box too large for a square crop, or more than
/// [`MAX_REGIONS`] separate crops.
pub fn regions_for(boxes: &[MotionBox], width: usize, height: usize, input: usize) -> Vec<Region> {
    let whole = vec![whole_frame(width, height)];
    let (w, h) = (width as f32, height as f32);
    let mut out: Vec<Region> = Vec::new();
    for b in boxes {
        if b.width * w * 1.2 > w.min(h) || b.height * h * 1.2 > w.min(h) {
            return whole;
        }
        let inside = |r: &Region| {
            b.x * w >= r.x
                && b.y * h >= r.y
                && (b.x + b.width) * w <= r.x + r.side
                && (b.y + b.height) * h <= r.y + r.side
        };
        if out.iter().any(inside) {
            continue;
        }
        if out.len() == MAX_REGIONS {
            return whole;
        }
        out.push(around(b, width, height, input));
    }
    if out.is_empty() {
        whole
    } else {
        out
    }
}

/// Fills `out` (length 3 x input x input, NCHW) with the region scaled to the input size, RGB
/// in 0..1; parts of the region outside the frame are mid-grey (0.5). Returns the placement of
/// the input square in the frame.
pub fn fill_tensor(p: &Picture<'_>, r: Region, input: usize, out: &mut [f32]) -> Placement {
    let plane = input * input;
    debug_assert_eq!(out.len(), 3 * plane);
    let scale = r.side / input as f32;
    // Source column and row of every input pixel (-1 = outside the frame).
    let map = |origin: f32, limit: usize| -> Vec<isize> {
        (0..input)
            .map(|i| {
                let s = (origin + (i as f32 + 0.5) * scale).floor() as isize;
                if s < 0 || s >= limit as isize {
                    -1
                } else {
                    s
                }
            })
            .collect()
    };
    let xs = map(r.x, p.width);
    let ys = map(r.y, p.height);
    let (rp, rest) = out.split_at_mut(plane);
    let (gp, bp) = rest.split_at_mut(plane);
    for (v, &sy) in ys.iter().enumerate() {
        for (u, &sx) in xs.iter().enumerate() {
            let i = v * input + u;
            if sx < 0 || sy < 0 {
                rp[i] = 0.5;
                gp[i] = 0.5;
                bp[i] = 0.5;
                continue;
            }
            let (sx, sy) = (sx as usize, sy as usize);
            // BT.601, video range (what H.264 decoders produce).
            let yv = (p.y[sy * p.y_stride + sx] as f32 - 16.0) * 1.164;
            let ci = (sy / 2) * p.uv_stride + sx / 2;
            let cb = p.u[ci] as f32 - 128.0;
            let cr = p.v[ci] as f32 - 128.0;
            rp[i] = ((yv + 1.596 * cr) / 255.0).clamp(0.0, 1.0);
            gp[i] = ((yv - 0.392 * cb - 0.813 * cr) / 255.0).clamp(0.0, 1.0);
            bp[i] = ((yv + 2.017 * cb) / 255.0).clamp(0.0, 1.0);
        }
    }
    Placement {
        offset_x: r.x,
        offset_y: r.y,
        scale,
        frame_width: p.width as f32,
        frame_height: p.height as f32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::video::jpeg::Frame420;

    #[test]
    fn letterbox_geometry() {
        let r = whole_frame(640, 360);
        assert_eq!(
            r,
            Region {
                x: 0.0,
                y: -140.0,
                side: 640.0
            }
        );
        let mut f = Frame420::black(640, 360);
        f.y.iter_mut().for_each(|v| *v = 235);
        f.u.iter_mut().for_each(|v| *v = 128);
        f.v.iter_mut().for_each(|v| *v = 128);
        let mut t = vec![0f32; 3 * 416 * 416];
        let place = fill_tensor(&f.picture(), r, 416, &mut t);
        assert!((place.scale - 640.0 / 416.0).abs() < 1e-6);
        // Top rows are padding, the middle is the (white) picture.
        assert_eq!(t[0], 0.5);
        assert!((t[208 * 416 + 208] - 1.0).abs() < 0.01);
        // A point of the input maps back onto the frame.
        let (fx, fy) = (
            place.offset_x + 208.0 * place.scale,
            place.offset_y + 208.0 * place.scale,
        );
        assert!((fx - 320.0).abs() < 1.0 && (fy - 180.0).abs() < 1.0);
    }

    #[test]
    fn crops_around_small_motion_stay_at_input_size_and_inside_the_frame() {
        let b = MotionBox {
            x: 0.9,
            y: 0.8,
            width: 0.05,
            height: 0.1,
        };
        let r = around(&b, 1920, 1080, 416);
        assert_eq!(r.side, 416.0);
        assert_eq!((r.x, r.y), (1920.0 - 416.0, 1080.0 - 416.0));
        // A big box gets a bigger square, never larger than the frame's height.
        let big = MotionBox {
            x: 0.1,
            y: 0.1,
            width: 0.8,
            height: 0.8,
        };
        assert_eq!(around(&big, 1920, 1080, 416).side, 1080.0);
    }

    #[test]
    fn colours_convert() {
        // Pure red in BT.601 video range: Y=81, Cb=90, Cr=240.
        let mut f = Frame420::black(2, 2);
        f.y.iter_mut().for_each(|v| *v = 81);
        f.u[0] = 90;
        f.v[0] = 240;
        let mut t = vec![0f32; 3 * 4];
        fill_tensor(
            &f.picture(),
            Region {
                x: 0.0,
                y: 0.0,
                side: 2.0,
            },
            2,
            &mut t,
        );
        assert!(t[0] > 0.95 && t[4] < 0.05 && t[8] < 0.05, "{t:?}");
    }

    #[test]
    fn regions_for_motion_crops_small_boxes_and_letterboxes_large_or_scattered_motion() {
        let b = |x, y, w, h| MotionBox {
            x,
            y,
            width: w,
            height: h,
        };
        // 1920x1080: a small person far away gets a 416 crop around it.
        let r = regions_for(&[b(0.70, 0.40, 0.03, 0.10)], 1920, 1080, 416);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].side, 416.0);
        let (cx, cy) = (0.715 * 1920.0, 0.45 * 1080.0);
        assert!((r[0].x + 208.0 - cx).abs() < 1.0 && (r[0].y + 208.0 - cy).abs() < 1.0);
        // A second box inside the first crop adds nothing; one elsewhere adds a crop.
        let r = regions_for(
            &[
                b(0.70, 0.40, 0.03, 0.10),
                b(0.71, 0.45, 0.01, 0.02),
                b(0.1, 0.1, 0.05, 0.1),
            ],
            1920,
            1080,
            416,
        );
        assert_eq!(r.len(), 2);
        // Motion taller than the frame's short side allows: the whole frame.
        let r = regions_for(&[b(0.2, 0.0, 0.3, 0.95)], 1920, 1080, 416);
        assert_eq!(r, vec![whole_frame(1920, 1080)]);
        // More separate crops than MAX_REGIONS: the whole frame.
        let many: Vec<MotionBox> = (0..4)
            .map(|i| b(0.05 + 0.24 * i as f32, 0.4, 0.02, 0.05))
            .collect();
        assert_eq!(
            regions_for(&many, 1920, 1080, 416),
            vec![whole_frame(1920, 1080)]
        );
        // No box (a check run without motion): the whole frame.
        assert_eq!(regions_for(&[], 640, 360, 416), vec![whole_frame(640, 360)]);
        // A frame smaller than the input: the crop is the frame's short side, inside the frame.
        let r = regions_for(&[b(0.9, 0.5, 0.05, 0.2)], 640, 360, 416);
        assert_eq!(r[0].side, 360.0);
        assert!(r[0].x + r[0].side <= 640.0 && r[0].x >= 0.0 && r[0].y == 0.0);
    }

    #[test]
    fn a_borrowed_picture_with_padding_copies_exactly() {
        // 5x3 luma in rows of 8, chroma 3x2 in rows of 4.
        let y: Vec<u8> = (0..24).collect();
        let u: Vec<u8> = (100..108).collect();
        let v: Vec<u8> = (200..208).collect();
        let p = Picture {
            width: 5,
            height: 3,
            y: &y,
            u: &u,
            v: &v,
            y_stride: 8,
            uv_stride: 4,
        };
        let f = Frame420::from_picture(&p);
        assert_eq!(
            f.y,
            vec![0, 1, 2, 3, 4, 8, 9, 10, 11, 12, 16, 17, 18, 19, 20]
        );
        assert_eq!(f.u, vec![100, 101, 102, 104, 105, 106]);
        assert_eq!(f.v, vec![200, 201, 202, 204, 205, 206]);
    }
}
