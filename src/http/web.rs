//! The owner's web app, served from files embedded in the binary (`web/`, compressed by
//! `build.rs`). `/app/<version>/...` are the app's modules, styles and vendored libraries:
//! immutable, cached for a year, since a new build has a new version. The app's pages (`/`,
//! `/events`, `/cameras/...` and the rest of [`PAGES`]) all answer `index.html`, uncached (an
//! ETag revalidates it), with the Content-Security-Policy that allows only this origin and no
//! inline script. `/` asked for with `Accept: application/json` (and not HTML) keeps the JSON
//! landing document the API had. Everything is sent gzip-compressed when the client accepts it
//! (every browser does), inflated otherwise.
//!
//! `ARGUS_WEB_DIR=web` serves the files from that directory instead, read on every request and
//! never cached: for working on the app without rebuilding the binary.

use crate::api::body::{full, Body};
use crate::error::{AppError, AppResult, ErrorKind};
use hyper::header::{
    HeaderMap, ACCEPT, ACCEPT_ENCODING, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_SECURITY_POLICY,
    CONTENT_TYPE, ETAG, IF_NONE_MATCH, VARY,
};
use hyper::{Method, Response, StatusCode};

/// One embedded file.
pub struct Asset {
    /// Relative to `web/`.
    pub path: &'static str,
    pub content_type: &'static str,
    /// A strong ETag (quoted), from the uncompressed content.
    pub etag: &'static str,
    /// Uncompressed length.
    pub len: usize,
    pub gzip: &'static [u8],
}

include!(concat!(env!("OUT_DIR"), "/web_assets.rs"));

/// The app's pages: each answers `index.html`, and the app shows the page for the path.
pub const PAGES: &[&str] = &[
    "/",
    "/login",
    "/events",
    "/live",
    "/cameras",
    "/protect",
    "/alerts",
    "/settings",
];

/// Only this origin, no inline script or style element, no framing, no plug-ins; video from this
/// origin (event clips) and from `blob:` (the live view's MediaSource).
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self' blob: data:; media-src 'self' blob:; connect-src 'self'; font-src 'self'; \
    manifest-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The asset at `path` (relative to `web/`).
pub fn asset(path: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.path == path)
}

/// True when `path` is one of the app's pages (or below one, like `/events/<id>`).
pub fn is_page(path: &str) -> bool {
    PAGES.iter().any(|p| {
        path == *p
            || (*p != "/"
                && path
                    .strip_prefix(p)
                    .is_some_and(|rest| rest.starts_with('/')))
    })
}

/// `/` for an API client that asks for JSON (and not HTML) keeps the JSON landing document.
fn wants_json(headers: &HeaderMap) -> bool {
    let accept = headers
        .get(ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    accept.contains("application/json") && !accept.contains("text/html")
}

fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|c| {
            let mut parts = c.split(';');
            let name = parts.next().unwrap_or("").trim();
            let q_zero = parts.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    == Some(0.0)
            });
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !q_zero
        })
}

fn not_modified(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| {
            let t = t.trim();
            t == "*" || t == etag || t.strip_prefix("W/") == Some(etag)
        })
}

/// The app's routes (its pages and `/app/...`); `None` for any other request, and for `/` asked
/// for as JSON.
pub async fn serve(
    method: &Method,
    path: &str,
    headers: &HeaderMap,
) -> Option<AppResult<Response<Body>>> {
    let file = if let Some(rest) = path.strip_prefix("/app/") {
        let (version, rel) = rest.split_once('/').unwrap_or((rest, ""));
        Some((rel.to_string(), version == VERSION))
    } else if is_page(path) && !(path == "/" && wants_json(headers)) {
        None
    } else {
        return None;
    };
    if method != Method::GET && method != Method::HEAD {
        return Some(Err(AppError::new(
            ErrorKind::MethodNotAllowed,
            format!("{method} is not allowed on {path}; use GET"),
        )
        .with_header("allow", "GET, HEAD")));
    }
    let (rel, immutable) = file.unwrap_or_else(|| ("index.html".to_string(), false));
    if let Some(dir) = std::env::var_os("ARGUS_WEB_DIR") {
        return Some(from_dir(std::path::Path::new(&dir), &rel).await);
    }
    let Some(a) = asset(&rel) else {
        return Some(Err(AppError::not_found(format!(
            "No file {path} in the web app"
        ))));
    };
    Some(Ok(respond(a, headers, immutable)))
}

fn respond(a: &Asset, headers: &HeaderMap, immutable: bool) -> Response<Body> {
    let cache = if immutable {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let mut b = Response::builder()
        .header(CONTENT_TYPE, a.content_type)
        .header(ETAG, a.etag)
        .header(CACHE_CONTROL, cache)
        .header(VARY, "Accept-Encoding");
    if a.path == "index.html" {
        b = b
            .header(CONTENT_SECURITY_POLICY, CSP)
            .header("x-frame-options", "DENY")
            .header("referrer-policy", "same-origin");
    }
    if not_modified(headers, a.etag) {
        return b
            .status(StatusCode::NOT_MODIFIED)
            .body(full(Vec::new()))
            .unwrap_or_default();
    }
    let body = if accepts_gzip(headers) {
        b = b.header(CONTENT_ENCODING, "gzip");
        full(a.gzip)
    } else {
        full(gunzip(a.gzip, a.len))
    };
    b.body(body).unwrap_or_default()
}

/// The uncompressed bytes of one of our own gzip members (written by `build.rs`).
fn gunzip(gz: &[u8], len: usize) -> Vec<u8> {
    let deflate = gz.get(10..gz.len().saturating_sub(8)).unwrap_or(&[]);
    let mut out = miniz_oxide::inflate::decompress_to_vec(deflate).unwrap_or_default();
    out.truncate(len);
    out
}

async fn from_dir(dir: &std::path::Path, rel: &str) -> AppResult<Response<Body>> {
    if rel.split('/').any(|s| s.is_empty() || s == "..") {
        return Err(AppError::not_found(format!("No file {rel} in the web app")));
    }
    let Ok(mut bytes) = tokio::fs::read(dir.join(rel)).await else {
        return Err(AppError::not_found(format!("No file {rel} in the web app")));
    };
    if rel == "index.html" {
        let text = String::from_utf8_lossy(&bytes).replace("{{APP}}", &format!("/app/{VERSION}"));
        bytes = text.into_bytes();
    }
    let ctype = super::mime::content_type(rel).unwrap_or("application/octet-stream");
    let mut b = Response::builder()
        .header(CONTENT_TYPE, ctype)
        .header(CACHE_CONTROL, "no-store");
    if rel == "index.html" {
        b = b.header(CONTENT_SECURITY_POLICY, CSP);
    }
    Ok(b.body(full(bytes)).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn every_embedded_file_inflates_to_its_length() {
        assert!(ASSETS.len() >= 5, "the app is embedded");
        for a in ASSETS {
            let raw = gunzip(a.gzip, a.len);
            assert_eq!(raw.len(), a.len, "{}", a.path);
            assert!(a.gzip.len() < a.len.max(64), "{} is compressed", a.path);
        }
        let index = String::from_utf8(gunzip(
            asset("index.html").unwrap().gzip,
            asset("index.html").unwrap().len,
        ))
        .unwrap();
        assert!(index.contains(&format!("/app/{VERSION}/")), "{index}");
        assert!(!index.contains("{{APP}}"));
    }

    #[test]
    fn pages_and_json_clients() {
        assert!(is_page("/"));
        assert!(is_page("/events/1234"));
        assert!(is_page("/settings"));
        assert!(!is_page("/eventsx"));
        assert!(!is_page("/api/v1/events"));
        assert!(wants_json(&headers(&[("accept", "application/json")])));
        assert!(!wants_json(&headers(&[(
            "accept",
            "text/html,application/json;q=0.9"
        )])));
        assert!(!wants_json(&headers(&[("accept", "*/*")])));
    }

    #[test]
    fn content_coding_and_conditional_requests() {
        assert!(accepts_gzip(&headers(&[(
            "accept-encoding",
            "gzip, deflate, br"
        )])));
        assert!(accepts_gzip(&headers(&[("accept-encoding", "*")])));
        assert!(!accepts_gzip(&headers(&[("accept-encoding", "gzip;q=0")])));
        assert!(!accepts_gzip(&headers(&[("accept-encoding", "identity")])));
        assert!(not_modified(
            &headers(&[("if-none-match", "\"a\", \"b\"")]),
            "\"b\""
        ));
        assert!(!not_modified(
            &headers(&[("if-none-match", "\"a\"")]),
            "\"b\""
        ));
    }
}
