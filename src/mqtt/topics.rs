//! Topic names: the appliance's own under `<topic_prefix>/<node_id>/`, each camera's under a
//! readable slug of its name, and Home Assistant's discovery topics.
//!
//! A slug is the camera's name in lower case with every run of other characters turned into
//! `_`; when two cameras would share one (or a camera's would be a node-level name such as
//! `status`), the later-added camera's slug gets the first 8 characters of its id. Slugs depend
//! only on the names and the order cameras were added, so they are the same at every start.

use std::collections::{HashMap, HashSet};

/// Node-level topic names a camera slug must not take.
const RESERVED: [&str; 3] = ["status", "alerts", "set"];

/// The topic names of one appliance.
#[derive(Debug, Clone, PartialEq)]
pub struct Topics {
    pub prefix: String,
    pub node: String,
    pub discovery: String,
}

impl Topics {
    /// `<prefix>/<node>`.
    pub fn base(&self) -> String {
        format!("{}/{}", self.prefix, self.node)
    }
    /// Availability: `online` / `offline` (retained; the last will).
    pub fn status(&self) -> String {
        format!("{}/status", self.base())
    }
    /// Alerts of rules with the MQTT action.
    pub fn alerts(&self) -> String {
        format!("{}/alerts", self.base())
    }
    /// A camera's topics start with this.
    pub fn camera(&self, slug: &str) -> String {
        format!("{}/{}", self.base(), slug)
    }
    /// The switches' command topics, all cameras.
    pub fn commands(&self) -> String {
        format!("{}/+/+/set", self.base())
    }
    /// Home Assistant's own availability (`online` when it starts).
    pub fn ha_status(&self) -> String {
        format!("{}/status", self.discovery)
    }
    /// The device discovery topic of a camera (by id, so a rename keeps the device).
    pub fn device_config(&self, camera_id: &str) -> String {
        format!(
            "{}/device/{}_{}/config",
            self.discovery,
            self.node,
            id_part(camera_id)
        )
    }
}

impl Topics {
    /// Every device discovery config (retained ones arrive at once after subscribing).
    pub fn device_configs(&self) -> String {
        format!("{}/device/+/config", self.discovery)
    }

    /// The camera part ([`id_part`] of its id) of one of this node's device configs, or `None`
    /// for any other topic (another node's, even one whose id starts with this node's).
    pub fn own_device(&self, topic: &str) -> Option<String> {
        let object = topic
            .strip_prefix(&format!("{}/device/", self.discovery))?
            .strip_suffix("/config")?;
        let camera = object.strip_prefix(&format!("{}_", self.node))?;
        let uuid_like = camera.len() == 36
            && camera.char_indices().all(|(i, c)| match i {
                8 | 13 | 18 | 23 => c == '_',
                _ => c.is_ascii_hexdigit() && !c.is_ascii_uppercase(),
            });
        uuid_like.then(|| camera.to_string())
    }
}

/// An id usable in a discovery topic and an entity id: `[a-z0-9_]`.
pub fn id_part(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// The readable part of a slug.
pub fn slug(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    let s: String = out.trim_matches('_').chars().take(48).collect();
    let s = s.trim_end_matches('_').to_string();
    if s.is_empty() {
        "camera".into()
    } else {
        s
    }
}

/// Slugs for cameras given as `(id, name, created_at)`: unique, stable, in the order added.
pub fn assign(cams: &[(String, String, i64)]) -> HashMap<String, String> {
    let mut order: Vec<&(String, String, i64)> = cams.iter().collect();
    order.sort_by(|a, b| a.2.cmp(&b.2).then(a.0.cmp(&b.0)));
    let mut taken: HashSet<String> = HashSet::new();
    let mut out = HashMap::new();
    for (id, name, _) in order {
        let mut s = slug(name);
        if taken.contains(&s) || RESERVED.contains(&s.as_str()) {
            let short: String = id_part(id).chars().take(8).collect();
            s = format!("{s}_{short}");
        }
        taken.insert(s.clone());
        out.insert(id.clone(), s);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_readable_unique_and_stable() {
        assert_eq!(slug("Front Door"), "front_door");
        assert_eq!(slug("  Garage / Left!! "), "garage_left");
        assert_eq!(slug("Café"), "caf");
        assert_eq!(slug("***"), "camera");
        let cams = vec![
            ("bbbbbbbb-2".to_string(), "Front door".to_string(), 2),
            ("aaaaaaaa-1".to_string(), "Front Door".to_string(), 1),
            ("cccccccc-3".to_string(), "status".to_string(), 3),
        ];
        let s = assign(&cams);
        assert_eq!(
            s["aaaaaaaa-1"], "front_door",
            "the first added keeps the plain slug"
        );
        assert_eq!(s["bbbbbbbb-2"], "front_door_bbbbbbbb");
        assert_eq!(s["cccccccc-3"], "status_cccccccc");
        let mut rev = cams.clone();
        rev.reverse();
        assert_eq!(
            assign(&rev),
            s,
            "the same whatever order they are listed in"
        );
    }

    #[test]
    fn topic_names() {
        let t = Topics {
            prefix: "argus".into(),
            node: "garage".into(),
            discovery: "homeassistant".into(),
        };
        assert_eq!(t.status(), "argus/garage/status");
        assert_eq!(t.camera("door"), "argus/garage/door");
        assert_eq!(t.commands(), "argus/garage/+/+/set");
        assert_eq!(
            t.device_config("1f2e-AB"),
            "homeassistant/device/garage_1f2e_ab/config"
        );
        let id = "6b1c0a2e-1111-4222-8333-444455556666";
        assert_eq!(
            t.own_device(&t.device_config(id)).as_deref(),
            Some(id_part(id).as_str())
        );
        // Another node whose id starts with ours, and anything else, are not ours.
        let other = Topics {
            node: "garage_2".into(),
            ..t.clone()
        };
        assert_eq!(t.own_device(&other.device_config(id)), None);
        assert_eq!(t.own_device("homeassistant/device/garage_x/config"), None);
        assert_eq!(t.own_device("argus/garage/status"), None);
    }
}
