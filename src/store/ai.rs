//! Cloud AI bookkeeping: one usage row per provider call (success or failure), the totals the
//! cost caps and `/ai/usage` read, descriptions written back onto events, re-analysis history
//! and the cost-cap alerts already sent.

use super::StoreResult;
use rusqlite::{Connection, OptionalExtension};

/// One provider call.
#[derive(Debug, Clone, Default)]
pub struct UsageRow {
    pub ts: i64,
    pub provider: String,
    pub model: String,
    pub event_id: Option<String>,
    pub camera_id: Option<String>,
    /// `event`, `reanalyse`, `describe` or `refine`.
    pub purpose: String,
    pub tokens_in: u64,
    pub tokens_out: u64,
    pub cost_usd: f64,
    pub latency_ms: u64,
    /// `ok` or the failure kind.
    pub outcome: String,
    pub error: Option<String>,
}

pub fn insert_usage(conn: &Connection, rows: &[UsageRow]) -> StoreResult<()> {
    let mut st = conn.prepare_cached(
        "INSERT INTO ai_usage (ts, provider, model, event_id, camera_id, purpose, tokens_in, \
         tokens_out, cost_usd, latency_ms, outcome, error) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )?;
    for r in rows {
        st.execute(rusqlite::params![
            r.ts,
            r.provider,
            r.model,
            r.event_id,
            r.camera_id,
            r.purpose,
            r.tokens_in,
            r.tokens_out,
            r.cost_usd,
            r.latency_ms,
            r.outcome,
            r.error
        ])?;
    }
    Ok(())
}

/// Money spent since `since_ms` (inclusive).
pub fn cost_since(conn: &Connection, since_ms: i64) -> StoreResult<f64> {
    Ok(conn
        .prepare_cached("SELECT coalesce(sum(cost_usd), 0) FROM ai_usage WHERE ts >= ?1")?
        .query_row([since_ms], |r| r.get(0))?)
}

/// Totals of one provider (or of all, with `provider` "") over a time range.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Totals {
    pub calls: u64,
    pub ok: u64,
    pub tokens_in: u64,
    pub tokens_out: u64,
    pub cost_usd: f64,
    pub latency_ms_sum: u64,
}

/// Per-provider totals over `[start, end)`.
pub fn totals_by_provider(
    conn: &Connection,
    start: i64,
    end: i64,
) -> StoreResult<Vec<(String, Totals)>> {
    let mut st = conn.prepare_cached(
        "SELECT provider, count(*), sum(outcome = 'ok'), sum(tokens_in), sum(tokens_out), \
         sum(cost_usd), sum(latency_ms) FROM ai_usage WHERE ts >= ?1 AND ts < ?2 \
         GROUP BY provider ORDER BY provider",
    )?;
    let rows = st.query_map([start, end], |r| {
        Ok((
            r.get::<_, String>(0)?,
            Totals {
                calls: r.get::<_, i64>(1)? as u64,
                ok: r.get::<_, i64>(2)? as u64,
                tokens_in: r.get::<_, i64>(3)? as u64,
                tokens_out: r.get::<_, i64>(4)? as u64,
                cost_usd: r.get(5)?,
                latency_ms_sum: r.get::<_, i64>(6)? as u64,
            },
        ))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Calls and cost per UTC day over `[start, end)`: (`YYYY-MM-DD`, calls, cost).
pub fn by_day(conn: &Connection, start: i64, end: i64) -> StoreResult<Vec<(String, u64, f64)>> {
    let mut st = conn.prepare_cached(
        "SELECT date(ts / 1000, 'unixepoch') AS d, count(*), sum(cost_usd) FROM ai_usage \
         WHERE ts >= ?1 AND ts < ?2 GROUP BY d ORDER BY d",
    )?;
    let rows = st.query_map([start, end], |r| {
        Ok((r.get(0)?, r.get::<_, i64>(1)? as u64, r.get(2)?))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// What a description writes onto its event.
#[derive(Debug, Clone, Default)]
pub struct Description {
    pub description: Option<String>,
    pub ai_confidence: Option<u8>,
    pub threat_level: Option<String>,
    pub provider_used: Option<String>,
    pub ai_fallback_used: bool,
    pub ai_error: Option<String>,
    pub ai_cost_usd: Option<f64>,
    /// Add this much to what the event already cost.
    pub add_cost: bool,
}

/// Writes a description (or its failure) onto an event and clears `description_pending`.
/// Returns false when the event no longer exists.
pub fn set_description(conn: &Connection, id: &str, d: &Description) -> StoreResult<bool> {
    let n = conn
        .prepare_cached(
            "UPDATE events SET description = coalesce(?2, description), ai_confidence = \
             coalesce(?3, ai_confidence), threat_level = coalesce(?4, threat_level), \
             provider_used = coalesce(?5, provider_used), ai_fallback_used = ?6, ai_error = ?7, \
             ai_cost_usd = CASE WHEN ?9 THEN coalesce(ai_cost_usd, 0) + coalesce(?8, 0) \
             ELSE coalesce(?8, ai_cost_usd) END, description_pending = 0 WHERE id = ?1",
        )?
        .execute(rusqlite::params![
            id,
            d.description,
            d.ai_confidence,
            d.threat_level,
            d.provider_used,
            d.ai_fallback_used,
            d.ai_error,
            d.ai_cost_usd,
            d.add_cost
        ])?;
    Ok(n == 1)
}

/// Marks an event as waiting for a description.
pub fn set_pending(conn: &Connection, id: &str) -> StoreResult<bool> {
    Ok(conn
        .prepare_cached("UPDATE events SET description_pending = 1 WHERE id = ?1")?
        .execute([id])?
        == 1)
}

/// Re-analyses of an event since `since_ms`.
pub fn reanalyses_since(conn: &Connection, event_id: &str, since_ms: i64) -> StoreResult<u32> {
    Ok(conn
        .prepare_cached("SELECT count(*) FROM reanalyses WHERE event_id = ?1 AND ts >= ?2")?
        .query_row(rusqlite::params![event_id, since_ms], |r| r.get(0))?)
}

/// Records a re-analysis (and bumps the event's counter).
pub fn add_reanalysis(conn: &Connection, event_id: &str, ts: i64) -> StoreResult<()> {
    conn.prepare_cached("INSERT INTO reanalyses (event_id, ts) VALUES (?1, ?2)")?
        .execute(rusqlite::params![event_id, ts])?;
    conn.prepare_cached(
        "UPDATE events SET reanalysis_count = reanalysis_count + 1, reanalyzed_at = ?2 \
         WHERE id = ?1",
    )?
    .execute(rusqlite::params![event_id, ts])?;
    Ok(())
}

/// The highest cap-alert level already sent for a period (0 = none).
pub fn cap_alert_level(conn: &Connection, period: &str) -> StoreResult<u32> {
    Ok(conn
        .prepare_cached("SELECT level FROM ai_cap_alerts WHERE period = ?1")?
        .query_row([period], |r| r.get(0))
        .optional()?
        .unwrap_or(0))
}

pub fn set_cap_alert_level(conn: &Connection, period: &str, level: u32) -> StoreResult<()> {
    conn.prepare_cached(
        "INSERT INTO ai_cap_alerts (period, level) VALUES (?1, ?2) \
         ON CONFLICT(period) DO UPDATE SET level = max(level, excluded.level)",
    )?
    .execute(rusqlite::params![period, level])?;
    Ok(())
}

/// Recent descriptions (newest first), for prompt refinement.
pub fn recent_descriptions(conn: &Connection, limit: u32) -> StoreResult<Vec<String>> {
    let mut st = conn.prepare_cached(
        "SELECT description FROM events WHERE description IS NOT NULL AND description != '' \
         ORDER BY ts DESC LIMIT ?1",
    )?;
    let rows = st.query_map([limit], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}
