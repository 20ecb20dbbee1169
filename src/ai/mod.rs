//! Cloud vision descriptions: the provider layer. This module owns everything between "here is a
//! snapshot" and "here is a parsed description (or why there is none)": image preparation
//! ([`image`]), the prompts and the parsing of answers ([`prompt`]), the wire formats of each
//! provider ([`provider`]), the price table ([`prices`]), the per-provider circuit breaker
//! ([`breaker`]) and the fallback chain with its time budget ([`chain`]).
//!
//! It never touches the database, the settings document, events or HTTP routes: callers pass
//! provider configurations in (keys already decrypted, order already chosen by the owner) and get
//! back the answer plus one [`chain::Attempt`] per API call, from which they write usage rows.
//! It never logs or returns an API key: error texts are scrubbed of the key before they leave
//! [`provider::call`].
//!
//! Image preparation is CPU-bound and memory-hungry: use [`image::prepare_bounded`], which
//! refuses images too large to decode and bounds how many decode at once.

pub mod breaker;
pub mod chain;
pub mod image;
pub mod prices;
pub mod prompt;
pub mod provider;

pub use breaker::{Breaker, BreakerConfig, Breakers, Verdict};
pub use chain::{run_chain, Attempt, ChainOutcome, ChainPolicy, ChainRequest, DEFAULT_BUDGET};
pub use image::{prepare, ImageError, Prepared};
pub use prices::cost;
pub use prompt::{parse_answer, system_prompt, user_prompt, ParseError, Parsed, SeenObject};
pub use provider::{
    call, default_base_url, default_model, wire_name, Answer, CallError, ProviderConfig,
};

use std::sync::Arc;
use std::time::Duration;

/// The `User-Agent` sent to providers (some, like Ollama, log it; none require it).
pub const USER_AGENT: &str = concat!("argus-edge/", env!("CARGO_PKG_VERSION"));

/// Builds the HTTP client for provider calls: rustls with the ring provider only (one crypto
/// stack for the whole binary, no aws-lc to cross-compile) and Mozilla's root certificates
/// compiled in (`webpki-roots`), because a Buildroot image may have no CA bundle at all.
///
/// HTTP/2 is offered through ALPN; reqwest does not set ALPN on a preconfigured TLS config, so
/// it is set here. One client should be shared by every call (it pools connections).
pub fn http_client() -> Result<reqwest::Client, String> {
    client_builder()?
        .build()
        .map_err(|e| format!("HTTP client: {e}"))
}

/// An HTTPS-capable client builder: rustls with the ring provider and the webpki roots, the
/// appliance's user agent, a 5 s connect timeout. Webhooks build their client from it too.
pub fn client_builder() -> Result<reqwest::ClientBuilder, String> {
    use tokio_rustls::rustls;
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS configuration: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .user_agent(USER_AGENT)
        .connect_timeout(Duration::from_secs(5))
        .pool_idle_timeout(Duration::from_secs(60)))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_client_builds_with_ring_and_compiled_in_roots() {
        super::http_client().expect("client builds without a crypto provider installed");
    }
}
