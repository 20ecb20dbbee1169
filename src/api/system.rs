//! `/system`: health (public), settings, storage figures and TLS status.

use super::Ctx;
use crate::error::{AppError, AppResult};
use crate::http::body::{ok, read_json, Body};
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
}

/// Health check (no authentication).
#[utoipa::path(get, path = "/api/v1/system/health", tag = "system",
    responses((status = 200, body = HealthDto)))]
pub async fn health(ctx: Ctx) -> AppResult<Response<Body>> {
    let db = ctx.state.store.ping().await;
    let degraded = !db || ctx.state.detector.degraded;
    ok(&HealthDto {
        status: if degraded { "degraded" } else { "ok" }.into(),
        version: env!("CARGO_PKG_VERSION").into(),
        uptime_seconds: ctx.state.started.elapsed().as_secs(),
        database: db,
        schema_version: crate::store::SCHEMA_VERSION,
        websocket_clients: ctx.state.bus.client_count(),
        time: crate::clock::format_rfc3339(ctx.state.clock.now_ms()),
        detector: ctx.state.detector.health(),
        protect: ctx.state.controllers.health(),
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
    pub retention_days: u32,
    pub max_storage_bytes: Option<u64>,
    pub min_free_disk_bytes: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StorageDto {
    /// Database file plus its write-ahead log.
    pub database_bytes: u64,
    pub thumbnail_bytes: u64,
    /// Free bytes on the data directory's filesystem.
    pub free_bytes: u64,
    pub total_bytes: u64,
    pub event_count: u64,
    pub by_camera: Vec<CameraStorage>,
    pub oldest_event_at: Option<String>,
    pub newest_event_at: Option<String>,
    pub policy: StoragePolicy,
}

/// Free and total bytes of the filesystem holding `path`.
pub fn disk_space(path: &std::path::Path) -> Option<(u64, u64)> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid NUL-terminated path and `st` a properly sized out-parameter.
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return None;
    }
    let frsize = st.f_frsize as u64;
    Some((st.f_bavail as u64 * frsize, st.f_blocks as u64 * frsize))
}

/// Storage use: database, snapshots, disk, event counts.
#[utoipa::path(get, path = "/api/v1/system/storage", tag = "system",
    responses((status = 200, body = StorageDto)),
    security(("api_key" = ["admin"]), ("bearer" = [])))]
pub async fn storage(ctx: Ctx) -> AppResult<Response<Body>> {
    let settings = ctx.state.settings().await?;
    let (totals, span, names) = ctx
        .state
        .store
        .read(|c| {
            Ok((
                crate::store::events::totals_by_camera(c)?,
                crate::store::events::time_span(c)?,
                crate::store::cameras::names(c)?,
            ))
        })
        .await?;
    let (free, total) = disk_space(&ctx.state.cfg.data_dir).unwrap_or((0, 0));
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
        thumbnail_bytes: by_camera.iter().map(|c| c.thumbnail_bytes).sum(),
        event_count: by_camera.iter().map(|c| c.event_count).sum(),
        free_bytes: free,
        total_bytes: total,
        by_camera,
        oldest_event_at: span.0.map(crate::clock::format_rfc3339),
        newest_event_at: span.1.map(crate::clock::format_rfc3339),
        policy: StoragePolicy {
            retention_days: settings.retention_days,
            max_storage_bytes: settings.max_storage_bytes,
            min_free_disk_bytes: settings.min_free_disk_bytes,
        },
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
