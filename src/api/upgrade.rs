//! WebSocket routes of the API. A handler that accepts an upgrade (after its own checks:
//! authentication and scopes have passed in the server's wrapper) answers `101` carrying an
//! [`Upgrade`] in the response's extensions: the session to run on the socket. The server
//! (`http::ws`) adds the handshake headers, writes the `101`, and then runs the session on the
//! connection, telling it through `stop` when the server shuts down. Whatever the session
//! holds (a viewer's place, say) is released if the `101` is never written.

use crate::api::body::{empty, Body};
use hyper::{Response, StatusCode};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::WebSocketStream;

/// A connection's byte stream, whatever it is (plain TCP or TLS).
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// The WebSocket a session runs on.
pub type Socket = WebSocketStream<Box<dyn Io>>;

type Session = Box<
    dyn FnOnce(Socket, watch::Receiver<bool>) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send,
>;

/// The session of an accepted upgrade and the socket's limits.
#[derive(Clone)]
pub struct Upgrade {
    session: Arc<Mutex<Option<Session>>>,
    pub config: WebSocketConfig,
}

impl Upgrade {
    /// The `101` answer that runs `session` on the socket once it is written.
    pub fn response<F, Fut>(config: WebSocketConfig, session: F) -> Response<Body>
    where
        F: FnOnce(Socket, watch::Receiver<bool>) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let session: Session = Box::new(move |socket, stop| Box::pin(session(socket, stop)));
        let mut resp = Response::builder()
            .status(StatusCode::SWITCHING_PROTOCOLS)
            .body(empty())
            .expect("static response is valid");
        resp.extensions_mut().insert(Upgrade {
            session: Arc::new(Mutex::new(Some(session))),
            config,
        });
        resp
    }

    /// Runs the session (once; a second call does nothing).
    pub async fn run(self, socket: Socket, stop: watch::Receiver<bool>) {
        let session = self
            .session
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(s) = session {
            s(socket, stop).await;
        }
    }
}
