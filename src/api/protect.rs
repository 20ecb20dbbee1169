//! `/protect/controllers`: UniFi Protect consoles and their cameras. Controllers are stored with
//! their password sealed (never returned); enabled ones are followed by
//! [`crate::controllers::ControllerManager`]. A Protect camera becomes an appliance camera
//! (`type` `protect`) when it is enabled for analysis with its smart-detection filter.

use super::{check_uuid, Ctx};
use crate::api::body::{created, no_content, ok, query, read_json, Body};
use crate::controllers::FILTER_TYPES;
use crate::error::{AppError, AppResult, ErrorKind};
use crate::model::{CameraType, Sensitivity};
use crate::protect::{Bootstrap, CameraInfo, ControllerConfig, ProtectClient, ProtectError};
use crate::store::cameras::{self as camera_rows, CameraRow};
use crate::store::protect::{self as rows, ControllerRow};
use hyper::body::Incoming;
use hyper::{Request, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ControllerCreate {
    /// 1-100 characters, unique.
    pub name: String,
    /// Host name or IP address of the console.
    pub host: String,
    /// HTTPS port (default 443).
    pub port: Option<u16>,
    /// A local (not Ubiquiti cloud) account.
    pub username: String,
    /// Stored encrypted; never returned.
    pub password: String,
    /// Verify the console's TLS certificate (default false: consoles use self-signed ones).
    pub verify_ssl: Option<bool>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ControllerUpdate {
    pub name: Option<String>,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub verify_ssl: Option<bool>,
    pub is_enabled: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ControllerDto {
    pub id: String,
    pub name: String,
    pub host: String,
    pub port: u16,
    pub username: String,
    pub verify_ssl: bool,
    pub is_enabled: bool,
    /// `connected`, `connecting` (also while reconnecting), `error` (the last attempt failed;
    /// retrying with backoff) or `disconnected` (not enabled).
    pub status: String,
    /// `status == "connected"`, for ArgusAI clients.
    pub is_connected: bool,
    pub last_connected_at: Option<String>,
    /// Why the last attempt or connection failed (cleared on the next success).
    pub last_error: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ControllerTestRequest {
    pub host: String,
    pub port: Option<u16>,
    pub username: String,
    pub password: String,
    pub verify_ssl: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ControllerTestResponse {
    pub success: bool,
    pub message: String,
    pub firmware_version: Option<String>,
    pub camera_count: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProtectCameraDto {
    pub protect_camera_id: String,
    pub name: String,
    /// `camera` or `doorbell`.
    #[serde(rename = "type")]
    pub camera_type: String,
    pub model: Option<String>,
    pub is_online: bool,
    pub is_doorbell: bool,
    /// Smart detections the camera supports.
    pub smart_detection_capabilities: Vec<String>,
    /// True when the appliance analyses this camera.
    pub is_enabled_for_ai: bool,
    /// The filter in force: `person`, `vehicle`, `package`, `animal`, `motion`, `ring`.
    pub smart_detection_types: Vec<String>,
    /// The appliance camera id, when enabled.
    pub camera_id: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnableCamera {
    /// The appliance camera name (default: the name in Protect).
    pub name: Option<String>,
    /// Default `person`, `vehicle`, `package` (and `ring` for a doorbell).
    pub smart_detection_types: Option<Vec<String>>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CameraFilters {
    /// Which detections become events: `person`, `vehicle`, `package`, `animal` (Protect's
    /// smart detections), `motion` (plain motion events), `ring` (doorbells). At least one.
    pub smart_detection_types: Vec<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CamerasQuery {
    /// Read the console now instead of using the camera list cached for up to 60 s.
    pub force_refresh: Option<bool>,
}

fn to_dto(ctx: &Ctx, r: ControllerRow) -> ControllerDto {
    let live = ctx.state.controllers.status(&r.id);
    ControllerDto {
        status: live.status.to_string(),
        is_connected: live.status == "connected",
        last_connected_at: r.last_connected_at.map(crate::clock::format_rfc3339),
        last_error: live.error.or(r.last_error),
        id: r.id,
        name: r.name,
        host: r.host,
        port: r.port,
        username: r.username,
        verify_ssl: r.verify_ssl,
        is_enabled: r.is_enabled,
        created_at: crate::clock::format_rfc3339(r.created_at),
        updated_at: crate::clock::format_rfc3339(r.updated_at),
    }
}

/// A console address: a host name, an IPv4 address or an IPv6 address (brackets optional).
/// The port has its own field, so `host:port` is refused rather than stored and failing later.
fn check_host(host: &str) -> AppResult<String> {
    let host = host.trim();
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let shaped = !host.is_empty()
        && host.len() <= 253
        && !host.contains(['/', ' ', '@', '?', '#', '[', ']'])
        && !host.chars().any(char::is_control);
    if !shaped {
        return Err(AppError::invalid(
            "host: a host name or IP address (without scheme, port or path)",
        ));
    }
    if host.contains(':') && host.parse::<std::net::Ipv6Addr>().is_err() {
        return Err(AppError::invalid(format!(
            "host: {host:?} is not a host name or IP address (give the port in `port`)"
        )));
    }
    // The same parser the connection uses, so what is stored can be connected to.
    crate::protect::Endpoint::parse(&crate::protect::host_with_port(host, 443))
        .map_err(|_| AppError::invalid(format!("host: {host:?} is not a valid host name")))?;
    Ok(host.to_string())
}

fn check_port(port: u16) -> AppResult<u16> {
    if port == 0 {
        return Err(AppError::invalid("port: between 1 and 65535"));
    }
    Ok(port)
}

fn check_name(name: &str) -> AppResult<String> {
    let name = name.trim();
    let n = name.chars().count();
    if n == 0 || n > 100 || name.chars().any(char::is_control) {
        return Err(AppError::invalid("name: 1 to 100 characters"));
    }
    Ok(name.to_string())
}

fn check_username(u: &str) -> AppResult<String> {
    let u = u.trim();
    if u.is_empty() || u.chars().count() > 100 {
        return Err(AppError::invalid("username: 1 to 100 characters"));
    }
    Ok(u.to_string())
}

fn check_password(p: &str) -> AppResult<()> {
    if p.is_empty() || p.chars().count() > 200 {
        return Err(AppError::invalid("password: 1 to 200 characters"));
    }
    Ok(())
}

/// The API error for a failed call to a console. Never includes credentials.
pub fn console_error(e: ProtectError) -> AppError {
    match e {
        ProtectError::BadCredentials => AppError::invalid(
            "The console refused the username or password (use a local account, not a Ubiquiti cloud login)",
        ),
        ProtectError::Tls(m) => AppError::invalid(format!(
            "TLS failure: {m} (consoles use self-signed certificates: set verify_ssl to false, or install a trusted certificate)"
        )),
        ProtectError::Unreachable(m) => {
            AppError::new(ErrorKind::BadGateway, format!("The console cannot be reached: {m}"))
        }
        ProtectError::Timeout => {
            AppError::new(ErrorKind::GatewayTimeout, "The console did not answer in time")
        }
        ProtectError::InvalidInput(m) => AppError::invalid(m),
        ProtectError::Protocol(m) => AppError::new(
            ErrorKind::BadGateway,
            format!("Unexpected answer from the console: {m}"),
        ),
    }
}

async fn try_console(cfg: ControllerConfig) -> AppResult<Response<Body>> {
    let client = ProtectClient::new(cfg).map_err(|e| AppError::invalid(format!("host: {e}")))?;
    let b = client.bootstrap().await.map_err(console_error)?;
    ok(&ControllerTestResponse {
        success: true,
        message: format!(
            "Connected to {} ({} cameras)",
            if b.nvr.name.is_empty() {
                "the console"
            } else {
                &b.nvr.name
            },
            b.cameras.len()
        ),
        firmware_version: b.nvr.display_version().map(str::to_string),
        camera_count: Some(b.cameras.len() as u32),
    })
}

async fn load(ctx: &Ctx) -> AppResult<ControllerRow> {
    let id = ctx.param("id").to_string();
    check_uuid("Controller", &id)?;
    Ok(ctx.state.store.read(move |c| rows::get(c, &id)).await?)
}

/// List UniFi Protect controllers.
#[utoipa::path(get, path = "/api/v1/protect/controllers", tag = "protect",
    responses((status = 200, body = [ControllerDto])),
    security(("api_key" = ["read:cameras"]), ("bearer" = [])))]
pub async fn list(ctx: Ctx) -> AppResult<Response<Body>> {
    let list = ctx.state.store.read(rows::list).await?;
    let out: Vec<ControllerDto> = list.into_iter().map(|r| to_dto(&ctx, r)).collect();
    ok(&out)
}

/// Add a UniFi Protect controller (followed at once when enabled; see its `status`).
#[utoipa::path(post, path = "/api/v1/protect/controllers", tag = "protect", request_body = ControllerCreate,
    responses((status = 201, body = ControllerDto), (status = 409, body = super::ErrorBody),
        (status = 422, body = super::ErrorBody)),
    security(("api_key" = ["write:cameras"]), ("bearer" = [])))]
pub async fn create(ctx: Ctx, req: Request<Incoming>) -> AppResult<Response<Body>> {
    let c: ControllerCreate = read_json(req, ctx.body_limit()).await?;
    check_password(&c.password)?;
    let now = ctx.state.clock.now_ms();
    let row = ControllerRow {
        id: crate::crypto::new_uuid(),
        name: check_name(&c.name)?,
        host: check_host(&c.host)?,
        port: check_port(c.port.unwrap_or(443))?,
        username: check_username(&c.username)?,
        password_sealed: ctx.state.keys.seal(c.password.as_bytes()),
        verify_ssl: c.verify_ssl.unwrap_or(false),
        is_enabled: true,
        last_connected_at: None,
        last_error: None,
        created_at: now,
        updated_at: now,
    };
    let saved = row.clone();
    ctx.state
        .store
        .write(move |c| rows::insert(c, &saved))
        .await?;
    ctx.state.controllers.start(row.clone()).await;
    created(&to_dto(&ctx, row))
}

/// Try controller settings without saving them: log in and read the bootstrap.
#[utoipa::path(post, path = "/api/v1/protect/controllers/test", tag = "protect", request_body = ControllerTestRequest,
    responses((status = 200, body = ControllerTestResponse),
        (status = 422, body = super::ErrorBody, description = "Bad credentials, a certificate that fails verification, or invalid input"),
        (status = 502, body = super::ErrorBody, description = "The console cannot be reached or answered unexpectedly"),
        (status = 504, body = super::ErrorBody, description = "The console did not answer in time")),
    security(("api_key" = ["write:cameras"]), ("bearer" = [])))]
pub async fn test(ctx: Ctx, req: Request<Incoming>) -> AppResult<Response<Body>> {
    let r: ControllerTestRequest = read_json(req, ctx.body_limit()).await?;
    let host = check_host(&r.host)?;
    let port = check_port(r.port.unwrap_or(443))?;
    if r.username.trim().is_empty() || r.password.is_empty() {
        return Err(AppError::invalid("username and password: required"));
    }
    try_console(ControllerConfig {
        host: crate::protect::host_with_port(&host, port),
        username: r.username.trim().to_string(),
        password: r.password,
        verify_ssl: r.verify_ssl.unwrap_or(false),
    })
    .await
}

/// Test a stored controller's settings (a fresh login and bootstrap).
#[utoipa::path(post, path = "/api/v1/protect/controllers/{id}/test", tag = "protect",
    params(("id" = String, Path, description = "Controller id")),
    responses((status = 200, body = ControllerTestResponse), (status = 404, body = super::ErrorBody),
        (status = 422, body = super::ErrorBody), (status = 502, body = super::ErrorBody),
        (status = 504, body = super::ErrorBody)),
    security(("api_key" = ["write:cameras"]), ("bearer" = [])))]
pub async fn test_saved(ctx: Ctx) -> AppResult<Response<Body>> {
    let row = load(&ctx).await?;
    let cfg = crate::controllers::client_config(&row, &ctx.state.keys).map_err(console_error)?;
    try_console(cfg).await
}

/// Get a controller.
#[utoipa::path(get, path = "/api/v1/protect/controllers/{id}", tag = "protect",
    params(("id" = String, Path, description = "Controller id")),
    responses((status = 200, body = ControllerDto), (status = 404, body = super::ErrorBody)),
    security(("api_key" = ["read:cameras"]), ("bearer" = [])))]
pub async fn get(ctx: Ctx) -> AppResult<Response<Body>> {
    let row = load(&ctx).await?;
    ok(&to_dto(&ctx, row))
}

/// Change a controller (reconnects when the connection settings or `is_enabled` change).
#[utoipa::path(put, path = "/api/v1/protect/controllers/{id}", tag = "protect", request_body = ControllerUpdate,
    params(("id" = String, Path, description = "Controller id")),
    responses((status = 200, body = ControllerDto), (status = 404, body = super::ErrorBody),
        (status = 409, body = super::ErrorBody), (status = 422, body = super::ErrorBody)),
    security(("api_key" = ["write:cameras"]), ("bearer" = [])))]
pub async fn update(ctx: Ctx, req: Request<Incoming>) -> AppResult<Response<Body>> {
    let mut row = load(&ctx).await?;
    let u: ControllerUpdate = read_json(req, ctx.body_limit()).await?;
    let mut reconnect = false;
    if let Some(v) = u.name {
        row.name = check_name(&v)?;
    }
    if let Some(v) = u.host {
        let v = check_host(&v)?;
        reconnect |= v != row.host;
        row.host = v;
    }
    if let Some(v) = u.port {
        let v = check_port(v)?;
        reconnect |= v != row.port;
        row.port = v;
    }
    if let Some(v) = u.username {
        let v = check_username(&v)?;
        reconnect |= v != row.username;
        row.username = v;
    }
    if let Some(v) = u.password {
        check_password(&v)?;
        row.password_sealed = ctx.state.keys.seal(v.as_bytes());
        reconnect = true;
    }
    if let Some(v) = u.verify_ssl {
        reconnect |= v != row.verify_ssl;
        row.verify_ssl = v;
    }
    if let Some(v) = u.is_enabled {
        reconnect |= v != row.is_enabled;
        row.is_enabled = v;
    }
    row.updated_at = ctx.state.clock.now_ms();
    let saved = row.clone();
    ctx.state
        .store
        .write(move |c| rows::update(c, &saved))
        .await?;
    if reconnect {
        ctx.state.controllers.start(row.clone()).await;
    }
    ok(&to_dto(&ctx, row))
}

/// Delete a controller, its cameras and their events.
#[utoipa::path(delete, path = "/api/v1/protect/controllers/{id}", tag = "protect",
    params(("id" = String, Path, description = "Controller id")),
    responses((status = 204, description = "Deleted with its cameras and their events"),
        (status = 404, body = super::ErrorBody)),
    security(("api_key" = ["write:cameras"]), ("bearer" = [])))]
pub async fn delete(ctx: Ctx) -> AppResult<Response<Body>> {
    let row = load(&ctx).await?;
    ctx.state.controllers.stop(&row.id).await;
    let id = row.id.clone();
    let gone = ctx.state.store.read(move |c| rows::cameras(c, &id)).await?;
    let id = row.id.clone();
    let files = ctx.state.store.write(move |c| rows::delete(c, &id)).await?;
    ctx.state.events.remove_files(files).await;
    for cam in gone {
        ctx.state.cameras.sync(&cam.id).await;
    }
    no_content()
}

fn camera_dto(pid: &str, info: Option<&CameraInfo>, row: Option<&CameraRow>) -> ProtectCameraDto {
    let is_doorbell = info
        .map(|i| i.is_doorbell)
        .or(row.map(|r| r.is_doorbell))
        .unwrap_or(false);
    ProtectCameraDto {
        protect_camera_id: pid.to_string(),
        name: info
            .map(|i| i.name.clone())
            .or(row.map(|r| r.name.clone()))
            .unwrap_or_default(),
        camera_type: if is_doorbell { "doorbell" } else { "camera" }.into(),
        model: info.map(|i| i.market_name.clone().unwrap_or_else(|| i.model.clone())),
        is_online: info.is_some_and(|i| i.is_connected),
        is_doorbell,
        smart_detection_capabilities: info
            .map(|i| i.smart_detect_types.clone())
            .unwrap_or_default(),
        is_enabled_for_ai: row.is_some_and(|r| r.is_enabled),
        smart_detection_types: row
            .map(|r| r.smart_detection_types.clone())
            .unwrap_or_default(),
        camera_id: row.map(|r| r.id.clone()),
    }
}

/// List a controller's cameras, as the console reports them, with what the appliance does
/// with each.
#[utoipa::path(get, path = "/api/v1/protect/controllers/{id}/cameras", tag = "protect",
    params(("id" = String, Path, description = "Controller id"), CamerasQuery),
    responses((status = 200, body = [ProtectCameraDto]), (status = 404, body = super::ErrorBody),
        (status = 422, body = super::ErrorBody), (status = 502, body = super::ErrorBody),
        (status = 504, body = super::ErrorBody)),
    security(("api_key" = ["read:cameras"]), ("bearer" = [])))]
pub async fn cameras(ctx: Ctx, req: Request<Incoming>) -> AppResult<Response<Body>> {
    let q: CamerasQuery = query(req.uri().query())?;
    let row = load(&ctx).await?;
    let list = ctx
        .state
        .controllers
        .camera_list(&row, q.force_refresh.unwrap_or(false))
        .await
        .map_err(console_error)?;
    let id = row.id.clone();
    let ours = ctx.state.store.read(move |c| rows::cameras(c, &id)).await?;
    let out: Vec<ProtectCameraDto> = list
        .bootstrap
        .cameras
        .iter()
        .map(|info| {
            let mine = ours
                .iter()
                .find(|r| r.protect_camera_id.as_deref() == Some(info.id.as_str()));
            camera_dto(&info.id, Some(info), mine)
        })
        .collect();
    ok(&out)
}

/// Checks a filter: known values, at least one, `ring` only on doorbells. Deduplicated, in
/// the given order.
fn check_filter(types: &[String], is_doorbell: bool) -> AppResult<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for t in types {
        let t = t.trim().to_ascii_lowercase();
        if !FILTER_TYPES.contains(&t.as_str()) {
            return Err(AppError::invalid(format!(
                "smart_detection_types: unknown {t:?} (use {})",
                FILTER_TYPES.join(", ")
            )));
        }
        if t == "ring" && !is_doorbell {
            return Err(AppError::invalid(
                "smart_detection_types: \"ring\" applies to doorbells only",
            ));
        }
        if !out.contains(&t) {
            out.push(t);
        }
    }
    if out.is_empty() {
        return Err(AppError::invalid(
            "smart_detection_types: at least one (to stop analysing the camera, disable it)",
        ));
    }
    Ok(out)
}

fn check_protect_id(pid: &str) -> AppResult<()> {
    let ok = !pid.is_empty()
        && pid.len() <= 64
        && pid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(AppError::not_found("Protect camera not found"))
    }
}

/// The appliance camera of a Protect camera, if there is one.
async fn our_camera(ctx: &Ctx, controller: &str, pid: &str) -> AppResult<Option<CameraRow>> {
    let (ctrl, pid) = (controller.to_string(), pid.to_string());
    Ok(ctx
        .state
        .store
        .read(move |c| {
            Ok(rows::cameras(c, &ctrl)?
                .into_iter()
                .find(|r| r.protect_camera_id.as_deref() == Some(pid.as_str())))
        })
        .await?)
}

fn find_camera<'a>(b: &'a Bootstrap, pid: &str) -> AppResult<&'a CameraInfo> {
    b.camera(pid).ok_or_else(|| {
        AppError::not_found(format!(
            "The console has no camera {pid:?} (list them with GET .../cameras?force_refresh=true)"
        ))
    })
}

/// Analyse a Protect camera: creates (or re-enables) its appliance camera with a filter.
#[utoipa::path(post, path = "/api/v1/protect/controllers/{id}/cameras/{protect_camera_id}/enable", tag = "protect",
    request_body = EnableCamera,
    params(("id" = String, Path, description = "Controller id"),
        ("protect_camera_id" = String, Path, description = "The camera's id in Protect")),
    responses((status = 201, body = ProtectCameraDto, description = "A new appliance camera"),
        (status = 200, body = ProtectCameraDto, description = "An existing one, enabled"),
        (status = 404, body = super::ErrorBody), (status = 409, body = super::ErrorBody),
        (status = 422, body = super::ErrorBody), (status = 502, body = super::ErrorBody)),
    security(("api_key" = ["write:cameras"]), ("bearer" = [])))]
pub async fn enable(ctx: Ctx, req: Request<Incoming>) -> AppResult<Response<Body>> {
    let ctrl = load(&ctx).await?;
    let pid = ctx.param("protect_camera_id").to_string();
    check_protect_id(&pid)?;
    let e: EnableCamera = read_json(req, ctx.body_limit()).await?;
    let list = ctx
        .state
        .controllers
        .camera_list(&ctrl, false)
        .await
        .map_err(console_error)?;
    let info = find_camera(&list.bootstrap, &pid)?.clone();
    let filter = match &e.smart_detection_types {
        Some(t) => check_filter(t, info.is_doorbell)?,
        None => {
            let mut d: Vec<String> = ["person", "vehicle", "package"].map(String::from).into();
            if info.is_doorbell {
                d.push("ring".into());
            }
            d
        }
    };
    let name = e.name.as_deref().map(check_name).transpose()?;
    let now = ctx.state.clock.now_ms();
    let (row, fresh) = match our_camera(&ctx, &ctrl.id, &pid).await? {
        Some(mut r) => {
            r.is_enabled = true;
            r.smart_detection_types = filter;
            r.is_doorbell = info.is_doorbell;
            if let Some(n) = name {
                r.name = n;
            }
            r.updated_at = now;
            let saved = r.clone();
            ctx.state
                .store
                .write(move |c| camera_rows::update(c, &saved))
                .await?;
            (r, false)
        }
        None => {
            let r = CameraRow {
                id: crate::crypto::new_uuid(),
                name: name.unwrap_or_else(|| info.name.clone()),
                camera_type: CameraType::Protect,
                rtsp_url: None,
                username: None,
                password_sealed: None,
                device_index: None,
                device_path: None,
                file_path: None,
                rtsp_transport: "tcp".into(),
                frame_rate: 5,
                is_enabled: true,
                motion_enabled: true,
                motion_sensitivity: Sensitivity::Medium,
                motion_cooldown: 60,
                detection_zones: Vec::new(),
                detection_schedule: None,
                // Unused for Protect cameras (their filter is `smart_detection_types`); the
                // schema default keeps the row valid for `PUT /cameras/{id}`.
                object_filter: vec!["person".into(), "vehicle".into()],
                prompt_override: None,
                protect_controller_id: Some(ctrl.id.clone()),
                protect_camera_id: Some(pid.clone()),
                smart_detection_types: filter,
                is_doorbell: info.is_doorbell,
                record_clips: true,
                created_at: now,
                updated_at: now,
            };
            let saved = r.clone();
            ctx.state
                .store
                .write(move |c| camera_rows::insert(c, &saved))
                .await
                .map_err(|e| match e {
                    crate::store::StoreError::Conflict(m) => AppError::conflict(format!(
                        "{m}; give this camera another name with \"name\""
                    )),
                    other => other.into(),
                })?;
            (r, true)
        }
    };
    // Subscribers (MQTT discovery) learn of the camera.
    ctx.state.cameras.sync(&row.id).await;
    let dto = camera_dto(&pid, Some(&info), Some(&row));
    if fresh {
        created(&dto)
    } else {
        ok(&dto)
    }
}

/// Stores a changed Protect camera row and answers with it (and what the console last said of it).
async fn save_camera(
    ctx: &Ctx,
    ctrl: &str,
    pid: &str,
    mut row: CameraRow,
) -> AppResult<Response<Body>> {
    row.updated_at = ctx.state.clock.now_ms();
    let saved = row.clone();
    ctx.state
        .store
        .write(move |c| camera_rows::update(c, &saved))
        .await?;
    ctx.state.cameras.sync(&row.id).await;
    let cached = ctx.state.controllers.cached(ctrl);
    let info = cached.as_ref().and_then(|b| b.camera(pid));
    ok(&camera_dto(pid, info, Some(&row)))
}

/// Stop analysing a Protect camera (its appliance camera and events are kept).
#[utoipa::path(post, path = "/api/v1/protect/controllers/{id}/cameras/{protect_camera_id}/disable", tag = "protect",
    params(("id" = String, Path, description = "Controller id"),
        ("protect_camera_id" = String, Path, description = "The camera's id in Protect")),
    responses((status = 200, body = ProtectCameraDto), (status = 404, body = super::ErrorBody)),
    security(("api_key" = ["write:cameras"]), ("bearer" = [])))]
pub async fn disable(ctx: Ctx) -> AppResult<Response<Body>> {
    let ctrl = load(&ctx).await?;
    let pid = ctx.param("protect_camera_id").to_string();
    check_protect_id(&pid)?;
    let mut row = our_camera(&ctx, &ctrl.id, &pid)
        .await?
        .ok_or_else(|| AppError::not_found("This Protect camera is not enabled for analysis"))?;
    row.is_enabled = false;
    save_camera(&ctx, &ctrl.id, &pid, row).await
}

/// Change which Protect detections of a camera become events.
#[utoipa::path(put, path = "/api/v1/protect/controllers/{id}/cameras/{protect_camera_id}/filters", tag = "protect",
    request_body = CameraFilters,
    params(("id" = String, Path, description = "Controller id"),
        ("protect_camera_id" = String, Path, description = "The camera's id in Protect")),
    responses((status = 200, body = ProtectCameraDto), (status = 404, body = super::ErrorBody),
        (status = 422, body = super::ErrorBody)),
    security(("api_key" = ["write:cameras"]), ("bearer" = [])))]
pub async fn filters(ctx: Ctx, req: Request<Incoming>) -> AppResult<Response<Body>> {
    let ctrl = load(&ctx).await?;
    let pid = ctx.param("protect_camera_id").to_string();
    check_protect_id(&pid)?;
    let f: CameraFilters = read_json(req, ctx.body_limit()).await?;
    let mut row = our_camera(&ctx, &ctrl.id, &pid).await?.ok_or_else(|| {
        AppError::not_found("This Protect camera is not enabled for analysis; enable it first")
    })?;
    row.smart_detection_types = check_filter(&f.smart_detection_types, row.is_doorbell)?;
    save_camera(&ctx, &ctrl.id, &pid, row).await
}
