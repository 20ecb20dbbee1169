//! The SQL of retention and consistency: deleting the oldest events in bounded batches, the
//! figures the size limit needs, the thumbnail paths the consistency pass compares with the
//! files, SQLite's own checks, and the online backup.
//!
//! A batch is one `IMMEDIATE` transaction that deletes at most `limit` rows along an index and
//! returns their snapshot paths; the caller removes the files after the commit (a crash in
//! between leaves orphaned files, which the start-up sweep removes, never rows without files).

use super::StoreResult;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior};
use std::path::Path;
use std::time::{Duration, Instant};

/// Which events a batch deletes, oldest first.
#[derive(Debug, Clone)]
pub enum Select {
    /// One camera's events older than `before_ms` (walks `events_camera_ts`).
    CameraBefore { camera_id: String, before_ms: i64 },
    /// Any camera's events older than `before_ms` (walks `events_ts`); `i64::MAX` = the oldest.
    Before { before_ms: i64 },
}

/// What one batch removed.
#[derive(Debug, Default, Clone)]
pub struct Batch {
    pub events: u64,
    /// Snapshot paths (relative to the data dir) to remove now that the rows are gone.
    pub files: Vec<String>,
    /// Their sizes as recorded in the rows.
    pub thumbnail_bytes: u64,
    pub clip_bytes: u64,
    /// How long the write transaction ran (the writer connection is held this long).
    pub held: Duration,
}

/// Deletes up to `limit` of the oldest events matching `sel` in one write transaction.
pub fn delete_batch(conn: &mut Connection, sel: &Select, limit: u32) -> StoreResult<Batch> {
    let start = Instant::now();
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut out = Batch::default();
    {
        let (sql, params): (&str, Vec<rusqlite::types::Value>) = match sel {
            Select::CameraBefore {
                camera_id,
                before_ms,
            } => (
                "DELETE FROM events WHERE rowid IN (SELECT rowid FROM events \
                 WHERE camera_id = ?1 AND ts < ?2 ORDER BY ts LIMIT ?3) \
                 RETURNING thumbnail_path, thumbnail_bytes, clip_path, clip_bytes",
                vec![
                    camera_id.clone().into(),
                    (*before_ms).into(),
                    i64::from(limit).into(),
                ],
            ),
            Select::Before { before_ms } => (
                "DELETE FROM events WHERE rowid IN (SELECT rowid FROM events \
                 WHERE ts < ?1 ORDER BY ts LIMIT ?2) \
                 RETURNING thumbnail_path, thumbnail_bytes, clip_path, clip_bytes",
                vec![(*before_ms).into(), i64::from(limit).into()],
            ),
        };
        let mut stmt = tx.prepare_cached(sql)?;
        let mut rows = stmt.query(rusqlite::params_from_iter(params))?;
        while let Some(r) = rows.next()? {
            out.events += 1;
            if let Some(p) = r.get::<_, Option<String>>(0)? {
                out.files.push(p);
                out.thumbnail_bytes += r.get::<_, i64>(1)?.max(0) as u64;
            }
            if let Some(p) = r.get::<_, Option<String>>(2)? {
                out.files.push(p);
                out.clip_bytes += r.get::<_, i64>(3)?.max(0) as u64;
            }
        }
    }
    tx.commit()?;
    out.held = start.elapsed();
    Ok(out)
}

/// Bytes the size limit counts: snapshot and clip bytes (from the counters) and the database
/// pages in use (deleted rows free pages for reuse; the file itself does not shrink).
#[derive(Debug, Default, Clone, Copy)]
pub struct Usage {
    pub thumbnail_bytes: u64,
    pub clip_bytes: u64,
    pub database_used_bytes: u64,
}

impl Usage {
    pub fn total(&self) -> u64 {
        self.thumbnail_bytes + self.clip_bytes + self.database_used_bytes
    }

    /// The event files' bytes (what deleting events frees on disk).
    pub fn file_bytes(&self) -> u64 {
        self.thumbnail_bytes + self.clip_bytes
    }
}

pub fn usage(conn: &Connection) -> StoreResult<Usage> {
    let (thumbs, clips): (i64, i64) = conn
        .prepare_cached(
            "SELECT COALESCE(SUM(thumbnail_bytes), 0), COALESCE(SUM(clip_bytes), 0) FROM event_totals",
        )?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let pages: i64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
    let free: i64 = conn.query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
    let size: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
    Ok(Usage {
        thumbnail_bytes: thumbs.max(0) as u64,
        clip_bytes: clips.max(0) as u64,
        database_used_bytes: ((pages - free).max(0) * size) as u64,
    })
}

/// Cameras that have events (from the counters).
pub fn cameras_with_events(conn: &Connection) -> StoreResult<Vec<String>> {
    let mut stmt = conn.prepare_cached(
        "SELECT camera_id FROM event_totals GROUP BY camera_id HAVING SUM(n) > 0",
    )?;
    let rows = stmt.query_map([], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The files an event can have: its snapshot and its clip.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Media {
    Thumbnail,
    Clip,
}

impl Media {
    fn column(self) -> &'static str {
        match self {
            Media::Thumbnail => "thumbnail_path",
            Media::Clip => "clip_path",
        }
    }
}

/// File paths of this kind of the events in `[start_ms, end_ms]` (one day of the tree).
pub fn media_between(
    conn: &Connection,
    m: Media,
    start_ms: i64,
    end_ms: i64,
) -> StoreResult<Vec<String>> {
    let col = m.column();
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {col} FROM events WHERE ts BETWEEN ?1 AND ?2 AND {col} IS NOT NULL"
    ))?;
    let rows = stmt.query_map([start_ms, end_ms], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The path of this kind recorded for event `id`: `None` when there is no such event.
pub fn media_of(conn: &Connection, m: Media, id: &str) -> StoreResult<Option<Option<String>>> {
    let col = m.column();
    Ok(conn
        .prepare_cached(&format!("SELECT {col} FROM events WHERE id = ?1"))?
        .query_row([id], |r| r.get(0))
        .optional()?)
}

/// Calls `f(id, path)` for every event with a file of this kind, oldest first (rows of one
/// day arrive together, so the caller needs one directory listing at a time).
pub fn for_each_media(
    conn: &Connection,
    m: Media,
    mut f: impl FnMut(&str, &str),
) -> StoreResult<()> {
    let col = m.column();
    let mut stmt = conn.prepare(&format!(
        "SELECT id, {col} FROM events WHERE {col} IS NOT NULL ORDER BY ts"
    ))?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        let id: String = r.get(0)?;
        let path: String = r.get(1)?;
        f(&id, &path);
    }
    Ok(())
}

/// `PRAGMA integrity_check`: empty when the database is sound, else SQLite's messages.
pub fn integrity_check(conn: &Connection) -> StoreResult<Vec<String>> {
    let mut stmt = conn.prepare("PRAGMA integrity_check")?;
    let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
    let lines: Vec<String> = rows.collect::<rusqlite::Result<_>>()?;
    Ok(if lines == ["ok"] { Vec::new() } else { lines })
}

/// `PRAGMA foreign_key_check`: one line per row that points at nothing.
pub fn foreign_key_check(conn: &Connection) -> StoreResult<Vec<String>> {
    let mut stmt = conn.prepare("PRAGMA foreign_key_check")?;
    let rows = stmt.query_map([], |r| {
        Ok(format!(
            "{} row {} references a missing {} row",
            r.get::<_, String>(0)?,
            r.get::<_, Option<i64>>(1)?.unwrap_or(-1),
            r.get::<_, String>(2)?
        ))
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Number of events.
pub fn event_count(conn: &Connection) -> StoreResult<u64> {
    let n: i64 = conn
        .prepare_cached("SELECT COALESCE(SUM(n), 0) FROM event_totals")?
        .query_row([], |r| r.get(0))?;
    Ok(n.max(0) as u64)
}

/// Copies the database at `src` into a new file `dest` with SQLite's online backup API. The
/// copy is made in one step, that is from one read snapshot: in WAL mode this never blocks the
/// running server's writer, and the server's commits during the copy cannot restart it (they
/// would with small steps on a busy appliance). The copy is left in rollback-journal mode, so
/// it is one self-contained file.
pub fn backup(src: &Path, dest: &Path) -> StoreResult<()> {
    let from = Connection::open_with_flags(
        src,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    from.busy_timeout(Duration::from_secs(10))?;
    let mut to = Connection::open(dest)?;
    {
        let b = rusqlite::backup::Backup::new(&from, &mut to)?;
        loop {
            match b.step(-1)? {
                rusqlite::backup::StepResult::Done => break,
                // Busy or locked: another connection holds a lock we need; wait and retry.
                _ => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }
    to.query_row("PRAGMA journal_mode = DELETE", [], |_| Ok(()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::events::{insert, EventRow};
    use crate::store::Store;

    fn seeded(n: usize) -> (tempfile::TempDir, Store, Vec<EventRow>) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).unwrap();
        let mut rows = Vec::new();
        store
            .write_blocking(|c| {
                c.execute_batch(
                    "INSERT INTO cameras(id, name, type, created_at, updated_at) \
                     VALUES ('a', 'A', 'file', 0, 0), ('b', 'B', 'file', 0, 0)",
                )?;
                let mut x: i64 = 99;
                for i in 0..n {
                    x = (x * 1_103_515_245 + 12_345) % 2_147_483_648;
                    let e = EventRow {
                        id: format!("e{i}"),
                        camera_id: if i % 3 == 0 { "b" } else { "a" }.into(),
                        ts: 1_700_000_000_000 + x % 1_000_000_000,
                        detection_type: if i % 2 == 0 { "person" } else { "vehicle" }.into(),
                        bounding_boxes: serde_json::json!([]),
                        source_type: "api".into(),
                        thumbnail_path: (i % 4 != 0).then(|| format!("thumbnails/d/e{i}.jpg")),
                        thumbnail_bytes: if i % 4 != 0 { 100 } else { 0 },
                        ..Default::default()
                    };
                    insert(c, &e)?;
                    rows.push(e);
                }
                Ok(())
            })
            .unwrap();
        rows.sort_by_key(|e| e.ts);
        (dir, store, rows)
    }

    fn counters_match(store: &Store) {
        store
            .read_blocking(|c| {
                let rows: i64 = c.query_row("SELECT count(*) FROM events", [], |r| r.get(0))?;
                let bytes: i64 = c.query_row(
                    "SELECT COALESCE(SUM(thumbnail_bytes), 0) FROM events",
                    [],
                    |r| r.get(0),
                )?;
                assert_eq!(event_count(c)? as i64, rows);
                assert_eq!(usage(c)?.thumbnail_bytes as i64, bytes);
                let buckets: i64 =
                    c.query_row("SELECT COALESCE(SUM(n), 0) FROM event_buckets", [], |r| {
                        r.get(0)
                    })?;
                assert_eq!(buckets, rows);
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn batches_delete_the_oldest_first_and_keep_the_counters_right() {
        let (_d, store, rows) = seeded(1200);
        let b = store
            .write_blocking(|c| {
                delete_batch(
                    c,
                    &Select::Before {
                        before_ms: i64::MAX,
                    },
                    500,
                )
            })
            .unwrap();
        assert_eq!(b.events, 500);
        let deleted = &rows[..500];
        let mut want: Vec<String> = deleted
            .iter()
            .filter_map(|e| e.thumbnail_path.clone())
            .collect();
        let mut got = b.files.clone();
        want.sort();
        got.sort();
        assert_eq!(got, want);
        assert_eq!(b.thumbnail_bytes, 100 * want.len() as u64);
        // Everything older than the oldest survivor is gone, nothing newer.
        for (i, e) in rows.iter().enumerate() {
            let found = store
                .read_blocking(|c| Ok(media_of(c, Media::Thumbnail, &e.id)?.is_some()))
                .unwrap();
            assert_eq!(found, i >= 500, "{}", e.id);
        }
        counters_match(&store);

        // One camera, by age: only its rows before the cut-off.
        let cut = rows[900].ts;
        let b = store
            .write_blocking(|c| {
                delete_batch(
                    c,
                    &Select::CameraBefore {
                        camera_id: "a".into(),
                        before_ms: cut,
                    },
                    10_000,
                )
            })
            .unwrap();
        let want = rows[500..900].iter().filter(|e| e.camera_id == "a").count();
        assert_eq!(b.events as usize, want);
        let left_b = rows[500..].iter().filter(|e| e.camera_id == "b").count();
        let cams = store.read_blocking(cameras_with_events).unwrap();
        assert_eq!(cams, vec!["a".to_string(), "b".to_string()]);
        assert_eq!(
            store.read_blocking(event_count).unwrap() as usize,
            left_b + rows[900..].iter().filter(|e| e.camera_id == "a").count()
        );
        counters_match(&store);
        assert!(store.read_blocking(integrity_check).unwrap().is_empty());
        assert!(store.read_blocking(foreign_key_check).unwrap().is_empty());
    }

    #[test]
    fn backup_copies_a_consistent_database() {
        let (d, store, rows) = seeded(300);
        let copy = d.path().join("copy.db");
        backup(store.path(), &copy).unwrap();
        let c = Store::open_read_only(&copy).unwrap();
        assert!(c.read_blocking(integrity_check).unwrap().is_empty());
        assert_eq!(c.read_blocking(event_count).unwrap(), rows.len() as u64);
    }

    /// Concurrent inserts share commits; one bad event fails alone.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn group_commit_keeps_good_events_and_fails_bad_ones_alone() {
        let (_d, store, _) = seeded(0);
        let mut tasks = Vec::new();
        for i in 0..200 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let e = EventRow {
                    id: format!("g{i}"),
                    camera_id: if i % 50 == 7 { "nope" } else { "a" }.into(),
                    ts: 1_700_000_000_000 + i,
                    detection_type: "person".into(),
                    bounding_boxes: serde_json::json!([]),
                    source_type: "api".into(),
                    ..Default::default()
                };
                (i, store.insert_event(e).await)
            }));
        }
        let mut ok = 0;
        for t in tasks {
            let (i, r) = t.await.unwrap();
            if i % 50 == 7 {
                assert!(
                    matches!(r, Err(crate::store::StoreError::NotFound("Camera"))),
                    "{r:?}"
                );
            } else {
                assert_eq!(r.unwrap().as_deref(), Some("A"));
                ok += 1;
            }
        }
        assert_eq!(store.read_blocking(event_count).unwrap(), ok);
        counters_match(&store);
        let (commits, events) = store.group_commit_stats();
        assert_eq!(events, 200);
        assert!(commits <= events);
    }

    /// With 8 writers waiting on each other's fsyncs, commits carry several events each.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writers_share_commits() {
        let (_d, store, _) = seeded(0);
        let mut tasks = Vec::new();
        for w in 0..8i64 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..100 {
                    let e = EventRow {
                        id: format!("w{w}-{i}"),
                        camera_id: "a".into(),
                        ts: 1_700_000_000_000 + w * 1000 + i,
                        detection_type: "person".into(),
                        bounding_boxes: serde_json::json!([]),
                        source_type: "api".into(),
                        ..Default::default()
                    };
                    store.insert_event(e).await.unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let (commits, events) = store.group_commit_stats();
        assert_eq!(events, 800);
        eprintln!("800 events in {commits} commits");
        assert!(commits < 400, "{commits} commits for 800 events");
    }
}
