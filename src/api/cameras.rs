//! `/cameras`: add, list, edit and remove cameras. Passwords are sealed at rest and never
//! returned; credentials embedded in an RTSP URL are moved out of it before storage.

use super::{check_uuid, Ctx};
use crate::api::body::{created, no_content, ok, query, read_json, Body};
use crate::error::{AppError, AppResult};
use crate::model::{self, CameraType, Schedule, Sensitivity, Zone};
use crate::store::cameras::{self as rows, CameraRow};
use hyper::body::Incoming;
use hyper::{Request, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// Live state of a camera's capture task.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CameraStatusDto {
    /// `connecting`, `streaming`, `error` or `stopped`. A Protect camera shows its
    /// controller's connection: `connected`, `connecting`, `error` or `stopped`.
    pub status: String,
    pub last_frame_at: Option<String>,
    /// Frames per second analysed over the last few seconds.
    pub fps: Option<f32>,
    /// `WIDTHxHEIGHT` of the decoded stream.
    pub resolution: Option<String>,
    pub error: Option<String>,
    /// Event clips of an H.264 camera: `idle` (keeping the pre-capture), `recording`, `off`
    /// (`record_clips` is false) or `paused_low_disk` (below the free-disk floor no clip is
    /// written); `null` when the camera is not capturing.
    pub recording: Option<String>,
}

impl From<&crate::model::LiveStatus> for CameraStatusDto {
    fn from(s: &crate::model::LiveStatus) -> Self {
        CameraStatusDto {
            status: s.status.to_string(),
            last_frame_at: s.last_frame_at.map(crate::clock::format_rfc3339),
            fps: s.fps,
            resolution: s.resolution.map(|(w, h)| format!("{w}x{h}")),
            error: s.error.clone(),
            recording: s.recording.map(str::to_string),
        }
    }
}

/// The `camera.status` WebSocket message.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CameraStatusMessage {
    pub camera_id: String,
    pub name: String,
    #[serde(flatten)]
    pub status: CameraStatusDto,
}

pub fn status_message(id: &str, name: &str, s: &crate::model::LiveStatus) -> CameraStatusMessage {
    CameraStatusMessage {
        camera_id: id.to_string(),
        name: name.to_string(),
        status: s.into(),
    }
}

/// A camera as the API shows it. The password is never included.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CameraDto {
    pub id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub camera_type: CameraType,
    /// Same as `type`; kept for ArgusAI clients.
    pub source_type: CameraType,
    /// The stream URL without credentials.
    pub rtsp_url: Option<String>,
    pub username: Option<String>,
    /// True when a password is stored.
    pub has_password: bool,
    pub device_index: Option<u32>,
    pub device_path: Option<String>,
    pub file_path: Option<String>,
    /// `tcp` (interleaved, default) or `udp`.
    pub rtsp_transport: String,
    /// Frames per second analysed (1-30).
    pub frame_rate: u32,
    pub is_enabled: bool,
    pub motion_enabled: bool,
    pub motion_sensitivity: Sensitivity,
    /// Seconds after an event during which motion does not raise another.
    pub motion_cooldown: u32,
    pub detection_zones: Vec<Zone>,
    pub detection_schedule: Option<Schedule>,
    /// Classes that raise events: `person`, `vehicle`, `animal`, `motion`.
    pub object_filter: Vec<String>,
    pub prompt_override: Option<String>,
    pub protect_controller_id: Option<String>,
    pub protect_camera_id: Option<String>,
    pub smart_detection_types: Vec<String>,
    pub is_doorbell: bool,
    /// Record a video clip of each object event (H.264 cameras).
    pub record_clips: bool,
    pub status: CameraStatusDto,
    pub created_at: String,
    pub updated_at: String,
}

impl CameraDto {
    pub fn from_row(r: CameraRow, status: CameraStatusDto) -> Self {
        CameraDto {
            id: r.id,
            name: r.name,
            camera_type: r.camera_type,
            source_type: r.camera_type,
            rtsp_url: r.rtsp_url,
            username: r.username,
            has_password: r.password_sealed.is_some(),
            device_index: r.device_index,
            device_path: r.device_path,
            file_path: r.file_path,
            rtsp_transport: r.rtsp_transport,
            frame_rate: r.frame_rate,
            is_enabled: r.is_enabled,
            motion_enabled: r.motion_enabled,
            motion_sensitivity: r.motion_sensitivity,
            motion_cooldown: r.motion_cooldown,
            detection_zones: r.detection_zones,
            detection_schedule: r.detection_schedule,
            object_filter: r.object_filter,
            prompt_override: r.prompt_override,
            protect_controller_id: r.protect_controller_id,
            protect_camera_id: r.protect_camera_id,
            smart_detection_types: r.smart_detection_types,
            is_doorbell: r.is_doorbell,
            record_clips: r.record_clips,
            status,
            created_at: crate::clock::format_rfc3339(r.created_at),
            updated_at: crate::clock::format_rfc3339(r.updated_at),
        }
    }
}

/// A new camera.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CameraCreate {
    /// 1-100 characters, unique.
    pub name: String,
    /// `rtsp`, `usb` or `file` (Protect cameras are added through `/protect/controllers`).
    #[serde(rename = "type")]
    pub camera_type: CameraType,
    /// Required for `rtsp`: `rtsp://` or `rtsps://`. Credentials in it are moved to
    /// `username`/`password`.
    pub rtsp_url: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    /// For `usb`: `/dev/videoN` index (or give `device_path`).
    pub device_index: Option<u32>,
    pub device_path: Option<String>,
    /// For `file`: path to an Annex B `.h264` file on the appliance.
    pub file_path: Option<String>,
    pub rtsp_transport: Option<String>,
    pub frame_rate: Option<u32>,
    pub is_enabled: Option<bool>,
    pub motion_enabled: Option<bool>,
    pub motion_sensitivity: Option<Sensitivity>,
    pub motion_cooldown: Option<u32>,
    pub detection_zones: Option<Vec<Zone>>,
    pub detection_schedule: Option<Schedule>,
    pub object_filter: Option<Vec<String>>,
    pub prompt_override: Option<String>,
    /// Record a video clip of each object event (default true).
    pub record_clips: Option<bool>,
}

/// Changes to a camera; absent keys stay as they are, `null` clears optional ones.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CameraUpdate {
    pub name: Option<String>,
    #[serde(rename = "type")]
    pub camera_type: Option<CameraType>,
    #[serde(default, deserialize_with = "some")]
    #[schema(value_type = Option<String>)]
    pub rtsp_url: Option<Option<String>>,
    #[serde(default, deserialize_with = "some")]
    #[schema(value_type = Option<String>)]
    pub username: Option<Option<String>>,
    /// A new password, or `null` to remove it.
    #[serde(default, deserialize_with = "some")]
    #[schema(value_type = Option<String>)]
    pub password: Option<Option<String>>,
    #[serde(default, deserialize_with = "some")]
    #[schema(value_type = Option<u32>)]
    pub device_index: Option<Option<u32>>,
    #[serde(default, deserialize_with = "some")]
    #[schema(value_type = Option<String>)]
    pub device_path: Option<Option<String>>,
    #[serde(default, deserialize_with = "some")]
    #[schema(value_type = Option<String>)]
    pub file_path: Option<Option<String>>,
    pub rtsp_transport: Option<String>,
    pub frame_rate: Option<u32>,
    pub is_enabled: Option<bool>,
    pub motion_enabled: Option<bool>,
    pub motion_sensitivity: Option<Sensitivity>,
    pub motion_cooldown: Option<u32>,
    pub detection_zones: Option<Vec<Zone>>,
    #[serde(default, deserialize_with = "some")]
    #[schema(value_type = Option<Schedule>)]
    pub detection_schedule: Option<Option<Schedule>>,
    pub object_filter: Option<Vec<String>>,
    #[serde(default, deserialize_with = "some")]
    #[schema(value_type = Option<String>)]
    pub prompt_override: Option<Option<String>>,
    pub record_clips: Option<bool>,
}

fn some<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Ok(Some(Option::deserialize(d)?))
}

/// Settings to try before saving a camera.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CameraTestRequest {
    #[serde(rename = "type")]
    pub camera_type: CameraType,
    pub rtsp_url: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub device_index: Option<u32>,
    pub device_path: Option<String>,
    pub file_path: Option<String>,
    pub rtsp_transport: Option<String>,
}

/// The outcome of a connection test.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CameraTestResponse {
    pub success: bool,
    pub message: String,
    pub resolution: Option<String>,
    pub fps: Option<f32>,
    pub codec: Option<String>,
    /// A JPEG `data:` URI of the first frame.
    pub thumbnail: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CameraListQuery {
    /// Only enabled (`true`) or disabled (`false`) cameras.
    pub is_enabled: Option<bool>,
}

/// Splits `rtsp://user:pass@host/path` into the URL without credentials and the credentials.
pub fn split_url_credentials(url: &str) -> (String, Option<String>, Option<String>) {
    let Some((scheme, rest)) = url.split_once("://") else {
        return (url.to_string(), None, None);
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let Some(at) = authority.rfind('@') else {
        return (url.to_string(), None, None);
    };
    let userinfo = &authority[..at];
    let decode = |s: &str| {
        form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    let (user, pass) = match userinfo.split_once(':') {
        Some((u, p)) => (decode(u), Some(decode(p))),
        None => (decode(userinfo), None),
    };
    let clean = format!(
        "{scheme}://{}{}",
        &authority[at + 1..],
        &rest[authority_end..]
    );
    (
        clean,
        (!user.is_empty()).then_some(user),
        pass.filter(|p| !p.is_empty()),
    )
}

fn check_filter(filter: &[String]) -> AppResult<()> {
    if filter.is_empty() {
        return Err(AppError::invalid("object_filter: name at least one class"));
    }
    if let Some(bad) = filter
        .iter()
        .find(|c| !crate::settings::DETECTION_CLASSES.contains(&c.as_str()))
    {
        return Err(AppError::invalid(format!(
            "object_filter: unknown class {bad:?} (use person, vehicle, animal, motion)"
        )));
    }
    Ok(())
}

/// Checks a complete camera row; the error names the field.
pub fn validate(c: &CameraRow) -> AppResult<()> {
    let n = c.name.trim().chars().count();
    if n == 0 || c.name.chars().count() > 100 {
        return Err(AppError::invalid("name: 1 to 100 characters"));
    }
    match c.camera_type {
        CameraType::Rtsp => {
            let url = c.rtsp_url.as_deref().unwrap_or("");
            if !(url.starts_with("rtsp://") || url.starts_with("rtsps://")) || url.len() < 10 {
                return Err(AppError::invalid(
                    "rtsp_url: an rtsp:// or rtsps:// URL is required for an rtsp camera",
                ));
            }
            if url.len() > 500 {
                return Err(AppError::invalid("rtsp_url: at most 500 characters"));
            }
        }
        CameraType::Usb => {
            if c.device_index.is_none() && c.device_path.is_none() {
                return Err(AppError::invalid(
                    "device_index: a usb camera needs device_index or device_path",
                ));
            }
            if let Some(p) = &c.device_path {
                if !p.starts_with("/dev/") {
                    return Err(AppError::invalid("device_path: a path under /dev/"));
                }
            }
        }
        CameraType::File => {
            if c.file_path.as_deref().unwrap_or("").is_empty() {
                return Err(AppError::invalid("file_path: required for a file camera"));
            }
        }
        CameraType::Protect => {
            if c.protect_camera_id.is_none() {
                return Err(AppError::invalid(
                    "type: protect cameras are added through /api/v1/protect/controllers",
                ));
            }
        }
    }
    if c.username
        .as_deref()
        .is_some_and(|u| u.chars().count() > 100)
    {
        return Err(AppError::invalid("username: at most 100 characters"));
    }
    if !matches!(c.rtsp_transport.as_str(), "tcp" | "udp") {
        return Err(AppError::invalid("rtsp_transport: tcp or udp"));
    }
    if !(1..=30).contains(&c.frame_rate) {
        return Err(AppError::invalid("frame_rate: between 1 and 30"));
    }
    if c.motion_cooldown > 3600 {
        return Err(AppError::invalid(
            "motion_cooldown: between 0 and 3600 seconds",
        ));
    }
    model::validate_zones(&c.detection_zones).map_err(AppError::invalid)?;
    if let Some(s) = &c.detection_schedule {
        model::validate_schedule(s).map_err(AppError::invalid)?;
    }
    check_filter(&c.object_filter)?;
    if c.prompt_override
        .as_deref()
        .is_some_and(|p| p.chars().count() > 2000)
    {
        return Err(AppError::invalid(
            "prompt_override: at most 2000 characters",
        ));
    }
    Ok(())
}

fn check_password(p: &str) -> AppResult<()> {
    if p.chars().count() > 200 {
        return Err(AppError::invalid("password: at most 200 characters"));
    }
    Ok(())
}

async fn to_dto(ctx: &Ctx, row: CameraRow) -> CameraDto {
    let status = match (&row.protect_controller_id, row.is_enabled) {
        (Some(ctrl), true) => {
            let link = ctx.state.controllers.status(ctrl);
            CameraStatusDto {
                status: match link.status {
                    "disconnected" => "stopped",
                    other => other,
                }
                .to_string(),
                last_frame_at: None,
                fps: None,
                resolution: None,
                error: link.error,
                recording: None,
            }
        }
        (Some(_), false) => CameraStatusDto::from(&crate::model::LiveStatus::default()),
        (None, _) => CameraStatusDto::from(&ctx.state.cameras.status(&row.id)),
    };
    CameraDto::from_row(row, status)
}

/// List cameras with their live status.
#[utoipa::path(get, path = "/api/v1/cameras", tag = "cameras", params(CameraListQuery),
    responses((status = 200, body = [CameraDto]), (status = 401, body = super::ErrorBody)),
    security(("api_key" = ["read:cameras"]), ("bearer" = [])))]
pub async fn list(ctx: Ctx, req: Request<Incoming>) -> AppResult<Response<Body>> {
    let q: CameraListQuery = query(req.uri().query())?;
    let rows = ctx
        .state
        .store
        .read(move |c| rows::list(c, q.is_enabled))
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        out.push(to_dto(&ctx, r).await);
    }
    ok(&out)
}

/// Add a camera (starts capturing when enabled).
#[utoipa::path(post, path = "/api/v1/cameras", tag = "cameras", request_body = CameraCreate,
    responses((status = 201, body = CameraDto), (status = 409, body = super::ErrorBody),
        (status = 422, body = super::ErrorBody)),
    security(("api_key" = ["write:cameras"]), ("bearer" = [])))]
pub async fn create(ctx: Ctx, req: Request<Incoming>) -> AppResult<Response<Body>> {
    let b: CameraCreate = read_json(req, ctx.body_limit()).await?;
    let now = ctx.state.clock.now_ms();
    let settings = ctx.state.settings().await?;
    let (url, url_user, url_pass) = match b.rtsp_url.as_deref() {
        Some(u) => {
            let (clean, user, pass) = split_url_credentials(u.trim());
            (Some(clean), user, pass)
        }
        None => (None, None, None),
    };
    let password = b.password.or(url_pass).filter(|p| !p.is_empty());
    if let Some(p) = &password {
        check_password(p)?;
    }
    if b.camera_type == CameraType::Protect {
        return Err(AppError::invalid(
            "type: protect cameras are added through /api/v1/protect/controllers",
        ));
    }
    let row = CameraRow {
        id: crate::crypto::new_uuid(),
        name: b.name.trim().to_string(),
        camera_type: b.camera_type,
        rtsp_url: url,
        username: b.username.or(url_user).filter(|u| !u.is_empty()),
        password_sealed: password.map(|p| ctx.state.keys.seal(p.as_bytes())),
        device_index: b.device_index,
        device_path: b.device_path,
        file_path: b.file_path,
        rtsp_transport: b.rtsp_transport.unwrap_or_else(|| "tcp".into()),
        frame_rate: b.frame_rate.unwrap_or(5),
        is_enabled: b.is_enabled.unwrap_or(true),
        motion_enabled: b.motion_enabled.unwrap_or(true),
        motion_sensitivity: b.motion_sensitivity.unwrap_or_default(),
        motion_cooldown: b
            .motion_cooldown
            .unwrap_or(settings.default_motion_cooldown),
        detection_zones: b.detection_zones.unwrap_or_default(),
        detection_schedule: b.detection_schedule,
        object_filter: b.object_filter.unwrap_or(settings.default_object_filter),
        prompt_override: b.prompt_override,
        protect_controller_id: None,
        protect_camera_id: None,
        smart_detection_types: Vec::new(),
        is_doorbell: false,
        record_clips: b.record_clips.unwrap_or(true),
        created_at: now,
        updated_at: now,
    };
    validate(&row)?;
    let saved = row.clone();
    ctx.state
        .store
        .write(move |c| rows::insert(c, &saved))
        .await?;
    tracing::info!(camera.id = %row.id, camera.name = %row.name, "camera added");
    ctx.state.cameras.sync(&row.id).await;
    created(&to_dto(&ctx, row).await)
}

/// Get a camera.
#[utoipa::path(get, path = "/api/v1/cameras/{id}", tag = "cameras",
    params(("id" = String, Path, description = "Camera id")),
    responses((status = 200, body = CameraDto), (status = 404, body = super::ErrorBody)),
    security(("api_key" = ["read:cameras"]), ("bearer" = [])))]
pub async fn get(ctx: Ctx) -> AppResult<Response<Body>> {
    let id = ctx.param("id").to_string();
    check_uuid("Camera", &id)?;
    let row = ctx.state.store.read(move |c| rows::get(c, &id)).await?;
    ok(&to_dto(&ctx, row).await)
}

/// Change a camera (restarts its capture).
#[utoipa::path(put, path = "/api/v1/cameras/{id}", tag = "cameras", request_body = CameraUpdate,
    params(("id" = String, Path, description = "Camera id")),
    responses((status = 200, body = CameraDto), (status = 404, body = super::ErrorBody),
        (status = 409, body = super::ErrorBody), (status = 422, body = super::ErrorBody)),
    security(("api_key" = ["write:cameras"]), ("bearer" = [])))]
pub async fn update(ctx: Ctx, req: Request<Incoming>) -> AppResult<Response<Body>> {
    let id = ctx.param("id").to_string();
    check_uuid("Camera", &id)?;
    let u: CameraUpdate = read_json(req, ctx.body_limit()).await?;
    let cam = id.clone();
    let mut row = ctx.state.store.read(move |c| rows::get(c, &cam)).await?;
    apply_update(&mut row, u, &ctx.state.keys)?;
    row.updated_at = ctx.state.clock.now_ms();
    validate(&row)?;
    let saved = row.clone();
    ctx.state
        .store
        .write(move |c| rows::update(c, &saved))
        .await?;
    ctx.state.cameras.sync(&row.id).await;
    ok(&to_dto(&ctx, row).await)
}

fn apply_update(r: &mut CameraRow, u: CameraUpdate, keys: &crate::crypto::Keys) -> AppResult<()> {
    if let Some(v) = u.name {
        r.name = v.trim().to_string();
    }
    if let Some(v) = u.camera_type {
        if (v == CameraType::Protect || r.camera_type == CameraType::Protect) && v != r.camera_type
        {
            return Err(AppError::invalid("type: cannot change to or from protect"));
        }
        r.camera_type = v;
    }
    if let Some(v) = u.rtsp_url {
        match v {
            Some(url) => {
                let (clean, user, pass) = split_url_credentials(url.trim());
                r.rtsp_url = Some(clean);
                if user.is_some() {
                    r.username = user;
                }
                if let Some(p) = pass {
                    r.password_sealed = Some(keys.seal(p.as_bytes()));
                }
            }
            None => r.rtsp_url = None,
        }
    }
    if let Some(v) = u.username {
        r.username = v.filter(|s| !s.is_empty());
    }
    if let Some(v) = u.password {
        match v.filter(|s| !s.is_empty()) {
            Some(p) => {
                check_password(&p)?;
                r.password_sealed = Some(keys.seal(p.as_bytes()));
            }
            None => r.password_sealed = None,
        }
    }
    if let Some(v) = u.device_index {
        r.device_index = v;
    }
    if let Some(v) = u.device_path {
        r.device_path = v;
    }
    if let Some(v) = u.file_path {
        r.file_path = v;
    }
    if let Some(v) = u.rtsp_transport {
        r.rtsp_transport = v;
    }
    if let Some(v) = u.frame_rate {
        r.frame_rate = v;
    }
    if let Some(v) = u.is_enabled {
        r.is_enabled = v;
    }
    if let Some(v) = u.motion_enabled {
        r.motion_enabled = v;
    }
    if let Some(v) = u.motion_sensitivity {
        r.motion_sensitivity = v;
    }
    if let Some(v) = u.motion_cooldown {
        r.motion_cooldown = v;
    }
    if let Some(v) = u.detection_zones {
        r.detection_zones = v;
    }
    if let Some(v) = u.detection_schedule {
        r.detection_schedule = v;
    }
    if let Some(v) = u.object_filter {
        r.object_filter = v;
    }
    if let Some(v) = u.prompt_override {
        r.prompt_override = v;
    }
    if let Some(v) = u.record_clips {
        r.record_clips = v;
    }
    Ok(())
}

/// Delete a camera with its events and snapshots.
#[utoipa::path(delete, path = "/api/v1/cameras/{id}", tag = "cameras",
    params(("id" = String, Path, description = "Camera id")),
    responses((status = 204, description = "Deleted, with its events and snapshots"),
        (status = 404, body = super::ErrorBody)),
    security(("api_key" = ["write:cameras"]), ("bearer" = [])))]
pub async fn delete(ctx: Ctx) -> AppResult<Response<Body>> {
    let id = ctx.param("id").to_string();
    check_uuid("Camera", &id)?;
    let cam = id.clone();
    let paths = ctx
        .state
        .store
        .write(move |c| rows::delete(c, &cam))
        .await?;
    ctx.state.cameras.sync(&id).await;
    ctx.state.events.remove_files(paths).await;
    tracing::info!(camera.id = %id, "camera deleted");
    no_content()
}

/// Try camera settings without saving them.
#[utoipa::path(post, path = "/api/v1/cameras/test", tag = "cameras", request_body = CameraTestRequest,
    responses((status = 200, body = CameraTestResponse, description = "The outcome; `success` false with a message when the camera could not be read")),
    security(("api_key" = ["write:cameras"]), ("bearer" = [])))]
pub async fn test(ctx: Ctx, req: Request<Incoming>) -> AppResult<Response<Body>> {
    let b: CameraTestRequest = read_json(req, ctx.body_limit()).await?;
    if b.camera_type == CameraType::Protect {
        return Err(AppError::invalid(
            "type: protect cameras are tested through /api/v1/protect/controllers/test",
        ));
    }
    let (url, url_user, url_pass) = match b.rtsp_url.as_deref() {
        Some(u) => {
            let (clean, user, pass) = split_url_credentials(u.trim());
            (Some(clean), user, pass)
        }
        None => (None, None, None),
    };
    // Validate like a camera that would be saved, without saving it.
    let probe = CameraRow {
        id: String::new(),
        name: "test".into(),
        camera_type: b.camera_type,
        rtsp_url: url.clone(),
        username: None,
        password_sealed: None,
        device_index: b.device_index,
        device_path: b.device_path.clone(),
        file_path: b.file_path.clone(),
        rtsp_transport: b.rtsp_transport.clone().unwrap_or_else(|| "tcp".into()),
        frame_rate: 5,
        is_enabled: true,
        motion_enabled: true,
        motion_sensitivity: Sensitivity::Medium,
        motion_cooldown: 60,
        detection_zones: vec![],
        detection_schedule: None,
        object_filter: vec!["motion".into()],
        prompt_override: None,
        protect_controller_id: None,
        protect_camera_id: None,
        smart_detection_types: vec![],
        is_doorbell: false,
        record_clips: true,
        created_at: 0,
        updated_at: 0,
    };
    validate(&probe)?;
    let spec = crate::capture::SourceSpec {
        kind: b.camera_type,
        rtsp_url: url,
        username: b.username.or(url_user).filter(|u| !u.is_empty()),
        password: b.password.or(url_pass),
        rtsp_transport: probe.rtsp_transport.clone(),
        device_index: b.device_index,
        device_path: b.device_path,
        file_path: b.file_path,
        frame_rate: 5,
    };
    let res = crate::cameras::probe(ctx.state.cameras.opener().as_ref(), &spec).await;
    ok(&match res {
        Ok(p) => {
            use base64::Engine;
            CameraTestResponse {
                success: true,
                message: format!("Connected: {} {}x{}", p.codec, p.width, p.height),
                resolution: Some(format!("{}x{}", p.width, p.height)),
                fps: p.fps,
                codec: Some(p.codec.to_string()),
                thumbnail: Some(format!(
                    "data:image/jpeg;base64,{}",
                    base64::engine::general_purpose::STANDARD.encode(&p.jpeg)
                )),
            }
        }
        Err(e) => CameraTestResponse {
            success: false,
            message: e.to_string(),
            resolution: None,
            fps: None,
            codec: None,
            thumbnail: None,
        },
    })
}

/// A picture older than this is not "now": the camera is stalled or reconnecting.
const SNAPSHOT_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(5);

/// The camera's current picture.
#[utoipa::path(get, path = "/api/v1/cameras/{id}/snapshot", tag = "cameras",
    params(("id" = String, Path, description = "Camera id")),
    responses((status = 200, content_type = "image/jpeg",
            description = "The most recent decoded frame (taken at most every 0.4 s, scaled to at most 1280 px wide; `X-Frame-Age-Ms` says how old it is); for a Protect camera, the console's snapshot"),
        (status = 404, body = super::ErrorBody),
        (status = 502, body = super::ErrorBody, description = "A Protect console failed"),
        (status = 503, body = super::ErrorBody, description = "No recent picture: the camera is stopped, connecting or failing (the detail says which)"),
        (status = 504, body = super::ErrorBody, description = "A Protect console did not answer in time")),
    security(("api_key" = ["read:cameras"]), ("bearer" = [])))]
pub async fn snapshot(ctx: Ctx) -> AppResult<Response<Body>> {
    use crate::error::ErrorKind;
    let id = ctx.param("id").to_string();
    check_uuid("Camera", &id)?;
    let cam = id.clone();
    let row = ctx.state.store.read(move |c| rows::get(c, &cam)).await?;
    if row.camera_type == CameraType::Protect {
        let (Some(ctrl), Some(pid)) = (row.protect_controller_id, row.protect_camera_id) else {
            return Err(AppError::new(
                ErrorKind::Unavailable,
                "This Protect camera has no controller",
            ));
        };
        let jpeg = ctx
            .state
            .controllers
            .snapshot(&ctrl, &pid)
            .await
            .ok_or_else(|| {
                AppError::new(
                    ErrorKind::Unavailable,
                    "No recent picture: the camera's Protect controller is not followed (disabled)",
                )
            })?
            .map_err(super::protect::console_error)?;
        return Ok(jpeg_response(jpeg, None));
    }
    let not_now = |ctx: &Ctx| {
        let s = ctx.state.cameras.status(&id);
        let why = match (&s.error, s.status) {
            (Some(e), _) => format!("the camera is failing: {e}"),
            (None, "") => "the camera is not capturing (stopped or disabled)".to_string(),
            (None, status) => format!("the camera is {status}"),
        };
        AppError::new(ErrorKind::Unavailable, format!("No recent picture: {why}"))
            .with_header("retry-after", "1")
    };
    let Some(latest) = ctx.state.cameras.latest(&id) else {
        return Err(not_now(&ctx));
    };
    let snap = tokio::task::spawn_blocking(move || latest.jpeg(SNAPSHOT_MAX_AGE))
        .await
        .map_err(AppError::internal)?;
    match snap {
        None => Err(not_now(&ctx)),
        Some(Err(e)) => Err(AppError::internal(std::io::Error::other(e))),
        Some(Ok(s)) => Ok(jpeg_response(
            bytes::Bytes::from(s.jpeg.as_ref().clone()),
            Some(s.age),
        )),
    }
}

fn jpeg_response(jpeg: bytes::Bytes, age: Option<std::time::Duration>) -> Response<Body> {
    let mut b = Response::builder()
        .header(hyper::header::CONTENT_TYPE, "image/jpeg")
        .header(hyper::header::CACHE_CONTROL, "no-store");
    if let Some(age) = age {
        b = b.header("x-frame-age-ms", age.as_millis().to_string());
    }
    b.body(crate::api::body::full(jpeg)).unwrap_or_default()
}

/// Start capturing (until stopped or restarted).
#[utoipa::path(post, path = "/api/v1/cameras/{id}/start", tag = "cameras",
    params(("id" = String, Path, description = "Camera id")),
    responses((status = 200, body = CameraDto, description = "Capture is starting (status `connecting`)"),
        (status = 404, body = super::ErrorBody), (status = 422, body = super::ErrorBody)),
    security(("api_key" = ["write:cameras"]), ("bearer" = [])))]
pub async fn start(ctx: Ctx) -> AppResult<Response<Body>> {
    let id = ctx.param("id").to_string();
    check_uuid("Camera", &id)?;
    let cam = id.clone();
    let row = ctx.state.store.read(move |c| rows::get(c, &cam)).await?;
    if !crate::cameras::capturable(row.camera_type) {
        return Err(AppError::invalid(
            "type: Protect cameras are fed by their controller and cannot be started here",
        ));
    }
    ctx.state.cameras.start(row.clone()).await;
    ok(&to_dto(&ctx, row).await)
}

/// Stop capturing (until started or restarted).
#[utoipa::path(post, path = "/api/v1/cameras/{id}/stop", tag = "cameras",
    params(("id" = String, Path, description = "Camera id")),
    responses((status = 200, body = CameraDto, description = "Capture stopped (until started again or the appliance restarts)"),
        (status = 404, body = super::ErrorBody)),
    security(("api_key" = ["write:cameras"]), ("bearer" = [])))]
pub async fn stop(ctx: Ctx) -> AppResult<Response<Body>> {
    let id = ctx.param("id").to_string();
    check_uuid("Camera", &id)?;
    let cam = id.clone();
    let row = ctx.state.store.read(move |c| rows::get(c, &cam)).await?;
    ctx.state.cameras.stop(&id).await;
    ok(&to_dto(&ctx, row).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_moved_out_of_urls() {
        let (u, user, pass) = split_url_credentials("rtsp://admin:p%40ss@10.0.0.5:554/stream1");
        assert_eq!(u, "rtsp://10.0.0.5:554/stream1");
        assert_eq!(user.as_deref(), Some("admin"));
        assert_eq!(pass.as_deref(), Some("p@ss"));
        let (u, user, pass) = split_url_credentials("rtsp://10.0.0.5/s");
        assert_eq!((u.as_str(), user, pass), ("rtsp://10.0.0.5/s", None, None));
        let (u, _, _) = split_url_credentials("rtsp://cam/path@x");
        assert_eq!(u, "rtsp://cam/path@x");
    }
}
