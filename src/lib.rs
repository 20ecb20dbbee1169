//! Argus Edge: an AI security-camera appliance in one binary.
//!
//! Codemap (see the README's Architecture section for data flow and invariants):
//! Layers point down only: `app` (start-up, background tasks, [`app::run`]) → `http` → `api` →
//! `state` (`AppState`) → services → `bus` and the protocol and format code.
//!
//! - `app`: [`app::run`] and the background tasks; `state`: `AppState`, start-up, the handles
//!   each service gets.
//! - `events`: the event lifecycle (record, improve, describe, delete), published on `bus`.
//! - `bus`: the one typed in-process stream that `/ws`, the alert engine and MQTT subscribe to.
//! - `alerts`: alert rules, the engine that fires them for every event, notifications, the
//!   webhook outbox and dispatcher, signatures and signed media links.
//! - `http`: the server: connection admission and shedding, request heads read and checked
//!   before hyper serves them, the request wrapper (auth, origin checks, rate limits, body
//!   deadlines, errors), `/ws`, API docs.
//! - `api`: one module per REST resource with its DTOs; `api::routes` is the route table.
//! - `auth`: API keys, JWT sessions, passwords, scopes, rate limits.
//! - `store`: all SQL (SQLite, WAL, embedded migrations) behind `Store`.
//! - `capture`: frame sources (RTSP, V4L2, H.264 files); `cameras`: the per-camera supervisor
//!   and analysis threads; `video`: H.264 parsing and decoding, JPEG snapshots; `motion`: the
//!   motion detector; `detect`: the on-device object detector (backends, inference pool,
//!   tracker).
//! - `ai`: cloud vision providers (wire formats, prompts, prices, breakers, fallback chain);
//!   `describe`: which events get a cloud description, running it, usage and cost caps.
//! - `protect`: the UniFi Protect console protocol (client, update packets, event mapping);
//!   `controllers`: the per-controller supervisor that turns Protect detections into events.
//! - `mqtt`: the broker settings, the MQTT client and its bounded outbox, topics, Home
//!   Assistant discovery and the camera switches' commands.
//! - `retention`: the storage policy, the pruner, the free-disk floor, the file/row
//!   consistency pass.
//! - `config` (static, TOML + flags) and `settings` (runtime, in the database).
//! - `crypto`, `tls`, `fsutil`, `clock`, `model`, `error`: the small shared pieces;
//!   `sdnotify`: systemd readiness and watchdog.

#![forbid(unsafe_op_in_unsafe_fn)]

pub mod ai;
pub mod alerts;
pub mod api;
pub mod app;
pub mod auth;
pub mod bus;
pub mod cameras;
pub mod capture;
pub mod cli;
pub mod clips;
pub mod clock;
pub mod config;
pub mod controllers;
pub mod crypto;
pub mod describe;
pub mod detect;
pub mod error;
pub mod events;
pub mod fsutil;
pub mod http;
pub mod model;
pub mod motion;
pub mod mqtt;
pub mod protect;
pub mod retention;
pub mod sdnotify;
pub mod settings;
pub mod state;
pub mod store;
#[cfg(test)]
mod test_alloc;
pub mod tls;
pub mod video;
