//! Event clips from a camera's own H.264: the real pipeline (demo file camera, real detector)
//! records a person event's clip, which ffprobe and ffmpeg read as H.264 starting at a key
//! frame with the pre-capture in it; storage counts clips and deletes them with their events;
//! below the free-disk floor recording stops and says so; a kill -9 while a clip is being
//! written leaves the event intact and the clip playable or absent.

use crate::support::*;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub fn demo_path() -> String {
    format!(
        "{}/assets/demo/person-walk.h264",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// Short clips for tests: 3 s before, 2 s after, at most 8 s.
pub fn with_short_clips(cfg: &mut argus::config::Config) {
    with_detector(cfg);
    cfg.video.pre_capture_seconds = 3;
    cfg.video.post_capture_seconds = 2;
    cfg.video.max_clip_seconds = 8;
}

pub async fn demo_camera(app: &TestApp, auth: &str, extra: Value) -> String {
    let mut body =
        json!({"name": "Demo", "type": "file", "file_path": demo_path(), "frame_rate": 5});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    let (s, cam) = app.post("/api/v1/cameras", auth, body).await;
    assert_eq!(s, StatusCode::CREATED, "{cam}");
    cam["id"].as_str().unwrap().to_string()
}

/// Waits for the `nth` (1-based, oldest first) person event of a camera to have its clip.
pub async fn event_with_clip(app: &TestApp, auth: &str, nth: usize, secs: u64) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let (_, page) = app.get("/api/v1/events?limit=20", auth).await;
        let mut items: Vec<Value> = page["items"].as_array().cloned().unwrap_or_default();
        items.retain(|e| e["detection_type"] == json!("person"));
        items.reverse();
        if let Some(e) = items.get(nth - 1) {
            if e["has_clip"] == json!(true) {
                return e.clone();
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no clip for person event {nth} within {secs} s: {page}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// `ffprobe` of a file as JSON (streams and format).
pub fn ffprobe(path: &Path) -> Value {
    let out = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-print_format",
            "json",
            "-show_streams",
            "-show_format",
            "-count_frames",
        ])
        .arg(path)
        .output()
        .expect("ffprobe (scripts/deps.sh installs ffmpeg)");
    assert!(
        out.status.success(),
        "ffprobe: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Whether the first video frame is a key frame, by ffprobe.
pub fn first_frame_is_key(path: &Path) -> bool {
    let out = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v",
            "-read_intervals",
            "%+#1",
            "-show_entries",
            "frame=key_frame,pict_type",
            "-of",
            "csv=p=0",
        ])
        .arg(path)
        .output()
        .unwrap();
    let s = String::from_utf8_lossy(&out.stdout);
    s.lines().next().is_some_and(|l| l.starts_with("1,I"))
}

/// ffmpeg decodes the whole file without an error.
pub fn decodes_to_the_end(path: &Path) {
    let out = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args(["-f", "null", "-"])
        .output()
        .unwrap();
    if !out.status.success() || !out.stderr.is_empty() {
        let _ = std::fs::copy(path, std::env::temp_dir().join("argus-failed-clip.mp4"));
    }
    assert!(
        out.status.success(),
        "ffmpeg: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "ffmpeg complained: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Where a clip sits: moov before mdat (fast start).
fn top_level_boxes(bytes: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    let mut i = 0usize;
    while i + 8 <= bytes.len() {
        let size = u32::from_be_bytes(bytes[i..i + 4].try_into().unwrap()) as usize;
        out.push(String::from_utf8_lossy(&bytes[i + 4..i + 8]).into_owned());
        if size < 8 {
            break;
        }
        i += size;
    }
    out
}

fn clip_file(app: &TestApp, e: &Value) -> PathBuf {
    let day = &e["timestamp"].as_str().unwrap()[..10];
    app.data_dir()
        .join("clips")
        .join(day)
        .join(format!("{}.mp4", e["id"].as_str().unwrap()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_events_clip_is_the_cameras_h264_with_the_pre_capture() {
    let app = TestApp::start_with(with_short_clips).await;
    let admin = app.admin_token().await;
    let cam = demo_camera(&app, &admin, json!({})).await;
    // The second walk's event: the camera has streamed for more than the pre-capture by then.
    let e = event_with_clip(&app, &admin, 2, 90).await;
    let url = e["clip_url"].as_str().unwrap();
    assert_eq!(
        url,
        format!("/api/v1/events/{}/clip", e["id"].as_str().unwrap())
    );
    let dur = e["clip_duration_seconds"].as_f64().unwrap();
    let offset = e["clip_event_offset_seconds"].as_f64().unwrap();
    assert!(offset >= 3.0, "the pre-capture (3 s) is in the clip: {e}");
    assert!(
        offset < 3.0 + 2.2,
        "back to the key frame before it (2 s groups): {e}"
    );
    // The person walks for about 10 s, longer than the maximum: the clip is 8 s.
    assert!((dur - 8.0).abs() <= 1.0, "8 s clip: {e}");

    let (_, key) = app.api_key(&admin, &["read:events"], None).await;
    let r = app
        .client
        .get(app.url(url))
        .header("x-api-key", key)
        .send()
        .await
        .unwrap();
    let s = r.status();
    let bytes = r.bytes().await.unwrap();
    assert_eq!(s, StatusCode::OK);
    let path = clip_file(&app, &e);
    assert_eq!(
        std::fs::read(&path).unwrap(),
        bytes.to_vec(),
        "served as stored"
    );
    let boxes = top_level_boxes(&bytes);
    assert_eq!(boxes, ["ftyp", "moov", "mdat"], "fast start");
    let probe = ffprobe(&path);
    let v = &probe["streams"][0];
    assert_eq!(v["codec_name"], json!("h264"), "{probe}");
    assert_eq!(
        (v["width"].as_u64(), v["height"].as_u64()),
        (Some(640), Some(360))
    );
    let fdur: f64 = probe["format"]["duration"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((fdur - dur).abs() < 0.25, "ffprobe {fdur} s, API {dur} s");
    let frames: f64 = v["nb_read_frames"].as_str().unwrap().parse().unwrap();
    assert!(
        (frames / fdur - 15.0).abs() < 1.5,
        "the camera's 15 fps untouched: {frames} in {fdur} s"
    );
    assert!(first_frame_is_key(&path), "the clip starts at a key frame");
    decodes_to_the_end(&path);

    // Storage counts it; deleting the event deletes it.
    let (_, st) = app.get("/api/v1/system/storage", &admin).await;
    assert!(
        st["clip_bytes"].as_u64().unwrap() >= bytes.len() as u64,
        "{st}"
    );
    let (s, _) = app
        .delete(
            &format!("/api/v1/events/{}", e["id"].as_str().unwrap()),
            &admin,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert!(!path.exists(), "the clip went with its event");
    // Cleanup removes the rest with their events, and the counters follow.
    let (s, c) = app
        .put(
            &format!("/api/v1/cameras/{cam}"),
            &admin,
            json!({"is_enabled": false}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{c}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (s, _, r) = app
        .call(
            reqwest::Method::DELETE,
            "/api/v1/events/cleanup?before_date=2100-01-01",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    let (_, st) = app.get("/api/v1/system/storage", &admin).await;
    assert_eq!(st["clip_bytes"], json!(0), "{st}");
    let left: Vec<_> = walk(&app.data_dir().join("clips"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|x| x == "mp4"))
        .collect();
    assert!(left.is_empty(), "clips left after cleanup: {left:?}");
    app.stop().await;
}

/// A running `argus serve` process (the real binary), killed with SIGKILL by the test.
struct Process {
    child: std::process::Child,
    port: u16,
}

impl Drop for Process {
    fn drop(&mut self) {
        // A failing test must not leave the appliance running.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(data: &Path, config: &Path, log: &Path) -> Process {
    let port = free_port();
    let child = argus_command()
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
        ])
        .arg(data)
        .arg("--config")
        .arg(config)
        .env("ARGUS_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(log)
                .unwrap(),
        )
        .spawn()
        .unwrap();
    Process { child, port }
}

async fn wait_up(client: &reqwest::Client, port: u16) {
    for _ in 0..300 {
        if let Ok(r) = client
            .get(format!("http://127.0.0.1:{port}/api/v1/system/health"))
            .send()
            .await
        {
            if r.status() == StatusCode::OK {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the appliance did not come up");
}

fn cli(data: &Path, args: &[&str]) -> (bool, String) {
    let out = argus_command()
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .env_remove("ARGUS_CONFIG")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

/// kill -9 while a clip is being written: after a restart the event is intact, its clip is
/// playable (recovered up to the last complete fragment) or absent, and `db check` is clean.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_while_a_clip_is_written_leaves_a_playable_clip_or_none() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("argus.toml");
    let log = dir.path().join("server.log");
    std::fs::write(
        &config,
        format!(
            "[detector]\nmodel = {:?}\nruntime = {:?}\nthreads = 2\n\n[video]\npre_capture_seconds = 2\npost_capture_seconds = 2\nmax_clip_seconds = 60\n",
            model_toml(),
            ort_lib()
        ),
    )
    .unwrap();
    let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::new();
    let p = serve(&data, &config, &log);
    wait_up(&client, p.port).await;
    let (ok, out) = cli(
        &data,
        &["api-keys", "create", "--name", "t", "--scopes", "admin"],
    );
    assert!(ok, "{out}");
    let key = out.trim().lines().last().unwrap().to_string();
    let base = format!("http://127.0.0.1:{}", p.port);
    let r = client
        .post(format!("{base}/api/v1/cameras"))
        .header("x-api-key", &key)
        .json(&json!({"name": "Demo", "type": "file", "file_path": demo_path(), "frame_rate": 5}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    // Wait for a clip in progress with a few fragments in it, then kill.
    let tmp = data.join("clips/.tmp");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let part = loop {
        let parts: Vec<PathBuf> = walk(&tmp)
            .into_iter()
            .filter(|p| p.extension().is_some_and(|x| x == "part"))
            .collect();
        if let Some(p) = parts
            .iter()
            .find(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0) > 200_000)
        {
            break p.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no clip being written within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let event_id = part.file_stem().unwrap().to_string_lossy().into_owned();
    let mut p = p;
    p.child.kill().unwrap(); // SIGKILL
    p.child.wait().unwrap();

    let p = serve(&data, &config, &log);
    wait_up(&client, p.port).await;
    let base = format!("http://127.0.0.1:{}", p.port);
    let e: Value = client
        .get(format!("{base}/api/v1/events/{event_id}"))
        .header("x-api-key", &key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(e["id"], json!(event_id), "the event is intact: {e}");
    assert_eq!(e["detection_type"], json!("person"));
    let r = client
        .get(format!("{base}/api/v1/events/{event_id}/thumbnail"))
        .header("x-api-key", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "with its snapshot");
    if e["has_clip"] == json!(true) {
        let path = data
            .join("clips")
            .join(&e["timestamp"].as_str().unwrap()[..10])
            .join(format!("{event_id}.mp4"));
        assert!(first_frame_is_key(&path));
        decodes_to_the_end(&path);
        let probe = ffprobe(&path);
        let d: f64 = probe["format"]["duration"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(
            d >= 1.0,
            "the recovered clip holds the fragments written before the kill: {d} s"
        );
    }
    assert!(!part.exists(), "nothing is left half-written");
    let mut p = p;
    unsafe { libc::kill(p.child.id() as i32, libc::SIGTERM) };
    p.child.wait().unwrap();
    let (ok, out) = cli(&data, &["db", "check", "--grace", "0"]);
    assert!(ok, "db check: {out}");
}

/// Below the free-disk floor no clip is written, and the camera's status says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn below_the_free_disk_floor_no_clip_is_recorded_and_the_camera_says_so() {
    let disk = std::sync::Arc::new(argus::retention::SimulatedDisk::new(1 << 40));
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = argus::config::Config::for_data_dir(&dir.path().join("data"));
    with_short_clips(&mut cfg);
    let clock =
        argus::clock::ManualClock::new(argus::clock::Clock::now_ms(&argus::clock::SystemClock));
    let app = TestApp::start_with_deps(dir, cfg, clock, Some(disk.clone())).await;
    let admin = app.admin_token().await;
    let floor: u64 = 64 << 20;
    let (s, v) = app
        .put(
            "/api/v1/system/settings",
            &admin,
            json!({"min_free_disk_bytes": floor}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    // Something else filled the disk: 1 MiB free, far under the floor.
    disk.set_size(argus::retention::du(&app.data_dir()) + (1 << 20));
    let cam = demo_camera(&app, &admin, json!({})).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    let mut said = false;
    loop {
        let (_, c) = app.get(&format!("/api/v1/cameras/{cam}"), &admin).await;
        said |= c["status"]["recording"] == json!("paused_low_disk");
        let (_, h) = app.get("/api/v1/system/health", &admin).await;
        if said && h["detector"]["object_events"].as_u64() >= Some(1) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no object event, or the camera did not say why it records nothing: {c} {h}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // Give a clip the time it would take (pre 3 s + post 2 s, at most 8 s), then look.
    tokio::time::sleep(Duration::from_secs(9)).await;
    let clips: Vec<_> = walk(&app.data_dir().join("clips"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|x| x == "mp4" || x == "part"))
        .collect();
    assert!(clips.is_empty(), "no clip below the floor: {clips:?}");
    let (_, page) = app.get("/api/v1/events", &admin).await;
    for e in page["items"].as_array().unwrap() {
        assert_eq!(e["has_clip"], json!(false), "{e}");
    }
    let (_, st) = app.get("/api/v1/system/storage", &admin).await;
    assert_eq!(st["clip_bytes"], json!(0), "{st}");
    app.stop().await;
}
