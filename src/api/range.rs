//! HTTP byte ranges (RFC 9110 §14) for media downloads: which part of a resource of a known
//! length a `Range` header asks for, and whether an `If-Range` validator still allows it.
//!
//! One range (`bytes=a-b`, `bytes=a-`, the suffix `bytes=-n`) is served as asked (the end
//! clipped to the resource); several ranges are answered with the whole resource (no
//! `multipart/byteranges`: browsers and players ask for one); a range that starts past the end,
//! a zero-length suffix and a malformed header are unsatisfiable (416). A header for another
//! unit than `bytes` is ignored, as the RFC requires.

/// What to send for a request's `Range` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ranged {
    /// The whole resource (200).
    Whole,
    /// Bytes `start..=end` (206); `end` is within the resource.
    Part { start: u64, end: u64 },
    /// Nothing can be sent (416 with `Content-Range: bytes */LEN`).
    Unsatisfiable,
}

impl Ranged {
    /// `Content-Range` of a part: `bytes START-END/LEN`.
    pub fn content_range(start: u64, end: u64, len: u64) -> String {
        format!("bytes {start}-{end}/{len}")
    }
}

/// One byte-range spec as written.
enum Spec {
    /// `first-` or `first-last`.
    From(u64, Option<u64>),
    /// `-n`: the last n bytes.
    Suffix(u64),
}

/// A run of ASCII digits as a number (saturating: a number past `u64` is just very large).
fn digits(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(s.bytes().fold(0u64, |n, b| {
        n.saturating_mul(10).saturating_add(u64::from(b - b'0'))
    }))
}

fn spec(s: &str) -> Option<Spec> {
    let (first, last) = s.split_once('-')?;
    let (first, last) = (first.trim(), last.trim());
    if first.is_empty() {
        return digits(last).map(Spec::Suffix);
    }
    let first = digits(first)?;
    if last.is_empty() {
        return Some(Spec::From(first, None));
    }
    let last = digits(last)?;
    // A last position before the first makes the spec invalid, not empty.
    (last >= first).then_some(Spec::From(first, Some(last)))
}

/// Reads a `Range` header value for a resource of `len` bytes.
pub fn parse(header: &str, len: u64) -> Ranged {
    let header = header.trim();
    let Some((unit, set)) = header.split_once('=') else {
        return Ranged::Unsatisfiable;
    };
    if !unit.trim().eq_ignore_ascii_case("bytes") {
        return Ranged::Whole;
    }
    let mut specs = Vec::new();
    // Empty list elements are allowed (`bytes=0-1,`), as in every HTTP list.
    for part in set.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match spec(part) {
            Some(s) => specs.push(s),
            None => return Ranged::Unsatisfiable,
        }
    }
    match specs.as_slice() {
        [] => Ranged::Unsatisfiable,
        [one] => resolve(one, len),
        _ => Ranged::Whole,
    }
}

fn resolve(s: &Spec, len: u64) -> Ranged {
    if len == 0 {
        return Ranged::Unsatisfiable;
    }
    match *s {
        Spec::From(first, _) if first >= len => Ranged::Unsatisfiable,
        Spec::From(first, last) => Ranged::Part {
            start: first,
            end: last.map_or(len - 1, |l| l.min(len - 1)),
        },
        Spec::Suffix(0) => Ranged::Unsatisfiable,
        Spec::Suffix(n) => Ranged::Part {
            start: len.saturating_sub(n),
            end: len - 1,
        },
    }
}

/// True when an `If-Range` value lets the range be served: it is the resource's current
/// strong ETag. A weak tag, another tag or a date (this server sends no `Last-Modified`)
/// means "send the whole resource".
pub fn if_range_allows(if_range: &str, etag: &str) -> bool {
    let v = if_range.trim();
    !v.starts_with("W/") && v == etag
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEN: u64 = 1000;

    fn part(start: u64, end: u64) -> Ranged {
        Ranged::Part { start, end }
    }

    #[test]
    fn one_range_from_first_to_last() {
        assert_eq!(parse("bytes=0-99", LEN), part(0, 99));
        assert_eq!(parse("bytes=100-199", LEN), part(100, 199));
        assert_eq!(parse("bytes=999-999", LEN), part(999, 999));
        assert_eq!(parse("bytes=0-0", LEN), part(0, 0));
        // The end is clipped to the resource.
        assert_eq!(parse("bytes=500-5000", LEN), part(500, 999));
        assert_eq!(
            parse("bytes=0-99999999999999999999999", LEN),
            part(0, 999),
            "a last position past u64 is just large"
        );
    }

    #[test]
    fn open_ended_and_suffix_ranges() {
        assert_eq!(parse("bytes=0-", LEN), part(0, 999));
        assert_eq!(parse("bytes=990-", LEN), part(990, 999));
        assert_eq!(parse("bytes=-500", LEN), part(500, 999));
        assert_eq!(parse("bytes=-1", LEN), part(999, 999));
        // A suffix longer than the resource is the whole resource, as a part.
        assert_eq!(parse("bytes=-5000", LEN), part(0, 999));
    }

    #[test]
    fn unsatisfiable_ranges() {
        assert_eq!(parse("bytes=1000-", LEN), Ranged::Unsatisfiable);
        assert_eq!(parse("bytes=1000-1001", LEN), Ranged::Unsatisfiable);
        assert_eq!(parse("bytes=999999999-", LEN), Ranged::Unsatisfiable);
        assert_eq!(
            parse("bytes=99999999999999999999999-", LEN),
            Ranged::Unsatisfiable
        );
        assert_eq!(parse("bytes=-0", LEN), Ranged::Unsatisfiable);
        // An empty resource has no bytes to give.
        assert_eq!(parse("bytes=0-", 0), Ranged::Unsatisfiable);
        assert_eq!(parse("bytes=-10", 0), Ranged::Unsatisfiable);
    }

    #[test]
    fn malformed_headers_are_unsatisfiable() {
        for h in [
            "bytes=abc",
            "bytes=",
            "bytes=,",
            "bytes=-",
            "bytes=5",
            "bytes=10-5",
            "bytes=+1-2",
            "bytes=1-2-3",
            "bytes=0x10-",
            "bytes=1 0-20",
            "bytes=-1-2",
            "bytes=0-99,abc",
            "bytes 0-99",
            "",
        ] {
            assert_eq!(parse(h, LEN), Ranged::Unsatisfiable, "{h:?}");
        }
    }

    #[test]
    fn several_ranges_get_the_whole_resource() {
        assert_eq!(parse("bytes=0-99,200-299", LEN), Ranged::Whole);
        assert_eq!(parse("bytes=0-1, -5", LEN), Ranged::Whole);
        // Even when one of them alone would not be satisfiable.
        assert_eq!(parse("bytes=0-1,5000-", LEN), Ranged::Whole);
    }

    #[test]
    fn spacing_case_and_empty_elements_are_tolerated() {
        assert_eq!(parse("  bytes=0-99  ", LEN), part(0, 99));
        assert_eq!(parse("Bytes=0-99", LEN), part(0, 99));
        assert_eq!(parse("bytes= 0 - 99", LEN), part(0, 99));
        assert_eq!(parse("bytes=0-99,", LEN), part(0, 99));
        assert_eq!(parse("bytes=,-10", LEN), part(990, 999));
    }

    #[test]
    fn other_units_are_ignored() {
        assert_eq!(parse("items=0-5", LEN), Ranged::Whole);
        assert_eq!(parse("none=", LEN), Ranged::Whole);
    }

    #[test]
    fn content_range_and_if_range() {
        assert_eq!(Ranged::content_range(0, 99, 1000), "bytes 0-99/1000");
        let tag = "\"abc-123\"";
        assert!(if_range_allows("\"abc-123\"", tag));
        assert!(if_range_allows(" \"abc-123\" ", tag));
        assert!(
            !if_range_allows("W/\"abc-123\"", tag),
            "weak tags never match"
        );
        assert!(!if_range_allows("\"other\"", tag));
        assert!(!if_range_allows("Wed, 21 Oct 2015 07:28:00 GMT", tag));
    }
}
