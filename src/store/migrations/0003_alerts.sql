-- Alert rules, in-app notifications and webhook deliveries (a durable outbox and a log of
-- attempts). Times are unix milliseconds (UTC); conditions are JSON text (src/alerts/rules.rs);
-- webhook headers and secrets are AES-256-GCM sealed BLOBs, opaque to the store.

CREATE TABLE alert_rules (
    id                     TEXT PRIMARY KEY,
    name                   TEXT NOT NULL,
    is_enabled             INTEGER NOT NULL,
    conditions             TEXT NOT NULL,
    dashboard_notification INTEGER NOT NULL,
    -- NULL: the rule sends no webhook.
    webhook_url            TEXT,
    -- Sealed JSON object of extra request headers.
    webhook_headers        BLOB,
    -- Sealed signing secret.
    webhook_secret         BLOB,
    cooldown_minutes       INTEGER NOT NULL CHECK (cooldown_minutes BETWEEN 0 AND 1440),
    last_triggered_at      INTEGER,
    trigger_count          INTEGER NOT NULL DEFAULT 0,
    created_at             INTEGER NOT NULL,
    updated_at             INTEGER NOT NULL
);

-- A notification outlives its rule (it keeps the rule's name) but not its event. Cost-cap
-- notices have no event. kind: 'rule' or 'ai_cost'.
CREATE TABLE notifications (
    id                TEXT PRIMARY KEY,
    event_id          TEXT REFERENCES events(id) ON DELETE CASCADE,
    rule_id           TEXT,
    rule_name         TEXT,
    kind              TEXT NOT NULL,
    title             TEXT,
    event_description TEXT,
    read              INTEGER NOT NULL DEFAULT 0,
    created_at        INTEGER NOT NULL
);
CREATE INDEX notifications_created ON notifications(created_at);
CREATE INDEX notifications_unread ON notifications(created_at) WHERE read = 0;
-- Deleting an event looks up its notifications (the cascade) through this index, not a scan.
CREATE INDEX notifications_event ON notifications(event_id) WHERE event_id IS NOT NULL;

-- Webhook deliveries waiting to be sent or retried. A delivery goes with its rule, but not with
-- its event: the delivery of an event deleted meanwhile is still sent. AUTOINCREMENT: an id is
-- never reused, so it can serve as the delivery id the receiver sees.
-- kind: 'event', 'update', ...
CREATE TABLE webhook_outbox (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    rule_id    TEXT NOT NULL REFERENCES alert_rules(id) ON DELETE CASCADE,
    event_id   TEXT,
    kind       TEXT NOT NULL,
    body       TEXT NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 0,
    next_at    INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX webhook_outbox_next ON webhook_outbox(next_at);
CREATE INDEX webhook_outbox_rule ON webhook_outbox(rule_id);

-- What became of delivery attempts (retry_count: how many attempts came before). Logs of deleted rules and events stay (no foreign
-- keys) until they are pruned by age.
CREATE TABLE webhook_logs (
    id               INTEGER PRIMARY KEY,
    alert_rule_id    TEXT,
    event_id         TEXT,
    url              TEXT NOT NULL,
    status_code      INTEGER,
    response_time_ms INTEGER,
    retry_count      INTEGER NOT NULL,
    success          INTEGER NOT NULL,
    error_message    TEXT,
    created_at       INTEGER NOT NULL
);
CREATE INDEX webhook_logs_created ON webhook_logs(created_at);
CREATE INDEX webhook_logs_rule_created ON webhook_logs(alert_rule_id, created_at);
