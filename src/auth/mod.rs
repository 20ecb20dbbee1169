//! Who is calling and what they may do: API keys (`X-API-Key`), browser logins (JWT in an
//! `access_token` cookie or `Authorization: Bearer`), scopes, per-key rate limits and login
//! throttling.
//!
//! Invariants: every route except the few public ones goes through [`Authenticator::authenticate`];
//! an invalid credential never falls through to another method; a revoked key or ended session
//! fails on its next request (no cache); secrets are never logged.

pub mod api_keys;
pub mod jwt;
pub mod password;
pub mod rate_limit;

use crate::clock::Clock;
use crate::crypto::Keys;
use crate::error::{AppError, AppResult};
use crate::model::{scopes_allow, Scope};
use crate::store::Store;
use hyper::header::{AUTHORIZATION, COOKIE};
use hyper::HeaderMap;
use std::sync::Arc;

/// A logged-in browser user.
#[derive(Debug, Clone)]
pub struct UserPrincipal {
    pub user_id: String,
    pub username: String,
    pub role: String,
    pub session_id: String,
    pub must_change_password: bool,
}

/// An API key presented by an integration.
#[derive(Debug, Clone)]
pub struct KeyPrincipal {
    pub key_id: String,
    pub name: String,
    pub scopes: Vec<Scope>,
    pub rate_limit_per_minute: u32,
}

#[derive(Debug, Clone)]
pub enum Principal {
    User(UserPrincipal),
    ApiKey(KeyPrincipal),
}

/// The scopes a user role carries.
pub fn role_scopes(role: &str) -> &'static [Scope] {
    match role {
        "admin" => &[Scope::Admin],
        "operator" => &[Scope::ReadEvents, Scope::WriteCameras],
        _ => &[Scope::ReadEvents, Scope::ReadCameras],
    }
}

impl Principal {
    pub fn scopes(&self) -> &[Scope] {
        match self {
            Principal::User(u) => role_scopes(&u.role),
            Principal::ApiKey(k) => &k.scopes,
        }
    }

    pub fn allows(&self, needed: Scope) -> bool {
        scopes_allow(self.scopes(), needed)
    }

    /// 403 unless the principal holds `needed`.
    pub fn require(&self, needed: Scope) -> AppResult<()> {
        if self.allows(needed) {
            Ok(())
        } else {
            Err(AppError::forbidden(format!(
                "This needs the {} scope",
                needed.as_str()
            )))
        }
    }

    /// Some routes (password change, `me`) only make sense for a logged-in user.
    pub fn user(&self) -> AppResult<&UserPrincipal> {
        match self {
            Principal::User(u) => Ok(u),
            Principal::ApiKey(_) => Err(AppError::forbidden(
                "This endpoint needs a user login, not an API key",
            )),
        }
    }
}

/// Where the credential came from; `?token=` is accepted only on the WebSocket upgrade.
pub struct Credentials<'a> {
    pub headers: &'a HeaderMap,
    pub query_token: Option<&'a str>,
}

/// Checks credentials against the store. Cheap to clone.
#[derive(Clone)]
pub struct Authenticator {
    pub store: Store,
    pub keys: Keys,
    pub clock: Arc<dyn Clock>,
}

/// The value of a cookie from the `Cookie` header(s).
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Which credential authenticated a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `X-API-Key`.
    ApiKeyHeader,
    /// `Authorization: Bearer`.
    Bearer,
    /// `?token=` (the WebSocket upgrade only).
    QueryToken,
    /// The `access_token` cookie a browser sends by itself: the one that needs origin checks.
    Cookie,
}

impl Authenticator {
    pub async fn authenticate(&self, c: Credentials<'_>) -> AppResult<Principal> {
        self.identify(c).await.map(|(p, _)| p)
    }

    /// Authenticates and says with which credential. Explicit credentials come first (key
    /// header, Bearer, query token), the cookie last; the first one present decides, and an
    /// invalid one is a 401, never a fall-back to the next.
    pub async fn identify(&self, c: Credentials<'_>) -> AppResult<(Principal, Source)> {
        if let Some(v) = c.headers.get("x-api-key") {
            let key = v
                .to_str()
                .map_err(|_| AppError::unauthenticated("Invalid API key"))?;
            return Ok((self.api_key(key).await?, Source::ApiKeyHeader));
        }
        if let Some(v) = c.headers.get(AUTHORIZATION) {
            let v = v.to_str().unwrap_or("");
            let token = v
                .strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
                .ok_or_else(|| AppError::unauthenticated("Authorization must be 'Bearer <token>'"))?
                .trim();
            return Ok((self.token(token).await?, Source::Bearer));
        }
        if let Some(token) = c.query_token {
            return Ok((self.token(token).await?, Source::QueryToken));
        }
        if let Some(token) = cookie(c.headers, "access_token") {
            return Ok((self.token(token).await?, Source::Cookie));
        }
        Err(AppError::unauthenticated("Not authenticated")
            .with_header("www-authenticate", "Bearer"))
    }

    /// A bearer value may be a JWT or, for scripts, an API key.
    async fn token(&self, token: &str) -> AppResult<Principal> {
        if token.starts_with(api_keys::KEY_PREFIX) {
            return self.api_key(token).await;
        }
        jwt::verify_session(self, token).await
    }

    async fn api_key(&self, key: &str) -> AppResult<Principal> {
        api_keys::verify(self, key).await
    }
}
