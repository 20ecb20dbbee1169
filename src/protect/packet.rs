//! The binary framing of the Protect update WebSocket (`/proxy/protect/ws/updates`).
//!
//! One WebSocket binary message is one update: an **action frame** then a **data frame**. Each
//! frame is an 8-byte header followed by its payload:
//!
//! | byte | meaning |
//! |---|---|
//! | 0 | packet type: 1 = action, 2 = payload (data) |
//! | 1 | payload format: 1 = JSON, 2 = UTF-8 string, 3 = node buffer (raw bytes) |
//! | 2 | deflated: non-zero when the payload is zlib-compressed |
//! | 3 | reserved |
//! | 4..8 | payload size in bytes, big-endian |
//!
//! The action payload is JSON `{"action","newUpdateId","modelKey","id"}`; the data payload holds
//! the changed fields of the model named by the action.
//!
//! [`decode`] is pure and total: any input gives a message or a [`PacketError`], never a panic,
//! and an inflated payload is capped at [`MAX_INFLATED`] bytes so a tiny zip bomb cannot take
//! the memory of the appliance. Bytes after the data frame are ignored (as the reference
//! client does), so a console that ever appends a frame does not lose every update.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;

/// The size of a frame header.
pub const HEADER_LEN: usize = 8;

/// The largest payload [`decode`] inflates; a bootstrap-sized update is far below it.
pub const MAX_INFLATED: usize = 4 * 1024 * 1024;

/// Packet type of the first frame.
pub const PACKET_ACTION: u8 = 1;
/// Packet type of the second frame.
pub const PACKET_PAYLOAD: u8 = 2;

/// Payload formats (header byte 1).
pub const FORMAT_JSON: u8 = 1;
pub const FORMAT_UTF8: u8 = 2;
pub const FORMAT_NODE_BUFFER: u8 = 3;

/// The action frame: what changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Action {
    /// `add`, `update` or `remove` (other values are passed through; callers ignore them).
    pub action: String,
    /// The update id to resume from (`?lastUpdateId=`) after this message.
    #[serde(
        rename = "newUpdateId",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub new_update_id: Option<String>,
    /// The model kind: `event`, `camera`, `nvr`, `user`, ...
    #[serde(rename = "modelKey")]
    pub model_key: String,
    /// The id of the changed object.
    pub id: String,
}

/// The data frame's payload, by its declared format.
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    /// Format 1. An empty JSON payload decodes as `Value::Null`.
    Json(Value),
    /// Format 2.
    Text(String),
    /// Format 3 (a Node.js `Buffer`).
    Buffer(Vec<u8>),
}

impl Payload {
    /// The JSON object of a JSON payload, if it is one.
    pub fn as_object(&self) -> Option<&serde_json::Map<String, Value>> {
        match self {
            Payload::Json(v) => v.as_object(),
            _ => None,
        }
    }
}

/// One decoded update.
#[derive(Debug, Clone, PartialEq)]
pub struct UpdateMessage {
    pub action: Action,
    pub data: Payload,
}

/// Which of the two frames an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame {
    Action,
    Data,
}

impl fmt::Display for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Frame::Action => "action frame",
            Frame::Data => "data frame",
        })
    }
}

/// Why a packet could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PacketError {
    #[error("{frame}: truncated header ({available} of 8 bytes)")]
    TruncatedHeader { frame: Frame, available: usize },
    #[error("{frame}: the header announces {declared} payload bytes but {available} are left")]
    TruncatedPayload {
        frame: Frame,
        declared: u32,
        available: usize,
    },
    #[error("{frame}: packet type {found}, expected {expected}")]
    PacketType {
        frame: Frame,
        found: u8,
        expected: u8,
    },
    #[error("{frame}: unknown payload format {found}")]
    Format { frame: Frame, found: u8 },
    #[error("{frame}: the payload is not valid zlib data")]
    Inflate { frame: Frame },
    #[error("{frame}: the payload inflates to more than {limit} bytes")]
    TooLarge { frame: Frame, limit: usize },
    #[error("{frame}: the payload is not UTF-8")]
    Utf8 { frame: Frame },
    #[error("{frame}: invalid JSON: {message}")]
    Json { frame: Frame, message: String },
    #[error("action frame: {0}")]
    Action(String),
}

/// One frame as it is on the wire, before its payload is interpreted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct RawFrame<'a> {
    packet_type: u8,
    format: u8,
    deflated: bool,
    payload: &'a [u8],
}

/// Splits one frame off the front of `input`.
fn split_frame(input: &[u8], frame: Frame) -> Result<(RawFrame<'_>, &[u8]), PacketError> {
    let Some((header, rest)) = input.split_first_chunk::<HEADER_LEN>() else {
        return Err(PacketError::TruncatedHeader {
            frame,
            available: input.len(),
        });
    };
    let declared = u32::from_be_bytes([header[4], header[5], header[6], header[7]]);
    let len = usize::try_from(declared).unwrap_or(usize::MAX);
    if len > rest.len() {
        return Err(PacketError::TruncatedPayload {
            frame,
            declared,
            available: rest.len(),
        });
    }
    let (payload, rest) = rest.split_at(len);
    Ok((
        RawFrame {
            packet_type: header[0],
            format: header[1],
            deflated: header[2] != 0,
            payload,
        },
        rest,
    ))
}

/// The payload bytes of a frame, inflated when the frame says so.
fn frame_bytes(raw: &RawFrame<'_>, frame: Frame) -> Result<Vec<u8>, PacketError> {
    if !raw.deflated {
        return Ok(raw.payload.to_vec());
    }
    miniz_oxide::inflate::decompress_to_vec_zlib_with_limit(raw.payload, MAX_INFLATED).map_err(
        |e| match e.status {
            miniz_oxide::inflate::TINFLStatus::HasMoreOutput => PacketError::TooLarge {
                frame,
                limit: MAX_INFLATED,
            },
            _ => PacketError::Inflate { frame },
        },
    )
}

fn payload_of(raw: &RawFrame<'_>, frame: Frame) -> Result<Payload, PacketError> {
    if !matches!(raw.format, FORMAT_JSON | FORMAT_UTF8 | FORMAT_NODE_BUFFER) {
        return Err(PacketError::Format {
            frame,
            found: raw.format,
        });
    }
    let bytes = frame_bytes(raw, frame)?;
    Ok(match raw.format {
        FORMAT_JSON if bytes.iter().all(u8::is_ascii_whitespace) => Payload::Json(Value::Null),
        FORMAT_JSON => {
            Payload::Json(
                serde_json::from_slice(&bytes).map_err(|e| PacketError::Json {
                    frame,
                    message: e.to_string(),
                })?,
            )
        }
        FORMAT_UTF8 => {
            Payload::Text(String::from_utf8(bytes).map_err(|_| PacketError::Utf8 { frame })?)
        }
        _ => Payload::Buffer(bytes),
    })
}

/// Decodes one WebSocket binary message.
pub fn decode(input: &[u8]) -> Result<UpdateMessage, PacketError> {
    let (action_raw, rest) = split_frame(input, Frame::Action)?;
    if action_raw.packet_type != PACKET_ACTION {
        return Err(PacketError::PacketType {
            frame: Frame::Action,
            found: action_raw.packet_type,
            expected: PACKET_ACTION,
        });
    }
    if action_raw.format != FORMAT_JSON {
        return Err(PacketError::Action(format!(
            "payload format {}, expected JSON",
            action_raw.format
        )));
    }
    let (data_raw, _trailing) = split_frame(rest, Frame::Data)?;
    if data_raw.packet_type != PACKET_PAYLOAD {
        return Err(PacketError::PacketType {
            frame: Frame::Data,
            found: data_raw.packet_type,
            expected: PACKET_PAYLOAD,
        });
    }
    let Payload::Json(action_json) = payload_of(&action_raw, Frame::Action)? else {
        return Err(PacketError::Action("not JSON".into()));
    };
    let action: Action =
        serde_json::from_value(action_json).map_err(|e| PacketError::Action(e.to_string()))?;
    let data = payload_of(&data_raw, Frame::Data)?;
    Ok(UpdateMessage { action, data })
}

/// Builds one frame: the header, then the payload (zlib-compressed when `deflate`).
pub fn encode_frame(packet_type: u8, format: u8, deflate: bool, payload: &[u8]) -> Vec<u8> {
    let compressed;
    let body = if deflate {
        compressed = miniz_oxide::deflate::compress_to_vec_zlib(payload, 6);
        &compressed[..]
    } else {
        payload
    };
    let size = u32::try_from(body.len()).unwrap_or(u32::MAX);
    let mut out = Vec::with_capacity(HEADER_LEN + body.len());
    out.extend_from_slice(&[packet_type, format, u8::from(deflate), 0]);
    out.extend_from_slice(&size.to_be_bytes());
    out.extend_from_slice(body);
    out
}

/// Builds a whole message as a console sends it (the fake console and tests use this). `deflate`
/// compresses both frames.
pub fn encode(action: &Action, data: &Payload, deflate: bool) -> Vec<u8> {
    let action_json = serde_json::to_vec(action).unwrap_or_default();
    let mut out = encode_frame(PACKET_ACTION, FORMAT_JSON, deflate, &action_json);
    let (format, bytes) = match data {
        Payload::Json(v) => (FORMAT_JSON, serde_json::to_vec(v).unwrap_or_default()),
        Payload::Text(s) => (FORMAT_UTF8, s.as_bytes().to_vec()),
        Payload::Buffer(b) => (FORMAT_NODE_BUFFER, b.clone()),
    };
    out.extend_from_slice(&encode_frame(PACKET_PAYLOAD, format, deflate, &bytes));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn action(kind: &str) -> Action {
        Action {
            action: kind.into(),
            new_update_id: Some("6f5a3c1e-0000-4000-8000-000000000001".into()),
            model_key: "event".into(),
            id: "65f0c0ffee0000000000abcd".into(),
        }
    }

    fn action_frame(deflate: bool) -> Vec<u8> {
        let json = serde_json::to_vec(&action("add")).unwrap();
        encode_frame(PACKET_ACTION, FORMAT_JSON, deflate, &json)
    }

    /// A message from hand-built frames, the header bytes written out.
    fn hand_built(format: u8, deflated: bool, payload: &[u8]) -> Vec<u8> {
        let mut out = action_frame(false);
        out.extend_from_slice(&[2, format, u8::from(deflated), 0]);
        out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        out.extend_from_slice(payload);
        out
    }

    #[test]
    fn header_layout_is_type_format_deflated_reserved_size() {
        let frame = encode_frame(2, 3, false, b"abc");
        assert_eq!(frame, [2, 3, 0, 0, 0, 0, 0, 3, b'a', b'b', b'c']);
        let zipped = encode_frame(1, 1, true, b"{}");
        assert_eq!(&zipped[..4], &[1, 1, 1, 0]);
        let size = u32::from_be_bytes(zipped[4..8].try_into().unwrap()) as usize;
        assert_eq!(size, zipped.len() - HEADER_LEN);
    }

    #[test]
    fn json_payload_plain() {
        let data = br#"{"type":"smartDetectZone","camera":"cam1","smartDetectTypes":["person"]}"#;
        let msg = decode(&hand_built(FORMAT_JSON, false, data)).unwrap();
        assert_eq!(msg.action, action("add"));
        assert_eq!(
            msg.data,
            Payload::Json(
                json!({"type":"smartDetectZone","camera":"cam1","smartDetectTypes":["person"]})
            )
        );
    }

    #[test]
    fn json_payload_zlib_both_frames() {
        let data = json!({"type": "ring", "camera": "door", "start": 1_700_000_000_000i64});
        let bytes = encode(&action("add"), &Payload::Json(data.clone()), true);
        assert_eq!(bytes[2], 1, "the action frame is deflated");
        let msg = decode(&bytes).unwrap();
        assert_eq!(msg.action, action("add"));
        assert_eq!(msg.data, Payload::Json(data));
    }

    #[test]
    fn utf8_payload_plain_and_zlib() {
        let text = "état: ok ✓";
        let plain = decode(&hand_built(FORMAT_UTF8, false, text.as_bytes())).unwrap();
        assert_eq!(plain.data, Payload::Text(text.into()));
        let zipped = miniz_oxide::deflate::compress_to_vec_zlib(text.as_bytes(), 9);
        let msg = decode(&hand_built(FORMAT_UTF8, true, &zipped)).unwrap();
        assert_eq!(msg.data, Payload::Text(text.into()));
    }

    #[test]
    fn node_buffer_payload_plain_and_zlib() {
        let raw = [0u8, 255, 1, 2, 0xd8, 0xff];
        let plain = decode(&hand_built(FORMAT_NODE_BUFFER, false, &raw)).unwrap();
        assert_eq!(plain.data, Payload::Buffer(raw.to_vec()));
        let zipped = miniz_oxide::deflate::compress_to_vec_zlib(&raw, 1);
        let msg = decode(&hand_built(FORMAT_NODE_BUFFER, true, &zipped)).unwrap();
        assert_eq!(msg.data, Payload::Buffer(raw.to_vec()));
    }

    #[test]
    fn encode_then_decode_round_trips_every_format() {
        for deflate in [false, true] {
            for data in [
                Payload::Json(json!({"isConnected": true, "nested": {"a": [1, 2, 3]}})),
                Payload::Text("hello".into()),
                Payload::Buffer(vec![9; 1000]),
            ] {
                let msg = decode(&encode(&action("update"), &data, deflate)).unwrap();
                assert_eq!(msg.data, data, "deflate={deflate}");
                assert_eq!(msg.action.action, "update");
            }
        }
    }

    #[test]
    fn an_empty_json_payload_is_null() {
        let msg = decode(&hand_built(FORMAT_JSON, false, b"")).unwrap();
        assert_eq!(msg.data, Payload::Json(Value::Null));
    }

    #[test]
    fn new_update_id_may_be_missing_and_unknown_fields_are_ignored() {
        let json = br#"{"action":"remove","modelKey":"camera","id":"c1","extra":1}"#;
        let mut bytes = encode_frame(1, 1, false, json);
        bytes.extend_from_slice(&encode_frame(2, 1, false, b"{}"));
        let msg = decode(&bytes).unwrap();
        assert_eq!(msg.action.new_update_id, None);
        assert_eq!(msg.action.model_key, "camera");
    }

    #[test]
    fn trailing_bytes_after_the_data_frame_are_ignored() {
        let mut bytes = hand_built(FORMAT_JSON, false, b"{}");
        bytes.extend_from_slice(&[1, 2, 3]);
        assert!(decode(&bytes).is_ok());
    }

    #[test]
    fn truncated_inputs() {
        let full = hand_built(FORMAT_JSON, false, br#"{"a":1}"#);
        let action_len = action_frame(false).len();
        assert_eq!(
            decode(&[]),
            Err(PacketError::TruncatedHeader {
                frame: Frame::Action,
                available: 0
            })
        );
        assert_eq!(
            decode(&full[..5]),
            Err(PacketError::TruncatedHeader {
                frame: Frame::Action,
                available: 5
            })
        );
        assert!(matches!(
            decode(&full[..action_len - 1]),
            Err(PacketError::TruncatedPayload {
                frame: Frame::Action,
                ..
            })
        ));
        assert_eq!(
            decode(&full[..action_len]),
            Err(PacketError::TruncatedHeader {
                frame: Frame::Data,
                available: 0
            })
        );
        assert_eq!(
            decode(&full[..full.len() - 1]),
            Err(PacketError::TruncatedPayload {
                frame: Frame::Data,
                declared: 7,
                available: 6
            })
        );
        // Every prefix fails cleanly.
        for n in 0..full.len() {
            assert!(decode(&full[..n]).is_err(), "prefix {n}");
        }
    }

    #[test]
    fn oversized_declared_sizes() {
        let mut bytes = action_frame(false);
        bytes.extend_from_slice(&[2, 1, 0, 0, 0xff, 0xff, 0xff, 0xff, b'{', b'}']);
        assert_eq!(
            decode(&bytes),
            Err(PacketError::TruncatedPayload {
                frame: Frame::Data,
                declared: u32::MAX,
                available: 2
            })
        );
    }

    #[test]
    fn a_zip_bomb_is_refused() {
        let bomb = miniz_oxide::deflate::compress_to_vec_zlib(&vec![b' '; MAX_INFLATED + 1], 9);
        assert!(bomb.len() < 64 * 1024, "the bomb is small on the wire");
        assert_eq!(
            decode(&hand_built(FORMAT_JSON, true, &bomb)),
            Err(PacketError::TooLarge {
                frame: Frame::Data,
                limit: MAX_INFLATED
            })
        );
        // Exactly at the limit is fine.
        let at_limit = miniz_oxide::deflate::compress_to_vec_zlib(&vec![7; MAX_INFLATED], 9);
        let msg = decode(&hand_built(FORMAT_NODE_BUFFER, true, &at_limit)).unwrap();
        assert_eq!(msg.data, Payload::Buffer(vec![7; MAX_INFLATED]));
    }

    #[test]
    fn malformed_frames() {
        let check = |bytes: Vec<u8>, expect: PacketError| assert_eq!(decode(&bytes), Err(expect));
        // Frames in the wrong order.
        let mut swapped = encode_frame(2, 1, false, b"{}");
        swapped.extend_from_slice(&action_frame(false));
        check(
            swapped,
            PacketError::PacketType {
                frame: Frame::Action,
                found: 2,
                expected: 1,
            },
        );
        let mut two_actions = action_frame(false);
        two_actions.extend_from_slice(&action_frame(false));
        check(
            two_actions,
            PacketError::PacketType {
                frame: Frame::Data,
                found: 1,
                expected: 2,
            },
        );
        check(
            hand_built(9, false, b"x"),
            PacketError::Format {
                frame: Frame::Data,
                found: 9,
            },
        );
        check(
            hand_built(FORMAT_JSON, true, b"not zlib"),
            PacketError::Inflate { frame: Frame::Data },
        );
        check(
            hand_built(FORMAT_UTF8, false, &[0xff, 0xfe]),
            PacketError::Utf8 { frame: Frame::Data },
        );
        assert!(matches!(
            decode(&hand_built(FORMAT_JSON, false, b"{\"a\":")),
            Err(PacketError::Json {
                frame: Frame::Data,
                ..
            })
        ));
        // An action frame that is not JSON, or JSON without the required fields.
        let mut text_action = encode_frame(1, FORMAT_UTF8, false, b"add");
        text_action.extend_from_slice(&encode_frame(2, 1, false, b"{}"));
        assert!(matches!(decode(&text_action), Err(PacketError::Action(_))));
        let mut partial = encode_frame(1, 1, false, br#"{"action":"add"}"#);
        partial.extend_from_slice(&encode_frame(2, 1, false, b"{}"));
        assert!(matches!(decode(&partial), Err(PacketError::Action(_))));
        let mut array = encode_frame(1, 1, false, b"[1,2]");
        array.extend_from_slice(&encode_frame(2, 1, false, b"{}"));
        assert!(matches!(decode(&array), Err(PacketError::Action(_))));
    }

    #[test]
    fn deeply_nested_json_is_an_error_not_a_stack_overflow() {
        let deep = "[".repeat(100_000);
        assert!(matches!(
            decode(&hand_built(FORMAT_JSON, false, deep.as_bytes())),
            Err(PacketError::Json { .. })
        ));
    }

    /// A bounded randomized check (the fuzz target in `fuzz/` goes further): random bytes,
    /// and valid messages with random bytes flipped, never panic.
    #[test]
    fn random_and_mutated_inputs_never_panic() {
        // xorshift64*: deterministic, no dependency.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            state.wrapping_mul(0x2545_f491_4f6c_dd1d)
        };
        let seeds = [
            encode(
                &action("add"),
                &Payload::Json(json!({"type": "ring"})),
                false,
            ),
            encode(
                &action("add"),
                &Payload::Json(json!({"type": "ring"})),
                true,
            ),
            encode(&action("update"), &Payload::Text("x".repeat(50)), true),
            encode(&action("remove"), &Payload::Buffer(vec![1, 2, 3]), false),
        ];
        for i in 0..20_000 {
            let mut bytes = if i % 4 == 0 {
                let len = (next() % 64) as usize;
                (0..len).map(|_| next() as u8).collect()
            } else {
                seeds[i % seeds.len()].clone()
            };
            if !bytes.is_empty() {
                for _ in 0..(next() % 4 + 1) {
                    let at = (next() as usize) % bytes.len();
                    bytes[at] = next() as u8;
                }
                if next() % 3 == 0 {
                    bytes.truncate((next() as usize) % bytes.len());
                }
            }
            let _ = decode(&bytes);
        }
    }
}
