//! Response builders and request readers: JSON bodies with size, media-type and field-level
//! validation errors, query strings, and the JSON error body. A body must arrive within the
//! request's [`BodyDeadline`] (a total time and a minimum rate), else 408 and the connection
//! closes.

use crate::error::{AppError, AppResult, ErrorKind};
use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE};
use hyper::{Request, Response, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::time::Duration;
use tokio::time::Instant;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub type Body = BoxBody<Bytes, BoxError>;

pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

pub fn empty() -> Body {
    full(Bytes::new())
}

pub fn json<T: Serialize + ?Sized>(status: StatusCode, value: &T) -> Response<Body> {
    match serde_json::to_vec(value) {
        Ok(bytes) => Response::builder()
            .status(status)
            .header(CONTENT_TYPE, "application/json")
            .body(full(bytes))
            .expect("static headers are valid"),
        Err(e) => error_response(&AppError::internal(e)),
    }
}

pub fn ok<T: Serialize + ?Sized>(value: &T) -> AppResult<Response<Body>> {
    Ok(json(StatusCode::OK, value))
}

pub fn created<T: Serialize + ?Sized>(value: &T) -> AppResult<Response<Body>> {
    Ok(json(StatusCode::CREATED, value))
}

pub fn no_content() -> AppResult<Response<Body>> {
    Ok(Response::builder()
        .status(StatusCode::NO_CONTENT)
        .body(empty())
        .expect("valid"))
}

/// The one place an [`AppError`] becomes a response.
pub fn error_response(e: &AppError) -> Response<Body> {
    let mut b = Response::builder()
        .status(e.status())
        .header(CONTENT_TYPE, "application/json");
    for (k, v) in &e.headers {
        b = b.header(*k, v.as_str());
    }
    b.body(full(e.body_json())).unwrap_or_else(|_| {
        Response::builder()
            .status(StatusCode::INTERNAL_SERVER_ERROR)
            .header(CONTENT_TYPE, "application/json")
            .body(full(
                r#"{"detail":"Internal server error","status_code":500}"#,
            ))
            .expect("static response is valid")
    })
}

/// True when the request says its body is JSON.
fn is_json(req: &Request<Incoming>) -> bool {
    req.headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            let mime = v
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            mime == "application/json"
                || (mime.starts_with("application/") && mime.ends_with("+json"))
        })
        .unwrap_or(false)
}

/// How long a request's body may take and how large it may be, put on the request by the server
/// (tighter on routes that need no credentials).
#[derive(Debug, Clone, Copy)]
pub struct BodyDeadline {
    /// The whole body, at most.
    pub total: Duration,
    /// Bytes per second the body must average once [`BODY_GRACE`] has passed (0: no minimum).
    pub min_rate: u64,
    /// A cap below the handler's own limit.
    pub max_bytes: Option<usize>,
}

/// The start of a body, during which its rate is not measured (a client may wait for
/// `100 Continue`, a phone may be slow to start).
pub const BODY_GRACE: Duration = Duration::from_secs(2);

impl BodyDeadline {
    /// For a request the server put no deadline on (it does so for every method but GET and
    /// HEAD): `[http]`'s defaults.
    pub const FALLBACK: BodyDeadline = BodyDeadline {
        total: Duration::from_secs(crate::config::DEFAULT_BODY_TIMEOUT_SECS),
        min_rate: crate::config::DEFAULT_BODY_MIN_RATE,
        max_bytes: None,
    };

    /// When more bytes must have arrived, `got` bytes after `started`.
    fn next_by(&self, started: Instant, got: usize) -> Instant {
        let total = started + self.total;
        if self.min_rate == 0 {
            return total;
        }
        let rate =
            started + BODY_GRACE + Duration::from_secs_f64(got as f64 / self.min_rate as f64);
        rate.min(total)
    }
}

fn body_timeout(d: &BodyDeadline, got: usize) -> AppError {
    AppError::new(
        ErrorKind::RequestTimeout,
        format!(
            "The request body did not arrive in time ({got} bytes received; a body must arrive \
             within {} s, at {} bytes/s or more after the first {} s)",
            d.total.as_secs(),
            d.min_rate,
            BODY_GRACE.as_secs()
        ),
    )
    .with_header("connection", "close")
}

/// Reads the whole body, refusing more than `limit` bytes with 413 and a body that does not
/// arrive within the request's [`BodyDeadline`] with 408.
pub async fn read_bytes(req: Request<Incoming>, limit: usize) -> AppResult<Bytes> {
    let deadline = req
        .extensions()
        .get::<BodyDeadline>()
        .copied()
        .unwrap_or(BodyDeadline::FALLBACK);
    let limit = deadline.max_bytes.map_or(limit, |m| m.min(limit));
    let too_large = || {
        AppError::new(
            ErrorKind::PayloadTooLarge,
            format!("Request body is larger than {limit} bytes"),
        )
    };
    if let Some(len) = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
    {
        if len
            .parse::<u64>()
            .map(|n| n > limit as u64)
            .unwrap_or(false)
        {
            return Err(too_large());
        }
    }
    let mut body = req.into_body();
    let started = Instant::now();
    let mut out = bytes::BytesMut::new();
    loop {
        let frame = tokio::time::timeout_at(deadline.next_by(started, out.len()), body.frame())
            .await
            .map_err(|_| body_timeout(&deadline, out.len()))?;
        match frame {
            None => return Ok(out.freeze()),
            Some(Ok(f)) => {
                if let Ok(data) = f.into_data() {
                    if out.len() + data.len() > limit {
                        return Err(too_large().with_header("connection", "close"));
                    }
                    out.extend_from_slice(&data);
                }
            }
            Some(Err(e)) => {
                return Err(
                    AppError::bad_request(format!("Could not read the request body: {e}"))
                        .with_header("connection", "close"),
                )
            }
        }
    }
}

/// Reads and validates a JSON body: 415 if it is not JSON, 413 if too large, 422 with the
/// offending field's path if it does not fit `T`.
pub async fn read_json<T: DeserializeOwned>(req: Request<Incoming>, limit: usize) -> AppResult<T> {
    if !is_json(&req) {
        return Err(AppError::new(
            ErrorKind::UnsupportedMediaType,
            "Content-Type must be application/json",
        ));
    }
    let bytes = read_bytes(req, limit).await?;
    // Every request body of this API is an object; say so rather than reporting `[0]`.
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') | None => parse_json(&bytes),
        Some(_) if serde_json::from_slice::<serde::de::IgnoredAny>(&bytes).is_err() => {
            parse_json(&bytes)
        }
        Some(_) => Err(AppError::invalid("body: a JSON object is required")),
    }
}

pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> AppResult<T> {
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(AppError::invalid("body: a JSON object is required"));
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let msg = strip_position(&inner.to_string());
        if inner.is_syntax() || inner.is_eof() {
            AppError::invalid(format!("body: malformed JSON ({msg})"))
        } else if path == "." || path.is_empty() {
            AppError::invalid(format!("body: {msg}"))
        } else {
            AppError::invalid(format!("{path}: {msg}"))
        }
    })
}

/// serde_json appends " at line L column C"; keep it only for syntax errors.
fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i)
            if !msg.starts_with("expected")
                && !msg.starts_with("EOF")
                && !msg.contains("key must") =>
        {
            msg[..i].to_string()
        }
        _ => msg.to_string(),
    }
}

/// Parses the query string into `T`; 422 naming the parameter on failure.
pub fn query<T: DeserializeOwned>(query: Option<&str>) -> AppResult<T> {
    let q = query.unwrap_or("");
    let de = serde_urlencoded::Deserializer::new(form_urlencoded_parse(q));
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let msg = e.into_inner().to_string();
        if path == "." || path.is_empty() {
            AppError::invalid(format!("query: {msg}"))
        } else {
            AppError::invalid(format!("{path}: {msg}"))
        }
    })
}

fn form_urlencoded_parse(q: &str) -> form_urlencoded::Parse<'_> {
    form_urlencoded::parse(q.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct T {
        name: String,
        n: u8,
    }

    #[test]
    fn json_errors_name_the_field() {
        let e = parse_json::<T>(br#"{"name": "x", "n": 300}"#).unwrap_err();
        assert!(e.detail.starts_with("n: "), "{}", e.detail);
        let e = parse_json::<T>(br#"{"n": 3}"#).unwrap_err();
        assert!(e.detail.contains("missing field `name`"), "{}", e.detail);
        let e = parse_json::<T>(br#"{"name": "#).unwrap_err();
        assert!(e.detail.starts_with("body: malformed JSON"), "{}", e.detail);
        assert_eq!(e.status(), StatusCode::UNPROCESSABLE_ENTITY);
    }

    #[test]
    fn a_body_must_keep_up_its_rate_after_the_grace() {
        let d = BodyDeadline {
            total: Duration::from_secs(60),
            min_rate: 1000,
            max_bytes: None,
        };
        let t0 = Instant::now();
        assert_eq!(d.next_by(t0, 0), t0 + BODY_GRACE);
        assert_eq!(
            d.next_by(t0, 3000),
            t0 + BODY_GRACE + Duration::from_secs(3)
        );
        // Never past the total, however fast it was.
        assert_eq!(d.next_by(t0, 10_000_000), t0 + Duration::from_secs(60));
        let no_rate = BodyDeadline { min_rate: 0, ..d };
        assert_eq!(no_rate.next_by(t0, 0), t0 + Duration::from_secs(60));
    }

    #[derive(serde::Deserialize, Debug)]
    struct Q {
        page: Option<u32>,
    }

    #[test]
    fn query_errors_name_the_parameter() {
        assert_eq!(query::<Q>(Some("page=3")).unwrap().page, Some(3));
        let e = query::<Q>(Some("page=abc")).unwrap_err();
        assert!(e.detail.starts_with("page: "), "{}", e.detail);
    }
}
