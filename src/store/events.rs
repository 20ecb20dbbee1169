//! Event rows: insert, get, delete, filtered pages, totals, statistics and export iteration.
//!
//! Every page query walks an index in `ts` order and stops after `limit` rows; totals come from
//! the `event_totals` counters when the filter allows it, otherwise from a count over the same
//! index range.

use super::{is_fk_violation, json_col, StoreError, StoreResult};
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Row};
use std::collections::BTreeMap;

/// One `events` row.
#[derive(Debug, Clone, Default)]
pub struct EventRow {
    pub id: String,
    pub camera_id: String,
    pub ts: i64,
    pub detection_type: String,
    pub confidence: u8,
    pub description: Option<String>,
    pub description_pending: bool,
    pub objects_detected: Vec<String>,
    /// JSON array of `{x, y, width, height, label, score}` boxes, kept as raw JSON.
    pub bounding_boxes: serde_json::Value,
    /// Path of the snapshot relative to the data dir.
    pub thumbnail_path: Option<String>,
    pub thumbnail_bytes: u64,
    /// Path of the event's MP4 clip relative to the data dir, once it is complete.
    pub clip_path: Option<String>,
    pub clip_bytes: u64,
    pub clip_duration_ms: Option<u64>,
    /// How far into the clip the event was noticed.
    pub clip_offset_ms: Option<u64>,
    pub source_type: String,
    pub protect_event_id: Option<String>,
    pub smart_detection_type: Option<String>,
    pub is_doorbell_ring: bool,
    pub provider_used: Option<String>,
    pub ai_fallback_used: bool,
    pub ai_error: Option<String>,
    pub ai_confidence: Option<u8>,
    pub threat_level: Option<String>,
    pub ai_cost_usd: Option<f64>,
    pub reanalysis_count: u32,
    pub reanalyzed_at: Option<i64>,
    pub created_at: i64,
}

const COLUMNS: &str = "id, camera_id, ts, detection_type, confidence, description, \
    description_pending, objects_detected, bounding_boxes, thumbnail_path, thumbnail_bytes, \
    source_type, protect_event_id, smart_detection_type, is_doorbell_ring, provider_used, \
    ai_fallback_used, ai_error, ai_confidence, threat_level, ai_cost_usd, reanalysis_count, \
    reanalyzed_at, created_at, clip_path, clip_bytes, clip_duration_ms, clip_offset_ms";

fn from_row(r: &Row<'_>) -> StoreResult<EventRow> {
    let objects: String = r.get(7)?;
    let boxes: String = r.get(8)?;
    Ok(EventRow {
        id: r.get(0)?,
        camera_id: r.get(1)?,
        ts: r.get(2)?,
        detection_type: r.get(3)?,
        confidence: r.get(4)?,
        description: r.get(5)?,
        description_pending: r.get(6)?,
        objects_detected: json_col(&objects)?,
        bounding_boxes: json_col(&boxes)?,
        thumbnail_path: r.get(9)?,
        thumbnail_bytes: r.get(10)?,
        source_type: r.get(11)?,
        protect_event_id: r.get(12)?,
        smart_detection_type: r.get(13)?,
        is_doorbell_ring: r.get(14)?,
        provider_used: r.get(15)?,
        ai_fallback_used: r.get(16)?,
        ai_error: r.get(17)?,
        ai_confidence: r.get(18)?,
        threat_level: r.get(19)?,
        ai_cost_usd: r.get(20)?,
        reanalysis_count: r.get(21)?,
        reanalyzed_at: r.get(22)?,
        created_at: r.get(23)?,
        clip_path: r.get(24)?,
        clip_bytes: r.get(25)?,
        clip_duration_ms: r.get(26)?,
        clip_offset_ms: r.get(27)?,
    })
}

pub fn insert(conn: &Connection, e: &EventRow) -> StoreResult<()> {
    let sql = format!(
        "INSERT INTO events ({COLUMNS}) VALUES \
         (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, \
          ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28)"
    );
    let objects = serde_json::to_string(&e.objects_detected)?;
    let boxes = serde_json::to_string(&e.bounding_boxes)?;
    let res = conn.prepare_cached(&sql)?.execute(rusqlite::params![
        e.id,
        e.camera_id,
        e.ts,
        e.detection_type,
        e.confidence,
        e.description,
        e.description_pending,
        objects,
        boxes,
        e.thumbnail_path,
        e.thumbnail_bytes,
        e.source_type,
        e.protect_event_id,
        e.smart_detection_type,
        e.is_doorbell_ring,
        e.provider_used,
        e.ai_fallback_used,
        e.ai_error,
        e.ai_confidence,
        e.threat_level,
        e.ai_cost_usd,
        e.reanalysis_count,
        e.reanalyzed_at,
        e.created_at,
        e.clip_path,
        e.clip_bytes,
        e.clip_duration_ms,
        e.clip_offset_ms,
    ]);
    match res {
        Ok(_) => Ok(()),
        Err(err) if is_fk_violation(&err) => Err(StoreError::NotFound("Camera")),
        Err(err) if super::is_unique_violation(&err) => Err(StoreError::Conflict(
            "An event with this id already exists".into(),
        )),
        Err(err) => Err(err.into()),
    }
}

pub fn get(conn: &Connection, id: &str) -> StoreResult<EventRow> {
    let sql = format!("SELECT {COLUMNS} FROM events WHERE id = ?1");
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query([id])?;
    match rows.next()? {
        Some(r) => from_row(r),
        None => Err(StoreError::NotFound("Event")),
    }
}

/// Replaces an event's detection figures and snapshot size when a better frame of its object
/// arrives. Returns false when the event no longer exists.
pub fn update_detection(
    conn: &Connection,
    id: &str,
    confidence: u8,
    bounding_boxes: &serde_json::Value,
    thumbnail_bytes: u64,
) -> StoreResult<bool> {
    let n = conn
        .prepare_cached(
            "UPDATE events SET confidence = ?2, bounding_boxes = ?3, thumbnail_bytes = ?4 \
             WHERE id = ?1",
        )?
        .execute(rusqlite::params![
            id,
            confidence,
            serde_json::to_string(bounding_boxes)?,
            thumbnail_bytes
        ])?;
    Ok(n == 1)
}

/// The snapshot path of the newest event that has one.
pub fn latest_thumbnail(conn: &Connection) -> StoreResult<Option<String>> {
    Ok(conn
        .prepare_cached(
            "SELECT thumbnail_path FROM events WHERE thumbnail_path IS NOT NULL \
             ORDER BY ts DESC LIMIT 1",
        )?
        .query_row([], |r| r.get(0))
        .optional()?)
}

/// Deletes one event; returns its snapshot and clip paths (to remove after commit).
pub fn delete(conn: &Connection, id: &str) -> StoreResult<Vec<String>> {
    let mut stmt = conn
        .prepare_cached("DELETE FROM events WHERE id = ?1 RETURNING thumbnail_path, clip_path")?;
    let mut rows = stmt.query([id])?;
    match rows.next()? {
        Some(r) => Ok([r.get::<_, Option<String>>(0)?, r.get(1)?]
            .into_iter()
            .flatten()
            .collect()),
        None => Err(StoreError::NotFound("Event")),
    }
}

/// Names an event's finished clip; `false` when the event is gone.
pub fn set_clip(
    conn: &Connection,
    id: &str,
    path: &str,
    bytes: u64,
    duration_ms: u64,
    offset_ms: Option<u64>,
) -> StoreResult<bool> {
    let n = conn
        .prepare_cached(
            "UPDATE events SET clip_path = ?2, clip_bytes = ?3, clip_duration_ms = ?4, \
             clip_offset_ms = ?5 WHERE id = ?1",
        )?
        .execute(rusqlite::params![id, path, bytes, duration_ms, offset_ms])?;
    Ok(n > 0)
}

/// Forgets an event's clip (its file is missing); returns whether the row named one.
pub fn clear_clip(conn: &Connection, id: &str) -> StoreResult<bool> {
    let n = conn
        .prepare_cached(
            "UPDATE events SET clip_path = NULL, clip_bytes = 0, clip_duration_ms = NULL \
             WHERE id = ?1 AND clip_path IS NOT NULL",
        )?
        .execute([id])?;
    Ok(n > 0)
}

/// Filters shared by the event list, the CSV export and the statistics.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub camera_id: Option<String>,
    pub detection_types: Vec<String>,
    pub start_ms: Option<i64>,
    pub end_ms: Option<i64>,
    pub min_confidence: Option<u8>,
    pub search: Option<String>,
}

/// Turns free user text into a safe FTS5 query: every word quoted and prefix-matched, all
/// words required. User text never reaches FTS5's query syntax.
pub fn fts_query(text: &str) -> Option<String> {
    let terms: Vec<String> = text
        .split(|c: char| !c.is_alphanumeric() && c != '\'')
        .filter(|w| !w.is_empty())
        .take(16)
        .map(|w| format!("\"{}\"*", w.replace('"', "")))
        .collect();
    (!terms.is_empty()).then(|| terms.join(" AND "))
}

impl EventFilter {
    fn where_clause(&self, params: &mut Vec<Value>) -> String {
        self.conditions(params, false, false)
    }

    /// The WHERE clause; with `counter_fields_only`, just the camera and type conditions, which
    /// the `event_totals` table can answer. With `ordered_walk`, the confidence and full-text
    /// conditions are written so SQLite cannot drive the query from them (a unary `+`), and it
    /// walks the time index instead, stopping after a page.
    fn conditions(
        &self,
        params: &mut Vec<Value>,
        counter_fields_only: bool,
        ordered_walk: bool,
    ) -> String {
        let plus = if ordered_walk { "+" } else { "" };
        let mut parts: Vec<String> = Vec::new();
        if let Some(c) = &self.camera_id {
            params.push(Value::Text(c.clone()));
            parts.push(format!("camera_id = ?{}", params.len()));
        }
        if !self.detection_types.is_empty() {
            let mut marks = Vec::new();
            for t in &self.detection_types {
                params.push(Value::Text(t.clone()));
                marks.push(format!("?{}", params.len()));
            }
            parts.push(format!("detection_type IN ({})", marks.join(", ")));
        }
        if counter_fields_only {
            return join_where(parts);
        }
        if let Some(s) = self.start_ms {
            params.push(Value::Integer(s));
            parts.push(format!("ts >= ?{}", params.len()));
        }
        if let Some(e) = self.end_ms {
            params.push(Value::Integer(e));
            parts.push(format!("ts <= ?{}", params.len()));
        }
        if let Some(m) = self.min_confidence {
            params.push(Value::Integer(m as i64));
            parts.push(format!("{plus}confidence >= ?{}", params.len()));
        }
        if let Some(q) = self.search.as_deref().and_then(fts_query) {
            params.push(Value::Text(q));
            parts.push(format!(
                "{plus}rowid IN (SELECT rowid FROM events_fts WHERE events_fts MATCH ?{})",
                params.len()
            ));
        }
        join_where(parts)
    }

    /// True when the total can come from the `event_totals` counters.
    fn counters_suffice(&self) -> bool {
        self.start_ms.is_none()
            && self.end_ms.is_none()
            && self.min_confidence.is_none()
            && self.search.as_deref().and_then(fts_query).is_none()
    }
}

fn join_where(parts: Vec<String>) -> String {
    if parts.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", parts.join(" AND "))
    }
}

/// Above this many matches, a page walks the time index and filters, instead of collecting
/// every match through the confidence or full-text index and sorting them: either way the
/// work stays near `limit * total_events / matches` or `matches`, whichever is smaller.
const WALK_THRESHOLD: u64 = 2000;

/// One page of events, newest first, and the total number matching.
pub fn page(
    conn: &Connection,
    filter: &EventFilter,
    limit: u32,
    offset: u64,
) -> StoreResult<(Vec<EventRow>, u64)> {
    let total = count(conn, filter)?;
    if offset >= total {
        return Ok((Vec::new(), total));
    }
    let mut params = Vec::new();
    let wh = filter.conditions(&mut params, false, total > WALK_THRESHOLD);
    let sql = format!(
        "SELECT {COLUMNS} FROM events {wh} ORDER BY ts DESC, rowid DESC LIMIT {limit} OFFSET {offset}"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query(rusqlite::params_from_iter(params))?;
    let mut out = Vec::with_capacity(limit as usize);
    while let Some(r) = rows.next()? {
        out.push(from_row(r)?);
    }
    Ok((out, total))
}

/// Number of events matching the filter.
pub fn count(conn: &Connection, filter: &EventFilter) -> StoreResult<u64> {
    if filter.counters_suffice() {
        let mut params = Vec::new();
        let wh = filter.conditions(&mut params, true, false);
        let sql = format!("SELECT COALESCE(SUM(n), 0) FROM event_totals {wh}");
        let n: i64 = conn
            .prepare_cached(&sql)?
            .query_row(rusqlite::params_from_iter(params), |r| r.get(0))?;
        return Ok(n.max(0) as u64);
    }
    let fts = filter.search.as_deref().and_then(fts_query);
    let search_only = filter.camera_id.is_none()
        && filter.detection_types.is_empty()
        && filter.start_ms.is_none()
        && filter.end_ms.is_none()
        && filter.min_confidence.is_none();
    if let (Some(q), true) = (&fts, search_only) {
        let n: i64 = conn
            .prepare_cached("SELECT count(*) FROM events_fts WHERE events_fts MATCH ?1")?
            .query_row([q], |r| r.get(0))?;
        return Ok(n as u64);
    }
    let mut params = Vec::new();
    let wh = filter.where_clause(&mut params);
    let sql = format!("SELECT count(*) FROM events {wh}");
    let n: i64 = conn
        .prepare_cached(&sql)?
        .query_row(rusqlite::params_from_iter(params), |r| r.get(0))?;
    Ok(n as u64)
}

/// Calls `f` for every matching event, newest first, without loading them all at once.
pub fn for_each(
    conn: &Connection,
    filter: &EventFilter,
    mut f: impl FnMut(EventRow) -> bool,
) -> StoreResult<()> {
    let mut params = Vec::new();
    let wh = filter.where_clause(&mut params);
    let sql = format!("SELECT {COLUMNS} FROM events {wh} ORDER BY ts DESC, rowid DESC");
    let mut stmt = conn.prepare(&sql)?;
    let mut rows = stmt.query(rusqlite::params_from_iter(params))?;
    while let Some(r) = rows.next()? {
        if !f(from_row(r)?) {
            break;
        }
    }
    Ok(())
}

/// Event counts over a time range, grouped four ways.
#[derive(Debug, Default, Clone)]
pub struct Stats {
    pub total: u64,
    pub by_camera: BTreeMap<String, u64>,
    pub by_detection_type: BTreeMap<String, u64>,
    /// Index = hour of day (UTC, shifted by the caller's offset).
    pub by_hour: [u64; 24],
    /// `YYYY-MM-DD` (in the caller's offset) → count.
    pub by_day: BTreeMap<String, u64>,
}

/// Width of an `event_buckets` bucket.
pub const BUCKET_MS: i64 = 900_000;

/// Computes statistics for `[start_ms, end_ms]` (inclusive) and an optional camera. Whole
/// 15-minute buckets come from `event_buckets`; only the partial buckets at the two edges are
/// counted from the events themselves, so the cost does not grow with the number of events.
/// `tz_offset_min` (a multiple of 15) shifts hours and days into the viewer's local time.
pub fn stats(
    conn: &Connection,
    camera_id: Option<&str>,
    start_ms: i64,
    end_ms: i64,
    tz_offset_min: i32,
) -> StoreResult<Stats> {
    let off_ms = tz_offset_min as i64 * 60_000;
    let mut s = Stats::default();
    let mut days: BTreeMap<i64, u64> = BTreeMap::new();
    let mut add_time = |s: &mut Stats, ts_ms: i64, n: u64| {
        let local = ts_ms + off_ms;
        s.total += n;
        s.by_hour[(local.div_euclid(3_600_000)).rem_euclid(24) as usize] += n;
        *days.entry(local.div_euclid(86_400_000)).or_default() += n;
    };
    // Whole buckets inside the range.
    let first_full =
        start_ms.div_euclid(BUCKET_MS) + i64::from(start_ms.rem_euclid(BUCKET_MS) != 0);
    let last_full = (end_ms + 1).div_euclid(BUCKET_MS) - 1;
    let mut edges: Vec<(i64, i64)> = Vec::new();
    if first_full <= last_full {
        // Three small aggregations in SQL; Rust only sees per-bucket, per-camera and per-type
        // sums.
        let p = rusqlite::params![first_full, last_full, camera_id];
        const RANGE: &str =
            "FROM event_buckets WHERE bucket BETWEEN ?1 AND ?2 AND (?3 IS NULL OR camera_id = ?3)";
        let mut stmt =
            conn.prepare_cached(&format!("SELECT bucket, SUM(n) {RANGE} GROUP BY bucket"))?;
        let mut rows = stmt.query(p)?;
        while let Some(r) = rows.next()? {
            let b: i64 = r.get(0)?;
            let n: i64 = r.get(1)?;
            add_time(&mut s, b * BUCKET_MS, n.max(0) as u64);
        }
        for (col, which) in [("camera_id", 0), ("detection_type", 1)] {
            let mut stmt =
                conn.prepare_cached(&format!("SELECT {col}, SUM(n) {RANGE} GROUP BY {col}"))?;
            let mut rows = stmt.query(p)?;
            while let Some(r) = rows.next()? {
                let key: String = r.get(0)?;
                let n: i64 = r.get(1)?;
                let map = if which == 0 {
                    &mut s.by_camera
                } else {
                    &mut s.by_detection_type
                };
                *map.entry(key).or_default() += n.max(0) as u64;
            }
        }
        if start_ms < first_full * BUCKET_MS {
            edges.push((start_ms, first_full * BUCKET_MS - 1));
        }
        if (last_full + 1) * BUCKET_MS <= end_ms {
            edges.push(((last_full + 1) * BUCKET_MS, end_ms));
        }
    } else {
        edges.push((start_ms, end_ms));
    }
    // Partial buckets: at most 15 minutes of events at each edge.
    let mut stmt = conn.prepare_cached(
        "SELECT camera_id, detection_type, ts FROM events \
         WHERE ts BETWEEN ?1 AND ?2 AND (?3 IS NULL OR camera_id = ?3)",
    )?;
    for (a, b) in edges {
        let mut rows = stmt.query(rusqlite::params![a, b, camera_id])?;
        while let Some(r) = rows.next()? {
            *s.by_camera.entry(r.get(0)?).or_default() += 1;
            *s.by_detection_type.entry(r.get(1)?).or_default() += 1;
            add_time(&mut s, r.get(2)?, 1);
        }
    }
    s.by_day = days
        .into_iter()
        .map(|(d, n)| (crate::clock::utc_day(d * 86_400_000), n))
        .collect();
    Ok(s)
}

/// Total event count and thumbnail bytes, per camera, from the counters.
pub fn totals_by_camera(conn: &Connection) -> StoreResult<BTreeMap<String, (u64, u64)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT camera_id, SUM(n), SUM(thumbnail_bytes) FROM event_totals GROUP BY camera_id",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            (
                r.get::<_, i64>(1)?.max(0) as u64,
                r.get::<_, i64>(2)?.max(0) as u64,
            ),
        ))
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Oldest and newest event time, through the `ts` index.
pub fn time_span(conn: &Connection) -> StoreResult<(Option<i64>, Option<i64>)> {
    Ok(
        conn.query_row("SELECT min(ts), max(ts) FROM events", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?,
    )
}

/// The SQL a page of `filter` runs, for query-plan checks.
#[cfg(test)]
fn page_sql(filter: &EventFilter) -> (String, String, Vec<Value>) {
    let mut params = Vec::new();
    let wh = filter.where_clause(&mut params);
    (
        format!("SELECT {COLUMNS} FROM events {wh} ORDER BY ts DESC, rowid DESC LIMIT 20 OFFSET 0"),
        format!("SELECT count(*) FROM events {wh}"),
        params,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(conn: &Connection, sql: &str, params: &[Value]) -> String {
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let rows = stmt
            .query_map(rusqlite::params_from_iter(params.iter()), |r| {
                r.get::<_, String>(3)
            })
            .unwrap();
        rows.map(|r| r.unwrap()).collect::<Vec<_>>().join(" | ")
    }

    /// No page of events, and no total, is served by reading the whole table: every filter
    /// combination walks an index (or the full-text index), and pages stop after `limit` rows.
    #[test]
    fn pages_and_totals_never_scan_the_table() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(&dir.path().join("t.db")).unwrap();
        let cam = Some("c".to_string());
        let filters = [
            EventFilter::default(),
            EventFilter {
                camera_id: cam.clone(),
                ..Default::default()
            },
            EventFilter {
                detection_types: vec!["person".into()],
                ..Default::default()
            },
            EventFilter {
                start_ms: Some(1),
                end_ms: Some(2),
                ..Default::default()
            },
            EventFilter {
                camera_id: cam.clone(),
                start_ms: Some(1),
                ..Default::default()
            },
            EventFilter {
                min_confidence: Some(80),
                ..Default::default()
            },
            EventFilter {
                search: Some("red car".into()),
                ..Default::default()
            },
            EventFilter {
                camera_id: cam,
                detection_types: vec!["person".into(), "vehicle".into()],
                start_ms: Some(1),
                end_ms: Some(2),
                min_confidence: Some(50),
                search: Some("door".into()),
            },
        ];
        store
            .read_blocking(|c| {
                for f in &filters {
                    let (page, count, params) = page_sql(f);
                    for sql in [&page, &count] {
                        let p = plan(c, sql, &params);
                        for part in p.split(" | ") {
                            let bare_scan =
                                part.starts_with("SCAN events") && !part.contains("INDEX");
                            assert!(!bare_scan, "{f:?}: full table scan in plan {p}");
                        }
                    }
                    // The page itself is read in index order: no sort of all matches.
                    let p = plan(c, &page, &params);
                    if f.search.is_none() && f.min_confidence.is_none() {
                        assert!(
                            !p.contains("TEMP B-TREE FOR ORDER BY"),
                            "{f:?}: sorts all matches: {p}"
                        );
                    }
                }
                Ok(())
            })
            .unwrap();
    }

    /// Bucketed statistics equal a count over the rows for ranges that start and end anywhere,
    /// including inside buckets, and after deletions.
    #[test]
    fn bucketed_stats_match_a_plain_count() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(&dir.path().join("t.db")).unwrap();
        let base = 1_700_000_000_000i64;
        let mut rows = Vec::new();
        store
            .write_blocking(|c| {
                c.execute_batch(
                    "INSERT INTO cameras(id, name, type, created_at, updated_at) \
                     VALUES ('a', 'A', 'file', 0, 0), ('b', 'B', 'file', 0, 0)",
                )?;
                // Pseudo-random times over 3 days.
                let mut x: i64 = 12345;
                for i in 0..600 {
                    x = (x * 1_103_515_245 + 12_345) % 2_147_483_648;
                    let ts = base + x % (3 * 86_400_000);
                    let e = EventRow {
                        id: format!("e{i}"),
                        camera_id: if i % 3 == 0 { "b" } else { "a" }.into(),
                        ts,
                        detection_type: ["person", "vehicle", "animal"]
                            [i % 3 % 2 + (i % 5 == 0) as usize]
                            .into(),
                        bounding_boxes: serde_json::json!([]),
                        source_type: "api".into(),
                        ..Default::default()
                    };
                    insert(c, &e)?;
                    rows.push(e);
                }
                for e in rows.iter().filter(|e| e.id.ends_with('7')) {
                    delete(c, &e.id)?;
                }
                Ok(())
            })
            .unwrap();
        rows.retain(|e| !e.id.ends_with('7'));
        let ranges = [
            (base, base + 3 * 86_400_000, 0),
            (base + 123_456, base + 86_400_000 + 7_777, 60),
            (base + 1000, base + 500_000, -330),
            (base + 900_000 * 7, base + 900_000 * 20 - 1, 0),
            (base + 3_600_000 * 30 + 1, base + 3_600_000 * 50 - 1, 345),
        ];
        for (start, end, tz) in ranges {
            for cam in [None, Some("a")] {
                let got = store
                    .read_blocking(|c| stats(c, cam, start, end, tz))
                    .unwrap();
                let mut want = Stats::default();
                for e in rows.iter().filter(|e| {
                    e.ts >= start && e.ts <= end && cam.is_none_or(|c| c == e.camera_id)
                }) {
                    let local = e.ts + tz as i64 * 60_000;
                    want.total += 1;
                    *want.by_camera.entry(e.camera_id.clone()).or_default() += 1;
                    *want
                        .by_detection_type
                        .entry(e.detection_type.clone())
                        .or_default() += 1;
                    want.by_hour[(local.div_euclid(3_600_000)).rem_euclid(24) as usize] += 1;
                    *want.by_day.entry(crate::clock::utc_day(local)).or_default() += 1;
                }
                assert!(want.total > 0);
                assert_eq!(got.total, want.total, "{start} {end} {tz} {cam:?}");
                assert_eq!(got.by_camera, want.by_camera);
                assert_eq!(got.by_detection_type, want.by_detection_type);
                assert_eq!(got.by_hour, want.by_hour);
                assert_eq!(got.by_day, want.by_day);
            }
        }
    }

    #[test]
    fn fts_query_quotes_every_word() {
        assert_eq!(fts_query("red car"), Some("\"red\"* AND \"car\"*".into()));
        assert_eq!(
            fts_query("\"OR NEAR("),
            Some("\"OR\"* AND \"NEAR\"*".into())
        );
        assert_eq!(fts_query("  ** "), None);
    }
}
