//! Video: H.264 stream parsing and decoding, the JPEG snapshots made from decoded pictures,
//! each camera's latest picture, MP4 muxing (clips and live fragments), the pre-capture ring
//! of compressed access units and the live fan-out to viewers.

pub mod decode;
pub mod h264;
pub mod jpeg;
pub mod latest;
pub mod live;
pub mod live_mux;
pub mod mp4;
pub mod ring;

use std::sync::Arc;

/// One H.264 access unit as the camera sent it (Annex B, with start codes) and its time.
#[derive(Debug, Clone)]
pub struct Au {
    pub data: Arc<[u8]>,
    /// 90 kHz ticks, monotonic per camera stream.
    pub pts: u64,
    /// An IDR picture: decoding can start here.
    pub key: bool,
}
