//! Storage retention and the file/row consistency of the data dir: the policy (maximum age,
//! per-camera ages, maximum storage, free-disk floor), the pruner that enforces it, the
//! admission check `Events::record` makes before writing a snapshot, the filesystem probe tests
//! replace, and the consistency pass (start-up sweep and `argus db check`).
//!
//! Pruning deletes the oldest events in batches of at most [`BATCH`] rows, one short write transaction
//! each, and removes their snapshot files after the commit; it yields between batches so event
//! writes interleave. It runs at start-up, every hour, when settings change, and at once when a
//! write would cross the size limit or the free-disk floor. Below the floor the appliance keeps
//! storing event rows but no snapshots, reports `low_disk` in `/system/health` and
//! `/system/storage`, and prunes until free space is back above the floor plus a margin.

use crate::clock::Clock;
use crate::settings::{CameraRetention, Settings};
use crate::store::retention::{self as sql, Media, Select};
use crate::store::{Store, StoreResult};
use std::collections::{BTreeMap, HashSet};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

/// Events deleted per write transaction (a median 12.5 ms of writer time, at most about 40 ms,
/// at 1,000,000 events on the benchmark machine; README, "Storage and crash safety").
pub const BATCH: u32 = 250;
/// Time between scheduled pruning runs.
pub const INTERVAL: Duration = Duration::from_secs(3600);
/// The default free-disk floor: 256 MiB, or 5 % of the filesystem if that is smaller.
pub const DEFAULT_FLOOR_BYTES: u64 = 256 << 20;
/// `argus db check` beside a running appliance: files younger than this are never called
/// orphans or stale temp files, as their row may be on its way (a snapshot is written before
/// its row). The start-up sweep runs before anything is written and uses no grace.
pub const GRACE: Duration = Duration::from_secs(60);
const DAY_MS: i64 = 86_400_000;

/// Free and total bytes of a filesystem.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskSpace {
    pub free: u64,
    pub total: u64,
}

/// Asks how much room the filesystem holding a path has. Tests replace it (`Deps::fs_probe`).
pub trait FsProbe: Send + Sync + 'static {
    fn space(&self, path: &Path) -> Option<DiskSpace>;
}

/// The real probe: `statvfs(3)`; free = blocks available to unprivileged users.
#[derive(Debug, Default, Clone, Copy)]
pub struct Statvfs;

impl FsProbe for Statvfs {
    fn space(&self, path: &Path) -> Option<DiskSpace> {
        use std::os::unix::ffi::OsStrExt;
        let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
        let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
        // SAFETY: `c` is a valid NUL-terminated path and `st` a properly sized out-parameter.
        if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
            return None;
        }
        let frsize = st.f_frsize as u64;
        Some(DiskSpace {
            free: st.f_bavail as u64 * frsize,
            total: st.f_blocks as u64 * frsize,
        })
    }
}

/// A simulated filesystem of `size` bytes that holds only the probed directory: free space is
/// `size` minus the bytes of every file under it. For tests of the free-disk floor: deleting
/// snapshots really frees simulated space.
#[derive(Debug)]
pub struct SimulatedDisk {
    size: AtomicU64,
}

impl SimulatedDisk {
    pub fn new(size: u64) -> Self {
        SimulatedDisk {
            size: AtomicU64::new(size),
        }
    }
    pub fn set_size(&self, size: u64) {
        self.size.store(size, Ordering::SeqCst);
    }
}

/// Bytes of all files under `dir`.
pub fn du(dir: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    rd.flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => du(&e.path()),
            Ok(_) => e.metadata().map(|m| m.len()).unwrap_or(0),
            Err(_) => 0,
        })
        .sum()
}

impl FsProbe for SimulatedDisk {
    fn space(&self, path: &Path) -> Option<DiskSpace> {
        let size = self.size.load(Ordering::SeqCst);
        Some(DiskSpace {
            free: size.saturating_sub(du(path)),
            total: size,
        })
    }
}

/// The retention part of the settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub retention_days: u32,
    pub camera_retention: BTreeMap<String, CameraRetention>,
    pub max_storage_bytes: Option<u64>,
    pub min_free_disk_bytes: Option<u64>,
}

impl From<&Settings> for Policy {
    fn from(s: &Settings) -> Self {
        Policy {
            retention_days: s.retention_days,
            camera_retention: s.camera_retention.clone(),
            max_storage_bytes: s.max_storage_bytes,
            min_free_disk_bytes: s.min_free_disk_bytes,
        }
    }
}

/// The limits in force on a filesystem of `total` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_storage_bytes: u64,
    pub min_free_disk_bytes: u64,
}

impl Policy {
    /// Defaults: at most half the filesystem; a floor of 256 MiB or 5 %, whichever is smaller.
    pub fn limits(&self, total: u64) -> Limits {
        Limits {
            max_storage_bytes: self.max_storage_bytes.unwrap_or(total / 2),
            min_free_disk_bytes: self
                .min_free_disk_bytes
                .unwrap_or(DEFAULT_FLOOR_BYTES.min(total / 20)),
        }
    }

    /// The age limit of a camera's events in days (0 = none).
    pub fn days_for(&self, camera_id: &str) -> u32 {
        self.camera_retention
            .get(camera_id)
            .map(|r| r.retention_days)
            .unwrap_or(self.retention_days)
    }
}

/// Why a pruning run started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    Start,
    Schedule,
    Settings,
    /// A write crossed the size limit or the free-disk floor.
    Limit,
    /// `DELETE /events/cleanup`.
    Cleanup,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Start => "start",
            Trigger::Schedule => "schedule",
            Trigger::Settings => "settings",
            Trigger::Limit => "limit",
            Trigger::Cleanup => "cleanup",
        }
    }
}

/// What one pruning run did.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub trigger: &'static str,
    pub started_at_ms: i64,
    pub finished_at_ms: i64,
    pub events_deleted: u64,
    pub by_age: u64,
    pub by_size: u64,
    pub by_low_disk: u64,
    pub thumbnails_deleted: u64,
    /// Bytes of snapshot files removed.
    pub bytes_freed: u64,
    pub batches: u64,
    /// The longest write transaction of the run.
    pub max_batch_ms: f64,
    pub duration_ms: f64,
    pub error: Option<String>,
}

/// The outcome of comparing the thumbnail tree with the rows.
#[derive(Debug, Clone, Default)]
pub struct Consistency {
    pub checked_at_ms: i64,
    pub files_checked: u64,
    pub rows_checked: u64,
    /// Snapshot files no event refers to (removed by the start-up sweep).
    pub orphans: Vec<String>,
    /// Leftover temp files of interrupted writes (removed by the start-up sweep).
    pub temp_files: Vec<String>,
    /// Events whose snapshot file is missing (reported, never changed): the first 100.
    pub missing: Vec<String>,
    pub missing_count: u64,
}

impl Consistency {
    pub fn problems(&self) -> u64 {
        (self.orphans.len() + self.temp_files.len()) as u64 + self.missing_count
    }
}

/// The pruner's running count of the bytes held against the size limit, so a write can tell
/// at once that it crossed the limit without measuring the database. Rows added between
/// measurements are not counted (a few KiB of pages against a snapshot each); the next run,
/// hourly at the latest, measures them.
#[derive(Debug, Default, Clone, Copy)]
struct Usage {
    /// Database pages in use + snapshot bytes, at the last measurement.
    measured: u64,
    /// Snapshot bytes committed since that measurement began.
    since: u64,
}

impl Usage {
    fn total(&self) -> u64 {
        self.measured.saturating_add(self.since)
    }
}

/// Retention state shared by the pruner, `Events::record` and the handlers.
pub struct Retention {
    probe: std::sync::Arc<dyn FsProbe>,
    data_dir: PathBuf,
    policy: Mutex<Policy>,
    /// Bytes counted against the size limit (see [`Usage`]).
    usage: Mutex<Usage>,
    low_disk: AtomicBool,
    wake: tokio::sync::Notify,
    wake_reason: Mutex<Trigger>,
    /// One run at a time (scheduled, triggered or a cleanup request).
    running: tokio::sync::Mutex<()>,
    last: Mutex<Option<Report>>,
    runs: AtomicU64,
    consistency: Mutex<Option<Consistency>>,
}

/// The figures `/system/storage` and `/system/health` show.
#[derive(Debug, Clone)]
pub struct Status {
    pub space: Option<DiskSpace>,
    pub limits: Option<Limits>,
    pub low_disk: bool,
}

impl Retention {
    pub fn new(probe: std::sync::Arc<dyn FsProbe>, data_dir: PathBuf) -> Self {
        Retention {
            probe,
            data_dir,
            policy: Mutex::new(Policy::from(&Settings::default())),
            usage: Mutex::new(Usage::default()),
            low_disk: AtomicBool::new(false),
            wake: tokio::sync::Notify::new(),
            wake_reason: Mutex::new(Trigger::Limit),
            running: tokio::sync::Mutex::new(()),
            last: Mutex::new(None),
            runs: AtomicU64::new(0),
            consistency: Mutex::new(None),
        }
    }

    pub fn policy(&self) -> Policy {
        self.policy
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Takes new settings and runs the pruner at once.
    pub fn set_settings(&self, s: &Settings, run_now: bool) {
        *self.policy.lock().unwrap_or_else(|e| e.into_inner()) = Policy::from(s);
        if run_now {
            self.wake(Trigger::Settings);
        }
    }

    /// Asks the pruner task for a run now.
    pub fn wake(&self, why: Trigger) {
        *self.wake_reason.lock().unwrap_or_else(|e| e.into_inner()) = why;
        self.wake.notify_one();
    }

    /// Waits for a wake-up; returns its reason.
    pub async fn woken(&self) -> Trigger {
        self.wake.notified().await;
        *self.wake_reason.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Probes the disk and updates the low-disk state.
    pub fn status(&self) -> Status {
        let space = self.probe.space(&self.data_dir);
        let limits = space.map(|s| self.policy().limits(s.total));
        let low = match (space, limits) {
            (Some(s), Some(l)) => s.free < l.min_free_disk_bytes,
            _ => false,
        };
        self.low_disk.store(low, Ordering::SeqCst);
        Status {
            space,
            limits,
            low_disk: low,
        }
    }

    pub fn low_disk(&self) -> bool {
        self.low_disk.load(Ordering::SeqCst)
    }

    /// Decides whether a snapshot of `bytes` may be written now: not when it would take free
    /// space below the floor (the pruner is woken and the event is stored without it).
    pub fn admit(&self, bytes: u64) -> bool {
        let Some(space) = self.probe.space(&self.data_dir) else {
            return true;
        };
        let limits = self.policy().limits(space.total);
        if space.free < limits.min_free_disk_bytes.saturating_add(bytes) {
            if !self.low_disk.swap(true, Ordering::SeqCst) {
                tracing::warn!(
                    free_bytes = space.free,
                    floor_bytes = limits.min_free_disk_bytes,
                    "storage: low_disk; events are stored without snapshots until pruning frees space"
                );
            }
            self.wake(Trigger::Limit);
            return false;
        }
        self.low_disk.store(false, Ordering::SeqCst);
        true
    }

    /// Counts a stored snapshot against the size limit (after its row is committed) and wakes
    /// the pruner when the usage crosses the limit.
    pub fn wrote(&self, bytes: u64) {
        let used = {
            let mut u = self.usage.lock().unwrap_or_else(|e| e.into_inner());
            u.since = u.since.saturating_add(bytes);
            u.total()
        };
        self.wake_if_over(used);
    }

    fn wake_if_over(&self, used: u64) {
        if let Some(space) = self.probe.space(&self.data_dir) {
            if used > self.policy().limits(space.total).max_storage_bytes {
                self.wake(Trigger::Limit);
            }
        }
    }

    /// Re-measures the usage (after a run). The snapshots counted before the read are in the
    /// measurement; those counted while it runs stay counted on top of it, so a write racing
    /// with the read is at worst counted twice (a run that finds nothing to do), never lost
    /// (a missed run). If such writes already cross the limit, the pruner is woken again.
    async fn remeasure(&self, store: &Store) {
        let mark = self.usage.lock().unwrap_or_else(|e| e.into_inner()).since;
        let Ok(measured) = store.read(sql::usage).await else {
            return;
        };
        self.measured(mark, measured.total());
    }

    /// Takes a measurement of `total` bytes that began when `mark` bytes had been counted since
    /// the last one, and wakes the pruner if the snapshots counted meanwhile cross the limit.
    fn measured(&self, mark: u64, total: u64) {
        let used = {
            let mut u = self.usage.lock().unwrap_or_else(|e| e.into_inner());
            u.measured = total;
            u.since = u.since.saturating_sub(mark);
            (u.since > 0).then(|| u.total())
        };
        if let Some(used) = used {
            self.wake_if_over(used);
        }
    }

    pub fn last_run(&self) -> Option<Report> {
        self.last.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// True while a pruning run (or a cleanup) is deleting.
    pub fn is_running(&self) -> bool {
        self.running.try_lock().is_err()
    }

    /// Number of finished runs since start-up.
    pub fn runs(&self) -> u64 {
        self.runs.load(Ordering::SeqCst)
    }

    pub fn consistency(&self) -> Option<Consistency> {
        self.consistency
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn set_consistency(&self, c: Consistency) {
        *self.consistency.lock().unwrap_or_else(|e| e.into_inner()) = Some(c);
    }

    /// One pruning run: events past their camera's age, then the oldest events while storage
    /// is over the limit (down to 90 % of it), then the oldest while free space is under the
    /// floor (up to the floor plus 10 %).
    pub async fn prune(&self, store: &Store, clock: &dyn Clock, trigger: Trigger) -> Report {
        let _one = self.running.lock().await;
        let started = Instant::now();
        let mut rep = Report {
            trigger: trigger.as_str(),
            started_at_ms: clock.now_ms(),
            ..Default::default()
        };
        if let Err(e) = self.prune_inner(store, clock.now_ms(), &mut rep).await {
            tracing::warn!(error = %e, "pruning stopped early; the next run continues");
            rep.error = Some(e.to_string());
        }
        self.remeasure(store).await;
        self.status();
        self.finish(rep, clock, started)
    }

    fn finish(&self, mut rep: Report, clock: &dyn Clock, started: Instant) -> Report {
        rep.finished_at_ms = clock.now_ms();
        rep.duration_ms = started.elapsed().as_secs_f64() * 1000.0;
        if rep.events_deleted > 0 || rep.error.is_some() {
            tracing::info!(
                trigger = rep.trigger,
                events = rep.events_deleted,
                by_age = rep.by_age,
                by_size = rep.by_size,
                by_low_disk = rep.by_low_disk,
                bytes_freed = rep.bytes_freed,
                max_batch_ms = rep.max_batch_ms,
                "pruned events"
            );
        }
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Some(rep.clone());
        self.runs.fetch_add(1, Ordering::SeqCst);
        rep
    }

    async fn prune_inner(&self, store: &Store, now: i64, rep: &mut Report) -> StoreResult<()> {
        let policy = self.policy();
        // 1. Age, camera by camera (each walks its own (camera_id, ts) index range).
        let cameras = store.read(sql::cameras_with_events).await?;
        for cam in cameras {
            let days = policy.days_for(&cam);
            if days == 0 {
                continue;
            }
            let before = now - i64::from(days) * DAY_MS;
            loop {
                let sel = Select::CameraBefore {
                    camera_id: cam.clone(),
                    before_ms: before,
                };
                let n = self.batch(store, rep, sel, BATCH).await?;
                rep.by_age += n;
                if n < u64::from(BATCH) {
                    break;
                }
            }
        }
        let Some(space) = self.probe.space(&self.data_dir) else {
            return Ok(());
        };
        let limits = policy.limits(space.total);
        // 2. Size: oldest first, down to 90 % of the limit so the next writes do not start
        // another run at once. Each batch deletes about as many events as the excess needs
        // (by the average bytes per event), at most `BATCH`.
        let mut usage = store.read(sql::usage).await?;
        if usage.total() > limits.max_storage_bytes {
            let target = limits.max_storage_bytes / 10 * 9;
            while usage.total() > target {
                let count = store.read(sql::event_count).await?;
                let n = self
                    .oldest_batch(
                        store,
                        rep,
                        batch_for(usage.total() - target, usage.total(), count),
                    )
                    .await?;
                rep.by_size += n;
                if n == 0 {
                    break;
                }
                usage = store.read(sql::usage).await?;
            }
        }
        // 3. Free-disk floor: oldest first until the snapshot files removed cover the shortfall
        // up to the floor plus a margin, then look again (deleted rows free database pages
        // for reuse, not disk space).
        let floor = limits.min_free_disk_bytes;
        let target = floor.saturating_add((floor / 10).max(1 << 20));
        let mut space = self.probe.space(&self.data_dir).unwrap_or(space);
        while space.free < floor {
            let need = target - space.free.min(target);
            let before = rep.bytes_freed;
            let mut deleted = 0;
            while rep.bytes_freed - before < need {
                let u = store.read(sql::usage).await?;
                let count = store.read(sql::event_count).await?;
                let left = need - (rep.bytes_freed - before);
                let n = self
                    .oldest_batch(store, rep, batch_for(left, u.file_bytes(), count))
                    .await?;
                rep.by_low_disk += n;
                deleted += n;
                if n == 0 {
                    break;
                }
            }
            let again = self.probe.space(&self.data_dir).unwrap_or(space);
            if deleted == 0 || again.free <= space.free {
                if again.free < floor {
                    tracing::warn!(
                        free_bytes = again.free,
                        floor_bytes = floor,
                        "storage: low_disk and pruning cannot free more space"
                    );
                }
                break;
            }
            space = again;
        }
        Ok(())
    }

    async fn oldest_batch(&self, store: &Store, rep: &mut Report, limit: u32) -> StoreResult<u64> {
        let sel = Select::Before {
            before_ms: i64::MAX,
        };
        self.batch(store, rep, sel, limit).await
    }

    /// Runs one delete batch on the writer, removes its files, yields; returns rows deleted.
    async fn batch(
        &self,
        store: &Store,
        rep: &mut Report,
        sel: Select,
        limit: u32,
    ) -> StoreResult<u64> {
        let b = store
            .write(move |conn| sql::delete_batch(conn, &sel, limit))
            .await?;
        rep.batches += 1;
        rep.events_deleted += b.events;
        rep.max_batch_ms = rep.max_batch_ms.max(b.held.as_secs_f64() * 1000.0);
        let (files, bytes) = remove_files(&self.data_dir, b.files).await;
        rep.thumbnails_deleted += files;
        rep.bytes_freed += bytes;
        tokio::task::yield_now().await;
        Ok(b.events)
    }

    /// `DELETE /events/cleanup`: every event before `before_ms`, in batches, as one run.
    pub async fn cleanup_before(&self, store: &Store, clock: &dyn Clock, before_ms: i64) -> Report {
        let _one = self.running.lock().await;
        let started = Instant::now();
        let mut rep = Report {
            trigger: Trigger::Cleanup.as_str(),
            started_at_ms: clock.now_ms(),
            ..Default::default()
        };
        loop {
            let r = self
                .batch(store, &mut rep, Select::Before { before_ms }, BATCH)
                .await;
            match r {
                Ok(n) if n < u64::from(BATCH) => break,
                Ok(_) => {}
                Err(e) => {
                    rep.error = Some(e.to_string());
                    break;
                }
            }
        }
        self.remeasure(store).await;
        self.status();
        self.finish(rep, clock, started)
    }
}

/// How many of the oldest events to delete to free about `need` bytes when `count` events
/// hold `bytes`: the average rounded up, at least 1, at most [`BATCH`].
pub fn batch_for(need: u64, bytes: u64, count: u64) -> u32 {
    if count == 0 || bytes == 0 {
        return BATCH;
    }
    let avg = (bytes / count).max(1);
    need.div_ceil(avg).clamp(1, u64::from(BATCH)) as u32
}

/// Removes snapshot files (relative to the data dir); returns how many and their bytes.
async fn remove_files(data_dir: &Path, rel: Vec<String>) -> (u64, u64) {
    if rel.is_empty() {
        return (0, 0);
    }
    let dir = data_dir.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let (mut n, mut bytes) = (0, 0);
        for p in rel {
            let abs = dir.join(&p);
            let len = std::fs::metadata(&abs).map(|m| m.len()).unwrap_or(0);
            match std::fs::remove_file(&abs) {
                Ok(()) => {
                    n += 1;
                    bytes += len;
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => tracing::warn!(file = %p, error = %e, "could not remove snapshot"),
            }
        }
        (n, bytes)
    })
    .await
    .unwrap_or((0, 0))
}

/// Compares `<data_dir>/thumbnails` and `<data_dir>/clips` with the rows, one day directory
/// at a time (the layout is `thumbnails/YYYY-MM-DD/<event id>.jpg` and
/// `clips/YYYY-MM-DD/<event id>.mp4`, the day of the event's time), so memory stays at one
/// day's paths. With `fix`, orphaned files and stale temp files are removed (and emptied
/// directories), and rows naming a clip that is missing forget it (a clip is optional;
/// `has_clip` must not lie); rows whose snapshot is missing are only reported. Files younger
/// than `grace` are left alone (see [`GRACE`]). Clips being written (`clips/.tmp`) are the
/// recorder's, and recovered at start-up before this runs.
pub fn check_files(
    store: &Store,
    data_dir: &Path,
    fix: bool,
    grace: Duration,
    now_ms: i64,
) -> StoreResult<Consistency> {
    let mut out = Consistency {
        checked_at_ms: now_ms,
        ..Default::default()
    };
    for (m, dir, ext) in [
        (Media::Thumbnail, "thumbnails", ".jpg"),
        (Media::Clip, "clips", ".mp4"),
    ] {
        check_tree(store, data_dir, m, dir, ext, fix, grace, &mut out)?;
    }
    Ok(out)
}

#[allow(clippy::too_many_arguments)]
fn check_tree(
    store: &Store,
    data_dir: &Path,
    m: Media,
    tree: &str,
    ext: &str,
    fix: bool,
    grace: Duration,
    out: &mut Consistency,
) -> StoreResult<()> {
    let root = data_dir.join(tree);
    let now = SystemTime::now();
    let old = |p: &Path| {
        std::fs::symlink_metadata(p)
            .and_then(|m| m.modified())
            .map(|t| now.duration_since(t).unwrap_or_default() >= grace)
            .unwrap_or(true)
    };
    let mut dirs: Vec<(String, PathBuf)> = std::fs::read_dir(&root)
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
                .filter_map(|e| Some((e.file_name().into_string().ok()?, e.path())))
                .filter(|(name, _)| !name.starts_with('.'))
                .collect()
        })
        .unwrap_or_default();
    dirs.sort();
    for (name, dir) in dirs {
        let known: HashSet<String> = match crate::clock::parse_time(&name) {
            Some(start) if name.len() == 10 => store
                .read_blocking(|c| sql::media_between(c, m, start, start + DAY_MS - 1))?
                .into_iter()
                .collect(),
            _ => HashSet::new(),
        };
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut remaining = 0;
        for e in rd.flatten() {
            let file = e.file_name().to_string_lossy().into_owned();
            let rel = format!("{tree}/{name}/{file}");
            let path = e.path();
            out.files_checked += 1;
            if file.starts_with('.') && file.ends_with(".tmp") {
                if old(&path) {
                    if fix {
                        let _ = std::fs::remove_file(&path);
                    }
                    out.temp_files.push(rel);
                } else {
                    remaining += 1;
                }
                continue;
            }
            let referenced = known.contains(&rel)
                || file.strip_suffix(ext).is_some_and(|id| {
                    matches!(store.read_blocking(|c| sql::media_of(c, m, id)), Ok(Some(Some(p))) if p == rel)
                });
            if referenced || !old(&path) {
                remaining += 1;
                continue;
            }
            if fix {
                let _ = std::fs::remove_file(&path);
            }
            out.orphans.push(rel);
        }
        if fix && remaining == 0 {
            let _ = std::fs::remove_dir(&dir);
        }
    }
    // Rows whose file is missing, oldest first: one directory listing at a time.
    let mut listed: Option<(PathBuf, HashSet<OsString>)> = None;
    let mut missing_ids = Vec::new();
    let mut rows = 0u64;
    store.read_blocking(|c| {
        sql::for_each_media(c, m, |id, rel| {
            rows += 1;
            let abs = data_dir.join(rel);
            let (Some(parent), Some(name)) = (abs.parent(), abs.file_name()) else {
                return;
            };
            if listed.as_ref().is_none_or(|(d, _)| d != parent) {
                let names = std::fs::read_dir(parent)
                    .map(|rd| rd.flatten().map(|e| e.file_name()).collect())
                    .unwrap_or_default();
                listed = Some((parent.to_path_buf(), names));
            }
            let present = listed
                .as_ref()
                .is_some_and(|(_, names)| names.contains(name));
            if !present && !abs.exists() {
                out.missing_count += 1;
                if out.missing.len() < 100 {
                    out.missing.push(rel.to_string());
                }
                if m == Media::Clip {
                    missing_ids.push(id.to_string());
                }
            }
        })
    })?;
    out.rows_checked += rows;
    if fix {
        for id in missing_ids {
            store.write_blocking(move |c| crate::store::events::clear_clip(c, &id))?;
        }
    }
    Ok(())
}

/// The start-up consistency pass: removes orphaned snapshots and leftover temp files, logs
/// what it found (rows whose file is missing are reported, not changed).
pub fn sweep_at_start(store: &Store, data_dir: &Path, now_ms: i64) -> StoreResult<Consistency> {
    let started = Instant::now();
    // Nothing is being written yet: every unreferenced file is an orphan, whatever its age.
    let c = check_files(store, data_dir, true, Duration::ZERO, now_ms)?;
    if c.problems() > 0 {
        tracing::warn!(
            orphans_removed = c.orphans.len(),
            temp_files_removed = c.temp_files.len(),
            rows_missing_their_file = c.missing_count,
            "start-up consistency pass"
        );
    } else {
        tracing::info!(
            files = c.files_checked,
            rows = c.rows_checked,
            ms = started.elapsed().as_millis() as u64,
            "start-up consistency pass: snapshots and rows agree"
        );
    }
    Ok(c)
}

/// The pruner task: a run at start-up, then every [`INTERVAL`] and whenever woken, until
/// `stop` changes.
pub async fn run_pruner(
    retention: std::sync::Arc<Retention>,
    store: Store,
    clock: std::sync::Arc<dyn Clock>,
    settings: crate::settings::SettingsHandle,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    match settings.get().await {
        Ok(s) => retention.set_settings(&s, false),
        Err(e) => tracing::warn!(error = ?e, "cannot read settings; retention uses the defaults"),
    }
    let mut trigger = Trigger::Start;
    loop {
        retention.prune(&store, &*clock, trigger).await;
        trigger = tokio::select! {
            _ = tokio::time::sleep(INTERVAL) => Trigger::Schedule,
            why = retention.woken() => why,
            _ = stop.changed() => break,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_limits_follow_the_filesystem() {
        let p = Policy::from(&Settings::default());
        let gib = 1u64 << 30;
        let l = p.limits(100 * gib);
        assert_eq!(l.max_storage_bytes, 50 * gib);
        assert_eq!(l.min_free_disk_bytes, DEFAULT_FLOOR_BYTES);
        // On a 1 GiB card the floor is 5 %, not 256 MiB.
        assert_eq!(p.limits(gib).min_free_disk_bytes, gib / 20);
        let set = Policy {
            max_storage_bytes: Some(1 << 24),
            min_free_disk_bytes: Some(7),
            ..p.clone()
        };
        assert_eq!(
            set.limits(100 * gib),
            Limits {
                max_storage_bytes: 1 << 24,
                min_free_disk_bytes: 7
            }
        );
    }

    #[test]
    fn camera_overrides_win() {
        let mut s = Settings::default();
        s.camera_retention
            .insert("x".into(), CameraRetention { retention_days: 0 });
        let p = Policy::from(&s);
        assert_eq!(p.days_for("x"), 0);
        assert_eq!(p.days_for("y"), 30);
    }

    #[test]
    fn batch_size_matches_the_shortfall() {
        assert_eq!(batch_for(1, 1000, 10), 1);
        assert_eq!(batch_for(250, 1000, 10), 3);
        assert_eq!(batch_for(u64::MAX / 2, 1000, 10), BATCH);
        assert_eq!(batch_for(10, 0, 0), BATCH);
    }

    #[test]
    fn simulated_disk_counts_the_files_under_the_directory() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("a/b")).unwrap();
        std::fs::write(d.path().join("a/b/f"), vec![0u8; 300]).unwrap();
        std::fs::write(d.path().join("g"), vec![0u8; 200]).unwrap();
        let disk = SimulatedDisk::new(10_000);
        assert_eq!(
            disk.space(d.path()),
            Some(DiskSpace {
                free: 9_500,
                total: 10_000
            })
        );
        let real = Statvfs.space(d.path()).unwrap();
        assert!(real.total >= real.free && real.total > 0);
    }

    #[tokio::test]
    async fn a_snapshot_counted_during_a_measurement_is_kept() {
        let d = tempfile::tempdir().unwrap();
        let r = Retention::new(
            std::sync::Arc::new(SimulatedDisk::new(1 << 30)),
            d.path().into(),
        );
        let settings = Settings {
            max_storage_bytes: Some(1_000),
            ..Settings::default()
        };
        r.set_settings(&settings, false);
        let counted = |r: &Retention| r.usage.lock().unwrap().total();
        let woken = |r: &Retention| {
            let n = r.wake.notified();
            futures_util::FutureExt::now_or_never(n).is_some()
        };
        r.wrote(300); // committed before the measurement reads
        let mark = r.usage.lock().unwrap().since;
        r.wrote(400); // committed after the read: not in `total`
        assert!(!woken(&r), "700 of 1000 bytes");
        r.measured(mark, 650);
        assert_eq!(counted(&r), 1_050, "the racing write is still counted");
        assert!(
            woken(&r),
            "and it crossed the limit, so the pruner runs again"
        );
        // A measurement with nothing counted meanwhile replaces the count and wakes no one,
        // even over the limit (a run that could not get below it must not spin).
        let mark = r.usage.lock().unwrap().since;
        r.measured(mark, 1_200);
        assert_eq!(counted(&r), 1_200);
        assert!(!woken(&r));
        r.wrote(1);
        assert!(woken(&r));
    }
}
