//! Building the MQTT client (`rumqttc`, MQTT 3.1.1) from the settings: TLS through rustls with
//! the ring provider and our own `ClientConfig` (the public roots compiled in, plus an owner's
//! private CA), credentials, the last will; the connection test; and the plain-words reason for
//! each way a connection fails.

use super::config::Runtime;
use rumqttc::{
    AsyncClient, ConnectReturnCode, ConnectionError, EventLoop, LastWill, MqttOptions, QoS,
    TlsConfiguration, Transport,
};
use std::sync::Arc;
use std::time::Duration;
use tokio_rustls::rustls;

/// Seconds a connection (TCP, TLS and the MQTT handshake) may take.
pub const CONNECT_TIMEOUT_SECS: u64 = 5;
/// Largest message sent (a snapshot JPEG is far smaller) and received (commands, HA's birth).
const MAX_OUT: usize = 4 * 1024 * 1024;
const MAX_IN: usize = 64 * 1024;

pub fn qos(n: u8) -> QoS {
    match n {
        0 => QoS::AtMostOnce,
        2 => QoS::ExactlyOnce,
        _ => QoS::AtLeastOnce,
    }
}

/// The certificates of a PEM text (at least one).
pub fn parse_ca(pem: &str) -> Result<Vec<rustls_pki_types::CertificateDer<'static>>, String> {
    use rustls_pki_types::pem::PemObject;
    let certs: Vec<_> = rustls_pki_types::CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| format!("not a PEM certificate: {e}"))?;
    if certs.is_empty() {
        return Err("no PEM certificate (-----BEGIN CERTIFICATE-----) in it".into());
    }
    Ok(certs)
}

/// rustls with the ring provider: the compiled-in public roots and the owner's CA, if any.
pub fn tls_config(ca_pem: Option<&str>) -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(pem) = ca_pem {
        for cert in parse_ca(pem)? {
            roots
                .add(cert)
                .map_err(|e| format!("ca_cert: not a usable CA certificate: {e}"))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS configuration: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(cfg))
}

/// The client options: `status_topic` gets the retained last will `offline` (none for a test).
pub fn options(
    rt: &Runtime,
    client_id: &str,
    status_topic: Option<&str>,
) -> Result<MqttOptions, String> {
    let c = &rt.cfg;
    let mut o = MqttOptions::new(client_id, c.broker_host.clone(), c.broker_port);
    o.set_keep_alive(Duration::from_secs(30))
        .set_clean_session(true)
        .set_max_packet_size(MAX_IN, MAX_OUT)
        .set_inflight(super::outbox::WINDOW as u16);
    if let Some(user) = &c.username {
        o.set_credentials(user.clone(), rt.password.clone().unwrap_or_default());
    }
    if let Some(topic) = status_topic {
        o.set_last_will(LastWill::new(topic, "offline", qos(c.qos), true));
    }
    if c.use_tls {
        let tls = tls_config(c.ca_cert.as_deref())?;
        o.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(tls)));
    }
    Ok(o)
}

/// A client and its event loop, with the connection timeout set.
pub fn client(opts: MqttOptions, cap: usize) -> (AsyncClient, EventLoop) {
    let (client, mut el) = AsyncClient::new(opts, cap);
    el.network_options
        .set_connection_timeout(CONNECT_TIMEOUT_SECS);
    (client, el)
}

/// Why a connection failed, in words an owner can act on.
pub fn explain(e: &ConnectionError, rt: &Runtime) -> String {
    let broker = rt.broker();
    match e {
        ConnectionError::ConnectionRefused(code) => match code {
            ConnectReturnCode::BadUserNamePassword => {
                format!("{broker} refused the credentials: wrong username or password")
            }
            // Mosquitto answers a wrong password this way too (MQTT 3.1.1).
            ConnectReturnCode::NotAuthorized => format!(
                "{broker} refused the credentials: not authorized (wrong or missing username or password, or this user may not connect)"
            ),
            ConnectReturnCode::BadClientId => {
                format!("{broker} refused the client id (node_id)")
            }
            ConnectReturnCode::ServiceUnavailable => {
                format!("{broker} is unavailable (it refused new connections)")
            }
            other => format!("{broker} refused the connection: {other:?}"),
        },
        ConnectionError::Tls(t) => format!(
            "TLS with {broker} failed: {t} (is it a TLS port, and is its certificate signed by a public CA or the ca_cert given?)"
        ),
        ConnectionError::NetworkTimeout => format!(
            "{broker} did not answer within {CONNECT_TIMEOUT_SECS} s (wrong address, a firewall, or TLS to a plain port?)"
        ),
        ConnectionError::Io(io) => match io.kind() {
            std::io::ErrorKind::ConnectionRefused => {
                format!("cannot reach {broker}: connection refused (is the broker running on that port?)")
            }
            std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset => format!(
                "{broker} closed the connection{}",
                if rt.cfg.use_tls {
                    ""
                } else {
                    " (does it expect TLS?)"
                }
            ),
            _ => format!("cannot reach {broker}: {io}"),
        },
        ConnectionError::NotConnAck(_) => {
            format!("{broker} did not answer as an MQTT broker")
        }
        other => format!("connection to {broker} lost: {other}"),
    }
}

/// Connects with these settings and disconnects; `Err` says why it failed.
pub async fn test(rt: &Runtime) -> Result<(), String> {
    let id = format!("{}-test-{}", rt.node_id, crate::crypto::random_token(6));
    let opts = options(rt, &id, None)?;
    let (client, mut el) = client(opts, 4);
    let work = async {
        loop {
            match el.poll().await {
                Ok(rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(_))) => return Ok(()),
                Ok(_) => {}
                Err(e) => return Err(explain(&e, rt)),
            }
        }
    };
    let out = match tokio::time::timeout(Duration::from_secs(CONNECT_TIMEOUT_SECS + 2), work).await
    {
        Ok(r) => r,
        Err(_) => Err(format!(
            "{} did not answer within {CONNECT_TIMEOUT_SECS} s",
            rt.broker()
        )),
    };
    if out.is_ok() {
        let _ = client.try_disconnect();
        let _ = tokio::time::timeout(Duration::from_secs(1), el.poll()).await;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_builds_with_ring_and_no_process_wide_provider() {
        assert!(tls_config(None).is_ok());
        assert!(tls_config(Some("junk")).is_err());
    }
}
