//! TCP and TLS to a console: where it is, the rustls client configuration (ring provider), and
//! the classification of connection failures into [`ProtectError`]s.
//!
//! With `verify_ssl` off (the default: consoles ship self-signed certificates) the certificate
//! is not checked against a CA or the host name; the connection is still encrypted and the
//! handshake signature is still verified, but the console is not authenticated. With it on, the
//! compiled-in Mozilla roots are used, as for the cloud AI providers.

use super::client::ProtectError;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls;

/// Where a console is: parsed from `host` or `host:port` (an `https://` prefix is accepted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoint {
    /// For the TCP connection: a name or an IP address, IPv6 without brackets.
    pub connect_host: String,
    pub port: u16,
    /// The `Host` header value (`[v6]` bracketed, `:port` unless 443).
    pub authority: String,
    pub server_name: rustls_pki_types::ServerName<'static>,
}

impl Endpoint {
    pub fn parse(host: &str) -> Result<Endpoint, ProtectError> {
        let trimmed = host.trim().trim_end_matches('/');
        let bare = match trimmed.get(..8) {
            Some(p) if p.eq_ignore_ascii_case("https://") => &trimmed[8..],
            _ => trimmed,
        };
        let invalid = || ProtectError::InvalidInput(format!("invalid console host {host:?}"));
        if bare.is_empty() || bare.contains(['/', '?', '#', '@', ' ']) || bare.contains("://") {
            return Err(invalid());
        }
        let url = url::Url::parse(&format!("https://{bare}")).map_err(|_| invalid())?;
        let port = url.port().unwrap_or(443);
        let (connect_host, printed) = match url.host().ok_or_else(invalid)? {
            url::Host::Domain(d) => (d.to_string(), d.to_string()),
            url::Host::Ipv4(a) => (a.to_string(), a.to_string()),
            url::Host::Ipv6(a) => (a.to_string(), format!("[{a}]")),
        };
        let server_name =
            rustls_pki_types::ServerName::try_from(connect_host.clone()).map_err(|_| invalid())?;
        let authority = if port == 443 {
            printed
        } else {
            format!("{printed}:{port}")
        };
        Ok(Endpoint {
            connect_host,
            port,
            authority,
            server_name,
        })
    }
}

/// The TLS client configuration: HTTP/1.1 only (the update socket is an HTTP/1.1 upgrade).
pub(crate) fn connector(verify: bool) -> Result<tokio_rustls::TlsConnector, ProtectError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| ProtectError::Tls(format!("TLS configuration: {e}")))?;
    let mut cfg = if verify {
        let roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        builder.with_root_certificates(roots).with_no_client_auth()
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(crate::tls::AnyServerCert(provider)))
            .with_no_client_auth()
    };
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsConnector::from(Arc::new(cfg)))
}

/// A TLS connection to the console. Name resolution and TCP failures are `Unreachable`,
/// handshake failures (including an untrusted certificate) `Tls`, and either step running past
/// `timeout` is `Timeout`.
pub(crate) async fn connect(
    connector: &tokio_rustls::TlsConnector,
    endpoint: &Endpoint,
    timeout: Duration,
) -> Result<TlsStream<TcpStream>, ProtectError> {
    let target = (endpoint.connect_host.as_str(), endpoint.port);
    let tcp = tokio::time::timeout(timeout, TcpStream::connect(target))
        .await
        .map_err(|_| ProtectError::Timeout)?
        .map_err(|e| ProtectError::Unreachable(format!("{}: {e}", endpoint.authority)))?;
    let _ = tcp.set_nodelay(true);
    let handshake = connector.connect(endpoint.server_name.clone(), tcp);
    tokio::time::timeout(timeout, handshake)
        .await
        .map_err(|_| ProtectError::Timeout)?
        .map_err(|e| ProtectError::Tls(handshake_error(&e)))
}

/// The reason of a failed handshake: rustls' own error when there is one (an untrusted
/// certificate reads "invalid peer certificate: UnknownIssuer").
fn handshake_error(e: &std::io::Error) -> String {
    match e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        Some(tls) => tls.to_string(),
        None => format!("the TLS handshake failed: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        let check = |input: &str, host: &str, port: u16, authority: &str| {
            let e = Endpoint::parse(input).unwrap();
            assert_eq!(
                (e.connect_host.as_str(), e.port, e.authority.as_str()),
                (host, port, authority),
                "{input}"
            );
        };
        check("unvr.local", "unvr.local", 443, "unvr.local");
        check(
            " 192.168.1.1:7443 ",
            "192.168.1.1",
            7443,
            "192.168.1.1:7443",
        );
        check(
            "https://Console.Example/",
            "console.example",
            443,
            "console.example",
        );
        check("[fe80::1]:8443", "fe80::1", 8443, "[fe80::1]:8443");
        check("[::1]", "::1", 443, "[::1]");
        for bad in [
            "",
            "http://x",
            "a/b",
            "user@host",
            "host:99999",
            "host:port",
            "ftp://x",
            "a b",
        ] {
            assert!(
                matches!(Endpoint::parse(bad), Err(ProtectError::InvalidInput(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn both_connectors_build_with_ring() {
        connector(true).unwrap();
        connector(false).unwrap();
    }
}
