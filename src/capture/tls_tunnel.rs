//! `rtsps://` cameras. retina speaks plain RTSP only, so an `rtsps://` camera is reached through
//! a tunnel on 127.0.0.1 that wraps retina's one TCP connection (RTSP with interleaved RTP) in
//! TLS to the camera. The tunnel lives as long as the source that uses it.
//!
//! Cameras almost always present self-signed certificates, so the camera's certificate is not
//! checked against a CA (the connection is encrypted, and the handshake signature is verified,
//! but the camera is not authenticated); the README says so. Only TCP transport works through
//! the tunnel.

use super::CaptureError;
use std::sync::Arc;
use std::time::Duration;
use tokio_rustls::rustls;

/// The default port of RTSP over TLS.
pub const RTSPS_PORT: u16 = 322;

/// A running tunnel; dropping it closes the listener and every connection through it.
pub struct Tunnel {
    /// The `rtsp://127.0.0.1:PORT/...` URL to give retina.
    pub local_url: url::Url,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Tunnel {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn connector() -> Result<tokio_rustls::TlsConnector, CaptureError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| CaptureError::Stream(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(crate::tls::AnyServerCert(provider)))
        .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(cfg)))
}

/// Opens a tunnel to the camera of an `rtsps://` URL (credentials already removed).
pub async fn open(url: &url::Url) -> Result<Tunnel, CaptureError> {
    let host = url
        .host_str()
        .ok_or_else(|| CaptureError::Config("rtsp_url: no host".into()))?
        .to_string();
    let port = url.port().unwrap_or(RTSPS_PORT);
    let name = rustls_pki_types::ServerName::try_from(
        host.trim_start_matches('[')
            .trim_end_matches(']')
            .to_string(),
    )
    .map_err(|_| CaptureError::Config(format!("rtsp_url: bad host {host:?}")))?;
    let connector = connector()?;
    // Fail early, with the real reason, if the camera cannot be reached over TLS.
    let probe = connect(&connector, &host, port, name.clone()).await?;
    drop(probe);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| CaptureError::Stream(format!("cannot open the TLS tunnel: {e}")))?;
    let local = listener
        .local_addr()
        .map_err(|e| CaptureError::Stream(e.to_string()))?;
    let mut local_url = url.clone();
    local_url
        .set_scheme("rtsp")
        .map_err(|_| CaptureError::Config("rtsp_url".into()))?;
    local_url
        .set_host(Some("127.0.0.1"))
        .map_err(|e| CaptureError::Config(e.to_string()))?;
    local_url
        .set_port(Some(local.port()))
        .map_err(|_| CaptureError::Config("rtsp_url".into()))?;
    let task = tokio::spawn(async move {
        let mut conns = tokio::task::JoinSet::new();
        while let Ok((mut inner, _)) = listener.accept().await {
            let connector = connector.clone();
            let (host, name) = (host.clone(), name.clone());
            conns.spawn(async move {
                match connect(&connector, &host, port, name).await {
                    Ok(mut outer) => {
                        let _ = tokio::io::copy_bidirectional(&mut inner, &mut outer).await;
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "rtsps tunnel could not reach the camera")
                    }
                }
            });
        }
    });
    Ok(Tunnel { local_url, task })
}

async fn connect(
    connector: &tokio_rustls::TlsConnector,
    host: &str,
    port: u16,
    name: rustls_pki_types::ServerName<'static>,
) -> Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>, CaptureError> {
    let addr = format!("{}:{port}", host);
    let tcp = tokio::time::timeout(
        Duration::from_secs(10),
        tokio::net::TcpStream::connect(&addr),
    )
    .await
    .map_err(|_| CaptureError::Timeout(format!("no TCP connection to {addr} within 10 s")))?
    .map_err(|e| CaptureError::Unreachable(format!("{addr}: {e}")))?;
    let _ = tcp.set_nodelay(true);
    tokio::time::timeout(Duration::from_secs(10), connector.connect(name, tcp))
        .await
        .map_err(|_| CaptureError::Timeout("the TLS handshake did not finish within 10 s".into()))?
        .map_err(|e| CaptureError::Unreachable(format!("TLS handshake with {addr} failed: {e}")))
}
