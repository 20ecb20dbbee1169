//! Video: H.264 stream parsing and decoding, and the JPEG snapshots made from decoded pictures.

pub mod decode;
pub mod h264;
pub mod jpeg;
