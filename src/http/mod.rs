//! The HTTP(S) server: the accept loop, which admits each connection to the connection table
//! ([`admission`]: global and per-address caps, shedding) and hands it to [`conn`], which reads
//! and checks every request head itself ([`head`]) and lets hyper serve one request at a time;
//! and the one request wrapper that owns the cross-cutting work: routing, 404/405,
//! authentication, same-origin checks for the session cookie ([`origin`]), rate limits, scope
//! checks, the must-change-password gate, body deadlines, turning errors into JSON, and the
//! request log line. Every error the server sends, including those about a request's bytes
//! before any routing, is `{detail, status_code}` JSON. The owner's web app and the API
//! documentation are static files embedded in the binary ([`web`], `docs`).

pub mod admission;
mod conn;
mod docs;
pub mod head;
mod io;
mod mime;
pub mod origin;
pub mod web;
mod ws;

use crate::api::body::{error_response, json, Body, BodyDeadline};
use crate::api::routes::{self, Access, Found, Op};
use crate::api::{self, Ctx};
use crate::auth::{Credentials, Principal, Source};
use crate::error::{AppError, AppResult, ErrorKind};
use crate::state::AppState;
use admission::{Admission, Phase, Refusal};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ALLOW, HOST};
use hyper::{Method, Request, Response, StatusCode};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::watch;

fn limits(cfg: &crate::config::HttpSection) -> conn::ConnLimits {
    conn::ConnLimits {
        head: head::HeadLimits {
            max_head_bytes: cfg.max_head_bytes,
            max_uri_bytes: cfg.max_uri_bytes,
            max_headers: cfg.max_headers,
        },
        header_timeout: Duration::from_secs(cfg.header_timeout_secs),
        keep_alive_timeout: Duration::from_secs(cfg.keep_alive_timeout_secs),
        write_timeout: Duration::from_secs(cfg.write_timeout_secs),
    }
}

/// Accepts connections until `stop` turns true, then waits for in-flight requests.
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    mut stop: watch::Receiver<bool>,
) {
    let http = &state.cfg.http;
    let admission = Admission::new(http.max_connections, http.max_connections_per_ip);
    let limits = limits(http);
    loop {
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // Out of file descriptors, most likely: give closing connections a moment.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = stop.changed() => break,
        };
        let _ = tcp.set_nodelay(true);
        let first = if tls.is_some() {
            Phase::Handshake
        } else {
            Phase::Head
        };
        let slot = match admission.admit(peer.ip(), first) {
            Ok(s) => s,
            Err(why) => {
                tracing::debug!(client.ip = %peer.ip(), reason = ?why, "connection refused");
                if tls.is_none() {
                    conn::refuse(tcp, refusal(why), limits.write_timeout);
                }
                continue;
            }
        };
        let state = state.clone();
        let tls = tls.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            match tls {
                None => conn::serve(tcp, slot, state, peer, stop, limits).await,
                Some(acceptor) => {
                    let handshake = tokio::select! {
                        r = tokio::time::timeout(limits.header_timeout, acceptor.accept(tcp)) => r,
                        _ = slot.shed() => return,
                    };
                    match handshake {
                        Ok(Ok(s)) => conn::serve(s, slot, state, peer, stop, limits).await,
                        Ok(Err(e)) => {
                            tracing::debug!(error = %e, client.ip = %peer.ip(), "TLS handshake failed")
                        }
                        Err(_) => {
                            tracing::debug!(client.ip = %peer.ip(), "TLS handshake timed out")
                        }
                    }
                }
            }
        });
    }
    drop(listener);
    admission.drained().await;
}

fn refusal(why: Refusal) -> AppError {
    match why {
        Refusal::PerAddress => AppError::new(
            ErrorKind::TooManyRequests,
            "Too many connections from your address; close some and try again",
        )
        .with_header("retry-after", "1"),
        Refusal::Full => AppError::new(
            ErrorKind::Unavailable,
            "The appliance is serving as many connections as it can; try again",
        )
        .with_header("retry-after", "1"),
    }
}

/// The infallible wrapper: every outcome becomes a response, and is logged once.
async fn handle(
    state: Arc<AppState>,
    req: Request<Incoming>,
    peer: SocketAddr,
    handoff: &ws::Handoff,
    stop: watch::Receiver<bool>,
) -> Response<Body> {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let mut resp = match serve_inner(&state, req, peer, handoff, stop).await {
        Ok(r) => r,
        Err(e) => {
            if e.kind == ErrorKind::Internal {
                tracing::error!(http.method = %method, http.path = %path, error = ?e, "request failed");
            }
            error_response(&e)
        }
    };
    resp.headers_mut().insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    let status = resp.status().as_u16();
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    if status >= 500 {
        tracing::warn!(http.method = %method, http.path = %path, http.status = status, latency_ms = ms, "request");
    } else {
        tracing::debug!(http.method = %method, http.path = %path, http.status = status, latency_ms = ms, "request");
    }
    resp
}

fn public_origin(state: &AppState) -> Option<origin::Origin> {
    state
        .cfg
        .http
        .public_url
        .as_deref()
        .and_then(origin::Origin::parse)
}

async fn serve_inner(
    state: &Arc<AppState>,
    mut req: Request<Incoming>,
    peer: SocketAddr,
    handoff: &ws::Handoff,
    stop: watch::Receiver<bool>,
) -> AppResult<Response<Body>> {
    let path = req.uri().path().to_string();
    if let Some(r) = docs::serve(&path, req.method()) {
        return r;
    }
    if path == "/ws" {
        return ws::upgrade(state.clone(), req, public_origin(state).as_ref(), handoff).await;
    }
    if let Some(r) = web::serve(req.method(), &path, req.headers()).await {
        return r;
    }
    if path == "/" {
        return Ok(json(
            StatusCode::OK,
            &serde_json::json!({
                "name": "Argus Edge",
                "version": env!("CARGO_PKG_VERSION"),
                "api": "/api/v1",
                "docs": "/docs",
                "health": "/api/v1/system/health",
            }),
        ));
    }
    let Some(rest) = path.strip_prefix("/api/v1") else {
        return Err(AppError::not_found(format!("No route for {path}")));
    };
    let (route, params) = match routes::find(req.method(), rest) {
        Found::Route(r, p) => (r, p),
        Found::NotFound => return Err(AppError::not_found(format!("No route for {path}"))),
        Found::WrongMethod(allowed) => {
            let mut names: Vec<&str> = allowed.iter().map(Method::as_str).collect();
            if names.contains(&"GET") {
                names.push("HEAD");
            }
            return Err(AppError::new(
                ErrorKind::MethodNotAllowed,
                format!(
                    "{} is not allowed on {path}; use {}",
                    req.method(),
                    names.join(", ")
                ),
            )
            .with_header(ALLOW.as_str(), names.join(", ")));
        }
    };

    // A WebSocket route: the handshake is checked first (a plain GET is a 400), and it is
    // authenticated as `/ws` is (`?token=` too; a cookie only from the appliance's pages).
    let ws_key = if route.op.is_websocket() {
        Some(ws::handshake(req.headers())?)
    } else {
        None
    };
    let http = &state.cfg.http;
    let signed = matches!(route.access, Access::SignedOr(_)) && signed_link(state, &req, &params)?;
    let public = route.access == Access::Public || signed;
    // Only requests that carry a body need its deadline (reading one is the only use).
    if !matches!(*req.method(), Method::GET | Method::HEAD) {
        req.extensions_mut().insert(BodyDeadline {
            total: Duration::from_secs(if public {
                http.public_body_timeout_secs
            } else {
                http.body_timeout_secs
            }),
            min_rate: http.body_min_rate,
            max_bytes: public.then_some(http.public_max_body_bytes),
        });
    }
    let principal = if public {
        None
    } else {
        let token = ws_key.as_ref().and_then(|_| ws::query_token(&req));
        let (p, source) = state
            .auth
            .identify(Credentials {
                headers: req.headers(),
                query_token: token.as_deref(),
            })
            .await?;
        let unsafe_method = !matches!(
            *req.method(),
            Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
        );
        if source == Source::Cookie && unsafe_method {
            origin::check(req.headers(), public_origin(state).as_ref(), true)?;
        }
        // A browser always sends `Origin` on a WebSocket (as on `/ws`).
        if source == Source::Cookie
            && ws_key.is_some()
            && req.headers().contains_key(hyper::header::ORIGIN)
        {
            origin::check(req.headers(), public_origin(state).as_ref(), false)?;
        }
        if let Some(host) = req.headers().get(HOST).and_then(|h| h.to_str().ok()) {
            let scheme = if state.cfg.tls.is_some() {
                "https"
            } else {
                "http"
            };
            state.links.saw_origin(&format!("{scheme}://{host}"));
        }
        Some(p)
    };

    // Per-key rate limit, before any work is done for the request.
    let mut rate_headers: Vec<(&'static str, String)> = Vec::new();
    if let Some(Principal::ApiKey(k)) = &principal {
        let s = state.key_limits.check(&k.key_id, k.rate_limit_per_minute);
        let reset_at = state.clock.now_ms() / 1000 + s.reset_after_s as i64;
        rate_headers.push(("x-ratelimit-limit", s.limit.to_string()));
        rate_headers.push(("x-ratelimit-remaining", s.remaining.to_string()));
        rate_headers.push(("x-ratelimit-reset", reset_at.to_string()));
        if !s.allowed {
            let mut e = AppError::new(
                ErrorKind::TooManyRequests,
                format!(
                    "Rate limit exceeded: {} requests per minute for this key; retry after {} s",
                    s.limit, s.reset_after_s
                ),
            )
            .with_header("retry-after", s.reset_after_s.to_string());
            e.headers.extend(rate_headers);
            return Err(e);
        }
        state
            .usage
            .record(&k.key_id, Some(peer.ip().to_string()), state.clock.now_ms());
    }

    let result = authorise(route.access, route.op, principal.as_ref());
    let result = match result {
        Ok(()) => {
            let ctx = Ctx {
                state: state.clone(),
                principal,
                params,
                peer,
                stop,
            };
            match (api::dispatch(route.op, ctx, req).await, &ws_key) {
                (Ok(resp), Some(key)) => ws::accept(resp, key, handoff),
                (r, _) => r,
            }
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(mut resp) => {
            for (k, v) in rate_headers {
                if let Ok(v) = HeaderValue::from_str(&v) {
                    resp.headers_mut().insert(k, v);
                }
            }
            Ok(resp)
        }
        Err(mut e) => {
            e.headers.extend(rate_headers);
            Err(e)
        }
    }
}

/// Scope checks and the must-change-password gate.
fn authorise(access: Access, op: Op, principal: Option<&Principal>) -> AppResult<()> {
    let Some(p) = principal else { return Ok(()) };
    if let Principal::User(u) = p {
        if u.must_change_password && !matches!(op, Op::Me | Op::Logout | Op::ChangePassword) {
            return Err(AppError::forbidden(
                "Change the initial password first: POST /api/v1/auth/change-password",
            ));
        }
    }
    match access {
        Access::Public | Access::Any => Ok(()),
        Access::User => p.user().map(|_| ()),
        Access::Scope(s) | Access::SignedOr(s) => p.require(s),
    }
}

/// True when the request carries a valid signed media link for the path's `{id}`; false when
/// it carries none; 403 when it carries one that is tampered with, expired or for other media.
fn signed_link(
    state: &AppState,
    req: &Request<Incoming>,
    params: &[(String, String)],
) -> AppResult<bool> {
    let (mut exp, mut sig) = (None, None);
    for (k, v) in form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes()) {
        match &*k {
            "exp" => exp = Some(v.into_owned()),
            "sig" => sig = Some(v.into_owned()),
            _ => {}
        }
    }
    if exp.is_none() && sig.is_none() {
        return Ok(false);
    }
    let id = params
        .iter()
        .find(|(k, _)| k == "id")
        .map(|(_, v)| v.as_str())
        .unwrap_or("");
    let (exp, sig) = (exp.unwrap_or_default(), sig.unwrap_or_default());
    match state.links.verify(id, &exp, &sig) {
        Ok(()) => Ok(true),
        Err(crate::alerts::sign::MediaRefusal::Expired) => {
            Err(AppError::forbidden("This media link has expired"))
        }
        Err(_) => Err(AppError::forbidden("This media link is not valid")),
    }
}
