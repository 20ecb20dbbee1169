//! The one error type that crosses the HTTP boundary, and the one place where an error becomes
//! a status code and a JSON body `{"detail": ..., "status_code": N}`.
//!
//! Subsystems keep their own `thiserror` enums; each converts into [`AppError`] exactly once,
//! here. A 5xx answer never shows its cause to the client: the cause goes to the log only.

use hyper::StatusCode;
use std::fmt;

/// What went wrong, in terms a client can act on. Each kind maps to one HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    BadRequest,
    Unauthenticated,
    PermissionDenied,
    NotFound,
    MethodNotAllowed,
    Conflict,
    /// The request (its headers or body) did not arrive in time.
    RequestTimeout,
    PayloadTooLarge,
    UriTooLong,
    /// A `Range` request that no part of the resource satisfies (or that is malformed).
    RangeNotSatisfiable,
    UnsupportedMediaType,
    Invalid,
    TooManyRequests,
    HeaderFieldsTooLarge,
    NotImplemented,
    /// An upstream service (a cloud AI provider) failed; the detail says how.
    BadGateway,
    /// An upstream service did not answer in time.
    GatewayTimeout,
    Unavailable,
    /// The request is not HTTP/1.0 or HTTP/1.1.
    VersionNotSupported,
    Internal,
}

impl ErrorKind {
    pub fn status(self) -> StatusCode {
        match self {
            ErrorKind::BadRequest => StatusCode::BAD_REQUEST,
            ErrorKind::Unauthenticated => StatusCode::UNAUTHORIZED,
            ErrorKind::PermissionDenied => StatusCode::FORBIDDEN,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ErrorKind::Conflict => StatusCode::CONFLICT,
            ErrorKind::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            ErrorKind::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorKind::UriTooLong => StatusCode::URI_TOO_LONG,
            ErrorKind::RangeNotSatisfiable => StatusCode::RANGE_NOT_SATISFIABLE,
            ErrorKind::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorKind::Invalid => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorKind::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            ErrorKind::HeaderFieldsTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ErrorKind::NotImplemented => StatusCode::NOT_IMPLEMENTED,
            ErrorKind::BadGateway => StatusCode::BAD_GATEWAY,
            ErrorKind::GatewayTimeout => StatusCode::GATEWAY_TIMEOUT,
            ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::VersionNotSupported => StatusCode::HTTP_VERSION_NOT_SUPPORTED,
            ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// An error on its way to becoming an HTTP response.
pub struct AppError {
    pub kind: ErrorKind,
    /// Text for the client. For 5xx kinds it is replaced by a generic sentence on the wire.
    pub detail: String,
    /// Extra response headers (`Allow`, `Retry-After`, rate-limit headers).
    pub headers: Vec<(&'static str, String)>,
    /// The underlying cause, logged and never sent.
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

pub type AppResult<T> = Result<T, AppError>;

impl AppError {
    pub fn new(kind: ErrorKind, detail: impl Into<String>) -> Self {
        AppError {
            kind,
            detail: detail.into(),
            headers: Vec::new(),
            source: None,
        }
    }
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::BadRequest, detail)
    }
    pub fn invalid(detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::Invalid, detail)
    }
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, detail)
    }
    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::Conflict, detail)
    }
    pub fn unauthenticated(detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unauthenticated, detail)
    }
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::PermissionDenied, detail)
    }
    pub fn not_implemented(detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotImplemented, detail)
    }
    pub fn internal(source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        AppError {
            kind: ErrorKind::Internal,
            detail: "Internal server error".into(),
            headers: Vec::new(),
            source: Some(source.into()),
        }
    }
    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
    pub fn status(&self) -> StatusCode {
        self.kind.status()
    }
    /// The detail as sent to the client: server-side failures are not described.
    pub fn public_detail(&self) -> &str {
        match self.kind {
            ErrorKind::Internal => "Internal server error",
            ErrorKind::Unavailable if self.detail.is_empty() => "Service unavailable",
            _ => &self.detail,
        }
    }
    /// The JSON body sent to the client.
    pub fn body_json(&self) -> String {
        serde_json::json!({
            "detail": self.public_detail(),
            "status_code": self.status().as_u16(),
        })
        .to_string()
    }
}

impl fmt::Debug for AppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.kind, self.detail)?;
        if let Some(s) = &self.source {
            write!(f, " (caused by: {s})")?;
        }
        Ok(())
    }
}

impl fmt::Display for AppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

impl From<crate::store::StoreError> for AppError {
    fn from(e: crate::store::StoreError) -> Self {
        use crate::store::StoreError;
        match e {
            StoreError::NotFound(what) => AppError::not_found(format!("{what} not found")),
            StoreError::Conflict(detail) => AppError::conflict(detail),
            StoreError::Busy(_) => AppError {
                kind: ErrorKind::Unavailable,
                detail: "The database is busy; try again".into(),
                headers: vec![("retry-after", "1".into())],
                source: Some(Box::new(e)),
            },
            other => AppError::internal(other),
        }
    }
}
