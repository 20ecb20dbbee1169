//! Video: H.264 stream parsing and decoding, the JPEG snapshots made from decoded pictures, and
//! each camera's latest picture.

pub mod decode;
pub mod h264;
pub mod jpeg;
pub mod latest;
