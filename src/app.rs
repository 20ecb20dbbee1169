//! The running appliance: its shared state, start-up (data dir, keys, first admin), the
//! background tasks, and [`run`], which serves until told to stop.
//!
//! `run(config, deps, listener, shutdown)` takes an already-bound listener and a shutdown future,
//! so tests start the real server on port 0 and stop it when they like.

use crate::auth::api_keys::UsageTracker;
use crate::auth::rate_limit::{KeyRateLimits, LoginLimiter};
use crate::auth::{password, Authenticator};
use crate::bus::{Bus, Topic};
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::crypto::Keys;
use crate::error::{AppError, AppResult};
use crate::settings::{Settings, SettingsUpdate};
use crate::store::events::EventRow;
use crate::store::{users, Store};
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

/// File, in the data dir, holding the first admin password until it is changed.
pub const INITIAL_PASSWORD_FILE: &str = "initial-admin-password";

/// Parts that tests replace.
#[derive(Clone)]
pub struct Deps {
    pub clock: Arc<dyn Clock>,
    /// Opens camera streams; the real one speaks RTSP, V4L2 and reads H.264 files.
    pub opener: Arc<dyn crate::capture::Opener>,
    /// Free and total space of the data filesystem (retention, the free-disk floor).
    pub fs_probe: Arc<dyn crate::retention::FsProbe>,
}

impl Default for Deps {
    fn default() -> Self {
        Deps {
            clock: Arc::new(SystemClock),
            opener: Arc::new(crate::capture::RealOpener),
            fs_probe: Arc::new(crate::retention::Statvfs),
        }
    }
}

/// Everything request handlers and background tasks share.
pub struct AppState {
    pub cfg: Config,
    pub store: Store,
    pub keys: Keys,
    pub clock: Arc<dyn Clock>,
    pub auth: Authenticator,
    pub bus: Bus,
    pub usage: UsageTracker,
    pub key_limits: KeyRateLimits,
    pub login_limiter: LoginLimiter,
    /// Argon2id hashing for request handlers, a few at once (`[auth] password_hashes_in_flight`).
    pub passwords: crate::auth::password::Hasher,
    pub cameras: crate::cameras::CameraManager,
    pub controllers: crate::controllers::ControllerManager,
    pub detector: Arc<crate::detect::service::DetectorService>,
    pub describer: crate::describe::Describer,
    /// Retention policy, pruner state, free-disk floor, consistency report.
    pub retention: crate::retention::Retention,
    pub started: Instant,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot create the data directory {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("object detector: {0} (or run motion-only: [detector] on_error = \"motion-only\", or enabled = false / --motion-only)")]
    Detector(#[from] crate::detect::DetectError),
    #[error(transparent)]
    Keys(#[from] crate::crypto::CryptoError),
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("TLS: {0}")]
    Tls(String),
}

/// Creates the data dir (mode 0700), opens the database and loads (or creates) the keys.
pub fn open_data_dir(cfg: &Config) -> Result<(Store, Keys), StartError> {
    use std::os::unix::fs::DirBuilderExt;
    let dir = &cfg.data_dir;
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|source| StartError::DataDir {
                path: dir.display().to_string(),
                source,
            })?;
    }
    crate::crypto::jwt_provider::install();
    let keys = Keys::load_or_create(dir)?;
    let store = Store::open(&cfg.db_path())?;
    Ok((store, keys))
}

/// On first boot, creates user `admin` with a random password written to
/// `<data-dir>/initial-admin-password` (mode 0600). The password never goes to the log.
pub fn ensure_admin(store: &Store, data_dir: &Path, now_ms: i64) -> Result<bool, StartError> {
    if users::count_blocking(store)? > 0 {
        return Ok(false);
    }
    let pw = password::generate();
    let file = data_dir.join(INITIAL_PASSWORD_FILE);
    crate::crypto::write_secret_file(&file, format!("{pw}\n").as_bytes()).map_err(|source| {
        StartError::Write {
            path: file.display().to_string(),
            source,
        }
    })?;
    let row = users::UserRow {
        id: crate::crypto::new_uuid(),
        username: "admin".into(),
        password_hash: password::hash(&pw),
        role: "admin".into(),
        is_active: true,
        must_change_password: true,
        created_at: now_ms,
        updated_at: now_ms,
        last_login_at: None,
    };
    store.write_blocking(|c| users::insert(c, &row))?;
    tracing::warn!(
        path = %file.display(),
        "created user 'admin'; its one-time password is in this file (change it at first login)"
    );
    Ok(true)
}

const SETTINGS_KEY: &str = "system";

impl AppState {
    /// Builds the state: opens the data dir and creates the first admin if needed.
    pub fn start(cfg: Config, deps: Deps) -> Result<Arc<AppState>, StartError> {
        let (store, keys) = open_data_dir(&cfg)?;
        ensure_admin(&store, &cfg.data_dir, deps.clock.now_ms())?;
        let retention =
            crate::retention::Retention::new(deps.fs_probe.clone(), cfg.data_dir.clone());
        retention.set_consistency(crate::retention::sweep_at_start(
            &store,
            &cfg.data_dir,
            deps.clock.now_ms(),
        )?);
        let detector = Arc::new(crate::detect::service::DetectorService::start(
            &cfg.detector,
        )?);
        let auth = Authenticator {
            store: store.clone(),
            keys: keys.clone(),
            clock: deps.clock.clone(),
        };
        Ok(Arc::new(AppState {
            login_limiter: LoginLimiter::new(
                cfg.auth.login_attempts_per_15min,
                cfg.auth.login_attempts_per_minute,
            ),
            passwords: crate::auth::password::Hasher::from_config(&cfg.auth),
            cfg,
            store,
            keys,
            describer: crate::describe::Describer::new(deps.clock.clone()),
            clock: deps.clock,
            auth,
            bus: Bus::new(),
            usage: UsageTracker::default(),
            key_limits: KeyRateLimits::default(),
            cameras: crate::cameras::CameraManager::new(deps.opener),
            controllers: crate::controllers::ControllerManager::new(),
            detector,
            retention,
            started: Instant::now(),
        }))
    }

    pub async fn settings(&self) -> AppResult<Settings> {
        let raw = self
            .store
            .read(|c| crate::store::settings::get(c, SETTINGS_KEY))
            .await?;
        match raw {
            Some(s) => serde_json::from_str(&s).map_err(AppError::internal),
            None => Ok(Settings::default()),
        }
    }

    pub async fn update_settings(&self, u: SettingsUpdate) -> AppResult<Settings> {
        let now = self.clock.now_ms();
        // A provider whose key, endpoint or model changes starts with a clean breaker.
        let touched: Vec<crate::settings::ProviderName> =
            u.ai_providers.iter().flatten().map(|(n, _)| *n).collect();
        // API keys go sealed into their own rows, never into the settings document.
        let sealed: Vec<(String, Option<String>)> = u
            .ai_providers
            .iter()
            .flatten()
            .filter_map(|(name, p)| {
                let key = p.api_key.as_ref()?;
                Some((
                    provider_key_row(*name),
                    key.as_ref().map(|k| {
                        use base64::Engine;
                        base64::engine::general_purpose::STANDARD
                            .encode(self.keys.seal(k.trim().as_bytes()))
                    }),
                ))
            })
            .collect();
        let out = self
            .store
            .write(move |c| {
                let tx = c.transaction()?;
                let cur: Settings = match crate::store::settings::get(&tx, SETTINGS_KEY)? {
                    Some(s) => serde_json::from_str(&s)?,
                    None => Settings::default(),
                };
                let next = match cur.apply(u) {
                    Ok(n) => n,
                    Err(msg) => return Ok(Err(msg)),
                };
                crate::store::settings::put(
                    &tx,
                    SETTINGS_KEY,
                    &serde_json::to_string(&next)?,
                    now,
                )?;
                for (row, value) in &sealed {
                    match value {
                        Some(v) => crate::store::settings::put(&tx, row, v, now)?,
                        None => crate::store::settings::delete(&tx, row)?,
                    }
                }
                tx.commit()?;
                Ok(Ok(next))
            })
            .await?;
        let s = out.map_err(AppError::invalid)?;
        self.detector.set_min_score(s.detection_min_score);
        self.retention.set_settings(&s, true);
        for p in touched {
            self.describer.breakers.reset(p);
        }
        Ok(s)
    }

    /// A cloud provider's API key, unsealed (for the request that needs it only).
    pub async fn provider_key(&self, name: crate::settings::ProviderName) -> Option<String> {
        let row = provider_key_row(name);
        let sealed = self
            .store
            .read(move |c| crate::store::settings::get(c, &row))
            .await
            .ok()??;
        use base64::Engine;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(sealed)
            .ok()?;
        String::from_utf8(self.keys.unseal(&bytes).ok()?).ok()
    }

    /// Replaces an event's snapshot with a better frame of the same object (and its confidence
    /// and boxes), and sends `event.updated`. The file is replaced atomically; a deleted event
    /// is left alone.
    pub async fn improve_event(
        &self,
        id: &str,
        confidence: u8,
        bounding_boxes: serde_json::Value,
        jpeg: Vec<u8>,
    ) -> AppResult<()> {
        let cur = {
            let id = id.to_string();
            self.store
                .read(move |c| crate::store::events::get(c, &id))
                .await?
        };
        let Some(rel) = cur.thumbnail_path.clone() else {
            return Ok(());
        };
        // Below the free-disk floor the first snapshot stays.
        if !self.retention.admit(jpeg.len() as u64) {
            return Ok(());
        }
        let abs = self.cfg.data_dir.join(&rel);
        let size = jpeg.len() as u64;
        tokio::task::spawn_blocking(move || crate::fsutil::write_atomic(&abs, &jpeg))
            .await
            .map_err(AppError::internal)?
            .map_err(AppError::internal)?;
        let (eid, boxes) = (id.to_string(), bounding_boxes.clone());
        let found = self
            .store
            .write(move |c| {
                crate::store::events::update_detection(c, &eid, confidence, &boxes, size)
            })
            .await?;
        if found {
            let mut row = cur;
            row.confidence = confidence;
            row.bounding_boxes = bounding_boxes;
            row.thumbnail_bytes = size;
            let cam = row.camera_id.clone();
            let name = self
                .store
                .read(move |c| Ok(crate::store::cameras::get(c, &cam).ok().map(|c| c.name)))
                .await
                .unwrap_or(None);
            let dto = crate::api::events::EventDto::from_row(row, name);
            self.bus
                .publish(Topic::Events, "event.updated", &dto, self.clock.now_ms());
        } else {
            // Deleted meanwhile: do not leave the rewritten file behind.
            self.remove_files(vec![rel]).await;
        }
        Ok(())
    }

    /// The live capture status of a camera.
    pub fn camera_status(&self, camera_id: &str) -> crate::api::cameras::CameraStatusDto {
        crate::api::cameras::CameraStatusDto::from(&self.cameras.status(camera_id))
    }

    /// Removes files (paths relative to the data dir) after their rows are gone.
    pub async fn remove_files(&self, rel_paths: Vec<String>) {
        if rel_paths.is_empty() {
            return;
        }
        let dir = self.cfg.data_dir.clone();
        let _ = tokio::task::spawn_blocking(move || {
            for p in rel_paths {
                if let Err(e) = std::fs::remove_file(dir.join(&p)) {
                    if e.kind() != std::io::ErrorKind::NotFound {
                        tracing::warn!(file = %p, error = %e, "could not remove snapshot");
                    }
                }
            }
        })
        .await;
    }

    /// The API view of one event.
    pub async fn event_dto(&self, id: String) -> AppResult<crate::api::events::EventDto> {
        let (row, cam) = self
            .store
            .read(move |c| {
                let e = crate::store::events::get(c, &id)?;
                let cam = crate::store::cameras::get(c, &e.camera_id)
                    .ok()
                    .map(|c| c.name);
                Ok((e, cam))
            })
            .await?;
        Ok(crate::api::events::EventDto::from_row(row, cam))
    }

    /// Stores an event (and its snapshot, written atomically first) and announces it on `/ws`.
    /// This is the one way events enter the appliance. Below the free-disk floor the event is
    /// stored without its snapshot. When this returns `Ok` the event (and its file) is on disk.
    pub async fn record_event(
        &self,
        mut row: EventRow,
        jpeg: Option<Vec<u8>>,
    ) -> AppResult<crate::api::events::EventDto> {
        let jpeg = jpeg.filter(|b| self.retention.admit(b.len() as u64));
        if let Some(bytes) = jpeg {
            let day = crate::clock::utc_day(row.ts);
            let rel = format!("thumbnails/{day}/{}.jpg", row.id);
            let abs = self.cfg.data_dir.join(&rel);
            row.thumbnail_bytes = bytes.len() as u64;
            tokio::task::spawn_blocking(move || crate::fsutil::write_atomic(&abs, &bytes))
                .await
                .map_err(AppError::internal)?
                .map_err(AppError::internal)?;
            row.thumbnail_path = Some(rel);
        }
        let res = self.store.insert_event(row.clone()).await;
        let cam = match res {
            Ok(cam) => {
                self.retention.wrote(row.thumbnail_bytes);
                cam
            }
            Err(e) => {
                self.remove_files(row.thumbnail_path.iter().cloned().collect())
                    .await;
                return Err(e.into());
            }
        };
        let dto = crate::api::events::EventDto::from_row(row, cam);
        self.bus
            .publish(Topic::Events, "event.created", &dto, self.clock.now_ms());
        Ok(dto)
    }
}

/// The settings row holding a provider's sealed API key.
fn provider_key_row(name: crate::settings::ProviderName) -> String {
    format!("ai_key.{}", name.as_str())
}

/// Serves the appliance on `listener` until `shutdown` completes, then stops gracefully: no new
/// connections, in-flight requests get up to 10 s, pending usage counters are written.
pub async fn run(
    cfg: Config,
    deps: Deps,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    let tls = match &cfg.tls {
        Some((cert, key)) => Some(crate::tls::acceptor(cert, key).map_err(StartError::Tls)?),
        None => None,
    };
    let state = tokio::task::spawn_blocking(move || AppState::start(cfg, deps))
        .await
        .map_err(|e| StartError::Tls(format!("start-up task failed: {e}")))??;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);

    let pruner = tokio::spawn(crate::retention::run_pruner(state.clone(), stop_rx.clone()));
    // Background: write API-key usage every 10 s.
    let flusher = {
        let state = state.clone();
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(10)) => {}
                    _ = stop.changed() => break,
                }
                if let Err(e) = state.usage.flush(&state.store).await {
                    tracing::warn!(error = %e, "could not write API key usage; will retry");
                }
                state.login_limiter.prune();
            }
        })
    };

    tracing::info!(
        listen = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(),
        tls = tls.is_some(),
        data_dir = %state.cfg.data_dir.display(),
        "argus is serving"
    );
    match state.settings().await {
        Ok(s) => state.detector.set_min_score(s.detection_min_score),
        Err(e) => tracing::warn!(error = ?e, "cannot read settings; detector minimum score 0.5"),
    }
    state.cameras.start_enabled(&state).await;
    state.controllers.start_enabled(&state).await;
    // systemd (Type=notify): ready now; the watchdog is fed while the database answers.
    crate::sdnotify::notify("READY=1\nSTATUS=serving");
    let watchdog = crate::sdnotify::watchdog_interval().map(|every| {
        let state = state.clone();
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            loop {
                if state.store.ping().await {
                    crate::sdnotify::notify("WATCHDOG=1");
                } else {
                    tracing::error!("the database does not answer; not feeding the watchdog");
                }
                tokio::select! {
                    _ = tokio::time::sleep(every) => {}
                    _ = stop.changed() => break,
                }
            }
        })
    });
    let server = crate::http::serve(listener, state.clone(), tls, stop_rx.clone());
    tokio::pin!(server);
    tokio::select! {
        _ = &mut server => {}
        _ = shutdown => {
            tracing::info!("shutting down");
            let _ = stop_tx.send(true);
            if tokio::time::timeout(Duration::from_secs(10), &mut server).await.is_err() {
                tracing::warn!("connections still open after 10 s; closing them");
            }
        }
    }
    let _ = stop_tx.send(true);
    crate::sdnotify::notify("STOPPING=1");
    if let Some(w) = watchdog {
        let _ = w.await;
    }
    state.cameras.stop_all(&state).await;
    state.controllers.stop_all().await;
    let _ = flusher.await;
    let _ = pruner.await;
    if let Err(e) = state.usage.flush(&state.store).await {
        tracing::warn!(error = %e, "could not write API key usage at shutdown");
    }
    Ok(())
}
