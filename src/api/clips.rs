//! `GET /events/{id}/clip`: an event's MP4 clip, with byte ranges (so browsers and players
//! seek), a strong ETag and `If-Range`, streamed from the file in chunks (never read whole).
//! A clip file is written once and moved into place whole, so its size and modification time
//! identify its content.

use super::range::{self, Ranged};
use super::{check_uuid, Ctx};
use crate::api::body::{empty, Body, BoxError};
use crate::error::{AppError, AppResult, ErrorKind};
use crate::store::events as rows;
use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{
    ACCEPT_RANGES, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, ETAG, IF_NONE_MATCH,
    IF_RANGE, RANGE,
};
use hyper::{Method, Request, Response, StatusCode};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

/// Bytes read from the file per body chunk.
const CHUNK: usize = 64 * 1024;

/// The event's video clip (MP4).
#[utoipa::path(get, path = "/api/v1/events/{id}/clip", tag = "events",
    params(("id" = String, Path, description = "Event id"),
        ("Range" = Option<String>, Header, description = "One byte range: `bytes=A-B`, `bytes=A-` or the suffix `bytes=-N`; several ranges get the whole file"),
        ("If-Range" = Option<String>, Header, description = "The clip's ETag: the range is served only if the clip is still that one"),
        ("If-None-Match" = Option<String>, Header, description = "An ETag: 304 when the clip is unchanged")),
    responses((status = 200, content_type = "video/mp4", description = "The whole clip (fast-start MP4, H.264 as the camera sent it); `Accept-Ranges: bytes`, a strong `ETag`, `Cache-Control: private, no-cache`"),
        (status = 206, content_type = "video/mp4", description = "The requested range, with `Content-Range: bytes A-B/LEN`"),
        (status = 304, description = "Unchanged since the ETag sent in If-None-Match"),
        (status = 401, body = super::ErrorBody),
        (status = 403, body = super::ErrorBody, description = "Missing read:events, or a signed media link that is tampered with or expired"),
        (status = 404, body = super::ErrorBody, description = "No such event, or it has no clip (yet)"),
        (status = 416, body = super::ErrorBody, description = "The range is malformed or starts past the end; `Content-Range: bytes */LEN`")),
    security(("api_key" = ["read:events"]), ("bearer" = [])))]
pub async fn clip(ctx: Ctx, req: Request<Incoming>) -> AppResult<Response<Body>> {
    let id = ctx.param("id").to_string();
    check_uuid("Event", &id)?;
    let row = ctx.state.store.read(move |c| rows::get(c, &id)).await?;
    let rel = row
        .clip_path
        .ok_or_else(|| AppError::not_found("This event has no clip"))?;
    let path = ctx.state.cfg.data_dir.join(&rel);
    let mut file = tokio::fs::File::open(&path).await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            AppError::not_found("The clip file is missing")
        } else {
            AppError::internal(e)
        }
    })?;
    let meta = file.metadata().await.map_err(AppError::internal)?;
    let len = meta.len();
    let etag = etag(len, meta.modified().ok());
    let h = req.headers();
    let base = Response::builder()
        .header(CONTENT_TYPE, "video/mp4")
        .header(ACCEPT_RANGES, "bytes")
        .header(CACHE_CONTROL, "private, no-cache")
        .header(ETAG, &etag);
    if h.get(IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| none_match(v, &etag))
    {
        return Ok(base
            .status(StatusCode::NOT_MODIFIED)
            .body(empty())
            .expect("static headers are valid"));
    }
    let ranges: Vec<&str> = h
        .get_all(RANGE)
        .iter()
        .map(|v| v.to_str().unwrap_or(""))
        .collect();
    let applies = h
        .get(IF_RANGE)
        .is_none_or(|v| range::if_range_allows(v.to_str().unwrap_or(""), &etag));
    let wanted = match ranges.as_slice() {
        _ if !applies => Ranged::Whole,
        [] => Ranged::Whole,
        [one] => range::parse(one, len),
        // Two `Range` fields are one list of ranges.
        _ => range::parse(&ranges.join(","), len),
    };
    let (status, start, count, b) = match wanted {
        Ranged::Whole => (StatusCode::OK, 0, len, base),
        Ranged::Part { start, end } => (
            StatusCode::PARTIAL_CONTENT,
            start,
            end - start + 1,
            base.header(CONTENT_RANGE, Ranged::content_range(start, end, len)),
        ),
        Ranged::Unsatisfiable => {
            return Err(AppError::new(
                ErrorKind::RangeNotSatisfiable,
                format!(
                    "Range: not satisfiable for a clip of {len} bytes (use bytes=A-B, A- or -N)"
                ),
            )
            .with_header("content-range", format!("bytes */{len}"))
            .with_header("accept-ranges", "bytes"));
        }
    };
    let b = b.status(status).header(CONTENT_LENGTH, count);
    if req.method() == Method::HEAD {
        return Ok(b.body(empty()).expect("static headers are valid"));
    }
    if start > 0 {
        file.seek(std::io::SeekFrom::Start(start))
            .await
            .map_err(AppError::internal)?;
    }
    Ok(b.body(stream(file, count))
        .expect("static headers are valid"))
}

/// A strong ETag from what identifies a clip file's content.
fn etag(len: u64, modified: Option<std::time::SystemTime>) -> String {
    let ns = modified
        .and_then(|m| m.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    format!("\"{len:x}-{ns:x}\"")
}

/// `If-None-Match` (weak comparison): any listed tag, or `*`.
fn none_match(header: &str, etag: &str) -> bool {
    header
        .split(',')
        .map(str::trim)
        .any(|t| t == "*" || t.strip_prefix("W/").unwrap_or(t) == etag)
}

/// `count` bytes of `file` from where it stands, in chunks of [`CHUNK`]. A file that ends
/// early (it cannot: clips are never rewritten) fails the body rather than sending short.
fn stream(file: tokio::fs::File, count: u64) -> Body {
    let chunks = futures_util::stream::unfold((file, count), |(mut file, left)| async move {
        if left == 0 {
            return None;
        }
        let want = left.min(CHUNK as u64) as usize;
        let mut buf = BytesMut::zeroed(want);
        let item: Result<Frame<Bytes>, BoxError> = match file.read(&mut buf).await {
            Ok(0) => Err("the clip file ended early".into()),
            Ok(n) => {
                buf.truncate(n);
                Ok(Frame::data(buf.freeze()))
            }
            Err(e) => Err(Box::new(e)),
        };
        match item {
            Ok(f) => {
                let n = f.data_ref().map_or(0, |d| d.len() as u64);
                Some((Ok(f), (file, left - n)))
            }
            // End after the error: nothing more to read.
            Err(e) => Some((Err(e), (file, 0))),
        }
    });
    StreamBody::new(chunks).boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_follow_size_and_time_and_match_weakly_for_304() {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_nanos(0x1234);
        let tag = etag(0x10, Some(t));
        assert_eq!(tag, "\"10-1234\"");
        assert_ne!(tag, etag(0x11, Some(t)));
        assert!(none_match(&tag, &tag));
        assert!(none_match(&format!("\"x\", W/{tag}"), &tag));
        assert!(none_match("*", &tag));
        assert!(!none_match("\"x\"", &tag));
    }

    #[tokio::test]
    async fn the_body_is_the_bytes_asked_for_in_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.mp4");
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&p, &data).unwrap();
        let mut f = tokio::fs::File::open(&p).await.unwrap();
        f.seek(std::io::SeekFrom::Start(1000)).await.unwrap();
        let mut body = stream(f, 150_000);
        let mut got = Vec::new();
        let mut frames = 0;
        while let Some(fr) = body.frame().await {
            let d = fr.unwrap().into_data().unwrap();
            assert!(d.len() <= CHUNK);
            got.extend_from_slice(&d);
            frames += 1;
        }
        assert_eq!(got, &data[1000..151_000]);
        assert!(frames >= 3, "{frames} chunks");
        // Asking for more than the file holds fails instead of ending short.
        let f = tokio::fs::File::open(&p).await.unwrap();
        let mut body = stream(f, 300_000);
        let mut failed = false;
        while let Some(fr) = body.frame().await {
            if fr.is_err() {
                failed = true;
            }
        }
        assert!(failed);
    }
}
