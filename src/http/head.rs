//! Request heads, read and checked before hyper sees them: the request line and headers are
//! parsed here with the server's own limits (URI length, head size, header count), and every
//! malformed head gets a JSON error (`400`, `414`, `431`, `505`) instead of hyper's empty one.
//! What passes is exactly what hyper would accept, so hyper never answers a head by itself.
//!
//! Also decides the request's framing (no body, `Content-Length: N`, chunked), which the
//! connection loop needs to know where the next request starts.

use crate::error::{AppError, ErrorKind};

/// Limits a head must fit in.
#[derive(Debug, Clone, Copy)]
pub struct HeadLimits {
    /// The whole head: request line and headers.
    pub max_head_bytes: usize,
    /// The request target (path and query).
    pub max_uri_bytes: usize,
    pub max_headers: usize,
}

/// How the request's body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// `Content-Length` (0 when absent).
    Length(u64),
    /// `Transfer-Encoding: chunked`: the end is known only to the body decoder.
    Chunked,
}

/// A complete, valid head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// Bytes of the head, including the blank line (and any empty lines before it).
    pub len: usize,
    pub framing: Framing,
    /// The client allows the connection to be reused after this request.
    pub keep_alive: bool,
    /// The request asks to switch protocols (`Upgrade:`).
    pub upgrade: bool,
}

/// The outcome of looking at the bytes received so far.
#[derive(Debug)]
pub enum Parsed {
    Complete(Head),
    /// More bytes are needed; the ones so far are within the limits.
    Partial,
}

fn bad(detail: &str) -> AppError {
    AppError::bad_request(format!("Malformed request: {detail}"))
}

fn too_large_head(limits: &HeadLimits) -> AppError {
    AppError::new(
        ErrorKind::HeaderFieldsTooLarge,
        format!(
            "Request headers are too large: at most {} bytes and {} header fields",
            limits.max_head_bytes, limits.max_headers
        ),
    )
}

fn uri_too_long(limits: &HeadLimits) -> AppError {
    AppError::new(
        ErrorKind::UriTooLong,
        format!(
            "Request target is longer than {} bytes",
            limits.max_uri_bytes
        ),
    )
}

/// Header slots parsed without a heap allocation (the default `max_headers` is 100).
const STACK_HEADERS: usize = 100;

/// Parses `buf`, which holds the bytes received since the request began.
pub fn parse(buf: &[u8], limits: &HeadLimits) -> Result<Parsed, AppError> {
    // The usual limit fits on the stack; a raised one goes to the heap.
    let mut stack = [httparse::EMPTY_HEADER; STACK_HEADERS];
    let mut heap = Vec::new();
    let headers: &mut [httparse::Header<'_>] = if limits.max_headers <= STACK_HEADERS {
        &mut stack[..limits.max_headers]
    } else {
        heap.resize(limits.max_headers, httparse::EMPTY_HEADER);
        &mut heap
    };
    let mut req = httparse::Request::new(headers);
    let status = req.parse(buf).map_err(|e| match e {
        httparse::Error::TooManyHeaders => too_large_head(limits),
        httparse::Error::Version => AppError::new(
            ErrorKind::VersionNotSupported,
            "Only HTTP/1.0 and HTTP/1.1 are spoken here",
        ),
        httparse::Error::Token if req.method.is_none() => bad("invalid method"),
        httparse::Error::Token => bad("invalid byte in the request target"),
        httparse::Error::HeaderName => bad("invalid byte in a header name"),
        httparse::Error::HeaderValue => bad("invalid byte in a header value"),
        httparse::Error::NewLine => bad("invalid line ending"),
        httparse::Error::Status => bad("invalid request line"),
    })?;
    let len = match status {
        httparse::Status::Partial => {
            // Refuse as early as possible: a request line that can no longer fit, or a head
            // that has already outgrown its limit.
            let line_end = buf.iter().position(|&b| b == b'\n');
            if line_end.is_none() && buf.len() > limits.max_uri_bytes + 64 {
                return Err(uri_too_long(limits));
            }
            if buf.len() > limits.max_head_bytes {
                return Err(too_large_head(limits));
            }
            return Ok(Parsed::Partial);
        }
        httparse::Status::Complete(n) => n,
    };
    let path = req.path.unwrap_or("");
    if path.len() > limits.max_uri_bytes {
        return Err(uri_too_long(limits));
    }
    if len > limits.max_head_bytes {
        return Err(too_large_head(limits));
    }
    let method = req.method.unwrap_or("");
    hyper::Method::from_bytes(method.as_bytes()).map_err(|_| bad("invalid method"))?;
    path.parse::<hyper::Uri>()
        .map_err(|_| bad("invalid request target"))?;
    let http11 = req.version == Some(1);
    let mut content_length: Option<u64> = None;
    let mut chunked = false;
    let mut transfer_encoding = false;
    let mut close = false;
    let mut keep_alive_token = false;
    let mut upgrade = false;
    for h in req.headers.iter() {
        hyper::header::HeaderValue::from_bytes(h.value)
            .map_err(|_| bad("invalid byte in a header value"))?;
        let name = h.name;
        if name.eq_ignore_ascii_case("content-length") {
            let n = digits(h.value).ok_or_else(|| bad("invalid Content-Length"))?;
            if content_length.is_some_and(|prev| prev != n) {
                return Err(bad("Content-Length headers that disagree"));
            }
            content_length = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            if !http11 {
                return Err(bad("Transfer-Encoding in an HTTP/1.0 request"));
            }
            transfer_encoding = true;
            // The last coding decides; only `chunked` can end a request body.
            chunked = std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.rsplit(',').next())
                .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"));
        } else if name.eq_ignore_ascii_case("connection") {
            for token in std::str::from_utf8(h.value).unwrap_or("").split(',') {
                let t = token.trim();
                close |= t.eq_ignore_ascii_case("close");
                keep_alive_token |= t.eq_ignore_ascii_case("keep-alive");
            }
        } else if name.eq_ignore_ascii_case("upgrade") {
            upgrade = http11;
        }
    }
    if transfer_encoding && !chunked {
        return Err(bad("Transfer-Encoding must end with chunked"));
    }
    if transfer_encoding && content_length.is_some() {
        // Either one could be what a proxy in front of us used: refuse rather than guess.
        return Err(bad("both Content-Length and Transfer-Encoding"));
    }
    let framing = if chunked {
        Framing::Chunked
    } else {
        Framing::Length(content_length.unwrap_or(0))
    };
    let keep_alive = !close && (http11 || keep_alive_token);
    Ok(Parsed::Complete(Head {
        len,
        framing,
        keep_alive,
        upgrade,
    }))
}

/// A decimal number of at most 18 digits (no sign, no spaces), as hyper reads lengths.
fn digits(v: &[u8]) -> Option<u64> {
    if v.is_empty() || v.len() > 18 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(v).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::StatusCode;

    const LIMITS: HeadLimits = HeadLimits {
        max_head_bytes: 4096,
        max_uri_bytes: 1024,
        max_headers: 10,
    };

    fn status(buf: &[u8]) -> StatusCode {
        parse(buf, &LIMITS).unwrap_err().status()
    }

    fn head(buf: &[u8]) -> Head {
        match parse(buf, &LIMITS).unwrap() {
            Parsed::Complete(h) => h,
            Parsed::Partial => panic!("partial"),
        }
    }

    #[test]
    fn framing_and_keep_alive() {
        let h = head(b"GET / HTTP/1.1\r\nHost: a\r\n\r\nnext");
        assert_eq!(h.len, 27);
        assert_eq!(h.framing, Framing::Length(0));
        assert!(h.keep_alive && !h.upgrade);
        let h = head(b"POST /x HTTP/1.1\r\nContent-Length: 12\r\ncontent-length: 12\r\n\r\n");
        assert_eq!(h.framing, Framing::Length(12));
        let h = head(b"POST /x HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n");
        assert_eq!(h.framing, Framing::Chunked);
        assert!(!head(b"GET / HTTP/1.1\r\nConnection: keep-alive, close\r\n\r\n").keep_alive);
        assert!(!head(b"GET / HTTP/1.0\r\n\r\n").keep_alive);
        assert!(head(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").keep_alive);
        assert!(head(b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\n\r\n").upgrade);
        // Empty lines before a request are skipped, as RFC 9112 allows.
        assert_eq!(head(b"\r\nGET / HTTP/1.1\r\n\r\n").len, 20);
    }

    #[test]
    fn partial_heads_wait_within_limits() {
        assert!(matches!(
            parse(b"GET /abc HTTP/1.1\r\nHost:", &LIMITS),
            Ok(Parsed::Partial)
        ));
        let long_line = [b"GET /".as_slice(), &[b'a'; 1200]].concat();
        assert_eq!(
            parse(&long_line, &LIMITS).unwrap_err().status(),
            StatusCode::URI_TOO_LONG
        );
        let mut big = b"GET / HTTP/1.1\r\nX-A: ".to_vec();
        big.extend(std::iter::repeat_n(b'a', 5000));
        assert_eq!(
            parse(&big, &LIMITS).unwrap_err().status(),
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
        );
    }

    #[test]
    fn malformed_heads_get_the_right_status() {
        let long = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(1100));
        assert_eq!(status(long.as_bytes()), StatusCode::URI_TOO_LONG);
        let many: String = (0..11).map(|i| format!("X-{i}: v\r\n")).collect();
        let many = format!("GET / HTTP/1.1\r\n{many}\r\n");
        assert_eq!(
            status(many.as_bytes()),
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
        );
        assert_eq!(
            status(b"GET /\xff HTTP/1.1\r\n\r\n"),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(status(b"GET /\0 HTTP/1.1\r\n\r\n"), StatusCode::BAD_REQUEST);
        assert_eq!(
            status(b"G\x01T / HTTP/1.1\r\n\r\n"),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            status(b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            status(b"POST / HTTP/1.1\r\nContent-Length: +1\r\n\r\n"),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            status(b"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            status(b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n"),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            status(b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            status(b"GET / HTTP/1.1\r\nX-A: a\x7fb\r\n\r\n"),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            status(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
            StatusCode::HTTP_VERSION_NOT_SUPPORTED
        );
    }
}
