//! `/system`: health (public), settings, storage figures and TLS status.

use super::Ctx;
use crate::api::body::{ok, read_json, Body};
use crate::error::{AppError, AppResult};
use crate::settings::{Settings, SettingsUpdate};
use hyper::body::Incoming;
use hyper::{Request, Response};
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, Serialize, ToSchema)]
pub struct HealthDto {
    /// `ok`, or `degraded` when a part is not working (see the other fields).
    pub status: String,
    pub version: String,
    pub uptime_seconds: u64,
    /// True when the database answers.
    pub database: bool,
    pub schema_version: i64,
    /// Connected WebSocket clients.
    pub websocket_clients: usize,
    pub time: String,
    /// The on-device object detector and the pipeline's counters since start-up.
    pub detector: crate::detect::service::DetectorHealth,
    /// UniFi Protect controllers being followed, and how many are connected.
    pub protect: crate::controllers::ProtectHealth,
    /// The data filesystem against the free-disk floor.
    pub storage: StorageHealth,
    /// Messages of the event stream each subscriber (`ws`, `alerts`, `mqtt`) lost by falling more
    /// than the stream's ring behind, since start-up.
    pub stream_lagged: std::collections::BTreeMap<String, u64>,
    /// Webhook deliveries waiting in the outbox (to be sent, or retried).
    pub webhooks_pending: u64,
    /// The MQTT client (details for admins at `/integrations/mqtt/status`).
    pub mqtt: MqttHealth,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MqttHealth {
    pub enabled: bool,
    pub connected: bool,
    /// Messages waiting for the broker.
    pub messages_queued: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StorageHealth {
    /// `ok`, or `low_disk`: free space is below `min_free_disk_bytes`; events are stored
    /// without snapshots and the oldest events are being pruned.
    pub status: String,
    pub free_bytes: Option<u64>,
    pub min_free_disk_bytes: Option<u64>,
}

/// Health check (no authentication).
#[utoipa::path(get, path = "/api/v1/system/health", tag = "system",
    responses((status = 200, body = HealthDto)))]
pub async fn health(ctx: Ctx) -> AppResult<Response<Body>> {
    let db = ctx.state.store.ping().await;
    let st = ctx.state.retention.status();
    let degraded = !db || ctx.state.detector.degraded || st.low_disk;
    let webhooks_pending = ctx
        .state
        .store
        .read(crate::store::alerts::pending_count)
        .await
        .unwrap_or(0);
    ok(&HealthDto {
        status: if degraded { "degraded" } else { "ok" }.into(),
        version: env!("CARGO_PKG_VERSION").into(),
        uptime_seconds: ctx.state.started.elapsed().as_secs(),
        database: db,
        schema_version: crate::store::SCHEMA_VERSION,
        websocket_clients: ctx
            .state
            .ws_clients
            .load(std::sync::atomic::Ordering::Relaxed),
        time: crate::clock::format_rfc3339(ctx.state.clock.now_ms()),
        detector: ctx.state.detector.health(),
        protect: ctx.state.controllers.health(),
        storage: StorageHealth {
            status: if st.low_disk { "low_disk" } else { "ok" }.into(),
            free_bytes: st.space.map(|s| s.free),
            min_free_disk_bytes: st.limits.map(|l| l.min_free_disk_bytes),
        },
        stream_lagged: ctx
            .state
            .bus
            .lagged()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
        webhooks_pending,
        mqtt: {
            let m = ctx.state.mqtt.status();
            MqttHealth {
                enabled: m.enabled,
                connected: m.connected,
                messages_queued: m.messages_queued,
            }
        },
    })
}

/// Read the runtime settings.
#[utoipa::path(get, path = "/api/v1/system/settings", tag = "system",
    responses((status = 200, body = Settings)),
    security(("api_key" = ["admin"]), ("bearer" = [])))]
pub async fn get_settings(ctx: Ctx) -> AppResult<Response<Body>> {
    ok(&ctx.state.settings().await?)
}

/// Change runtime settings (partial update).
#[utoipa::path(put, path = "/api/v1/system/settings", tag = "system", request_body = SettingsUpdate,
    responses((status = 200, body = Settings), (status = 422, body = super::ErrorBody)),
    security(("api_key" = ["admin"]), ("bearer" = [])))]
pub async fn put_settings(ctx: Ctx, req: Request<Incoming>) -> AppResult<Response<Body>> {
    let u: SettingsUpdate = read_json(req, ctx.body_limit()).await?;
    let s = ctx.state.update_settings(u).await?;
    ok(&s)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CameraStorage {
    pub camera_id: String,
    pub camera_name: Option<String>,
    pub event_count: u64,
    pub thumbnail_bytes: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StoragePolicy {
    /// As set (0 = keep forever).
    pub retention_days: u32,
    /// Per-camera overrides of `retention_days`, by camera id.
    #[schema(value_type = Object)]
    pub camera_retention: std::collections::BTreeMap<String, crate::settings::CameraRetention>,
    /// As set (`null` = the default).
    pub max_storage_bytes: Option<u64>,
    /// As set (`null` = the default).
    pub min_free_disk_bytes: Option<u64>,
    /// The size limit in force (the default is 50 % of the filesystem).
    pub effective_max_storage_bytes: Option<u64>,
    /// The floor in force (the default is 256 MiB or 5 % of the filesystem, the smaller).
    pub effective_min_free_disk_bytes: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PruneRunDto {
    /// `start`, `schedule`, `settings`, `limit` (a write crossed a limit) or `cleanup`.
    pub trigger: String,
    pub started_at: String,
    pub finished_at: String,
    pub events_deleted: u64,
    /// Of which: past their age limit, over the size limit, under the free-disk floor.
    pub by_age: u64,
    pub by_size: u64,
    pub by_low_disk: u64,
    pub thumbnails_deleted: u64,
    /// Bytes of snapshot files removed.
    pub bytes_freed: u64,
    /// Delete transactions (at most 250 events each) and the longest one, in ms.
    pub batches: u64,
    pub max_batch_ms: f64,
    pub duration_ms: f64,
    pub error: Option<String>,
}

impl From<crate::retention::Report> for PruneRunDto {
    fn from(r: crate::retention::Report) -> Self {
        PruneRunDto {
            trigger: r.trigger.into(),
            started_at: crate::clock::format_rfc3339(r.started_at_ms),
            finished_at: crate::clock::format_rfc3339(r.finished_at_ms),
            events_deleted: r.events_deleted,
            by_age: r.by_age,
            by_size: r.by_size,
            by_low_disk: r.by_low_disk,
            thumbnails_deleted: r.thumbnails_deleted,
            bytes_freed: r.bytes_freed,
            batches: r.batches,
            max_batch_ms: r.max_batch_ms,
            duration_ms: r.duration_ms,
            error: r.error,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConsistencyDto {
    pub checked_at: String,
    pub files_checked: u64,
    pub rows_checked: u64,
    pub orphans_removed: u64,
    pub temp_files_removed: u64,
    /// Events whose snapshot file is missing (kept; their thumbnail answers 404).
    pub rows_missing_file: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StorageDto {
    /// Database file plus its write-ahead log.
    pub database_bytes: u64,
    /// Database pages in use (what the size limit counts; deleted rows free pages for reuse).
    pub database_used_bytes: u64,
    pub thumbnail_bytes: u64,
    /// Event clips (MP4).
    pub clip_bytes: u64,
    /// `database_used_bytes + thumbnail_bytes + clip_bytes`, compared with the size limit.
    pub usage_bytes: u64,
    /// Free bytes on the data directory's filesystem.
    pub free_bytes: u64,
    pub total_bytes: u64,
    /// `ok` or `low_disk` (see `/system/health`).
    pub status: String,
    pub event_count: u64,
    pub by_camera: Vec<CameraStorage>,
    pub oldest_event_at: Option<String>,
    pub newest_event_at: Option<String>,
    pub policy: StoragePolicy,
    /// The last pruning run since start-up (`null` before the first).
    pub last_prune: Option<PruneRunDto>,
    /// Pruning runs finished since start-up.
    pub prune_runs: u64,
    /// True while a pruning run is deleting.
    pub pruning: bool,
    /// The start-up consistency pass.
    pub consistency: Option<ConsistencyDto>,
}

/// Storage use: database, snapshots, disk, event counts, policy, pruning.
#[utoipa::path(get, path = "/api/v1/system/storage", tag = "system",
    responses((status = 200, body = StorageDto)),
    security(("api_key" = ["admin"]), ("bearer" = [])))]
pub async fn storage(ctx: Ctx) -> AppResult<Response<Body>> {
    let settings = ctx.state.settings().await?;
    let (totals, span, names, usage) = ctx
        .state
        .store
        .read(|c| {
            Ok((
                crate::store::events::totals_by_camera(c)?,
                crate::store::events::time_span(c)?,
                crate::store::cameras::names(c)?,
                crate::store::retention::usage(c)?,
            ))
        })
        .await?;
    let st = ctx.state.retention.status();
    let by_camera: Vec<CameraStorage> = totals
        .into_iter()
        .filter(|(_, (n, _))| *n > 0)
        .map(|(id, (n, bytes))| CameraStorage {
            camera_name: names.get(&id).cloned(),
            camera_id: id,
            event_count: n,
            thumbnail_bytes: bytes,
        })
        .collect();
    ok(&StorageDto {
        database_bytes: ctx.state.store.size_bytes(),
        database_used_bytes: usage.database_used_bytes,
        thumbnail_bytes: usage.thumbnail_bytes,
        clip_bytes: usage.clip_bytes,
        usage_bytes: usage.total(),
        event_count: by_camera.iter().map(|c| c.event_count).sum(),
        free_bytes: st.space.map(|s| s.free).unwrap_or(0),
        total_bytes: st.space.map(|s| s.total).unwrap_or(0),
        status: if st.low_disk { "low_disk" } else { "ok" }.into(),
        by_camera,
        oldest_event_at: span.0.map(crate::clock::format_rfc3339),
        newest_event_at: span.1.map(crate::clock::format_rfc3339),
        policy: StoragePolicy {
            retention_days: settings.retention_days,
            camera_retention: settings.camera_retention,
            max_storage_bytes: settings.max_storage_bytes,
            min_free_disk_bytes: settings.min_free_disk_bytes,
            effective_max_storage_bytes: st.limits.map(|l| l.max_storage_bytes),
            effective_min_free_disk_bytes: st.limits.map(|l| l.min_free_disk_bytes),
        },
        last_prune: ctx.state.retention.last_run().map(PruneRunDto::from),
        prune_runs: ctx.state.retention.runs(),
        pruning: ctx.state.retention.is_running(),
        consistency: ctx.state.retention.consistency().map(|c| ConsistencyDto {
            checked_at: crate::clock::format_rfc3339(c.checked_at_ms),
            files_checked: c.files_checked,
            rows_checked: c.rows_checked,
            orphans_removed: c.orphans.len() as u64,
            temp_files_removed: c.temp_files.len() as u64,
            rows_missing_file: c.missing_count,
        }),
    })
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SslStatusDto {
    /// True when the appliance serves HTTPS.
    pub ssl_enabled: bool,
    /// True when the certificate parses and is within its validity period.
    pub certificate_valid: bool,
    pub certificate_expires: Option<String>,
    pub certificate_not_before: Option<String>,
    pub certificate_subject: Option<String>,
    pub certificate_issuer: Option<String>,
    /// TLS versions offered.
    pub tls_versions: Vec<String>,
    pub error: Option<String>,
}

/// HTTPS configuration and certificate.
#[utoipa::path(get, path = "/api/v1/system/ssl-status", tag = "system",
    responses((status = 200, body = SslStatusDto)),
    security(("api_key" = ["admin"]), ("bearer" = [])))]
pub async fn ssl_status(ctx: Ctx) -> AppResult<Response<Body>> {
    let Some((cert, _)) = ctx.state.cfg.tls.clone() else {
        return ok(&SslStatusDto {
            ssl_enabled: false,
            certificate_valid: false,
            certificate_expires: None,
            certificate_not_before: None,
            certificate_subject: None,
            certificate_issuer: None,
            tls_versions: vec![],
            error: None,
        });
    };
    let now = ctx.state.clock.now_ms();
    let info = tokio::task::spawn_blocking(move || crate::tls::describe_cert_file(&cert))
        .await
        .map_err(AppError::internal)?;
    let dto = match info {
        Ok(i) => SslStatusDto {
            ssl_enabled: true,
            certificate_valid: i.not_before_ms <= now && now < i.not_after_ms,
            certificate_expires: Some(crate::clock::format_rfc3339(i.not_after_ms)),
            certificate_not_before: Some(crate::clock::format_rfc3339(i.not_before_ms)),
            certificate_subject: Some(i.subject),
            certificate_issuer: Some(i.issuer),
            tls_versions: vec!["TLSv1.2".into(), "TLSv1.3".into()],
            error: None,
        },
        Err(e) => SslStatusDto {
            ssl_enabled: true,
            certificate_valid: false,
            certificate_expires: None,
            certificate_not_before: None,
            certificate_subject: None,
            certificate_issuer: None,
            tls_versions: vec!["TLSv1.2".into(), "TLSv1.3".into()],
            error: Some(e),
        },
    };
    ok(&dto)
}
