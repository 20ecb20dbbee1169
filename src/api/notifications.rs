//! In-app notifications (`/api/v1/notifications`): rule hits and cloud AI cost-cap notices,
//! stored in SQLite, listed, marked read and deleted; their `/ws` form (`notification.new`).

use crate::bus::Notice;

/// The `data` of a `notification.new` message on `/ws`.
pub fn ws_data(n: &Notice) -> serde_json::Value {
    let mut v = serde_json::json!({
        "id": n.id,
        "type": n.kind,
        "event_id": n.event_id,
        "rule_id": n.rule_id,
        "rule_name": n.rule_name,
        "title": n.title,
        "event_description": n.event_description,
        "thumbnail_url": n.thumbnail_url,
        "read": false,
        "created_at": crate::clock::format_rfc3339(n.created_at),
    });
    if let (Some(obj), Some(extra)) = (v.as_object_mut(), n.extra.as_object()) {
        for (k, x) in extra {
            obj.entry(k.clone()).or_insert_with(|| x.clone());
        }
    }
    v
}
