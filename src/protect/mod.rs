//! UniFi Protect consoles: the protocol layer. A console is reached over HTTPS (UniFi OS login,
//! bootstrap, snapshots, video exports) and pushes changes over a binary WebSocket.
//!
//! - [`client`]: [`ProtectClient`] for one console: login with re-login on 401, bootstrap,
//!   snapshots, video exports, the update socket as an [`UpdateStream`]; errors classified for
//!   the API.
//! - [`export`]: the console's video export, streamed to a file and checked (MP4 boxes).
//! - [`packet`]: the update socket's binary framing (decoder and encoder).
//! - [`events`]: which update messages are detections (smart detections, rings, motion) and
//!   which end an event.
//! - [`bootstrap`]: the parts of the bootstrap the appliance uses.
//!
//! Nothing here touches the database, the bus or HTTP serving; reconnect policy, filters and
//! event storage live with the caller.

pub mod bootstrap;
pub mod client;
pub mod events;
pub mod export;
mod net;
pub(crate) use net::Endpoint;
pub mod packet;

pub use bootstrap::{Bootstrap, CameraInfo, NvrInfo};
pub use client::{
    host_with_port, ControllerConfig, ProtectClient, ProtectError, Timeouts, UpdateStream,
};
pub use events::{
    detection_from, DetectionKind, EventMapper, Mapped, ProtectDetection, ProtectEventEnd,
};
pub use export::{ExportError, ExportedVideo};
pub use packet::{Action, PacketError, Payload, UpdateMessage};
