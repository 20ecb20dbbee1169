//! Local V4L2 cameras (USB webcams, CSI cameras with a V4L2 driver) through the `v4l` crate.
//!
//! Capture runs on its own thread (V4L2 calls block) with memory-mapped buffers and a read
//! timeout. The format is negotiated from what the device offers: YUYV or MJPEG, at the size
//! closest to the analysis size (640x360) and the camera's frame rate. Frames become I420
//! pictures for the same pipeline as decoded H.264. The negotiation and the conversions are pure
//! functions, tested on recorded frames; the device path itself needs real hardware
//! (`scripts/hw-smoke.sh`).

use super::{BoxFuture, CaptureError, Packet, Source, SourceSpec};
use crate::video::jpeg::Frame420;
use std::time::Duration;

/// Pixel formats the appliance can use, in order of preference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PixelFormat {
    Yuyv,
    Mjpeg,
}

impl PixelFormat {
    pub fn fourcc(self) -> [u8; 4] {
        match self {
            PixelFormat::Yuyv => *b"YUYV",
            PixelFormat::Mjpeg => *b"MJPG",
        }
    }
    fn from_fourcc(f: &[u8; 4]) -> Option<Self> {
        match f {
            b"YUYV" => Some(PixelFormat::Yuyv),
            b"MJPG" => Some(PixelFormat::Mjpeg),
            _ => None,
        }
    }
}

/// One format the device offers, with its discrete frame sizes.
#[derive(Debug, Clone)]
pub struct Offer {
    pub fourcc: [u8; 4],
    pub sizes: Vec<(u32, u32)>,
}

/// The chosen capture mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mode {
    pub format: PixelFormat,
    pub width: u32,
    pub height: u32,
}

/// The analysis size the negotiation aims for.
pub const TARGET: (u32, u32) = (640, 360);

/// Picks the format and size: the size closest in pixel count to [`TARGET`] (not below 320
/// wide when possible); between formats offering it, YUYV (no decoding) before MJPEG.
pub fn negotiate(offers: &[Offer]) -> Option<Mode> {
    let target_px = (TARGET.0 * TARGET.1) as i64;
    let mut best: Option<(i64, u8, Mode)> = None;
    for o in offers {
        let Some(format) = PixelFormat::from_fourcc(&o.fourcc) else {
            continue;
        };
        let pref = if format == PixelFormat::Yuyv { 0 } else { 1 };
        for &(w, h) in &o.sizes {
            let too_small = if w < 320 { 1_000_000_000 } else { 0 };
            let cost = ((w * h) as i64 - target_px).abs() + too_small;
            let cand = (
                cost,
                pref,
                Mode {
                    format,
                    width: w,
                    height: h,
                },
            );
            if best.as_ref().is_none_or(|b| (cand.0, cand.1) < (b.0, b.1)) {
                best = Some(cand);
            }
        }
    }
    best.map(|b| b.2)
}

/// Turns one captured buffer into an I420 picture.
pub fn convert(mode: Mode, data: &[u8], stride: usize) -> Result<Frame420, CaptureError> {
    match mode.format {
        PixelFormat::Yuyv => {
            Frame420::from_yuyv(data, mode.width as usize, mode.height as usize, stride)
                .ok_or_else(|| CaptureError::Device("short YUYV frame".into()))
        }
        PixelFormat::Mjpeg => Frame420::from_jpeg(data)
            .map_err(|e| CaptureError::Device(format!("bad MJPEG frame: {e}"))),
    }
}

pub struct V4l2Source {
    rx: tokio::sync::mpsc::Receiver<Result<Frame420, CaptureError>>,
    codec: &'static str,
    fps: Option<f32>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Drop for V4l2Source {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

fn open_device(spec: &SourceSpec) -> Result<(v4l::Device, Mode, usize, Option<f32>), CaptureError> {
    use v4l::video::Capture;
    let dev = match (&spec.device_path, spec.device_index) {
        (Some(p), _) => v4l::Device::with_path(p),
        (None, Some(i)) => v4l::Device::new(i as usize),
        (None, None) => {
            return Err(CaptureError::Config(
                "device_index or device_path is required".into(),
            ))
        }
    }
    .map_err(|e| CaptureError::Unreachable(format!("cannot open the video device: {e}")))?;
    let mut offers = Vec::new();
    for d in dev
        .enum_formats()
        .map_err(|e| CaptureError::Device(e.to_string()))?
    {
        let sizes = dev
            .enum_framesizes(d.fourcc)
            .map(|v| {
                v.into_iter()
                    .map(|s| match s.size {
                        v4l::framesize::FrameSizeEnum::Discrete(d) => (d.width, d.height),
                        v4l::framesize::FrameSizeEnum::Stepwise(s) => (
                            TARGET.0.clamp(s.min_width, s.max_width),
                            TARGET.1.clamp(s.min_height, s.max_height),
                        ),
                    })
                    .collect()
            })
            .unwrap_or_default();
        offers.push(Offer {
            fourcc: d.fourcc.repr,
            sizes,
        });
    }
    let mode = negotiate(&offers).ok_or_else(|| {
        CaptureError::Unsupported("the device offers neither YUYV nor MJPEG".into())
    })?;
    let fmt = dev
        .set_format(&v4l::Format::new(
            mode.width,
            mode.height,
            v4l::FourCC::new(&mode.format.fourcc()),
        ))
        .map_err(|e| CaptureError::Device(format!("cannot set the format: {e}")))?;
    let mode = Mode {
        width: fmt.width,
        height: fmt.height,
        ..mode
    };
    let fps = dev
        .set_params(&v4l::video::capture::Parameters::with_fps(
            spec.frame_rate.max(1),
        ))
        .ok()
        .map(|p| p.interval.denominator as f32 / p.interval.numerator.max(1) as f32);
    Ok((dev, mode, fmt.stride as usize, fps))
}

impl V4l2Source {
    pub async fn open(spec: &SourceSpec) -> Result<V4l2Source, CaptureError> {
        let spec = spec.clone();
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stop2 = stop.clone();
        std::thread::Builder::new()
            .name("v4l2-capture".into())
            .spawn(move || {
                use v4l::io::traits::CaptureStream;
                let (dev, mode, stride, fps) = match open_device(&spec) {
                    Ok(x) => x,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let mut stream = match v4l::io::mmap::Stream::with_buffers(
                    &dev,
                    v4l::buffer::Type::VideoCapture,
                    4,
                ) {
                    Ok(s) => s,
                    Err(e) => {
                        let _ = ready_tx.send(Err(CaptureError::Device(format!(
                            "cannot start streaming: {e}"
                        ))));
                        return;
                    }
                };
                stream.set_timeout(Duration::from_secs(5));
                let codec = if mode.format == PixelFormat::Mjpeg {
                    "mjpeg"
                } else {
                    "yuyv"
                };
                let _ = ready_tx.send(Ok((codec, fps)));
                while !stop2.load(std::sync::atomic::Ordering::Relaxed) {
                    let item = match stream.next() {
                        Ok((buf, meta)) => {
                            let used = (meta.bytesused as usize).min(buf.len());
                            convert(mode, &buf[..used], stride)
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::TimedOut => Err(
                            CaptureError::Timeout("the device delivered no frame for 5 s".into()),
                        ),
                        Err(e) => Err(CaptureError::Device(e.to_string())),
                    };
                    let fatal = item.is_err();
                    if tx.blocking_send(item).is_err() || fatal {
                        break;
                    }
                }
            })
            .map_err(|e| CaptureError::Device(format!("cannot start the capture thread: {e}")))?;
        let (codec, fps) = ready_rx
            .await
            .map_err(|_| CaptureError::Device("the capture thread stopped".into()))??;
        Ok(V4l2Source {
            rx,
            codec,
            fps,
            stop,
        })
    }
}

impl Source for V4l2Source {
    fn codec(&self) -> &'static str {
        self.codec
    }

    fn nominal_fps(&self) -> Option<f32> {
        self.fps
    }

    fn next(&mut self) -> BoxFuture<'_, Result<Packet, CaptureError>> {
        Box::pin(async move {
            match self.rx.recv().await {
                Some(r) => r.map(Packet::Picture),
                None => Err(CaptureError::Device("the capture thread stopped".into())),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_prefers_the_analysis_size_and_yuyv() {
        let offers = vec![
            Offer {
                fourcc: *b"MJPG",
                sizes: vec![(1920, 1080), (1280, 720), (640, 360)],
            },
            Offer {
                fourcc: *b"YUYV",
                sizes: vec![(1920, 1080), (640, 480), (640, 360)],
            },
            Offer {
                fourcc: *b"H264",
                sizes: vec![(640, 360)],
            },
        ];
        assert_eq!(
            negotiate(&offers),
            Some(Mode {
                format: PixelFormat::Yuyv,
                width: 640,
                height: 360
            })
        );
        let only_big_yuyv = vec![
            Offer {
                fourcc: *b"MJPG",
                sizes: vec![(1280, 720), (640, 360)],
            },
            Offer {
                fourcc: *b"YUYV",
                sizes: vec![(1920, 1080)],
            },
        ];
        assert_eq!(
            negotiate(&only_big_yuyv),
            Some(Mode {
                format: PixelFormat::Mjpeg,
                width: 640,
                height: 360
            })
        );
        let tiny = vec![Offer {
            fourcc: *b"YUYV",
            sizes: vec![(160, 120), (800, 600)],
        }];
        assert_eq!(negotiate(&tiny).unwrap().width, 800);
        assert_eq!(
            negotiate(&[Offer {
                fourcc: *b"GREY",
                sizes: vec![(640, 480)]
            }]),
            None
        );
    }
}
