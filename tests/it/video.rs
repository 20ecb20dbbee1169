//! The decoder and the motion detector on real recorded clips (tests/data, made by
//! scripts/make-media.sh).

use crate::capture::data;
use argus::motion::MotionDetector;
use argus::video::decode::{H264Decoder, Picture};
use argus::video::h264;

fn read(name: &str) -> Vec<u8> {
    std::fs::read(data(name)).unwrap()
}

/// Decodes a whole clip; returns (access units, sizes of the pictures, decoder stats).
fn decode_all(
    stream: &[u8],
    mangle: impl Fn(usize, &mut Vec<u8>),
) -> (
    usize,
    Vec<(usize, usize)>,
    argus::video::decode::DecodeStats,
) {
    let mut dec = H264Decoder::new().unwrap();
    let mut sizes = Vec::new();
    let aus = h264::access_units(stream);
    for (i, au) in aus.iter().enumerate() {
        let mut au = au.clone();
        mangle(i, &mut au);
        dec.decode(&au, |p: &Picture<'_>| sizes.push((p.width, p.height)));
    }
    dec.flush(|p: &Picture<'_>| sizes.push((p.width, p.height)));
    (aus.len(), sizes, dec.stats)
}

#[test]
fn b_frame_streams_decode_every_picture() {
    let clip = read("walk-bframes-320x180.h264");
    // The clip really has B-frames: slice_type 1 or 6 in some slice header.
    let has_b = h264::access_units(&clip).iter().any(|au| {
        h264::nal_units(au)
            .iter()
            .any(|n| h264::nal_type(n) == 1 && slice_type(n) % 5 == 1)
    });
    assert!(has_b, "the test clip must contain B slices");
    let (n, sizes, stats) = decode_all(&clip, |_, _| {});
    assert_eq!(stats.errors, 0);
    assert_eq!(sizes.len(), n, "every access unit becomes a picture");
    assert!(sizes.iter().all(|s| *s == (320, 180)));
}

/// slice_type from a slice NAL: first_mb_in_slice ue(v), then slice_type ue(v).
fn slice_type(nal: &[u8]) -> u32 {
    let mut bits = nal[1..]
        .iter()
        .flat_map(|b| (0..8).rev().map(move |i| (b >> i) & 1));
    let mut ue = || {
        let mut zeros = 0;
        while bits.next() == Some(0) {
            zeros += 1;
        }
        let mut v = 0u32;
        for _ in 0..zeros {
            v = (v << 1) | bits.next().unwrap_or(0) as u32;
        }
        (1 << zeros) - 1 + v
    };
    ue();
    ue()
}

#[test]
fn a_mid_stream_resolution_change_is_followed() {
    let (_, sizes, stats) = decode_all(&read("resolution-change.h264"), |_, _| {});
    assert_eq!(stats.errors, 0);
    assert_eq!(sizes.first(), Some(&(320, 180)));
    assert_eq!(sizes.last(), Some(&(480, 270)));
    let switch = sizes.iter().position(|s| *s == (480, 270)).unwrap();
    assert!(sizes[switch..].iter().all(|s| *s == (480, 270)));
}

#[test]
fn corrupted_and_lost_nal_units_cost_frames_not_the_stream() {
    let clip = read("walk-320x180.h264");
    let aus = h264::access_units(&clip);
    let idr: Vec<usize> = (0..aus.len()).filter(|&i| h264::is_idr(&aus[i])).collect();
    assert!(idr.len() >= 2, "the clip has a second IDR at {idr:?}");
    // Garble the middle of frames 5-9 and drop frame 12 entirely.
    let (n, sizes, stats) = decode_all(&clip, |i, au| {
        if (5..10).contains(&i) {
            let len = au.len();
            for b in &mut au[len / 3..len / 2] {
                *b ^= 0x5a;
            }
        }
        if i == 12 {
            au.truncate(5);
        }
    });
    assert!(sizes.len() < n, "damaged frames are not all shown");
    // Decoding resumed at the next IDR: every frame from there on came out.
    let after = n - idr[1];
    assert!(
        sizes.len() >= after,
        "{} pictures, {after} after the second IDR; {stats:?}",
        sizes.len()
    );
    // And a stream of pure garbage is survived without a picture or a panic.
    let noise: Vec<u8> = (0..50_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let (_, sizes, _) = decode_all(&noise, |_, _| {});
    assert!(sizes.is_empty());
}

/// Motion verdicts over a decoded clip, one per picture.
fn motion_over(name: &str, threshold: f32, zones: &[argus::model::Zone]) -> Vec<bool> {
    let mut det = MotionDetector::new(threshold, zones);
    let mut out = Vec::new();
    let mut dec = H264Decoder::new().unwrap();
    for au in h264::access_units(&read(name)) {
        dec.decode(&au, |p: &Picture<'_>| {
            out.push(det.analyse(p.y, p.width, p.height, p.y_stride).motion)
        });
    }
    out
}

#[test]
fn motion_on_recorded_clips() {
    use argus::model::{Point, Zone};
    // A still scene with sensor noise and lighting flicker: never motion, even at high
    // sensitivity.
    let still = motion_over("static-flicker-320x180.h264", 0.005, &[]);
    assert!(still.len() > 50);
    assert!(still.iter().all(|m| !m), "{still:?}");
    // A person walking through: motion.
    let walk = motion_over("walk-320x180.h264", 0.02, &[]);
    assert!(walk.iter().filter(|m| **m).count() > 10, "{walk:?}");
    // The same walk with the only zone in the sky above the path: no motion.
    let sky = Zone {
        id: None,
        name: "sky".into(),
        vertices: vec![
            Point { x: 0.0, y: 0.0 },
            Point { x: 1.0, y: 0.0 },
            Point { x: 1.0, y: 0.25 },
            Point { x: 0.0, y: 0.25 },
        ],
        enabled: true,
    };
    let outside = motion_over("walk-320x180.h264", 0.005, &[sky]);
    assert!(outside.iter().all(|m| !m));
}
