//! `/webhooks`: try a webhook target once, and read the delivery log (a page, or CSV).

use super::{parse_time_param, Ctx};
use crate::alerts::sign;
use crate::alerts::webhook::Outcome;
use crate::api::body::{full, ok, query, read_json, Body};
use crate::error::{AppError, AppResult};
use crate::store::alerts::{self as sql, LogFilter, WebhookLogRow};
use hyper::body::Incoming;
use hyper::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use hyper::{Request, Response, StatusCode};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookTestRequest {
    /// `http` or `https`; LAN hosts are allowed, link-local and multicast ones are not.
    pub url: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The JSON to send (default: a sample alert).
    #[schema(value_type = Option<Object>)]
    pub payload: Option<serde_json::Value>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookTestResult {
    pub success: bool,
    pub status_code: Option<u16>,
    /// The receiver's answer, at most 200 characters.
    pub response_body: String,
    pub response_time_ms: u64,
    pub error: Option<String>,
}

impl From<Outcome> for WebhookTestResult {
    fn from(o: Outcome) -> Self {
        WebhookTestResult {
            success: o.success,
            status_code: o.status_code,
            response_body: o.response_body,
            response_time_ms: o.response_time_ms,
            error: o.error,
        }
    }
}

/// Send one request to a webhook target and report what it answered (not signed, not retried,
/// not logged).
#[utoipa::path(post, path = "/api/v1/webhooks/test", tag = "alerts", request_body = WebhookTestRequest,
    responses((status = 200, body = WebhookTestResult), (status = 422, body = super::ErrorBody)),
    security(("api_key" = ["admin"]), ("bearer" = [])))]
pub async fn test(ctx: Ctx, req: Request<Incoming>) -> AppResult<Response<Body>> {
    let b: WebhookTestRequest = read_json(req, ctx.body_limit()).await?;
    sign::check_webhook_url(&b.url, "url").map_err(AppError::invalid)?;
    sign::check_headers(&b.headers, "headers").map_err(AppError::invalid)?;
    let now = ctx.state.clock.now_ms();
    let payload = b.payload.unwrap_or_else(|| {
        serde_json::json!({
            "type": "test",
            "event_id": null,
            "timestamp": crate::clock::format_rfc3339(now),
            "camera": {"id": null, "name": "Test camera"},
            "detection_type": "person",
            "description": "A test message from Argus Edge.",
            "confidence": 100,
            "objects_detected": ["person"],
            "thumbnail_url": null,
            "has_clip": false,
            "clip_url": null,
            "rule": {"id": null, "name": "Test"},
        })
    });
    let out = ctx
        .state
        .webhooks
        .post(
            &b.url,
            &b.headers,
            &payload.to_string(),
            None,
            None,
            now / 1000,
        )
        .await;
    ok(&WebhookTestResult::from(out))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LogQuery {
    pub rule_id: Option<String>,
    pub success: Option<bool>,
    /// RFC 3339 or YYYY-MM-DD.
    pub start_date: Option<String>,
    /// RFC 3339 or YYYY-MM-DD (inclusive).
    pub end_date: Option<String>,
    /// 1-200 (default 50).
    pub limit: Option<u32>,
    pub offset: Option<u64>,
}

impl LogQuery {
    fn filter(&self) -> AppResult<LogFilter> {
        Ok(LogFilter {
            rule_id: self.rule_id.clone(),
            success: self.success,
            start: self
                .start_date
                .as_deref()
                .map(|v| parse_time_param("start_date", v, false))
                .transpose()?,
            end: self
                .end_date
                .as_deref()
                .map(|v| parse_time_param("end_date", v, true))
                .transpose()?,
        })
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookLogDto {
    pub id: i64,
    pub alert_rule_id: Option<String>,
    pub event_id: Option<String>,
    pub url: String,
    pub status_code: Option<u16>,
    pub response_time_ms: Option<u64>,
    /// 0 for the first attempt, then 1 to 3.
    pub retry_count: u32,
    pub success: bool,
    pub error_message: Option<String>,
    pub created_at: String,
}

impl From<WebhookLogRow> for WebhookLogDto {
    fn from(r: WebhookLogRow) -> Self {
        WebhookLogDto {
            id: r.id,
            alert_rule_id: r.alert_rule_id,
            event_id: r.event_id,
            url: r.url,
            status_code: r.status_code,
            response_time_ms: r.response_time_ms,
            retry_count: r.retry_count,
            success: r.success,
            error_message: r.error_message,
            created_at: crate::clock::format_rfc3339(r.created_at),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookLogList {
    pub data: Vec<WebhookLogDto>,
    pub total_count: u64,
}

/// Webhook delivery attempts, newest first.
#[utoipa::path(get, path = "/api/v1/webhooks/logs", tag = "alerts", params(LogQuery),
    responses((status = 200, body = WebhookLogList), (status = 422, body = super::ErrorBody)),
    security(("api_key" = ["admin"]), ("bearer" = [])))]
pub async fn logs(ctx: Ctx, req: Request<Incoming>) -> AppResult<Response<Body>> {
    let q: LogQuery = query(req.uri().query())?;
    let filter = q.filter()?;
    let limit = q.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(AppError::invalid("limit: between 1 and 200"));
    }
    let offset = q.offset.unwrap_or(0);
    let (rows, total) = ctx
        .state
        .store
        .read(move |c| sql::logs_page(c, &filter, limit, offset))
        .await?;
    ok(&WebhookLogList {
        data: rows.into_iter().map(WebhookLogDto::from).collect(),
        total_count: total,
    })
}

const CSV_HEADER: &str = "id,created_at,alert_rule_id,event_id,url,status_code,response_time_ms,retry_count,success,error_message\n";

/// Webhook delivery attempts as CSV (the same filters as the log).
#[utoipa::path(get, path = "/api/v1/webhooks/logs/export", tag = "alerts", params(LogQuery),
    responses((status = 200, content_type = "text/csv", description = "Every matching attempt, newest first"),
        (status = 422, body = super::ErrorBody)),
    security(("api_key" = ["admin"]), ("bearer" = [])))]
pub async fn export(ctx: Ctx, req: Request<Incoming>) -> AppResult<Response<Body>> {
    let q: LogQuery = query(req.uri().query())?;
    let filter = q.filter()?;
    let csv = ctx
        .state
        .store
        .read(move |c| {
            use super::events::csv_field;
            let mut out = String::from(CSV_HEADER);
            sql::for_each_log(c, &filter, |r| {
                let fields = [
                    r.id.to_string(),
                    crate::clock::format_rfc3339(r.created_at),
                    r.alert_rule_id.unwrap_or_default(),
                    r.event_id.unwrap_or_default(),
                    r.url,
                    r.status_code.map(|s| s.to_string()).unwrap_or_default(),
                    r.response_time_ms
                        .map(|s| s.to_string())
                        .unwrap_or_default(),
                    r.retry_count.to_string(),
                    r.success.to_string(),
                    r.error_message.unwrap_or_default(),
                ];
                for (i, f) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    csv_field(&mut out, f);
                }
                out.push('\n');
                true
            })?;
            Ok(out)
        })
        .await?;
    let day = crate::clock::utc_day(ctx.state.clock.now_ms());
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header(CONTENT_TYPE, "text/csv; charset=utf-8")
        .header(
            CONTENT_DISPOSITION,
            format!("attachment; filename=\"argus-webhook-log-{day}.csv\""),
        )
        .body(full(csv))
        .expect("static headers are valid"))
}
