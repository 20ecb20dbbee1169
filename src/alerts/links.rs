//! Signed media links: an absolute snapshot or clip URL that a phone or Home Assistant can fetch
//! without an API key, for one event's media only (its snapshot and its clip), until it expires. The signature is an HMAC under a key
//! derived from the data dir's master key (see [`super::sign::media_signature`]).
//!
//! The base URL is `[http] public_url` when set; otherwise the scheme and `Host` of the latest
//! authenticated API request; before any, links are relative.

use super::sign::{self, MediaRefusal};
use crate::clock::Clock;
use crate::store::events::EventRow;
use std::sync::{Arc, Mutex};

/// Cheap to clone.
#[derive(Clone)]
pub struct MediaLinks {
    key: Arc<[u8]>,
    configured: Option<String>,
    seen: Arc<Mutex<Option<String>>>,
    ttl_s: i64,
    clock: Arc<dyn Clock>,
}

impl MediaLinks {
    pub fn new(key: &[u8], configured: Option<String>, ttl_s: u64, clock: Arc<dyn Clock>) -> Self {
        MediaLinks {
            key: Arc::from(key),
            configured: configured.map(|u| u.trim_end_matches('/').to_string()),
            seen: Arc::default(),
            ttl_s: ttl_s as i64,
            clock,
        }
    }

    /// Remembers the origin (`http://host:port`) an authenticated client reached the appliance
    /// at, for links when no `public_url` is configured.
    pub fn saw_origin(&self, origin: &str) {
        if self.configured.is_some() {
            return;
        }
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.as_deref() != Some(origin) {
            *seen = Some(origin.to_string());
        }
    }

    /// The base links are built on, if known.
    pub fn base(&self) -> Option<String> {
        self.configured
            .clone()
            .or_else(|| self.seen.lock().unwrap_or_else(|e| e.into_inner()).clone())
    }

    /// The signed path of an event's snapshot, valid for the configured time from now.
    pub fn signed_path(&self, event_id: &str) -> String {
        self.signed(event_id, "thumbnail")
    }

    /// The signed path of one of an event's media (`thumbnail`, `clip`): the signature names
    /// the event, so it opens that event's media and no other's.
    fn signed(&self, event_id: &str, media: &str) -> String {
        let exp = self.clock.now_ms() / 1000 + self.ttl_s;
        let sig = sign::media_signature(&self.key, event_id, exp);
        format!("/api/v1/events/{event_id}/{media}?exp={exp}&sig={sig}")
    }

    fn absolute(&self, path: String) -> String {
        match self.base() {
            Some(b) => format!("{b}{path}"),
            None => path,
        }
    }

    /// The link to an event's snapshot (absolute when the base is known), or `None` when the
    /// event has none.
    pub fn thumbnail_url(&self, row: &EventRow) -> Option<String> {
        row.thumbnail_path.as_ref()?;
        Some(self.absolute(self.signed(&row.id, "thumbnail")))
    }

    /// The link to an event's clip, or `None` while it has none (a clip is complete only
    /// after its event: an alert sent at once has none).
    pub fn clip_url(&self, row: &EventRow) -> Option<String> {
        row.clip_path.as_ref()?;
        Some(self.absolute(self.signed(&row.id, "clip")))
    }

    /// Checks a link's `exp` and `sig` for an event.
    pub fn verify(&self, event_id: &str, exp: &str, sig: &str) -> Result<(), MediaRefusal> {
        let exp: i64 = exp.parse().map_err(|_| MediaRefusal::BadSignature)?;
        sign::verify_media(&self.key, event_id, exp, sig, self.clock.now_ms() / 1000)
    }
}
