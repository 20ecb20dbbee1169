-- Argus Edge schema, version 1. Times are unix milliseconds (UTC) in INTEGER columns; lists and
-- small objects are JSON text; secrets are AES-256-GCM sealed BLOBs (see src/crypto.rs).

CREATE TABLE protect_controllers (
    id                TEXT PRIMARY KEY,
    name              TEXT NOT NULL UNIQUE,
    host              TEXT NOT NULL,
    port              INTEGER NOT NULL DEFAULT 443 CHECK (port BETWEEN 1 AND 65535),
    username          TEXT NOT NULL,
    password_sealed   BLOB NOT NULL,
    verify_ssl        INTEGER NOT NULL DEFAULT 0,
    is_enabled        INTEGER NOT NULL DEFAULT 1,
    last_connected_at INTEGER,
    last_error        TEXT,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL
);

CREATE TABLE cameras (
    id                    TEXT PRIMARY KEY,
    name                  TEXT NOT NULL UNIQUE,
    type                  TEXT NOT NULL CHECK (type IN ('rtsp', 'usb', 'file', 'protect')),
    rtsp_url              TEXT,
    username              TEXT,
    password_sealed       BLOB,
    device_index          INTEGER,
    device_path           TEXT,
    file_path             TEXT,
    rtsp_transport        TEXT NOT NULL DEFAULT 'tcp' CHECK (rtsp_transport IN ('tcp', 'udp')),
    frame_rate            INTEGER NOT NULL DEFAULT 5 CHECK (frame_rate BETWEEN 1 AND 30),
    is_enabled            INTEGER NOT NULL DEFAULT 1,
    motion_enabled        INTEGER NOT NULL DEFAULT 1,
    motion_sensitivity    TEXT NOT NULL DEFAULT 'medium'
                          CHECK (motion_sensitivity IN ('low', 'medium', 'high')),
    motion_cooldown       INTEGER NOT NULL DEFAULT 60 CHECK (motion_cooldown BETWEEN 0 AND 3600),
    detection_zones       TEXT NOT NULL DEFAULT '[]',
    detection_schedule    TEXT,
    object_filter         TEXT NOT NULL DEFAULT '["person","vehicle"]',
    prompt_override       TEXT,
    protect_controller_id TEXT REFERENCES protect_controllers(id) ON DELETE CASCADE,
    protect_camera_id     TEXT,
    smart_detection_types TEXT NOT NULL DEFAULT '[]',
    is_doorbell           INTEGER NOT NULL DEFAULT 0,
    created_at            INTEGER NOT NULL,
    updated_at            INTEGER NOT NULL
);
CREATE UNIQUE INDEX cameras_protect ON cameras(protect_controller_id, protect_camera_id)
    WHERE protect_camera_id IS NOT NULL;

CREATE TABLE events (
    id                   TEXT PRIMARY KEY,
    camera_id            TEXT NOT NULL REFERENCES cameras(id) ON DELETE CASCADE,
    ts                   INTEGER NOT NULL,
    detection_type       TEXT NOT NULL,
    confidence           INTEGER NOT NULL DEFAULT 0 CHECK (confidence BETWEEN 0 AND 100),
    description          TEXT,
    description_pending  INTEGER NOT NULL DEFAULT 0,
    objects_detected     TEXT NOT NULL DEFAULT '[]',
    bounding_boxes       TEXT NOT NULL DEFAULT '[]',
    thumbnail_path       TEXT,
    thumbnail_bytes      INTEGER NOT NULL DEFAULT 0,
    source_type          TEXT NOT NULL,
    protect_event_id     TEXT,
    smart_detection_type TEXT,
    is_doorbell_ring     INTEGER NOT NULL DEFAULT 0,
    provider_used        TEXT,
    ai_fallback_used     INTEGER NOT NULL DEFAULT 0,
    ai_error             TEXT,
    ai_confidence        INTEGER,
    threat_level         TEXT,
    ai_cost_usd          REAL,
    reanalysis_count     INTEGER NOT NULL DEFAULT 0,
    reanalyzed_at        INTEGER,
    created_at           INTEGER NOT NULL
);
-- Pages are read newest first along (ts, rowid); the other indexes serve filtered pages and counts.
CREATE INDEX events_ts ON events(ts);
CREATE INDEX events_camera_ts ON events(camera_id, ts);
CREATE INDEX events_camera_type_ts ON events(camera_id, detection_type, ts);
CREATE INDEX events_type_ts ON events(detection_type, ts);
CREATE INDEX events_confidence ON events(confidence);
CREATE UNIQUE INDEX events_protect_id ON events(protect_event_id) WHERE protect_event_id IS NOT NULL;

-- Full-text search over descriptions, kept in sync by triggers.
CREATE VIRTUAL TABLE events_fts USING fts5(description, content='events', content_rowid='rowid');
CREATE TRIGGER events_fts_ai AFTER INSERT ON events BEGIN
    INSERT INTO events_fts(rowid, description) VALUES (new.rowid, new.description);
END;
CREATE TRIGGER events_fts_ad AFTER DELETE ON events BEGIN
    INSERT INTO events_fts(events_fts, rowid, description) VALUES ('delete', old.rowid, old.description);
END;
CREATE TRIGGER events_fts_au AFTER UPDATE OF description ON events BEGIN
    INSERT INTO events_fts(events_fts, rowid, description) VALUES ('delete', old.rowid, old.description);
    INSERT INTO events_fts(rowid, description) VALUES (new.rowid, new.description);
END;

-- Running totals per (camera, detection type), so totals and storage figures never need a scan.
CREATE TABLE event_totals (
    camera_id       TEXT NOT NULL,
    detection_type  TEXT NOT NULL,
    n               INTEGER NOT NULL,
    thumbnail_bytes INTEGER NOT NULL,
    PRIMARY KEY (camera_id, detection_type)
) WITHOUT ROWID;
CREATE TRIGGER event_totals_ai AFTER INSERT ON events BEGIN
    INSERT INTO event_totals(camera_id, detection_type, n, thumbnail_bytes)
        VALUES (new.camera_id, new.detection_type, 1, new.thumbnail_bytes)
        ON CONFLICT(camera_id, detection_type)
        DO UPDATE SET n = n + 1, thumbnail_bytes = thumbnail_bytes + excluded.thumbnail_bytes;
END;
CREATE TRIGGER event_totals_ad AFTER DELETE ON events BEGIN
    UPDATE event_totals SET n = n - 1, thumbnail_bytes = thumbnail_bytes - old.thumbnail_bytes
        WHERE camera_id = old.camera_id AND detection_type = old.detection_type;
END;
CREATE TRIGGER event_totals_au AFTER UPDATE OF detection_type, thumbnail_bytes ON events BEGIN
    UPDATE event_totals SET n = n - 1, thumbnail_bytes = thumbnail_bytes - old.thumbnail_bytes
        WHERE camera_id = old.camera_id AND detection_type = old.detection_type;
    INSERT INTO event_totals(camera_id, detection_type, n, thumbnail_bytes)
        VALUES (new.camera_id, new.detection_type, 1, new.thumbnail_bytes)
        ON CONFLICT(camera_id, detection_type)
        DO UPDATE SET n = n + 1, thumbnail_bytes = thumbnail_bytes + excluded.thumbnail_bytes;
END;
CREATE TRIGGER event_totals_camera_ad AFTER DELETE ON cameras BEGIN
    DELETE FROM event_totals WHERE camera_id = old.id;
    DELETE FROM event_buckets WHERE camera_id = old.id;
END;

-- Event counts per 15-minute bucket (ts / 900000), camera and type: statistics over any range
-- read these instead of the events, and only the partial buckets at the edges from the events.
CREATE TABLE event_buckets (
    bucket         INTEGER NOT NULL,
    camera_id      TEXT NOT NULL,
    detection_type TEXT NOT NULL,
    n              INTEGER NOT NULL,
    PRIMARY KEY (bucket, camera_id, detection_type)
) WITHOUT ROWID;
CREATE TRIGGER event_buckets_ai AFTER INSERT ON events BEGIN
    INSERT INTO event_buckets(bucket, camera_id, detection_type, n)
        VALUES (new.ts / 900000, new.camera_id, new.detection_type, 1)
        ON CONFLICT(bucket, camera_id, detection_type) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER event_buckets_ad AFTER DELETE ON events BEGIN
    UPDATE event_buckets SET n = n - 1
        WHERE bucket = old.ts / 900000 AND camera_id = old.camera_id
          AND detection_type = old.detection_type;
    DELETE FROM event_buckets
        WHERE bucket = old.ts / 900000 AND camera_id = old.camera_id
          AND detection_type = old.detection_type AND n <= 0;
END;
CREATE TRIGGER event_buckets_au AFTER UPDATE OF ts, camera_id, detection_type ON events BEGIN
    UPDATE event_buckets SET n = n - 1
        WHERE bucket = old.ts / 900000 AND camera_id = old.camera_id
          AND detection_type = old.detection_type;
    INSERT INTO event_buckets(bucket, camera_id, detection_type, n)
        VALUES (new.ts / 900000, new.camera_id, new.detection_type, 1)
        ON CONFLICT(bucket, camera_id, detection_type) DO UPDATE SET n = n + 1;
END;

CREATE TABLE users (
    id                   TEXT PRIMARY KEY,
    username             TEXT NOT NULL UNIQUE,
    password_hash        TEXT NOT NULL,
    role                 TEXT NOT NULL DEFAULT 'admin' CHECK (role IN ('admin', 'operator', 'viewer')),
    is_active            INTEGER NOT NULL DEFAULT 1,
    must_change_password INTEGER NOT NULL DEFAULT 0,
    created_at           INTEGER NOT NULL,
    updated_at           INTEGER NOT NULL,
    last_login_at        INTEGER
);

-- One row per browser login. A JWT names its session; logout and password changes revoke
-- sessions, and a revoked session's token stops working at once.
CREATE TABLE sessions (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER,
    ip         TEXT,
    user_agent TEXT
);
CREATE INDEX sessions_user ON sessions(user_id);

CREATE TABLE api_keys (
    id                    TEXT PRIMARY KEY,
    name                  TEXT NOT NULL,
    lookup                TEXT NOT NULL,
    key_hash              BLOB NOT NULL,
    scopes                TEXT NOT NULL,
    rate_limit_per_minute INTEGER NOT NULL DEFAULT 100 CHECK (rate_limit_per_minute BETWEEN 1 AND 100000),
    expires_at            INTEGER,
    created_at            INTEGER NOT NULL,
    created_by            TEXT,
    revoked_at            INTEGER,
    usage_count           INTEGER NOT NULL DEFAULT 0,
    last_used_at          INTEGER,
    last_used_ip          TEXT
);
CREATE INDEX api_keys_lookup ON api_keys(lookup);

CREATE TABLE api_key_usage_daily (
    key_id TEXT NOT NULL REFERENCES api_keys(id) ON DELETE CASCADE,
    day    TEXT NOT NULL,
    count  INTEGER NOT NULL,
    PRIMARY KEY (key_id, day)
) WITHOUT ROWID;

CREATE TABLE settings (
    key        TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE ai_usage (
    id            INTEGER PRIMARY KEY,
    ts            INTEGER NOT NULL,
    provider      TEXT NOT NULL,
    model         TEXT NOT NULL,
    event_id      TEXT,
    tokens_in     INTEGER NOT NULL DEFAULT 0,
    tokens_out    INTEGER NOT NULL DEFAULT 0,
    cost_usd      REAL NOT NULL DEFAULT 0,
    latency_ms    INTEGER NOT NULL DEFAULT 0,
    outcome       TEXT NOT NULL,
    error         TEXT
);
CREATE INDEX ai_usage_ts ON ai_usage(ts);
