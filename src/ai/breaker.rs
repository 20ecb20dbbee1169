//! Per-provider circuit breakers: stop calling a provider that keeps failing, so a description
//! does not spend its time budget waiting on it, and try it again later with one probe.
//!
//! [`Breaker`] is pure state driven by the caller's clock (`now_ms`), so tests move time by
//! hand; [`Breakers`] holds one per provider behind a mutex (never held across an `.await`)
//! together with the [`Clock`] to read.
//!
//! Rules (the reference system's, which work, made explicit):
//! - Closed: calls pass. It opens after [`BreakerConfig::consecutive_failures`] failures in a
//!   row, or when at least [`BreakerConfig::min_calls`] calls in the last
//!   [`BreakerConfig::window_ms`] failed at [`BreakerConfig::failure_ratio`] or more.
//! - Open for [`BreakerConfig::open_ms`]; then half-open: one probe call passes (another one
//!   only if the probe's result never arrives within `open_ms`). Its success closes the
//!   breaker and clears the history; its failure opens it again.
//! - What counts ([`Verdict`]): server errors, timeouts, network errors, rate limits and
//!   malformed answers are provider-side failures. A bad request (4xx) is a success for the
//!   breaker: the provider is up and answering. A timeout caused by the end of the
//!   description's budget rather than the provider's own attempt limit is neutral.
//! - Quota and auth errors do not count as failures; they *pause* the provider instead, because
//!   they will not heal in a minute: [`BreakerConfig::quota_pause_ms`] (15 min) for quota,
//!   [`BreakerConfig::auth_pause_ms`] (1 h) for a rejected key, or until [`Breakers::reset`],
//!   which the settings code calls when the provider's key, URL or model changes. After a pause
//!   the provider gets one probe, as after an open period. A paused provider reports `open`.

use crate::ai::provider::CallError;
use crate::clock::Clock;
use crate::settings::ProviderName;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

/// Thresholds and durations; [`Default`] gives the documented values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BreakerConfig {
    pub consecutive_failures: u32,
    pub window_ms: i64,
    pub min_calls: usize,
    pub failure_ratio: f64,
    pub open_ms: i64,
    pub quota_pause_ms: i64,
    pub auth_pause_ms: i64,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            consecutive_failures: 5,
            window_ms: 60_000,
            min_calls: 6,
            failure_ratio: 0.5,
            open_ms: 60_000,
            quota_pause_ms: 15 * 60_000,
            auth_pause_ms: 60 * 60_000,
        }
    }
}

/// What one call means for the breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The provider answered (including a 4xx about our request).
    Success,
    /// A provider-side failure.
    Failure,
    /// Says nothing about the provider (a timeout imposed by our own budget).
    Neutral,
    /// The key was refused: pause the provider.
    Auth,
    /// Out of quota or credit: pause the provider.
    Quota,
}

impl Verdict {
    /// The verdict for a call's result.
    pub fn of<T>(result: &Result<T, CallError>) -> Verdict {
        match result {
            Ok(_) => Verdict::Success,
            Err(CallError::BadRequest(..)) => Verdict::Success,
            Err(CallError::Auth(_)) => Verdict::Auth,
            Err(CallError::Quota(_)) => Verdict::Quota,
            Err(
                CallError::Server(_)
                | CallError::Timeout
                | CallError::Network(_)
                | CallError::RateLimited { .. }
                | CallError::Malformed(_),
            ) => Verdict::Failure,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    Closed,
    Open {
        until_ms: i64,
    },
    /// `probe_since_ms`: when the current probe was let through, if one is out.
    HalfOpen {
        probe_since_ms: Option<i64>,
    },
}

/// One provider's breaker.
#[derive(Debug, Clone)]
pub struct Breaker {
    cfg: BreakerConfig,
    state: State,
    consecutive: u32,
    /// (time, ok) of recent calls, oldest first, at most `window_ms` old.
    window: VecDeque<(i64, bool)>,
    /// Until when, and why (`auth` or `quota`), the provider is paused.
    paused: Option<(i64, &'static str)>,
}

impl Breaker {
    pub fn new(cfg: BreakerConfig) -> Breaker {
        Breaker {
            cfg,
            state: State::Closed,
            consecutive: 0,
            window: VecDeque::new(),
            paused: None,
        }
    }

    /// Whether a call may go out now. In half-open state this hands out the single probe, so
    /// call it only right before calling the provider, and [`Breaker::record`] the result.
    pub fn allow(&mut self, now_ms: i64) -> bool {
        if let Some((until_ms, _)) = self.paused {
            if now_ms < until_ms {
                return false;
            }
            self.paused = None;
            self.state = State::HalfOpen {
                probe_since_ms: None,
            };
        }
        match self.state {
            State::Closed => true,
            State::Open { until_ms } if now_ms < until_ms => false,
            State::Open { .. }
            | State::HalfOpen {
                probe_since_ms: None,
            } => {
                self.state = State::HalfOpen {
                    probe_since_ms: Some(now_ms),
                };
                true
            }
            State::HalfOpen {
                probe_since_ms: Some(since),
            } => {
                // A probe whose result never came back does not block the provider forever.
                if now_ms - since >= self.cfg.open_ms {
                    self.state = State::HalfOpen {
                        probe_since_ms: Some(now_ms),
                    };
                    true
                } else {
                    false
                }
            }
        }
    }

    /// Records the outcome of a call that [`Breaker::allow`] let through.
    pub fn record(&mut self, now_ms: i64, verdict: Verdict) {
        match verdict {
            Verdict::Auth | Verdict::Quota => {
                let (pause, why) = if verdict == Verdict::Auth {
                    (self.cfg.auth_pause_ms, "auth")
                } else {
                    (self.cfg.quota_pause_ms, "quota")
                };
                self.paused = Some((now_ms + pause, why));
                self.state = State::HalfOpen {
                    probe_since_ms: None,
                };
            }
            Verdict::Neutral => {
                if let State::HalfOpen { .. } = self.state {
                    self.state = State::HalfOpen {
                        probe_since_ms: None,
                    };
                }
            }
            Verdict::Success => match self.state {
                State::HalfOpen { .. } => self.close(),
                State::Closed => {
                    self.consecutive = 0;
                    self.push(now_ms, true);
                }
                // A late answer to a call made before the breaker opened: the open period runs.
                State::Open { .. } => {}
            },
            Verdict::Failure => match self.state {
                State::HalfOpen { .. } => self.open(now_ms),
                State::Closed => {
                    self.consecutive += 1;
                    self.push(now_ms, false);
                    if self.should_trip() {
                        self.open(now_ms);
                    }
                }
                State::Open { .. } => {}
            },
        }
    }

    /// `closed`, `open` or `half_open` (a paused provider is `open`). An open breaker whose
    /// period has run out reports `half_open`: the next call will be the probe.
    pub fn state(&self, now_ms: i64) -> &'static str {
        if matches!(self.paused, Some((until, _)) if now_ms < until) {
            return "open";
        }
        match self.state {
            State::Closed => "closed",
            State::Open { until_ms } if now_ms < until_ms => "open",
            State::Open { .. } | State::HalfOpen { .. } => "half_open",
        }
    }

    /// `auth` or `quota` while the provider is paused for that reason.
    pub fn paused_reason(&self, now_ms: i64) -> Option<&'static str> {
        self.paused
            .filter(|(until, _)| now_ms < *until)
            .map(|(_, why)| why)
    }

    /// Forgets everything (the provider's configuration changed).
    pub fn reset(&mut self) {
        *self = Breaker::new(self.cfg);
    }

    fn push(&mut self, now_ms: i64, ok: bool) {
        self.window.push_back((now_ms, ok));
        while matches!(self.window.front(), Some((t, _)) if now_ms - t > self.cfg.window_ms) {
            self.window.pop_front();
        }
    }

    fn should_trip(&self) -> bool {
        if self.consecutive >= self.cfg.consecutive_failures {
            return true;
        }
        let calls = self.window.len();
        let failures = self.window.iter().filter(|(_, ok)| !ok).count();
        calls >= self.cfg.min_calls && failures as f64 >= self.cfg.failure_ratio * calls as f64
    }

    fn open(&mut self, now_ms: i64) {
        self.state = State::Open {
            until_ms: now_ms + self.cfg.open_ms,
        };
        self.consecutive = 0;
        self.window.clear();
    }

    fn close(&mut self) {
        self.state = State::Closed;
        self.consecutive = 0;
        self.window.clear();
    }
}

/// The breakers of all providers, shared by every description task.
pub struct Breakers {
    clock: Arc<dyn Clock>,
    cfg: BreakerConfig,
    inner: Mutex<HashMap<ProviderName, Breaker>>,
}

impl Breakers {
    pub fn new(clock: Arc<dyn Clock>) -> Breakers {
        Breakers::with_config(clock, BreakerConfig::default())
    }

    pub fn with_config(clock: Arc<dyn Clock>, cfg: BreakerConfig) -> Breakers {
        Breakers {
            clock,
            cfg,
            inner: Mutex::new(HashMap::new()),
        }
    }

    fn with<R>(&self, p: ProviderName, f: impl FnOnce(&mut Breaker, i64) -> R) -> R {
        let now = self.clock.now_ms();
        let mut map = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        f(map.entry(p).or_insert_with(|| Breaker::new(self.cfg)), now)
    }

    /// The time on the breakers' clock, in unix milliseconds.
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// See [`Breaker::allow`].
    pub fn allow(&self, p: ProviderName) -> bool {
        self.with(p, |b, now| b.allow(now))
    }

    /// See [`Breaker::record`].
    pub fn record(&self, p: ProviderName, verdict: Verdict) {
        self.with(p, |b, now| b.record(now, verdict))
    }

    /// See [`Breaker::state`].
    pub fn state(&self, p: ProviderName) -> &'static str {
        self.with(p, |b, now| b.state(now))
    }

    /// See [`Breaker::paused_reason`].
    pub fn paused_reason(&self, p: ProviderName) -> Option<&'static str> {
        self.with(p, |b, now| b.paused_reason(now))
    }

    /// Forgets a provider's history; call it when its key, base URL or model changes.
    pub fn reset(&self, p: ProviderName) {
        self.with(p, |b, _| b.reset())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    #[test]
    fn opens_after_five_consecutive_failures_and_recovers_through_one_probe() {
        let mut b = Breaker::new(BreakerConfig::default());
        let t = 1_000_000;
        for i in 0..4 {
            assert!(b.allow(t + i));
            b.record(t + i, Verdict::Failure);
            assert_eq!(b.state(t + i), "closed");
        }
        assert!(b.allow(t + 4));
        b.record(t + 4, Verdict::Failure);
        assert_eq!(b.state(t + 4), "open");
        assert!(!b.allow(t + 5));
        assert!(!b.allow(t + 4 + 59_999));
        // The open period is over: one probe passes, a second caller waits.
        assert_eq!(b.state(t + 4 + 60_000), "half_open");
        assert!(b.allow(t + 4 + 60_000));
        assert!(!b.allow(t + 4 + 60_001));
        assert_eq!(b.state(t + 4 + 60_001), "half_open");
        b.record(t + 4 + 60_500, Verdict::Success);
        assert_eq!(b.state(t + 4 + 60_500), "closed");
        assert!(b.allow(t + 4 + 60_501));
    }

    #[test]
    fn a_failed_probe_reopens() {
        let mut b = Breaker::new(BreakerConfig::default());
        for i in 0..5 {
            b.allow(i);
            b.record(i, Verdict::Failure);
        }
        assert!(b.allow(60_004));
        b.record(60_010, Verdict::Failure);
        assert_eq!(b.state(60_011), "open");
        assert!(!b.allow(120_009));
        assert!(b.allow(120_010));
    }

    #[test]
    fn a_lost_probe_is_replaced_after_the_open_period() {
        let mut b = Breaker::new(BreakerConfig::default());
        for i in 0..5 {
            b.record(i, Verdict::Failure);
        }
        assert!(b.allow(60_004));
        assert!(!b.allow(100_000));
        assert!(b.allow(120_004));
    }

    #[test]
    fn opens_at_half_failures_over_six_calls_in_the_window() {
        let mut b = Breaker::new(BreakerConfig::default());
        // S F S F S: never two failures in a row, 2 of 5.
        for (i, v) in [
            Verdict::Success,
            Verdict::Failure,
            Verdict::Success,
            Verdict::Failure,
            Verdict::Success,
        ]
        .into_iter()
        .enumerate()
        {
            b.record(i as i64 * 1000, v);
        }
        assert_eq!(b.state(5000), "closed");
        // The sixth call fails: 3 of 6 = 50 %.
        b.record(5000, Verdict::Failure);
        assert_eq!(b.state(5001), "open");

        // The same pattern spread over more than a minute does not trip: old calls age out.
        let mut b = Breaker::new(BreakerConfig::default());
        for (i, v) in [
            Verdict::Failure,
            Verdict::Success,
            Verdict::Failure,
            Verdict::Success,
            Verdict::Failure,
            Verdict::Success,
        ]
        .into_iter()
        .enumerate()
        {
            b.record(i as i64 * 20_000, v);
        }
        assert_eq!(b.state(100_001), "closed");
    }

    #[test]
    fn bad_requests_and_neutral_outcomes_do_not_open() {
        let mut b = Breaker::new(BreakerConfig::default());
        for i in 0..20 {
            b.record(
                i,
                Verdict::of::<()>(&Err(CallError::BadRequest(400, String::new()))),
            );
            b.record(i, Verdict::Neutral);
        }
        assert_eq!(b.state(21), "closed");
        // A neutral outcome releases a half-open probe without closing.
        for i in 0..5 {
            b.record(100 + i, Verdict::Failure);
        }
        assert!(b.allow(60_200));
        b.record(60_201, Verdict::Neutral);
        assert_eq!(b.state(60_202), "half_open");
        assert!(b.allow(60_203));
    }

    #[test]
    fn auth_and_quota_pause_the_provider_until_reset_or_timeout() {
        let cfg = BreakerConfig::default();
        let mut b = Breaker::new(cfg);
        b.record(0, Verdict::Quota);
        assert_eq!(b.state(1), "open");
        assert_eq!(b.paused_reason(1), Some("quota"));
        assert!(!b.allow(cfg.quota_pause_ms - 1));
        assert!(b.allow(cfg.quota_pause_ms));
        assert_eq!(b.paused_reason(cfg.quota_pause_ms), None);
        b.record(cfg.quota_pause_ms + 10, Verdict::Success);
        assert_eq!(b.state(cfg.quota_pause_ms + 11), "closed");

        b.record(0, Verdict::Auth);
        assert_eq!(b.paused_reason(1), Some("auth"));
        assert!(!b.allow(cfg.auth_pause_ms - 1));
        b.reset();
        assert!(b.allow(2));
        assert_eq!(b.state(2), "closed");
    }

    #[test]
    fn verdicts_follow_the_error_kinds() {
        use CallError::*;
        let v = |e: CallError| Verdict::of::<()>(&Err(e));
        assert_eq!(Verdict::of(&Ok::<(), CallError>(())), Verdict::Success);
        assert_eq!(v(BadRequest(400, String::new())), Verdict::Success);
        assert_eq!(v(Auth(String::new())), Verdict::Auth);
        assert_eq!(v(Quota(String::new())), Verdict::Quota);
        for e in [
            Server(500),
            Timeout,
            Network(String::new()),
            RateLimited { retry_after: None },
            Malformed(String::new()),
        ] {
            assert_eq!(v(e), Verdict::Failure);
        }
    }

    #[test]
    fn breakers_read_the_shared_clock() {
        let clock = ManualClock::new(5_000);
        let all = Breakers::new(Arc::new(clock.clone()));
        for _ in 0..5 {
            assert!(all.allow(ProviderName::Openai));
            all.record(ProviderName::Openai, Verdict::Failure);
        }
        assert_eq!(all.state(ProviderName::Openai), "open");
        assert_eq!(all.state(ProviderName::Gemini), "closed");
        assert!(!all.allow(ProviderName::Openai));
        clock.advance_ms(60_000);
        assert_eq!(all.state(ProviderName::Openai), "half_open");
        assert!(all.allow(ProviderName::Openai));
        all.record(ProviderName::Openai, Verdict::Success);
        assert_eq!(all.state(ProviderName::Openai), "closed");
    }
}
