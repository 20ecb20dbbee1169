//! One client connection, from its first byte to its close. Each request goes through the same
//! steps: its head is read here, within the header timeout (the keep-alive timeout while idle),
//! and checked by [`super::head`] (a bad one gets a JSON error and the connection closes); then
//! hyper serves exactly that request over a [`ConnIo`] that will not let it read past the
//! request's body; then the connection either waits for the next request, becomes a WebSocket,
//! or closes. Hyper therefore never parses a head itself, and never answers with an empty error.
//!
//! The connection tells its [`Slot`] what it is doing, so a full server can shed it while it
//! idles or dawdles over a head, and closes when told to.

use super::admission::{Phase, Slot};
use super::head::{self, Framing, Head, HeadLimits, Parsed};
use super::io::ConnIo;
use super::ws;
use crate::error::{AppError, ErrorKind};
use crate::state::AppState;
use bytes::BytesMut;
use hyper::header::{HeaderValue, CONNECTION};
use hyper::StatusCode;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;
use tokio::time::Instant;

/// The timeouts and sizes a connection works within (from `[http]`).
#[derive(Debug, Clone, Copy)]
pub struct ConnLimits {
    pub head: HeadLimits,
    /// For a request head, from its first byte (the first request: from the connection's
    /// start) to its blank line.
    pub header_timeout: Duration,
    /// For an idle keep-alive connection, until the next request's first byte.
    pub keep_alive_timeout: Duration,
    /// For a write that makes no progress (a client that does not read its response).
    pub write_timeout: Duration,
}

/// Closing a connection: after the last response, the write side is shut and what the client
/// still sends is read and dropped for a moment, so the client reads the response instead of
/// a reset.
const LINGER: Duration = Duration::from_secs(1);
const LINGER_BYTES: usize = 256 * 1024;

/// Lingering closes of refused connections running at once; past this, refused connections
/// are dropped without an answer.
const MAX_REFUSALS_IN_FLIGHT: usize = 64;

type ServiceResult = Result<hyper::Response<crate::api::body::Body>, std::convert::Infallible>;

/// What the service tells the connection loop about the request it served.
#[derive(Default)]
struct Served {
    /// The response has been handed to hyper (its head is written in the same poll).
    responded: AtomicBool,
    /// The response was `101 Switching Protocols`.
    upgraded: AtomicBool,
    /// The response says `Connection: close`.
    close: AtomicBool,
    /// A WebSocket session, when the request was an accepted upgrade.
    handoff: ws::Handoff,
}

enum HeadOutcome {
    Head(Head),
    /// Nothing to answer: the client left, idled out, or the server is stopping.
    Close,
    /// Answer this error, then close.
    Refuse(AppError),
}

/// Serves the connection until it closes.
pub async fn serve<S>(
    stream: S,
    slot: Slot,
    state: Arc<AppState>,
    peer: SocketAddr,
    mut stop: watch::Receiver<bool>,
    limits: ConnLimits,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut io = ConnIo::new(stream, limits.write_timeout);
    let mut buf = BytesMut::new();
    let mut first = true;
    loop {
        let head = match read_head(&mut io, &mut buf, first, &slot, &mut stop, &limits).await {
            HeadOutcome::Head(h) => h,
            HeadOutcome::Close => return,
            HeadOutcome::Refuse(e) => {
                drop(slot);
                answer_and_close(io, &e).await;
                return;
            }
        };
        first = false;
        if !slot.set(Phase::Active) {
            return;
        }
        let expected = match head.framing {
            Framing::Length(n) => Some(head.len as u64 + n),
            Framing::Chunked => None,
        };
        // A chunked body's end is known only to hyper's decoder: such a request is the last.
        let must_close = !head.keep_alive || expected.is_none() || *stop.borrow();
        // A copy of the few hundred bytes received keeps `buf`'s allocation for the next head.
        io.reset(bytes::Bytes::copy_from_slice(&buf), expected);
        buf.clear();
        let served = Arc::new(Served::default());
        let service = {
            let (state, served, stop) = (state.clone(), served.clone(), stop.clone());
            hyper::service::service_fn(move |req| {
                let (state, served, stop) = (state.clone(), served.clone(), stop.clone());
                Box::pin(async move {
                    let mut resp = super::handle(state, req, peer, &served.handoff, stop).await;
                    if must_close {
                        resp.headers_mut()
                            .insert(CONNECTION, HeaderValue::from_static("close"));
                    }
                    let close = resp
                        .headers()
                        .get(CONNECTION)
                        .and_then(|v| v.to_str().ok())
                        .is_some_and(|v| v.eq_ignore_ascii_case("close"));
                    served.close.store(close, Ordering::Relaxed);
                    served.upgraded.store(
                        resp.status() == StatusCode::SWITCHING_PROTOCOLS,
                        Ordering::Relaxed,
                    );
                    served.responded.store(true, Ordering::Release);
                    Ok::<_, std::convert::Infallible>(resp)
                }) as Pin<Box<dyn Future<Output = ServiceResult> + Send>>
            })
        };
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(None)
            .max_headers(limits.head.max_headers);
        let mut conn = builder.serve_connection(TokioIo::new(io), service);
        let (result, stopping) = {
            let mut shutting = false;
            let mut stopping = *stop.borrow();
            let stopped = stop.changed();
            let shed = slot.shed();
            tokio::pin!(stopped, shed);
            let mut responding = false;
            // Hyper serves this one request; once its response is under way, keep-alive is
            // turned off inside hyper so that it hands the connection back instead of reading
            // another head (the response itself, already encoded, still lets the client reuse
            // the connection).
            let result = std::future::poll_fn(|cx| loop {
                if let Poll::Ready(r) = conn.poll_without_shutdown(cx) {
                    return Poll::Ready(Some(r));
                }
                if !stopping && stopped.as_mut().poll(cx).is_ready() {
                    stopping = true;
                }
                let responded = served.responded.load(Ordering::Acquire)
                    && !served.upgraded.load(Ordering::Relaxed);
                if responded && !responding {
                    // The server's work is done; a client slow to read may be shed when full.
                    responding = true;
                    if !slot.set(Phase::Responding) {
                        return Poll::Ready(None);
                    }
                }
                if responding && shed.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(None);
                }
                if !shutting && (responded || stopping) {
                    Pin::new(&mut conn).graceful_shutdown();
                    shutting = true;
                    continue;
                }
                return Poll::Pending;
            })
            .await;
            (result, stopping)
        };
        let parts = conn.into_parts();
        io = parts.io.into_inner();
        match result {
            None => {
                tracing::debug!(client.ip = %peer.ip(), "slow reader shed to make room");
                return;
            }
            Some(Err(e)) => {
                tracing::debug!(error = %e, client.ip = %peer.ip(), "connection ended with an error");
                return;
            }
            Some(Ok(())) => {}
        }
        if served.upgraded.load(Ordering::Relaxed) {
            if let Some(session) = served.handoff.take() {
                if slot.set(Phase::Upgraded) {
                    let mut early = parts.read_buf.to_vec();
                    early.extend_from_slice(&io.take_prefix());
                    io.reset(bytes::Bytes::new(), None);
                    ws::run(state, session, io, early, stop).await;
                }
            }
            return;
        }
        let at_boundary =
            parts.read_buf.is_empty() && expected.is_some_and(|n| io.bytes_read() == n);
        if must_close || stopping || served.close.load(Ordering::Relaxed) || !at_boundary {
            drop(slot);
            linger_close(io).await;
            return;
        }
        buf.extend_from_slice(&io.take_prefix());
    }
}

/// Reads until `buf` holds a complete head, within the timeouts.
async fn read_head<S>(
    io: &mut ConnIo<S>,
    buf: &mut BytesMut,
    first: bool,
    slot: &Slot,
    stop: &mut watch::Receiver<bool>,
    limits: &ConnLimits,
) -> HeadOutcome
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let waiting_idle = !first && buf.is_empty();
    let mut deadline = Instant::now()
        + if waiting_idle {
            limits.keep_alive_timeout
        } else {
            limits.header_timeout
        };
    if !slot.set(if waiting_idle {
        Phase::Idle
    } else {
        Phase::Head
    }) {
        return HeadOutcome::Close;
    }
    loop {
        if !buf.is_empty() {
            match head::parse(buf, &limits.head) {
                Ok(Parsed::Complete(h)) => return HeadOutcome::Head(h),
                Ok(Parsed::Partial) => {}
                Err(e) => return HeadOutcome::Refuse(e),
            }
        }
        if *stop.borrow() {
            return HeadOutcome::Close;
        }
        let was_empty = buf.is_empty();
        buf.reserve(4096);
        let read = tokio::select! {
            r = tokio::time::timeout_at(deadline, io.inner_mut().read_buf(buf)) => r,
            _ = slot.shed() => {
                return if was_empty {
                    HeadOutcome::Close
                } else {
                    HeadOutcome::Refuse(AppError::new(
                        ErrorKind::Unavailable,
                        "The appliance is busy and this request was too slow to arrive; try again",
                    ).with_header("retry-after", "1"))
                };
            }
            _ = stop.changed() => return HeadOutcome::Close,
        };
        match read {
            Err(_) if buf.is_empty() => return HeadOutcome::Close,
            Err(_) => {
                return HeadOutcome::Refuse(AppError::new(
                    ErrorKind::RequestTimeout,
                    format!(
                        "The request headers did not arrive within {} s",
                        limits.header_timeout.as_secs_f64()
                    ),
                ))
            }
            Ok(Ok(0)) | Ok(Err(_)) => return HeadOutcome::Close,
            Ok(Ok(_)) => {
                if was_empty && waiting_idle {
                    // The next request has begun: it gets the header timeout from now.
                    deadline = Instant::now() + limits.header_timeout;
                    if !slot.set(Phase::Head) {
                        return HeadOutcome::Close;
                    }
                }
            }
        }
    }
}

/// The bytes of a JSON error response that closes the connection.
fn error_bytes(e: &AppError) -> Vec<u8> {
    let body = e.body_json();
    let status = e.status();
    let mut out = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\nx-content-type-options: nosniff\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
        body.len()
    );
    for (k, v) in &e.headers {
        if !k.eq_ignore_ascii_case("connection") {
            out.push_str(&format!("{k}: {v}\r\n"));
        }
    }
    out.push_str("\r\n");
    out.push_str(&body);
    out.into_bytes()
}

/// Writes a JSON error and closes.
async fn answer_and_close<S: AsyncRead + AsyncWrite + Unpin>(mut io: ConnIo<S>, e: &AppError) {
    tracing::debug!(status = e.status().as_u16(), detail = %e.detail, "request refused before routing");
    let bytes = error_bytes(e);
    if tokio::time::timeout(LINGER * 5, io.write_all(&bytes))
        .await
        .is_ok_and(|r| r.is_ok())
    {
        linger_close(io).await;
    }
}

/// Shuts the write side, then drops what the client still sends for a moment.
async fn linger_close<S: AsyncRead + AsyncWrite + Unpin>(mut io: ConnIo<S>) {
    if tokio::time::timeout(LINGER, io.shutdown()).await.is_err() {
        return;
    }
    let inner = io.inner_mut();
    let _ = tokio::time::timeout(LINGER, async {
        let mut scratch = [0u8; 4096];
        let mut total = 0;
        while total < LINGER_BYTES {
            match inner.read(&mut scratch).await {
                Ok(0) | Err(_) => break,
                Ok(n) => total += n,
            }
        }
    })
    .await;
}

/// Answers a connection that was not admitted (plain HTTP only: a TLS client cannot read a
/// plain answer), without holding up the accept loop.
pub fn refuse(stream: tokio::net::TcpStream, e: AppError, write_timeout: Duration) {
    static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);
    if IN_FLIGHT.fetch_add(1, Ordering::AcqRel) >= MAX_REFUSALS_IN_FLIGHT {
        IN_FLIGHT.fetch_sub(1, Ordering::AcqRel);
        return;
    }
    tokio::spawn(async move {
        answer_and_close(ConnIo::new(stream, write_timeout), &e).await;
        IN_FLIGHT.fetch_sub(1, Ordering::AcqRel);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_json_and_close() {
        let e = AppError::new(ErrorKind::HeaderFieldsTooLarge, "too big")
            .with_header("retry-after", "1");
        let text = String::from_utf8(error_bytes(&e)).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(
            head.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"),
            "{head}"
        );
        assert!(head.contains("connection: close") && head.contains("retry-after: 1"));
        assert!(head.contains(&format!("content-length: {}", body.len())));
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"detail": "too big", "status_code": 431})
        );
    }
}
