//! The HTTP(S) server: the accept loop with a connection cap and graceful shutdown (hyper 1 +
//! hyper-util), and the one request wrapper that owns the cross-cutting work: routing, 404/405,
//! authentication, rate limits, scope checks, the must-change-password gate, turning errors into
//! JSON, and the request log line.

pub mod body;
mod docs;
pub mod multipart;
mod ws;

use crate::api::routes::{self, Access, Found, Op};
use crate::api::{self, Ctx};
use crate::app::AppState;
use crate::auth::{Credentials, Principal};
use crate::error::{AppError, AppResult, ErrorKind};
use body::{error_response, json, Body};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ALLOW};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

/// Accepts connections until `stop` turns true, then waits for in-flight requests.
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    mut stop: watch::Receiver<bool>,
) {
    let max = state.cfg.http.max_connections;
    let permits = Arc::new(Semaphore::new(max));
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            _ = stop.changed() => break,
        };
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = stop.changed() => break,
        };
        let _ = tcp.set_nodelay(true);
        let state = state.clone();
        let tls = tls.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            match tls {
                None => serve_connection(TokioIo::new(tcp), state, peer, stop).await,
                Some(acceptor) => {
                    match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await
                    {
                        Ok(Ok(s)) => serve_connection(TokioIo::new(s), state, peer, stop).await,
                        Ok(Err(e)) => {
                            tracing::debug!(error = %e, client.ip = %peer.ip(), "TLS handshake failed")
                        }
                        Err(_) => {
                            tracing::debug!(client.ip = %peer.ip(), "TLS handshake timed out")
                        }
                    }
                }
            }
            drop(permit);
        });
    }
    drop(listener);
    // Every connection holds a permit until it ends: taking them all means all have ended.
    let _ = permits.acquire_many(max as u32).await;
}

/// Serves one connection; on shutdown it finishes the request in flight and closes.
async fn serve_connection<I>(
    io: I,
    state: Arc<AppState>,
    peer: SocketAddr,
    mut stop: watch::Receiver<bool>,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let stop_rx = stop.clone();
    let service = hyper::service::service_fn(move |req| {
        let state = state.clone();
        let stop_rx = stop_rx.clone();
        async move { Ok::<_, std::convert::Infallible>(handle(state, req, peer, stop_rx).await) }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(30));
    let conn = builder.serve_connection(io, service).with_upgrades();
    tokio::pin!(conn);
    let res = tokio::select! {
        r = conn.as_mut() => r,
        _ = stop.changed() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = res {
        tracing::debug!(error = %e, "connection ended with an error");
    }
}

/// The infallible wrapper: every outcome becomes a response, and is logged once.
async fn handle(
    state: Arc<AppState>,
    req: Request<Incoming>,
    peer: SocketAddr,
    stop: watch::Receiver<bool>,
) -> Response<Body> {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let mut resp = match serve_inner(&state, req, peer, stop).await {
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

async fn serve_inner(
    state: &Arc<AppState>,
    req: Request<Incoming>,
    peer: SocketAddr,
    stop: watch::Receiver<bool>,
) -> AppResult<Response<Body>> {
    let path = req.uri().path().to_string();
    if let Some(r) = docs::serve(&path, req.method()) {
        return r;
    }
    if path == "/ws" {
        return ws::upgrade(state.clone(), req, stop).await;
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

    let principal = match route.access {
        Access::Public => None,
        _ => Some(
            state
                .auth
                .authenticate(Credentials {
                    headers: req.headers(),
                    query_token: None,
                })
                .await?,
        ),
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
            };
            api::dispatch(route.op, ctx, req).await
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
        Access::Scope(s) => p.require(s),
    }
}
