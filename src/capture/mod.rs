//! Frame sources: where a camera's pictures come from. Three real kinds sit behind one
//! [`Source`] trait: RTSP network cameras (`rtsp.rs`, retina), local V4L2 devices (`v4l2.rs`)
//! and Annex B H.264 files replayed at their native rate (`file.rs`, for the demo camera and
//! tests). An [`Opener`] turns a camera's settings into a running source; tests can inject
//! their own.

pub mod file;
pub mod rtsp;
pub mod tls_tunnel;
pub mod v4l2;

use crate::model::CameraType;
use crate::video::jpeg::Frame420;
use std::future::Future;
use std::pin::Pin;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a source yields.
pub enum Packet {
    /// One H.264 access unit in Annex B form.
    H264(Vec<u8>),
    /// A picture that needed no H.264 decoding (V4L2 YUYV or MJPEG).
    Picture(Frame420),
}

/// Why a source could not be opened or stopped delivering.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CaptureError {
    #[error("the camera refused the credentials (check username and password)")]
    Unauthorized,
    #[error("cannot reach the camera: {0}")]
    Unreachable(String),
    #[error("timed out: {0}")]
    Timeout(String),
    #[error("unsupported stream: {0}")]
    Unsupported(String),
    #[error("stream error: {0}")]
    Stream(String),
    #[error("device error: {0}")]
    Device(String),
    #[error("invalid camera settings: {0}")]
    Config(String),
}

/// A running source of packets.
pub trait Source: Send {
    /// Codec name for status and tests (`h264`, `mjpeg`, `yuyv`).
    fn codec(&self) -> &'static str;
    /// Frame rate announced by the source, if any.
    fn nominal_fps(&self) -> Option<f32>;
    /// The next packet. Cancel-safe: dropping the future loses at most that packet.
    fn next(&mut self) -> BoxFuture<'_, Result<Packet, CaptureError>>;
    /// The decoding time of the packet `next` returned last, in 90 kHz ticks, when the source
    /// knows it exactly (a file's frame count); otherwise the arrival time is used.
    fn decode_time(&self) -> Option<u64> {
        None
    }
}

/// Everything needed to open a camera's stream (credentials in clear, never logged).
#[derive(Clone)]
pub struct SourceSpec {
    pub kind: CameraType,
    pub rtsp_url: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub rtsp_transport: String,
    pub device_index: Option<u32>,
    pub device_path: Option<String>,
    pub file_path: Option<String>,
    /// Wanted analysis rate; V4L2 devices are asked for it.
    pub frame_rate: u32,
}

impl std::fmt::Debug for SourceSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceSpec")
            .field("kind", &self.kind)
            .field("rtsp_url", &self.rtsp_url)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field(
                "device",
                &self
                    .device_path
                    .as_deref()
                    .or(self.device_index.map(|_| "index")),
            )
            .field("file_path", &self.file_path)
            .finish()
    }
}

/// Opens sources; the real one dispatches on the camera kind.
pub trait Opener: Send + Sync + 'static {
    fn open<'a>(
        &'a self,
        spec: &'a SourceSpec,
    ) -> BoxFuture<'a, Result<Box<dyn Source>, CaptureError>>;
}

pub struct RealOpener;

impl Opener for RealOpener {
    fn open<'a>(
        &'a self,
        spec: &'a SourceSpec,
    ) -> BoxFuture<'a, Result<Box<dyn Source>, CaptureError>> {
        Box::pin(async move {
            match spec.kind {
                CameraType::File => {
                    let path = spec
                        .file_path
                        .clone()
                        .ok_or_else(|| CaptureError::Config("file_path is missing".into()))?;
                    Ok(Box::new(file::FileSource::open(path.into()).await?) as Box<dyn Source>)
                }
                CameraType::Rtsp => {
                    Ok(Box::new(rtsp::RtspSource::open(spec).await?) as Box<dyn Source>)
                }
                CameraType::Usb => {
                    Ok(Box::new(v4l2::V4l2Source::open(spec).await?) as Box<dyn Source>)
                }
                CameraType::Protect => Err(CaptureError::Unsupported(
                    "Protect cameras are fed by their controller, not opened directly".into(),
                )),
            }
        })
    }
}
