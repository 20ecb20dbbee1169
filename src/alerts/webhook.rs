//! Webhook deliveries from the durable outbox: one POST per delivery with a 5 s timeout, up to
//! 3 retries after 1, 2 and 4 s, at most 100 calls a minute per rule, every attempt logged (the
//! log keeps 30 days).
//!
//! Each request carries `X-Argus-Timestamp`, `X-Argus-Signature: t=<unix s>,v1=<hex HMAC-SHA256
//! of "<t>.<body>" under the rule's secret>` and `X-Argus-Delivery: <outbox id>`, plus the
//! rule's own headers (kept sealed at rest). Targets must be http or https; a host that resolves
//! to a link-local, multicast or unspecified address is refused at send time (LAN and loopback
//! hosts are allowed: Home Assistant, Node-RED and n8n live there). Redirects are not followed.
//!
//! Durability: a delivery leaves the outbox only in the transaction that logs its 2xx answer
//! (or its last failed attempt), so a delivery pending when the appliance stops or is killed is
//! sent after it starts again, with the attempts it has left. A delivery acknowledged with a
//! 2xx is never sent again, except if the appliance dies between receiving that answer and
//! committing it (milliseconds): receivers that must never see a repeat can key on
//! `X-Argus-Delivery`.

use super::sign;
use crate::clock::Clock;
use crate::crypto::Keys;
use crate::store::alerts::{self as sql, Delivery, WebhookLogRow};
use crate::store::Store;
use governor::clock::{Clock as _, DefaultClock};
use governor::{Quota, RateLimiter};
use std::collections::{BTreeMap, HashSet};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{watch, Notify, Semaphore};

/// The answer a receiver has to give within this long.
pub const TIMEOUT: Duration = Duration::from_secs(5);
/// Waits before the retries after a failed attempt.
pub const BACKOFF: [Duration; 3] = [
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(4),
];
/// Calls a minute per rule.
pub const PER_RULE_PER_MINUTE: u32 = 100;
/// Requests in flight at once, over all rules.
const CONCURRENT: usize = 8;
/// Days the delivery log is kept.
pub const LOG_DAYS: i64 = 30;
/// Characters of a receiver's answer kept in the log and in a test's result.
const BODY_KEPT: usize = 200;

/// What one POST came to.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub success: bool,
    pub status_code: Option<u16>,
    pub response_body: String,
    pub response_time_ms: u64,
    pub error: Option<String>,
}

impl Outcome {
    fn failed(error: String, started: Instant) -> Outcome {
        Outcome {
            success: false,
            status_code: None,
            response_body: String::new(),
            response_time_ms: started.elapsed().as_millis() as u64,
            error: Some(error),
        }
    }
}

/// Sends webhook requests; one client (and its connection pool) for every delivery.
pub struct Sender {
    client: Result<reqwest::Client, String>,
}

impl Default for Sender {
    fn default() -> Self {
        Self::new()
    }
}

impl Sender {
    pub fn new() -> Sender {
        let client = crate::ai::client_builder().and_then(|b| {
            b.redirect(reqwest::redirect::Policy::none())
                .timeout(TIMEOUT)
                .build()
                .map_err(|e| format!("HTTP client: {e}"))
        });
        Sender { client }
    }

    /// One POST of `body` (JSON) to `url`, signed when a secret is given.
    pub async fn post(
        &self,
        url: &str,
        headers: &BTreeMap<String, String>,
        body: &str,
        secret: Option<&[u8]>,
        delivery: Option<i64>,
        now_s: i64,
    ) -> Outcome {
        let started = Instant::now();
        let client = match &self.client {
            Ok(c) => c,
            Err(e) => return Outcome::failed(e.clone(), started),
        };
        if let Err(e) = check_target(url).await {
            return Outcome::failed(e, started);
        }
        let mut req = client
            .post(url)
            .header("content-type", "application/json")
            .body(body.to_string());
        for (k, v) in headers {
            req = req.header(k.as_str(), v.as_str());
        }
        if let Some(secret) = secret {
            req = req.header("x-argus-timestamp", now_s.to_string()).header(
                "x-argus-signature",
                sign::signature_header(secret, now_s, body.as_bytes()),
            );
        }
        if let Some(id) = delivery {
            req = req.header("x-argus-delivery", id.to_string());
        }
        match req.send().await {
            Ok(resp) => {
                let status = resp.status();
                let text = resp.text().await.unwrap_or_default();
                Outcome {
                    success: status.is_success(),
                    status_code: Some(status.as_u16()),
                    response_body: text.chars().take(BODY_KEPT).collect(),
                    response_time_ms: started.elapsed().as_millis() as u64,
                    error: (!status.is_success())
                        .then(|| format!("the receiver answered {status}")),
                }
            }
            Err(e) => {
                let why = if e.is_timeout() {
                    format!("no answer within {} s", TIMEOUT.as_secs())
                } else if e.is_connect() {
                    "could not connect to the receiver".to_string()
                } else {
                    "the request failed".to_string()
                };
                Outcome::failed(why, started)
            }
        }
    }
}

/// The scheme and the addresses the host resolves to, just before sending.
async fn check_target(url: &str) -> Result<(), String> {
    sign::check_webhook_url(url, "url")?;
    let u = url::Url::parse(url).map_err(|e| format!("url: {e}"))?;
    let host = u.host_str().ok_or("url: no host")?.to_string();
    let port = u.port_or_known_default().unwrap_or(80);
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let addrs = tokio::net::lookup_host((host.as_str(), port))
        .await
        .map_err(|_| format!("{host} does not resolve"))?;
    let mut any = false;
    for a in addrs {
        any = true;
        sign::check_resolved_addr(a.ip()).map_err(|e| format!("{host}: {e}"))?;
    }
    if !any {
        return Err(format!("{host} does not resolve"));
    }
    Ok(())
}

/// What the dispatcher uses.
pub struct Env {
    pub store: Store,
    pub keys: Keys,
    pub clock: Arc<dyn Clock>,
    /// Notified when a delivery is queued.
    pub wake: Arc<Notify>,
}

type RuleLimiter =
    RateLimiter<String, governor::state::keyed::HashMapStateStore<String>, DefaultClock>;

/// Shared by the dispatcher and its delivery tasks.
struct Shared {
    env: Arc<Env>,
    sender: Sender,
    limiter: RuleLimiter,
    in_flight: Mutex<HashSet<i64>>,
    slots: Semaphore,
}

/// Runs until `stop` changes: delivers what the outbox holds (at start, what an earlier run
/// left) and whatever is queued later. Deliveries waiting for a retry when it stops stay in
/// the outbox for the next start.
pub async fn run(env: Arc<Env>, mut stop: watch::Receiver<bool>) {
    let per_minute = NonZeroU32::new(PER_RULE_PER_MINUTE).expect("non-zero");
    let shared = Arc::new(Shared {
        env,
        sender: Sender::new(),
        limiter: RateLimiter::hashmap(Quota::per_minute(per_minute)),
        in_flight: Mutex::new(HashSet::new()),
        slots: Semaphore::new(CONCURRENT),
    });
    let mut tasks = tokio::task::JoinSet::new();
    let mut pruned_at = None::<Instant>;
    loop {
        while tasks.try_join_next().is_some() {}
        // The delivery log keeps LOG_DAYS days.
        if pruned_at.is_none_or(|t| t.elapsed() >= Duration::from_secs(3600)) {
            pruned_at = Some(Instant::now());
            let before = shared.env.clock.now_ms() - LOG_DAYS * 86_400_000;
            if let Err(e) = shared
                .env
                .store
                .write(move |c| sql::prune_logs(c, before))
                .await
            {
                tracing::warn!(error = %e, "cannot prune the webhook log");
            }
        }
        let busy = shared
            .in_flight
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len() as u32;
        match shared
            .env
            .store
            .write(move |c| sql::due(c, i64::MAX, busy + 64))
            .await
        {
            Ok(due) => {
                for d in due {
                    let fresh = shared
                        .in_flight
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(d.outbox.id);
                    if fresh {
                        tasks.spawn(deliver(shared.clone(), d));
                    }
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot read the webhook outbox; will retry"),
        }
        // A queued delivery, a finished one (room for more of a large backlog), or a periodic
        // look.
        tokio::select! {
            _ = shared.env.wake.notified() => {}
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            _ = tokio::time::sleep(Duration::from_secs(30)) => {}
            _ = stop.changed() => break,
        }
    }
    tasks.shutdown().await;
}

fn unseal_headers(keys: &Keys, sealed: Option<&[u8]>) -> BTreeMap<String, String> {
    sealed
        .and_then(|s| keys.unseal(s).ok())
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

/// Delivers one outbox row: attempts until a 2xx or the retries run out.
async fn deliver(shared: Arc<Shared>, d: Delivery) {
    let id = d.outbox.id;
    // A scan can return a row whose task finished (and left the in-flight set) after the scan
    // read it: the row itself says whether it is still queued, and with how many attempts.
    // (Read on the writer, so after any commit that ended the delivery.)
    let queued = shared
        .env
        .store
        .write(move |c| sql::outbox_attempts(c, id))
        .await;
    match queued {
        Ok(Some(attempts)) => deliver_queued(&shared, d, attempts).await,
        Ok(None) => {}
        Err(e) => tracing::error!(delivery = id, error = %e, "cannot read the webhook outbox"),
    }
    shared
        .in_flight
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&id);
}

async fn deliver_queued(shared: &Shared, d: Delivery, attempts: u32) {
    let env = &shared.env;
    let id = d.outbox.id;
    let headers = unseal_headers(&env.keys, d.headers_sealed.as_deref());
    let secret = d
        .secret_sealed
        .as_deref()
        .and_then(|s| env.keys.unseal(s).ok());
    let mut attempt = attempts as usize;
    loop {
        while let Err(nu) = shared.limiter.check_key(&d.outbox.rule_id) {
            tokio::time::sleep(nu.wait_time_from(DefaultClock::default().now())).await;
        }
        let out = {
            let _slot = shared.slots.acquire().await;
            shared
                .sender
                .post(
                    &d.url,
                    &headers,
                    &d.outbox.body,
                    secret.as_deref(),
                    Some(id),
                    env.clock.now_ms() / 1000,
                )
                .await
        };
        let now = env.clock.now_ms();
        let last = out.success || attempt >= BACKOFF.len();
        let log = WebhookLogRow {
            id: 0,
            alert_rule_id: Some(d.outbox.rule_id.clone()),
            event_id: d.outbox.event_id.clone(),
            url: d.url.clone(),
            status_code: out.status_code,
            response_time_ms: Some(out.response_time_ms),
            retry_count: attempt as u32,
            success: out.success,
            error_message: out.error.clone(),
            created_at: now,
        };
        if !out.success {
            tracing::warn!(rule.id = %d.outbox.rule_id, delivery = id, attempt, error = ?out.error, "webhook delivery failed");
        }
        let next = attempt + 1;
        let wait = BACKOFF.get(attempt).copied().unwrap_or_default();
        let next_at = now + wait.as_millis() as i64;
        let saved = env
            .store
            .write(move |c| {
                if last {
                    sql::finish(c, id, &log)
                } else {
                    let tx = c.transaction()?;
                    sql::insert_log(&tx, &log)?;
                    sql::retry_later(&tx, id, next as u32, next_at)?;
                    tx.commit()?;
                    Ok(())
                }
            })
            .await;
        if let Err(e) = saved {
            tracing::error!(delivery = id, error = %e, "cannot record a webhook attempt");
        }
        if last {
            break;
        }
        tokio::time::sleep(wait).await;
        attempt = next;
    }
}
