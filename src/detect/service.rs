//! The detector as the running appliance holds it: its `[detector]` settings (the configuration
//! file re-exports them), loaded once at start-up from them (model and runtime paths searched in
//! the documented places), the shared worker pool, the pipeline's counters, and what
//! `/system/health` says about it. When loading fails the appliance either refuses to start (the
//! default) or, with `on_error = "motion-only"`, runs with every motion an event and says so
//! loudly.

use super::pool::Pool;
use super::{BackendKind, DetectError, Detector, ExecutionProvider, LoadOptions};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use utoipa::ToSchema;

/// What to do when the detector cannot be loaded at start-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnDetectorError {
    /// Refuse to start, naming the missing or broken file.
    Fail,
    /// Start anyway with every motion an event (no object detection), warn loudly and report
    /// `degraded` in `/system/health`.
    MotionOnly,
}

/// `[detector]`: the on-device object detector.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DetectorSection {
    /// `false` runs motion-only on purpose: every motion is an event, nothing is degraded.
    pub enabled: bool,
    /// The model description (TOML beside the `.onnx`). Default: the first found of
    /// `<exe dir>/models/`, `<exe dir>/../share/argus/models/`, `/usr/share/argus/models/`,
    /// `./models/`, each with `yolov4-tiny-416-int8.toml` (`yolov4-tiny-416.toml` on armv7).
    pub model: Option<PathBuf>,
    /// The ONNX Runtime shared library. Default: `$ORT_DYLIB_PATH`, else the first found of
    /// `<exe dir>/libonnxruntime.so`, `<exe dir>/../lib/argus/libonnxruntime.so`,
    /// `/usr/lib/argus/libonnxruntime.so`, `./target/onnxruntime/<arch>/libonnxruntime.so`.
    pub runtime: Option<PathBuf>,
    /// `onnxruntime` (default where it exists) or `tract` (pure Rust; the default on 32-bit
    /// ARM).
    pub backend: Option<BackendKind>,
    /// `cpu` (default), `cuda` or `tensorrt` (Jetson); falls back to CPU with a warning.
    pub execution_provider: ExecutionProvider,
    /// Inference threads (each with its own model instance), shared by all cameras.
    pub workers: usize,
    /// Threads per inference (default: the machine's cores divided by `workers`, at most 4).
    pub threads: Option<usize>,
    /// Frames waiting for the detector, across cameras, beyond which the oldest are dropped.
    pub queue: usize,
    pub on_error: OnDetectorError,
}

impl Default for DetectorSection {
    fn default() -> Self {
        DetectorSection {
            enabled: true,
            model: None,
            runtime: None,
            backend: None,
            execution_provider: ExecutionProvider::Cpu,
            workers: 1,
            threads: None,
            queue: 16,
            on_error: OnDetectorError::Fail,
        }
    }
}

impl DetectorSection {
    /// Detection switched off (motion-only on purpose), for tools and tests that do not need it.
    pub fn off() -> Self {
        DetectorSection {
            enabled: false,
            ..Default::default()
        }
    }
}

/// The model shipped in `models/`: YOLOv4-tiny, int8 for ONNX Runtime; on armv7, where tract
/// runs it, the float model (tract's int8 kernels round differently from ONNX Runtime's: scores
/// differ by up to 0.16, where the float models agree within 1e-4).
#[cfg(not(target_arch = "arm"))]
pub const DEFAULT_MODEL: &str = "yolov4-tiny-416-int8.toml";
#[cfg(target_arch = "arm")]
pub const DEFAULT_MODEL: &str = "yolov4-tiny-416.toml";

/// Pipeline counters (since start-up).
#[derive(Default)]
pub struct Counters {
    /// Analysed frames with motion (inside zones, schedule active).
    pub motion_frames: AtomicU64,
    /// Objects of a camera's filter found at or above the minimum score.
    pub objects: AtomicU64,
    /// Events created from tracked objects.
    pub object_events: AtomicU64,
    /// Events created from motion alone (`motion` in a camera's filter, or motion-only mode).
    pub motion_events: AtomicU64,
    /// Motion frames that did not become an event (nothing of interest): what a motion-only
    /// appliance would have sent to the cloud and this one kept.
    pub kept_from_cloud: AtomicU64,
    /// Detector results a camera could not take in time (its pipeline was backed up).
    pub results_dropped: AtomicU64,
}

pub struct DetectorService {
    pub pool: Option<Pool>,
    /// Why detection is off, when it is.
    pub disabled_reason: Option<String>,
    /// True when detection was wanted but could not be loaded.
    pub degraded: bool,
    pub model: Option<PathBuf>,
    pub threads: usize,
    pub counters: Counters,
    min_score_bits: AtomicU32,
}

/// `/system/health` → `detector`.
#[derive(Debug, Serialize, ToSchema)]
pub struct DetectorHealth {
    /// `objects` (motion → detector → events), `motion-only` (could not load; every motion is an
    /// event) or `off` (switched off in the configuration).
    pub mode: &'static str,
    /// `onnxruntime-cpu`, `onnxruntime-cuda`, `onnxruntime-tensorrt` or `tract`.
    pub backend: Option<String>,
    pub model: Option<String>,
    /// Why detection is not running.
    pub error: Option<String>,
    pub workers: usize,
    pub threads_per_worker: usize,
    pub min_score: f32,
    pub motion_frames: u64,
    pub detector_runs: u64,
    pub detector_regions: u64,
    pub detector_errors: u64,
    /// Frames dropped unanalysed because the detector was behind (overload).
    pub frames_dropped: u64,
    pub queued: usize,
    pub objects_detected: u64,
    pub object_events: u64,
    pub motion_events: u64,
    pub frames_kept_from_cloud: u64,
    pub avg_inference_ms: Option<f64>,
    pub avg_latency_ms: Option<f64>,
}

fn exe_dir() -> Option<PathBuf> {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
}

/// Where the model description is looked for, in order.
pub fn model_candidates() -> Vec<PathBuf> {
    let mut v = Vec::new();
    if let Some(d) = exe_dir() {
        v.push(d.join("models").join(DEFAULT_MODEL));
        v.push(d.join("../share/argus/models").join(DEFAULT_MODEL));
    }
    v.push(PathBuf::from("/usr/share/argus/models").join(DEFAULT_MODEL));
    v.push(PathBuf::from("models").join(DEFAULT_MODEL));
    v
}

/// Where the ONNX Runtime library is looked for, in order.
pub fn runtime_candidates() -> Vec<PathBuf> {
    let mut v = Vec::new();
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH") {
        v.push(PathBuf::from(p));
    }
    if let Some(d) = exe_dir() {
        v.push(d.join("libonnxruntime.so"));
        v.push(d.join("../lib/argus/libonnxruntime.so"));
    }
    v.push(PathBuf::from("/usr/lib/argus/libonnxruntime.so"));
    v.push(
        PathBuf::from("target/onnxruntime")
            .join(std::env::consts::ARCH)
            .join("libonnxruntime.so"),
    );
    v
}

fn pick(configured: &Option<PathBuf>, candidates: Vec<PathBuf>) -> Result<PathBuf, String> {
    if let Some(p) = configured {
        return Ok(p.clone());
    }
    match candidates.iter().find(|p| p.exists()) {
        Some(p) => Ok(p.clone()),
        None => Err(candidates
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")),
    }
}

/// Hands the memory freed after loading a model back to the OS. ONNX Runtime parses the model
/// file into hundreds of thousands of small protobuf allocations (about 44 MB for the 35 MB
/// YOLOv3-tiny) and frees them once the session is built; glibc keeps those pages resident in
/// its arena, as free chunks below live ones it cannot trim from the top: about 20 MB of the
/// resident memory with the detector loaded (97 MB before, 77 MB after; scripts/bench-memory.sh).
/// `malloc_trim` releases free pages anywhere in the arenas. Once, at start-up.
fn release_freed_memory() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim has no preconditions; it takes the arenas' locks itself.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// The backend used when the configuration names none.
pub fn default_backend() -> BackendKind {
    if cfg!(target_arch = "arm") {
        BackendKind::Tract
    } else {
        BackendKind::Onnxruntime
    }
}

impl DetectorService {
    /// Loads the detector as configured. `Err` only when loading fails and `on_error = "fail"`.
    pub fn start(cfg: &DetectorSection) -> Result<DetectorService, DetectError> {
        let threads = cfg.threads.unwrap_or_else(|| {
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            (cores / cfg.workers.max(1)).clamp(1, 4)
        });
        let mut svc = DetectorService {
            pool: None,
            disabled_reason: None,
            degraded: false,
            model: None,
            threads,
            counters: Counters::default(),
            min_score_bits: AtomicU32::new(0.5f32.to_bits()),
        };
        if !cfg.enabled {
            svc.disabled_reason = Some("switched off in the configuration".into());
            tracing::info!("object detection is off: every motion becomes an event");
            return Ok(svc);
        }
        match Self::load(cfg, threads) {
            Ok((detectors, model)) => {
                let pool = Pool::start(detectors, cfg.queue);
                tracing::info!(
                    backend = %pool.backend,
                    model = %model.display(),
                    workers = pool.workers(),
                    threads,
                    "object detector ready"
                );
                svc.model = Some(model);
                svc.pool = Some(pool);
                Ok(svc)
            }
            Err(e) if cfg.on_error == OnDetectorError::MotionOnly => {
                tracing::error!(
                    error = %e,
                    "OBJECT DETECTION IS NOT RUNNING: every motion becomes an event \
                     (detector.on_error = \"motion-only\"); /system/health reports degraded"
                );
                svc.disabled_reason = Some(e.to_string());
                svc.degraded = true;
                Ok(svc)
            }
            Err(e) => Err(e),
        }
    }

    fn load(
        cfg: &DetectorSection,
        threads: usize,
    ) -> Result<(Vec<Detector>, PathBuf), DetectError> {
        let model = pick(&cfg.model, model_candidates()).map_err(|searched| DetectError::Spec {
            path: searched,
            message: "no model description found (set [detector] model or --model)".into(),
        })?;
        let backend = cfg.backend.unwrap_or_else(default_backend);
        let runtime = if backend == BackendKind::Onnxruntime {
            pick(&cfg.runtime, runtime_candidates()).map_err(|searched| DetectError::Runtime {
                path: searched,
                message: "no ONNX Runtime library found (scripts/fetch-onnxruntime.sh fetches \
                          it; set [detector] runtime or --onnxruntime)"
                    .into(),
            })?
        } else {
            PathBuf::new()
        };
        let o = LoadOptions {
            backend,
            model: model.clone(),
            runtime,
            execution_provider: cfg.execution_provider,
            threads,
        };
        let detectors = (0..cfg.workers.max(1))
            .map(|_| Detector::load(&o))
            .collect::<Result<Vec<_>, _>>()?;
        release_freed_memory();
        Ok((detectors, model))
    }

    /// The minimum score for an object to count (settings `detection_min_score`).
    pub fn min_score(&self) -> f32 {
        f32::from_bits(self.min_score_bits.load(Ordering::Relaxed))
    }

    pub fn set_min_score(&self, s: f32) {
        self.min_score_bits.store(s.to_bits(), Ordering::Relaxed);
    }

    pub fn health(&self) -> DetectorHealth {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let (runs, regions, errors, dropped, busy, latency, queued, backend, workers) =
            match &self.pool {
                Some(p) => {
                    let pc = p.counters();
                    (
                        get(&pc.completed),
                        get(&pc.regions),
                        get(&pc.failed),
                        get(&pc.dropped),
                        get(&pc.busy_us),
                        get(&pc.latency_us),
                        p.queued(),
                        Some(p.backend.clone()),
                        p.workers(),
                    )
                }
                None => (0, 0, 0, 0, 0, 0, 0, None, 0),
            };
        let done = runs + errors;
        let avg = |us: u64| (done > 0).then(|| (us as f64 / done as f64 / 100.0).round() / 10.0);
        DetectorHealth {
            mode: match (&self.pool, self.degraded) {
                (Some(_), _) => "objects",
                (None, true) => "motion-only",
                (None, false) => "off",
            },
            backend,
            model: self.model.as_ref().map(|p| p.display().to_string()),
            error: self.disabled_reason.clone(),
            workers,
            threads_per_worker: self.threads,
            min_score: self.min_score(),
            motion_frames: get(&c.motion_frames),
            detector_runs: runs,
            detector_regions: regions,
            detector_errors: errors,
            frames_dropped: dropped + get(&c.results_dropped),
            queued,
            objects_detected: get(&c.objects),
            object_events: get(&c.object_events),
            motion_events: get(&c.motion_events),
            frames_kept_from_cloud: get(&c.kept_from_cloud),
            avg_inference_ms: avg(busy),
            avg_latency_ms: avg(latency),
        }
    }
}
