//! The alert engine: a subscriber of the event stream that evaluates every enabled alert rule
//! for every new event, from every source (RTSP, V4L2, files, UniFi Protect, `POST /events`),
//! and again when a description arrives for rules that wait for words in it.
//!
//! A rule that matches and is out of its cooldown fires in one transaction: its trigger time
//! and count, its in-app notification and its webhook delivery (in the durable outbox) are
//! written together, or not at all. The notification is then published on the stream
//! (`/ws` sends it as `notification.new`) and the webhook dispatcher is woken.
//!
//! Falling behind: the engine reads the stream in order and does one small database read per
//! event (plus one write per firing rule), so it keeps up with far more events than cameras
//! make. Should it still fall more than the stream's ring behind, the messages it lost are
//! counted (`alerts` in the stream's lag counters) and logged, and the engine goes on with the
//! oldest one kept; memory never grows.

use super::links::MediaLinks;
use super::rules::{self, Conditions, EventFacts, Verdict};
use crate::bus::{Alert, Bus, Change, EventInfo, Message, Missed, Notice, Subscriber};
use crate::clock::Clock;
use crate::store::alerts::{self as sql, AlertRuleRow, NotificationRow};
use crate::store::Store;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use tokio::sync::{watch, Notify};

/// Events remembered (which rules fired for them) for when their description arrives.
const REMEMBERED: usize = 1000;
/// How long an event is remembered.
const DESCRIPTION_WAIT_MS: i64 = 10 * 60_000;

/// What the engine uses.
pub struct Env {
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    pub bus: Bus,
    pub links: MediaLinks,
    /// Wakes the webhook dispatcher when a delivery is queued.
    pub outbox: Arc<Notify>,
}

/// What the engine remembers about a recent event.
#[derive(Default)]
struct Recent {
    /// Rules that fired for the event (a description does not fire them again).
    fired: Vec<String>,
    /// Those with a webhook (they get an update with the description).
    fired_webhooks: Vec<String>,
}

/// Recent events, oldest first, at most [`REMEMBERED`].
#[derive(Default)]
struct Memory {
    order: VecDeque<(String, i64)>,
    by_event: HashMap<String, Recent>,
}

impl Memory {
    fn entry(&mut self, event_id: &str, now: i64) -> &mut Recent {
        if !self.by_event.contains_key(event_id) {
            if self.order.len() == REMEMBERED {
                if let Some((old, _)) = self.order.pop_front() {
                    self.by_event.remove(&old);
                }
            }
            self.order.push_back((event_id.to_string(), now));
        }
        self.by_event.entry(event_id.to_string()).or_default()
    }

    fn expire(&mut self, now: i64) {
        while let Some((id, at)) = self.order.front() {
            if now - at < DESCRIPTION_WAIT_MS {
                break;
            }
            self.by_event.remove(id);
            self.order.pop_front();
        }
    }
}

/// The facts a rule is evaluated on, with the event's local weekday and time.
pub fn facts(row: &crate::store::events::EventRow) -> EventFacts {
    let (weekday, minute_of_day) = crate::clock::local_parts(row.ts);
    EventFacts {
        camera_id: row.camera_id.clone(),
        detection_type: row.detection_type.clone(),
        objects: row.objects_detected.clone(),
        is_doorbell_ring: row.is_doorbell_ring,
        confidence: row.confidence,
        // An event that will get no description never will: words cannot match.
        description: match (&row.description, row.description_pending) {
            (Some(d), _) => Some(d.clone()),
            (None, true) => None,
            (None, false) => Some(String::new()),
        },
        weekday,
        minute_of_day,
    }
}

/// The rule's conditions; a row whose JSON does not parse (it was validated on the way in, so
/// only a hand-edited database does this) never matches.
pub fn conditions(rule: &AlertRuleRow) -> Option<Conditions> {
    match serde_json::from_str(&rule.conditions) {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::error!(rule.id = %rule.id, error = %e, "alert rule conditions do not parse; rule skipped");
            None
        }
    }
}

/// The JSON a rule's webhook receives: `alert` when the rule fires, `alert.updated` when the
/// description arrives afterwards. The media links are signed; `clip_url` is null until the
/// event's clip is complete (so always in an `alert` sent as the event happens).
pub fn webhook_body(
    kind: &str,
    e: &EventInfo,
    rule: &AlertRuleRow,
    thumbnail_url: Option<&str>,
    clip_url: Option<&str>,
) -> String {
    let r = &e.row;
    serde_json::json!({
        "type": kind,
        "event_id": r.id,
        "timestamp": crate::clock::format_rfc3339(r.ts),
        "camera": {"id": r.camera_id, "name": e.camera_name},
        "detection_type": r.detection_type,
        "description": r.description,
        "confidence": r.confidence,
        "objects_detected": r.objects_detected,
        "is_doorbell_ring": r.is_doorbell_ring,
        "source_type": r.source_type,
        "thumbnail_url": thumbnail_url,
        "has_clip": r.clip_path.is_some(),
        "clip_url": clip_url,
        "rule": {"id": rule.id, "name": rule.name},
    })
    .to_string()
}

/// Runs until `stop` changes or the stream closes, reading `sub` (subscribed before any camera
/// starts, so no event of this run is missed).
pub async fn run(env: Arc<Env>, mut sub: Subscriber, mut stop: watch::Receiver<bool>) {
    let mut memory = Memory::default();
    loop {
        let next = tokio::select! {
            m = sub.recv() => m,
            _ = stop.changed() => break,
        };
        match next {
            Ok((_, Message::EventCreated(e))) => on_created(&env, &mut memory, &e).await,
            Ok((_, Message::EventUpdated(e, Change::Description))) => {
                on_described(&env, &mut memory, &e).await
            }
            Ok(_) => {}
            // Counted and logged by the stream; go on with the oldest message kept.
            Err(Missed::Lagged(_)) => {}
            Err(Missed::Closed) => break,
        }
    }
}

async fn enabled_rules(env: &Env) -> Vec<AlertRuleRow> {
    match env.store.read(|c| sql::list_rules(c, Some(true))).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "cannot read the alert rules; this event is not evaluated");
            Vec::new()
        }
    }
}

async fn on_created(env: &Env, memory: &mut Memory, e: &Arc<EventInfo>) {
    let now = env.clock.now_ms();
    memory.expire(now);
    let facts = facts(&e.row);
    for rule in enabled_rules(env).await {
        let Some(c) = conditions(&rule) else { continue };
        // `AwaitDescription`: evaluated again when the description arrives.
        if rules::evaluate(&c, &facts) == Verdict::Match {
            fire(env, memory, &rule, e).await;
        }
    }
}

/// A description arrived (first time, or a re-analysis): rules that wait for words are
/// evaluated again, unless they already fired for this event; rules whose webhook fired before
/// it came send it on as `alert.updated`.
async fn on_described(env: &Env, memory: &mut Memory, e: &Arc<EventInfo>) {
    let now = env.clock.now_ms();
    let recent = memory.entry(&e.row.id, now);
    let (fired, updates) = (recent.fired.clone(), recent.fired_webhooks.clone());
    let facts = facts(&e.row);
    let rules = enabled_rules(env).await;
    for rule in rules.iter().filter(|r| !fired.contains(&r.id)) {
        let Some(c) = conditions(rule) else { continue };
        if !c.description_contains.is_empty() && rules::evaluate(&c, &facts) == Verdict::Match {
            fire(env, memory, rule, e).await;
        }
    }
    for rule in rules.iter().filter(|r| updates.contains(&r.id)) {
        let body = webhook_body(
            "alert.updated",
            e,
            rule,
            env.links.thumbnail_url(&e.row).as_deref(),
            env.links.clip_url(&e.row).as_deref(),
        );
        let (rid, eid, now) = (rule.id.clone(), e.row.id.clone(), env.clock.now_ms());
        match env
            .store
            .write(move |c| sql::enqueue(c, &rid, Some(&eid), "update", &body, now))
            .await
        {
            Ok(_) => env.outbox.notify_one(),
            Err(err) => {
                tracing::error!(rule.id = %rule.id, error = %err, "cannot queue a webhook update")
            }
        }
    }
}

/// Fires a rule for an event, unless it is within its cooldown.
async fn fire(env: &Env, memory: &mut Memory, rule: &AlertRuleRow, e: &Arc<EventInfo>) {
    let now = env.clock.now_ms();
    let thumb = env.links.thumbnail_url(&e.row);
    let description = e
        .row
        .description
        .as_ref()
        .map(|d| d.chars().take(200).collect::<String>());
    let title = format!(
        "{}: {} on {}",
        rule.name,
        e.row.detection_type,
        e.camera_name.as_deref().unwrap_or("a camera")
    );
    let notice = rule.dashboard_notification.then(|| NotificationRow {
        id: crate::crypto::new_uuid(),
        event_id: Some(e.row.id.clone()),
        rule_id: Some(rule.id.clone()),
        rule_name: Some(rule.name.clone()),
        kind: "rule".into(),
        title: Some(title.clone()),
        event_description: description,
        read: false,
        created_at: now,
    });
    let webhook = rule.webhook_url.is_some().then(|| {
        let clip = env.links.clip_url(&e.row);
        webhook_body("alert", e, rule, thumb.as_deref(), clip.as_deref())
    });
    let has_webhook = webhook.is_some();
    let (rid, eid, row) = (rule.id.clone(), e.row.id.clone(), notice.clone());
    let fired = env
        .store
        .write(move |c| {
            let tx = c.transaction()?;
            if !sql::try_trigger(&tx, &rid, now)? {
                return Ok(false);
            }
            if let Some(n) = &row {
                sql::insert_notification(&tx, n)?;
            }
            if let Some(body) = &webhook {
                sql::enqueue(&tx, &rid, Some(&eid), "event", body, now)?;
            }
            tx.commit()?;
            Ok(true)
        })
        .await;
    match fired {
        Ok(true) => {}
        Ok(false) => {
            tracing::debug!(rule.id = %rule.id, event.id = %e.row.id, "alert rule in its cooldown");
            return;
        }
        Err(err) => {
            tracing::error!(rule.id = %rule.id, event.id = %e.row.id, error = %err, "cannot fire an alert rule");
            return;
        }
    }
    tracing::info!(rule.id = %rule.id, rule.name = %rule.name, event.id = %e.row.id, "alert rule fired");
    let recent = memory.entry(&e.row.id, now);
    recent.fired.push(rule.id.clone());
    if has_webhook {
        recent.fired_webhooks.push(rule.id.clone());
        env.outbox.notify_one();
    }
    if rule.mqtt {
        env.bus.publish(
            now,
            Message::AlertFired(Arc::new(Alert {
                rule_id: rule.id.clone(),
                rule_name: rule.name.clone(),
                title: title.clone(),
                event: e.clone(),
                thumbnail_url: thumb.clone(),
            })),
        );
    }
    if let Some(n) = notice {
        env.bus.publish(
            now,
            Message::NotificationCreated(Arc::new(Notice {
                id: n.id,
                kind: "rule",
                event_id: n.event_id,
                rule_id: n.rule_id,
                rule_name: n.rule_name,
                title: n.title.unwrap_or_default(),
                event_description: n.event_description,
                thumbnail_url: thumb,
                extra: serde_json::Value::Null,
                created_at: n.created_at,
            })),
        );
    }
}
