//! Storage benchmark: sustained event inserts through the real write path, and pruning at
//! 1,000,000 events.
//!
//!     cargo bench --bench store
//!
//! Inserts: 8 tasks (8 cameras' worth of load) call `Events::record` back to back, each
//! event with a snapshot of `SNAPSHOT_BYTES` (default 4096; written atomically: temp file,
//! fsync, rename, directory fsync; 0 = rows only), for `BENCH_SECS` (default 5) per mode. The modes compare the writer's `synchronous` setting
//! (FULL, as shipped, against NORMAL) and the group commit (as shipped) against one commit per
//! event (the snapshot written the same way, the row through `Store::write`). `MODE=0..3` runs
//! one of them.
//!
//! Pruning: a database of `PRUNE_EVENTS` (default 1,000,000) events on 8 cameras over 30 days
//! is built in one transaction; then 20 batches of the oldest `retention::BATCH` (with their
//! snapshot files)
//! are deleted the way the pruner does, timing each batch's write transaction (the time the
//! writer is held) and the whole batch including the file removal. Data goes to `BENCH_DIR`
//! (default: the system temp dir); run it on the filesystem you care about.

use argus::app::{AppState, Deps};
use argus::config::Config;
use argus::store::events::EventRow;
use argus::store::retention::{delete_batch, event_count, Select};
use argus::store::{Durability, Store};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const CAMERAS: usize = 8;

fn bench_dir() -> tempfile::TempDir {
    match std::env::var_os("BENCH_DIR") {
        Some(d) => tempfile::tempdir_in(d).unwrap(),
        None => tempfile::tempdir().unwrap(),
    }
}

fn camera_row(i: usize) -> argus::store::cameras::CameraRow {
    argus::store::cameras::CameraRow {
        id: format!("00000000-0000-4000-8000-{i:012}"),
        name: format!("Camera {i}"),
        camera_type: argus::model::CameraType::Rtsp,
        rtsp_url: Some("rtsp://127.0.0.1:1/stream".into()),
        username: None,
        password_sealed: None,
        device_index: None,
        device_path: None,
        file_path: None,
        rtsp_transport: "tcp".into(),
        frame_rate: 5,
        is_enabled: false,
        motion_enabled: true,
        motion_sensitivity: argus::model::Sensitivity::Medium,
        motion_cooldown: 10,
        detection_zones: vec![],
        detection_schedule: None,
        object_filter: vec!["person".into()],
        prompt_override: None,
        protect_controller_id: None,
        protect_camera_id: None,
        smart_detection_types: vec![],
        is_doorbell: false,
        record_clips: true,
        created_at: 0,
        updated_at: 0,
    }
}

fn event(camera: usize, ts: i64) -> EventRow {
    EventRow {
        id: argus::crypto::new_uuid(),
        camera_id: camera_row(camera).id,
        ts,
        detection_type: "person".into(),
        confidence: 80,
        objects_detected: vec!["person".into()],
        bounding_boxes: serde_json::json!([{"x": 0.1, "y": 0.2, "width": 0.3, "height": 0.4, "label": "person", "score": 0.8}]),
        source_type: "rtsp".into(),
        created_at: ts,
        ..Default::default()
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Commit {
    Group,
    PerEvent,
}

/// Events per second and latency percentiles (ms) for one mode.
fn inserts(
    rt: &tokio::runtime::Runtime,
    durability: Durability,
    commit: Commit,
) -> (f64, f64, f64) {
    let dir = bench_dir();
    let cfg = Config::for_data_dir(&dir.path().join("data"));
    let state = AppState::start(cfg, Deps::default()).unwrap();
    state.store.set_durability(durability).unwrap();
    state
        .store
        .write_blocking(|c| {
            for i in 0..CAMERAS {
                argus::store::cameras::insert(c, &camera_row(i))?;
            }
            Ok(())
        })
        .unwrap();
    let secs = std::env::var("BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let stop = Arc::new(AtomicBool::new(false));
    let snapshot: usize = std::env::var("SNAPSHOT_BYTES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4096);
    let jpeg: Option<Vec<u8>> = (snapshot > 0).then(|| {
        let mut j = vec![0xFF, 0xD8, 0xFF, 0xE0];
        j.resize(snapshot.max(4), 7);
        j
    });
    let started = Instant::now();
    let lat = rt.block_on(async {
        let mut tasks = Vec::new();
        for cam in 0..CAMERAS {
            let (state, stop, jpeg) = (state.clone(), stop.clone(), jpeg.clone());
            tasks.push(tokio::spawn(async move {
                let mut lat = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    let row = event(cam, argus::clock::Clock::now_ms(&*state.clock));
                    match commit {
                        Commit::Group => {
                            state.events.record(row, jpeg.clone()).await.unwrap();
                        }
                        Commit::PerEvent => per_event(&state, row, jpeg.clone()).await,
                    }
                    lat.push(t.elapsed().as_secs_f64() * 1000.0);
                }
                lat
            }));
        }
        tokio::time::sleep(Duration::from_secs(secs)).await;
        stop.store(true, Ordering::Relaxed);
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        all
    });
    let elapsed = started.elapsed().as_secs_f64();
    let (commits, grouped) = state.store.group_commit_stats();
    if commits > 0 {
        eprintln!(
            "  ({grouped} events in {commits} group commits: {:.1} per commit)",
            grouped as f64 / commits as f64
        );
    }
    let stored = state.store.read_blocking(event_count).unwrap();
    assert_eq!(stored as usize, lat.len());
    let mut lat = lat;
    lat.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| lat[((lat.len() - 1) as f64 * p) as usize];
    (lat.len() as f64 / elapsed, pct(0.5), pct(0.99))
}

/// The write path without the group commit: the same snapshot write, one commit per row.
async fn per_event(state: &Arc<AppState>, mut row: EventRow, jpeg: Option<Vec<u8>>) {
    if let Some(jpeg) = jpeg {
        let rel = format!(
            "thumbnails/{}/{}.jpg",
            argus::clock::utc_day(row.ts),
            row.id
        );
        let abs = state.cfg.data_dir.join(&rel);
        row.thumbnail_bytes = jpeg.len() as u64;
        tokio::task::spawn_blocking(move || argus::fsutil::write_atomic(&abs, &jpeg))
            .await
            .unwrap()
            .unwrap();
        row.thumbnail_path = Some(rel);
    }
    state
        .store
        .write(move |c| argus::store::events::insert(c, &row))
        .await
        .unwrap();
}

fn prune_at_scale() {
    let n: usize = std::env::var("PRUNE_EVENTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let dir = bench_dir();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let store = Store::open(&data.join("argus.db")).unwrap();
    let t0: i64 = 1_760_000_000_000;
    let span = 30 * 86_400_000i64;
    let batch = argus::retention::BATCH;
    let with_files = 20 * batch as usize;
    let start = Instant::now();
    let mut files = Vec::new();
    store
        .write_blocking(|c| {
            let tx = c.transaction()?;
            for i in 0..CAMERAS {
                argus::store::cameras::insert(&tx, &camera_row(i))?;
            }
            for i in 0..n {
                let ts = t0 + (i as i64) * span / n as i64;
                let mut e = event(i % CAMERAS, ts);
                let rel = format!("thumbnails/{}/{}.jpg", argus::clock::utc_day(ts), e.id);
                if i < with_files {
                    files.push(rel.clone());
                }
                e.thumbnail_path = Some(rel);
                e.thumbnail_bytes = 30_000;
                argus::store::events::insert(&tx, &e)?;
            }
            tx.commit()?;
            Ok(())
        })
        .unwrap();
    let build = start.elapsed();
    for rel in &files {
        let p = data.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, [0u8; 1024]).unwrap();
    }
    let db_mib = store.size_bytes() as f64 / (1 << 20) as f64;
    println!(
        "prune: built {n} events in {:.1} s (database {db_mib:.0} MiB)",
        build.as_secs_f64()
    );
    let mut held = Vec::new();
    let mut whole = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        let b = store
            .write_blocking(|c| {
                delete_batch(
                    c,
                    &Select::Before {
                        before_ms: i64::MAX,
                    },
                    batch,
                )
            })
            .unwrap();
        assert_eq!(b.events, u64::from(batch));
        for f in &b.files {
            std::fs::remove_file(data.join(f)).unwrap();
        }
        whole.push(t.elapsed().as_secs_f64() * 1000.0);
        held.push(b.held.as_secs_f64() * 1000.0);
    }
    // The age path: one camera's events before a cut-off (its own index range).
    let t = Instant::now();
    let b = store
        .write_blocking(|c| {
            delete_batch(
                c,
                &Select::CameraBefore {
                    camera_id: camera_row(3).id,
                    before_ms: t0 + span / 2,
                },
                batch,
            )
        })
        .unwrap();
    let age_ms = t.elapsed().as_secs_f64() * 1000.0;
    assert_eq!(b.events, u64::from(batch));
    let left = store.read_blocking(event_count).unwrap();
    assert_eq!(left as usize, n - 21 * batch as usize);
    let stat = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        (v[v.len() / 2], v[v.len() - 1])
    };
    let (h50, hmax) = stat(&mut held);
    let (w50, wmax) = stat(&mut whole);
    println!(
        "prune: batch of {batch} oldest at {n} events: write lock held median {h50:.1} ms, max {hmax:.1} ms; \
         with file removal median {w50:.1} ms, max {wmax:.1} ms; one camera's {batch} by age {age_ms:.1} ms"
    );
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .max_blocking_threads(32)
        .enable_all()
        .build()
        .unwrap();
    if std::env::var("PRUNE_ONLY").is_err() {
        println!(
            "{:<36} {:>10} {:>9} {:>9}",
            "inserts, 8 cameras", "events/s", "p50 ms", "p99 ms"
        );
        // MODE=0..3 runs one mode (separate processes keep one mode's writeback out of the
        // next one's figures; scripts can alternate the order).
        let only: Option<usize> = std::env::var("MODE").ok().and_then(|m| m.parse().ok());
        for (i, (name, d, c)) in [
            (
                "synchronous=FULL, group commit",
                Durability::Full,
                Commit::Group,
            ),
            (
                "synchronous=FULL, commit per event",
                Durability::Full,
                Commit::PerEvent,
            ),
            (
                "synchronous=NORMAL, group commit",
                Durability::Normal,
                Commit::Group,
            ),
            (
                "synchronous=NORMAL, commit per event",
                Durability::Normal,
                Commit::PerEvent,
            ),
        ]
        .into_iter()
        .enumerate()
        {
            if only.is_some_and(|m| m != i) {
                continue;
            }
            let (rate, p50, p99) = inserts(&rt, d, c);
            println!("{name:<36} {rate:>10.0} {p50:>9.2} {p99:>9.2}");
        }
    }
    if std::env::var("INSERTS_ONLY").is_err() {
        prune_at_scale();
    }
}
