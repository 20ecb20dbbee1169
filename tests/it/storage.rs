//! Retention and crash safety: pruning by age (with the manual clock), by size and below the
//! free-disk floor (with a simulated filesystem), the start-up sweep, `DELETE /events/cleanup`,
//! `/system/storage`, `argus db check` and `argus db backup` while events are written.

use crate::cli::argus;
use crate::support::*;
use argus::clock::{format_rfc3339, Clock};
use argus::config::Config;
use argus::retention::SimulatedDisk;
use base64::Engine;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

const DAY: i64 = 86_400_000;
const MIB: u64 = 1 << 20;

/// A JPEG of exactly `size` bytes (the tiny one, padded after its end marker), base64.
fn jpeg_b64(size: usize) -> String {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut bytes = b64.decode(TINY_JPEG_B64).unwrap();
    bytes.resize(size.max(bytes.len()), 0);
    b64.encode(bytes)
}

/// An event as created: id and snapshot path.
struct Ev {
    id: String,
    file: PathBuf,
}

async fn event_at(app: &TestApp, auth: &str, cam: &str, ts_ms: i64, jpeg: &str) -> Ev {
    let v = app
        .event(
            auth,
            json!({"camera_id": cam, "detection_type": "person",
                   "timestamp": format_rfc3339(ts_ms), "thumbnail_base64": jpeg}),
        )
        .await;
    let id = v["id"].as_str().unwrap().to_string();
    let day = &v["timestamp"].as_str().unwrap()[..10];
    Ev {
        file: app.data_dir().join(format!("thumbnails/{day}/{id}.jpg")),
        id,
    }
}

async fn exists(app: &TestApp, auth: &str, e: &Ev) -> bool {
    let (s, _) = app.get(&format!("/api/v1/events/{}", e.id), auth).await;
    assert!(s == StatusCode::OK || s == StatusCode::NOT_FOUND, "{s}");
    let row = s == StatusCode::OK;
    // A row and its file live and die together.
    assert_eq!(row, e.file.exists(), "event {} row {row}", e.id);
    row
}

async fn storage(app: &TestApp, auth: &str) -> Value {
    let (s, v) = app.get("/api/v1/system/storage", auth).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v
}

/// Changes settings (which runs the pruner) and waits for that run; returns the storage view.
async fn put_settings_and_prune(app: &TestApp, auth: &str, body: Value) -> Value {
    let before = storage(app, auth).await["prune_runs"].as_u64().unwrap();
    let (s, v) = app.put("/api/v1/system/settings", auth, body).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    wait_storage(app, auth, |v| {
        v["prune_runs"].as_u64().unwrap() > before && v["last_prune"]["trigger"] == "settings"
    })
    .await
}

async fn wait_storage(app: &TestApp, auth: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let v = storage(app, auth).await;
        if done(&v) {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "gave up waiting: {v}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test]
async fn age_pruning_follows_the_clock_and_per_camera_overrides() {
    let app = TestApp::start().await;
    let jwt = app.admin_token().await;
    // A key, unlike a login, outlives the clock's jumps.
    let (_, admin) = app.api_key(&jwt, &["admin"], Some(100_000)).await;
    let a = app.camera(&admin, "A").await;
    let b = app.camera(&admin, "B").await;
    let now = app.clock.now_ms();
    let mut ev = std::collections::HashMap::new();
    for (cam, name) in [(&a, "a"), (&b, "b")] {
        for days in [40, 20, 1] {
            let e = event_at(&app, &admin, cam, now - days * DAY, TINY_JPEG_B64).await;
            ev.insert(format!("{name}{days}"), e);
        }
    }
    let v = put_settings_and_prune(
        &app,
        &admin,
        json!({"retention_days": 30, "camera_retention": {b.clone(): {"retention_days": 60}}}),
    )
    .await;
    assert_eq!(v["last_prune"]["by_age"], json!(1), "{v}");
    assert_eq!(v["last_prune"]["thumbnails_deleted"], json!(1));
    assert_eq!(
        v["policy"]["camera_retention"][&b]["retention_days"],
        json!(60)
    );
    assert!(!exists(&app, &admin, &ev["a40"]).await);
    for k in ["a20", "a1", "b40", "b20", "b1"] {
        assert!(exists(&app, &admin, &ev[k]).await, "{k}");
    }

    // 15 days later: A's 20-day-old event is 35 days old; B keeps 60 days.
    app.clock.advance_ms(15 * DAY);
    put_settings_and_prune(&app, &admin, json!({"retention_days": 30})).await;
    assert!(!exists(&app, &admin, &ev["a20"]).await);
    assert!(exists(&app, &admin, &ev["b40"]).await);

    // 10 more days: B's oldest is 65 days old.
    app.clock.advance_ms(10 * DAY);
    let v = put_settings_and_prune(&app, &admin, json!({})).await;
    assert_eq!(v["last_prune"]["by_age"], json!(1), "{v}");
    for (k, want) in [("b40", false), ("b20", true), ("b1", true), ("a1", true)] {
        assert_eq!(exists(&app, &admin, &ev[k]).await, want, "{k}");
    }
    assert_eq!(v["event_count"], json!(3));

    // 0 = keep forever.
    app.clock.advance_ms(3650 * DAY);
    let v = put_settings_and_prune(
        &app,
        &admin,
        json!({"retention_days": 0, "camera_retention": {}}),
    )
    .await;
    assert_eq!(v["event_count"], json!(3));
    let (s, v) = app
        .put(
            "/api/v1/system/settings",
            &admin,
            json!({"camera_retention": {"front-door": {"retention_days": 3}}}),
        )
        .await;
    assert_error(s, &v, 422, "camera_retention");
}

#[tokio::test]
async fn size_limit_prunes_the_oldest_first_with_their_files() {
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    let cam = app.camera(&admin, "Yard").await;
    let max = 16 * MIB;
    put_settings_and_prune(&app, &admin, json!({"max_storage_bytes": max})).await;
    let big = jpeg_b64(512 * 1024);
    let now = app.clock.now_ms();
    let mut evs = Vec::new();
    for i in 0..40 {
        evs.push(event_at(&app, &admin, &cam, now - (40 - i) * 60_000, &big).await);
    }
    // The writes that crossed the limit woke the pruner: no schedule, no settings change.
    let v = wait_storage(&app, &admin, |v| {
        v["usage_bytes"].as_u64().unwrap() <= max
            && v["last_prune"]["trigger"] == "limit"
            && v["pruning"] == json!(false)
    })
    .await;
    assert_eq!(v["policy"]["effective_max_storage_bytes"], json!(max));
    let left = v["event_count"].as_u64().unwrap() as usize;
    assert!((20..40).contains(&left), "{v}");
    // Exactly the newest `left` events remain, each with its file; the rest are gone with theirs.
    for (i, e) in evs.iter().enumerate() {
        assert_eq!(exists(&app, &admin, e).await, i >= 40 - left, "event {i}");
    }
    assert_eq!(
        v["thumbnail_bytes"].as_u64().unwrap(),
        left as u64 * 512 * 1024
    );
}

#[tokio::test]
async fn below_the_free_disk_floor_snapshots_stop_and_pruning_recovers() {
    let disk = Arc::new(SimulatedDisk::new(1 << 40));
    let dir = tempfile::tempdir().unwrap();
    let cfg = Config::for_data_dir(&dir.path().join("data"));
    let clock = argus::clock::ManualClock::new(argus::clock::SystemClock.now_ms());
    let app = TestApp::start_with_deps(dir, cfg, clock, Some(disk.clone())).await;
    let admin = app.admin_token().await;
    let cam = app.camera(&admin, "Porch").await;
    let floor = 8 * MIB;
    put_settings_and_prune(&app, &admin, json!({"min_free_disk_bytes": floor})).await;
    let big = jpeg_b64(MIB as usize);
    let now = app.clock.now_ms();
    let mut evs = Vec::new();
    for i in 0..8 {
        evs.push(event_at(&app, &admin, &cam, now - (10 - i) * 60_000, &big).await);
    }
    let (_, h) = app.get("/api/v1/system/health", &admin).await;
    assert_eq!(h["storage"]["status"], json!("ok"), "{h}");

    // The disk fills up (something else wrote to it): free space drops just under the floor.
    disk.set_size(argus::retention::du(&app.data_dir()) + floor - 64 * 1024);
    let (_, h) = app.get("/api/v1/system/health", &admin).await;
    assert_eq!(h["status"], json!("degraded"), "{h}");
    assert_eq!(h["storage"]["status"], json!("low_disk"));
    assert_eq!(h["storage"]["min_free_disk_bytes"], json!(floor));
    assert_eq!(storage(&app, &admin).await["status"], json!("low_disk"));

    // An event still gets stored, without its snapshot, and wakes the pruner.
    let (s, v) = app
        .post(
            "/api/v1/events",
            &admin,
            json!({"camera_id": cam, "detection_type": "person", "thumbnail_base64": big}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert!(v["thumbnail_url"].is_null(), "{v}");
    let v = wait_storage(&app, &admin, |v| {
        v["status"] == "ok" && v["last_prune"]["by_low_disk"].as_u64().unwrap_or(0) > 0
    })
    .await;
    assert_eq!(v["last_prune"]["trigger"], json!("limit"));
    let removed = v["last_prune"]["by_low_disk"].as_u64().unwrap() as usize;
    // Only as many of the oldest as the shortfall needed.
    assert!((1..=3).contains(&removed), "{v}");
    for (i, e) in evs.iter().enumerate() {
        assert_eq!(exists(&app, &admin, e).await, i >= removed, "event {i}");
    }
    assert!(v["free_bytes"].as_u64().unwrap() >= floor);
    let (_, h) = app.get("/api/v1/system/health", &admin).await;
    assert_eq!(h["status"], json!("ok"), "{h}");
    // Snapshots are written again.
    let v = app
        .event(
            &admin,
            json!({"camera_id": cam, "detection_type": "person", "thumbnail_base64": TINY_JPEG_B64}),
        )
        .await;
    assert!(v["thumbnail_url"].is_string(), "{v}");
}

fn set_old(path: &std::path::Path) {
    let f = std::fs::File::options().write(true).open(path).unwrap();
    f.set_modified(SystemTime::now() - Duration::from_secs(7200))
        .unwrap();
}

#[tokio::test]
async fn start_up_sweep_removes_orphans_and_temp_files_and_reports_missing_files() {
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    let cam = app.camera(&admin, "Gate").await;
    let now = app.clock.now_ms();
    let mut evs = Vec::new();
    for i in 0..3 {
        evs.push(event_at(&app, &admin, &cam, now - i * 1000, TINY_JPEG_B64).await);
    }
    let data = app.data_dir();
    let dir = app.stop_keep_dir().await;

    let day_dir = evs[0].file.parent().unwrap().to_path_buf();
    std::fs::remove_file(&evs[0].file).unwrap();
    let orphan = day_dir.join("0b7f1c9e-1111-4000-8000-000000000001.jpg");
    let temp = day_dir.join(".x.jpg.AbCdEf12.tmp");
    // Orphans of any age: nothing is being written while the appliance starts.
    let fresh = day_dir.join("0b7f1c9e-1111-4000-8000-000000000002.jpg");
    let old_day = data.join("thumbnails/2020-01-01");
    std::fs::create_dir_all(&old_day).unwrap();
    let old_orphan = old_day.join("0b7f1c9e-1111-4000-8000-000000000003.jpg");
    for p in [&orphan, &temp, &fresh, &old_orphan] {
        std::fs::write(p, b"\xff\xd8\xffjunk").unwrap();
    }
    for p in [&orphan, &temp, &old_orphan] {
        set_old(p);
    }

    let app = TestApp::start_in(dir, Config::for_data_dir(&data)).await;
    let admin = app.admin_token().await;
    assert!(!orphan.exists() && !temp.exists() && !old_orphan.exists() && !fresh.exists());
    assert!(!old_day.exists(), "an emptied day directory goes too");
    assert!(evs[1].file.exists() && evs[2].file.exists());
    let v = storage(&app, &admin).await;
    let c = &v["consistency"];
    assert_eq!(c["orphans_removed"], json!(3), "{v}");
    assert_eq!(c["temp_files_removed"], json!(1));
    assert_eq!(c["rows_missing_file"], json!(1));
    assert_eq!(c["rows_checked"], json!(3));
    // The row whose file is missing stays, and says so.
    let (s, v) = app
        .get(&format!("/api/v1/events/{}/thumbnail", evs[0].id), &admin)
        .await;
    assert_error(s, &v, 404, "missing");
}

#[tokio::test]
async fn cleanup_deletes_events_before_a_date_for_admins_only() {
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    put_settings_and_prune(&app, &admin, json!({"retention_days": 0})).await;
    let cam = app.camera(&admin, "Drive").await;
    let at = |s: &str| argus::clock::parse_time(s).unwrap();
    let jan = event_at(
        &app,
        &admin,
        &cam,
        at("2024-01-10T08:00:00Z"),
        TINY_JPEG_B64,
    )
    .await;
    let mar = event_at(
        &app,
        &admin,
        &cam,
        at("2024-03-01T08:00:00Z"),
        TINY_JPEG_B64,
    )
    .await;
    let may = event_at(
        &app,
        &admin,
        &cam,
        at("2024-05-31T23:59:59Z"),
        TINY_JPEG_B64,
    )
    .await;
    let jun = event_at(
        &app,
        &admin,
        &cam,
        at("2024-06-01T00:00:00Z"),
        TINY_JPEG_B64,
    )
    .await;
    let (_, reader) = app.api_key(&admin, &["read:events"], None).await;

    let (s, v) = app
        .delete("/api/v1/events/cleanup?before_date=2024-06-01", &reader)
        .await;
    assert_error(s, &v, 403, "");
    let (s, v) = app.delete("/api/v1/events/cleanup", &admin).await;
    assert_error(s, &v, 422, "before_date");
    let (s, v) = app
        .delete("/api/v1/events/cleanup?before_date=last-tuesday", &admin)
        .await;
    assert_error(s, &v, 422, "before_date");

    let (s, v) = app
        .delete(
            "/api/v1/events/cleanup?before_date=2024-03-01T08:00:00Z",
            &admin,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        v,
        json!({"deleted_count": 1, "thumbnails_deleted": 1, "bytes_freed": 125})
    );
    // A bare date means midnight UTC: that day's events stay.
    let (s, v) = app
        .delete("/api/v1/events/cleanup?before_date=2024-06-01", &admin)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["deleted_count"], json!(2));
    assert!(!exists(&app, &admin, &jan).await);
    assert!(!exists(&app, &admin, &mar).await);
    assert!(!exists(&app, &admin, &may).await);
    assert!(exists(&app, &admin, &jun).await);
    let v = storage(&app, &admin).await;
    assert_eq!(v["last_prune"]["trigger"], json!("cleanup"));
    assert_eq!(v["event_count"], json!(1));
    // `/events/{id}` still routes ids.
    let (s, _) = app
        .delete(&format!("/api/v1/events/{}", jun.id), &admin)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn storage_reports_usage_policy_and_pruning() {
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    let a = app.camera(&admin, "A").await;
    let b = app.camera(&admin, "B").await;
    let now = app.clock.now_ms();
    event_at(&app, &admin, &a, now - 2 * DAY, TINY_JPEG_B64).await;
    event_at(&app, &admin, &a, now - DAY, TINY_JPEG_B64).await;
    event_at(&app, &admin, &b, now, TINY_JPEG_B64).await;
    let v = wait_storage(&app, &admin, |v| v["prune_runs"].as_u64().unwrap() >= 1).await;
    assert_eq!(v["status"], json!("ok"));
    assert_eq!(v["event_count"], json!(3));
    assert_eq!(v["thumbnail_bytes"], json!(3 * 125));
    let used = v["database_used_bytes"].as_u64().unwrap();
    assert!(
        used > 0 && used <= v["database_bytes"].as_u64().unwrap(),
        "{v}"
    );
    assert_eq!(v["usage_bytes"].as_u64().unwrap(), used + 3 * 125);
    let total = v["total_bytes"].as_u64().unwrap();
    assert!(total > 0);
    assert_eq!(v["policy"]["retention_days"], json!(30));
    assert!(v["policy"]["max_storage_bytes"].is_null());
    assert_eq!(v["policy"]["effective_max_storage_bytes"], json!(total / 2));
    assert_eq!(
        v["policy"]["effective_min_free_disk_bytes"],
        json!((256 * MIB).min(total / 20))
    );
    let mut cams: Vec<(String, u64)> = v["by_camera"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["camera_name"].as_str().unwrap().to_string(),
                c["event_count"].as_u64().unwrap(),
            )
        })
        .collect();
    cams.sort();
    assert_eq!(cams, vec![("A".to_string(), 2), ("B".to_string(), 1)]);
    assert_eq!(v["oldest_event_at"], json!(format_rfc3339(now - 2 * DAY)));
    assert_eq!(v["newest_event_at"], json!(format_rfc3339(now)));
    assert_eq!(v["last_prune"]["trigger"], json!("start"));
    for k in [
        "events_deleted",
        "bytes_freed",
        "started_at",
        "finished_at",
        "max_batch_ms",
    ] {
        assert!(!v["last_prune"][k].is_null(), "{k}: {v}");
    }
    assert_eq!(v["consistency"]["orphans_removed"], json!(0));
}

#[tokio::test]
async fn db_check_finds_a_missing_snapshot_and_an_orphan_and_changes_nothing() {
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    let cam = app.camera(&admin, "Shed").await;
    let now = app.clock.now_ms();
    let mut evs = Vec::new();
    for i in 0..3 {
        evs.push(event_at(&app, &admin, &cam, now - i * 1000, TINY_JPEG_B64).await);
    }
    let (ok, out, err) = argus(&app, &["db", "check"]);
    assert!(ok, "{out}\n{err}");
    assert!(
        out.contains("integrity_check: ok") && out.trim_end().ends_with("ok"),
        "{out}"
    );

    std::fs::remove_file(&evs[1].file).unwrap();
    let orphan = evs[0]
        .file
        .with_file_name("5d0c7a21-2222-4000-8000-000000000009.jpg");
    std::fs::write(&orphan, b"\xff\xd8\xff").unwrap();
    // Beside a running appliance a young file may be an event being written: not reported...
    let (ok, out, err) = argus(&app, &["db", "check"]);
    assert!(!ok, "{out}");
    assert!(!out.contains("orphan: "), "{out}");
    assert!(err.contains("1 problem"), "{err}");
    // ... unless told (the appliance idle), or once it is older than a minute.
    let (ok, out, _) = argus(&app, &["db", "check", "--grace", "0"]);
    assert!(!ok && out.contains("orphan: "), "{out}");
    set_old(&orphan);
    let (ok, out, err) = argus(&app, &["db", "check"]);
    assert!(!ok, "{out}");
    let rel = |p: &std::path::Path| {
        p.strip_prefix(app.data_dir())
            .unwrap()
            .display()
            .to_string()
    };
    assert!(
        out.contains(&format!("missing: {}", rel(&evs[1].file))),
        "{out}"
    );
    assert!(out.contains(&format!("orphan: {}", rel(&orphan))), "{out}");
    assert!(err.contains("2 problem"), "{err}");
    // Report only.
    assert!(orphan.exists());
    assert!(exists(&app, &admin, &evs[0]).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_while_events_are_written_is_complete_and_sound() {
    let app = Arc::new(TestApp::start().await);
    let admin = app.admin_token().await;
    let cam = app.camera(&admin, "Road").await;
    let mut before = Vec::new();
    for _ in 0..30 {
        let v = app
            .event(
                &admin,
                json!({"camera_id": cam, "detection_type": "vehicle"}),
            )
            .await;
        before.push(v["id"].as_str().unwrap().to_string());
    }
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (app, admin, cam, stop) = (app.clone(), admin.clone(), cam.clone(), stop.clone());
        tokio::spawn(async move {
            let mut n = 0u32;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                app.event(
                    &admin,
                    json!({"camera_id": cam, "detection_type": "person", "thumbnail_base64": TINY_JPEG_B64}),
                )
                .await;
                n += 1;
            }
            n
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let out_dir = tempfile::tempdir().unwrap();
    let copy = out_dir.path().join("argus-backup.db");
    let (ok, out, err) = {
        let (app, copy) = (app.clone(), copy.clone());
        tokio::task::spawn_blocking(move || argus(&app, &["db", "backup", copy.to_str().unwrap()]))
            .await
            .unwrap()
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let during = writer.await.unwrap();
    assert!(ok, "{out}\n{err}");
    assert!(during > 0, "no writes ran beside the backup");
    assert_eq!(
        out.trim_end().lines().last().unwrap(),
        copy.to_str().unwrap()
    );
    assert!(out.contains("integrity check ok"), "{out}");
    // No temp file left beside the copy.
    assert_eq!(std::fs::read_dir(out_dir.path()).unwrap().count(), 1);

    let store = argus::store::Store::open_read_only(&copy).unwrap();
    assert!(store
        .read_blocking(argus::store::retention::integrity_check)
        .unwrap()
        .is_empty());
    for id in &before {
        let id = id.clone();
        store
            .read_blocking(move |c| argus::store::events::get(c, &id))
            .unwrap();
    }
    let n = store
        .read_blocking(argus::store::retention::event_count)
        .unwrap();
    assert!(n >= before.len() as u64, "{n}");
}
