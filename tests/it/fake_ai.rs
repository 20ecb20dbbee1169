//! Local stand-ins for the cloud AI providers: one hyper server on 127.0.0.1:0 that checks each
//! request the way the real API would (path, auth headers, JSON shape, the image is a base64
//! JPEG no larger than 1280 px) and answers with that API's documented response format, or with
//! whatever failure a test scripts.
//!
//! A request that breaks the protocol gets a 400 in the provider's error format and is kept in
//! [`FakeAi::violations`], so a test can assert that everything it sent was well-formed.

use argus::video::jpeg::Frame420;
use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One request as the fake saw it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub path: String,
    pub headers: hyper::HeaderMap,
    pub body: Value,
    /// Which API the path belongs to: `openai`, `anthropic` or `gemini`.
    pub api: &'static str,
    /// Size of the uploaded image, when it decoded.
    pub image: Option<(usize, usize)>,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// What the fake answers.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
    /// Wait this long before answering.
    pub delay: Duration,
}

impl Reply {
    pub fn new(status: u16, body: impl Into<String>) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: body.into(),
            delay: Duration::ZERO,
        }
    }
    pub fn json(status: u16, body: Value) -> Reply {
        Reply::new(status, body.to_string())
    }
    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Reply {
        self.headers.push((name, value.into()));
        self
    }
    pub fn after(mut self, delay: Duration) -> Reply {
        self.delay = delay;
        self
    }
}

/// What a test wants the fake to do for a request that passed the protocol checks.
pub type Behaviour = Box<dyn Fn(&Recorded) -> Reply + Send + Sync>;

struct Shared {
    behaviour: Mutex<Behaviour>,
    requests: Mutex<Vec<Recorded>>,
    violations: Mutex<Vec<String>>,
    /// The API keys the fake accepts, per API; a request with another key gets a 401.
    keys: Mutex<Vec<(&'static str, String)>>,
}

pub struct FakeAi {
    /// `http://127.0.0.1:PORT`.
    pub origin: String,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeAi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeAi {
    /// Starts a fake that answers every valid request with the API's documented success
    /// response carrying `text`.
    pub async fn answering(text: &str) -> FakeAi {
        let text = text.to_string();
        FakeAi::start(Box::new(move |r| success(r.api, &text, model_of(r)))).await
    }

    pub async fn start(behaviour: Behaviour) -> FakeAi {
        let shared = Arc::new(Shared {
            behaviour: Mutex::new(behaviour),
            requests: Mutex::new(Vec::new()),
            violations: Mutex::new(Vec::new()),
            keys: Mutex::new(Vec::new()),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let origin = format!("http://{}", listener.local_addr().unwrap());
        let s = shared.clone();
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                let s = s.clone();
                conns.spawn(async move {
                    let svc = service_fn(move |req| handle(s.clone(), req));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        FakeAi {
            origin,
            shared,
            task,
        }
    }

    /// Replaces what the fake does from now on.
    pub fn set(&self, behaviour: Behaviour) {
        *self.shared.behaviour.lock().unwrap() = behaviour;
    }

    /// Answers with `replies` in order, the last one repeating.
    pub fn script(&self, replies: Vec<Reply>) {
        let queue = Mutex::new(VecDeque::from(replies));
        self.set(Box::new(move |_| {
            let mut q = queue.lock().unwrap();
            if q.len() > 1 {
                q.pop_front().unwrap()
            } else {
                q.front().cloned().expect("a scripted reply")
            }
        }));
    }

    /// Accepts only `key` for `api` (others get the API's 401).
    pub fn require_key(&self, api: &'static str, key: &str) {
        self.shared
            .keys
            .lock()
            .unwrap()
            .push((api, key.to_string()));
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.requests.lock().unwrap().clone()
    }

    pub fn violations(&self) -> Vec<String> {
        self.shared.violations.lock().unwrap().clone()
    }

    /// Base URL for an API on this fake: `/v1` for OpenAI-style APIs and Anthropic, `/v1beta`
    /// for Gemini, as the real hosts use.
    pub fn base(&self, api: &str) -> String {
        match api {
            "gemini" => format!("{}/v1beta", self.origin),
            _ => format!("{}/v1", self.origin),
        }
    }
}

async fn handle(
    s: Arc<Shared>,
    req: Request<hyper::body::Incoming>,
) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    let headers = req.headers().clone();
    let bytes = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let api = if path.ends_with("/chat/completions") {
        "openai"
    } else if path.ends_with("/messages") {
        "anthropic"
    } else {
        "gemini"
    };
    let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let mut rec = Recorded {
        path: path.clone(),
        headers,
        body,
        api,
        image: None,
    };
    let checked = if method != hyper::Method::POST {
        Err(format!("{method} instead of POST"))
    } else {
        match api {
            "openai" => check_openai(&rec),
            "anthropic" => check_anthropic(&rec),
            _ => check_gemini(&rec),
        }
    };
    let reply = match checked {
        Err(why) => {
            s.violations.lock().unwrap().push(format!("{path}: {why}"));
            error_reply(api, 400, &why)
        }
        Ok(image) => {
            rec.image = Some(image);
            let wrong_key = s
                .keys
                .lock()
                .unwrap()
                .iter()
                .find(|(a, _)| *a == api)
                .filter(|(_, key)| presented_key(&rec).as_deref() != Some(key.as_str()))
                .is_some();
            if wrong_key {
                auth_error(api, presented_key(&rec).unwrap_or_default().as_str())
            } else {
                let behaviour = s.behaviour.lock().unwrap();
                (*behaviour)(&rec)
            }
        }
    };
    s.requests.lock().unwrap().push(rec);
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let mut resp = Response::builder()
        .status(reply.status)
        .header("content-type", "application/json");
    for (k, v) in &reply.headers {
        resp = resp.header(*k, v.as_str());
    }
    Ok(resp.body(Full::new(Bytes::from(reply.body))).unwrap())
}

fn presented_key(r: &Recorded) -> Option<String> {
    match r.api {
        "openai" => r
            .header("authorization")
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::to_string),
        "anthropic" => r.header("x-api-key").map(str::to_string),
        _ => r.header("x-goog-api-key").map(str::to_string),
    }
}

/// Decodes a base64 JPEG and checks its size: the long side must be at most 1280.
fn check_image(b64: &str) -> Result<(usize, usize), String> {
    let jpeg = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|e| format!("image is not base64: {e}"))?;
    let f = Frame420::from_jpeg(&jpeg).map_err(|e| format!("image is not a JPEG: {e}"))?;
    if f.width.max(f.height) > 1280 {
        return Err(format!("image is {}x{}, over 1280 px", f.width, f.height));
    }
    Ok((f.width, f.height))
}

fn only_keys(v: &Value, allowed: &[&str], what: &str) -> Result<(), String> {
    let obj = v.as_object().ok_or(format!("{what} is not an object"))?;
    match obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(format!("Unrecognized request argument supplied: {k}")),
        None => Ok(()),
    }
}

fn json_content_type(r: &Recorded) -> Result<(), String> {
    match r.header("content-type") {
        Some(ct) if ct.starts_with("application/json") => Ok(()),
        other => Err(format!("content-type {other:?}")),
    }
}

/// OpenAI Chat Completions (also xAI and OpenAI-compatible servers): `POST /v1/chat/completions`
/// with a Bearer key (optional here: local servers do not need one), a model, a system message
/// and a user message whose content parts are text and a `data:image/jpeg;base64,` image URL.
pub fn check_openai(r: &Recorded) -> Result<(usize, usize), String> {
    if r.path != "/v1/chat/completions" {
        return Err(format!("unknown path {}", r.path));
    }
    json_content_type(r)?;
    if let Some(auth) = r.header("authorization") {
        if !auth.starts_with("Bearer ") || auth.len() <= 7 {
            return Err(format!("malformed Authorization header {auth:?}"));
        }
    }
    let b = &r.body;
    only_keys(
        b,
        &[
            "model",
            "messages",
            "max_tokens",
            "max_completion_tokens",
            "temperature",
            "response_format",
            "stream",
        ],
        "body",
    )?;
    b["model"].as_str().ok_or("model missing")?;
    if b.get("max_tokens").is_some() && b.get("max_completion_tokens").is_some() {
        return Err("max_tokens and max_completion_tokens are mutually exclusive".into());
    }
    if let Some(f) = b.get("response_format") {
        if f != &json!({"type": "json_object"}) {
            return Err(format!("response_format {f}"));
        }
        // OpenAI refuses JSON mode unless the word "JSON" appears in the messages.
        if !b["messages"].to_string().to_lowercase().contains("json") {
            return Err("'messages' must contain the word 'json' to use response_format".into());
        }
    }
    let msgs = b["messages"].as_array().ok_or("messages is not an array")?;
    if msgs.len() != 2 || msgs[0]["role"] != "system" || msgs[1]["role"] != "user" {
        return Err("expected a system and a user message".into());
    }
    msgs[0]["content"]
        .as_str()
        .filter(|s| !s.is_empty())
        .ok_or("system content")?;
    let parts = msgs[1]["content"].as_array().ok_or("user content parts")?;
    let mut image = None;
    let mut text = false;
    for p in parts {
        match p["type"].as_str() {
            Some("text") => text = p["text"].as_str().is_some_and(|t| !t.is_empty()),
            Some("image_url") => {
                let url = p["image_url"]["url"].as_str().ok_or("image_url.url")?;
                let b64 = url
                    .strip_prefix("data:image/jpeg;base64,")
                    .ok_or("image URL is not a base64 JPEG data URL")?;
                image = Some(check_image(b64)?);
            }
            other => return Err(format!("unknown content part type {other:?}")),
        }
    }
    if !text {
        return Err("no text part".into());
    }
    image.ok_or_else(|| "no image part".to_string())
}

/// Anthropic Messages: `POST /v1/messages` with `x-api-key` and `anthropic-version`, required
/// `model`, `max_tokens`, `messages`; the image as a base64 `image` block.
pub fn check_anthropic(r: &Recorded) -> Result<(usize, usize), String> {
    if r.path != "/v1/messages" {
        return Err(format!("unknown path {}", r.path));
    }
    json_content_type(r)?;
    r.header("x-api-key").ok_or("x-api-key header missing")?;
    if r.header("anthropic-version") != Some("2023-06-01") {
        return Err("anthropic-version header missing or unknown".into());
    }
    let b = &r.body;
    only_keys(
        b,
        &["model", "max_tokens", "messages", "system", "temperature"],
        "body",
    )?;
    b["model"].as_str().ok_or("model: Field required")?;
    b["max_tokens"]
        .as_u64()
        .ok_or("max_tokens: Field required")?;
    b["system"].as_str().ok_or("system must be a string")?;
    let msgs = b["messages"].as_array().ok_or("messages: Field required")?;
    if msgs.len() != 1 || msgs[0]["role"] != "user" {
        return Err("expected one user message".into());
    }
    let blocks = msgs[0]["content"].as_array().ok_or("content blocks")?;
    let mut image = None;
    let mut text = false;
    for blk in blocks {
        match blk["type"].as_str() {
            Some("text") => text = blk["text"].as_str().is_some_and(|t| !t.is_empty()),
            Some("image") => {
                let src = &blk["source"];
                if src["type"] != "base64" || src["media_type"] != "image/jpeg" {
                    return Err(format!("image source {src}"));
                }
                image = Some(check_image(src["data"].as_str().ok_or("source.data")?)?);
            }
            other => return Err(format!("unknown block type {other:?}")),
        }
    }
    if !text {
        return Err("no text block".into());
    }
    image.ok_or_else(|| "no image block".to_string())
}

/// Gemini: `POST /v1beta/models/{model}:generateContent` with `x-goog-api-key`; `contents` with
/// parts holding text and `inline_data {mime_type, data}`, a `systemInstruction`, and
/// `generationConfig`.
pub fn check_gemini(r: &Recorded) -> Result<(usize, usize), String> {
    let model = r
        .path
        .strip_prefix("/v1beta/models/")
        .and_then(|p| p.strip_suffix(":generateContent"))
        .ok_or_else(|| format!("unknown path {}", r.path))?;
    if model.is_empty() || model.contains('/') {
        return Err(format!("bad model in path {}", r.path));
    }
    json_content_type(r)?;
    r.header("x-goog-api-key").ok_or("x-goog-api-key missing")?;
    let b = &r.body;
    only_keys(
        b,
        &["contents", "systemInstruction", "generationConfig"],
        "body",
    )?;
    b["systemInstruction"]["parts"][0]["text"]
        .as_str()
        .ok_or("systemInstruction.parts[0].text")?;
    let gc = &b["generationConfig"];
    only_keys(
        gc,
        &[
            "responseMimeType",
            "maxOutputTokens",
            "temperature",
            "thinkingConfig",
        ],
        "generationConfig",
    )?;
    if gc["responseMimeType"] != "application/json" {
        return Err("responseMimeType".into());
    }
    let contents = b["contents"].as_array().ok_or("contents")?;
    if contents.len() != 1 || contents[0]["role"] != "user" {
        return Err("expected one user content".into());
    }
    let parts = contents[0]["parts"].as_array().ok_or("parts")?;
    let mut image = None;
    let mut text = false;
    for p in parts {
        if let Some(t) = p.get("text") {
            text = t.as_str().is_some_and(|t| !t.is_empty());
        } else if let Some(d) = p.get("inline_data") {
            if d["mime_type"] != "image/jpeg" {
                return Err("inline_data.mime_type".into());
            }
            image = Some(check_image(d["data"].as_str().ok_or("inline_data.data")?)?);
        } else {
            return Err(format!("unknown part {p}"));
        }
    }
    if !text {
        return Err("no text part".into());
    }
    image.ok_or_else(|| "no inline_data part".to_string())
}

pub fn model_of(r: &Recorded) -> String {
    match r.api {
        "gemini" => r
            .path
            .trim_start_matches("/v1beta/models/")
            .trim_end_matches(":generateContent")
            .to_string(),
        _ => r.body["model"].as_str().unwrap_or_default().to_string(),
    }
}

/// The API's documented success response carrying `text`; token counts are fixed per API so
/// tests can check usage and cost: OpenAI 2850/40, Anthropic 1600/55, Gemini 1290/30 (+12
/// thinking).
pub fn success(api: &str, text: &str, model: String) -> Reply {
    let body = match api {
        "openai" => json!({
            "id": "chatcmpl-abc123",
            "object": "chat.completion",
            "created": 1_735_000_000,
            "model": format!("{model}-2024-07-18"),
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": text, "refusal": null},
                "logprobs": null,
                "finish_reason": "stop",
            }],
            "usage": {"prompt_tokens": 2850, "completion_tokens": 40, "total_tokens": 2890},
            "system_fingerprint": "fp_1",
        }),
        "anthropic" => json!({
            "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
            "type": "message",
            "role": "assistant",
            "model": format!("{model}-20251001"),
            "content": [{"type": "text", "text": text}],
            "stop_reason": "end_turn",
            "stop_sequence": null,
            "usage": {"input_tokens": 1600, "output_tokens": 55},
        }),
        _ => json!({
            "candidates": [{
                "content": {"parts": [{"text": text}], "role": "model"},
                "finishReason": "STOP",
                "index": 0,
            }],
            "usageMetadata": {
                "promptTokenCount": 1290,
                "candidatesTokenCount": 30,
                "thoughtsTokenCount": 12,
                "totalTokenCount": 1332,
            },
            "modelVersion": model,
            "responseId": "abc",
        }),
    };
    Reply::json(200, body)
}

/// An error in the API's documented error format.
pub fn error_reply(api: &str, status: u16, message: &str) -> Reply {
    let body = match api {
        "openai" => json!({"error": {
            "message": message, "type": "invalid_request_error", "param": null, "code": null,
        }}),
        "anthropic" => json!({"type": "error", "error": {
            "type": "invalid_request_error", "message": message,
        }}),
        _ => json!({"error": {"code": status, "message": message, "status": "INVALID_ARGUMENT"}}),
    };
    Reply::json(status, body)
}

/// The API's answer to a wrong key, echoing part of the key as the real ones do.
pub fn auth_error(api: &str, key: &str) -> Reply {
    match api {
        "openai" => Reply::json(
            401,
            json!({"error": {
                "message": format!("Incorrect API key provided: {key}. You can find your API key at https://platform.openai.com/account/api-keys."),
                "type": "invalid_request_error", "param": null, "code": "invalid_api_key",
            }}),
        ),
        "anthropic" => Reply::json(
            401,
            json!({"type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key"}}),
        ),
        _ => Reply::json(
            400,
            json!({"error": {"code": 400, "message": "API key not valid. Please pass a valid API key.",
                "status": "INVALID_ARGUMENT",
                "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}]}}),
        ),
    }
}

/// OpenAI's 429 for a request-rate limit, with `Retry-After`.
pub fn openai_rate_limited(retry_after_s: &str) -> Reply {
    Reply::json(
        429,
        json!({"error": {
            "message": "Rate limit reached for gpt-4o-mini in organization org-x on requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in 1s. You can increase your rate limit by adding a payment method to your account at https://platform.openai.com/account/billing.",
            "type": "requests", "param": null, "code": "rate_limit_exceeded",
        }}),
    )
    .header("retry-after", retry_after_s)
}

/// OpenAI's 429 for an account out of credit.
pub fn openai_insufficient_quota() -> Reply {
    Reply::json(
        429,
        json!({"error": {
            "message": "You exceeded your current quota, please check your plan and billing details. For more information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.",
            "type": "insufficient_quota", "param": null, "code": "insufficient_quota",
        }}),
    )
}

/// A 5xx in the API's format (Anthropic's overloaded error is 529).
pub fn server_error(status: u16) -> Reply {
    Reply::json(
        status,
        json!({"error": {"message": "The server had an error while processing your request.", "type": "server_error"}}),
    )
}
