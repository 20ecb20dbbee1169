//! Alert rule rows and their cooldown, in-app notifications, the webhook outbox (deliveries
//! waiting to be sent or retried) and the webhook delivery log. Rule conditions are JSON text
//! and webhook headers and secrets sealed blobs: this module stores them as given, the meaning
//! lives in the `alerts` module.

use super::{is_fk_violation, is_unique_violation, StoreError, StoreResult};
use rusqlite::types::Value;
use rusqlite::{named_params, Connection, OptionalExtension, Row};

// ---- Alert rules -------------------------------------------------------------------------

/// One `alert_rules` row.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AlertRuleRow {
    pub id: String,
    pub name: String,
    pub is_enabled: bool,
    /// JSON of `alerts::rules::Conditions`.
    pub conditions: String,
    pub dashboard_notification: bool,
    pub webhook_url: Option<String>,
    /// Sealed JSON object of extra request headers (see `crypto::Keys::seal`).
    pub webhook_headers: Option<Vec<u8>>,
    /// Sealed signing secret.
    pub webhook_secret: Option<Vec<u8>>,
    /// Publish the alert to the MQTT broker.
    pub mqtt: bool,
    /// 0 to 1440.
    pub cooldown_minutes: u32,
    pub last_triggered_at: Option<i64>,
    pub trigger_count: u64,
    pub created_at: i64,
    pub updated_at: i64,
}

const RULE_COLUMNS: &str = "id, name, is_enabled, conditions, dashboard_notification, \
    webhook_url, webhook_headers, webhook_secret, cooldown_minutes, last_triggered_at, \
    trigger_count, created_at, updated_at, mqtt";

fn rule_from_row(r: &Row<'_>) -> rusqlite::Result<AlertRuleRow> {
    Ok(AlertRuleRow {
        id: r.get(0)?,
        name: r.get(1)?,
        is_enabled: r.get(2)?,
        conditions: r.get(3)?,
        dashboard_notification: r.get(4)?,
        webhook_url: r.get(5)?,
        webhook_headers: r.get(6)?,
        webhook_secret: r.get(7)?,
        cooldown_minutes: r.get(8)?,
        last_triggered_at: r.get(9)?,
        trigger_count: r.get(10)?,
        created_at: r.get(11)?,
        updated_at: r.get(12)?,
        mqtt: r.get(13)?,
    })
}

/// Inserts a rule as given (its trigger figures included).
pub fn insert_rule(conn: &Connection, a: &AlertRuleRow) -> StoreResult<()> {
    let sql = format!(
        "INSERT INTO alert_rules ({RULE_COLUMNS}) VALUES (:id, :name, :is_enabled, :conditions, \
         :dashboard, :url, :headers, :secret, :cooldown, :last, :count, :created_at, :updated_at, :mqtt)"
    );
    let res = conn.prepare_cached(&sql)?.execute(named_params! {
        ":id": a.id, ":name": a.name, ":is_enabled": a.is_enabled, ":conditions": a.conditions,
        ":dashboard": a.dashboard_notification, ":url": a.webhook_url,
        ":headers": a.webhook_headers, ":secret": a.webhook_secret,
        ":cooldown": a.cooldown_minutes, ":last": a.last_triggered_at,
        ":count": a.trigger_count, ":created_at": a.created_at, ":updated_at": a.updated_at,
        ":mqtt": a.mqtt,
    });
    match res {
        Ok(_) => Ok(()),
        Err(e) if is_unique_violation(&e) => Err(StoreError::Conflict(
            "An alert rule with this id already exists".into(),
        )),
        Err(e) => Err(e.into()),
    }
}

pub fn get_rule(conn: &Connection, id: &str) -> StoreResult<AlertRuleRow> {
    let sql = format!("SELECT {RULE_COLUMNS} FROM alert_rules WHERE id = ?1");
    conn.prepare_cached(&sql)?
        .query_row([id], rule_from_row)
        .optional()?
        .ok_or(StoreError::NotFound("Alert rule"))
}

/// All rules, or only the enabled (or disabled) ones, oldest first.
pub fn list_rules(conn: &Connection, is_enabled: Option<bool>) -> StoreResult<Vec<AlertRuleRow>> {
    let sql = format!(
        "SELECT {RULE_COLUMNS} FROM alert_rules WHERE (?1 IS NULL OR is_enabled = ?1) \
         ORDER BY created_at, id"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map([is_enabled], rule_from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Replaces what a user edits: name, enabled, conditions, actions, cooldown and `updated_at`.
/// The trigger figures (`last_triggered_at`, `trigger_count`) belong to [`try_trigger`] and
/// `created_at` never changes. Returns false when there is no such rule.
pub fn update_rule(conn: &Connection, a: &AlertRuleRow) -> StoreResult<bool> {
    let n = conn
        .prepare_cached(
            "UPDATE alert_rules SET name = :name, is_enabled = :is_enabled, \
             conditions = :conditions, dashboard_notification = :dashboard, webhook_url = :url, \
             webhook_headers = :headers, webhook_secret = :secret, \
             cooldown_minutes = :cooldown, updated_at = :updated_at, mqtt = :mqtt WHERE id = :id",
        )?
        .execute(named_params! {
            ":id": a.id, ":name": a.name, ":is_enabled": a.is_enabled,
            ":conditions": a.conditions, ":dashboard": a.dashboard_notification,
            ":url": a.webhook_url, ":headers": a.webhook_headers, ":secret": a.webhook_secret,
            ":cooldown": a.cooldown_minutes, ":updated_at": a.updated_at, ":mqtt": a.mqtt,
        })?;
    Ok(n == 1)
}

/// Deletes a rule and its queued deliveries; its notifications and logs stay. Returns false
/// when there is no such rule.
pub fn delete_rule(conn: &Connection, id: &str) -> StoreResult<bool> {
    Ok(conn
        .prepare_cached("DELETE FROM alert_rules WHERE id = ?1")?
        .execute([id])?
        == 1)
}

/// Fires an enabled rule if its cooldown has passed, in one statement (two events racing for
/// the same rule cannot both fire it): sets `last_triggered_at = now_ms`, bumps
/// `trigger_count` and returns true; otherwise changes nothing and returns false (also for a
/// disabled or missing rule).
///
/// The cooldown has passed when the rule never fired or `now_ms` is at least
/// `cooldown_minutes` away from the last firing, in either direction: should the clock be set
/// back (a Raspberry Pi without a real-time clock corrected by NTP), the rule is not silenced
/// until the clock catches up with a firing "in the future".
pub fn try_trigger(conn: &Connection, id: &str, now_ms: i64) -> StoreResult<bool> {
    let n = conn
        .prepare_cached(
            "UPDATE alert_rules SET last_triggered_at = ?2, trigger_count = trigger_count + 1 \
             WHERE id = ?1 AND is_enabled AND (last_triggered_at IS NULL \
             OR abs(?2 - last_triggered_at) >= cooldown_minutes * 60000)",
        )?
        .execute(rusqlite::params![id, now_ms])?;
    Ok(n == 1)
}

// ---- Notifications -----------------------------------------------------------------------

/// One `notifications` row.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NotificationRow {
    pub id: String,
    /// None for notices about no event (cost caps).
    pub event_id: Option<String>,
    /// The rule that raised it; the rule may be gone since, its name is kept.
    pub rule_id: Option<String>,
    pub rule_name: Option<String>,
    /// `rule` or `ai_cost`.
    pub kind: String,
    pub title: Option<String>,
    pub event_description: Option<String>,
    pub read: bool,
    pub created_at: i64,
}

const NOTIFICATION_COLUMNS: &str =
    "id, event_id, rule_id, rule_name, kind, title, event_description, read, created_at";

fn notification_from_row(r: &Row<'_>) -> rusqlite::Result<NotificationRow> {
    Ok(NotificationRow {
        id: r.get(0)?,
        event_id: r.get(1)?,
        rule_id: r.get(2)?,
        rule_name: r.get(3)?,
        kind: r.get(4)?,
        title: r.get(5)?,
        event_description: r.get(6)?,
        read: r.get(7)?,
        created_at: r.get(8)?,
    })
}

/// Inserts a notification. `NotFound("Event")` when its event no longer exists.
pub fn insert_notification(conn: &Connection, n: &NotificationRow) -> StoreResult<()> {
    let sql = format!(
        "INSERT INTO notifications ({NOTIFICATION_COLUMNS}) VALUES \
         (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
    );
    let res = conn.prepare_cached(&sql)?.execute(rusqlite::params![
        n.id,
        n.event_id,
        n.rule_id,
        n.rule_name,
        n.kind,
        n.title,
        n.event_description,
        n.read,
        n.created_at,
    ]);
    match res {
        Ok(_) => Ok(()),
        Err(e) if is_fk_violation(&e) => Err(StoreError::NotFound("Event")),
        Err(e) if is_unique_violation(&e) => Err(StoreError::Conflict(
            "A notification with this id already exists".into(),
        )),
        Err(e) => Err(e.into()),
    }
}

/// One page of notifications, newest first: all of them, or only the read (`Some(true)`) or
/// unread (`Some(false)`) ones. Also returns the number under that filter and the number of
/// unread notifications (whatever the filter, for the badge).
pub fn notifications_page(
    conn: &Connection,
    read: Option<bool>,
    limit: u32,
    offset: u64,
) -> StoreResult<(Vec<NotificationRow>, u64, u64)> {
    // Literal conditions, so the planner can use the partial index of unread rows.
    let wh = match read {
        None => "",
        Some(true) => "WHERE read = 1",
        Some(false) => "WHERE read = 0",
    };
    let unread = count(conn, "SELECT count(*) FROM notifications WHERE read = 0")?;
    let total = match read {
        Some(false) => unread,
        _ => count(conn, &format!("SELECT count(*) FROM notifications {wh}"))?,
    };
    if offset >= total {
        return Ok((Vec::new(), total, unread));
    }
    let sql = format!(
        "SELECT {NOTIFICATION_COLUMNS} FROM notifications {wh} \
         ORDER BY created_at DESC, rowid DESC LIMIT ?1 OFFSET ?2"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(rusqlite::params![limit, offset], notification_from_row)?;
    Ok((rows.collect::<rusqlite::Result<_>>()?, total, unread))
}

fn count(conn: &Connection, sql: &str) -> StoreResult<u64> {
    let n: i64 = conn.prepare_cached(sql)?.query_row([], |r| r.get(0))?;
    Ok(n.max(0) as u64)
}

pub fn get_notification(conn: &Connection, id: &str) -> StoreResult<NotificationRow> {
    let sql = format!("SELECT {NOTIFICATION_COLUMNS} FROM notifications WHERE id = ?1");
    conn.prepare_cached(&sql)?
        .query_row([id], notification_from_row)
        .optional()?
        .ok_or(StoreError::NotFound("Notification"))
}

/// Marks one notification read (again, if it already was). Returns false when there is no such
/// notification.
pub fn mark_read(conn: &Connection, id: &str) -> StoreResult<bool> {
    Ok(conn
        .prepare_cached("UPDATE notifications SET read = 1 WHERE id = ?1")?
        .execute([id])?
        == 1)
}

/// Marks every unread notification read; returns how many were unread.
pub fn mark_all_read(conn: &Connection) -> StoreResult<u64> {
    Ok(conn
        .prepare_cached("UPDATE notifications SET read = 1 WHERE read = 0")?
        .execute([])? as u64)
}

/// Returns false when there is no such notification.
pub fn delete_notification(conn: &Connection, id: &str) -> StoreResult<bool> {
    Ok(conn
        .prepare_cached("DELETE FROM notifications WHERE id = ?1")?
        .execute([id])?
        == 1)
}

/// Deletes the read notifications (`read_only`) or all of them; returns how many went.
pub fn delete_notifications(conn: &Connection, read_only: bool) -> StoreResult<u64> {
    let sql = if read_only {
        "DELETE FROM notifications WHERE read = 1"
    } else {
        "DELETE FROM notifications"
    };
    Ok(conn.prepare_cached(sql)?.execute([])? as u64)
}

// ---- Webhook outbox ----------------------------------------------------------------------

/// One `webhook_outbox` row: a delivery waiting for its (next) attempt.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OutboxRow {
    /// Never reused (AUTOINCREMENT): usable as the delivery id the receiver sees.
    pub id: i64,
    pub rule_id: String,
    pub event_id: Option<String>,
    /// `event`, `update`, ...
    pub kind: String,
    /// The JSON body to send.
    pub body: String,
    /// Attempts made so far.
    pub attempts: u32,
    pub next_at: i64,
    pub created_at: i64,
}

/// A due delivery with where it goes, read from its rule at send time (an edited URL, header
/// or secret applies to deliveries already queued).
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub outbox: OutboxRow,
    pub url: String,
    pub headers_sealed: Option<Vec<u8>>,
    pub secret_sealed: Option<Vec<u8>>,
    pub rule_name: String,
}

const OUTBOX_COLUMNS: &str = "o.id, o.rule_id, o.event_id, o.kind, o.body, o.attempts, \
    o.next_at, o.created_at";

fn outbox_from_row(r: &Row<'_>) -> rusqlite::Result<OutboxRow> {
    Ok(OutboxRow {
        id: r.get(0)?,
        rule_id: r.get(1)?,
        event_id: r.get(2)?,
        kind: r.get(3)?,
        body: r.get(4)?,
        attempts: r.get(5)?,
        next_at: r.get(6)?,
        created_at: r.get(7)?,
    })
}

/// Queues a delivery, due at once. `NotFound("Alert rule")` when the rule no longer exists.
pub fn enqueue(
    conn: &Connection,
    rule_id: &str,
    event_id: Option<&str>,
    kind: &str,
    body: &str,
    now: i64,
) -> StoreResult<i64> {
    let res = conn
        .prepare_cached(
            "INSERT INTO webhook_outbox (rule_id, event_id, kind, body, attempts, next_at, \
             created_at) VALUES (?1, ?2, ?3, ?4, 0, ?5, ?5)",
        )?
        .execute(rusqlite::params![rule_id, event_id, kind, body, now]);
    match res {
        Ok(_) => Ok(conn.last_insert_rowid()),
        Err(e) if is_fk_violation(&e) => Err(StoreError::NotFound("Alert rule")),
        Err(e) => Err(e.into()),
    }
}

/// Up to `limit` deliveries due at `now`, the longest waiting first (then in queue order).
/// Deliveries whose rule no longer has a webhook URL are dropped first (this writes: call it
/// on the writer). A disabled rule's queued deliveries are still sent: they were decided while
/// it was enabled.
pub fn due(conn: &Connection, now: i64, limit: u32) -> StoreResult<Vec<Delivery>> {
    conn.prepare_cached(
        "DELETE FROM webhook_outbox WHERE rule_id IN \
         (SELECT id FROM alert_rules WHERE webhook_url IS NULL OR webhook_url = '')",
    )?
    .execute([])?;
    let sql = format!(
        "SELECT {OUTBOX_COLUMNS}, r.webhook_url, r.webhook_headers, r.webhook_secret, r.name \
         FROM webhook_outbox o JOIN alert_rules r ON r.id = o.rule_id \
         WHERE o.next_at <= ?1 ORDER BY o.next_at, o.id LIMIT ?2"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(rusqlite::params![now, limit], |r| {
        Ok(Delivery {
            outbox: outbox_from_row(r)?,
            url: r.get(8)?,
            headers_sealed: r.get(9)?,
            secret_sealed: r.get(10)?,
            rule_name: r.get(11)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The attempts made so far of a queued delivery; `None` once it has left the outbox (sent,
/// given up, or its rule deleted).
pub fn outbox_attempts(conn: &Connection, id: i64) -> StoreResult<Option<u32>> {
    Ok(conn
        .prepare_cached("SELECT attempts FROM webhook_outbox WHERE id = ?1")?
        .query_row([id], |r| r.get(0))
        .optional()?)
}

/// When the earliest queued delivery is due, if any is queued.
pub fn next_due_at(conn: &Connection) -> StoreResult<Option<i64>> {
    Ok(conn
        .prepare_cached("SELECT min(next_at) FROM webhook_outbox")?
        .query_row([], |r| r.get(0))?)
}

/// Records a failed attempt: `attempts` made so far, the next one at `next_at`. Returns false
/// when the delivery is gone (its rule was deleted meanwhile).
pub fn retry_later(conn: &Connection, id: i64, attempts: u32, next_at: i64) -> StoreResult<bool> {
    Ok(conn
        .prepare_cached("UPDATE webhook_outbox SET attempts = ?2, next_at = ?3 WHERE id = ?1")?
        .execute(rusqlite::params![id, attempts, next_at])?
        == 1)
}

/// Ends a delivery (sent, or given up): removes it from the outbox and logs the outcome, in one
/// transaction, so a crash cannot log a delivery that is then sent again, nor drop one unlogged.
/// The log is written even when the delivery was already gone (its rule deleted meanwhile).
pub fn finish(conn: &mut Connection, id: i64, log: &WebhookLogRow) -> StoreResult<()> {
    let tx = conn.transaction()?;
    tx.prepare_cached("DELETE FROM webhook_outbox WHERE id = ?1")?
        .execute([id])?;
    insert_log(&tx, log)?;
    tx.commit()?;
    Ok(())
}

/// Deliveries queued (due or waiting for a retry).
pub fn pending_count(conn: &Connection) -> StoreResult<u64> {
    count(conn, "SELECT count(*) FROM webhook_outbox")
}

// ---- Webhook delivery log ----------------------------------------------------------------

/// One `webhook_logs` row.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WebhookLogRow {
    /// Ignored by [`insert_log`], which assigns it.
    pub id: i64,
    pub alert_rule_id: Option<String>,
    pub event_id: Option<String>,
    pub url: String,
    /// None when no response came (connection refused, timeout, refused address).
    pub status_code: Option<u16>,
    pub response_time_ms: Option<u64>,
    /// Attempts that came before this one.
    pub retry_count: u32,
    pub success: bool,
    pub error_message: Option<String>,
    pub created_at: i64,
}

const LOG_COLUMNS: &str = "id, alert_rule_id, event_id, url, status_code, response_time_ms, \
    retry_count, success, error_message, created_at";

fn log_from_row(r: &Row<'_>) -> rusqlite::Result<WebhookLogRow> {
    Ok(WebhookLogRow {
        id: r.get(0)?,
        alert_rule_id: r.get(1)?,
        event_id: r.get(2)?,
        url: r.get(3)?,
        status_code: r.get(4)?,
        response_time_ms: r.get(5)?,
        retry_count: r.get(6)?,
        success: r.get(7)?,
        error_message: r.get(8)?,
        created_at: r.get(9)?,
    })
}

/// Inserts a log row; returns its id.
pub fn insert_log(conn: &Connection, l: &WebhookLogRow) -> StoreResult<i64> {
    conn.prepare_cached(
        "INSERT INTO webhook_logs (alert_rule_id, event_id, url, status_code, response_time_ms, \
         retry_count, success, error_message, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(rusqlite::params![
        l.alert_rule_id,
        l.event_id,
        l.url,
        l.status_code,
        l.response_time_ms,
        l.retry_count,
        l.success,
        l.error_message,
        l.created_at,
    ])?;
    Ok(conn.last_insert_rowid())
}

/// Filters of the log list and its CSV export. `start` and `end` are inclusive.
#[derive(Debug, Clone, Default)]
pub struct LogFilter {
    pub rule_id: Option<String>,
    pub success: Option<bool>,
    pub start: Option<i64>,
    pub end: Option<i64>,
}

impl LogFilter {
    fn where_clause(&self, params: &mut Vec<Value>) -> String {
        let mut parts = Vec::new();
        if let Some(r) = &self.rule_id {
            params.push(Value::Text(r.clone()));
            parts.push(format!("alert_rule_id = ?{}", params.len()));
        }
        if let Some(s) = self.success {
            params.push(Value::Integer(s as i64));
            parts.push(format!("success = ?{}", params.len()));
        }
        if let Some(s) = self.start {
            params.push(Value::Integer(s));
            parts.push(format!("created_at >= ?{}", params.len()));
        }
        if let Some(e) = self.end {
            params.push(Value::Integer(e));
            parts.push(format!("created_at <= ?{}", params.len()));
        }
        if parts.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", parts.join(" AND "))
        }
    }
}

/// One page of log rows, newest first, and the number matching.
pub fn logs_page(
    conn: &Connection,
    filter: &LogFilter,
    limit: u32,
    offset: u64,
) -> StoreResult<(Vec<WebhookLogRow>, u64)> {
    let mut params = Vec::new();
    let wh = filter.where_clause(&mut params);
    let n: i64 = conn
        .prepare_cached(&format!("SELECT count(*) FROM webhook_logs {wh}"))?
        .query_row(rusqlite::params_from_iter(&params), |r| r.get(0))?;
    let total = n.max(0) as u64;
    if offset >= total {
        return Ok((Vec::new(), total));
    }
    let sql = format!(
        "SELECT {LOG_COLUMNS} FROM webhook_logs {wh} ORDER BY created_at DESC, id DESC \
         LIMIT {limit} OFFSET {offset}"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(rusqlite::params_from_iter(&params), log_from_row)?;
    Ok((rows.collect::<rusqlite::Result<_>>()?, total))
}

/// Calls `f` for every matching log row, newest first (the order of the pages), without loading
/// them all at once; stops early when `f` returns false.
pub fn for_each_log(
    conn: &Connection,
    filter: &LogFilter,
    mut f: impl FnMut(WebhookLogRow) -> bool,
) -> StoreResult<()> {
    let mut params = Vec::new();
    let wh = filter.where_clause(&mut params);
    let sql =
        format!("SELECT {LOG_COLUMNS} FROM webhook_logs {wh} ORDER BY created_at DESC, id DESC");
    let mut stmt = conn.prepare(&sql)?;
    let mut rows = stmt.query(rusqlite::params_from_iter(&params))?;
    while let Some(r) = rows.next()? {
        if !f(log_from_row(r)?) {
            break;
        }
    }
    Ok(())
}

/// Deletes log rows older than `before_ms`; returns how many went.
pub fn prune_logs(conn: &Connection, before_ms: i64) -> StoreResult<u64> {
    Ok(conn
        .prepare_cached("DELETE FROM webhook_logs WHERE created_at < ?1")?
        .execute([before_ms])? as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::events::{self, EventRow};
    use crate::store::Store;

    const MIN: i64 = 60_000;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).unwrap();
        (dir, store)
    }

    fn rule(id: &str, created_at: i64) -> AlertRuleRow {
        AlertRuleRow {
            id: id.into(),
            name: format!("rule {id}"),
            is_enabled: true,
            conditions: r#"{"object_types":["person"]}"#.into(),
            dashboard_notification: true,
            webhook_url: Some("http://192.168.1.10:1880/x".into()),
            webhook_headers: Some(vec![1, 2, 3]),
            webhook_secret: Some(vec![4, 5, 6]),
            mqtt: false,
            cooldown_minutes: 5,
            created_at,
            updated_at: created_at,
            ..Default::default()
        }
    }

    fn notification(id: &str, event_id: Option<&str>, at: i64) -> NotificationRow {
        NotificationRow {
            id: id.into(),
            event_id: event_id.map(Into::into),
            rule_id: Some("r1".into()),
            rule_name: Some("Front door".into()),
            kind: if event_id.is_some() {
                "rule"
            } else {
                "ai_cost"
            }
            .into(),
            title: Some("Person at the front door".into()),
            event_description: None,
            read: false,
            created_at: at,
        }
    }

    fn log(rule_id: &str, success: bool, at: i64) -> WebhookLogRow {
        WebhookLogRow {
            alert_rule_id: Some(rule_id.into()),
            event_id: Some("e1".into()),
            url: "http://192.168.1.10:1880/x".into(),
            status_code: success.then_some(200),
            response_time_ms: Some(12),
            retry_count: 0,
            success,
            error_message: (!success).then(|| "connection refused".into()),
            created_at: at,
            ..Default::default()
        }
    }

    #[test]
    fn rules_round_trip_list_update_and_delete() {
        let (_d, store) = store();
        store
            .write_blocking(|c| {
                insert_rule(c, &rule("b", 20))?;
                insert_rule(c, &rule("a", 10))?;
                let mut off = rule("c", 30);
                off.is_enabled = false;
                off.webhook_url = None;
                off.webhook_headers = None;
                off.webhook_secret = None;
                insert_rule(c, &off)?;
                assert!(matches!(
                    insert_rule(c, &rule("a", 10)),
                    Err(StoreError::Conflict(_))
                ));
                assert_eq!(get_rule(c, "c")?, off);
                let ids = |v: Vec<AlertRuleRow>| v.into_iter().map(|r| r.id).collect::<Vec<_>>();
                assert_eq!(ids(list_rules(c, None)?), ["a", "b", "c"]);
                assert_eq!(ids(list_rules(c, Some(true))?), ["a", "b"]);
                assert_eq!(ids(list_rules(c, Some(false))?), ["c"]);

                assert!(try_trigger(c, "a", 1000)?);
                let mut edit = rule("a", 99);
                edit.name = "renamed".into();
                edit.cooldown_minutes = 0;
                edit.updated_at = 2000;
                assert!(update_rule(c, &edit)?);
                let got = get_rule(c, "a")?;
                assert_eq!(got.name, "renamed");
                assert_eq!(got.cooldown_minutes, 0);
                assert_eq!(got.updated_at, 2000);
                // The trigger figures and the creation time are not the editor's.
                assert_eq!((got.created_at, got.last_triggered_at), (10, Some(1000)));
                assert_eq!(got.trigger_count, 1);
                assert!(!update_rule(c, &rule("nope", 0))?);

                // The cooldown is checked by the database too.
                edit.cooldown_minutes = 1441;
                assert!(update_rule(c, &edit).is_err());

                assert!(delete_rule(c, "a")?);
                assert!(!delete_rule(c, "a")?);
                assert!(matches!(
                    get_rule(c, "a"),
                    Err(StoreError::NotFound("Alert rule"))
                ));
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn try_trigger_respects_the_cooldown() {
        let (_d, store) = store();
        store
            .write_blocking(|c| {
                insert_rule(c, &rule("r", 0))?; // 5 minutes
                let t0 = 1_700_000_000_000;
                assert!(try_trigger(c, "r", t0)?, "never fired: fires");
                assert!(!try_trigger(c, "r", t0 + MIN)?, "within the cooldown");
                assert!(!try_trigger(c, "r", t0 + 5 * MIN - 1)?);
                let r = get_rule(c, "r")?;
                assert_eq!((r.last_triggered_at, r.trigger_count), (Some(t0), 1));
                assert!(try_trigger(c, "r", t0 + 5 * MIN)?, "cooldown over");
                let r = get_rule(c, "r")?;
                assert_eq!(
                    (r.last_triggered_at, r.trigger_count),
                    (Some(t0 + 5 * MIN), 2)
                );
                // The clock set back by an hour: the rule is not silenced for an hour.
                assert!(try_trigger(c, "r", t0 - 60 * MIN)?);
                assert!(!try_trigger(c, "r", t0 - 59 * MIN)?);

                // No cooldown: every event fires.
                let mut eager = rule("z", 0);
                eager.cooldown_minutes = 0;
                insert_rule(c, &eager)?;
                assert!(try_trigger(c, "z", t0)?);
                assert!(try_trigger(c, "z", t0)?);
                assert_eq!(get_rule(c, "z")?.trigger_count, 2);

                // Disabled or missing rules never fire.
                eager.is_enabled = false;
                update_rule(c, &eager)?;
                assert!(!try_trigger(c, "z", t0 + 10 * MIN)?);
                assert!(!try_trigger(c, "missing", t0)?);
                Ok(())
            })
            .unwrap();
    }

    fn camera_and_events(c: &Connection, ids: &[&str]) -> StoreResult<()> {
        c.execute_batch(
            "INSERT INTO cameras(id, name, type, created_at, updated_at) \
             VALUES ('cam', 'Door', 'file', 0, 0)",
        )?;
        for (i, id) in ids.iter().enumerate() {
            events::insert(
                c,
                &EventRow {
                    id: (*id).into(),
                    camera_id: "cam".into(),
                    ts: 1000 + i as i64,
                    detection_type: "person".into(),
                    bounding_boxes: serde_json::json!([]),
                    source_type: "api".into(),
                    ..Default::default()
                },
            )?;
        }
        Ok(())
    }

    #[test]
    fn notifications_go_with_their_event_but_not_with_their_rule() {
        let (_d, store) = store();
        store
            .write_blocking(|c| {
                camera_and_events(c, &["e1", "e2"])?;
                insert_rule(c, &rule("r1", 0))?;
                insert_notification(c, &notification("n1", Some("e1"), 1))?;
                insert_notification(c, &notification("n2", Some("e2"), 2))?;
                insert_notification(c, &notification("n3", None, 3))?;
                assert!(matches!(
                    insert_notification(c, &notification("n4", Some("gone"), 4)),
                    Err(StoreError::NotFound("Event"))
                ));
                assert!(matches!(
                    insert_notification(c, &notification("n1", None, 4)),
                    Err(StoreError::Conflict(_))
                ));
                assert_eq!(
                    get_notification(c, "n1")?,
                    notification("n1", Some("e1"), 1)
                );

                events::delete(c, "e1")?;
                assert!(matches!(
                    get_notification(c, "n1"),
                    Err(StoreError::NotFound("Notification"))
                ));
                delete_rule(c, "r1")?;
                let n2 = get_notification(c, "n2")?;
                assert_eq!(n2.rule_name.as_deref(), Some("Front door"));
                assert!(get_notification(c, "n3").is_ok());
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn notification_pages_totals_and_unread() {
        let (_d, store) = store();
        store
            .write_blocking(|c| {
                for i in 0..25 {
                    let mut n = notification(&format!("n{i:02}"), None, 1000 + i / 2);
                    n.read = i % 5 == 0; // n00, n05, n10, n15, n20
                    insert_notification(c, &n)?;
                }
                let ids =
                    |v: &[NotificationRow]| v.iter().map(|n| n.id.clone()).collect::<Vec<_>>();

                let (page, total, unread) = notifications_page(c, None, 10, 0)?;
                assert_eq!((total, unread), (25, 20));
                // Newest first; equal times in reverse insertion order.
                assert_eq!(ids(&page)[..4], ["n24", "n23", "n22", "n21"]);
                let (page, ..) = notifications_page(c, None, 10, 20)?;
                assert_eq!(ids(&page), ["n04", "n03", "n02", "n01", "n00"]);
                let (page, total, unread) = notifications_page(c, None, 10, 30)?;
                assert!(page.is_empty());
                assert_eq!((total, unread), (25, 20));

                let (page, total, unread) = notifications_page(c, Some(true), 2, 1)?;
                assert_eq!(ids(&page), ["n15", "n10"]);
                assert_eq!((total, unread), (5, 20));
                let (page, total, _) = notifications_page(c, Some(false), 100, 0)?;
                assert_eq!(total, 20);
                assert!(page.iter().all(|n| !n.read));

                assert!(mark_read(c, "n01")?);
                assert!(mark_read(c, "n01")?, "already read: still found");
                assert!(!mark_read(c, "nope")?);
                assert!(get_notification(c, "n01")?.read);
                assert_eq!(notifications_page(c, None, 1, 0)?.2, 19);

                assert_eq!(delete_notifications(c, true)?, 6);
                assert!(delete_notification(c, "n02")?);
                assert!(!delete_notification(c, "n02")?);
                assert_eq!(mark_all_read(c)?, 18);
                assert_eq!(mark_all_read(c)?, 0);
                assert_eq!(notifications_page(c, None, 1, 0)?.1, 18);
                assert_eq!(delete_notifications(c, false)?, 18);
                assert_eq!(notifications_page(c, None, 1, 0)?.1, 0);
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn unread_pages_and_counts_use_the_partial_index() {
        let (_d, store) = store();
        store
            .read_blocking(|c| {
                for sql in [
                    "SELECT count(*) FROM notifications WHERE read = 0",
                    "SELECT id FROM notifications WHERE read = 0 \
                     ORDER BY created_at DESC, rowid DESC LIMIT 10",
                ] {
                    let mut stmt = c.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
                    let plan = stmt
                        .query_map([], |r| r.get::<_, String>(3))?
                        .collect::<rusqlite::Result<Vec<_>>>()?
                        .join(" | ");
                    assert!(plan.contains("notifications_unread"), "{sql}: {plan}");
                    assert!(!plan.contains("TEMP B-TREE"), "{sql}: {plan}");
                }
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn due_deliveries_come_in_order_with_their_rule() {
        let (_d, store) = store();
        store
            .write_blocking(|c| {
                insert_rule(c, &rule("r1", 0))?;
                let mut quiet = rule("r2", 1);
                quiet.is_enabled = false;
                insert_rule(c, &quiet)?;
                let a = enqueue(c, "r1", Some("e1"), "event", "{\"a\":1}", 100)?;
                let b = enqueue(c, "r2", None, "event", "{}", 100)?;
                let later = enqueue(c, "r1", Some("e2"), "update", "{}", 500)?;
                let early = enqueue(c, "r1", Some("e3"), "event", "{}", 50)?;
                assert!(matches!(
                    enqueue(c, "gone", None, "event", "{}", 1),
                    Err(StoreError::NotFound("Alert rule"))
                ));
                assert_eq!(pending_count(c)?, 4);
                assert_eq!(next_due_at(c)?, Some(50));

                let d = due(c, 100, 10)?;
                let ids: Vec<i64> = d.iter().map(|d| d.outbox.id).collect();
                assert_eq!(ids, [early, a, b], "by due time, then queue order");
                assert_eq!(
                    d[1].outbox,
                    OutboxRow {
                        id: a,
                        rule_id: "r1".into(),
                        event_id: Some("e1".into()),
                        kind: "event".into(),
                        body: "{\"a\":1}".into(),
                        attempts: 0,
                        next_at: 100,
                        created_at: 100,
                    }
                );
                assert_eq!(d[1].url, "http://192.168.1.10:1880/x");
                assert_eq!(d[1].headers_sealed.as_deref(), Some(&[1u8, 2, 3][..]));
                assert_eq!(d[1].secret_sealed.as_deref(), Some(&[4u8, 5, 6][..]));
                assert_eq!(d[1].rule_name, "rule r1");
                assert_eq!(due(c, 100, 2)?.len(), 2);

                // A failed attempt moves the delivery back in the queue.
                assert!(retry_later(c, early, 1, 400)?);
                let ids: Vec<i64> = due(c, 1000, 10)?.iter().map(|d| d.outbox.id).collect();
                assert_eq!(ids, [a, b, early, later]);
                assert_eq!(due(c, 1000, 10)?[2].outbox.attempts, 1);
                assert_eq!(next_due_at(c)?, Some(100));

                // The rule lost its webhook: its deliveries are dropped, not sent.
                let mut r1 = get_rule(c, "r1")?;
                r1.webhook_url = None;
                update_rule(c, &r1)?;
                let ids: Vec<i64> = due(c, 1000, 10)?.iter().map(|d| d.outbox.id).collect();
                assert_eq!(ids, [b]);
                assert_eq!(pending_count(c)?, 1);

                // Deleting a rule drops its queue.
                delete_rule(c, "r2")?;
                assert_eq!(pending_count(c)?, 0);
                assert_eq!(next_due_at(c)?, None);
                assert!(!retry_later(c, b, 1, 1)?);
                // Ids are never reused.
                insert_rule(c, &rule("r3", 2))?;
                assert!(enqueue(c, "r3", None, "event", "{}", 1)? > early.max(later));
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn finish_removes_the_delivery_and_logs_it_together() {
        let (_d, store) = store();
        store
            .write_blocking(|c| {
                insert_rule(c, &rule("r1", 0))?;
                let id = enqueue(c, "r1", Some("e1"), "event", "{}", 100)?;
                let other = enqueue(c, "r1", Some("e2"), "event", "{}", 100)?;
                retry_later(c, other, 2, 300)?;
                assert_eq!(outbox_attempts(c, id)?, Some(0));
                assert_eq!(outbox_attempts(c, other)?, Some(2));
                finish(c, id, &log("r1", true, 150))?;
                // A stale scan's copy of a finished delivery is recognised as gone.
                assert_eq!(outbox_attempts(c, id)?, None);
                assert_eq!(pending_count(c)?, 1);
                assert_eq!(due(c, 1000, 10)?[0].outbox.id, other);
                let (logs, total) = logs_page(c, &LogFilter::default(), 10, 0)?;
                assert_eq!(total, 1);
                assert_eq!(
                    logs[0],
                    WebhookLogRow {
                        id: logs[0].id,
                        ..log("r1", true, 150)
                    }
                );

                // A log that cannot be written leaves the delivery queued.
                let mut bad = log("r1", false, 160);
                bad.url = String::new();
                c.execute_batch(
                    "CREATE TEMP TRIGGER no_empty_url BEFORE INSERT ON webhook_logs \
                     WHEN new.url = '' BEGIN SELECT RAISE(ABORT, 'empty url'); END;",
                )?;
                assert!(finish(c, other, &bad).is_err());
                assert_eq!(pending_count(c)?, 1);
                assert_eq!(logs_page(c, &LogFilter::default(), 10, 0)?.1, 1);

                // The delivery's rule was deleted while it was being sent: still logged.
                delete_rule(c, "r1")?;
                finish(c, other, &log("r1", false, 170))?;
                assert_eq!(logs_page(c, &LogFilter::default(), 10, 0)?.1, 2);
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn log_pages_filters_export_and_pruning() {
        let (_d, store) = store();
        store
            .write_blocking(|c| {
                for i in 0..30i64 {
                    let r = if i % 3 == 0 { "a" } else { "b" };
                    insert_log(c, &log(r, i % 2 == 0, 1000 + i))?;
                }
                let all = LogFilter::default();
                let (page, total) = logs_page(c, &all, 5, 0)?;
                assert_eq!(total, 30);
                let times: Vec<i64> = page.iter().map(|l| l.created_at).collect();
                assert_eq!(times, [1029, 1028, 1027, 1026, 1025]);
                let (page, total) = logs_page(c, &all, 5, 28)?;
                assert_eq!((page.len(), total), (2, 30));

                let f = LogFilter {
                    rule_id: Some("a".into()),
                    success: Some(true),
                    start: Some(1006),
                    end: Some(1024),
                };
                // a: i % 3 == 0; success: i even; so i in {6, 12, 18, 24}.
                let (page, total) = logs_page(c, &f, 10, 0)?;
                assert_eq!(total, 4);
                let times: Vec<i64> = page.iter().map(|l| l.created_at).collect();
                assert_eq!(times, [1024, 1018, 1012, 1006]);
                let failed = LogFilter {
                    success: Some(false),
                    ..Default::default()
                };
                assert_eq!(logs_page(c, &failed, 1, 0)?.1, 15);
                assert_eq!(logs_page(c, &failed, 1, 0)?.0[0].status_code, None);

                let mut seen = Vec::new();
                for_each_log(c, &f, |l| {
                    seen.push(l.created_at);
                    true
                })?;
                assert_eq!(seen, [1024, 1018, 1012, 1006]);
                let mut n = 0;
                for_each_log(c, &all, |_| {
                    n += 1;
                    n < 3
                })?;
                assert_eq!(n, 3, "stops when asked");

                assert_eq!(prune_logs(c, 1010)?, 10);
                assert_eq!(logs_page(c, &all, 1, 0)?.1, 20);
                assert_eq!(prune_logs(c, 1010)?, 0);
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn log_pages_for_a_rule_walk_its_index() {
        let (_d, store) = store();
        store
            .read_blocking(|c| {
                let f = LogFilter {
                    rule_id: Some("a".into()),
                    ..Default::default()
                };
                let mut params = Vec::new();
                let wh = f.where_clause(&mut params);
                let sql = format!(
                    "EXPLAIN QUERY PLAN SELECT {LOG_COLUMNS} FROM webhook_logs {wh} \
                     ORDER BY created_at DESC, id DESC LIMIT 10"
                );
                let mut stmt = c.prepare(&sql)?;
                let plan = stmt
                    .query_map(rusqlite::params_from_iter(&params), |r| {
                        r.get::<_, String>(3)
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()?
                    .join(" | ");
                assert!(plan.contains("webhook_logs_rule_created"), "{plan}");
                assert!(!plan.contains("TEMP B-TREE"), "{plan}");
                Ok(())
            })
            .unwrap();
    }
}
