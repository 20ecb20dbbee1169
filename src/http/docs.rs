//! The API documentation pages, served from assets embedded in the binary so they work on a LAN
//! with no internet: `/openapi.json`, Swagger UI at `/docs`, ReDoc at `/redoc`. The JavaScript
//! and CSS are stored gzip-compressed (see `assets/README.md`) and sent with
//! `Content-Encoding: gzip`.

use crate::api::body::{full, Body};
use crate::error::{AppError, AppResult};
use hyper::header::{CACHE_CONTROL, CONTENT_ENCODING, CONTENT_TYPE};
use hyper::{Method, Response};

const DOCS_HTML: &str = include_str!("assets/docs.html");
const REDOC_HTML: &str = include_str!("assets/redoc.html");
const SWAGGER_JS: &[u8] = include_bytes!("assets/swagger-ui-bundle.js.gz");
const SWAGGER_CSS: &[u8] = include_bytes!("assets/swagger-ui.css.gz");
const REDOC_JS: &[u8] = include_bytes!("assets/redoc.standalone.js.gz");

fn asset(ctype: &str, bytes: &'static [u8], gzip: bool) -> Response<Body> {
    let mut b = Response::builder().header(CONTENT_TYPE, ctype);
    if gzip {
        b = b
            .header(CONTENT_ENCODING, "gzip")
            .header(CACHE_CONTROL, "public, max-age=86400");
    }
    b.body(full(bytes)).expect("static headers are valid")
}

/// The documentation routes; `None` for any other path.
pub fn serve(path: &str, method: &Method) -> Option<AppResult<Response<Body>>> {
    let resp = match path {
        "/openapi.json" => asset(
            "application/json",
            crate::api::openapi::json().as_bytes(),
            false,
        ),
        "/docs" | "/docs/" => asset("text/html; charset=utf-8", DOCS_HTML.as_bytes(), false),
        "/redoc" | "/redoc/" => asset("text/html; charset=utf-8", REDOC_HTML.as_bytes(), false),
        "/docs/swagger-ui-bundle.js" => asset("text/javascript", SWAGGER_JS, true),
        "/docs/swagger-ui.css" => asset("text/css", SWAGGER_CSS, true),
        "/redoc/redoc.standalone.js" => asset("text/javascript", REDOC_JS, true),
        _ => return None,
    };
    if method != Method::GET && method != Method::HEAD {
        return Some(Err(AppError::new(
            crate::error::ErrorKind::MethodNotAllowed,
            format!("{method} is not allowed on {path}; use GET"),
        )
        .with_header("allow", "GET, HEAD")));
    }
    Some(Ok(resp))
}
