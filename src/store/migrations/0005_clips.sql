-- Event clips: the MP4 of the seconds around an object event (or a Protect console's export).
-- The file is `clips/YYYY-MM-DD/<event id>.mp4`; it is moved into place (fsynced) before the row
-- names it and removed after the row is gone, like a snapshot.
ALTER TABLE events ADD COLUMN clip_path TEXT;
ALTER TABLE events ADD COLUMN clip_bytes INTEGER NOT NULL DEFAULT 0;
ALTER TABLE events ADD COLUMN clip_duration_ms INTEGER;
-- How far into the clip the event was noticed (the pre-capture before it).
ALTER TABLE events ADD COLUMN clip_offset_ms INTEGER;

-- Whether a camera records a clip per object event.
ALTER TABLE cameras ADD COLUMN record_clips INTEGER NOT NULL DEFAULT 1;

-- The storage counters count clip bytes too.
ALTER TABLE event_totals ADD COLUMN clip_bytes INTEGER NOT NULL DEFAULT 0;
DROP TRIGGER event_totals_ai;
DROP TRIGGER event_totals_ad;
DROP TRIGGER event_totals_au;
CREATE TRIGGER event_totals_ai AFTER INSERT ON events BEGIN
    INSERT INTO event_totals(camera_id, detection_type, n, thumbnail_bytes, clip_bytes)
        VALUES (new.camera_id, new.detection_type, 1, new.thumbnail_bytes, new.clip_bytes)
        ON CONFLICT(camera_id, detection_type)
        DO UPDATE SET n = n + 1, thumbnail_bytes = thumbnail_bytes + excluded.thumbnail_bytes,
            clip_bytes = clip_bytes + excluded.clip_bytes;
END;
CREATE TRIGGER event_totals_ad AFTER DELETE ON events BEGIN
    UPDATE event_totals SET n = n - 1, thumbnail_bytes = thumbnail_bytes - old.thumbnail_bytes,
            clip_bytes = clip_bytes - old.clip_bytes
        WHERE camera_id = old.camera_id AND detection_type = old.detection_type;
END;
CREATE TRIGGER event_totals_au AFTER UPDATE OF detection_type, thumbnail_bytes, clip_bytes ON events BEGIN
    UPDATE event_totals SET n = n - 1, thumbnail_bytes = thumbnail_bytes - old.thumbnail_bytes,
            clip_bytes = clip_bytes - old.clip_bytes
        WHERE camera_id = old.camera_id AND detection_type = old.detection_type;
    INSERT INTO event_totals(camera_id, detection_type, n, thumbnail_bytes, clip_bytes)
        VALUES (new.camera_id, new.detection_type, 1, new.thumbnail_bytes, new.clip_bytes)
        ON CONFLICT(camera_id, detection_type)
        DO UPDATE SET n = n + 1, thumbnail_bytes = thumbnail_bytes + excluded.thumbnail_bytes,
            clip_bytes = clip_bytes + excluded.clip_bytes;
END;

CREATE INDEX events_clip ON events(ts) WHERE clip_path IS NOT NULL;
