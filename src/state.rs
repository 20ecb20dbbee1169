//! The application state request handlers share, and how it is built at start-up (data dir,
//! keys, first admin, the services and the handles each gets).
//!
//! Services never see [`AppState`]: each gets the narrow handles it uses (store, event stream,
//! clock, settings) when it is built here. Only the HTTP layer and the API handlers hold the
//! whole state.

use crate::auth::api_keys::UsageTracker;
use crate::auth::rate_limit::{KeyRateLimits, LoginLimiter};
use crate::auth::{password, Authenticator};
use crate::bus::Bus;
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::crypto::Keys;
use crate::error::AppResult;
use crate::events::Events;
use crate::settings::{Settings, SettingsHandle, SettingsUpdate};
use crate::store::{users, Store};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

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
    /// The one stream of typed domain messages (`/ws` and the alert engine subscribe).
    pub bus: Bus,
    /// The event lifecycle: record, improve, describe, delete.
    pub events: Events,
    pub settings: SettingsHandle,
    pub usage: UsageTracker,
    pub key_limits: KeyRateLimits,
    pub login_limiter: LoginLimiter,
    /// Argon2id hashing for request handlers, a few at once (`[auth] password_hashes_in_flight`).
    pub passwords: crate::auth::password::Hasher,
    pub cameras: Arc<crate::cameras::CameraManager>,
    /// The MQTT client's settings, status and discovery requests.
    pub mqtt: crate::mqtt::Mqtt,
    pub controllers: Arc<crate::controllers::ControllerManager>,
    pub detector: Arc<crate::detect::service::DetectorService>,
    pub describer: Arc<crate::describe::Describer>,
    /// Retention policy, pruner state, free-disk floor, consistency report.
    pub retention: Arc<crate::retention::Retention>,
    /// Signed snapshot links for webhooks and notifications.
    pub links: crate::alerts::links::MediaLinks,
    /// Sends webhook requests (the dispatcher has its own; this one serves `/webhooks/test`).
    pub webhooks: crate::alerts::webhook::Sender,
    /// Wakes the webhook dispatcher when the alert engine queues a delivery.
    pub outbox: Arc<tokio::sync::Notify>,
    /// Connected `/ws` clients (kept by the HTTP layer, shown by `/system/health`).
    pub ws_clients: Arc<std::sync::atomic::AtomicUsize>,
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

impl AppState {
    /// Builds the state: opens the data dir and creates the first admin if needed.
    pub fn start(cfg: Config, deps: Deps) -> Result<Arc<AppState>, StartError> {
        let (store, keys) = open_data_dir(&cfg)?;
        ensure_admin(&store, &cfg.data_dir, deps.clock.now_ms())?;
        let retention = Arc::new(crate::retention::Retention::new(
            deps.fs_probe.clone(),
            cfg.data_dir.clone(),
        ));
        // Clips a crash cut short become clips (up to their last complete fragment) first,
        // so the consistency pass sees them in place.
        crate::clips::recover_at_start(&store, &cfg.data_dir)?;
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
        let bus = Bus::new();
        let settings = SettingsHandle::new(store.clone(), keys.clone());
        let events = Events::new(
            store.clone(),
            cfg.data_dir.clone(),
            retention.clone(),
            bus.clone(),
            deps.clock.clone(),
        );
        let describer = Arc::new(crate::describe::Describer::new(
            store.clone(),
            settings.clone(),
            events.clone(),
            bus.clone(),
            deps.clock.clone(),
        ));
        let cameras = Arc::new(crate::cameras::CameraManager::new(crate::cameras::Env {
            store: store.clone(),
            keys: keys.clone(),
            clock: deps.clock.clone(),
            bus: bus.clone(),
            events: events.clone(),
            detector: detector.clone(),
            describer: describer.clone(),
            opener: deps.opener,
            video: cfg.video.clone(),
            retention: retention.clone(),
        }));
        let controllers = Arc::new(crate::controllers::ControllerManager::new(
            crate::controllers::Env {
                store: store.clone(),
                keys: keys.clone(),
                clock: deps.clock.clone(),
                bus: bus.clone(),
                events: events.clone(),
                describer: describer.clone(),
                protect: cfg.protect.clone(),
                video: cfg.video.clone(),
            },
        ));
        let links = crate::alerts::links::MediaLinks::new(
            keys.media_key(),
            cfg.http.public_url.clone(),
            cfg.http.media_link_ttl_secs,
            deps.clock.clone(),
        );
        let mqtt = crate::mqtt::Mqtt::new(crate::mqtt::config::Runtime {
            cfg: Default::default(),
            password: None,
            node_id: keys.node_id().to_string(),
        });
        Ok(Arc::new(AppState {
            mqtt,
            links,
            webhooks: crate::alerts::webhook::Sender::new(),
            outbox: Arc::default(),
            login_limiter: LoginLimiter::new(
                cfg.auth.login_attempts_per_15min,
                cfg.auth.login_attempts_per_minute,
            ),
            passwords: crate::auth::password::Hasher::from_config(&cfg.auth),
            cfg,
            store,
            keys,
            describer,
            clock: deps.clock,
            auth,
            bus,
            events,
            settings,
            usage: UsageTracker::default(),
            key_limits: KeyRateLimits::default(),
            cameras,
            controllers,
            detector,
            retention,
            ws_clients: Arc::default(),
            started: Instant::now(),
        }))
    }

    pub async fn settings(&self) -> AppResult<Settings> {
        self.settings.get().await
    }

    /// Saves a settings update and applies it at once: the detector's minimum score, the
    /// retention policy (and a pruner run), and a clean breaker for every provider whose key,
    /// endpoint or model changed.
    pub async fn update_settings(&self, u: SettingsUpdate) -> AppResult<Settings> {
        let touched: Vec<crate::settings::ProviderName> =
            u.ai_providers.iter().flatten().map(|(n, _)| *n).collect();
        let s = self.settings.update(u, self.clock.now_ms()).await?;
        self.detector.set_min_score(s.detection_min_score);
        self.retention.set_settings(&s, true);
        for p in touched {
            self.describer.breakers.reset(p);
        }
        Ok(s)
    }
}
