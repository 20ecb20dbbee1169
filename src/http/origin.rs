//! Same-origin checks for requests made with the owner's session cookie. A browser sends the
//! cookie with requests that any page causes, including pages of another site and pages on
//! another port of the same host (SameSite counts those as the same site). So a request that
//! changes something (POST, PUT, PATCH, DELETE) and is authenticated by the cookie must carry
//! an `Origin` (or, failing that, a `Referer`) of the appliance itself; a cookie-authenticated
//! WebSocket whose `Origin` is foreign is refused too. Requests authenticated by an API key or
//! a Bearer token are not checked: a page cannot make a browser add those.
//!
//! "The appliance itself" is the `Host` the request was sent to, or the configured public URL
//! (`[http] public_url`, for a reverse proxy that rewrites `Host`).

use crate::error::{AppError, AppResult};
use hyper::header::{HOST, ORIGIN, REFERER};
use hyper::HeaderMap;

/// A web origin: scheme, host and port (the scheme's default port when none is written).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    scheme: String,
    host: String,
    port: u16,
}

impl Origin {
    /// Parses the origin of an absolute `http`/`https` URL (`Origin` values are such URLs).
    pub fn parse(url: &str) -> Option<Origin> {
        let u = url::Url::parse(url).ok()?;
        if !matches!(u.scheme(), "http" | "https") {
            return None;
        }
        Some(Origin {
            scheme: u.scheme().to_string(),
            host: u.host_str()?.to_ascii_lowercase(),
            port: u.port_or_known_default()?,
        })
    }

    /// True when `host` (a `Host` header: `name[:port]`) names this origin's host and port.
    fn is_host(&self, host: &str) -> bool {
        match Origin::parse(&format!("{}://{}", self.scheme, host.trim())) {
            Some(h) => h.host == self.host && h.port == self.port,
            None => false,
        }
    }
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let default = if self.scheme == "https" { 443 } else { 80 };
        if self.port == default {
            write!(f, "{}://{}", self.scheme, self.host)
        } else {
            write!(f, "{}://{}:{}", self.scheme, self.host, self.port)
        }
    }
}

/// Checks that a cookie-authenticated request comes from the appliance's own pages.
/// `allow_referer`: fall back to `Referer` when there is no `Origin`.
pub fn check(
    headers: &HeaderMap,
    public_origin: Option<&Origin>,
    allow_referer: bool,
) -> AppResult<()> {
    const HOW: &str = "a request made with the session cookie must come from this \
        appliance's own pages; scripts should send an API key (X-API-Key) or a Bearer token";
    let value = headers
        .get(ORIGIN)
        .or_else(|| allow_referer.then(|| headers.get(REFERER)).flatten())
        .and_then(|v| v.to_str().ok());
    let Some(value) = value else {
        return Err(AppError::forbidden(format!(
            "Cross-site request refused: no Origin or Referer header; {HOW}"
        )));
    };
    let Some(origin) = Origin::parse(value) else {
        return Err(AppError::forbidden(format!(
            "Cross-site request refused: the origin {value:?} is not this appliance; {HOW}"
        )));
    };
    let host = headers.get(HOST).and_then(|v| v.to_str().ok());
    if host.is_some_and(|h| origin.is_host(h)) || public_origin == Some(&origin) {
        return Ok(());
    }
    Err(AppError::forbidden(format!(
        "Cross-site request refused: the origin {origin} is not this appliance; {HOW}"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn the_appliance_itself_passes() {
        let ok = |pairs: &[(&'static str, &str)]| check(&headers(pairs), None, true).is_ok();
        assert!(ok(&[
            ("host", "192.168.1.5:8000"),
            ("origin", "http://192.168.1.5:8000")
        ]));
        assert!(ok(&[
            ("host", "Board.local"),
            ("origin", "http://board.local")
        ]));
        assert!(ok(&[("host", "board"), ("origin", "https://board:443")]));
        assert!(ok(&[
            ("host", "[::1]:8000"),
            ("origin", "http://[::1]:8000")
        ]));
        assert!(ok(&[
            ("host", "board:8000"),
            ("referer", "http://board:8000/events?x=1")
        ]));
    }

    #[test]
    fn other_origins_and_missing_ones_do_not() {
        let refused = |pairs: &[(&'static str, &str)]| {
            let e = check(&headers(pairs), None, true).unwrap_err();
            assert_eq!(e.status(), hyper::StatusCode::FORBIDDEN);
            e.detail
        };
        // Another port of the same host is another origin (though the same "site").
        refused(&[
            ("host", "127.0.0.1:8000"),
            ("origin", "http://127.0.0.1:9999"),
        ]);
        let d = refused(&[("host", "board:8000"), ("origin", "http://evil.example")]);
        assert!(d.contains("the origin http://evil.example is not"), "{d}");
        refused(&[("host", "board:80"), ("origin", "https://board")]);
        refused(&[("host", "board:8000"), ("origin", "null")]);
        let d = refused(&[("host", "board:8000")]);
        assert!(d.contains("no Origin or Referer"), "{d}");
        // The Referer is not a fall-back where it is not allowed.
        let h = headers(&[("host", "board:8000"), ("referer", "http://board:8000/")]);
        assert!(check(&h, None, false).is_err());
    }

    #[test]
    fn a_reverse_proxy_is_named_by_the_public_url() {
        let public = Origin::parse("https://cams.example.org").unwrap();
        let h = headers(&[
            ("host", "127.0.0.1:8000"),
            ("origin", "https://cams.example.org"),
        ]);
        assert!(check(&h, Some(&public), true).is_ok());
        assert!(check(&h, None, true).is_err());
        let other = headers(&[
            ("host", "127.0.0.1:8000"),
            ("origin", "http://cams.example.org"),
        ]);
        assert!(check(&other, Some(&public), true).is_err());
    }
}
