//! The ArgusAI REST API under `/api/v1`: one module per resource, each with its handlers and its
//! wire types (DTOs). DTOs are built from store rows; rows are never serialised directly.
//!
//! Conventions: list endpoints page with `?page=&limit=` and answer `{items,total,page,limit,pages}`;
//! ids are UUIDs; times are RFC 3339 UTC with a `Z`; errors are `{detail, status_code}`.

pub mod ai;
pub mod alert_rules;
pub mod api_keys;
pub mod auth;
pub mod body;
pub mod cameras;
pub mod clips;
pub mod events;
pub mod live;
pub mod mqtt;
pub mod multipart;
pub mod notifications;
pub mod openapi;
pub mod protect;
pub mod range;
pub mod routes;
pub mod system;
pub mod upgrade;
pub mod webhooks;

use crate::api::body::Body;
use crate::auth::Principal;
use crate::error::{AppError, AppResult};
use crate::state::AppState;
use hyper::body::Incoming;
use hyper::{Request, Response};
use routes::Op;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::sync::Arc;
use utoipa::{IntoParams, ToSchema};

/// What a handler gets besides the request.
pub struct Ctx {
    pub state: Arc<AppState>,
    pub principal: Option<Principal>,
    pub params: Vec<(String, String)>,
    pub peer: SocketAddr,
    /// Turns true when the server shuts down (for responses that stream until told to stop).
    pub stop: tokio::sync::watch::Receiver<bool>,
}

impl Ctx {
    pub fn param(&self, name: &str) -> &str {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    }

    pub fn principal(&self) -> AppResult<&Principal> {
        self.principal
            .as_ref()
            .ok_or_else(|| AppError::unauthenticated("Not authenticated"))
    }

    /// Upper bound for JSON bodies.
    pub fn body_limit(&self) -> usize {
        self.state.cfg.http.max_body_bytes
    }
}

/// Pagination parameters shared by list endpoints.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// 1-based page number (default 1).
    pub page: Option<u32>,
    /// Items per page, 1 to 500 (default 20).
    pub limit: Option<u32>,
}

impl PageQuery {
    pub fn resolve(&self) -> AppResult<(u32, u32)> {
        let page = self.page.unwrap_or(1);
        let limit = self.limit.unwrap_or(20);
        if page == 0 {
            return Err(AppError::invalid("page: must be 1 or more"));
        }
        if !(1..=500).contains(&limit) {
            return Err(AppError::invalid("limit: must be between 1 and 500"));
        }
        Ok((page, limit))
    }
}

/// One page of a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T: ToSchema> {
    pub items: Vec<T>,
    /// Number of items matching, over all pages.
    pub total: u64,
    pub page: u32,
    pub limit: u32,
    /// Number of pages (`ceil(total / limit)`).
    pub pages: u64,
}

impl<T: ToSchema> Page<T> {
    pub fn new(items: Vec<T>, total: u64, page: u32, limit: u32) -> Self {
        Page {
            items,
            total,
            page,
            limit,
            pages: total.div_ceil(limit as u64),
        }
    }
}

/// A simple acknowledgement.
#[derive(Debug, Serialize, ToSchema)]
pub struct Message {
    pub message: String,
}

/// The JSON error body every failure carries.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong, naming the field for validation errors.
    pub detail: String,
    /// The HTTP status, repeated.
    pub status_code: u16,
}

/// Runs the operation a route names.
pub async fn dispatch(op: Op, ctx: Ctx, req: Request<Incoming>) -> AppResult<Response<Body>> {
    match op {
        Op::Health => system::health(ctx).await,
        Op::GetSettings => system::get_settings(ctx).await,
        Op::PutSettings => system::put_settings(ctx, req).await,
        Op::Storage => system::storage(ctx).await,
        Op::SslStatus => system::ssl_status(ctx).await,
        Op::Login => auth::login(ctx, req).await,
        Op::Logout => auth::logout(ctx).await,
        Op::Me => auth::me(ctx).await,
        Op::ChangePassword => auth::change_password(ctx, req).await,
        Op::ListCameras => cameras::list(ctx, req).await,
        Op::CreateCamera => cameras::create(ctx, req).await,
        Op::TestCamera => cameras::test(ctx, req).await,
        Op::GetCamera => cameras::get(ctx).await,
        Op::UpdateCamera => cameras::update(ctx, req).await,
        Op::DeleteCamera => cameras::delete(ctx).await,
        Op::StartCamera => cameras::start(ctx).await,
        Op::CameraSnapshot => cameras::snapshot(ctx).await,
        Op::CameraLive => live::websocket(ctx, req).await,
        Op::CameraLiveMjpeg => live::mjpeg(ctx).await,
        Op::StopCamera => cameras::stop(ctx).await,
        Op::ListEvents => events::list(ctx, req).await,
        Op::CreateEvent => events::create(ctx, req).await,
        Op::EventStats => events::stats(ctx, req).await,
        Op::ExportEvents => events::export(ctx, req).await,
        Op::CleanupEvents => events::cleanup(ctx, req).await,
        Op::GetEvent => events::get(ctx).await,
        Op::DeleteEvent => events::delete(ctx).await,
        Op::EventThumbnail => events::thumbnail(ctx, req).await,
        Op::EventClip => clips::clip(ctx, req).await,
        Op::ReanalyseEvent => events::reanalyse(ctx, req).await,
        Op::ListControllers => protect::list(ctx).await,
        Op::CreateController => protect::create(ctx, req).await,
        Op::TestController => protect::test(ctx, req).await,
        Op::GetController => protect::get(ctx).await,
        Op::UpdateController => protect::update(ctx, req).await,
        Op::DeleteController => protect::delete(ctx).await,
        Op::ControllerCameras => protect::cameras(ctx, req).await,
        Op::TestSavedController => protect::test_saved(ctx).await,
        Op::EnableProtectCamera => protect::enable(ctx, req).await,
        Op::DisableProtectCamera => protect::disable(ctx).await,
        Op::ProtectCameraFilters => protect::filters(ctx, req).await,
        Op::AiProviders => ai::providers(ctx).await,
        Op::AiDescribe => ai::describe(ctx, req).await,
        Op::AiUsage => ai::usage(ctx, req).await,
        Op::AiCapabilities => ai::capabilities(ctx).await,
        Op::AiContextMetrics => ai::context_metrics(ctx).await,
        Op::AiRefinePrompt => ai::refine_prompt(ctx, req).await,
        Op::ListApiKeys => api_keys::list(ctx, req).await,
        Op::CreateApiKey => api_keys::create(ctx, req).await,
        Op::GetApiKey => api_keys::get(ctx).await,
        Op::RevokeApiKey => api_keys::revoke(ctx).await,
        Op::ApiKeyUsage => api_keys::usage(ctx).await,
        Op::ListAlertRules => alert_rules::list(ctx, req).await,
        Op::CreateAlertRule => alert_rules::create(ctx, req).await,
        Op::GetAlertRule => alert_rules::get(ctx).await,
        Op::UpdateAlertRule => alert_rules::update(ctx, req).await,
        Op::DeleteAlertRule => alert_rules::delete(ctx).await,
        Op::TestAlertRule => alert_rules::test(ctx, req).await,
        Op::ListNotifications => notifications::list(ctx, req).await,
        Op::DeleteNotifications => notifications::delete_all(ctx, req).await,
        Op::MarkAllNotificationsRead => notifications::mark_all_read(ctx).await,
        Op::MarkNotificationRead => notifications::mark_read(ctx).await,
        Op::DeleteNotification => notifications::delete(ctx).await,
        Op::TestWebhook => webhooks::test(ctx, req).await,
        Op::WebhookLogs => webhooks::logs(ctx, req).await,
        Op::ExportWebhookLogs => webhooks::export(ctx, req).await,
        Op::GetMqttConfig => mqtt::get_config(ctx).await,
        Op::PutMqttConfig => mqtt::put_config(ctx, req).await,
        Op::MqttStatus => mqtt::status(ctx).await,
        Op::TestMqtt => mqtt::test(ctx, req).await,
        Op::PublishMqttDiscovery => mqtt::publish_discovery(ctx).await,
    }
}

/// Parses a time given as RFC 3339 or `YYYY-MM-DD`; `end_of_day` makes a bare date mean the
/// last millisecond of that day (for inclusive end dates).
pub fn parse_time_param(name: &str, v: &str, end_of_day: bool) -> AppResult<i64> {
    let ms = crate::clock::parse_time(v).ok_or_else(|| {
        AppError::invalid(format!(
            "{name}: use RFC 3339 (2025-01-31T18:00:00Z) or YYYY-MM-DD"
        ))
    })?;
    if end_of_day && v.len() == 10 {
        Ok(ms + 86_400_000 - 1)
    } else {
        Ok(ms)
    }
}

/// 404 for ids that are not UUIDs, so malformed ids and unknown ids answer alike.
pub fn check_uuid(what: &'static str, id: &str) -> AppResult<()> {
    if uuid::Uuid::try_parse(id).is_err() {
        return Err(AppError::not_found(format!("{what} not found")));
    }
    Ok(())
}
