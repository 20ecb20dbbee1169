//! The integration tests: the real server on loopback, driven over HTTP and WebSocket.

mod ai_providers;
mod alerts;
mod api_keys;
mod auth;
mod cameras;
mod capture;
mod cli;
mod describe;
mod detect;
mod detect_clips;
mod detect_geometry;
#[cfg(feature = "tract")]
mod detect_tract;
mod errors;
mod events;
mod fake_ai;
mod fake_protect;
mod hostile;
mod memory;
mod mosquitto;
mod mqtt;
mod pipeline;
mod protect;
mod protect_client;
mod rtsp;
mod storage;
mod support;
mod system;
mod ui;
mod video;
mod web;
mod webdriver;
mod webhook_receiver;
mod ws;
