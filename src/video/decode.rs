//! H.264 decoding with OpenH264 (the `openh264` crate, built from its bundled source).
//!
//! The crate's one-call `decode()` flushes the reorder buffer after every call that yields no
//! picture, which breaks streams with B-frames. This wrapper turns that flushing off, feeds one
//! access unit per call, flushes only at the end of a stream, and after a decoding error drops
//! input until the next IDR picture, so corrupted or lost NAL units cost a few frames and never
//! a panic. Pictures are handed to a callback while they are borrowed from the decoder: nothing
//! is copied unless the caller wants it (motion analysis reads the luma plane in place).

use super::h264;
use openh264::decoder::{Decoder, DecoderConfig, Flush};
use openh264::formats::YUVSource;
use openh264::OpenH264API;

#[derive(Debug, thiserror::Error)]
#[error("cannot start the H.264 decoder: {0}")]
pub struct DecoderInitError(String);

/// A decoded I420 picture, borrowed from the decoder.
pub struct Picture<'a> {
    pub width: usize,
    pub height: usize,
    pub y: &'a [u8],
    pub u: &'a [u8],
    pub v: &'a [u8],
    pub y_stride: usize,
    pub uv_stride: usize,
    /// Luma and chroma span 0-255 (JPEG/JFIF) instead of BT.601 video range (16-235/240, what
    /// H.264 cameras send; the SPS's full-range flag is not read).
    pub full_range: bool,
}

/// Counters for status and tests.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DecodeStats {
    pub access_units: u64,
    pub pictures: u64,
    pub errors: u64,
    /// Access units dropped while waiting for an IDR after an error.
    pub skipped: u64,
}

pub struct H264Decoder {
    dec: Decoder,
    waiting_for_idr: bool,
    pub stats: DecodeStats,
}

fn picture<'a>(p: &'a impl YUVSource) -> Picture<'a> {
    let (width, height) = p.dimensions();
    let (ys, us, _) = p.strides();
    Picture {
        width,
        height,
        y: p.y(),
        u: p.u(),
        v: p.v(),
        y_stride: ys,
        uv_stride: us,
        full_range: false,
    }
}

impl H264Decoder {
    pub fn new() -> Result<Self, DecoderInitError> {
        let cfg = DecoderConfig::new().flush_after_decode(Flush::NoFlush);
        let dec = Decoder::with_api_config(OpenH264API::from_source(), cfg)
            .map_err(|e| DecoderInitError(e.to_string()))?;
        Ok(H264Decoder {
            dec,
            waiting_for_idr: true,
            stats: DecodeStats::default(),
        })
    }

    /// Decodes one Annex B access unit; `on_picture` gets each picture that comes out (none,
    /// while the decoder is still filling its reorder buffer).
    pub fn decode(&mut self, au: &[u8], mut on_picture: impl FnMut(&Picture<'_>)) {
        self.stats.access_units += 1;
        if self.waiting_for_idr {
            if !h264::is_idr(au) {
                self.stats.skipped += 1;
                return;
            }
            self.waiting_for_idr = false;
        }
        match self.dec.decode(au) {
            Ok(Some(p)) => {
                self.stats.pictures += 1;
                on_picture(&picture(&p));
            }
            Ok(None) => {}
            Err(_) => {
                self.stats.errors += 1;
                self.waiting_for_idr = true;
            }
        }
    }

    /// Emits the pictures still held for reordering (end of stream, or before a reconnect),
    /// and waits for an IDR before decoding again.
    pub fn flush(&mut self, mut on_picture: impl FnMut(&Picture<'_>)) {
        if let Ok(pics) = self.dec.flush_remaining() {
            for p in &pics {
                self.stats.pictures += 1;
                on_picture(&picture(p));
            }
        }
        self.waiting_for_idr = true;
    }
}
