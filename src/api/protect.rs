//! `/protect/controllers`: UniFi Protect consoles. The request and response shapes are final;
//! the controller client arrives with issue 6, and until then every route answers 501 after
//! authenticating and validating its input.

use super::{check_uuid, Ctx};
use crate::error::{AppError, AppResult};
use crate::http::body::{ok, read_json, Body};
use hyper::body::Incoming;
use hyper::{Request, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

const NOT_YET: &str =
    "UniFi Protect support arrives with issue 6; no controller was contacted or stored";

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
    /// `connected`, `connecting`, `error` or `disconnected`.
    pub status: String,
    pub last_connected_at: Option<String>,
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

/// List UniFi Protect controllers.
#[utoipa::path(get, path = "/api/v1/protect/controllers", tag = "protect",
    responses((status = 200, body = [ControllerDto]), (status = 501, body = super::ErrorBody)),
    security(("api_key" = ["read:cameras"]), ("bearer" = [])))]
pub async fn list(_ctx: Ctx) -> AppResult<Response<Body>> {
    Err(AppError::not_implemented(NOT_YET))
}

/// Add a UniFi Protect controller.
#[utoipa::path(post, path = "/api/v1/protect/controllers", tag = "protect", request_body = ControllerCreate,
    responses((status = 201, body = ControllerDto), (status = 409, body = super::ErrorBody),
        (status = 501, body = super::ErrorBody)),
    security(("api_key" = ["write:cameras"]), ("bearer" = [])))]
pub async fn create(ctx: Ctx, req: Request<Incoming>) -> AppResult<Response<Body>> {
    let _: ControllerCreate = read_json(req, ctx.body_limit()).await?;
    Err(AppError::not_implemented(NOT_YET))
}

/// Try controller settings without saving them: log in and read the bootstrap.
#[utoipa::path(post, path = "/api/v1/protect/controllers/test", tag = "protect", request_body = ControllerTestRequest,
    responses((status = 200, body = ControllerTestResponse),
        (status = 422, body = super::ErrorBody, description = "Bad credentials, a certificate that fails verification, or invalid input"),
        (status = 502, body = super::ErrorBody, description = "The console cannot be reached or answered unexpectedly"),
        (status = 504, body = super::ErrorBody, description = "The console did not answer in time")),
    security(("api_key" = ["write:cameras"]), ("bearer" = [])))]
pub async fn test(ctx: Ctx, req: Request<Incoming>) -> AppResult<Response<Body>> {
    use crate::error::ErrorKind;
    use crate::protect::{ControllerConfig, ProtectClient, ProtectError};
    let r: ControllerTestRequest = read_json(req, ctx.body_limit()).await?;
    let host = r.host.trim();
    if host.is_empty() || host.len() > 253 || host.contains(['/', ' ', '@']) {
        return Err(AppError::invalid("host: a host name or IP address"));
    }
    if r.username.trim().is_empty() || r.password.is_empty() {
        return Err(AppError::invalid("username and password: required"));
    }
    let cfg = ControllerConfig {
        host: crate::protect::client::host_with_port(host, r.port.unwrap_or(443)),
        username: r.username,
        password: r.password,
        verify_ssl: r.verify_ssl.unwrap_or(false),
    };
    let client = ProtectClient::new(cfg).map_err(|e| AppError::invalid(format!("host: {e}")))?;
    match client.bootstrap().await {
        Ok(b) => ok(&ControllerTestResponse {
            success: true,
            message: format!(
                "Connected to {} ({} cameras)",
                if b.nvr.name.is_empty() { "the console" } else { &b.nvr.name },
                b.cameras.len()
            ),
            firmware_version: b.nvr.display_version().map(str::to_string),
            camera_count: Some(b.cameras.len() as u32),
        }),
        Err(e) => Err(match e {
            ProtectError::BadCredentials => AppError::invalid(
                "The console refused the username or password (use a local account, not a Ubiquiti cloud login)",
            ),
            ProtectError::Tls(m) => AppError::invalid(format!(
                "TLS failure: {m} (consoles use self-signed certificates: set verify_ssl to false, or install a trusted certificate)"
            )),
            ProtectError::Unreachable(m) => {
                AppError::new(ErrorKind::BadGateway, format!("The console cannot be reached: {m}"))
            }
            ProtectError::Timeout => AppError::new(
                ErrorKind::GatewayTimeout,
                "The console did not answer in time",
            ),
            ProtectError::InvalidInput(m) => AppError::invalid(m),
            ProtectError::Protocol(m) => {
                AppError::new(ErrorKind::BadGateway, format!("Unexpected answer from the console: {m}"))
            }
        }),
    }
}

/// Get a controller.
#[utoipa::path(get, path = "/api/v1/protect/controllers/{id}", tag = "protect",
    params(("id" = String, Path, description = "Controller id")),
    responses((status = 200, body = ControllerDto), (status = 404, body = super::ErrorBody),
        (status = 501, body = super::ErrorBody)),
    security(("api_key" = ["read:cameras"]), ("bearer" = [])))]
pub async fn get(ctx: Ctx) -> AppResult<Response<Body>> {
    check_uuid("Controller", ctx.param("id"))?;
    Err(AppError::not_implemented(NOT_YET))
}

/// Change a controller.
#[utoipa::path(put, path = "/api/v1/protect/controllers/{id}", tag = "protect", request_body = ControllerUpdate,
    params(("id" = String, Path, description = "Controller id")),
    responses((status = 200, body = ControllerDto), (status = 404, body = super::ErrorBody),
        (status = 501, body = super::ErrorBody)),
    security(("api_key" = ["write:cameras"]), ("bearer" = [])))]
pub async fn update(ctx: Ctx, req: Request<Incoming>) -> AppResult<Response<Body>> {
    check_uuid("Controller", ctx.param("id"))?;
    let _: ControllerUpdate = read_json(req, ctx.body_limit()).await?;
    Err(AppError::not_implemented(NOT_YET))
}

/// Delete a controller and its cameras.
#[utoipa::path(delete, path = "/api/v1/protect/controllers/{id}", tag = "protect",
    params(("id" = String, Path, description = "Controller id")),
    responses((status = 204, description = "Deleted with its cameras"), (status = 404, body = super::ErrorBody),
        (status = 501, body = super::ErrorBody)),
    security(("api_key" = ["write:cameras"]), ("bearer" = [])))]
pub async fn delete(ctx: Ctx) -> AppResult<Response<Body>> {
    check_uuid("Controller", ctx.param("id"))?;
    Err(AppError::not_implemented(NOT_YET))
}

/// List a controller's cameras.
#[utoipa::path(get, path = "/api/v1/protect/controllers/{id}/cameras", tag = "protect",
    params(("id" = String, Path, description = "Controller id")),
    responses((status = 200, body = [ProtectCameraDto]), (status = 404, body = super::ErrorBody),
        (status = 501, body = super::ErrorBody)),
    security(("api_key" = ["read:cameras"]), ("bearer" = [])))]
pub async fn cameras(ctx: Ctx) -> AppResult<Response<Body>> {
    check_uuid("Controller", ctx.param("id"))?;
    Err(AppError::not_implemented(NOT_YET))
}
