//! Request-rate limits: one GCRA limiter (governor) per API key, sized by the key's own
//! requests-per-minute, one keyed limiter on login attempts per client IP, and one global
//! limiter on login attempts from all addresses together (each attempt costs a 19 MiB Argon2id
//! check, and a LAN can have many addresses).
//!
//! A key's limit allows its whole per-minute budget as a burst and refills it evenly over the
//! minute. `X-RateLimit-Reset` is when the budget will be full again.

use governor::clock::{Clock as _, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

type KeyLimiter = RateLimiter<NotKeyed, InMemoryState, DefaultClock, StateInformationMiddleware>;

/// The outcome of a check, with what the rate-limit headers need.
#[derive(Debug, Clone, Copy)]
pub struct RateStatus {
    pub allowed: bool,
    pub limit: u32,
    pub remaining: u32,
    /// Seconds until the budget is full again (allowed) or until the next request may pass.
    pub reset_after_s: u64,
}

#[derive(Default)]
pub struct KeyRateLimits {
    limiters: Mutex<HashMap<String, (u32, Arc<KeyLimiter>)>>,
}

fn quota_per_minute(n: u32) -> Quota {
    let n = NonZeroU32::new(n.max(1)).expect("max(1) is non-zero");
    Quota::per_minute(n).allow_burst(n)
}

impl KeyRateLimits {
    /// Counts one request against `key_id`'s budget of `per_minute`.
    pub fn check(&self, key_id: &str, per_minute: u32) -> RateStatus {
        let limiter = {
            let mut map = self.limiters.lock().unwrap_or_else(|e| e.into_inner());
            let entry = map.entry(key_id.to_string()).or_insert_with(|| {
                (
                    per_minute,
                    Arc::new(RateLimiter::direct(quota_per_minute(per_minute)).with_middleware()),
                )
            });
            if entry.0 != per_minute {
                *entry = (
                    per_minute,
                    Arc::new(RateLimiter::direct(quota_per_minute(per_minute)).with_middleware()),
                );
            }
            entry.1.clone()
        };
        let per_request_s = 60.0 / per_minute.max(1) as f64;
        match limiter.check() {
            Ok(snapshot) => {
                let remaining = snapshot.remaining_burst_capacity();
                let used = per_minute.saturating_sub(remaining);
                RateStatus {
                    allowed: true,
                    limit: per_minute,
                    remaining,
                    reset_after_s: (used as f64 * per_request_s).ceil() as u64,
                }
            }
            Err(not_until) => {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                RateStatus {
                    allowed: false,
                    limit: per_minute,
                    remaining: 0,
                    reset_after_s: wait.as_secs_f64().ceil().max(1.0) as u64,
                }
            }
        }
    }
}

/// Login attempts per client IP, and from all addresses together.
pub struct LoginLimiter {
    limiter: RateLimiter<IpAddr, governor::state::keyed::HashMapStateStore<IpAddr>, DefaultClock>,
    global: RateLimiter<NotKeyed, InMemoryState, DefaultClock>,
}

fn wait_secs(nu: governor::NotUntil<<DefaultClock as governor::clock::Clock>::Instant>) -> u64 {
    nu.wait_time_from(DefaultClock::default().now())
        .as_secs_f64()
        .ceil()
        .max(1.0) as u64
}

impl LoginLimiter {
    /// `attempts_per_15min` per address; `global_per_minute` in all (the whole minute's worth
    /// allowed as a burst).
    pub fn new(attempts_per_15min: u32, global_per_minute: u32) -> Self {
        let n = NonZeroU32::new(attempts_per_15min.max(1)).expect("non-zero");
        let period = Duration::from_secs(15 * 60) / n.get();
        let quota = Quota::with_period(period)
            .expect("non-zero period")
            .allow_burst(n);
        LoginLimiter {
            limiter: RateLimiter::keyed(quota),
            global: RateLimiter::direct(quota_per_minute(global_per_minute)),
        }
    }

    /// Forgets addresses whose budget is full again, so the table does not grow without bound.
    pub fn prune(&self) {
        self.limiter.retain_recent();
    }

    /// `Err(seconds to wait)` when the IP has used its attempts.
    pub fn check(&self, ip: IpAddr) -> Result<(), u64> {
        self.limiter.check_key(&ip).map_err(wait_secs)
    }

    /// Counts one attempt against the global budget; `Err(seconds to wait)` when it is used up.
    pub fn check_global(&self) -> Result<(), u64> {
        self.global.check().map_err(wait_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_budget_runs_out_and_reports() {
        let l = KeyRateLimits::default();
        let first = l.check("k", 3);
        assert!(first.allowed);
        assert_eq!(first.remaining, 2);
        assert!(l.check("k", 3).allowed);
        let third = l.check("k", 3);
        assert!(third.allowed);
        assert_eq!(third.remaining, 0);
        let fourth = l.check("k", 3);
        assert!(!fourth.allowed);
        assert!(
            fourth.reset_after_s >= 1 && fourth.reset_after_s <= 20,
            "{fourth:?}"
        );
        // Another key has its own budget.
        assert!(l.check("other", 3).allowed);
        // A changed limit takes effect at once.
        assert!(l.check("k", 10).allowed);
    }

    #[test]
    fn login_limiter_is_per_ip() {
        let l = LoginLimiter::new(2, 60);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        assert!(l.check(a).is_ok());
        assert!(l.check(a).is_ok());
        assert!(l.check(a).is_err());
        assert!(l.check(b).is_ok());
    }

    #[test]
    fn the_global_login_budget_is_shared_and_refills_evenly() {
        let l = LoginLimiter::new(10, 3);
        for _ in 0..3 {
            assert!(l.check_global().is_ok());
        }
        // One attempt every 20 s refills.
        let wait = l.check_global().unwrap_err();
        assert!((1..=20).contains(&wait), "{wait}");
        // The per-address budget is separate.
        assert!(l.check("10.0.0.1".parse().unwrap()).is_ok());
    }
}
