//! The content type of each kind of file the web app has, by extension: one list for
//! `build.rs` (which embeds the app and refuses a file it has no type for) and for serving the
//! app from a directory while working on it.

/// The `Content-Type` for a file of the web app, `None` for an extension it does not use.
pub fn content_type(path: &str) -> Option<&'static str> {
    Some(match path.rsplit('.').next().unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "mjs" | "js" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "webmanifest" => "application/manifest+json",
        "png" => "image/png",
        "txt" => "text/plain; charset=utf-8",
        _ => return None,
    })
}
