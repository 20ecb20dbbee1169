//! Alerts: what alert rules are and whether an event matches them ([`rules`]), the engine that
//! evaluates them for every event on the stream and fires them ([`engine`]), webhook deliveries
//! from the durable outbox ([`webhook`]), signatures and target checks ([`sign`]) and signed
//! media links ([`links`]). The rows live in `store::alerts`; the API in `api::alert_rules`,
//! `api::notifications` and `api::webhooks`.

pub mod engine;
pub mod links;
pub mod rules;
pub mod sign;
pub mod webhook;
