//! `/ai`: cloud vision providers, descriptions on demand, usage and cost. The shapes are final;
//! the provider clients arrive with issue 5, and until then every route answers 501 after
//! authenticating and validating its input.

use super::Ctx;
use crate::error::{AppError, AppResult};
use crate::http::body::{query, read_json, Body};
use crate::settings::ProviderName;
use hyper::body::Incoming;
use hyper::{Request, Response};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use utoipa::{IntoParams, ToSchema};

const NOT_YET: &str = "Cloud AI descriptions arrive with issue 5; no provider was called";

#[derive(Debug, Serialize, ToSchema)]
pub struct ProviderDto {
    pub name: ProviderName,
    pub configured: bool,
    /// Last 4 characters of the key, when configured.
    pub key_hint: Option<String>,
    pub model: Option<String>,
    pub base_url: Option<String>,
    /// Circuit breaker: `closed`, `open` or `half_open`.
    pub circuit: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProvidersDto {
    pub order: Vec<ProviderName>,
    pub providers: Vec<ProviderDto>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DescribeRequest {
    /// A JPEG or PNG image, base64 (a `data:` URI is accepted).
    pub image_base64: String,
    /// Replaces the default prompt.
    pub prompt: Option<String>,
    /// Camera name to put in the prompt's context.
    pub camera_name: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DescribeResponse {
    pub description: String,
    pub objects: Vec<String>,
    /// 0-100, as reported by the model.
    pub confidence: Option<u8>,
    /// `none`, `low` or `high`.
    pub threat_level: Option<String>,
    pub provider: ProviderName,
    pub model: String,
    pub fallback_used: bool,
    pub latency_ms: u64,
    pub cost_usd: f64,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UsageQuery {
    pub start_date: Option<String>,
    pub end_date: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProviderUsage {
    pub calls: u64,
    pub successful_calls: u64,
    pub tokens_in: u64,
    pub tokens_out: u64,
    pub cost_usd: f64,
    pub avg_latency_ms: f64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DayUsage {
    pub date: String,
    pub calls: u64,
    pub cost_usd: f64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UsageDto {
    pub start: String,
    pub end: String,
    pub total_calls: u64,
    pub successful_calls: u64,
    pub failed_calls: u64,
    pub total_tokens: u64,
    pub total_cost_usd: f64,
    pub avg_latency_ms: f64,
    pub by_provider: HashMap<String, ProviderUsage>,
    pub by_day: Vec<DayUsage>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CapabilityDto {
    pub max_images: u32,
    pub formats: Vec<String>,
    pub configured: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ContextMetricsDto {
    /// Prompts measured (most recent first window).
    pub prompts: u64,
    pub avg_context_tokens: f64,
    /// How often each context source went into a prompt.
    pub source_usage: HashMap<String, u64>,
    pub avg_build_ms: f64,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefinePromptRequest {
    pub current_prompt: String,
    /// Free-text feedback to take into account.
    pub feedback: Option<String>,
    /// How many recent descriptions to show the model (1-50, default 20).
    pub sample_events: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RefinePromptResponse {
    pub suggested_prompt: String,
    pub changes_summary: String,
    pub events_analyzed: u32,
    pub provider_used: ProviderName,
}

/// Configured cloud AI providers, order and circuit state.
#[utoipa::path(get, path = "/api/v1/ai/providers", tag = "ai",
    responses((status = 200, body = ProvidersDto), (status = 501, body = super::ErrorBody)),
    security(("api_key" = ["admin"]), ("bearer" = [])))]
pub async fn providers(_ctx: Ctx) -> AppResult<Response<Body>> {
    Err(AppError::not_implemented(NOT_YET))
}

/// Describe an image without creating an event.
#[utoipa::path(post, path = "/api/v1/ai/describe", tag = "ai", request_body = DescribeRequest,
    responses((status = 200, body = DescribeResponse), (status = 501, body = super::ErrorBody)),
    security(("api_key" = ["admin"]), ("bearer" = [])))]
pub async fn describe(ctx: Ctx, req: Request<Incoming>) -> AppResult<Response<Body>> {
    let _: DescribeRequest = read_json(req, ctx.state.cfg.http.max_upload_bytes).await?;
    Err(AppError::not_implemented(NOT_YET))
}

/// Cloud AI calls, tokens and cost over a date range.
#[utoipa::path(get, path = "/api/v1/ai/usage", tag = "ai", params(UsageQuery),
    responses((status = 200, body = UsageDto), (status = 501, body = super::ErrorBody)),
    security(("api_key" = ["admin"]), ("bearer" = [])))]
pub async fn usage(_ctx: Ctx, req: Request<Incoming>) -> AppResult<Response<Body>> {
    let _: UsageQuery = query(req.uri().query())?;
    Err(AppError::not_implemented(NOT_YET))
}

/// What each provider accepts.
#[utoipa::path(get, path = "/api/v1/ai/capabilities", tag = "ai",
    responses((status = 200, body = HashMap<String, CapabilityDto>), (status = 501, body = super::ErrorBody)),
    security(("api_key" = ["admin"]), ("bearer" = [])))]
pub async fn capabilities(_ctx: Ctx) -> AppResult<Response<Body>> {
    Err(AppError::not_implemented(NOT_YET))
}

/// What context went into recent prompts.
#[utoipa::path(get, path = "/api/v1/ai/context-metrics", tag = "ai",
    responses((status = 200, body = ContextMetricsDto), (status = 501, body = super::ErrorBody)),
    security(("api_key" = ["admin"]), ("bearer" = [])))]
pub async fn context_metrics(_ctx: Ctx) -> AppResult<Response<Body>> {
    Err(AppError::not_implemented(NOT_YET))
}

/// Ask a provider to improve a prompt.
#[utoipa::path(post, path = "/api/v1/ai/refine-prompt", tag = "ai", request_body = RefinePromptRequest,
    responses((status = 200, body = RefinePromptResponse), (status = 501, body = super::ErrorBody)),
    security(("api_key" = ["admin"]), ("bearer" = [])))]
pub async fn refine_prompt(ctx: Ctx, req: Request<Incoming>) -> AppResult<Response<Body>> {
    let _: RefinePromptRequest = read_json(req, ctx.body_limit()).await?;
    Err(AppError::not_implemented(NOT_YET))
}
