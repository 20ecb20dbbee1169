//! The integration tests: the real server on loopback, driven over HTTP and WebSocket.

mod api_keys;
mod auth;
mod cameras;
mod capture;
mod cli;
mod detect;
mod errors;
mod events;
mod rtsp;
mod support;
mod system;
mod video;
mod ws;
