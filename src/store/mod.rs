//! All SQL lives here, behind [`Store`]. Nothing outside `store/` imports rusqlite.
//!
//! SQLite runs in WAL mode with foreign keys on and a busy timeout. Every call runs on a blocking
//! thread (never on a tokio worker): reads take a connection from a small pool (WAL lets readers
//! run beside the writer), writes go through the single writer connection, so writers never
//! fight over the lock and "database is locked" cannot reach a client. The schema is a list of
//! numbered migrations embedded in the binary (`migrations.rs`); a database written by a newer
//! version is refused with a clear message rather than being damaged.
//!
//! Durability: the writer runs with `synchronous = FULL`, so a commit returns only after the WAL
//! is on disk and an acknowledged write survives a power cut. Event inserts from many cameras
//! share commits ([`Store::insert_event`], a group commit): one flusher at a time commits every
//! queued insert in one transaction, and the inserts that arrive while it waits for its fsync go
//! together in the next, so one WAL fsync serves many events (README, "Storage and crash
//! safety", has the measurements behind this choice).

pub mod ai;
pub mod alerts;
pub mod api_keys;
pub mod cameras;
pub mod events;
mod migrations;
pub mod protect;
pub mod retention;
pub mod settings;
pub mod users;

use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use migrations::SCHEMA_VERSION;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Conflict(String),
    #[error("database busy: {0}")]
    Busy(rusqlite::Error),
    #[error("database error: {0}")]
    Sqlite(rusqlite::Error),
    #[error(
        "the database at {path} has schema version {found}, newer than this build of argus \
         supports ({supported}); run a newer argus or restore a backup"
    )]
    NewerSchema {
        path: String,
        found: i64,
        supported: i64,
    },
    #[error("cannot open the database at {path}: {source}")]
    Open {
        path: String,
        source: rusqlite::Error,
    },
    #[error("stored data is damaged: {0}")]
    Corrupt(String),
    #[error("database task failed: {0}")]
    Task(String),
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DatabaseBusy) | Some(rusqlite::ErrorCode::DatabaseLocked) => {
                StoreError::Busy(e)
            }
            _ if matches!(e, rusqlite::Error::QueryReturnedNoRows) => StoreError::NotFound("row"),
            _ => StoreError::Sqlite(e),
        }
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(e: serde_json::Error) -> Self {
        StoreError::Corrupt(format!("bad JSON in a column: {e}"))
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// True if the error is a UNIQUE or PRIMARY KEY violation.
pub(crate) fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(
        e,
        rusqlite::Error::SqliteFailure(f, _)
            if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
    )
}

/// True if the error is a FOREIGN KEY violation.
pub(crate) fn is_fk_violation(e: &rusqlite::Error) -> bool {
    matches!(
        e,
        rusqlite::Error::SqliteFailure(f, _)
            if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY
    )
}

/// An event waiting for the next group commit, and where its outcome goes.
type QueuedEvent = (
    events::EventRow,
    tokio::sync::oneshot::Sender<StoreResult<Option<String>>>,
);

/// Events waiting for the group commit, and whether a flusher is on its way to them.
#[derive(Default)]
struct EventQueue {
    items: Vec<QueuedEvent>,
    flushing: bool,
}

struct Inner {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
    event_queue: Mutex<EventQueue>,
    /// Group commits made and events they carried (for the benchmark and tests).
    group_commits: std::sync::atomic::AtomicU64,
    grouped_events: std::sync::atomic::AtomicU64,
}

/// How the writer connection syncs commits (`PRAGMA synchronous`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// `FULL` (the default): every commit is on disk when it returns.
    Full,
    /// `NORMAL`: consistent after a power cut, but the last commits may be lost. For
    /// benchmarks only.
    Normal,
}

/// Handle to the appliance database. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

const MAX_IDLE_READERS: usize = 8;

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(Duration::from_secs(5))?;
    // WAL: readers never block the writer. synchronous=FULL: a commit fsyncs the WAL before it
    // returns, so what the appliance acknowledged survives a power cut (NORMAL would keep the
    // database consistent but could lose the last commits). See the module comment.
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = FULL;
         PRAGMA foreign_keys = ON;
         PRAGMA temp_store = MEMORY;",
    )?;
    Ok(())
}

impl Store {
    /// Opens (creating if needed) `path` and brings its schema up to date.
    pub fn open(path: &Path) -> StoreResult<Store> {
        let open_err = |source| StoreError::Open {
            path: path.display().to_string(),
            source,
        };
        let mut conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(open_err)?;
        configure(&conn).map_err(open_err)?;
        migrations::upgrade(&mut conn, path)?;
        Ok(Store::with_writer(path, conn))
    }

    /// Opens an existing database read-only, without creating or migrating anything (for
    /// `argus db check`). Every write fails.
    pub fn open_read_only(path: &Path) -> StoreResult<Store> {
        let open_err = |source| StoreError::Open {
            path: path.display().to_string(),
            source,
        };
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(open_err)?;
        conn.busy_timeout(Duration::from_secs(10))
            .map_err(open_err)?;
        migrations::known_version(&conn, path)?;
        Ok(Store::with_writer(path, conn))
    }

    fn with_writer(path: &Path, conn: Connection) -> Store {
        Store {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                writer: Mutex::new(conn),
                readers: Mutex::new(Vec::new()),
                event_queue: Mutex::new(EventQueue::default()),
                group_commits: Default::default(),
                grouped_events: Default::default(),
            }),
        }
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    fn reader(&self) -> StoreResult<Connection> {
        if let Some(c) = self
            .inner
            .readers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop()
        {
            return Ok(c);
        }
        let conn = Connection::open_with_flags(
            &self.inner.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(Duration::from_secs(5))?;
        conn.execute_batch("PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY;")?;
        Ok(conn)
    }

    fn give_back(&self, conn: Connection) {
        let mut pool = self.inner.readers.lock().unwrap_or_else(|e| e.into_inner());
        if pool.len() < MAX_IDLE_READERS {
            pool.push(conn);
        }
    }

    /// Runs a read-only closure on a pooled connection, on a blocking thread.
    pub async fn read<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.read_blocking(f))
            .await
            .map_err(|e| StoreError::Task(e.to_string()))?
    }

    /// Runs a read-only closure on the calling thread (for blocking contexts only).
    pub fn read_blocking<T, F>(&self, f: F) -> StoreResult<T>
    where
        F: FnOnce(&Connection) -> StoreResult<T>,
    {
        let conn = self.reader()?;
        let out = f(&conn);
        self.give_back(conn);
        out
    }

    /// Runs a closure on the single writer connection, on a blocking thread.
    pub async fn write<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> StoreResult<T> + Send + 'static,
    {
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.write_blocking(f))
            .await
            .map_err(|e| StoreError::Task(e.to_string()))?
    }

    /// Runs a closure on the writer connection on the calling thread (blocking contexts only).
    pub fn write_blocking<T, F>(&self, f: F) -> StoreResult<T>
    where
        F: FnOnce(&mut Connection) -> StoreResult<T>,
    {
        let mut conn = self.inner.writer.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut conn)
    }

    /// Inserts an event through the group commit and returns its camera's name. The event is
    /// on disk when this returns `Ok`. A failing event (unknown camera, duplicate id) fails
    /// alone; the others of its commit are kept.
    pub async fn insert_event(&self, row: events::EventRow) -> StoreResult<Option<String>> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let start_flusher = {
            let mut q = self.queue();
            q.items.push((row, tx));
            !std::mem::replace(&mut q.flushing, true)
        };
        if start_flusher {
            let this = self.clone();
            tokio::task::spawn_blocking(move || this.flush_events());
        }
        rx.await
            .map_err(|_| StoreError::Task("the event writer went away".into()))?
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, EventQueue> {
        self.inner
            .event_queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// The one flusher: commits what is queued, then what was queued during that commit, and
    /// so on until the queue is empty. While one commit waits for its fsync the next events
    /// gather, so under load each commit carries many events.
    fn flush_events(&self) {
        // Should a commit panic (debug builds; release builds abort), the next insert starts a
        // new flusher.
        struct Done<'a>(&'a Store);
        impl Drop for Done<'_> {
            fn drop(&mut self) {
                if std::thread::panicking() {
                    self.0.queue().flushing = false;
                }
            }
        }
        let _done = Done(self);
        loop {
            let batch = {
                let mut q = self.queue();
                if q.items.is_empty() {
                    q.flushing = false;
                    return;
                }
                std::mem::take(&mut q.items)
            };
            self.commit_events(batch);
        }
    }

    /// Commits a batch of events in one transaction (each in its own savepoint) and sends each
    /// its outcome.
    fn commit_events(&self, batch: Vec<QueuedEvent>) {
        let mut conn = self.inner.writer.lock().unwrap_or_else(|e| e.into_inner());
        let res = (|| -> StoreResult<Vec<StoreResult<Option<String>>>> {
            let mut tx =
                conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let mut out = Vec::with_capacity(batch.len());
            for (row, _) in &batch {
                let sp = tx.savepoint()?;
                let r = events::insert(&sp, row)
                    .map(|()| cameras::get(&sp, &row.camera_id).ok().map(|c| c.name));
                if r.is_ok() {
                    sp.commit()?;
                } // else: dropping the savepoint rolls this event back.
                out.push(r);
            }
            tx.commit()?;
            Ok(out)
        })();
        match res {
            Ok(results) => {
                use std::sync::atomic::Ordering::Relaxed;
                self.inner.group_commits.fetch_add(1, Relaxed);
                self.inner
                    .grouped_events
                    .fetch_add(batch.len() as u64, Relaxed);
                for ((_, tx), r) in batch.into_iter().zip(results) {
                    let _ = tx.send(r);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, events = batch.len(), "could not commit events");
                let detail = e.to_string();
                for (_, tx) in batch {
                    let _ = tx.send(Err(StoreError::Task(format!("commit failed: {detail}"))));
                }
            }
        }
    }

    /// Group commits made since opening, and the events they carried.
    pub fn group_commit_stats(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        (
            self.inner.group_commits.load(Relaxed),
            self.inner.grouped_events.load(Relaxed),
        )
    }

    /// Sets the writer's durability (benchmarks compare the two).
    pub fn set_durability(&self, d: Durability) -> StoreResult<()> {
        let v = match d {
            Durability::Full => "FULL",
            Durability::Normal => "NORMAL",
        };
        self.write_blocking(|c| Ok(c.pragma_update(None, "synchronous", v)?))
    }

    /// Size in bytes of the database file plus its WAL.
    pub fn size_bytes(&self) -> u64 {
        let mut total = 0;
        for suffix in ["", "-wal", "-shm"] {
            let mut p = self.inner.path.clone().into_os_string();
            p.push(suffix);
            total += std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
        }
        total
    }

    /// A trivial query, for health checks.
    pub async fn ping(&self) -> bool {
        self.read(|c| Ok(c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))?))
            .await
            .is_ok()
    }
}

/// Reads a JSON text column into a value.
pub(crate) fn json_col<T: serde::de::DeserializeOwned>(s: &str) -> StoreResult<T> {
    Ok(serde_json::from_str(s)?)
}
