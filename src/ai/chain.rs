//! The fallback chain: asks the configured providers, in the owner's order, for one
//! description within a total time budget, and reports every API call it made.
//!
//! For each provider in order: skip it if it is unusable (no key) or its breaker is open or
//! paused; call it with a timeout of the smaller of the remaining budget and the per-attempt
//! limit; on a retryable error (429 or 5xx) try it again, at most
//! [`ChainPolicy::max_retries`] more times, after `Retry-After` (or the backoff), but only when
//! that wait still leaves time for the attempt; on any other error move on. The first usable
//! answer ends the chain. When the budget runs out the chain stops where it is: the caller
//! keeps the event's local detection and stores the error.
//!
//! The reference system hard-coded its order and called any answer not from OpenAI a
//! "fallback"; here the order is the caller's, and `fallback_used` means the owner's first
//! usable provider did not give the answer.
//!
//! Nothing here writes to the database: the caller turns [`ChainOutcome::attempts`] into usage
//! rows (one per API call, success or failure).

use crate::ai::breaker::{Breakers, Verdict};
use crate::ai::prices;
use crate::ai::prompt::{parse_answer, Parsed};
use crate::ai::provider::{call, wire_name, Answer, CallError, ProviderConfig};
use crate::settings::ProviderName;
use std::collections::HashMap;
use std::time::Duration;
use tokio::time::Instant;

/// Total time for one description, from the first call to the last answer.
pub const DEFAULT_BUDGET: Duration = Duration::from_secs(10);

/// Longest single call to one provider.
pub const DEFAULT_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(8);

/// Timing rules of the chain; [`Default`] gives the documented values.
#[derive(Debug, Clone, PartialEq)]
pub struct ChainPolicy {
    /// Total budget (default 10 s).
    pub budget: Duration,
    /// Per-attempt limit (default 8 s), cut to the remaining budget.
    pub attempt_timeout: Duration,
    /// Extra attempts on the same provider after a retryable error (default 2).
    pub max_retries: u32,
    /// Waits before the 1st, 2nd, ... retry when the provider sent no `Retry-After`
    /// (default 0.5 s, 1 s; the last one repeats).
    pub backoff: Vec<Duration>,
    /// An attempt is not started with less time than this left (default 250 ms): it could not
    /// finish, and would only add a usage row.
    pub min_attempt: Duration,
}

impl Default for ChainPolicy {
    fn default() -> Self {
        ChainPolicy {
            budget: DEFAULT_BUDGET,
            attempt_timeout: DEFAULT_ATTEMPT_TIMEOUT,
            max_retries: 2,
            backoff: vec![Duration::from_millis(500), Duration::from_secs(1)],
            min_attempt: Duration::from_millis(250),
        }
    }
}

/// What to describe, and with whom.
#[derive(Debug, Clone, Copy)]
pub struct ChainRequest<'a> {
    /// Providers in the owner's order (normally already without unusable ones).
    pub providers: &'a [ProviderConfig],
    /// The prepared JPEG ([`crate::ai::image::prepare`]).
    pub jpeg: &'a [u8],
    pub system: &'a str,
    pub user: &'a str,
    /// The owner's price overrides by model name (USD per 1M input, output tokens).
    pub price_overrides: &'a HashMap<String, (f64, f64)>,
}

/// One API call, for the usage table.
#[derive(Debug, Clone, PartialEq)]
pub struct Attempt {
    pub provider: ProviderName,
    /// The model that answered, or the one asked for when the call failed.
    pub model: String,
    pub tokens_in: u64,
    pub tokens_out: u64,
    pub latency_ms: u64,
    /// `ok` or [`CallError::kind`].
    pub outcome: &'static str,
    /// The error text (never containing a key), for failed calls.
    pub error: Option<String>,
    pub cost_usd: f64,
    /// When the call started, in unix milliseconds from the breakers' clock.
    pub started_ms: i64,
}

/// The result of a chain run.
#[derive(Debug, Clone)]
pub struct ChainOutcome {
    /// The provider that answered, its raw answer and the parsed description.
    pub answer: Option<(ProviderName, Answer, Parsed)>,
    /// True when the answer did not come from the first usable provider in the given order
    /// (it failed, or was skipped because its breaker was open).
    pub fallback_used: bool,
    /// Every API call made, in order.
    pub attempts: Vec<Attempt>,
    /// Providers not called, with the reason (`no API key`, `circuit open`, `paused (quota)`).
    pub skipped: Vec<(ProviderName, String)>,
    /// Why there is no answer, e.g. `budget of 10 s exhausted (openai: timed out)` or `all
    /// providers failed: openai: rate limited; anthropic: authentication failed: ...`.
    pub error: Option<String>,
}

impl ChainOutcome {
    /// Total cost of all attempts in USD.
    pub fn cost_usd(&self) -> f64 {
        self.attempts.iter().map(|a| a.cost_usd).sum()
    }
}

fn secs(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

/// Runs the chain. Never fails: problems end up in [`ChainOutcome::error`].
pub async fn run_chain(
    client: &reqwest::Client,
    req: &ChainRequest<'_>,
    policy: &ChainPolicy,
    breakers: &Breakers,
) -> ChainOutcome {
    let deadline = Instant::now() + policy.budget;
    let first_usable = req.providers.iter().position(ProviderConfig::usable);
    let mut out = ChainOutcome {
        answer: None,
        fallback_used: false,
        attempts: Vec::new(),
        skipped: Vec::new(),
        error: None,
    };
    let mut failures: Vec<String> = Vec::new();
    let mut budget_exhausted = false;

    'providers: for (index, cfg) in req.providers.iter().enumerate() {
        let name = wire_name(cfg.name);
        if !cfg.usable() {
            out.skipped.push((cfg.name, "no API key".into()));
            continue;
        }
        let mut retries = 0;
        // The error before a retry, reported if the retry never happens.
        let mut pending: Option<CallError> = None;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining < policy.min_attempt {
                if let Some(e) = pending {
                    failures.push(format!("{name}: {e}"));
                }
                budget_exhausted = true;
                break 'providers;
            }
            if !breakers.allow(cfg.name) {
                let why = match breakers.paused_reason(cfg.name) {
                    Some(r) => format!("paused ({r})"),
                    None => "circuit open".to_string(),
                };
                match pending {
                    // Its own failures just opened the breaker: report the failure.
                    Some(e) => failures.push(format!("{name}: {e}; {why} now")),
                    None => {
                        failures.push(format!("{name}: {why}"));
                        out.skipped.push((cfg.name, why));
                    }
                }
                continue 'providers;
            }
            let timeout = remaining.min(policy.attempt_timeout);
            let cut_by_budget = timeout < policy.attempt_timeout;
            let started_ms = breakers.now_ms();
            let t0 = Instant::now();
            let result = call(client, cfg, req.jpeg, req.system, req.user, timeout).await;
            let latency_ms = t0.elapsed().as_millis() as u64;
            // A text that does not parse (only a code fence) is a malformed answer, but its
            // tokens were billed: keep them for the usage row.
            let (result, tokens) = match result {
                Ok(answer) => {
                    let tokens = (answer.tokens_in, answer.tokens_out);
                    match parse_answer(&answer.text) {
                        Ok(parsed) => (Ok((answer, parsed)), tokens),
                        Err(e) => (Err(CallError::Malformed(e.to_string())), tokens),
                    }
                }
                Err(e) => (Err(e), (0, 0)),
            };
            let verdict = match &result {
                Err(CallError::Timeout) if cut_by_budget => Verdict::Neutral,
                r => Verdict::of(r),
            };
            breakers.record(cfg.name, verdict);
            let model = match &result {
                Ok((answer, _)) => answer.model.clone(),
                Err(_) => cfg.effective_model().to_string(),
            };
            out.attempts.push(Attempt {
                provider: cfg.name,
                cost_usd: prices::cost(cfg.name, &model, tokens.0, tokens.1, req.price_overrides),
                model,
                tokens_in: tokens.0,
                tokens_out: tokens.1,
                latency_ms,
                outcome: match &result {
                    Ok(_) => "ok",
                    Err(e) => e.kind(),
                },
                error: result.as_ref().err().map(ToString::to_string),
                started_ms,
            });
            tracing::debug!(
                provider = name,
                outcome = out.attempts.last().map(|a| a.outcome),
                latency_ms,
                "cloud description attempt"
            );
            let e = match result {
                Ok((answer, parsed)) => {
                    out.fallback_used = Some(index) != first_usable;
                    out.answer = Some((cfg.name, answer, parsed));
                    return out;
                }
                Err(e) => e,
            };
            if e.retryable() && retries < policy.max_retries {
                let wait = match &e {
                    CallError::RateLimited {
                        retry_after: Some(d),
                    } => *d,
                    _ => policy
                        .backoff
                        .get(retries as usize)
                        .or(policy.backoff.last())
                        .copied()
                        .unwrap_or(Duration::from_millis(500)),
                };
                let remaining = deadline.saturating_duration_since(Instant::now());
                if wait + policy.min_attempt <= remaining {
                    tokio::time::sleep(wait).await;
                    retries += 1;
                    pending = Some(e);
                    continue;
                }
            }
            failures.push(format!("{name}: {e}"));
            if matches!(e, CallError::Timeout) && cut_by_budget {
                budget_exhausted = true;
                break 'providers;
            }
            continue 'providers;
        }
    }

    out.error = Some(if budget_exhausted {
        let mut msg = format!("budget of {} exhausted", secs(policy.budget));
        if !failures.is_empty() {
            msg.push_str(&format!(" ({})", failures.join("; ")));
        }
        msg
    } else if first_usable.is_none() {
        "no AI provider is configured".to_string()
    } else {
        format!("all providers failed: {}", failures.join("; "))
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_texts() {
        assert_eq!(secs(Duration::from_secs(10)), "10 s");
        assert_eq!(secs(Duration::from_millis(1500)), "1.5 s");
    }
}
