//! `/auth`: browser login (JWT + HttpOnly cookie), logout, who-am-I and password change.

use super::{Ctx, Message};
use crate::api::body::{json, ok, read_json, Body};
use crate::auth::{jwt, password, role_scopes, Principal};
use crate::error::{AppError, AppResult, ErrorKind};
use crate::model::Scope;
use crate::store::users::{self, SessionRow};
use hyper::body::Incoming;
use hyper::header::SET_COOKIE;
use hyper::{Request, Response, StatusCode};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserDto {
    pub id: String,
    pub username: String,
    /// `admin`, `operator` or `viewer`.
    pub role: String,
    pub is_active: bool,
    /// True until the initial password has been changed; until then only `/auth/me`,
    /// `/auth/logout` and `/auth/change-password` work.
    pub must_change_password: bool,
    pub created_at: String,
    pub last_login_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LoginResponse {
    /// The JWT; also set as the `access_token` HttpOnly cookie.
    pub access_token: String,
    /// Always `bearer`.
    pub token_type: String,
    pub expires_at: String,
    pub must_change_password: bool,
    pub user: UserDto,
}

/// Who is calling.
#[derive(Debug, Serialize, ToSchema)]
pub struct MeDto {
    /// `user` or `api_key`.
    pub kind: String,
    pub id: String,
    /// Username or key name.
    pub name: String,
    pub role: Option<String>,
    pub scopes: Vec<Scope>,
    pub must_change_password: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    pub current_password: String,
    /// 10-128 characters mixing at least two of lower case, upper case, digits, symbols.
    pub new_password: String,
}

fn user_dto(u: &users::UserRow) -> UserDto {
    UserDto {
        id: u.id.clone(),
        username: u.username.clone(),
        role: u.role.clone(),
        is_active: u.is_active,
        must_change_password: u.must_change_password,
        created_at: crate::clock::format_rfc3339(u.created_at),
        last_login_at: u.last_login_at.map(crate::clock::format_rfc3339),
    }
}

fn cookie(ctx: &Ctx, value: &str, max_age_s: i64) -> String {
    let secure = if ctx.state.cfg.cookie_secure() {
        "; Secure"
    } else {
        ""
    };
    format!("access_token={value}; HttpOnly; SameSite=Lax; Path=/; Max-Age={max_age_s}{secure}")
}

/// Log in (browser): returns a JWT and sets the access_token cookie.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = LoginResponse), (status = 401, body = super::ErrorBody),
        (status = 429, body = super::ErrorBody, description = "Too many attempts from this address or from all addresses, or too many password checks in progress (see Retry-After)")))]
pub async fn login(ctx: Ctx, req: Request<Incoming>) -> AppResult<Response<Body>> {
    let user_agent = req
        .headers()
        .get("user-agent")
        .and_then(|v| v.to_str().ok())
        .map(|s| s.chars().take(200).collect::<String>());
    let b: LoginRequest = read_json(req, ctx.body_limit()).await?;
    if let Err(wait) = ctx.state.login_limiter.check(ctx.peer.ip()) {
        return Err(AppError::new(
            ErrorKind::TooManyRequests,
            format!("Too many login attempts; try again in {wait} seconds"),
        )
        .with_header("retry-after", wait.to_string()));
    }
    if let Err(wait) = ctx.state.login_limiter.check_global() {
        return Err(AppError::new(
            ErrorKind::TooManyRequests,
            format!(
                "The appliance is receiving too many login attempts; try again in {wait} seconds"
            ),
        )
        .with_header("retry-after", wait.to_string()));
    }
    let username = b.username.trim().to_lowercase();
    let store = ctx.state.store.clone();
    let user = store
        .read(move |c| users::by_username(c, &username))
        .await?;
    let pw = b.password;
    // Verify against a dummy hash when the user does not exist, so timing does not reveal names.
    let hasher = &ctx.state.passwords;
    let hash = match &user {
        Some(u) => u.password_hash.clone(),
        None => dummy_hash(hasher).await.map_err(busy)?,
    };
    let good = hasher.verify(pw, hash).await.map_err(busy)?;
    let Some(user) = user.filter(|_| good) else {
        tracing::warn!(client.ip = %ctx.peer.ip(), "failed login");
        return Err(AppError::unauthenticated("Invalid username or password"));
    };
    if !user.is_active {
        return Err(AppError::unauthenticated("Account disabled"));
    }
    let now = ctx.state.clock.now_ms();
    let ttl_ms = ctx.state.cfg.auth.session_hours as i64 * 3_600_000;
    let session = SessionRow {
        id: crate::crypto::new_uuid(),
        user_id: user.id.clone(),
        created_at: now,
        expires_at: now + ttl_ms,
        revoked_at: None,
    };
    let ip = ctx.peer.ip().to_string();
    let s = session.clone();
    store
        .write(move |c| users::create_session(c, &s, Some(&ip), user_agent.as_deref()))
        .await?;
    let token = jwt::sign(
        ctx.state.keys.jwt_secret(),
        &jwt::Claims {
            sub: user.id.clone(),
            sid: session.id.clone(),
            username: user.username.clone(),
            iat: now / 1000,
            exp: session.expires_at / 1000,
        },
    );
    let mut user_out = user_dto(&user);
    user_out.last_login_at = Some(crate::clock::format_rfc3339(now));
    let body = LoginResponse {
        access_token: token.clone(),
        token_type: "bearer".into(),
        expires_at: crate::clock::format_rfc3339(session.expires_at),
        must_change_password: user.must_change_password,
        user: user_out,
    };
    let mut resp = json(StatusCode::OK, &body);
    let c = cookie(&ctx, &token, ttl_ms / 1000);
    resp.headers_mut()
        .insert(SET_COOKIE, c.parse().map_err(AppError::internal)?);
    tracing::info!(user.name = %user.username, "login");
    Ok(resp)
}

/// An Argon2id hash of a random string, used to spend the same time on unknown usernames.
/// Made once (through the hasher's bound, like every hash a request causes).
async fn dummy_hash(hasher: &password::Hasher) -> Result<String, password::Busy> {
    static DUMMY: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
    DUMMY
        .get_or_try_init(|| hasher.hash(crate::crypto::random_token(24)))
        .await
        .cloned()
}

/// Every hashing slot stayed taken for the whole wait: 429 with `Retry-After`.
fn busy(b: password::Busy) -> AppError {
    AppError::new(
        ErrorKind::TooManyRequests,
        format!(
            "The appliance is busy checking other passwords; try again in {} seconds",
            b.retry_after_s
        ),
    )
    .with_header("retry-after", b.retry_after_s.to_string())
}

/// Log out: ends the session and clears the cookie.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth",
    responses((status = 200, body = Message)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn logout(ctx: Ctx) -> AppResult<Response<Body>> {
    if let Principal::User(u) = ctx.principal()? {
        let sid = u.session_id.clone();
        let now = ctx.state.clock.now_ms();
        ctx.state
            .store
            .write(move |c| users::revoke_session(c, &sid, now))
            .await?;
    }
    let mut resp = json(
        StatusCode::OK,
        &Message {
            message: "Logged out".into(),
        },
    );
    let c = cookie(&ctx, "", 0);
    resp.headers_mut()
        .insert(SET_COOKIE, c.parse().map_err(AppError::internal)?);
    Ok(resp)
}

/// Who is calling (user or API key) and with which scopes.
#[utoipa::path(get, path = "/api/v1/auth/me", tag = "auth",
    responses((status = 200, body = MeDto), (status = 401, body = super::ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn me(ctx: Ctx) -> AppResult<Response<Body>> {
    let me = match ctx.principal()? {
        Principal::User(u) => MeDto {
            kind: "user".into(),
            id: u.user_id.clone(),
            name: u.username.clone(),
            role: Some(u.role.clone()),
            scopes: role_scopes(&u.role).to_vec(),
            must_change_password: u.must_change_password,
        },
        Principal::ApiKey(k) => MeDto {
            kind: "api_key".into(),
            id: k.key_id.clone(),
            name: k.name.clone(),
            role: None,
            scopes: k.scopes.clone(),
            must_change_password: false,
        },
    };
    ok(&me)
}

/// Change the password of the logged-in user.
#[utoipa::path(post, path = "/api/v1/auth/change-password", tag = "auth", request_body = ChangePasswordRequest,
    responses((status = 200, body = Message), (status = 400, body = super::ErrorBody),
        (status = 422, body = super::ErrorBody),
        (status = 429, body = super::ErrorBody, description = "Too many password checks in progress (see Retry-After)")),
    security(("bearer" = [])))]
pub async fn change_password(ctx: Ctx, req: Request<Incoming>) -> AppResult<Response<Body>> {
    let me = ctx.principal()?.user()?.clone();
    let b: ChangePasswordRequest = read_json(req, ctx.body_limit()).await?;
    password::check_policy(&b.new_password).map_err(AppError::invalid)?;
    if b.new_password == b.current_password {
        return Err(AppError::invalid(
            "new_password: must differ from the current password",
        ));
    }
    let uid = me.user_id.clone();
    let user = ctx.state.store.read(move |c| users::get(c, &uid)).await?;
    let hasher = &ctx.state.passwords;
    if !hasher
        .verify(b.current_password, user.password_hash)
        .await
        .map_err(busy)?
    {
        return Err(AppError::bad_request("current_password: incorrect"));
    }
    let new_hash = hasher.hash(b.new_password).await.map_err(busy)?;
    let now = ctx.state.clock.now_ms();
    let (uid, sid) = (me.user_id.clone(), me.session_id.clone());
    ctx.state
        .store
        .write(move |c| users::set_password(c, &uid, &new_hash, false, Some(&sid), now))
        .await?;
    // The initial password file has served its purpose.
    let _ = tokio::fs::remove_file(
        ctx.state
            .cfg
            .data_dir
            .join(crate::state::INITIAL_PASSWORD_FILE),
    )
    .await;
    tracing::info!(user.name = %me.username, "password changed; other sessions ended");
    ok(&Message {
        message: "Password changed; other sessions have been logged out".into(),
    })
}
