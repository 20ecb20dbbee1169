//! An Annex B H.264 file replayed in a loop at its native frame rate (from the SPS timing
//! information; 15 fps when the stream does not say). Feeds the demo camera and tests.

use super::{BoxFuture, CaptureError, Packet, Source};
use crate::video::h264;
use std::path::PathBuf;
use std::time::Duration;

pub struct FileSource {
    aus: Vec<Vec<u8>>,
    next: usize,
    /// Access units handed out.
    sent: u64,
    fps: Option<f32>,
    ticker: tokio::time::Interval,
}

/// Frame rate used when the stream carries no timing information.
pub const DEFAULT_FPS: f32 = 15.0;

impl FileSource {
    pub async fn open(path: PathBuf) -> Result<FileSource, CaptureError> {
        let shown = path.display().to_string();
        let data = tokio::fs::read(&path)
            .await
            .map_err(|e| CaptureError::Device(format!("cannot read {shown}: {e}")))?;
        let (aus, sps) =
            tokio::task::spawn_blocking(move || (h264::access_units(&data), h264::find_sps(&data)))
                .await
                .map_err(|e| CaptureError::Stream(e.to_string()))?;
        if aus.is_empty() || sps.is_none() {
            return Err(CaptureError::Unsupported(format!(
                "{shown} is not an Annex B H.264 stream"
            )));
        }
        let fps = sps.and_then(|s| s.fps);
        let period = Duration::from_secs_f32(1.0 / fps.unwrap_or(DEFAULT_FPS));
        let mut ticker = tokio::time::interval(period);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Ok(FileSource {
            aus,
            next: 0,
            sent: 0,
            fps,
            ticker,
        })
    }
}

impl Source for FileSource {
    fn codec(&self) -> &'static str {
        "h264"
    }

    fn nominal_fps(&self) -> Option<f32> {
        Some(self.fps.unwrap_or(DEFAULT_FPS))
    }

    fn next(&mut self) -> BoxFuture<'_, Result<Packet, CaptureError>> {
        Box::pin(async move {
            self.ticker.tick().await;
            let au = self.aus[self.next].clone();
            self.next = (self.next + 1) % self.aus.len();
            self.sent += 1;
            Ok(Packet::H264(au))
        })
    }

    fn decode_time(&self) -> Option<u64> {
        let fps = f64::from(self.fps.unwrap_or(DEFAULT_FPS));
        Some((self.sent.saturating_sub(1) as f64 * 90_000.0 / fps).round() as u64)
    }
}
