//! Webhook signatures (HMAC-SHA256 over the timestamp and body, sent as
//! `X-Argus-Signature: t=<unix seconds>,v1=<hex>`), webhook secrets, the checks on a webhook's
//! target (URL, address after DNS, extra headers) and the signed, expiring media links that
//! webhook bodies carry. Pure: no I/O and no clock; the caller gives the time.

use crate::crypto::{ct_eq, random_bytes};
use base64::Engine;
use ring::hmac;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The longest webhook URL accepted.
pub const MAX_URL_CHARS: usize = 2000;
/// At most this many extra headers per webhook.
pub const MAX_HEADERS: usize = 20;
pub const MAX_HEADER_NAME_CHARS: usize = 100;
pub const MAX_HEADER_VALUE_CHARS: usize = 1000;

/// Headers the appliance sets itself (or that would change how the request is framed or
/// routed), refused as extra headers. Lower case.
pub const RESERVED_HEADERS: [&str; 14] = [
    "host",
    "content-length",
    "content-type",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "upgrade",
    "expect",
    "x-argus-signature",
    "x-argus-timestamp",
    "x-argus-delivery",
];

fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> hmac::Tag {
    let mut ctx = hmac::Context::with_key(&hmac::Key::new(hmac::HMAC_SHA256, key));
    for p in parts {
        ctx.update(p);
    }
    ctx.sign()
}

/// HMAC-SHA256 of `"{timestamp_s}.{body}"` under `secret`, in lower-case hex. The secret is
/// the bytes of the string the user was shown (`whsec_...` included), so a receiver computes
/// `hmac(secret.encode(), f"{t}.".encode() + body, sha256)`.
pub fn webhook_signature(secret: &[u8], timestamp_s: i64, body: &[u8]) -> String {
    let tag = hmac_sha256(secret, &[timestamp_s.to_string().as_bytes(), b".", body]);
    let mut hex = String::with_capacity(64);
    for b in tag.as_ref() {
        let _ = write!(hex, "{b:02x}");
    }
    hex
}

/// The `X-Argus-Signature` value: `t={timestamp_s},v1={hex}`.
pub fn signature_header(secret: &[u8], timestamp_s: i64, body: &[u8]) -> String {
    format!(
        "t={timestamp_s},v1={}",
        webhook_signature(secret, timestamp_s, body)
    )
}

/// Checks a signature header as a receiver would (and as the tests and the webhook test page
/// do): one `t=`, one or more `v1=` (any may match), the timestamp within `tolerance_s` of
/// `now_s` either way, compared in constant time. Unknown parts are ignored.
pub fn verify_signature_header(
    secret: &[u8],
    header: &str,
    body: &[u8],
    now_s: i64,
    tolerance_s: i64,
) -> bool {
    let mut t = None;
    let mut sigs = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => {
                if t.is_some() {
                    return false;
                }
                match v.parse::<i64>() {
                    Ok(v) => t = Some(v),
                    Err(_) => return false,
                }
            }
            Some(("v1", v)) => sigs.push(v.to_ascii_lowercase()),
            _ => {}
        }
    }
    let Some(t) = t else { return false };
    if now_s.abs_diff(t) > tolerance_s.max(0) as u64 {
        return false;
    }
    let want = webhook_signature(secret, t, body);
    sigs.iter().any(|s| ct_eq(s.as_bytes(), want.as_bytes()))
}

/// A new signing secret: `whsec_` and 32 random bytes in unpadded base64url (49 characters).
pub fn new_webhook_secret() -> String {
    format!(
        "whsec_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes::<32>())
    )
}

/// Why an address is never a webhook target, if it is not. Loopback, private and other LAN
/// addresses are fine (Home Assistant and Node-RED live there); what is refused has no single
/// receiver (multicast, broadcast, unspecified) or is the link-local range, where cloud
/// metadata services and unconfigured devices answer. An IPv4-mapped IPv6 address is judged as
/// its IPv4 address.
fn refused_kind(ip: IpAddr) -> Option<&'static str> {
    fn v4(a: Ipv4Addr) -> Option<&'static str> {
        if a.is_link_local() {
            Some("a link-local")
        } else if a.is_multicast() {
            Some("a multicast")
        } else if a.is_broadcast() {
            Some("the broadcast")
        } else if a.octets()[0] == 0 {
            Some("an unspecified")
        } else {
            None
        }
    }
    fn v6(a: Ipv6Addr) -> Option<&'static str> {
        if let Some(m) = a.to_ipv4_mapped() {
            v4(m)
        } else if a.segments()[0] & 0xffc0 == 0xfe80 {
            Some("a link-local")
        } else if a.is_multicast() {
            Some("a multicast")
        } else if a.is_unspecified() {
            Some("an unspecified")
        } else {
            None
        }
    }
    match ip {
        IpAddr::V4(a) => v4(a),
        IpAddr::V6(a) => v6(a),
    }
}

/// The address rule of [`check_webhook_url`], for each address a host name resolves to at send
/// time (a name can point anywhere).
pub fn check_resolved_addr(ip: IpAddr) -> Result<(), String> {
    match refused_kind(ip) {
        Some(kind) => Err(format!(
            "{ip} is {kind} address; webhooks are not sent there"
        )),
        None => Ok(()),
    }
}

/// Checks a webhook URL; errors start with `field` (`actions.webhook.url`, or `url` for the
/// test endpoint). At most 2000 characters, http or https, a host, no user name or password
/// (put credentials in a header), no spaces or control characters; an IP-literal host must
/// pass [`check_resolved_addr`]. Host names are checked again once resolved.
pub fn check_webhook_url(s: &str, field: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err(format!("{field}: a URL is required"));
    }
    if s.chars().count() > MAX_URL_CHARS {
        return Err(format!("{field}: at most {MAX_URL_CHARS} characters"));
    }
    if s.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(format!(
            "{field}: no spaces or control characters (percent-encode them)"
        ));
    }
    let scheme_ok = s.split_once(':').is_some_and(|(scheme, _)| {
        matches!(scheme.to_ascii_lowercase().as_str(), "http" | "https")
    });
    if !scheme_ok {
        return Err(format!("{field}: use an http:// or https:// URL"));
    }
    let url = match url::Url::parse(s) {
        Ok(u) => u,
        Err(url::ParseError::EmptyHost) => return Err(format!("{field}: the URL needs a host")),
        Err(e) => return Err(format!("{field}: not a valid URL ({e})")),
    };
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!(
            "{field}: no user name or password in the URL (send credentials in a header)"
        ));
    }
    let ip = match url.host() {
        None => return Err(format!("{field}: the URL needs a host")),
        Some(url::Host::Domain(_)) => return Ok(()),
        Some(url::Host::Ipv4(a)) => IpAddr::V4(a),
        Some(url::Host::Ipv6(a)) => IpAddr::V6(a),
    };
    check_resolved_addr(ip).map_err(|e| format!("{field}: {e}"))
}

/// An RFC 7230 `tchar`.
fn is_tchar(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

/// Checks a webhook's extra headers; errors start with `field` and name the header
/// (`actions.webhook.headers["X-Bad\r\n"]: ...`). At most 20; names are HTTP tokens of 1 to 100
/// characters, not one of [`RESERVED_HEADERS`] and not given twice in different cases; values
/// are at most 1000 characters with no control character but tab.
pub fn check_headers(h: &BTreeMap<String, String>, field: &str) -> Result<(), String> {
    if h.len() > MAX_HEADERS {
        return Err(format!("{field}: at most {MAX_HEADERS} headers"));
    }
    let mut seen = std::collections::HashSet::new();
    for (name, value) in h {
        let at = format!("{field}[{name:?}]");
        let n = name.chars().count();
        if n == 0 || n > MAX_HEADER_NAME_CHARS {
            return Err(format!(
                "{at}: header names are 1 to {MAX_HEADER_NAME_CHARS} characters"
            ));
        }
        if !name.chars().all(is_tchar) {
            return Err(format!(
                "{at}: header names are letters, digits and !#$%&'*+-.^_`|~"
            ));
        }
        let lower = name.to_ascii_lowercase();
        if RESERVED_HEADERS.contains(&lower.as_str()) {
            return Err(format!("{at}: argus sets this header itself"));
        }
        if !seen.insert(lower) {
            return Err(format!("{at}: given twice (header names ignore case)"));
        }
        if value.chars().count() > MAX_HEADER_VALUE_CHARS {
            return Err(format!(
                "{at}: values are at most {MAX_HEADER_VALUE_CHARS} characters"
            ));
        }
        if value.chars().any(|c| c.is_control() && c != '\t') {
            return Err(format!(
                "{at}: values cannot contain CR, LF, NUL or other control characters"
            ));
        }
    }
    Ok(())
}

/// Why a media link is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaRefusal {
    /// Well signed, but past its expiry.
    Expired,
    /// Not signed by this appliance for this event and expiry (or not base64url).
    BadSignature,
}

/// The signature of a media link: HMAC-SHA256 of `"media:{event_id}:{expires_s}"` under `key`,
/// unpadded base64url.
pub fn media_signature(key: &[u8], event_id: &str, expires_s: i64) -> String {
    let msg = format!("media:{event_id}:{expires_s}");
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(hmac_sha256(key, &[msg.as_bytes()]).as_ref())
}

/// Checks a media link's signature (constant time), then its expiry: valid while
/// `now_s < expires_s`.
pub fn verify_media(
    key: &[u8],
    event_id: &str,
    expires_s: i64,
    sig: &str,
    now_s: i64,
) -> Result<(), MediaRefusal> {
    let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(sig)
        .map_err(|_| MediaRefusal::BadSignature)?;
    let msg = format!("media:{event_id}:{expires_s}");
    hmac::verify(
        &hmac::Key::new(hmac::HMAC_SHA256, key),
        msg.as_bytes(),
        &sig,
    )
    .map_err(|_| MediaRefusal::BadSignature)?;
    if now_s >= expires_s {
        return Err(MediaRefusal::Expired);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"whsec_test-secret";
    const BODY: &[u8] = br#"{"event_id":"e1"}"#;
    const TS: i64 = 1_700_000_000;
    /// `python3 -c 'import hmac,hashlib;print(hmac.new(b"whsec_test-secret",
    /// b"1700000000.{\"event_id\":\"e1\"}",hashlib.sha256).hexdigest())'`
    const WANT: &str = "27f26900dffbe351ecffd5f2cf467a8eb03bf057d058c958ae174333f8b85820";

    #[test]
    fn webhook_signature_matches_an_independent_hmac() {
        assert_eq!(webhook_signature(SECRET, TS, BODY), WANT);
        assert_eq!(
            signature_header(SECRET, TS, BODY),
            format!("t=1700000000,v1={WANT}")
        );
        assert_ne!(webhook_signature(SECRET, TS + 1, BODY), WANT);
        assert_ne!(webhook_signature(b"whsec_other", TS, BODY), WANT);
    }

    #[test]
    fn signature_headers_verify() {
        let h = signature_header(SECRET, TS, BODY);
        assert!(verify_signature_header(SECRET, &h, BODY, TS, 300));
        assert!(verify_signature_header(SECRET, &h, BODY, TS + 300, 300));
        assert!(verify_signature_header(SECRET, &h, BODY, TS - 300, 300));
        assert!(
            !verify_signature_header(SECRET, &h, BODY, TS + 301, 300),
            "too old"
        );
        assert!(
            !verify_signature_header(SECRET, &h, BODY, TS - 301, 300),
            "future"
        );
        assert!(
            !verify_signature_header(SECRET, &h, b"{}", TS, 300),
            "other body"
        );
        assert!(
            !verify_signature_header(b"other", &h, BODY, TS, 300),
            "other key"
        );
        // Rotation: any v1 may match; spaces and unknown parts are fine.
        let rotated = format!("t={TS}, v0=abc, v1={}, v1={WANT}", "0".repeat(64));
        assert!(verify_signature_header(SECRET, &rotated, BODY, TS, 300));
        assert!(verify_signature_header(
            SECRET,
            &format!("t={TS},v1={}", WANT.to_uppercase()),
            BODY,
            TS,
            300
        ));
        for bad in [
            format!("v1={WANT}"),
            format!("t={TS}"),
            format!("t=x,v1={WANT}"),
            format!("t={TS},t={TS},v1={WANT}"),
            format!("t={TS},v1={}", &WANT[..63]),
            String::new(),
        ] {
            assert!(
                !verify_signature_header(SECRET, &bad, BODY, TS, 300),
                "{bad}"
            );
        }
    }

    #[test]
    fn secrets_are_random_and_url_safe() {
        let s = new_webhook_secret();
        assert_eq!(s.len(), 6 + 43);
        let rest = s.strip_prefix("whsec_").unwrap();
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(rest)
            .unwrap();
        assert_eq!(raw.len(), 32);
        assert_ne!(new_webhook_secret(), s);
    }

    const F: &str = "actions.webhook.url";

    fn url_err(s: &str) -> String {
        check_webhook_url(s, F).unwrap_err()
    }

    #[test]
    fn lan_and_public_webhook_urls_pass() {
        for ok in [
            "https://homeassistant.local:8123/api/webhook/x",
            "http://192.168.1.10:1880/x",
            "http://10.0.0.2/hook",
            "http://172.16.5.4:8080/",
            "http://127.0.0.1:9000/x",
            "http://localhost/x",
            "https://hooks.example.com/services/T0/B0/xyz?token=a&b=c",
            "HTTPS://Example.COM/Path",
            "http://[::1]:8080/x",
            "http://[fd00::10]/x",
            "http://[2001:db8::1]/x",
            "http://[::ffff:192.168.1.10]/x",
        ] {
            assert_eq!(check_webhook_url(ok, F), Ok(()), "{ok}");
        }
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_CHARS - 20));
        assert_eq!(long.len(), MAX_URL_CHARS);
        assert_eq!(check_webhook_url(&long, F), Ok(()));
    }

    #[test]
    fn bad_webhook_urls_are_refused_with_the_field_name() {
        let cases = [
            ("", "a URL is required"),
            ("ftp://example.com/x", "http:// or https://"),
            ("file:///etc/passwd", "http:// or https://"),
            ("javascript:alert(1)", "http:// or https://"),
            ("homeassistant.local:8123/api", "http:// or https://"),
            ("//example.com/x", "http:// or https://"),
            ("http://", "needs a host"),
            ("http:///", "needs a host"),
            ("http://user:pw@host/", "user name or password"),
            ("http://user@host/", "user name or password"),
            ("http://example.com/a b", "no spaces"),
            ("http://example.com/a\nb", "no spaces"),
            ("http://exa mple.com/", "no spaces"),
            ("http://[fe80::1]/", "fe80::1 is a link-local address"),
            ("http://[FE80::abcd:1]:8080/", "link-local"),
            ("http://[febf::1]/", "link-local"),
            (
                "http://169.254.169.254/",
                "169.254.169.254 is a link-local address",
            ),
            ("http://169.254.0.1:80/latest", "link-local"),
            ("http://[::ffff:169.254.169.254]/", "link-local"),
            ("http://[::ffff:a9fe:a9fe]/", "link-local"),
            ("http://224.0.0.1/", "multicast"),
            ("http://239.255.255.250:1900/", "multicast"),
            ("http://[ff02::1]/", "multicast"),
            ("http://255.255.255.255/", "broadcast"),
            ("http://0.0.0.0:8000/", "unspecified"),
            ("http://[::]/", "unspecified"),
            ("http://[::ffff:0.0.0.0]/", "unspecified"),
            // Numeric host spellings are read as the address they are.
            ("http://2852039166/", "link-local"),
            ("http://0xa9.0xfe.0xa9.0xfe/", "link-local"),
            ("http://[fe80::1/", "not a valid URL"),
            ("http://example.com:99999/", "not a valid URL"),
        ];
        for (s, want) in cases {
            let e = url_err(s);
            assert!(e.starts_with("actions.webhook.url: "), "{s}: {e}");
            assert!(e.contains(want), "{s}: {e}");
        }
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_CHARS));
        assert!(url_err(&long).contains("at most 2000"));
        // The test endpoint names its own field.
        assert!(check_webhook_url("ftp://x", "url")
            .unwrap_err()
            .starts_with("url: "));
    }

    #[test]
    fn resolved_addresses_follow_the_same_rule() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        for ok in [
            "192.168.1.10",
            "10.1.2.3",
            "127.0.0.1",
            "8.8.8.8",
            "::1",
            "fd12::1",
            "2001:db8::2",
            "::ffff:10.0.0.1",
            "fec0::1",
        ] {
            assert_eq!(check_resolved_addr(ip(ok)), Ok(()), "{ok}");
        }
        for bad in [
            "169.254.169.254",
            "224.0.0.251",
            "255.255.255.255",
            "0.0.0.0",
            "fe80::1",
            "ff05::2",
            "::",
            "::ffff:169.254.1.1",
            "::ffff:224.0.0.1",
        ] {
            let e = check_resolved_addr(ip(bad)).unwrap_err();
            assert!(e.contains("webhooks are not sent there"), "{bad}: {e}");
        }
    }

    fn headers(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    const H: &str = "actions.webhook.headers";

    #[test]
    fn good_headers_pass() {
        let h = headers(&[
            ("Authorization", "Bearer abc.def"),
            (
                "X-Custom_Header!#$%&'*+-.^`|~",
                "tab\tis fine, and ünïcode too",
            ),
            ("x-empty", ""),
        ]);
        assert_eq!(check_headers(&h, H), Ok(()));
        assert_eq!(check_headers(&BTreeMap::new(), H), Ok(()));
        let many: BTreeMap<String, String> = (0..MAX_HEADERS)
            .map(|i| (format!("X-H{i}"), "v".repeat(MAX_HEADER_VALUE_CHARS)))
            .collect();
        assert_eq!(check_headers(&many, H), Ok(()));
    }

    #[test]
    fn bad_headers_are_named() {
        let e = check_headers(&headers(&[("X-Bad\r\n", "v")]), H).unwrap_err();
        assert_eq!(
            e,
            "actions.webhook.headers[\"X-Bad\\r\\n\"]: header names are letters, digits and \
             !#$%&'*+-.^_`|~"
        );
        let cases: [(&[(&str, &str)], &str); 12] = [
            (&[("", "v")], "[\"\"]: header names are 1 to 100"),
            (
                &[("X Space", "v")],
                "[\"X Space\"]: header names are letters",
            ),
            (&[("X:Colon", "v")], "header names are letters"),
            (&[("Ünï", "v")], "header names are letters"),
            (
                &[("Host", "evil")],
                "[\"Host\"]: argus sets this header itself",
            ),
            (&[("CONTENT-TYPE", "text/plain")], "argus sets this header"),
            (&[("x-argus-signature", "t=1")], "argus sets this header"),
            (&[("X-Argus-Delivery", "1")], "argus sets this header"),
            (&[("X-A", "1"), ("x-a", "2")], "given twice"),
            (
                &[("X-A", "a\r\nX-Injected: 1")],
                "[\"X-A\"]: values cannot contain CR",
            ),
            (&[("X-A", "nul\0")], "values cannot contain"),
            (&[("X-A", "bell\u{7}")], "values cannot contain"),
        ];
        for (pairs, want) in cases {
            let e = check_headers(&headers(pairs), H).unwrap_err();
            assert!(e.starts_with("actions.webhook.headers"), "{e}");
            assert!(e.contains(want), "{pairs:?}: {e}");
        }
        let long_name = "x".repeat(MAX_HEADER_NAME_CHARS + 1);
        let e = check_headers(&headers(&[(&long_name, "v")]), H).unwrap_err();
        assert!(e.contains("1 to 100 characters"), "{e}");
        let long_value = "v".repeat(MAX_HEADER_VALUE_CHARS + 1);
        let e = check_headers(&headers(&[("X-A", &long_value)]), H).unwrap_err();
        assert!(e.contains("at most 1000 characters"), "{e}");
        let too_many: BTreeMap<String, String> = (0..=MAX_HEADERS)
            .map(|i| (format!("X-H{i}"), "v".into()))
            .collect();
        assert_eq!(
            check_headers(&too_many, H).unwrap_err(),
            "actions.webhook.headers: at most 20 headers"
        );
    }

    const MEDIA_KEY: &[u8] = b"media-test-key";
    /// `python3 -c 'import hmac,hashlib,base64;print(base64.urlsafe_b64encode(hmac.new(
    /// b"media-test-key",b"media:e1:1700000600",hashlib.sha256).digest()).rstrip(b"=").decode())'`
    const MEDIA_WANT: &str = "1u850-DGTKgAoO_8KgsiSXcYqwbyuntRhf7msgLhLUE";

    #[test]
    fn media_links_are_signed_and_expire() {
        let exp = TS + 600;
        let sig = media_signature(MEDIA_KEY, "e1", exp);
        assert_eq!(sig, MEDIA_WANT);
        assert_eq!(verify_media(MEDIA_KEY, "e1", exp, &sig, TS), Ok(()));
        assert_eq!(verify_media(MEDIA_KEY, "e1", exp, &sig, exp - 1), Ok(()));
        assert_eq!(
            verify_media(MEDIA_KEY, "e1", exp, &sig, exp),
            Err(MediaRefusal::Expired)
        );
        let bad = Err(MediaRefusal::BadSignature);
        assert_eq!(
            verify_media(MEDIA_KEY, "e2", exp, &sig, TS),
            bad,
            "other event"
        );
        assert_eq!(
            verify_media(MEDIA_KEY, "e1", exp + 1, &sig, TS),
            bad,
            "longer life"
        );
        assert_eq!(
            verify_media(b"other", "e1", exp, &sig, TS),
            bad,
            "other key"
        );
        assert_eq!(verify_media(MEDIA_KEY, "e1", exp, "", TS), bad);
        assert_eq!(verify_media(MEDIA_KEY, "e1", exp, "!!not base64", TS), bad);
        assert_eq!(verify_media(MEDIA_KEY, "e1", exp, &sig[..40], TS), bad);
        // A forged link says so even when it would have expired.
        assert_eq!(verify_media(MEDIA_KEY, "e2", exp, &sig, exp + 10), bad);
    }
}
