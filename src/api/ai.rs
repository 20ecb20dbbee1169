//! `/ai`: cloud vision providers (configured order, models, breaker state), descriptions on
//! demand, usage and cost, what went into recent prompts, and prompt refinement. The work is in
//! `crate::describe` and `crate::ai`; these handlers validate, call and shape the answers.

use super::Ctx;
use crate::api::body::{ok, query, read_json, Body};
use crate::error::{AppError, AppResult};
use crate::settings::ProviderName;
use hyper::body::Incoming;
use hyper::{Request, Response};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use utoipa::{IntoParams, ToSchema};

use crate::describe::RunError;
use crate::error::ErrorKind;

impl From<RunError> for AppError {
    fn from(e: RunError) -> Self {
        match e {
            RunError::NoProvider => AppError::conflict(e.to_string()),
            RunError::Image(_) => AppError::invalid(format!("image_base64: {e}")),
        }
    }
}

/// A chain that produced no answer, as a 502 naming what the providers said.
fn upstream(o: &crate::ai::ChainOutcome) -> AppError {
    AppError::new(
        ErrorKind::BadGateway,
        o.error
            .clone()
            .unwrap_or_else(|| "no provider answered".into()),
    )
}

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
    responses((status = 200, body = ProvidersDto)),
    security(("api_key" = ["admin"]), ("bearer" = [])))]
pub async fn providers(ctx: Ctx) -> AppResult<Response<Body>> {
    let settings = ctx.state.settings().await?;
    let b = &ctx.state.describer.breakers;
    let providers = ProviderName::ALL
        .iter()
        .map(|n| {
            let p = settings.ai_providers.get(n).cloned().unwrap_or_default();
            ProviderDto {
                name: *n,
                configured: p.configured
                    || (*n == ProviderName::OpenaiCompatible
                        && settings.ai_providers.contains_key(n)),
                key_hint: p.key_hint,
                model: Some(
                    p.model
                        .unwrap_or_else(|| crate::ai::default_model(*n).to_string()),
                ),
                base_url: Some(
                    p.base_url
                        .unwrap_or_else(|| crate::ai::default_base_url(*n).to_string()),
                ),
                circuit: b.state(*n).to_string(),
            }
        })
        .collect();
    ok(&ProvidersDto {
        order: settings.ai_provider_order.clone(),
        providers,
    })
}

/// Describe an image without creating an event.
#[utoipa::path(post, path = "/api/v1/ai/describe", tag = "ai", request_body = DescribeRequest,
    responses((status = 200, body = DescribeResponse),
        (status = 409, body = super::ErrorBody, description = "No provider configured, or a cost cap reached"),
        (status = 422, body = super::ErrorBody, description = "Not a usable JPEG or PNG image, or one too large to decode (over 128 MiB of decoded data)"),
        (status = 502, body = super::ErrorBody, description = "No provider answered; the detail says why")),
    security(("api_key" = ["admin"]), ("bearer" = [])))]
pub async fn describe(ctx: Ctx, req: Request<Incoming>) -> AppResult<Response<Body>> {
    let limit = ctx.state.cfg.http.max_upload_bytes;
    let ct = req
        .headers()
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let (image, prompt, camera_name) = if let Some(b) = crate::api::multipart::boundary(&ct) {
        let body = crate::api::body::read_bytes(req, limit).await?;
        let parts = crate::api::multipart::parse(&body, &b)
            .map_err(|e| AppError::bad_request(format!("multipart body: {e}")))?;
        let text = |name: &str| -> AppResult<Option<String>> {
            parts
                .iter()
                .find(|p| p.name == name)
                .map(|p| {
                    String::from_utf8(p.data.to_vec())
                        .map_err(|_| AppError::invalid(format!("{name}: not UTF-8 text")))
                })
                .transpose()
        };
        let image = parts
            .iter()
            .find(|p| p.name == "image" || p.name == "file")
            .ok_or_else(|| AppError::invalid("image: add a file part named \"image\""))?
            .data
            .to_vec();
        (image, text("prompt")?, text("camera_name")?)
    } else {
        let r: DescribeRequest = read_json(req, limit).await?;
        let b64 = match r.image_base64.split_once(";base64,") {
            Some((head, data)) if head.starts_with("data:") => data,
            _ => r.image_base64.as_str(),
        };
        use base64::Engine;
        let image = base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .map_err(|_| AppError::invalid("image_base64: not valid base64"))?;
        (image, r.prompt, r.camera_name)
    };
    if image.is_empty() {
        return Err(AppError::invalid("image: empty"));
    }
    if crate::ai::image::sniff(&image).is_none() {
        return Err(AppError::invalid("image: a JPEG or PNG image is required"));
    }
    // From the headers only: an image whose decode would not fit the memory budget is refused
    // here, configured provider or not.
    crate::ai::image::check(&image).map_err(|e| AppError::invalid(format!("image: {e}")))?;
    if prompt.as_ref().is_some_and(|p| p.len() > 2000) {
        return Err(AppError::invalid("prompt: at most 2000 characters"));
    }
    let d = &ctx.state.describer;
    let settings = ctx.state.settings().await?;
    if let Some(why) = ctx.state.describer.capped(&settings).await {
        return Err(AppError::conflict(why));
    }
    let (system, user) = d.prompts(
        camera_name.as_deref(),
        ctx.state.clock.now_ms(),
        &[],
        prompt.as_deref(),
    );
    let started = std::time::Instant::now();
    let o = d
        .run(
            image,
            &system,
            &user,
            crate::describe::For::request("describe"),
        )
        .await?;
    let cost = o.cost_usd();
    let Some((provider, answer, parsed)) = o.answer.clone() else {
        return Err(upstream(&o));
    };
    ok(&DescribeResponse {
        description: parsed.description,
        objects: parsed.objects,
        confidence: parsed.confidence,
        threat_level: parsed.threat_level,
        provider,
        model: answer.model,
        fallback_used: o.fallback_used,
        latency_ms: started.elapsed().as_millis() as u64,
        cost_usd: cost,
    })
}

/// Cloud AI calls, tokens and cost over a date range.
#[utoipa::path(get, path = "/api/v1/ai/usage", tag = "ai", params(UsageQuery),
    responses((status = 200, body = UsageDto), (status = 422, body = super::ErrorBody)),
    security(("api_key" = ["admin"]), ("bearer" = [])))]
pub async fn usage(ctx: Ctx, req: Request<Incoming>) -> AppResult<Response<Body>> {
    let q: UsageQuery = query(req.uri().query())?;
    let now = ctx.state.clock.now_ms();
    let end = match &q.end_date {
        Some(v) => super::parse_time_param("end_date", v, true)?,
        None => now + 1,
    };
    let start = match &q.start_date {
        Some(v) => super::parse_time_param("start_date", v, false)?,
        None => end - 30 * 86_400_000,
    };
    if start >= end {
        return Err(AppError::invalid("start_date: must be before end_date"));
    }
    let (rows, days) = ctx
        .state
        .store
        .read(move |c| {
            Ok((
                crate::store::ai::totals_by_provider(c, start, end)?,
                crate::store::ai::by_day(c, start, end)?,
            ))
        })
        .await?;
    let mut out = UsageDto {
        start: crate::clock::format_rfc3339(start),
        end: crate::clock::format_rfc3339(end),
        total_calls: 0,
        successful_calls: 0,
        failed_calls: 0,
        total_tokens: 0,
        total_cost_usd: 0.0,
        avg_latency_ms: 0.0,
        by_provider: HashMap::new(),
        by_day: days
            .into_iter()
            .map(|(date, calls, cost_usd)| DayUsage {
                date,
                calls,
                cost_usd,
            })
            .collect(),
    };
    let mut latency = 0u64;
    for (name, t) in rows {
        out.total_calls += t.calls;
        out.successful_calls += t.ok;
        out.total_tokens += t.tokens_in + t.tokens_out;
        out.total_cost_usd += t.cost_usd;
        latency += t.latency_ms_sum;
        out.by_provider.insert(
            name,
            ProviderUsage {
                calls: t.calls,
                successful_calls: t.ok,
                tokens_in: t.tokens_in,
                tokens_out: t.tokens_out,
                cost_usd: t.cost_usd,
                avg_latency_ms: if t.calls > 0 {
                    t.latency_ms_sum as f64 / t.calls as f64
                } else {
                    0.0
                },
            },
        );
    }
    out.failed_calls = out.total_calls - out.successful_calls;
    if out.total_calls > 0 {
        out.avg_latency_ms = latency as f64 / out.total_calls as f64;
    }
    ok(&out)
}

/// What each provider accepts.
#[utoipa::path(get, path = "/api/v1/ai/capabilities", tag = "ai",
    responses((status = 200, body = HashMap<String, CapabilityDto>)),
    security(("api_key" = ["admin"]), ("bearer" = [])))]
pub async fn capabilities(ctx: Ctx) -> AppResult<Response<Body>> {
    let settings = ctx.state.settings().await?;
    let map: HashMap<String, CapabilityDto> = ProviderName::ALL
        .iter()
        .map(|n| {
            let configured = settings
                .ai_providers
                .get(n)
                .is_some_and(|p| p.configured || *n == ProviderName::OpenaiCompatible);
            (
                n.as_str().to_string(),
                CapabilityDto {
                    // One snapshot per description; uploads are re-encoded as JPEG.
                    max_images: 1,
                    formats: vec!["jpeg".into(), "png".into()],
                    configured,
                },
            )
        })
        .collect();
    ok(&map)
}

/// What context went into recent prompts.
#[utoipa::path(get, path = "/api/v1/ai/context-metrics", tag = "ai",
    responses((status = 200, body = ContextMetricsDto)),
    security(("api_key" = ["admin"]), ("bearer" = [])))]
pub async fn context_metrics(ctx: Ctx) -> AppResult<Response<Body>> {
    let m = ctx.state.describer.prompt_metrics();
    let n = m.len() as f64;
    let mut source_usage: HashMap<String, u64> = HashMap::new();
    for p in &m {
        for s in &p.sources {
            *source_usage.entry(s.to_string()).or_default() += 1;
        }
    }
    let avg = |f: &dyn Fn(&crate::describe::PromptMetric) -> f64| {
        if m.is_empty() {
            0.0
        } else {
            m.iter().map(f).sum::<f64>() / n
        }
    };
    ok(&ContextMetricsDto {
        prompts: m.len() as u64,
        avg_context_tokens: avg(&|p| p.tokens as f64),
        source_usage,
        avg_build_ms: avg(&|p| p.build_us as f64 / 1000.0),
    })
}

/// Ask a provider to improve a prompt.
#[utoipa::path(post, path = "/api/v1/ai/refine-prompt", tag = "ai", request_body = RefinePromptRequest,
    responses((status = 200, body = RefinePromptResponse), (status = 409, body = super::ErrorBody),
        (status = 422, body = super::ErrorBody), (status = 502, body = super::ErrorBody)),
    security(("api_key" = ["admin"]), ("bearer" = [])))]
pub async fn refine_prompt(ctx: Ctx, req: Request<Incoming>) -> AppResult<Response<Body>> {
    let r: RefinePromptRequest = read_json(req, ctx.body_limit()).await?;
    if r.current_prompt.trim().is_empty() || r.current_prompt.len() > 2000 {
        return Err(AppError::invalid("current_prompt: 1 to 2000 characters"));
    }
    if r.feedback.as_ref().is_some_and(|f| f.len() > 2000) {
        return Err(AppError::invalid("feedback: at most 2000 characters"));
    }
    let n = r.sample_events.unwrap_or(20);
    if !(1..=50).contains(&n) {
        return Err(AppError::invalid("sample_events: between 1 and 50"));
    }
    // The providers are vision APIs: the most recent snapshot goes along as the picture the
    // prompt is for, with recent descriptions as examples.
    let (descriptions, snapshot) = ctx
        .state
        .store
        .read(move |c| {
            Ok((
                crate::store::ai::recent_descriptions(c, n)?,
                crate::store::events::latest_thumbnail(c)?,
            ))
        })
        .await?;
    let Some(rel) = snapshot else {
        return Err(AppError::conflict(
            "no event snapshot yet: prompt refinement shows the model a recent snapshot",
        ));
    };
    let path = ctx.state.cfg.data_dir.join(rel);
    let image = tokio::fs::read(&path)
        .await
        .map_err(|_| AppError::conflict("the latest snapshot cannot be read"))?;
    let mut user = format!(
        "You help the owner of a home security camera write the instruction given to a vision \
         model that describes camera snapshots. Current instruction:\n---\n{}\n---\n",
        r.current_prompt.trim()
    );
    if let Some(f) = r.feedback.as_deref().filter(|f| !f.trim().is_empty()) {
        user.push_str(&format!("Owner's feedback: {}\n", f.trim()));
    }
    if !descriptions.is_empty() {
        user.push_str("Recent descriptions it produced:\n");
        for d in &descriptions {
            user.push_str(&format!("- {}\n", d.replace('\n', " ")));
        }
    }
    user.push_str(
        "The attached snapshot is a recent one from this appliance. Answer with JSON only: \
         {\"description\": \"<the improved instruction>\", \"objects\": [\"<one short note per \
         change>\"], \"confidence\": 0-100, \"threat_level\": \"none\"}",
    );
    let system = "You improve prompts for security-camera description models. Keep them short, \
                  concrete and factual.";
    let o = ctx
        .state
        .describer
        .run(
            image,
            system,
            &user,
            crate::describe::For::request("refine"),
        )
        .await
        .map_err(|e| match e {
            RunError::Image(_) => AppError::conflict("the latest snapshot is not a usable image"),
            e => e.into(),
        })?;
    let Some((provider, _, parsed)) = o.answer.clone() else {
        return Err(upstream(&o));
    };
    let summary = if parsed.objects.is_empty() {
        "The provider gave no list of changes.".to_string()
    } else {
        parsed.objects.join("; ")
    };
    ok(&RefinePromptResponse {
        suggested_prompt: parsed.description,
        changes_summary: summary,
        events_analyzed: descriptions.len() as u32,
        provider_used: provider,
    })
}
