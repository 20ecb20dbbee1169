//! Cloud descriptions of events: which events get one (an object event, a provider configured,
//! the cost caps not reached, the camera's minimum interval passed), running the provider chain
//! (`crate::ai`) in the background after the event was announced, writing the answer (or why
//! there is none) onto the event through the event lifecycle (which publishes the update), one
//! usage row per provider call, cost-cap notifications (stored and published), and the figures
//! `/ai/*` reports. The describer holds the handles it uses (store, settings, events, stream,
//! clock).
//!
//! Invariants: an event is stored and announced before any cloud call starts, and a failed,
//! late or capped description never removes or blocks it; every provider call (success or
//! failure) leaves a usage row; an API key is unsealed only to build the request.

use crate::ai::{self, Breakers, ChainOutcome, ChainPolicy, ChainRequest, ProviderConfig};
use crate::bus::{Bus, Message, Notice};
use crate::clock::Clock;
use crate::events::Events;
use crate::settings::{ProviderName, Settings, SettingsHandle};
use crate::store::ai::{Description, UsageRow};
use crate::store::Store;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Descriptions running at once; more wait for a slot (each holds at most one snapshot).
const CONCURRENT: usize = 2;
/// Prompts remembered for `/ai/context-metrics`.
const METRICS_KEPT: usize = 200;

/// Why an event gets no description.
#[derive(Debug, Clone, PartialEq)]
pub enum Skip {
    /// No provider has a key (or, for a local server, a base URL).
    NoProvider,
    /// A cost cap is reached; the text says which.
    Capped(String),
    /// The camera's previous cloud call was less than `ai_min_interval_seconds` ago.
    Interval,
}

/// One prompt, for `/ai/context-metrics`.
#[derive(Debug, Clone)]
pub struct PromptMetric {
    pub tokens: u64,
    pub sources: Vec<&'static str>,
    pub build_us: u64,
}

#[derive(Default)]
pub struct Counters {
    /// Events handed to the cloud.
    pub requested: AtomicU64,
    pub described: AtomicU64,
    pub failed: AtomicU64,
    pub skipped_cap: AtomicU64,
    pub skipped_interval: AtomicU64,
    pub skipped_no_provider: AtomicU64,
}

/// The cloud describer; held in an `Arc` by the services that hand it events.
pub struct Describer {
    client: Option<reqwest::Client>,
    store: Store,
    settings: SettingsHandle,
    events: Events,
    bus: Bus,
    clock: Arc<dyn Clock>,
    pub breakers: Breakers,
    last_call: Mutex<HashMap<String, i64>>,
    slots: tokio::sync::Semaphore,
    pub counters: Counters,
    metrics: Mutex<VecDeque<PromptMetric>>,
}

/// What a cloud call is for, as its usage rows record it.
#[derive(Debug, Clone, Copy)]
pub struct For<'a> {
    /// `event`, `reanalyse`, `describe` or `refine`.
    pub purpose: &'a str,
    pub event_id: Option<&'a str>,
    pub camera_id: Option<&'a str>,
}

impl<'a> For<'a> {
    /// A call not about an event (`describe`, `refine`).
    pub fn request(purpose: &'a str) -> For<'a> {
        For {
            purpose,
            event_id: None,
            camera_id: None,
        }
    }
}

/// What a description works from.
pub struct Job {
    pub event_id: String,
    pub camera_id: String,
    pub camera_name: String,
    pub prompt_override: Option<String>,
    pub jpeg: Vec<u8>,
    pub seen: Vec<ai::SeenObject>,
    pub ts_ms: i64,
}

impl Describer {
    /// The providers to try, in the owner's order, with their keys; unusable ones left out.
    pub async fn providers(&self, settings: &Settings) -> Vec<ProviderConfig> {
        let mut out = Vec::new();
        for name in &settings.ai_provider_order {
            let p = settings.ai_providers.get(name).cloned().unwrap_or_default();
            let key = if p.configured {
                self.settings.provider_key(*name).await.unwrap_or_default()
            } else {
                String::new()
            };
            let cfg = ProviderConfig {
                name: *name,
                api_key: key,
                base_url: p.base_url.unwrap_or_default(),
                model: p.model.unwrap_or_default(),
            };
            let local_ready =
                *name == ProviderName::OpenaiCompatible && settings.ai_providers.contains_key(name);
            if cfg.usable() && (p.configured || local_ready) {
                out.push(cfg);
            }
        }
        out
    }

    /// The caps in force and what was spent against them: (label, period key, spent, cap).
    async fn cap_status(&self, settings: &Settings) -> Vec<(&'static str, String, f64, f64)> {
        cap_status(&self.store, &*self.clock, settings).await
    }

    /// `Some(text)` when a cost cap stops cloud calls.
    pub async fn capped(&self, settings: &Settings) -> Option<String> {
        self.cap_status(settings)
        .await
        .into_iter()
        .find(|(_, _, spent, cap)| spent >= cap)
        .map(|(label, _, spent, cap)| {
            format!("cloud descriptions paused: {label} cost cap of ${cap:.2} reached (${spent:.4} spent)")
        })
    }
}

fn utc_day_start(ms: i64) -> i64 {
    ms - ms.rem_euclid(86_400_000)
}

fn utc_month_start(ms: i64) -> (i64, String) {
    let t = time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let first = t
        .replace_day(1)
        .unwrap_or(t)
        .replace_time(time::Time::MIDNIGHT);
    (
        first.unix_timestamp() * 1000,
        format!("{:04}-{:02}", t.year(), u8::from(t.month())),
    )
}

/// The caps in force and what was spent against them: (label, period key, spent, cap).
async fn cap_status(
    store: &Store,
    clock: &dyn Clock,
    settings: &Settings,
) -> Vec<(&'static str, String, f64, f64)> {
    let now = clock.now_ms();
    let day = utc_day_start(now);
    let (month, month_key) = utc_month_start(now);
    let spent = store
        .read(move |c| {
            Ok((
                crate::store::ai::cost_since(c, day)?,
                crate::store::ai::cost_since(c, month)?,
            ))
        })
        .await;
    let (spent_day, spent_month) = spent.unwrap_or((0.0, 0.0));
    let mut out = Vec::new();
    if let Some(cap) = settings.ai_daily_cost_cap_usd {
        out.push((
            "daily",
            format!("day:{}", crate::clock::utc_day(now)),
            spent_day,
            cap,
        ));
    }
    if let Some(cap) = settings.ai_monthly_cost_cap_usd {
        out.push(("monthly", format!("month:{month_key}"), spent_month, cap));
    }
    out
}

impl Describer {
    pub fn new(
        store: Store,
        settings: SettingsHandle,
        events: Events,
        bus: Bus,
        clock: Arc<dyn Clock>,
    ) -> Describer {
        let client = match ai::http_client() {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::error!(error = %e, "no HTTP client for cloud AI: descriptions are off");
                None
            }
        };
        Describer {
            client,
            breakers: Breakers::new(clock.clone()),
            store,
            settings,
            events,
            bus,
            clock,
            last_call: Mutex::new(HashMap::new()),
            slots: tokio::sync::Semaphore::new(CONCURRENT),
            counters: Counters::default(),
            metrics: Mutex::new(VecDeque::new()),
        }
    }

    /// Decides whether a new object event of `camera_id` gets a description, and if so
    /// reserves the camera's interval. Called before the event is stored, so that it can be
    /// stored with `description_pending` set.
    pub async fn admit(&self, camera_id: &str) -> Result<(), Skip> {
        let c = &self.counters;
        let settings = self.settings.get().await.unwrap_or_default();
        if self.client.is_none() || self.providers(&settings).await.is_empty() {
            c.skipped_no_provider.fetch_add(1, Ordering::Relaxed);
            return Err(Skip::NoProvider);
        }
        if let Some(why) = self.capped(&settings).await {
            c.skipped_cap.fetch_add(1, Ordering::Relaxed);
            return Err(Skip::Capped(why));
        }
        let now = self.clock.now_ms();
        let mut last = self.last_call.lock().unwrap_or_else(|e| e.into_inner());
        let min = settings.ai_min_interval_seconds as i64 * 1000;
        if last
            .get(camera_id)
            .is_some_and(|t| now.saturating_sub(*t) < min)
        {
            c.skipped_interval.fetch_add(1, Ordering::Relaxed);
            return Err(Skip::Interval);
        }
        last.insert(camera_id.to_string(), now);
        Ok(())
    }

    pub fn prompt_metrics(&self) -> Vec<PromptMetric> {
        self.metrics
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .cloned()
            .collect()
    }

    fn remember(&self, m: PromptMetric) {
        let mut q = self.metrics.lock().unwrap_or_else(|e| e.into_inner());
        if q.len() == METRICS_KEPT {
            q.pop_front();
        }
        q.push_back(m);
    }

    /// Builds the prompts for a picture, recording what went into them.
    pub fn prompts(
        &self,
        camera_name: Option<&str>,
        ts_ms: i64,
        seen: &[ai::SeenObject],
        prompt_override: Option<&str>,
    ) -> (String, String) {
        let started = std::time::Instant::now();
        let system = ai::system_prompt().to_string();
        let user = ai::user_prompt(
            camera_name.unwrap_or("(not given)"),
            &local_time(ts_ms),
            seen,
            prompt_override,
        );
        let mut sources = vec!["local_time"];
        if camera_name.is_some() {
            sources.push("camera_name");
        }
        if !seen.is_empty() {
            sources.push("local_detections");
        }
        if prompt_override.is_some_and(|p| !p.trim().is_empty()) {
            sources.push("prompt_override");
        }
        self.remember(PromptMetric {
            // About four characters a token for English text.
            tokens: ((system.len() + user.len()) / 4) as u64,
            sources,
            build_us: started.elapsed().as_micros() as u64,
        });
        (system, user)
    }

    /// Runs the provider chain on an image and writes one usage row per call. `Err` only when
    /// the image is not usable or no provider is configured.
    pub async fn run(
        &self,
        image: Vec<u8>,
        system: &str,
        user: &str,
        what: For<'_>,
    ) -> Result<ChainOutcome, RunError> {
        let For {
            purpose,
            event_id,
            camera_id,
        } = what;
        let client = self.client.as_ref().ok_or(RunError::NoProvider)?;
        let settings = self.settings.get().await.unwrap_or_default();
        let providers = self.providers(&settings).await;
        if providers.is_empty() {
            return Err(RunError::NoProvider);
        }
        // Bounded: refused before decoding when too large, and a few decodes at once.
        let prepared = ai::image::prepare_bounded(image, ai::image::MAX_LONG_SIDE)
            .await
            .map_err(|e| RunError::Image(e.to_string()))?;
        let overrides: HashMap<String, (f64, f64)> = settings
            .ai_prices
            .iter()
            .map(|(m, p)| (m.clone(), (p.input_per_mtok, p.output_per_mtok)))
            .collect();
        let policy = ChainPolicy {
            budget: Duration::from_secs(settings.ai_description_budget_seconds as u64),
            ..Default::default()
        };
        let _slot = self.slots.acquire().await;
        let outcome = ai::run_chain(
            client,
            &ChainRequest {
                providers: &providers,
                jpeg: &prepared.jpeg,
                system,
                user,
                price_overrides: &overrides,
            },
            &policy,
            &self.breakers,
        )
        .await;
        let rows: Vec<UsageRow> = outcome
            .attempts
            .iter()
            .map(|a| UsageRow {
                ts: a.started_ms,
                provider: a.provider.as_str().into(),
                model: a.model.clone(),
                event_id: event_id.map(String::from),
                camera_id: camera_id.map(String::from),
                purpose: purpose.into(),
                tokens_in: a.tokens_in,
                tokens_out: a.tokens_out,
                cost_usd: a.cost_usd,
                latency_ms: a.latency_ms,
                outcome: a.outcome.into(),
                error: a.error.clone(),
            })
            .collect();
        if !rows.is_empty() {
            if let Err(e) = self
                .store
                .write(move |c| crate::store::ai::insert_usage(c, &rows))
                .await
            {
                tracing::error!(error = %e, "could not record AI usage");
            }
            self.alert_caps(&settings).await;
        }
        Ok(outcome)
    }

    /// Sends `notification.new` when spending crosses 50, 80 or 100 % of a cap (once per level
    /// and period, remembered across restarts).
    async fn alert_caps(&self, settings: &Settings) {
        for (label, period, spent, cap) in self.cap_status(settings).await {
            if cap <= 0.0 && spent <= 0.0 {
                continue;
            }
            let pct = if cap <= 0.0 {
                100.0
            } else {
                spent / cap * 100.0
            };
            let level = [100u32, 80, 50]
                .into_iter()
                .find(|l| pct >= *l as f64)
                .unwrap_or(0);
            if level == 0 {
                continue;
            }
            let key = period.clone();
            let sent = self
                .store
                .read(move |c| crate::store::ai::cap_alert_level(c, &key))
                .await
                .unwrap_or(0);
            if sent >= level {
                continue;
            }
            let key = period.clone();
            let _ = self
                .store
                .write(move |c| crate::store::ai::set_cap_alert_level(c, &key, level))
                .await;
            let message = if level >= 100 {
                format!("The {label} cloud AI cost cap of ${cap:.2} is reached (${spent:.2}): cloud descriptions are paused; events are still recorded from on-device detection.")
            } else {
                format!(
                    "{level} % of the {label} cloud AI cost cap used (${spent:.2} of ${cap:.2})."
                )
            };
            tracing::warn!(cap = label, level, spent, "cloud AI cost alert");
            let now = self.clock.now_ms();
            let notice = Notice {
                id: crate::crypto::new_uuid(),
                kind: "ai_cost",
                event_id: None,
                rule_id: None,
                rule_name: None,
                title: format!("Cloud AI {label} cost at {level} %"),
                event_description: Some(message.clone()),
                thumbnail_url: None,
                extra: serde_json::json!({
                    "level": level,
                    "period": period,
                    "cap_usd": cap,
                    "spent_usd": spent,
                    "message": message,
                }),
                created_at: now,
            };
            // Stored like every notification (listed, marked read, deleted), then announced.
            let row = crate::store::alerts::NotificationRow {
                id: notice.id.clone(),
                event_id: None,
                rule_id: None,
                rule_name: None,
                kind: "ai_cost".into(),
                title: Some(notice.title.clone()),
                event_description: notice.event_description.clone(),
                read: false,
                created_at: now,
            };
            if let Err(e) = self
                .store
                .write(move |c| crate::store::alerts::insert_notification(c, &row))
                .await
            {
                tracing::error!(error = %e, "could not store a cost-cap notification");
            }
            self.bus
                .publish(now, Message::NotificationCreated(Arc::new(notice)));
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(
        "no cloud AI provider is configured (set ai_providers.<name>.api_key in /system/settings)"
    )]
    NoProvider,
    #[error("the image cannot be used: {0}")]
    Image(String),
}

/// The local time of a timestamp, for prompts: `2026-11-28 21:03 (Saturday)`.
pub fn local_time(ms: i64) -> String {
    let t = (ms / 1000) as libc::time_t;
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: `t` and `tm` are valid for the call; localtime_r is thread-safe.
    unsafe { libc::localtime_r(&t, &mut tm) };
    const DAYS: [&str; 7] = [
        "Sunday",
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
    ];
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02} ({})",
        tm.tm_year + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        DAYS[tm.tm_wday.clamp(0, 6) as usize]
    )
}

/// Describes an event in the background: runs the chain and writes the result onto the event
/// (which publishes `EventUpdated`).
pub fn spawn(d: &Arc<Describer>, job: Job) {
    let d = d.clone();
    tokio::spawn(async move {
        d.counters.requested.fetch_add(1, Ordering::Relaxed);
        let (system, user) = d.prompts(
            Some(&job.camera_name),
            job.ts_ms,
            &job.seen,
            job.prompt_override.as_deref(),
        );
        let result = d
            .run(
                job.jpeg,
                &system,
                &user,
                For {
                    purpose: "event",
                    event_id: Some(&job.event_id),
                    camera_id: Some(&job.camera_id),
                },
            )
            .await;
        let desc = describe_result(result, false);
        if desc.description.is_some() {
            d.counters.described.fetch_add(1, Ordering::Relaxed);
        } else {
            d.counters.failed.fetch_add(1, Ordering::Relaxed);
        }
        if let Err(e) = d.events.describe(&job.event_id, desc).await {
            tracing::warn!(event.id = %job.event_id, error = ?e, "could not store a description");
        }
    });
}

/// What a chain result writes onto an event.
pub fn describe_result(result: Result<ChainOutcome, RunError>, add_cost: bool) -> Description {
    match result {
        Ok(o) => {
            let cost = o.cost_usd();
            match o.answer {
                Some((provider, _answer, parsed)) => Description {
                    description: Some(parsed.description),
                    ai_confidence: parsed.confidence,
                    threat_level: parsed.threat_level,
                    provider_used: Some(provider.as_str().into()),
                    ai_fallback_used: o.fallback_used,
                    ai_error: None,
                    ai_cost_usd: Some(cost),
                    add_cost,
                },
                None => Description {
                    ai_error: o.error.or(Some("no provider answered".into())),
                    ai_cost_usd: Some(cost),
                    ai_fallback_used: o.fallback_used,
                    add_cost,
                    ..Default::default()
                },
            }
        }
        Err(e) => Description {
            ai_error: Some(e.to_string()),
            add_cost,
            ..Default::default()
        },
    }
}
