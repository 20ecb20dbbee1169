//! API keys: `argus_` followed by 40 random URL-safe characters (240 bits from ring's
//! SystemRandom). Only an HMAC of the key is stored; the first 8 random characters are kept in
//! clear as a lookup index, and candidates are compared in constant time.
//!
//! Usage (request counts, last use, per-day counts) is gathered in memory and written in one
//! transaction every few seconds, so an API call costs no database write (SD cards wear out).

use super::{Authenticator, KeyPrincipal, Principal};
use crate::crypto::{ct_eq, new_uuid, random_token, Keys};
use crate::error::{AppError, AppResult};
use crate::model::Scope;
use crate::store::api_keys::{self as rows, ApiKeyRow, UsageDelta};
use crate::store::{Store, StoreResult};
use std::collections::HashMap;
use std::sync::Mutex;

pub const KEY_PREFIX: &str = "argus_";
const RANDOM_CHARS: usize = 40;
const LOOKUP_CHARS: usize = 8;

/// What a caller asks for when creating a key.
#[derive(Debug, Clone)]
pub struct NewKey {
    pub name: String,
    pub scopes: Vec<Scope>,
    pub rate_limit_per_minute: u32,
    pub expires_at: Option<i64>,
    pub created_by: Option<String>,
}

/// Validates the request, stores the key's hash, and returns the row and the key (shown once).
pub fn create(
    conn: &rusqlite::Connection,
    keys: &Keys,
    k: NewKey,
    now: i64,
) -> StoreResult<(ApiKeyRow, String)> {
    let secret = random_token(RANDOM_CHARS);
    let full = format!("{KEY_PREFIX}{secret}");
    let mut scopes = k.scopes;
    scopes.sort();
    scopes.dedup();
    let row = ApiKeyRow {
        id: new_uuid(),
        name: k.name,
        lookup: secret[..LOOKUP_CHARS].to_string(),
        key_hash: keys.api_key_hash(&full),
        scopes,
        rate_limit_per_minute: k.rate_limit_per_minute,
        expires_at: k.expires_at,
        created_at: now,
        created_by: k.created_by,
        revoked_at: None,
        usage_count: 0,
        last_used_at: None,
        last_used_ip: None,
    };
    rows::insert(conn, &row)?;
    Ok((row, full))
}

/// Checks the shape of a create request; the error names the field.
pub fn validate_new(name: &str, scopes: &[Scope], rate: u32) -> Result<(), String> {
    if name.trim().is_empty() || name.chars().count() > 100 {
        return Err("name: 1 to 100 characters".into());
    }
    if scopes.is_empty() {
        return Err(
            "scopes: give at least one of read:events, read:cameras, write:cameras, admin".into(),
        );
    }
    if !(1..=100_000).contains(&rate) {
        return Err("rate_limit_per_minute: between 1 and 100000".into());
    }
    Ok(())
}

pub(super) async fn verify(a: &Authenticator, key: &str) -> AppResult<Principal> {
    let invalid = || AppError::unauthenticated("Invalid API key");
    let secret = key.strip_prefix(KEY_PREFIX).ok_or_else(invalid)?;
    if secret.len() < 32 || secret.len() > 128 || !secret.is_char_boundary(LOOKUP_CHARS) {
        return Err(invalid());
    }
    let lookup = secret[..LOOKUP_CHARS].to_string();
    let candidates = a.store.read(move |c| rows::by_lookup(c, &lookup)).await?;
    let hash = a.keys.api_key_hash(key);
    let row = candidates
        .into_iter()
        .find(|r| ct_eq(&r.key_hash, &hash))
        .ok_or_else(invalid)?;
    if row.revoked_at.is_some() {
        return Err(AppError::unauthenticated("API key has been revoked"));
    }
    if matches!(row.expires_at, Some(e) if e <= a.clock.now_ms()) {
        return Err(AppError::unauthenticated("API key has expired"));
    }
    Ok(Principal::ApiKey(KeyPrincipal {
        key_id: row.id,
        name: row.name,
        scopes: row.scopes,
        rate_limit_per_minute: row.rate_limit_per_minute,
    }))
}

/// Usage counted since the last flush.
#[derive(Default)]
pub struct UsageTracker {
    pending: Mutex<HashMap<String, UsageDelta>>,
}

impl UsageTracker {
    pub fn record(&self, key_id: &str, ip: Option<String>, now_ms: i64) {
        let mut map = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let d = map.entry(key_id.to_string()).or_default();
        d.count += 1;
        d.last_used_at = d.last_used_at.max(now_ms);
        if ip.is_some() {
            d.last_used_ip = ip;
        }
        let day = crate::clock::utc_day(now_ms);
        match d.per_day.iter_mut().find(|(dd, _)| *dd == day) {
            Some((_, n)) => *n += 1,
            None => d.per_day.push((day, 1)),
        }
    }

    /// Writes pending usage to the store. On failure the counts are put back for the next try.
    pub async fn flush(&self, store: &Store) -> StoreResult<()> {
        let batch: Vec<(String, UsageDelta)> = {
            let mut map = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            map.drain().collect()
        };
        if batch.is_empty() {
            return Ok(());
        }
        let keep = batch.clone();
        let res = store.write(move |c| rows::add_usage(c, &batch)).await;
        if res.is_err() {
            let mut map = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            for (id, d) in keep {
                let e = map.entry(id).or_default();
                e.count += d.count;
                e.last_used_at = e.last_used_at.max(d.last_used_at);
                if e.last_used_ip.is_none() {
                    e.last_used_ip = d.last_used_ip;
                }
                for (day, n) in d.per_day {
                    match e.per_day.iter_mut().find(|(dd, _)| *dd == day) {
                        Some((_, m)) => *m += n,
                        None => e.per_day.push((day, n)),
                    }
                }
            }
        }
        res
    }
}
