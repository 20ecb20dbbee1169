//! API key rows, their lookup by the key's public part, and usage counters.

use super::{json_col, StoreError, StoreResult};
use crate::model::Scope;
use rusqlite::{named_params, Connection, Row};

#[derive(Debug, Clone)]
pub struct ApiKeyRow {
    pub id: String,
    pub name: String,
    /// The first 8 characters after `argus_`: public, indexed, shown as `argus_xxxxxxxx...`.
    pub lookup: String,
    /// HMAC-SHA256 of the whole key under a data-dir key; the key itself is never stored.
    pub key_hash: Vec<u8>,
    pub scopes: Vec<Scope>,
    pub rate_limit_per_minute: u32,
    pub expires_at: Option<i64>,
    pub created_at: i64,
    pub created_by: Option<String>,
    pub revoked_at: Option<i64>,
    pub usage_count: u64,
    pub last_used_at: Option<i64>,
    pub last_used_ip: Option<String>,
}

const COLUMNS: &str = "id, name, lookup, key_hash, scopes, rate_limit_per_minute, expires_at, \
    created_at, created_by, revoked_at, usage_count, last_used_at, last_used_ip";

fn from_row(r: &Row<'_>) -> StoreResult<ApiKeyRow> {
    let scopes: String = r.get(4)?;
    Ok(ApiKeyRow {
        id: r.get(0)?,
        name: r.get(1)?,
        lookup: r.get(2)?,
        key_hash: r.get(3)?,
        scopes: json_col(&scopes)?,
        rate_limit_per_minute: r.get(5)?,
        expires_at: r.get(6)?,
        created_at: r.get(7)?,
        created_by: r.get(8)?,
        revoked_at: r.get(9)?,
        usage_count: r.get(10)?,
        last_used_at: r.get(11)?,
        last_used_ip: r.get(12)?,
    })
}

pub fn insert(conn: &Connection, k: &ApiKeyRow) -> StoreResult<()> {
    let sql = format!(
        "INSERT INTO api_keys ({COLUMNS}) VALUES (:id, :name, :lookup, :key_hash, :scopes, \
         :rate, :expires_at, :created_at, :created_by, NULL, 0, NULL, NULL)"
    );
    conn.prepare_cached(&sql)?.execute(named_params! {
        ":id": k.id, ":name": k.name, ":lookup": k.lookup, ":key_hash": k.key_hash,
        ":scopes": serde_json::to_string(&k.scopes)?, ":rate": k.rate_limit_per_minute,
        ":expires_at": k.expires_at, ":created_at": k.created_at, ":created_by": k.created_by,
    })?;
    Ok(())
}

/// Keys whose public part matches, revoked or not (the caller decides).
pub fn by_lookup(conn: &Connection, lookup: &str) -> StoreResult<Vec<ApiKeyRow>> {
    let sql = format!("SELECT {COLUMNS} FROM api_keys WHERE lookup = ?1");
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query([lookup])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(from_row(r)?);
    }
    Ok(out)
}

pub fn get(conn: &Connection, id: &str) -> StoreResult<ApiKeyRow> {
    let sql = format!("SELECT {COLUMNS} FROM api_keys WHERE id = ?1");
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query([id])?;
    match rows.next()? {
        Some(r) => from_row(r),
        None => Err(StoreError::NotFound("API key")),
    }
}

pub fn list(conn: &Connection, include_revoked: bool) -> StoreResult<Vec<ApiKeyRow>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM api_keys WHERE (?1 OR revoked_at IS NULL) \
         ORDER BY created_at DESC, id"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query([include_revoked])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(from_row(r)?);
    }
    Ok(out)
}

/// Marks a key revoked. Returns false if it was already revoked.
pub fn revoke(conn: &Connection, id: &str, now: i64) -> StoreResult<bool> {
    let n = conn.execute(
        "UPDATE api_keys SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
        rusqlite::params![id, now],
    )?;
    if n == 0 {
        get(conn, id)?; // NotFound if there is no such key.
        return Ok(false);
    }
    Ok(true)
}

/// Usage gathered in memory since the last flush, for one key.
#[derive(Debug, Clone, Default)]
pub struct UsageDelta {
    pub count: u64,
    pub last_used_at: i64,
    pub last_used_ip: Option<String>,
    pub per_day: Vec<(String, u64)>,
}

/// Adds usage counted in memory to the stored counters, in one transaction.
pub fn add_usage(conn: &mut Connection, deltas: &[(String, UsageDelta)]) -> StoreResult<()> {
    let tx = conn.transaction()?;
    {
        let mut upd = tx.prepare_cached(
            "UPDATE api_keys SET usage_count = usage_count + ?2, \
             last_used_at = max(coalesce(last_used_at, 0), ?3), \
             last_used_ip = coalesce(?4, last_used_ip) WHERE id = ?1",
        )?;
        let mut day = tx.prepare_cached(
            "INSERT INTO api_key_usage_daily (key_id, day, count) \
             SELECT ?1, ?2, ?3 WHERE EXISTS (SELECT 1 FROM api_keys WHERE id = ?1) \
             ON CONFLICT(key_id, day) DO UPDATE SET count = count + excluded.count",
        )?;
        for (id, d) in deltas {
            upd.execute(rusqlite::params![
                id,
                d.count,
                d.last_used_at,
                d.last_used_ip
            ])?;
            for (dd, n) in &d.per_day {
                day.execute(rusqlite::params![id, dd, n])?;
            }
        }
    }
    tx.commit()?;
    Ok(())
}

/// Per-day request counts of one key, oldest first.
pub fn usage_by_day(conn: &Connection, id: &str) -> StoreResult<Vec<(String, u64)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT day, count FROM api_key_usage_daily WHERE key_id = ?1 ORDER BY day",
    )?;
    let rows = stmt.query_map([id], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}
