//! Preparing a decoded picture for a square-input detector: the region to look at (the whole
//! frame, letterboxed, or a square crop around a motion region in which the object fills about
//! half, so that a small far-away person is upscaled rather than shrunk away and a close one
//! keeps room around her), scaled into an NCHW float tensor in the model's channel order and
//! value range ([`InputFormat`]). Pure functions; the [`Placement`] maps detections back to the
//! frame.

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

/// Share of a crop's side that the object in it is meant to fill: small motion is upscaled to
/// it, and large motion gets room around it.
pub const TARGET_FILL: f32 = 0.5;
/// The most of a crop's side an object may fill: this model family finds little in a crop that
/// an object fills (a person close to the camera at 83 % of the input is missed, at 50-60 % she
/// is found). Motion larger than that share of the frame's short side gets the whole frame.
pub const MAX_FILL: f32 = 0.6;

/// A square around a motion box: twice the box's longer side (the object fills half of it), at
/// least half the model's input size (so a small far-away person is upscaled about twice, not
/// shrunk) and at most the frame's shorter side, moved inside the frame.
pub fn around(b: &MotionBox, width: usize, height: usize, input: usize) -> Region {
    let (w, h) = (width as f32, height as f32);
    let (bw, bh) = (b.width * w, b.height * h);
    let side = (bw.max(bh) / TARGET_FILL)
        .max(input as f32 / 2.0)
        .min(w.min(h));
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
/// frame, letterboxed, when there is no box, a box the object would fill more than
/// [`MAX_FILL`] of the largest square crop with, or more than [`MAX_REGIONS`] separate crops.
pub fn regions_for(boxes: &[MotionBox], width: usize, height: usize, input: usize) -> Vec<Region> {
    let whole = vec![whole_frame(width, height)];
    let (w, h) = (width as f32, height as f32);
    let mut out: Vec<Region> = Vec::new();
    for b in boxes {
        if (b.width * w).max(b.height * h) > MAX_FILL * w.min(h) {
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

/// How a model wants its input: channel order, scale of the 0-255 pixel values, padding value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InputFormat {
    /// Blue plane first (YOLOX) instead of red.
    pub bgr: bool,
    /// Multiplies the 0-255 values (1/255 for models that take 0..1).
    pub scale: f32,
    /// Value of the parts of the region outside the frame, after scaling.
    pub pad: f32,
}

impl InputFormat {
    /// RGB in 0..1, mid-grey padding: darknet's YOLO models.
    pub const RGB_UNIT: InputFormat = InputFormat {
        bgr: false,
        scale: 1.0 / 255.0,
        pad: 0.5,
    };
}

/// Fills `out` (length 3 x input x input, NCHW) with the region scaled to the input size, RGB
/// in 0..1; parts of the region outside the frame are mid-grey (0.5). Returns the placement of
/// the input square in the frame.
pub fn fill_tensor(p: &Picture<'_>, r: Region, input: usize, out: &mut [f32]) -> Placement {
    fill_tensor_as(p, r, input, out, &InputFormat::RGB_UNIT)
}

/// [`fill_tensor`] for a model's own [`InputFormat`].
pub fn fill_tensor_as(
    p: &Picture<'_>,
    r: Region,
    input: usize,
    out: &mut [f32],
    fmt: &InputFormat,
) -> Placement {
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
    let (first, rest) = out.split_at_mut(plane);
    let (gp, last) = rest.split_at_mut(plane);
    let (rp, bp) = if fmt.bgr {
        (last, first)
    } else {
        (first, last)
    };
    let (k, pad) = (fmt.scale, fmt.pad);
    // BT.601: video range from H.264 decoders, full range from JPEGs.
    let (y0, ky, kr, kgb, kgr, kb) = if p.full_range {
        (0.0, 1.0, 1.402, 0.344, 0.714, 1.772)
    } else {
        (16.0, 1.164, 1.596, 0.392, 0.813, 2.017)
    };
    for (v, &sy) in ys.iter().enumerate() {
        for (u, &sx) in xs.iter().enumerate() {
            let i = v * input + u;
            if sx < 0 || sy < 0 {
                rp[i] = pad;
                gp[i] = pad;
                bp[i] = pad;
                continue;
            }
            let (sx, sy) = (sx as usize, sy as usize);
            let ci = (sy / 2) * p.uv_stride + sx / 2;
            let yv = (p.y[sy * p.y_stride + sx] as f32 - y0) * ky;
            let cb = p.u[ci] as f32 - 128.0;
            let cr = p.v[ci] as f32 - 128.0;
            rp[i] = (yv + kr * cr).clamp(0.0, 255.0) * k;
            gp[i] = (yv - kgb * cb - kgr * cr).clamp(0.0, 255.0) * k;
            bp[i] = (yv + kb * cb).clamp(0.0, 255.0) * k;
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
    fn crops_upscale_small_motion_leave_room_around_large_and_stay_inside_the_frame() {
        // 96x108 px in 1080p: a 216 px crop (the box fills half of it), upscaled to 416.
        let b = MotionBox {
            x: 0.9,
            y: 0.8,
            width: 0.05,
            height: 0.1,
        };
        let r = around(&b, 1920, 1080, 416);
        assert!((r.side - 216.0).abs() < 0.01, "{r:?}");
        assert!(
            (r.x - 1668.0).abs() < 0.01 && (r.y - 810.0).abs() < 0.01,
            "{r:?}"
        );
        // At the frame's edge it is moved inside.
        let edge = MotionBox {
            x: 0.96,
            y: 0.92,
            ..b
        };
        let r = around(&edge, 1920, 1080, 416);
        assert_eq!((r.x + r.side, r.y + r.side), (1920.0, 1080.0));
        // A tiny box: never less than half the input.
        let tiny = MotionBox {
            width: 0.01,
            height: 0.02,
            ..b
        };
        assert_eq!(around(&tiny, 1920, 1080, 416).side, 208.0);
        // 300 px high: a 600 px crop, the object at half of it.
        let mid = MotionBox {
            x: 0.4,
            y: 0.3,
            width: 0.05,
            height: 300.0 / 1080.0,
        };
        assert!((around(&mid, 1920, 1080, 416).side - 600.0).abs() < 0.1);
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
    fn bgr_0_255_input_for_yolox() {
        let mut f = Frame420::black(2, 2);
        f.y.iter_mut().for_each(|v| *v = 81);
        f.u[0] = 90;
        f.v[0] = 240;
        let mut t = vec![0f32; 3 * 4];
        let fmt = InputFormat {
            bgr: true,
            scale: 1.0,
            pad: 114.0,
        };
        // A region twice the frame: the right and bottom halves are padding.
        let r = Region {
            x: 0.0,
            y: 0.0,
            side: 4.0,
        };
        fill_tensor_as(&f.picture(), r, 2, &mut t, &fmt);
        // Red is the last plane, in 0..255; the other input pixels are padding.
        assert!(t[8] > 240.0 && t[0] < 10.0, "{t:?}");
        assert_eq!(t[9], 114.0);
        assert_eq!(t[3], 114.0);
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
        // A JPEG's (full-range) mid grey stays mid grey; read as video range it would be
        // stretched to 0.51 (and a black 16 is 0, not 0.06).
        let mut f = Frame420::black(2, 2);
        f.full_range = true;
        f.y.iter_mut().for_each(|v| *v = 128);
        f.u.iter_mut().for_each(|v| *v = 128);
        f.v.iter_mut().for_each(|v| *v = 128);
        let r = Region {
            x: 0.0,
            y: 0.0,
            side: 2.0,
        };
        fill_tensor(&f.picture(), r, 2, &mut t);
        assert!(t.iter().all(|v| (v - 128.0 / 255.0).abs() < 1e-4), "{t:?}");
        f.full_range = false;
        fill_tensor(&f.picture(), r, 2, &mut t);
        assert!(t.iter().all(|v| (v - 0.5112).abs() < 1e-3), "{t:?}");
    }

    #[test]
    fn regions_for_motion_crops_small_boxes_and_letterboxes_large_or_scattered_motion() {
        let b = |x, y, w, h| MotionBox {
            x,
            y,
            width: w,
            height: h,
        };
        // 1920x1080: a small person far away (108 px) gets a 216 px crop around it.
        let r = regions_for(&[b(0.70, 0.40, 0.03, 0.10)], 1920, 1080, 416);
        assert_eq!(r.len(), 1);
        assert!((r[0].side - 216.0).abs() < 0.01);
        let (cx, cy) = (0.715 * 1920.0, 0.45 * 1080.0);
        assert!((r[0].x + 108.0 - cx).abs() < 1.0 && (r[0].y + 108.0 - cy).abs() < 1.0);
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
        // A person close to a 720p camera (480 px, 2/3 of the height) would fill 67 % of the
        // largest square crop: the whole frame, where she fills 37 % of the input.
        let r = regions_for(&[b(0.4, 0.2, 0.15, 0.667)], 1280, 720, 416);
        assert_eq!(r, vec![whole_frame(1280, 720)]);
        // At 400 px (56 %) a 720 px crop is still fine.
        let r = regions_for(&[b(0.4, 0.2, 0.15, 0.556)], 1280, 720, 416);
        assert_eq!(r[0].side, 720.0);
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
        // A frame smaller than the input: the crop is at most the frame's short side, inside
        // the frame.
        let r = regions_for(&[b(0.9, 0.5, 0.05, 0.5)], 640, 360, 416);
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
            full_range: false,
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
