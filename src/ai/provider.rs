//! One description request to one provider, in that provider's documented wire format, and the
//! classification of what came back. Owns the request bodies (OpenAI Chat Completions, also used
//! for xAI Grok and local OpenAI-compatible servers; Anthropic Messages; Gemini
//! `generateContent`), the response parsing (text and token usage) and [`CallError`], which
//! decides what the fallback chain may retry.
//!
//! It never retries, never sleeps and keeps no state: that is the chain's job. API keys travel
//! only in request headers (marked sensitive) and are scrubbed from every error text.

use crate::settings::ProviderName;
use base64::Engine as _;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};
use serde_json::{json, Value};
use std::time::{Duration, SystemTime};
use thiserror::Error;

/// Anthropic API version header value (the current stable version of the Messages API).
pub const ANTHROPIC_VERSION: &str = "2023-06-01";

/// Output token limit for a description (a JSON object of one or two sentences fits in ~150).
pub const MAX_OUTPUT_TOKENS: u32 = 400;

/// Output token limit for reasoning models, whose hidden reasoning counts against the limit.
const MAX_REASONING_OUTPUT_TOKENS: u32 = 2000;

/// Largest response body read, in bytes; a description answer is a few kilobytes.
const MAX_RESPONSE_BYTES: usize = 2 << 20;

/// How one provider is reached. Empty `base_url` or `model` mean the provider's default.
#[derive(Clone, PartialEq)]
pub struct ProviderConfig {
    pub name: ProviderName,
    /// Secret. Optional only for `openai_compatible` (local servers rarely check it).
    pub api_key: String,
    /// API root including the version path, e.g. `https://api.openai.com/v1`.
    pub base_url: String,
    pub model: String,
}

/// Shows everything but the key (only whether there is one).
impl std::fmt::Debug for ProviderConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderConfig")
            .field("name", &self.name)
            .field("api_key", &if self.api_key.is_empty() { "" } else { "***" })
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .finish()
    }
}

impl ProviderConfig {
    /// A provider with its default base URL and model.
    pub fn new(name: ProviderName, api_key: impl Into<String>) -> ProviderConfig {
        ProviderConfig {
            name,
            api_key: api_key.into(),
            base_url: default_base_url(name).to_string(),
            model: default_model(name).to_string(),
        }
    }

    /// The base URL to call: the configured one, or the default when blank.
    pub fn effective_base_url(&self) -> &str {
        match self.base_url.trim() {
            "" => default_base_url(self.name),
            s => s,
        }
    }

    /// The model to ask for: the configured one, or the default when blank.
    pub fn effective_model(&self) -> &str {
        match self.model.trim() {
            "" => default_model(self.name),
            s => s,
        }
    }

    /// Whether this provider can be called: it has a key, or it is a local OpenAI-compatible
    /// server (which needs only a base URL, and the default points at Ollama).
    pub fn usable(&self) -> bool {
        !self.api_key.trim().is_empty() || self.name == ProviderName::OpenaiCompatible
    }
}

/// The wire name of a provider (`openai`, `anthropic`, `gemini`, `grok`, `openai_compatible`).
pub fn wire_name(name: ProviderName) -> &'static str {
    match name {
        ProviderName::Openai => "openai",
        ProviderName::Anthropic => "anthropic",
        ProviderName::Gemini => "gemini",
        ProviderName::Grok => "grok",
        ProviderName::OpenaiCompatible => "openai_compatible",
    }
}

/// Each provider's public API root; `openai_compatible` defaults to a local Ollama.
pub fn default_base_url(name: ProviderName) -> &'static str {
    match name {
        ProviderName::Openai => "https://api.openai.com/v1",
        ProviderName::Anthropic => "https://api.anthropic.com/v1",
        ProviderName::Gemini => "https://generativelanguage.googleapis.com/v1beta",
        ProviderName::Grok => "https://api.x.ai/v1",
        ProviderName::OpenaiCompatible => "http://127.0.0.1:11434/v1",
    }
}

/// Each provider's default model: a fast, inexpensive model that accepts images. For
/// `openai_compatible` it is the small vision model Ollama's documentation uses.
pub fn default_model(name: ProviderName) -> &'static str {
    match name {
        ProviderName::Openai => "gpt-4o-mini",
        ProviderName::Anthropic => "claude-haiku-4-5",
        ProviderName::Gemini => "gemini-2.5-flash",
        ProviderName::Grok => "grok-4-fast-non-reasoning",
        ProviderName::OpenaiCompatible => "llava",
    }
}

/// A provider's answer before parsing.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// The model's text (all text parts joined).
    pub text: String,
    /// Billed input tokens (prompt and image), as the provider reported them; 0 if it did not.
    pub tokens_in: u64,
    /// Billed output tokens, including hidden reasoning ("thinking") tokens.
    pub tokens_out: u64,
    /// The model that answered, as reported (often a dated version of the requested one).
    pub model: String,
}

/// Why a call failed, classified for the chain (retry or not, count against the breaker or
/// not) and for usage rows ([`CallError::kind`]). Texts never contain the API key.
#[derive(Debug, Clone, Error, PartialEq)]
pub enum CallError {
    /// HTTP 429 that is about request rate, not money; worth retrying after `retry_after`.
    #[error("rate limited{}", .retry_after.map(|d| format!(" (retry after {:.1} s)", d.as_secs_f64())).unwrap_or_default())]
    RateLimited { retry_after: Option<Duration> },
    /// Out of quota or credit (OpenAI `insufficient_quota`, Anthropic credit balance, xAI
    /// credits, Gemini daily quota): retrying cannot help.
    #[error("quota or billing limit reached: {0}")]
    Quota(String),
    /// The key is missing, wrong or not allowed to use the model: retrying cannot help.
    #[error("authentication failed: {0}")]
    Auth(String),
    /// HTTP 5xx (Anthropic's 529 "overloaded" included): worth retrying.
    #[error("server error (HTTP {0})")]
    Server(u16),
    /// Any other 4xx: our request was refused (bad model name, image refused, ...).
    #[error("request rejected (HTTP {0}): {1}")]
    BadRequest(u16, String),
    #[error("timed out")]
    Timeout,
    /// The provider could not be reached (DNS, connection refused, TLS, invalid base URL).
    #[error("network error: {0}")]
    Network(String),
    /// A 2xx answer we cannot use: not JSON, no text, a refusal or a safety block.
    #[error("malformed answer: {0}")]
    Malformed(String),
}

impl CallError {
    /// Whether the chain may try the same provider again: only for rate limits and server
    /// errors. Timeouts move on to the next provider (a retry would likely eat the budget),
    /// quota and auth errors never heal by retrying, and network errors are mostly persistent
    /// (DNS, refused connections).
    pub fn retryable(&self) -> bool {
        matches!(self, CallError::RateLimited { .. } | CallError::Server(_))
    }

    /// The outcome name stored in usage rows.
    pub fn kind(&self) -> &'static str {
        match self {
            CallError::RateLimited { .. } => "rate_limited",
            CallError::Quota(_) => "quota",
            CallError::Auth(_) => "auth",
            CallError::Server(_) => "server_error",
            CallError::BadRequest(..) => "bad_request",
            CallError::Timeout => "timeout",
            CallError::Network(_) => "network",
            CallError::Malformed(_) => "malformed",
        }
    }
}

/// Asks `cfg`'s provider to describe `jpeg` with the given prompts. `timeout` bounds the whole
/// call, from connecting to the last byte of the answer.
pub async fn call(
    client: &reqwest::Client,
    cfg: &ProviderConfig,
    jpeg: &[u8],
    system: &str,
    user: &str,
    timeout: Duration,
) -> Result<Answer, CallError> {
    match tokio::time::timeout(timeout, call_inner(client, cfg, jpeg, system, user)).await {
        Ok(result) => result.map_err(|e| scrub_error(e, &cfg.api_key)),
        Err(_) => Err(CallError::Timeout),
    }
}

async fn call_inner(
    client: &reqwest::Client,
    cfg: &ProviderConfig,
    jpeg: &[u8],
    system: &str,
    user: &str,
) -> Result<Answer, CallError> {
    let (url, headers, body) = build_request(cfg, jpeg, system, user)?;
    let resp = client
        .post(url)
        .headers(headers)
        .json(&body)
        .send()
        .await
        .map_err(network_error)?;
    let status = resp.status().as_u16();
    let retry_after = retry_after(resp.headers(), SystemTime::now());
    let body = read_body(resp).await?;
    if !(200..300).contains(&status) {
        return Err(classify(
            status,
            retry_after,
            &String::from_utf8_lossy(&body),
        ));
    }
    let v: Value = serde_json::from_slice(&body)
        .map_err(|e| CallError::Malformed(format!("the response is not JSON: {e}")))?;
    let mut answer = match cfg.name {
        ProviderName::Anthropic => parse_anthropic(&v)?,
        ProviderName::Gemini => parse_gemini(&v)?,
        ProviderName::Openai | ProviderName::Grok | ProviderName::OpenaiCompatible => {
            parse_openai(&v)?
        }
    };
    if answer.model.is_empty() {
        answer.model = cfg.effective_model().to_string();
    }
    Ok(answer)
}

/// Reads at most [`MAX_RESPONSE_BYTES`] of the body.
async fn read_body(mut resp: reqwest::Response) -> Result<Vec<u8>, CallError> {
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(network_error)? {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_RESPONSE_BYTES {
            return Err(CallError::Malformed(format!(
                "the response is larger than {MAX_RESPONSE_BYTES} bytes"
            )));
        }
    }
    Ok(body)
}

fn network_error(e: reqwest::Error) -> CallError {
    if e.is_timeout() {
        return CallError::Timeout;
    }
    // The URL is left out: a base URL may carry credentials.
    let e = e.without_url();
    let mut msg = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        let text = s.to_string();
        if !msg.contains(&text) {
            msg.push_str(": ");
            msg.push_str(&text);
        }
        source = s.source();
    }
    CallError::Network(msg)
}

/// True for OpenAI reasoning models (o1, o3, o4-mini, gpt-5...), which reject `temperature`
/// and need room for hidden reasoning tokens.
fn openai_reasoning(model: &str) -> bool {
    let m = model.to_ascii_lowercase();
    m.starts_with("gpt-5")
        || (m.starts_with('o') && m[1..].starts_with(|c: char| c.is_ascii_digit()))
}

/// The URL, headers and JSON body of a description request.
fn build_request(
    cfg: &ProviderConfig,
    jpeg: &[u8],
    system: &str,
    user: &str,
) -> Result<(url::Url, HeaderMap, Value), CallError> {
    let model = cfg.effective_model().trim_start_matches("models/");
    let image_b64 = base64::engine::general_purpose::STANDARD.encode(jpeg);
    let mut url = url::Url::parse(cfg.effective_base_url())
        .map_err(|e| CallError::Network(format!("invalid base URL: {e}")))?;
    if url.cannot_be_a_base() || !matches!(url.scheme(), "http" | "https") {
        return Err(CallError::Network(
            "invalid base URL: not an http(s) URL".into(),
        ));
    }
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let key = cfg.api_key.trim();
    let mut secret = |name: &'static str, value: String| -> Result<(), CallError> {
        let mut v = HeaderValue::from_str(&value).map_err(|_| {
            CallError::Auth("the API key contains characters not allowed in an HTTP header".into())
        })?;
        v.set_sensitive(true);
        headers.insert(HeaderName::from_static(name), v);
        Ok(())
    };
    let segments: Vec<String>;
    let body = match cfg.name {
        ProviderName::Openai | ProviderName::Grok | ProviderName::OpenaiCompatible => {
            if !key.is_empty() {
                secret("authorization", format!("Bearer {key}"))?;
            }
            segments = vec!["chat".into(), "completions".into()];
            let mut body = json!({
                "model": model,
                "messages": [
                    {"role": "system", "content": system},
                    {"role": "user", "content": [
                        {"type": "text", "text": user},
                        {"type": "image_url", "image_url": {
                            "url": format!("data:image/jpeg;base64,{image_b64}"),
                        }},
                    ]},
                ],
            });
            let b = body.as_object_mut().expect("an object");
            match cfg.name {
                // OpenAI deprecated `max_tokens` for `max_completion_tokens` (required by its
                // reasoning models) and supports JSON mode on its chat models.
                ProviderName::Openai => {
                    let reasoning = openai_reasoning(model);
                    let limit = if reasoning {
                        MAX_REASONING_OUTPUT_TOKENS
                    } else {
                        MAX_OUTPUT_TOKENS
                    };
                    b.insert("max_completion_tokens".into(), json!(limit));
                    if !reasoning {
                        b.insert("temperature".into(), json!(0.2));
                    }
                    b.insert("response_format".into(), json!({"type": "json_object"}));
                }
                // xAI documents `max_tokens` and OpenAI-style JSON mode.
                ProviderName::Grok => {
                    b.insert("max_tokens".into(), json!(MAX_OUTPUT_TOKENS));
                    b.insert("temperature".into(), json!(0.2));
                    b.insert("response_format".into(), json!({"type": "json_object"}));
                }
                // Local servers vary in what they accept beyond the basics: no JSON mode (the
                // prompt asks for JSON and the parser tolerates prose).
                _ => {
                    b.insert("max_tokens".into(), json!(MAX_OUTPUT_TOKENS));
                    b.insert("temperature".into(), json!(0.2));
                    b.insert("stream".into(), json!(false));
                }
            }
            body
        }
        ProviderName::Anthropic => {
            secret("x-api-key", key.to_string())?;
            headers.insert(
                HeaderName::from_static("anthropic-version"),
                HeaderValue::from_static(ANTHROPIC_VERSION),
            );
            segments = vec!["messages".into()];
            // Anthropic recommends the image before the text that refers to it.
            json!({
                "model": model,
                "max_tokens": MAX_OUTPUT_TOKENS,
                "temperature": 0.2,
                "system": system,
                "messages": [{"role": "user", "content": [
                    {"type": "image", "source": {
                        "type": "base64", "media_type": "image/jpeg", "data": image_b64,
                    }},
                    {"type": "text", "text": user},
                ]}],
            })
        }
        ProviderName::Gemini => {
            secret("x-goog-api-key", key.to_string())?;
            segments = vec!["models".into(), format!("{model}:generateContent")];
            let mut generation = json!({
                "responseMimeType": "application/json",
                "maxOutputTokens": MAX_OUTPUT_TOKENS,
                "temperature": 0.2,
            });
            // Gemini 2.5 Flash thinks by default, and thinking tokens count against
            // maxOutputTokens and are billed as output; a scene description does not need it.
            if model.contains("2.5-flash") {
                generation["thinkingConfig"] = json!({"thinkingBudget": 0});
            }
            json!({
                "systemInstruction": {"parts": [{"text": system}]},
                "contents": [{"role": "user", "parts": [
                    {"inline_data": {"mime_type": "image/jpeg", "data": image_b64}},
                    {"text": user},
                ]}],
                "generationConfig": generation,
            })
        }
    };
    url.path_segments_mut()
        .map_err(|_| CallError::Network("invalid base URL".into()))?
        .pop_if_empty()
        .extend(&segments);
    Ok((url, headers, body))
}

fn u64_at(v: &Value, pointer: &str) -> u64 {
    v.pointer(pointer).and_then(Value::as_u64).unwrap_or(0)
}

fn model_at(v: &Value, key: &str) -> String {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// OpenAI Chat Completions response: `choices[0].message.content` (a string, or an array of
/// text parts on some compatible servers) and `usage.prompt_tokens` / `completion_tokens`.
fn parse_openai(v: &Value) -> Result<Answer, CallError> {
    let choice = v
        .pointer("/choices/0")
        .ok_or_else(|| CallError::Malformed("no choices in the response".into()))?;
    let message = &choice["message"];
    let text = match &message["content"] {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(""),
        _ => String::new(),
    };
    if text.trim().is_empty() {
        if let Some(refusal) = message["refusal"].as_str() {
            return Err(CallError::Malformed(format!(
                "the model refused: {refusal}"
            )));
        }
        let reason = choice["finish_reason"].as_str().unwrap_or("unknown");
        return Err(CallError::Malformed(format!(
            "no text in the answer (finish_reason {reason})"
        )));
    }
    Ok(Answer {
        text,
        tokens_in: u64_at(v, "/usage/prompt_tokens"),
        tokens_out: u64_at(v, "/usage/completion_tokens"),
        model: model_at(v, "model"),
    })
}

/// Anthropic Messages response: the `text` blocks of `content` and `usage.input_tokens` /
/// `output_tokens` (cache reads and writes, when present, are input too).
fn parse_anthropic(v: &Value) -> Result<Answer, CallError> {
    let blocks = v["content"]
        .as_array()
        .ok_or_else(|| CallError::Malformed("no content in the response".into()))?;
    let text: String = blocks
        .iter()
        .filter(|b| b["type"] == "text")
        .filter_map(|b| b["text"].as_str())
        .collect::<Vec<_>>()
        .join("");
    if text.trim().is_empty() {
        let reason = v["stop_reason"].as_str().unwrap_or("unknown");
        return Err(CallError::Malformed(format!(
            "no text in the answer (stop_reason {reason})"
        )));
    }
    Ok(Answer {
        text,
        tokens_in: u64_at(v, "/usage/input_tokens")
            + u64_at(v, "/usage/cache_creation_input_tokens")
            + u64_at(v, "/usage/cache_read_input_tokens"),
        tokens_out: u64_at(v, "/usage/output_tokens"),
        model: model_at(v, "model"),
    })
}

/// Gemini `generateContent` response: the non-thought text parts of the first candidate and
/// `usageMetadata` (thinking tokens are billed as output).
fn parse_gemini(v: &Value) -> Result<Answer, CallError> {
    let Some(candidate) = v.pointer("/candidates/0") else {
        let reason = v
            .pointer("/promptFeedback/blockReason")
            .and_then(Value::as_str)
            .map(|r| format!("the prompt was blocked ({r})"))
            .unwrap_or_else(|| "no candidates in the response".into());
        return Err(CallError::Malformed(reason));
    };
    let text: String = candidate
        .pointer("/content/parts")
        .and_then(Value::as_array)
        .map(|parts| {
            parts
                .iter()
                .filter(|p| p["thought"] != true)
                .filter_map(|p| p["text"].as_str())
                .collect::<Vec<_>>()
                .join("")
        })
        .unwrap_or_default();
    if text.trim().is_empty() {
        let reason = candidate["finishReason"].as_str().unwrap_or("unknown");
        return Err(CallError::Malformed(format!(
            "no text in the answer (finishReason {reason})"
        )));
    }
    Ok(Answer {
        text,
        tokens_in: u64_at(v, "/usageMetadata/promptTokenCount"),
        tokens_out: u64_at(v, "/usageMetadata/candidatesTokenCount")
            + u64_at(v, "/usageMetadata/thoughtsTokenCount"),
        model: model_at(v, "modelVersion"),
    })
}

/// `Retry-After` (delta seconds or an HTTP date) or OpenAI's `retry-after-ms`, capped at an
/// hour. `now` is needed for the date form.
pub fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    const CAP: Duration = Duration::from_secs(3600);
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(ms) = text("retry-after-ms").and_then(|s| s.parse::<f64>().ok()) {
        if ms.is_finite() && ms >= 0.0 {
            return Some(Duration::from_secs_f64(ms / 1000.0).min(CAP));
        }
    }
    let value = text("retry-after")?;
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs).min(CAP));
    }
    let when = parse_http_date(value)?;
    Some(when.duration_since(now).unwrap_or(Duration::ZERO).min(CAP))
}

/// Parses an IMF-fixdate (`Wed, 21 Oct 2015 07:28:00 GMT`), the form RFC 9110 requires.
fn parse_http_date(s: &str) -> Option<SystemTime> {
    let fmt = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    let dt = time::PrimitiveDateTime::parse(s, &fmt).ok()?.assume_utc();
    let secs = u64::try_from(dt.unix_timestamp()).ok()?;
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
}

/// What an error body says, across the providers' formats: OpenAI `{"error": {"message",
/// "type", "code"}}`, Anthropic `{"type": "error", "error": {"type", "message"}}`, Gemini
/// `{"error": {"code", "message", "status", "details"}}`, xAI `{"code", "error"}`.
#[derive(Debug, Default)]
struct ErrorBody {
    /// Machine-readable codes (type, code, status), lower-case, space-separated.
    codes: String,
    message: String,
    /// Gemini: a `QuotaFailure` detail names a per-day quota.
    per_day_quota: bool,
    /// Gemini: a `RetryInfo` detail's `retryDelay`.
    retry_delay: Option<Duration>,
}

fn error_body(body: &str) -> ErrorBody {
    let mut out = ErrorBody::default();
    let Ok(v) = serde_json::from_str::<Value>(body) else {
        out.message = body.trim().to_string();
        return out;
    };
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => String::new(),
    };
    match &v["error"] {
        Value::Object(e) => {
            out.message = e.get("message").map(text).unwrap_or_default();
            for key in ["type", "code", "status"] {
                if let Some(c) = e.get(key) {
                    out.codes.push_str(&text(c).to_ascii_lowercase());
                    out.codes.push(' ');
                }
            }
            for d in e
                .get("details")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let kind = d["@type"].as_str().unwrap_or_default();
                if kind.ends_with("google.rpc.QuotaFailure") {
                    let violations = d["violations"].as_array().into_iter().flatten();
                    out.per_day_quota |= violations
                        .filter_map(|x| x["quotaId"].as_str())
                        .any(|id| id.contains("PerDay"));
                } else if kind.ends_with("google.rpc.RetryInfo") {
                    out.retry_delay = d["retryDelay"]
                        .as_str()
                        .and_then(|s| s.strip_suffix('s'))
                        .and_then(|s| s.parse::<f64>().ok())
                        .filter(|s| s.is_finite() && *s >= 0.0)
                        .map(Duration::from_secs_f64);
                }
            }
        }
        Value::String(s) => {
            out.message = s.clone();
            out.codes = text(&v["code"]).to_ascii_lowercase();
        }
        _ => out.message = body.trim().to_string(),
    }
    out
}

/// Turns a non-2xx response into a [`CallError`]. Quota problems are recognised by the
/// providers' codes first (`insufficient_quota`; Gemini's per-day `QuotaFailure`), then by the
/// words they use (credit balance, credits, spending limit, billing), because they arrive as
/// 429, 403 or even 400 depending on the provider. Invalid keys arrive as 400 at Gemini and
/// xAI, so a 400 about an invalid API key is an auth error.
pub fn classify(status: u16, retry_after: Option<Duration>, body: &str) -> CallError {
    let info = error_body(body);
    let mut message: String = info
        .message
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    if message.chars().count() > 300 {
        message = message.chars().take(300).collect::<String>() + "...";
    }
    if message.is_empty() {
        message = format!("HTTP {status}");
    }
    let codes = &info.codes;
    let hay = format!("{codes} {}", info.message.to_ascii_lowercase());
    let quota = if codes.contains("insufficient_quota") || codes.contains("billing") {
        true
    } else if codes.contains("rate_limit") {
        false
    } else if codes.contains("resource_exhausted") {
        // Gemini words per-minute limits as "exceeded your current quota ... billing" too;
        // only a per-day quota is out of reach until tomorrow.
        info.per_day_quota
    } else {
        [
            "insufficient_quota",
            "exceeded your current quota",
            "credit balance",
            "credits",
            "spending limit",
            "billing",
        ]
        .iter()
        .any(|w| hay.contains(w))
    };
    let bad_key = (hay.contains("api key") || hay.contains("api_key"))
        && ["invalid", "incorrect", "not valid", "expired", "missing"]
            .iter()
            .any(|w| hay.contains(w));
    match status {
        401 => CallError::Auth(message),
        402 => CallError::Quota(message),
        403 if quota => CallError::Quota(message),
        403 => CallError::Auth(message),
        429 if quota => CallError::Quota(message),
        429 => CallError::RateLimited {
            retry_after: retry_after.or(info.retry_delay),
        },
        408 => CallError::Timeout,
        400..=499 if quota => CallError::Quota(message),
        400..=499 if bad_key => CallError::Auth(message),
        400..=499 => CallError::BadRequest(status, message),
        500..=599 => CallError::Server(status),
        _ => CallError::Malformed(format!("unexpected HTTP status {status}")),
    }
}

/// Replaces the key (if any part of an error text echoes it) with `[redacted]`.
fn scrub_error(e: CallError, key: &str) -> CallError {
    let key = key.trim();
    if key.len() < 4 {
        return e;
    }
    let s = |m: String| m.replace(key, "[redacted]");
    match e {
        CallError::Quota(m) => CallError::Quota(s(m)),
        CallError::Auth(m) => CallError::Auth(s(m)),
        CallError::BadRequest(c, m) => CallError::BadRequest(c, s(m)),
        CallError::Network(m) => CallError::Network(s(m)),
        CallError::Malformed(m) => CallError::Malformed(s(m)),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_use_each_api_s_format() {
        let jpeg = [0xFF, 0xD8, 0xFF, 0xD9];
        let (url, h, b) = build_request(
            &ProviderConfig::new(ProviderName::Openai, "sk-1"),
            &jpeg,
            "S",
            "U",
        )
        .unwrap();
        assert_eq!(url.as_str(), "https://api.openai.com/v1/chat/completions");
        assert_eq!(h["authorization"], "Bearer sk-1");
        assert!(h["authorization"].is_sensitive());
        assert_eq!(b["max_completion_tokens"], 400);
        assert_eq!(b["response_format"]["type"], "json_object");
        assert_eq!(
            b["messages"][1]["content"][1]["image_url"]["url"],
            "data:image/jpeg;base64,/9j/2Q=="
        );

        let mut cfg = ProviderConfig::new(ProviderName::Openai, "sk-1");
        cfg.model = "o4-mini".into();
        let (_, _, b) = build_request(&cfg, &jpeg, "S", "U").unwrap();
        assert!(b.get("temperature").is_none());
        assert_eq!(b["max_completion_tokens"], 2000);

        let (url, h, b) = build_request(
            &ProviderConfig::new(ProviderName::Anthropic, "ak"),
            &jpeg,
            "S",
            "U",
        )
        .unwrap();
        assert_eq!(url.as_str(), "https://api.anthropic.com/v1/messages");
        assert_eq!(h["x-api-key"], "ak");
        assert_eq!(h["anthropic-version"], "2023-06-01");
        assert_eq!(b["system"], "S");
        assert_eq!(b["messages"][0]["content"][0]["source"]["data"], "/9j/2Q==");

        let mut cfg = ProviderConfig::new(ProviderName::Gemini, "gk");
        cfg.base_url = "http://127.0.0.1:9/v1beta/".into();
        let (url, h, b) = build_request(&cfg, &jpeg, "S", "U").unwrap();
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:9/v1beta/models/gemini-2.5-flash:generateContent"
        );
        assert_eq!(h["x-goog-api-key"], "gk");
        assert_eq!(b["generationConfig"]["thinkingConfig"]["thinkingBudget"], 0);

        let (url, h, b) = build_request(
            &ProviderConfig::new(ProviderName::OpenaiCompatible, ""),
            &jpeg,
            "S",
            "U",
        )
        .unwrap();
        assert_eq!(url.as_str(), "http://127.0.0.1:11434/v1/chat/completions");
        assert!(h.get("authorization").is_none());
        assert!(b.get("response_format").is_none());

        let mut cfg = ProviderConfig::new(ProviderName::Grok, "xk");
        cfg.base_url = "ftp://x".into();
        assert!(matches!(
            build_request(&cfg, &jpeg, "S", "U"),
            Err(CallError::Network(_))
        ));
    }

    #[test]
    fn debug_hides_the_key() {
        let s = format!(
            "{:?}",
            ProviderConfig::new(ProviderName::Openai, "sk-secret")
        );
        assert!(!s.contains("sk-secret"), "{s}");
    }

    #[test]
    fn errors_are_classified() {
        let openai_rate = r#"{"error":{"message":"Rate limit reached for gpt-4o-mini on requests per min (RPM). You can increase your rate limit by adding a payment method at https://platform.openai.com/account/billing.","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#;
        assert_eq!(
            classify(429, Some(Duration::from_secs(2)), openai_rate),
            CallError::RateLimited {
                retry_after: Some(Duration::from_secs(2))
            }
        );
        let openai_quota = r#"{"error":{"message":"You exceeded your current quota, please check your plan and billing details.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}"#;
        assert!(matches!(
            classify(429, None, openai_quota),
            CallError::Quota(_)
        ));
        let anthropic_credit = r#"{"type":"error","error":{"type":"invalid_request_error","message":"Your credit balance is too low to access the Anthropic API."}}"#;
        assert!(matches!(
            classify(400, None, anthropic_credit),
            CallError::Quota(_)
        ));
        let anthropic_auth = r#"{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}"#;
        assert_eq!(
            classify(401, None, anthropic_auth),
            CallError::Auth("invalid x-api-key".into())
        );
        assert_eq!(classify(529, None, "{}"), CallError::Server(529));
        let gemini_key = r#"{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT"}}"#;
        assert!(matches!(
            classify(400, None, gemini_key),
            CallError::Auth(_)
        ));
        let gemini_minute = r#"{"error":{"code":429,"message":"You exceeded your current quota, please check your plan and billing details.","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaMetric":"generativelanguage.googleapis.com/generate_content_free_tier_requests","quotaId":"GenerateRequestsPerMinutePerProjectPerModel-FreeTier"}]},{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"37s"}]}}"#;
        assert_eq!(
            classify(429, None, gemini_minute),
            CallError::RateLimited {
                retry_after: Some(Duration::from_secs(37))
            }
        );
        let gemini_day = gemini_minute.replace("PerMinute", "PerDay");
        assert!(matches!(
            classify(429, None, &gemini_day),
            CallError::Quota(_)
        ));
        let xai_key = r#"{"code":"Client specified an invalid argument","error":"Incorrect API key provided: xa***yz. You can obtain an API key from https://console.x.ai."}"#;
        assert!(matches!(classify(400, None, xai_key), CallError::Auth(_)));
        let xai_credits = r#"{"code":"The caller does not have permission to execute the specified operation","error":"Your team has either used all available credits or reached its monthly spending limit."}"#;
        assert!(matches!(
            classify(403, None, xai_credits),
            CallError::Quota(_)
        ));
        assert!(matches!(
            classify(403, None, "forbidden"),
            CallError::Auth(_)
        ));
        assert_eq!(
            classify(
                404,
                None,
                r#"{"error":{"message":"The model `nope` does not exist","type":"invalid_request_error","code":"model_not_found"}}"#
            ),
            CallError::BadRequest(404, "The model `nope` does not exist".into())
        );
        assert_eq!(classify(408, None, ""), CallError::Timeout);
        assert_eq!(
            classify(418, None, ""),
            CallError::BadRequest(418, "HTTP 418".into())
        );
    }

    #[test]
    fn retryable_and_kinds() {
        let all = [
            (
                CallError::RateLimited { retry_after: None },
                true,
                "rate_limited",
            ),
            (CallError::Quota(String::new()), false, "quota"),
            (CallError::Auth(String::new()), false, "auth"),
            (CallError::Server(503), true, "server_error"),
            (
                CallError::BadRequest(400, String::new()),
                false,
                "bad_request",
            ),
            (CallError::Timeout, false, "timeout"),
            (CallError::Network(String::new()), false, "network"),
            (CallError::Malformed(String::new()), false, "malformed"),
        ];
        for (e, retry, kind) in all {
            assert_eq!((e.retryable(), e.kind()), (retry, kind), "{e}");
        }
    }

    #[test]
    fn keys_are_scrubbed_from_messages() {
        let e = classify(
            401,
            None,
            r#"{"error":{"message":"Incorrect API key provided: sk-live-abcdef123456"}}"#,
        );
        let e = scrub_error(e, "sk-live-abcdef123456");
        assert_eq!(
            e.to_string(),
            "authentication failed: Incorrect API key provided: [redacted]"
        );
    }

    #[test]
    fn retry_after_forms() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_470);
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h, now), None);
        h.insert("retry-after", HeaderValue::from_static("3"));
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(3)));
        h.insert("retry-after", HeaderValue::from_static("1.5"));
        assert_eq!(retry_after(&h, now), Some(Duration::from_millis(1500)));
        // 2015-10-21 07:28:00 UTC is 1445412480, ten seconds after `now`.
        h.insert(
            "retry-after",
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(10)));
        assert_eq!(
            retry_after(&h, now + Duration::from_secs(60)),
            Some(Duration::ZERO)
        );
        h.insert("retry-after", HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&h, now), None);
        h.insert("retry-after-ms", HeaderValue::from_static("250"));
        assert_eq!(retry_after(&h, now), Some(Duration::from_millis(250)));
        h.insert("retry-after-ms", HeaderValue::from_static("1e12"));
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(3600)));
    }

    #[test]
    fn responses_are_parsed() {
        let openai = json!({"id": "chatcmpl-1", "object": "chat.completion", "model": "gpt-4o-mini-2024-07-18",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "{\"description\":\"x\"}", "refusal": null}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 2850, "completion_tokens": 40, "total_tokens": 2890}});
        assert_eq!(
            parse_openai(&openai).unwrap(),
            Answer {
                text: "{\"description\":\"x\"}".into(),
                tokens_in: 2850,
                tokens_out: 40,
                model: "gpt-4o-mini-2024-07-18".into()
            }
        );
        let refused = json!({"choices": [{"message": {"content": null, "refusal": "I can't help"}, "finish_reason": "stop"}]});
        assert!(
            matches!(parse_openai(&refused), Err(CallError::Malformed(m)) if m.contains("refused"))
        );
        let anthropic = json!({"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-haiku-4-5-20251001",
            "content": [{"type": "text", "text": "A "}, {"type": "text", "text": "cat."}],
            "stop_reason": "end_turn", "usage": {"input_tokens": 1300, "output_tokens": 20}});
        let a = parse_anthropic(&anthropic).unwrap();
        assert_eq!(
            (a.text.as_str(), a.tokens_in, a.tokens_out),
            ("A cat.", 1300, 20)
        );
        let gemini = json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "plan", "thought": true}, {"text": "A fox."}]}, "finishReason": "STOP"}],
            "usageMetadata": {"promptTokenCount": 270, "candidatesTokenCount": 12, "thoughtsTokenCount": 30, "totalTokenCount": 312},
            "modelVersion": "gemini-2.5-flash"});
        let a = parse_gemini(&gemini).unwrap();
        assert_eq!(
            (a.text.as_str(), a.tokens_in, a.tokens_out),
            ("A fox.", 270, 42)
        );
        let blocked = json!({"promptFeedback": {"blockReason": "SAFETY"}});
        assert_eq!(
            parse_gemini(&blocked),
            Err(CallError::Malformed(
                "the prompt was blocked (SAFETY)".into()
            ))
        );
    }
}
