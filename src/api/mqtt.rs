//! `/integrations/mqtt`: the broker settings (applied at once), the connection's status, a
//! connection test with the given settings, and publishing Home Assistant discovery again.

use super::Ctx;
use crate::api::body::{ok, read_json, Body};
use crate::error::{AppError, AppResult};
use crate::mqtt::config::{MqttConfigUpdate, Runtime};
use crate::mqtt::MqttStatus;
use hyper::body::Incoming;
use hyper::{Request, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// The settings as shown (`GET`/`PUT`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MqttConfigDto {
    pub enabled: bool,
    pub broker_host: String,
    pub broker_port: u16,
    pub username: Option<String>,
    /// A password is stored (it is never returned).
    pub has_password: bool,
    pub use_tls: bool,
    pub ca_cert: Option<String>,
    pub topic_prefix: String,
    pub discovery_prefix: String,
    pub discovery_enabled: bool,
    pub qos: u8,
    pub retain: bool,
    /// The node id in use (this appliance's own unless one was set).
    pub node_id: String,
    /// True when `node_id` is this appliance's own default.
    pub node_id_is_default: bool,
}

impl From<&Runtime> for MqttConfigDto {
    fn from(rt: &Runtime) -> Self {
        let c = &rt.cfg;
        MqttConfigDto {
            enabled: c.enabled,
            broker_host: c.broker_host.clone(),
            broker_port: c.broker_port,
            username: c.username.clone(),
            has_password: rt.password.is_some(),
            use_tls: c.use_tls,
            ca_cert: c.ca_cert.clone(),
            topic_prefix: c.topic_prefix.clone(),
            discovery_prefix: c.discovery_prefix.clone(),
            discovery_enabled: c.discovery_enabled,
            qos: c.qos,
            retain: c.retain,
            node_id: rt.node_id.clone(),
            node_id_is_default: c.node_id.is_none(),
        }
    }
}

/// The connection (`GET /integrations/mqtt/status`).
#[derive(Debug, Serialize, ToSchema)]
pub struct MqttStatusDto {
    pub enabled: bool,
    pub connected: bool,
    /// `host:port` of the configured broker.
    pub broker: Option<String>,
    /// RFC 3339.
    pub last_connected_at: Option<String>,
    /// Messages the broker acknowledged (QoS 1/2) or that were sent (QoS 0), since start.
    pub messages_published: u64,
    /// Waiting or in flight (at most 1,000 wait).
    pub messages_queued: u64,
    /// Dropped because 1,000 were waiting (the oldest go first).
    pub messages_dropped: u64,
    pub last_error: Option<String>,
    /// Failed connection attempts since the last success.
    pub reconnect_attempt: u32,
    pub node_id: String,
}

impl From<MqttStatus> for MqttStatusDto {
    fn from(s: MqttStatus) -> Self {
        MqttStatusDto {
            enabled: s.enabled,
            connected: s.connected,
            broker: s.broker,
            last_connected_at: s.last_connected_at.map(crate::clock::format_rfc3339),
            messages_published: s.messages_published,
            messages_queued: s.messages_queued,
            messages_dropped: s.messages_dropped,
            last_error: s.last_error,
            reconnect_attempt: s.reconnect_attempt,
            node_id: s.node_id,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MqttTestResult {
    pub success: bool,
    /// `Connected to host:port`, or why it failed (refused credentials, TLS, unreachable,
    /// timeout).
    pub message: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DiscoveryResult {
    pub success: bool,
    pub message: String,
}

/// The MQTT settings (the password is never returned: `has_password`).
#[utoipa::path(get, path = "/api/v1/integrations/mqtt/config", tag = "integrations",
    responses((status = 200, body = MqttConfigDto)),
    security(("api_key" = ["admin"]), ("bearer" = [])))]
pub async fn get_config(ctx: Ctx) -> AppResult<Response<Body>> {
    ok(&MqttConfigDto::from(&ctx.state.mqtt.config()))
}

/// Change the MQTT settings: only the fields sent change; the client reconnects with them at
/// once (no restart).
#[utoipa::path(put, path = "/api/v1/integrations/mqtt/config", tag = "integrations",
    request_body = MqttConfigUpdate,
    responses((status = 200, body = MqttConfigDto), (status = 422, body = super::ErrorBody)),
    security(("api_key" = ["admin"]), ("bearer" = [])))]
pub async fn put_config(ctx: Ctx, req: Request<Incoming>) -> AppResult<Response<Body>> {
    let u: MqttConfigUpdate = read_json(req, ctx.body_limit()).await?;
    let next = ctx
        .state
        .mqtt
        .config()
        .apply(u, &ctx.state.keys)
        .map_err(AppError::invalid)?;
    crate::mqtt::config::save(
        &ctx.state.store,
        &ctx.state.keys,
        &next,
        ctx.state.clock.now_ms(),
    )
    .await?;
    tracing::info!(enabled = next.cfg.enabled, broker = %next.broker(), "MQTT settings saved");
    let dto = MqttConfigDto::from(&next);
    ctx.state.mqtt.apply(next);
    ok(&dto)
}

/// The connection: connected, counters, the last error.
#[utoipa::path(get, path = "/api/v1/integrations/mqtt/status", tag = "integrations",
    responses((status = 200, body = MqttStatusDto)),
    security(("api_key" = ["admin"]), ("bearer" = [])))]
pub async fn status(ctx: Ctx) -> AppResult<Response<Body>> {
    ok(&MqttStatusDto::from(ctx.state.mqtt.status()))
}

/// Connect once with the saved settings changed by the fields sent (nothing is saved); a
/// password left out is the saved one.
#[utoipa::path(post, path = "/api/v1/integrations/mqtt/test", tag = "integrations",
    request_body = MqttConfigUpdate,
    responses((status = 200, body = MqttTestResult, description = "`success` false with the reason when the broker could not be used"),
        (status = 422, body = super::ErrorBody)),
    security(("api_key" = ["admin"]), ("bearer" = [])))]
pub async fn test(ctx: Ctx, req: Request<Incoming>) -> AppResult<Response<Body>> {
    let mut u: MqttConfigUpdate = read_json(req, ctx.body_limit()).await?;
    // Testing is about reaching the broker: "enabled" plays no part.
    u.enabled = Some(false);
    let rt = ctx
        .state
        .mqtt
        .config()
        .apply(u, &ctx.state.keys)
        .map_err(AppError::invalid)?;
    if rt.cfg.broker_host.is_empty() {
        return Err(AppError::invalid("broker_host: required"));
    }
    let out = crate::mqtt::connect::test(&rt).await;
    ok(&match out {
        Ok(()) => MqttTestResult {
            success: true,
            message: format!("Connected to {}", rt.broker()),
        },
        Err(message) => MqttTestResult {
            success: false,
            message,
        },
    })
}

/// Publish the Home Assistant discovery configs and every camera's states again.
#[utoipa::path(post, path = "/api/v1/integrations/mqtt/publish-discovery", tag = "integrations",
    responses((status = 200, body = DiscoveryResult),
        (status = 409, body = super::ErrorBody, description = "MQTT is off, not connected, or discovery is off")),
    security(("api_key" = ["admin"]), ("bearer" = [])))]
pub async fn publish_discovery(ctx: Ctx) -> AppResult<Response<Body>> {
    let rt = ctx.state.mqtt.config();
    let st = ctx.state.mqtt.status();
    if !rt.cfg.enabled {
        return Err(AppError::conflict("MQTT is not enabled"));
    }
    if !rt.cfg.discovery_enabled {
        return Err(AppError::conflict("discovery_enabled is false"));
    }
    if !st.connected {
        return Err(AppError::conflict(format!(
            "MQTT is not connected to {}{}",
            rt.broker(),
            st.last_error.map(|e| format!(": {e}")).unwrap_or_default()
        )));
    }
    ctx.state.mqtt.publish_discovery();
    ok(&DiscoveryResult {
        success: true,
        message: format!(
            "discovery published under {}/device/",
            rt.cfg.discovery_prefix
        ),
    })
}
