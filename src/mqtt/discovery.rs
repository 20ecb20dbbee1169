//! Home Assistant MQTT discovery, device-based: one retained config per camera on
//! `<discovery_prefix>/device/<node>_<camera id>/config` with `dev`, `o` (origin) and `cmps`
//! (components). Entities are named by `default_entity_id` (never the `object_id` HA dropped in
//! 2026.4); unique ids are `argus_<node>_<camera id>_<component>`, stable across restarts and
//! renames, and distinct for every node on a shared broker. Every entity is available while
//! the appliance's status topic says `online`.

use super::topics::{id_part, Topics};
use serde_json::{json, Map, Value};

/// Object types a camera counts in view (the occupancy sensors), in order.
pub const COUNTED: [&str; 3] = ["person", "vehicle", "animal"];
/// Event types of the detection `event` entity.
pub const DETECTIONS: [&str; 5] = ["person", "vehicle", "animal", "package", "motion"];

/// What discovery needs to know about a camera.
#[derive(Debug, Clone, PartialEq)]
pub struct Cam {
    pub id: String,
    pub name: String,
    pub slug: String,
    /// `rtsp`, `usb`, `file` or `protect`.
    pub kind: &'static str,
    pub filter: Vec<String>,
    pub doorbell: bool,
    pub enabled: bool,
    pub detect: bool,
}

impl Cam {
    /// The occupancy types this camera has sensors for.
    pub fn counted(&self) -> Vec<&'static str> {
        COUNTED
            .iter()
            .copied()
            .filter(|k| self.filter.iter().any(|f| f == k))
            .collect()
    }
}

fn model(kind: &str) -> &'static str {
    match kind {
        "rtsp" => "RTSP camera",
        "usb" => "V4L2 camera",
        "file" => "Video file",
        "protect" => "UniFi Protect camera",
        _ => "Camera",
    }
}

/// The device config of a camera (the topic is [`Topics::device_config`]).
pub fn device_config(t: &Topics, cam: &Cam, qos: u8) -> Value {
    let base = t.camera(&cam.slug);
    let node = id_part(&t.node);
    let uid = |c: &str| format!("argus_{node}_{}_{c}", id_part(&cam.id));
    let entity =
        |platform: &str, c: &str| format!("{platform}.argus_{node}_{}_{c}", id_part(&cam.slug));
    let mut cmps = Map::new();
    // Each component's own fields (a JSON object) plus its platform and ids.
    let mut add = |key: &str, platform: &str, fields: Value| {
        let mut o = match fields {
            Value::Object(o) => o,
            _ => Map::new(),
        };
        o.insert("p".into(), platform.into());
        o.insert("unique_id".into(), uid(key).into());
        o.insert("default_entity_id".into(), entity(platform, key).into());
        cmps.insert(key.into(), Value::Object(o));
    };
    for kind in cam.counted() {
        let mut title = kind.to_string();
        title[..1].make_ascii_uppercase();
        add(
            kind,
            "binary_sensor",
            json!({
                "name": title,
                "device_class": "occupancy",
                "state_topic": format!("{base}/{kind}"),
                "value_template": "{{ 'ON' if (value | int(0)) > 0 else 'OFF' }}",
            }),
        );
    }
    add(
        "motion",
        "binary_sensor",
        json!({"name": "Motion", "device_class": "motion", "state_topic": format!("{base}/motion")}),
    );
    add(
        "detection",
        "event",
        json!({"name": "Detection", "event_types": DETECTIONS, "state_topic": format!("{base}/detection")}),
    );
    if cam.doorbell {
        add(
            "doorbell",
            "event",
            json!({"name": "Doorbell", "device_class": "doorbell", "event_types": ["ring"],
                   "state_topic": format!("{base}/doorbell")}),
        );
    }
    add(
        "snapshot",
        "image",
        json!({"name": "Snapshot", "image_topic": format!("{base}/snapshot"), "content_type": "image/jpeg"}),
    );
    add(
        "description",
        "sensor",
        json!({"name": "Last description", "icon": "mdi:text-box-outline",
               "state_topic": format!("{base}/description"),
               "json_attributes_topic": format!("{base}/events")}),
    );
    add(
        "status",
        "sensor",
        json!({"name": "Capture status", "entity_category": "diagnostic",
               "state_topic": format!("{base}/status")}),
    );
    add(
        "enabled",
        "switch",
        json!({"name": "Enabled", "icon": "mdi:cctv", "state_topic": format!("{base}/enabled"),
               "command_topic": format!("{base}/enabled/set")}),
    );
    add(
        "detect",
        "switch",
        json!({"name": "Detection", "icon": "mdi:motion-sensor", "state_topic": format!("{base}/detect"),
               "command_topic": format!("{base}/detect/set")}),
    );
    json!({
        "dev": {
            "identifiers": [format!("argus_{node}_{}", id_part(&cam.id))],
            "name": cam.name,
            "manufacturer": "Argus Edge",
            "model": model(cam.kind),
            "sw_version": env!("CARGO_PKG_VERSION"),
        },
        "o": {"name": "Argus Edge", "sw_version": env!("CARGO_PKG_VERSION")},
        "availability": [{"topic": t.status(), "payload_available": "online", "payload_not_available": "offline"}],
        "qos": qos,
        "cmps": cmps,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cam() -> Cam {
        Cam {
            id: "6b1c-AA".into(),
            name: "Front Door".into(),
            slug: "front_door".into(),
            kind: "protect",
            filter: vec!["person".into(), "vehicle".into(), "motion".into()],
            doorbell: true,
            enabled: true,
            detect: true,
        }
    }

    fn topics() -> Topics {
        Topics {
            prefix: "argus".into(),
            node: "garage".into(),
            discovery: "homeassistant".into(),
        }
    }

    #[test]
    fn a_device_config_has_every_component_with_ids_and_topics() {
        let v = device_config(&topics(), &cam(), 1);
        assert_eq!(v["dev"]["identifiers"][0], "argus_garage_6b1c_aa");
        assert_eq!(v["o"]["name"], "Argus Edge");
        assert_eq!(v["availability"][0]["topic"], "argus/garage/status");
        let c = v["cmps"].as_object().unwrap();
        let keys: Vec<&str> = c.keys().map(|k| k.as_str()).collect();
        for k in [
            "person",
            "vehicle",
            "motion",
            "detection",
            "doorbell",
            "snapshot",
            "description",
            "status",
            "enabled",
            "detect",
        ] {
            assert!(keys.contains(&k), "{k} in {keys:?}");
        }
        assert!(!keys.contains(&"animal"), "not in the camera's filter");
        assert_eq!(c["person"]["p"], "binary_sensor");
        assert_eq!(c["person"]["unique_id"], "argus_garage_6b1c_aa_person");
        assert_eq!(
            c["person"]["default_entity_id"],
            "binary_sensor.argus_garage_front_door_person"
        );
        assert_eq!(c["person"]["state_topic"], "argus/garage/front_door/person");
        assert_eq!(
            c["enabled"]["command_topic"],
            "argus/garage/front_door/enabled/set"
        );
        assert_eq!(c["doorbell"]["event_types"], json!(["ring"]));
        assert!(!v.to_string().contains("object_id"));
    }
}
