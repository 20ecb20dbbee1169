//! Ingest benchmark: H.264 decode + motion analysis, in frames per second on one core, beside
//! raw OpenH264 decoding of the same clips.
//!
//!     cargo bench --bench ingest
//!
//! "raw" calls the openh264 crate directly (the same decoder settings), "decode" goes through
//! the appliance's wrapper, "decode+motion" also runs the motion detector on every picture (the
//! worst case: cameras normally analyse 5 of their 15-30 frames a second), and
//! "decode+motion@5fps" analyses every third picture of the 15 fps clips.

use argus::motion::MotionDetector;
use argus::video::decode::{H264Decoder, Picture};
use argus::video::h264;
use openh264::decoder::{Decoder, DecoderConfig, Flush};
use openh264::formats::YUVSource;
use openh264::OpenH264API;
use std::time::{Duration, Instant};

fn raw(aus: &[Vec<u8>]) -> usize {
    let cfg = DecoderConfig::new().flush_after_decode(Flush::NoFlush);
    let mut dec = Decoder::with_api_config(OpenH264API::from_source(), cfg).unwrap();
    let mut n = 0;
    let mut sum = 0u64;
    for au in aus {
        if let Ok(Some(p)) = dec.decode(au) {
            n += 1;
            sum += p.y()[0] as u64;
        }
    }
    for p in dec.flush_remaining().unwrap() {
        n += 1;
        sum += p.y()[0] as u64;
    }
    std::hint::black_box(sum);
    n
}

fn pipeline(aus: &[Vec<u8>], analyse_every: usize) -> usize {
    let mut dec = H264Decoder::new().unwrap();
    let mut det = (analyse_every > 0).then(|| MotionDetector::new(0.02, &[]));
    let mut n = 0;
    let mut motion = 0;
    let mut on = |p: &Picture<'_>| {
        n += 1;
        if let Some(d) = det.as_mut() {
            if n % analyse_every == 0 && d.analyse(p.y, p.width, p.height, p.y_stride).motion {
                motion += 1;
            }
        }
    };
    for au in aus {
        dec.decode(au, &mut on);
    }
    dec.flush(&mut on);
    std::hint::black_box(motion);
    n
}

/// Frames per second: repeats `f` for at least `min` and takes the best of 3 rounds.
fn fps(min: Duration, mut f: impl FnMut() -> usize) -> f64 {
    let mut best = 0f64;
    for _ in 0..3 {
        let start = Instant::now();
        let mut frames = 0;
        while start.elapsed() < min {
            frames += f();
        }
        best = best.max(frames as f64 / start.elapsed().as_secs_f64());
    }
    best
}

fn main() {
    if std::env::var("MOTION_ONLY").is_ok() {
        motion_only();
        return;
    }
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/");
    let clips = [
        ("640x360", "assets/demo/person-walk.h264"),
        ("1920x1080", "tests/data/walk-1920x1080.h264"),
    ];
    let min = Duration::from_secs(
        std::env::var("BENCH_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(3),
    );
    println!(
        "{:<10} {:>10} {:>10} {:>10} {:>12} {:>10} {:>10}",
        "clip", "raw fps", "decode", "+motion", "+motion@5fps", "ms/frame", "overhead"
    );
    for (name, path) in clips {
        let data = std::fs::read(format!("{dir}{path}")).unwrap();
        let aus = h264::access_units(&data);
        let r = fps(min, || raw(&aus));
        let d = fps(min, || pipeline(&aus, 0));
        let m = fps(min, || pipeline(&aus, 1));
        let m5 = fps(min, || pipeline(&aus, 3));
        println!(
            "{name:<10} {r:>10.1} {d:>10.1} {m:>10.1} {m5:>12.1} {:>10.2} {:>9.1}%",
            1000.0 / m,
            (r / m - 1.0) * 100.0
        );
    }
}

/// `MOTION_ONLY=1 cargo bench --bench ingest`: the motion detector alone on decoded pictures.
fn motion_only() {
    let data = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/assets/demo/person-walk.h264"
    ))
    .unwrap();
    let aus = h264::access_units(&data);
    let mut frames: Vec<(Vec<u8>, usize, usize, usize)> = Vec::new();
    let mut dec = H264Decoder::new().unwrap();
    for au in &aus {
        dec.decode(au, |p: &Picture<'_>| {
            frames.push((p.y.to_vec(), p.width, p.height, p.y_stride))
        });
    }
    let mut det = MotionDetector::new(0.02, &[]);
    let start = Instant::now();
    let mut n = 0;
    while start.elapsed() < Duration::from_secs(2) {
        for f in &frames {
            std::hint::black_box(det.analyse(&f.0, f.1, f.2, f.3));
            n += 1;
        }
    }
    println!(
        "motion only: {:.3} ms/frame",
        start.elapsed().as_secs_f64() * 1000.0 / n as f64
    );
}
