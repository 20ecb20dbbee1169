-- Cloud descriptions: what each usage row was for, re-analysis history (rate limit), and which
-- cost-cap alerts were already sent (so a restart does not repeat them).
ALTER TABLE ai_usage ADD COLUMN camera_id TEXT;
ALTER TABLE ai_usage ADD COLUMN purpose TEXT NOT NULL DEFAULT 'event';

CREATE TABLE reanalyses (
    event_id TEXT NOT NULL REFERENCES events(id) ON DELETE CASCADE,
    ts       INTEGER NOT NULL
);
CREATE INDEX reanalyses_event_ts ON reanalyses(event_id, ts);

CREATE TABLE ai_cap_alerts (
    -- 'day:2026-11-28' or 'month:2026-11'
    period TEXT PRIMARY KEY,
    -- highest percentage already announced: 50, 80 or 100
    level  INTEGER NOT NULL
) WITHOUT ROWID;
