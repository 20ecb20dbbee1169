//! `/api-keys`: create (the key is shown once), list, inspect, revoke and usage.

use super::{check_uuid, parse_time_param, Ctx, Message};
use crate::api::body::{created, ok, query, read_json, Body};
use crate::auth::api_keys::{self as keys, NewKey};
use crate::auth::Principal;
use crate::error::{AppError, AppResult};
use crate::model::Scope;
use crate::store::api_keys::{self as rows, ApiKeyRow};
use hyper::body::Incoming;
use hyper::{Request, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyCreate {
    /// 1-100 characters.
    pub name: String,
    /// Any of `read:events`, `read:cameras`, `write:cameras`, `admin` (default `read:events`).
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
    /// Optional expiry (RFC 3339), in the future.
    pub expires_at: Option<String>,
    /// Requests per minute (1-100000, default 100).
    pub rate_limit_per_minute: Option<u32>,
}

fn default_scopes() -> Vec<String> {
    vec!["read:events".into()]
}

/// The answer to a create: the only time the key is shown.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyCreated {
    pub id: String,
    pub name: String,
    /// The full key. Store it now; it cannot be shown again.
    pub key: String,
    pub prefix: String,
    pub scopes: Vec<Scope>,
    pub expires_at: Option<String>,
    pub rate_limit_per_minute: u32,
    pub created_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyDto {
    pub id: String,
    pub name: String,
    /// `argus_` and the key's first 8 characters, to recognise it.
    pub prefix: String,
    pub scopes: Vec<Scope>,
    /// False once revoked or expired.
    pub is_active: bool,
    pub expires_at: Option<String>,
    pub last_used_at: Option<String>,
    pub usage_count: u64,
    pub rate_limit_per_minute: u32,
    pub created_at: String,
    pub revoked_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DailyUsage {
    pub date: String,
    pub count: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyUsageDto {
    pub id: String,
    pub name: String,
    pub prefix: String,
    pub usage_count: u64,
    pub last_used_at: Option<String>,
    pub last_used_ip: Option<String>,
    pub rate_limit_per_minute: u32,
    pub created_at: String,
    /// Requests per UTC day.
    pub daily: Vec<DailyUsage>,
}

fn prefix(lookup: &str) -> String {
    format!("{}{}...", keys::KEY_PREFIX, lookup)
}

fn fmt(ms: Option<i64>) -> Option<String> {
    ms.map(crate::clock::format_rfc3339)
}

pub fn to_dto(r: ApiKeyRow, now: i64) -> ApiKeyDto {
    ApiKeyDto {
        is_active: r.revoked_at.is_none() && r.expires_at.is_none_or(|e| e > now),
        prefix: prefix(&r.lookup),
        expires_at: fmt(r.expires_at),
        last_used_at: fmt(r.last_used_at),
        created_at: crate::clock::format_rfc3339(r.created_at),
        revoked_at: fmt(r.revoked_at),
        id: r.id,
        name: r.name,
        scopes: r.scopes,
        usage_count: r.usage_count,
        rate_limit_per_minute: r.rate_limit_per_minute,
    }
}

/// Parses scope names; the error lists the valid ones.
pub fn parse_scopes(names: &[String]) -> Result<Vec<Scope>, String> {
    names
        .iter()
        .map(|n| {
            Scope::parse(n.trim()).ok_or_else(|| {
                format!("scopes: unknown scope {n:?} (use read:events, read:cameras, write:cameras, admin)")
            })
        })
        .collect()
}

/// Create an API key (the key is shown once).
#[utoipa::path(post, path = "/api/v1/api-keys", tag = "api-keys", request_body = ApiKeyCreate,
    responses((status = 201, body = ApiKeyCreated), (status = 422, body = super::ErrorBody)),
    security(("api_key" = ["admin"]), ("bearer" = [])))]
pub async fn create(ctx: Ctx, req: Request<Incoming>) -> AppResult<Response<Body>> {
    let b: ApiKeyCreate = read_json(req, ctx.body_limit()).await?;
    let scopes = parse_scopes(&b.scopes).map_err(AppError::invalid)?;
    let rate = b.rate_limit_per_minute.unwrap_or(100);
    keys::validate_new(&b.name, &scopes, rate).map_err(AppError::invalid)?;
    let now = ctx.state.clock.now_ms();
    let expires_at = b
        .expires_at
        .as_deref()
        .map(|v| parse_time_param("expires_at", v, false))
        .transpose()?;
    if expires_at.is_some_and(|e| e <= now) {
        return Err(AppError::invalid("expires_at: must be in the future"));
    }
    let created_by = match ctx.principal()? {
        Principal::User(u) => Some(format!("user:{}", u.username)),
        Principal::ApiKey(k) => Some(format!("api_key:{}", k.key_id)),
    };
    let new = NewKey {
        name: b.name.trim().to_string(),
        scopes,
        rate_limit_per_minute: rate,
        expires_at,
        created_by,
    };
    let k = ctx.state.keys.clone();
    let (row, key) = ctx
        .state
        .store
        .write(move |c| keys::create(c, &k, new, now))
        .await?;
    tracing::info!(api_key.id = %row.id, api_key.name = %row.name, "API key created");
    created(&ApiKeyCreated {
        prefix: prefix(&row.lookup),
        expires_at: fmt(row.expires_at),
        created_at: crate::clock::format_rfc3339(row.created_at),
        id: row.id,
        name: row.name,
        key,
        scopes: row.scopes,
        rate_limit_per_minute: row.rate_limit_per_minute,
    })
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ApiKeyListQuery {
    /// Include revoked keys (default false).
    pub include_revoked: Option<bool>,
}

/// List API keys.
#[utoipa::path(get, path = "/api/v1/api-keys", tag = "api-keys", params(ApiKeyListQuery),
    responses((status = 200, body = [ApiKeyDto])),
    security(("api_key" = ["admin"]), ("bearer" = [])))]
pub async fn list(ctx: Ctx, req: Request<Incoming>) -> AppResult<Response<Body>> {
    let q: ApiKeyListQuery = query(req.uri().query())?;
    ctx.state.usage.flush(&ctx.state.store).await?;
    let all = q.include_revoked.unwrap_or(false);
    let now = ctx.state.clock.now_ms();
    let rows = ctx.state.store.read(move |c| rows::list(c, all)).await?;
    ok(&rows.into_iter().map(|r| to_dto(r, now)).collect::<Vec<_>>())
}

/// Get an API key.
#[utoipa::path(get, path = "/api/v1/api-keys/{id}", tag = "api-keys",
    params(("id" = String, Path, description = "API key id")),
    responses((status = 200, body = ApiKeyDto), (status = 404, body = super::ErrorBody)),
    security(("api_key" = ["admin"]), ("bearer" = [])))]
pub async fn get(ctx: Ctx) -> AppResult<Response<Body>> {
    let id = ctx.param("id").to_string();
    check_uuid("API key", &id)?;
    ctx.state.usage.flush(&ctx.state.store).await?;
    let now = ctx.state.clock.now_ms();
    let row = ctx.state.store.read(move |c| rows::get(c, &id)).await?;
    ok(&to_dto(row, now))
}

/// Revoke an API key (immediately).
#[utoipa::path(delete, path = "/api/v1/api-keys/{id}", tag = "api-keys",
    params(("id" = String, Path, description = "API key id")),
    responses((status = 200, body = Message), (status = 404, body = super::ErrorBody)),
    security(("api_key" = ["admin"]), ("bearer" = [])))]
pub async fn revoke(ctx: Ctx) -> AppResult<Response<Body>> {
    let id = ctx.param("id").to_string();
    check_uuid("API key", &id)?;
    let now = ctx.state.clock.now_ms();
    let key = id.clone();
    let changed = ctx
        .state
        .store
        .write(move |c| rows::revoke(c, &key, now))
        .await?;
    if changed {
        tracing::info!(api_key.id = %id, "API key revoked");
    }
    ok(&Message {
        message: "API key revoked".into(),
    })
}

/// An API key's usage.
#[utoipa::path(get, path = "/api/v1/api-keys/{id}/usage", tag = "api-keys",
    params(("id" = String, Path, description = "API key id")),
    responses((status = 200, body = ApiKeyUsageDto), (status = 404, body = super::ErrorBody)),
    security(("api_key" = ["admin"]), ("bearer" = [])))]
pub async fn usage(ctx: Ctx) -> AppResult<Response<Body>> {
    let id = ctx.param("id").to_string();
    check_uuid("API key", &id)?;
    ctx.state.usage.flush(&ctx.state.store).await?;
    let (row, daily) = ctx
        .state
        .store
        .read(move |c| Ok((rows::get(c, &id)?, rows::usage_by_day(c, &id)?)))
        .await?;
    ok(&ApiKeyUsageDto {
        prefix: prefix(&row.lookup),
        last_used_at: fmt(row.last_used_at),
        created_at: crate::clock::format_rfc3339(row.created_at),
        id: row.id,
        name: row.name,
        usage_count: row.usage_count,
        last_used_ip: row.last_used_ip,
        rate_limit_per_minute: row.rate_limit_per_minute,
        daily: daily
            .into_iter()
            .map(|(date, count)| DailyUsage { date, count })
            .collect(),
    })
}
