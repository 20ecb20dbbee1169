//! Wall-clock time behind a small trait, so tests can move time (token expiry, rate-limit
//! windows, retention) without sleeping. Also the RFC 3339 helpers used on the wire.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Source of wall-clock time in unix milliseconds (UTC).
pub trait Clock: Send + Sync + 'static {
    fn now_ms(&self) -> i64;
}

/// The real clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        d.as_millis() as i64
    }
}

/// A clock that only moves when told to; for tests.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    pub fn new(start_ms: i64) -> Self {
        ManualClock(Arc::new(AtomicI64::new(start_ms)))
    }
    pub fn advance_ms(&self, ms: i64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
    pub fn set_ms(&self, ms: i64) {
        self.0.store(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// Formats unix milliseconds as RFC 3339 UTC with a `Z` suffix and millisecond precision.
pub fn format_rfc3339(ms: i64) -> String {
    let dt = OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let (y, mo, d) = (dt.year(), dt.month() as u8, dt.day());
    let (h, mi, s, milli) = (dt.hour(), dt.minute(), dt.second(), dt.millisecond());
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{milli:03}Z")
}

/// The local (system time zone) weekday, 1 = Monday to 7 = Sunday, and minute of the day of a
/// unix-millisecond instant.
pub fn local_parts(ms: i64) -> (u8, u16) {
    let t = ms.div_euclid(1000) as libc::time_t;
    // SAFETY: an all-zero `tm` is a valid value of this plain C struct.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: `t` and `tm` are valid for the call; localtime_r is thread-safe.
    unsafe { libc::localtime_r(&t, &mut tm) };
    (
        (((tm.tm_wday + 6) % 7) + 1) as u8,
        (tm.tm_hour * 60 + tm.tm_min) as u16,
    )
}

/// Parses an RFC 3339 timestamp (any offset) or a bare `YYYY-MM-DD` date (midnight UTC)
/// into unix milliseconds.
pub fn parse_time(s: &str) -> Option<i64> {
    if let Ok(dt) = OffsetDateTime::parse(s, &Rfc3339) {
        return Some((dt.unix_timestamp_nanos() / 1_000_000) as i64);
    }
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    let date = time::Date::parse(s, &fmt).ok()?;
    Some(date.midnight().assume_utc().unix_timestamp() * 1000)
}

/// The UTC calendar day (`YYYY-MM-DD`) of a unix-millisecond instant.
pub fn utc_day(ms: i64) -> String {
    format_rfc3339(ms)[..10].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trip() {
        let ms = 1_735_123_456_789;
        let s = format_rfc3339(ms);
        assert_eq!(s, "2024-12-25T10:44:16.789Z");
        assert_eq!(parse_time(&s), Some(ms));
        assert_eq!(parse_time("2024-12-25T11:44:16.789+01:00"), Some(ms));
        assert_eq!(parse_time("2024-12-25"), Some(1_735_084_800_000));
        assert_eq!(parse_time("yesterday"), None);
        assert_eq!(utc_day(ms), "2024-12-25");
    }

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = ManualClock::new(1000);
        assert_eq!(c.now_ms(), 1000);
        c.advance_ms(500);
        assert_eq!(c.now_ms(), 1500);
    }
}
