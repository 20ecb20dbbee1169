//! Turning update messages into detections: smart detections (person, vehicle, package,
//! animal), doorbell rings and motion, from Protect's native `event` objects.
//!
//! A Protect event arrives as an `add` with the whole object (`type`, `camera`, `start`,
//! `smartDetectTypes`, ...) and then `update`s that carry **only the changed fields** (`end`,
//! `score`, thumbnails, sometimes more `smartDetectTypes`). So:
//! - [`detection_from`] is the stateless rule for one message: an `add` (or an `update` that
//!   happens to carry the whole object) of a known event type gives a detection.
//! - [`EventMapper`] adds a small memory of recent event ids: a replayed `add` (a resumed
//!   connection can repeat one) gives nothing, an `update` that only adds `end` or other fields
//!   gives nothing, and an `update` that adds *new* smart types (a person event that later also
//!   sees a vehicle) gives one more detection with just the new types. An `update` of an event
//!   it never saw is used only if it carries the whole object.
//! - [`EventMapper::map_all`] also reports an event's **end**, once: the first message of a
//!   known event whose `end` is a time (a ring's `add` often carries it already; a smart
//!   detection's comes in a later `update`). The clip of the event is fetched after it.
//!
//! Other models (`camera`, `nvr`, ...), other event types (`smartAudioDetect`, `access`, ...)
//! and other smart types (`licensePlate`, `face`, `alrm*`, ...) are ignored.

use super::packet::{Payload, UpdateMessage};
use serde_json::{Map, Value};
use std::collections::{HashMap, HashSet, VecDeque};

/// The smart-detection types the appliance acts on.
pub const SMART_TYPES: [&str; 4] = ["person", "vehicle", "package", "animal"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DetectionKind {
    /// The known smart types the event reported (never empty), in Protect's order.
    Smart(Vec<String>),
    /// A doorbell ring.
    Ring,
    /// Plain motion.
    Motion,
}

/// A detection worth an event on the appliance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtectDetection {
    /// The Protect event id (`protect_event_id`).
    pub event_id: String,
    /// The Protect camera id.
    pub camera_id: String,
    pub kind: DetectionKind,
    /// The event's `start` (unix ms) when the message has it.
    pub start_ms: Option<i64>,
    /// Protect's confidence (`score`, 0-100) when the message has it.
    pub score: Option<u8>,
}

/// A Protect event has ended: its window is `[start_ms, end_ms]` (the console's clock).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtectEventEnd {
    pub event_id: String,
    pub camera_id: String,
    /// The event's `start` (unix ms), when the mapper saw it.
    pub start_ms: Option<i64>,
    /// The event's `end` (unix ms).
    pub end_ms: i64,
}

/// What one message brings: a detection, the end of an event, both or neither.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mapped {
    pub detection: Option<ProtectDetection>,
    pub end: Option<ProtectEventEnd>,
}

/// The event types this module reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EventType {
    Smart,
    Ring,
    Motion,
}

fn event_type(data: &Map<String, Value>) -> Option<EventType> {
    match data.get("type")?.as_str()? {
        "smartDetectZone" | "smartDetectLine" => Some(EventType::Smart),
        "ring" => Some(EventType::Ring),
        "motion" => Some(EventType::Motion),
        _ => None,
    }
}

/// The known smart types of an event's `smartDetectTypes`, deduplicated, in order.
fn smart_types(data: &Map<String, Value>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let list = data.get("smartDetectTypes").and_then(Value::as_array);
    for t in list.into_iter().flatten().filter_map(Value::as_str) {
        if SMART_TYPES.contains(&t) && !out.iter().any(|o| o == t) {
            out.push(t.to_string());
        }
    }
    out
}

fn score(data: &Map<String, Value>) -> Option<u8> {
    let v = data.get("score")?.as_f64()?;
    v.is_finite().then(|| v.clamp(0.0, 100.0).round() as u8)
}

/// A time field (unix ms, an integer or a float); `None` when absent, `null` or not a number.
fn time_ms(data: &Map<String, Value>, key: &str) -> Option<i64> {
    let v = data.get(key)?;
    v.as_i64().or_else(|| {
        v.as_f64()
            .filter(|f| f.is_finite() && f.abs() < 9.0e15)
            .map(|f| f as i64)
    })
}

fn start_ms(data: &Map<String, Value>) -> Option<i64> {
    time_ms(data, "start")
}

/// The event object of a message, with its id: only `event` models with a JSON object.
fn event_object(msg: &UpdateMessage) -> Option<(&str, &Map<String, Value>)> {
    if msg.action.model_key != "event" {
        return None;
    }
    let Payload::Json(Value::Object(data)) = &msg.data else {
        return None;
    };
    let id = data
        .get("id")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .unwrap_or(&msg.action.id);
    if id.is_empty() {
        return None;
    }
    Some((id, data))
}

/// A whole event object (it names its type and camera), as in an `add`.
struct WholeEvent<'a> {
    id: &'a str,
    camera: &'a str,
    kind: EventType,
    data: &'a Map<String, Value>,
}

fn whole_event(msg: &UpdateMessage) -> Option<WholeEvent<'_>> {
    let (id, data) = event_object(msg)?;
    let kind = event_type(data)?;
    let camera = data
        .get("camera")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())?;
    Some(WholeEvent {
        id,
        camera,
        kind,
        data,
    })
}

fn detection(ev: &WholeEvent<'_>, smart: Vec<String>) -> Option<ProtectDetection> {
    let kind = match ev.kind {
        EventType::Smart if smart.is_empty() => return None,
        EventType::Smart => DetectionKind::Smart(smart),
        EventType::Ring => DetectionKind::Ring,
        EventType::Motion => DetectionKind::Motion,
    };
    Some(ProtectDetection {
        event_id: ev.id.to_string(),
        camera_id: ev.camera.to_string(),
        kind,
        start_ms: start_ms(ev.data),
        score: score(ev.data),
    })
}

/// The stateless rule: what one `add` (or whole-object `update`) message says, if anything.
pub fn detection_from(msg: &UpdateMessage) -> Option<ProtectDetection> {
    if !matches!(msg.action.action.as_str(), "add" | "update") {
        return None;
    }
    let ev = whole_event(msg)?;
    detection(&ev, smart_types(ev.data))
}

/// What the mapper remembers of one event.
#[derive(Debug)]
struct Seen {
    camera: String,
    kind: EventType,
    start_ms: Option<i64>,
    /// Smart types already reported for this event.
    reported: HashSet<String>,
    /// Its end was reported.
    ended: bool,
}

/// [`detection_from`] plus a bounded memory of recent event ids (see the module docs).
#[derive(Debug)]
pub struct EventMapper {
    seen: HashMap<String, Seen>,
    /// Insertion order, to forget the oldest event first.
    order: VecDeque<String>,
    capacity: usize,
}

impl Default for EventMapper {
    fn default() -> Self {
        Self::new()
    }
}

impl EventMapper {
    /// Remembers the last 1024 events: far more than are open at once on one console.
    pub fn new() -> Self {
        Self::with_capacity(1024)
    }

    pub fn with_capacity(capacity: usize) -> Self {
        EventMapper {
            seen: HashMap::new(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
        }
    }

    fn remember(&mut self, id: &str, seen: Seen) {
        if self.seen.insert(id.to_string(), seen).is_none() {
            self.order.push_back(id.to_string());
        }
        while self.order.len() > self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.seen.remove(&old);
            }
        }
    }

    /// The detection a message brings, if any.
    pub fn map(&mut self, msg: &UpdateMessage) -> Option<ProtectDetection> {
        self.map_all(msg).detection
    }

    /// The detection and the event end a message brings.
    pub fn map_all(&mut self, msg: &UpdateMessage) -> Mapped {
        if !matches!(msg.action.action.as_str(), "add" | "update") {
            return Mapped::default();
        }
        let Some((id, data)) = event_object(msg) else {
            return Mapped::default();
        };
        if let Some(seen) = self.seen.get_mut(id) {
            let end = ended(id, seen, data);
            // A known event: only new smart types are news.
            let new: Vec<String> = match seen.kind {
                EventType::Smart => smart_types(data)
                    .into_iter()
                    .filter(|t| !seen.reported.contains(t))
                    .collect(),
                _ => Vec::new(),
            };
            if new.is_empty() {
                return Mapped {
                    detection: None,
                    end,
                };
            }
            seen.reported.extend(new.iter().cloned());
            let detection = Some(ProtectDetection {
                event_id: id.to_string(),
                camera_id: seen.camera.clone(),
                kind: DetectionKind::Smart(new),
                start_ms: seen.start_ms,
                score: score(data),
            });
            return Mapped { detection, end };
        }
        let Some(ev) = whole_event(msg) else {
            return Mapped::default();
        };
        let smart = smart_types(ev.data);
        let detection = detection(&ev, smart.clone());
        let mut seen = Seen {
            camera: ev.camera.to_string(),
            kind: ev.kind,
            start_ms: start_ms(ev.data),
            reported: smart.into_iter().collect(),
            ended: false,
        };
        let id = ev.id.to_string();
        let end = ended(&id, &mut seen, ev.data);
        self.remember(&id, seen);
        Mapped { detection, end }
    }
}

/// The end of a known event, the first time a message gives it.
fn ended(id: &str, seen: &mut Seen, data: &Map<String, Value>) -> Option<ProtectEventEnd> {
    if seen.ended {
        return None;
    }
    let end_ms = time_ms(data, "end")?;
    seen.ended = true;
    if seen.start_ms.is_none() {
        seen.start_ms = start_ms(data);
    }
    Some(ProtectEventEnd {
        event_id: id.to_string(),
        camera_id: seen.camera.clone(),
        start_ms: seen.start_ms,
        end_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protect::packet::Action;
    use serde_json::json;

    fn msg(action: &str, model: &str, id: &str, data: Value) -> UpdateMessage {
        UpdateMessage {
            action: Action {
                action: action.into(),
                new_update_id: Some("u1".into()),
                model_key: model.into(),
                id: id.into(),
            },
            data: Payload::Json(data),
        }
    }

    fn add(id: &str, data: Value) -> UpdateMessage {
        msg("add", "event", id, data)
    }

    fn smart(types: &[&str]) -> DetectionKind {
        DetectionKind::Smart(types.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn smart_detection_from_an_add() {
        let m = add(
            "e1",
            json!({"id": "e1", "type": "smartDetectZone", "camera": "cam1", "start": 1_700_000_000_123i64,
                   "end": null, "smartDetectTypes": ["person", "licensePlate", "person"], "score": 80}),
        );
        let d = detection_from(&m).unwrap();
        assert_eq!(
            d,
            ProtectDetection {
                event_id: "e1".into(),
                camera_id: "cam1".into(),
                kind: smart(&["person"]),
                start_ms: Some(1_700_000_000_123),
                score: Some(80),
            }
        );
        let line = add(
            "e2",
            json!({"type": "smartDetectLine", "camera": "cam1", "smartDetectTypes": ["vehicle", "animal"]}),
        );
        let d = detection_from(&line).unwrap();
        assert_eq!(d.kind, smart(&["vehicle", "animal"]));
        assert_eq!(d.event_id, "e2", "the action id when the data has none");
        assert_eq!(d.start_ms, None);
    }

    #[test]
    fn ring_and_motion() {
        let ring = add("r1", json!({"type": "ring", "camera": "door", "start": 5}));
        assert_eq!(detection_from(&ring).unwrap().kind, DetectionKind::Ring);
        let motion = add(
            "m1",
            json!({"type": "motion", "camera": "cam1", "start": 6.0}),
        );
        let d = detection_from(&motion).unwrap();
        assert_eq!(d.kind, DetectionKind::Motion);
        assert_eq!(d.start_ms, Some(6));
    }

    #[test]
    fn ignored_messages() {
        let ignored = [
            // Another model.
            msg(
                "add",
                "camera",
                "c1",
                json!({"type": "ring", "camera": "c1"}),
            ),
            // Removal, unknown actions.
            msg(
                "remove",
                "event",
                "e1",
                json!({"type": "ring", "camera": "c1"}),
            ),
            msg(
                "frobnicate",
                "event",
                "e1",
                json!({"type": "ring", "camera": "c1"}),
            ),
            // Other event types and smart types only the appliance does not handle.
            add("e1", json!({"type": "smartAudioDetect", "camera": "c1"})),
            add(
                "e1",
                json!({"type": "smartDetectZone", "camera": "c1", "smartDetectTypes": ["licensePlate", "face"]}),
            ),
            add(
                "e1",
                json!({"type": "smartDetectZone", "camera": "c1", "smartDetectTypes": []}),
            ),
            // No camera, wrong field types, not an object.
            add("e1", json!({"type": "ring"})),
            add("e1", json!({"type": "ring", "camera": 7})),
            add("e1", json!({"type": 1, "camera": "c1"})),
            add("e1", json!(["ring"])),
            add("", json!({"type": "ring", "camera": "c1"})),
        ];
        let mut mapper = EventMapper::new();
        for m in &ignored {
            assert_eq!(detection_from(m), None, "{m:?}");
            assert_eq!(mapper.map(m), None, "{m:?}");
        }
        let text = UpdateMessage {
            data: Payload::Text("ring".into()),
            ..add("e1", json!(null))
        };
        assert_eq!(mapper.map(&text), None);
    }

    #[test]
    fn the_mapper_ignores_end_updates_and_replays() {
        let mut mapper = EventMapper::new();
        let first = add(
            "e1",
            json!({"type": "smartDetectZone", "camera": "cam1", "smartDetectTypes": ["person"], "start": 1}),
        );
        assert_eq!(mapper.map(&first).unwrap().kind, smart(&["person"]));
        assert_eq!(mapper.map(&first), None, "a replayed add");
        let end = msg("update", "event", "e1", json!({"end": 2, "score": 90}));
        assert_eq!(mapper.map(&end), None);
        let same_types = msg(
            "update",
            "event",
            "e1",
            json!({"smartDetectTypes": ["person"]}),
        );
        assert_eq!(mapper.map(&same_types), None);
        let more = msg(
            "update",
            "event",
            "e1",
            json!({"smartDetectTypes": ["person", "vehicle"], "end": 3}),
        );
        let d = mapper.map(&more).unwrap();
        assert_eq!(
            (
                d.event_id.as_str(),
                d.camera_id.as_str(),
                d.kind,
                d.start_ms
            ),
            ("e1", "cam1", smart(&["vehicle"]), Some(1))
        );
        assert_eq!(mapper.map(&more), None);
    }

    #[test]
    fn the_mapper_reports_each_end_once() {
        let mut mapper = EventMapper::new();
        let first = add(
            "e1",
            json!({"type": "smartDetectZone", "camera": "cam1", "smartDetectTypes": ["person"],
                   "start": 1000, "end": null}),
        );
        let m = mapper.map_all(&first);
        assert!(m.detection.is_some());
        assert_eq!(m.end, None, "a null end is no end");
        let score = msg("update", "event", "e1", json!({"score": 90}));
        assert_eq!(mapper.map_all(&score), Mapped::default());
        let end = msg("update", "event", "e1", json!({"end": 6000.0}));
        assert_eq!(
            mapper.map_all(&end),
            Mapped {
                detection: None,
                end: Some(ProtectEventEnd {
                    event_id: "e1".into(),
                    camera_id: "cam1".into(),
                    start_ms: Some(1000),
                    end_ms: 6000,
                }),
            }
        );
        assert_eq!(mapper.map_all(&end), Mapped::default(), "reported once");
        assert_eq!(mapper.map_all(&first), Mapped::default(), "a replay");
        // New types and the end in one update: both.
        let both = add(
            "e2",
            json!({"type": "smartDetectZone", "camera": "cam1", "smartDetectTypes": ["person"]}),
        );
        mapper.map_all(&both);
        let m = mapper.map_all(&msg(
            "update",
            "event",
            "e2",
            json!({"smartDetectTypes": ["person", "vehicle"], "end": 9, "start": 4}),
        ));
        assert_eq!(m.detection.unwrap().kind, smart(&["vehicle"]));
        assert_eq!(m.end.unwrap().start_ms, Some(4));
        // A ring's add carries its end.
        let ring = add(
            "r1",
            json!({"type": "ring", "camera": "door", "start": 5, "end": 5}),
        );
        let m = mapper.map_all(&ring);
        assert_eq!(m.detection.unwrap().kind, DetectionKind::Ring);
        assert_eq!(m.end.unwrap().end_ms, 5);
        // The end of an event the mapper never saw says nothing (no camera).
        let stray = msg("update", "event", "e9", json!({"end": 5}));
        assert_eq!(mapper.map_all(&stray), Mapped::default());
    }

    #[test]
    fn the_mapper_reports_types_that_arrive_after_an_empty_add() {
        let mut mapper = EventMapper::new();
        let empty = add(
            "e1",
            json!({"type": "smartDetectZone", "camera": "cam1", "smartDetectTypes": []}),
        );
        assert_eq!(mapper.map(&empty), None);
        let typed = msg(
            "update",
            "event",
            "e1",
            json!({"smartDetectTypes": ["package"]}),
        );
        assert_eq!(mapper.map(&typed).unwrap().kind, smart(&["package"]));
    }

    #[test]
    fn updates_of_unknown_events_count_only_when_whole() {
        let mut mapper = EventMapper::new();
        let partial = msg("update", "event", "e9", json!({"end": 5}));
        assert_eq!(mapper.map(&partial), None);
        let whole = msg(
            "update",
            "event",
            "e9",
            json!({"type": "ring", "camera": "door", "end": 5}),
        );
        assert_eq!(mapper.map(&whole).unwrap().kind, DetectionKind::Ring);
        assert_eq!(mapper.map(&whole), None, "rings are reported once");
    }

    #[test]
    fn the_memory_is_bounded() {
        let mut mapper = EventMapper::with_capacity(2);
        let ring = |id: &str| add(id, json!({"type": "ring", "camera": "door"}));
        assert!(mapper.map(&ring("a")).is_some());
        assert!(mapper.map(&ring("b")).is_some());
        assert!(mapper.map(&ring("c")).is_some());
        assert_eq!(mapper.seen.len(), 2);
        assert!(mapper.map(&ring("b")).is_none());
        assert!(mapper.map(&ring("a")).is_some(), "the oldest was forgotten");
    }
}
