//! Clips and live video benchmark: the CPU one camera's clip recorder adds, the CPU one live
//! viewer adds, and the memory of the pre-capture ring, for the demo stream
//! (`assets/demo/person-walk.h264`, 640x360, 15 fps) fed in real time.
//!
//!     cargo bench --features tract --bench clips        (or scripts/bench-clips.sh)
//!
//! 1. Recording: the real [`Recorder`] thread, its [`Sink`] from a real `AppState` (store,
//!    events, retention in a temp dir; `BENCH_DIR` chooses where), fed the stream looped at
//!    15 fps for `RECORD_SECS` (32) after 6 s that fill the pre-capture, an event every 8 s
//!    (pre 5 s, post 5 s, max 10 s; its objects gone 2 s later; the events exist in the store,
//!    so each clip is attached). Measured: the recorder thread's own CPU
//!    (`/proc/self/task/<tid>/schedstat`), and the process CPU (`getrusage`, which also covers
//!    `attach_clip` on the runtime) minus that of the same feeder loop without a recorder
//!    (`BASE_SECS`, 8); the bytes the thread wrote (`/proc/self/task/<tid>/io`), the
//!    fsync/fdatasync calls (this binary defines both over the system calls and counts them),
//!    the clips attached.
//! 2. One live viewer, its pipeline alone: a feeder thread pushes the units into a
//!    [`LiveFeed`] at 15 fps; a thread running a current-thread runtime does what the endpoint
//!    does per unit: `Viewer::next`, the endpoint's muxing of that one unit (`mp4::fragment`),
//!    and the binary WebSocket message (tungstenite, the endpoint's socket type and limits) over
//!    loopback TCP to a thread that reads and discards, for `PIPE_SECS` (15). Measured: that
//!    thread's CPU, and the feeder's (which a camera spends with or without viewers).
//! 3. One live viewer, end to end: the real server (`app::run` on port 0) with a file camera
//!    replaying the clip (motion and clips off), process CPU for `LIVE_SECS` (20) with no
//!    viewer, then `LIVE_SECS` with one real WebSocket client on `/api/v1/cameras/{id}/live` in
//!    this process; the client thread's own CPU is subtracted. The camera's analysis thread
//!    (H.264 decoding, the same with or without a viewer) is shown and also taken out, as it is
//!    the main source of noise.
//! 4. Memory: a `PreCapture` (5 s, the default 8 MiB bound) fed the stream: payload bytes and
//!    units held.
//!
//! `ONLY=record|pipe|server|memory` runs one part. Kernel work outside the process (ext4's
//! journal thread, writeback) is not counted anywhere.

use argus::api::upgrade::{Io, Socket};
use argus::app::{AppState, Deps};
use argus::clips::{ClipSettings, Recorder, Sink};
use argus::config::Config;
use argus::video::live::LiveFeed;
use argus::video::live_mux::{LiveMuxer, Muxed};
use argus::video::ring::PreCapture;
use argus::video::{h264, Au};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::io::Read;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message;

const FPS: u64 = 15;
const TICKS: u64 = 90_000 / FPS;
const CAMERA: &str = "be4c0000-0000-4000-8000-000000000001";
const EVENT_EVERY: u64 = 8;
const OBJECTS_GONE_AFTER: u64 = 2;
const WARM_SECS: u64 = 6;

fn env_secs(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn bench_dir() -> tempfile::TempDir {
    match std::env::var_os("BENCH_DIR") {
        Some(d) => tempfile::tempdir_in(d).unwrap(),
        None => tempfile::tempdir().unwrap(),
    }
}

fn demo_path() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/assets/demo/person-walk.h264").to_string()
}

// ---- CPU, I/O and fsync accounting ------------------------------------------------------

/// User + system CPU of the whole process (all threads, ended ones too), in ns.
fn process_cpu() -> u64 {
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let us = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    (us(ru.ru_utime) + us(ru.ru_stime)) * 1000
}

fn gettid() -> i32 {
    unsafe { libc::syscall(libc::SYS_gettid) as i32 }
}

/// A thread of this process whose name starts with `prefix`.
fn find_thread(prefix: &str) -> Option<i32> {
    for e in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        let comm = std::fs::read_to_string(e.path().join("comm")).unwrap_or_default();
        if comm.trim_end().starts_with(prefix) {
            return e.file_name().to_str()?.parse().ok();
        }
    }
    None
}

/// CPU time of one living thread of this process, in ns: the scheduler's exact figure, or the
/// tick counts of `stat` where there is no `schedstat`.
fn thread_cpu(tid: i32) -> u64 {
    let base = format!("/proc/self/task/{tid}");
    if let Ok(s) = std::fs::read_to_string(format!("{base}/schedstat")) {
        if let Some(ns) = s.split_whitespace().next().and_then(|v| v.parse().ok()) {
            return ns;
        }
    }
    let s = std::fs::read_to_string(format!("{base}/stat")).unwrap_or_default();
    // After the name: state is field 3, utime and stime fields 14 and 15.
    let f: Vec<u64> = s
        .rsplit_once(')')
        .map_or("", |r| r.1)
        .split_whitespace()
        .map(|v| v.parse().unwrap_or(0))
        .collect();
    let ticks = f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0);
    ticks * 1_000_000_000 / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64
}

/// `wchar` (bytes given to write calls), `syscw` (write calls) and `write_bytes` (bytes sent
/// to the storage layer) of `/proc/self/task/<tid>/io`, or of the process without a tid.
#[derive(Default, Clone, Copy)]
struct IoCount {
    wchar: u64,
    syscw: u64,
    write_bytes: u64,
}

fn io_count(tid: Option<i32>) -> IoCount {
    let path = match tid {
        Some(t) => format!("/proc/self/task/{t}/io"),
        None => "/proc/self/io".to_string(),
    };
    let mut c = IoCount::default();
    for line in std::fs::read_to_string(path).unwrap_or_default().lines() {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let v = v.trim().parse().unwrap_or(0);
        match k {
            "wchar" => c.wchar = v,
            "syscw" => c.syscw = v,
            "write_bytes" => c.write_bytes = v,
            _ => {}
        }
    }
    c
}

impl std::ops::Sub for IoCount {
    type Output = IoCount;
    fn sub(self, o: IoCount) -> IoCount {
        IoCount {
            wchar: self.wchar - o.wchar,
            syscw: self.syscw - o.syscw,
            write_bytes: self.write_bytes.saturating_sub(o.write_bytes),
        }
    }
}

/// The thread whose fsyncs count as the recorder's.
static RECORDER_TID: AtomicI32 = AtomicI32::new(-1);
static SYNCS_RECORDER: AtomicU64 = AtomicU64::new(0);
static SYNCS_OTHER: AtomicU64 = AtomicU64::new(0);

fn count_sync() {
    if gettid() == RECORDER_TID.load(Ordering::Relaxed) {
        SYNCS_RECORDER.fetch_add(1, Ordering::Relaxed);
    } else {
        SYNCS_OTHER.fetch_add(1, Ordering::Relaxed);
    }
}

/// Replaces libc's `fsync` in this binary (std's `File::sync_all` and SQLite call it): counts
/// the call, then makes the system call.
#[no_mangle]
pub extern "C" fn fsync(fd: libc::c_int) -> libc::c_int {
    count_sync();
    unsafe { libc::syscall(libc::SYS_fsync, fd) as libc::c_int }
}

/// Replaces libc's `fdatasync` (std's `File::sync_data`, SQLite), like [`fsync`].
#[no_mangle]
pub extern "C" fn fdatasync(fd: libc::c_int) -> libc::c_int {
    count_sync();
    unsafe { libc::syscall(libc::SYS_fdatasync, fd) as libc::c_int }
}

fn syncs() -> (u64, u64) {
    (
        SYNCS_RECORDER.load(Ordering::Relaxed),
        SYNCS_OTHER.load(Ordering::Relaxed),
    )
}

/// Percent of one core.
fn pct(cpu_ns: u64, wall: Duration) -> f64 {
    cpu_ns as f64 / wall.as_nanos() as f64 * 100.0
}

fn pct_signed(cpu_ns: i64, wall: Duration) -> f64 {
    cpu_ns as f64 / wall.as_nanos() as f64 * 100.0
}

// ---- the stream ---------------------------------------------------------------------------

struct Stream {
    units: Vec<Vec<u8>>,
    keys: Vec<bool>,
}

impl Stream {
    fn load() -> Stream {
        let bytes = std::fs::read(demo_path()).expect("the demo clip");
        let units = h264::access_units(&bytes);
        let keys = units.iter().map(|u| h264::is_idr(u)).collect();
        Stream { units, keys }
    }

    /// Frame `i` of the looped stream as a camera task makes it (the bytes copied into a new
    /// `Arc`, 90 kHz time, key flag).
    fn au(&self, i: u64) -> Arc<Au> {
        let k = (i % self.units.len() as u64) as usize;
        Arc::new(Au {
            data: Arc::from(self.units[k].as_slice()),
            pts: i * TICKS,
            key: self.keys[k],
        })
    }

    fn bytes_per_sec(&self) -> f64 {
        let total: usize = self.units.iter().map(Vec::len).sum();
        total as f64 * FPS as f64 / self.units.len() as f64
    }
}

/// Frames `from..from + n` of the stream in real time (15 fps), each given to `each`.
fn feed(s: &Stream, from: u64, n: u64, mut each: impl FnMut(u64, Arc<Au>)) {
    let start = Instant::now();
    for k in 0..n {
        let due = start + Duration::from_nanos(k * 1_000_000_000 / FPS);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        each(from + k, s.au(from + k));
    }
}

// ---- 1. recording -------------------------------------------------------------------------

struct RecordResult {
    secs: f64,
    base_pct: f64,
    process_pct: f64,
    thread_pct: f64,
    thread_io: IoCount,
    process_io: IoCount,
    syncs_recorder: u64,
    syncs_other: u64,
    clips: usize,
    events: usize,
    clip_bytes: u64,
    clip_secs: f64,
}

fn camera_row() -> argus::store::cameras::CameraRow {
    argus::store::cameras::CameraRow {
        id: CAMERA.into(),
        name: "Bench".into(),
        camera_type: argus::model::CameraType::File,
        rtsp_url: None,
        username: None,
        password_sealed: None,
        device_index: None,
        device_path: None,
        file_path: Some(demo_path()),
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

fn record(rt: &tokio::runtime::Runtime, s: &Stream) -> RecordResult {
    let secs = env_secs("RECORD_SECS", 32);
    let base_secs = env_secs("BASE_SECS", 8);
    let dir = bench_dir();
    let cfg = Config::for_data_dir(&dir.path().join("data"));
    let state = {
        let _rt = rt.enter();
        AppState::start(cfg, Deps::default()).unwrap()
    };
    state
        .store
        .write_blocking(|c| argus::store::cameras::insert(c, &camera_row()))
        .unwrap();
    // The events the clips belong to exist before the run (recording them is not clip work).
    let n_events = secs.div_ceil(EVENT_EVERY) as usize;
    let now = argus::clock::Clock::now_ms(&*state.clock);
    let ids: Vec<String> = (0..n_events)
        .map(|i| {
            let row = argus::store::events::EventRow {
                id: argus::crypto::new_uuid(),
                camera_id: CAMERA.into(),
                ts: now + i as i64 * 8000,
                detection_type: "person".into(),
                confidence: 80,
                objects_detected: vec!["person".into()],
                bounding_boxes: json!([]),
                source_type: "file".into(),
                created_at: now,
                ..Default::default()
            };
            rt.block_on(state.events.record(row, None))
                .unwrap()
                .row
                .id
                .clone()
        })
        .collect();

    // Baseline: the feeder loop alone.
    let (p0, t0) = (process_cpu(), Instant::now());
    feed(s, 0, base_secs * FPS, |_, au| {
        drop(std::hint::black_box(au))
    });
    let (base_cpu, base_wall) = (process_cpu() - p0, t0.elapsed());

    let settings = ClipSettings {
        pre: Duration::from_secs(5),
        post: Duration::from_secs(5),
        max: Duration::from_secs(10),
        ring_bytes: 8 << 20,
    };
    let sink = Sink {
        events: state.events.clone(),
        retention: state.retention.clone(),
        runtime: rt.handle().clone(),
    };
    let mut rec = Recorder::start(CAMERA, settings, sink).unwrap();
    let name = format!("record-{}", &CAMERA[..8]);
    let tid = (0..100)
        .find_map(|_| {
            find_thread(&name).or_else(|| {
                std::thread::sleep(Duration::from_millis(10));
                None
            })
        })
        .expect("the recorder thread");
    RECORDER_TID.store(tid, Ordering::Relaxed);
    // Warm-up: the pre-capture fills.
    let warm = WARM_SECS * FPS;
    feed(s, 0, warm, |_, au| rec.push(au));

    let (p0, r0, io0, pio0, (sr0, so0)) = (
        process_cpu(),
        thread_cpu(tid),
        io_count(Some(tid)),
        io_count(None),
        syncs(),
    );
    let t0 = Instant::now();
    feed(s, warm, secs * FPS, |i, au| {
        rec.push(au);
        let k = i - warm;
        let n = (k / (EVENT_EVERY * FPS)) as usize;
        match k % (EVENT_EVERY * FPS) {
            0 => rec.event(&ids[n]),
            x if x == OBJECTS_GONE_AFTER * FPS => rec.ended(&ids[n]),
            _ => {}
        }
    });
    // The last clip ends 5 s after its event; attaching it takes a moment on the runtime.
    std::thread::sleep(Duration::from_millis(300));
    let wall = t0.elapsed();
    let (cpu, rcpu, io, pio, (sr, so)) = (
        process_cpu() - p0,
        thread_cpu(tid) - r0,
        io_count(Some(tid)) - io0,
        io_count(None) - pio0,
        syncs(),
    );
    let busy = rec.state().as_str();
    rec.stop_blocking();
    if busy != "idle" {
        eprintln!("note: the recorder was {busy} at the end of the window");
    }
    std::thread::sleep(Duration::from_millis(500));
    let mut clips = 0;
    let (mut clip_bytes, mut clip_ms) = (0, 0);
    for id in &ids {
        let id = id.clone();
        let row = state
            .store
            .read_blocking(move |c| argus::store::events::get(c, &id))
            .unwrap();
        if row.clip_path.is_some() {
            clips += 1;
            clip_bytes += row.clip_bytes;
            clip_ms += row.clip_duration_ms.unwrap_or(0);
        }
    }
    let base_pct = pct(base_cpu, base_wall);
    RecordResult {
        secs: wall.as_secs_f64(),
        base_pct,
        process_pct: pct(cpu, wall) - base_pct,
        thread_pct: pct(rcpu, wall),
        thread_io: io,
        process_io: pio,
        syncs_recorder: sr - sr0,
        syncs_other: so - so0,
        clips,
        events: ids.len(),
        clip_bytes,
        clip_secs: clip_ms as f64 / 1000.0,
    }
}

// ---- 2. one viewer's pipeline ------------------------------------------------------------

struct PipeResult {
    secs: f64,
    viewer_pct: f64,
    feeder_pct: f64,
    reader_pct: f64,
    fragments: u64,
    bytes: u64,
}

/// The endpoint's WebSocket limits (`api::live`).
fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .max_message_size(Some(4096))
        .max_frame_size(Some(4096))
        .max_write_buffer_size(argus::api::live::MAX_WRITE_BUFFER)
}

/// What the live endpoint does for one viewer: per access unit from `Viewer::next`, the
/// fragment sent as a binary message with the endpoint's 2 s timeout. Returns the fragments.
async fn serve_viewer(feed: Arc<LiveFeed>, mut ws: Socket, sent: Arc<AtomicU64>) -> u64 {
    let mut viewer = feed.join().unwrap();
    let mut mux = LiveMuxer::default();
    while let Some(au) = viewer.next().await {
        let frag = match mux.push(&au) {
            Muxed::Skip => continue,
            Muxed::Fragment(f) => f,
            Muxed::Start(t, init, f) => {
                let codec = t.codec();
                let msg = json!({"type": "stream", "mime": format!("video/mp4; codecs=\"{codec}\""),
                    "codec": codec, "width": t.width, "height": t.height});
                ws.send(Message::text(msg.to_string())).await.unwrap();
                ws.send(Message::binary(init)).await.unwrap();
                f
            }
        };
        sent.fetch_add(frag.len() as u64, Ordering::Relaxed);
        match tokio::time::timeout(Duration::from_secs(2), ws.send(Message::binary(frag))).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("send: {e}"),
            Err(_) => panic!("a fragment did not go out in 2 s over loopback"),
        }
    }
    let _ = ws.close(None).await;
    u64::from(mux.fragments())
}

fn pipe(s: &Stream) -> PipeResult {
    let secs = env_secs("PIPE_SECS", 15);
    let feed = LiveFeed::new(4);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let reader = std::thread::Builder::new()
        .name("live-reader".into())
        .spawn(move || {
            let (mut c, _) = listener.accept().unwrap();
            let mut buf = vec![0u8; 64 << 10];
            let mut n = 0u64;
            while let Ok(k) = c.read(&mut buf) {
                if k == 0 {
                    break;
                }
                n += k as u64;
            }
            n
        })
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    // The camera side: a unit every 1/15 s into the feed until told to stop.
    let feeder = {
        let (feed, stop) = (feed.clone(), stop.clone());
        let units: Vec<Arc<Au>> = (0..s.units.len() as u64).map(|i| s.au(i)).collect();
        let n = units.len() as u64;
        std::thread::Builder::new()
            .name("live-feed".into())
            .spawn(move || {
                let start = Instant::now();
                let mut k = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let due = start + Duration::from_nanos(k * 1_000_000_000 / FPS);
                    if let Some(wait) = due.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                    let u = &units[(k % n) as usize];
                    let au = Arc::new(Au {
                        data: Arc::from(&u.data[..]),
                        pts: k * TICKS,
                        key: u.key,
                    });
                    feed.push(&au);
                    k += 1;
                }
                feed.close();
            })
            .unwrap()
    };
    std::thread::sleep(Duration::from_secs(1));
    let sent = Arc::new(AtomicU64::new(0));
    let server = {
        let (feed, sent) = (feed.clone(), sent.clone());
        std::thread::Builder::new()
            .name("live-viewer".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async move {
                    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
                    tcp.set_nodelay(true).unwrap();
                    let io: Box<dyn Io> = Box::new(tcp);
                    let ws = Socket::from_raw_socket(io, Role::Server, Some(ws_config())).await;
                    serve_viewer(feed, ws, sent).await
                })
            })
            .unwrap()
    };
    std::thread::sleep(Duration::from_millis(500));
    let tids = ["live-viewer", "live-feed", "live-reader"].map(|n| find_thread(n).unwrap());
    let c0 = tids.map(thread_cpu);
    let (b0, t0) = (sent.load(Ordering::Relaxed), Instant::now());
    std::thread::sleep(Duration::from_secs(secs));
    let wall = t0.elapsed();
    let c1 = tids.map(thread_cpu);
    let bytes = sent.load(Ordering::Relaxed) - b0;
    stop.store(true, Ordering::Relaxed);
    feeder.join().unwrap();
    let fragments = server.join().unwrap();
    let _ = reader.join().unwrap();
    PipeResult {
        secs: wall.as_secs_f64(),
        viewer_pct: pct(c1[0] - c0[0], wall),
        feeder_pct: pct(c1[1] - c0[1], wall),
        reader_pct: pct(c1[2] - c0[2], wall),
        fragments,
        bytes,
    }
}

// ---- 3. one viewer of the real server ----------------------------------------------------

struct ServerResult {
    secs: f64,
    without_pct: f64,
    with_pct: f64,
    client_pct: f64,
    analyse_without_pct: f64,
    analyse_with_pct: f64,
    messages: u64,
    bytes: u64,
}

async fn call(
    http: &reqwest::Client,
    base: &str,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut r = http.request(method, format!("{base}{path}"));
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    if let Some(b) = body {
        r = r.json(&b);
    }
    let resp = r.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// A WebSocket client on its own thread and runtime, reading and discarding until `stop`;
/// returns the data messages and bytes it got while `counting`.
fn client(
    url: String,
    stop: Arc<AtomicBool>,
    counting: Arc<AtomicBool>,
) -> std::thread::JoinHandle<(u64, u64)> {
    std::thread::Builder::new()
        .name("ws-client".into())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
                let (mut messages, mut bytes) = (0, 0);
                while !stop.load(Ordering::Relaxed) {
                    match tokio::time::timeout(Duration::from_millis(200), ws.next()).await {
                        Ok(Some(Ok(m))) => {
                            if counting.load(Ordering::Relaxed) {
                                messages += 1;
                                bytes += m.len() as u64;
                            }
                        }
                        Ok(other) => panic!("the live WebSocket ended: {other:?}"),
                        Err(_) => {}
                    }
                }
                let _ = ws.close(None).await;
                (messages, bytes)
            })
        })
        .unwrap()
}

fn server(rt: &tokio::runtime::Runtime) -> ServerResult {
    let secs = env_secs("LIVE_SECS", 20);
    let dir = bench_dir();
    let cfg = Config::for_data_dir(&dir.path().join("data"));
    let data = cfg.data_dir.clone();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let (base, task) = rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            argus::app::run(cfg, Deps::default(), listener, async {
                let _ = stop_rx.await;
            })
            .await
            .expect("the server runs");
        });
        (format!("http://{addr}"), task)
    });
    let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::new();
    let (token, camera) = rt.block_on(async {
        use reqwest::Method;
        for _ in 0..300 {
            if let Ok(r) = http.get(format!("{base}/api/v1/system/health")).send().await {
                if r.status().is_success() {
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let pw = std::fs::read_to_string(data.join("initial-admin-password")).unwrap();
        let login = |pw: String| {
            let (http, base) = (http.clone(), base.clone());
            async move {
                let body = json!({"username": "admin", "password": pw});
                let (s, v) = call(&http, &base, Method::POST, "/api/v1/auth/login", None, Some(body)).await;
                assert_eq!(s, 200, "{v}");
                v["access_token"].as_str().unwrap().to_string()
            }
        };
        let first = login(pw.trim().to_string()).await;
        let body = json!({"current_password": pw.trim(), "new_password": "Bench-Password-1"});
        let (s, v) = call(&http, &base, Method::POST, "/api/v1/auth/change-password", Some(&first), Some(body)).await;
        assert_eq!(s, 200, "{v}");
        let token = login("Bench-Password-1".into()).await;
        let body = json!({"name": "Bench", "type": "file", "file_path": demo_path(), "frame_rate": 5,
            "object_filter": ["motion"], "motion_enabled": false, "record_clips": false});
        let (s, cam) = call(&http, &base, Method::POST, "/api/v1/cameras", Some(&token), Some(body)).await;
        assert_eq!(s, 201, "{cam}");
        let id = cam["id"].as_str().unwrap().to_string();
        for _ in 0..200 {
            let (_, v) = call(&http, &base, Method::GET, &format!("/api/v1/cameras/{id}"), Some(&token), None).await;
            if v["status"]["status"] == json!("streaming") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        (token, id)
    });
    std::thread::sleep(Duration::from_secs(3));
    let analyse = find_thread("analyse-").expect("the camera's analysis thread");

    let window = |extra: Option<i32>| {
        let (p0, a0, e0) = (
            process_cpu(),
            thread_cpu(analyse),
            extra.map_or(0, thread_cpu),
        );
        let t0 = Instant::now();
        std::thread::sleep(Duration::from_secs(secs));
        let wall = t0.elapsed();
        let (p, a, e) = (
            process_cpu() - p0,
            thread_cpu(analyse) - a0,
            extra.map_or(0, thread_cpu) - e0,
        );
        (wall, p, a, e)
    };
    let (wall1, p1, a1, _) = window(None);
    let (stop, counting) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
    );
    let url = format!(
        "{}/api/v1/cameras/{camera}/live?token={token}",
        base.replace("http://", "ws://")
    );
    let c = client(url, stop.clone(), counting.clone());
    std::thread::sleep(Duration::from_secs(2));
    let ctid = find_thread("ws-client").expect("the client thread");
    counting.store(true, Ordering::Relaxed);
    let (wall2, p2, a2, c2) = window(Some(ctid));
    counting.store(false, Ordering::Relaxed);
    stop.store(true, Ordering::Relaxed);
    let (messages, bytes) = c.join().unwrap();
    let _ = stop_tx.send(());
    rt.block_on(task).unwrap();
    let without = pct(p1, wall1);
    ServerResult {
        secs: wall2.as_secs_f64(),
        without_pct: without,
        with_pct: pct_signed(p2 as i64 - c2 as i64, wall2),
        client_pct: pct(c2, wall2),
        analyse_without_pct: pct(a1, wall1),
        analyse_with_pct: pct(a2, wall2),
        messages,
        bytes,
    }
}

// ---- 4. memory ----------------------------------------------------------------------------

struct MemoryResult {
    min_bytes: usize,
    mean_bytes: f64,
    max_bytes: usize,
    min_units: usize,
    max_units: usize,
    max_span_secs: f64,
    bound: usize,
}

fn memory(s: &Stream) -> MemoryResult {
    let bound = argus::config::VideoSection::default().pre_capture_max_bytes;
    let mut ring = PreCapture::new(5_000, bound);
    let n = s.units.len() as u64;
    let (mut min_b, mut max_b, mut sum, mut count) = (usize::MAX, 0, 0f64, 0u64);
    let (mut min_u, mut max_u, mut span) = (usize::MAX, 0, 0u64);
    // Three passes over the file; measured once 6 s are in (the ring is full).
    for i in 0..3 * n.max(10 * FPS) {
        ring.push(s.au(i));
        if i >= WARM_SECS * FPS {
            let (b, u) = (ring.bytes(), ring.len());
            (min_b, max_b, min_u, max_u) = (min_b.min(b), max_b.max(b), min_u.min(u), max_u.max(u));
            sum += b as f64;
            count += 1;
            let first = ring.units().next().map_or(0, |a| a.pts);
            span = span.max(i * TICKS - first);
        }
    }
    MemoryResult {
        min_bytes: min_b,
        mean_bytes: sum / count as f64,
        max_bytes: max_b,
        min_units: min_u,
        max_units: max_u,
        max_span_secs: span as f64 / 90_000.0,
        bound,
    }
}

// ---- the table ----------------------------------------------------------------------------

fn kib(b: f64) -> String {
    format!("{:.1} KiB", b / 1024.0)
}

fn main() {
    let only = std::env::var("ONLY").unwrap_or_default();
    let run = |part: &str| only.is_empty() || only == part;
    // Check that the fsync counting works in this build before relying on it.
    {
        let f = tempfile::tempfile().unwrap();
        let before = syncs().1;
        f.sync_all().unwrap();
        f.sync_data().unwrap();
        assert_eq!(
            syncs().1 - before,
            2,
            "fsync/fdatasync are not counted in this build"
        );
    }
    let s = Stream::load();
    let keys = s.keys.iter().filter(|k| **k).count();
    println!(
        "stream: {} ({} units, {} key frames, {:.1} s at {FPS} fps, {:.0} kbit/s)",
        demo_path().rsplit('/').next().unwrap_or(""),
        s.units.len(),
        keys,
        s.units.len() as f64 / FPS as f64,
        s.bytes_per_sec() * 8.0 / 1000.0
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .max_blocking_threads(32)
        .enable_all()
        .build()
        .unwrap();
    let rec = run("record").then(|| record(&rt, &s));
    let pipe = run("pipe").then(|| pipe(&s));
    let srv = run("server").then(|| server(&rt));
    let mem = run("memory").then(|| memory(&s));

    println!();
    println!("{:<58} {:>16}", "measure", "value");
    let row = |k: &str, v: String| println!("{k:<58} {v:>16}");
    if let Some(r) = rec {
        println!("-- clip recording, one camera ({:.0} s, a clip every {EVENT_EVERY} s: pre 5, post 5, max 10)", r.secs);
        row(
            "recorder thread CPU, % of a core",
            format!("{:.3} %", r.thread_pct),
        );
        row(
            "process CPU added (minus feeder-only baseline), % of a core",
            format!("{:.3} %", r.process_pct),
        );
        row(
            "  feeder-only baseline, % of a core",
            format!("{:.3} %", r.base_pct),
        );
        row(
            "clips attached / events",
            format!("{} / {}", r.clips, r.events),
        );
        row(
            "clip video written per clip (s)",
            format!("{:.2}", r.clip_secs / r.clips.max(1) as f64),
        );
        row(
            "finished clip bytes per clip",
            kib(r.clip_bytes as f64 / r.clips.max(1) as f64),
        );
        row(
            "recorder thread: bytes written (write calls)",
            format!("{} ({})", r.thread_io.wchar, r.thread_io.syscw),
        );
        row(
            "recorder thread: bytes written per second",
            kib(r.thread_io.wchar as f64 / r.secs) + "/s",
        );
        row(
            "recorder thread: bytes sent to storage",
            format!("{}", r.thread_io.write_bytes),
        );
        row(
            "process: bytes written (write calls)",
            format!("{} ({})", r.process_io.wchar, r.process_io.syscw),
        );
        row(
            "fsync+fdatasync: recorder thread / other threads",
            format!("{} / {}", r.syncs_recorder, r.syncs_other),
        );
        row(
            "fsyncs per clip: recorder / other",
            format!(
                "{:.1} / {:.1}",
                r.syncs_recorder as f64 / r.clips.max(1) as f64,
                r.syncs_other as f64 / r.clips.max(1) as f64
            ),
        );
    }
    if let Some(p) = pipe {
        println!("-- one live viewer, its pipeline alone ({:.0} s)", p.secs);
        row(
            "viewer thread CPU (next, fragment, WS send), % of a core",
            format!("{:.3} %", p.viewer_pct),
        );
        row(
            "feeder thread CPU (Arc + LiveFeed::push), % of a core",
            format!("{:.3} %", p.feeder_pct),
        );
        row(
            "discarding reader thread CPU (not counted), % of a core",
            format!("{:.3} %", p.reader_pct),
        );
        row(
            "fragments sent (whole run) / bytes in window",
            format!("{} / {}", p.fragments, p.bytes),
        );
    }
    if let Some(v) = srv {
        println!(
            "-- one live viewer, real server and client ({:.0} s each)",
            v.secs
        );
        row(
            "process CPU, no viewer, % of a core",
            format!("{:.2} %", v.without_pct),
        );
        row(
            "process CPU, one viewer, minus the client thread",
            format!("{:.2} %", v.with_pct),
        );
        row(
            "  the client thread (subtracted), % of a core",
            format!("{:.3} %", v.client_pct),
        );
        row(
            "  the analysis thread, without / with",
            format!("{:.2} / {:.2} %", v.analyse_without_pct, v.analyse_with_pct),
        );
        row(
            "added by the viewer, % of a core",
            format!("{:.2} %", v.with_pct - v.without_pct),
        );
        row(
            "added by the viewer, analysis thread taken out",
            format!(
                "{:.2} %",
                (v.with_pct - v.analyse_with_pct) - (v.without_pct - v.analyse_without_pct)
            ),
        );
        row(
            "messages / bytes the client got in the window",
            format!("{} / {}", v.messages, v.bytes),
        );
    }
    if let Some(m) = mem {
        println!("-- pre-capture ring, pre 5 s");
        row(
            "payload bytes held: min / mean / max",
            format!(
                "{} / {} / {}",
                kib(m.min_bytes as f64),
                kib(m.mean_bytes),
                kib(m.max_bytes as f64)
            ),
        );
        row(
            "units held: min / max",
            format!("{} / {}", m.min_units, m.max_units),
        );
        row("longest span held (s)", format!("{:.2}", m.max_span_secs));
        let per_unit = std::mem::size_of::<Au>() + 16 + 16 + std::mem::size_of::<Arc<Au>>();
        row(
            "bookkeeping per unit (Au, 2 Arc headers, deque slot)",
            format!("{per_unit} B"),
        );
        row(
            "byte bound (pre_capture_max_bytes)",
            format!("{} MiB", m.bound >> 20),
        );
        row(
            "seconds of this stream the bound holds",
            format!("{:.0}", m.bound as f64 / s.bytes_per_sec()),
        );
    }
}
