//! The subset of Protect's bootstrap (`GET /proxy/protect/api/bootstrap`) the appliance uses:
//! the NVR's name and versions, the cameras, and the `lastUpdateId` to open the update socket
//! with.
//!
//! The bootstrap is large and its fields change between Protect versions, so parsing is
//! lenient: unknown fields are ignored, missing or wrongly typed ones take defaults, and a camera
//! entry without an id is skipped with a warning instead of failing the whole bootstrap.

use serde_json::{Map, Value};

/// What the appliance knows of a console after a bootstrap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bootstrap {
    pub nvr: NvrInfo,
    pub cameras: Vec<CameraInfo>,
    /// Resume point for the update socket.
    pub last_update_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NvrInfo {
    pub id: Option<String>,
    pub name: String,
    /// The UniFi Protect application version (`version`).
    pub version: Option<String>,
    /// The console's UniFi OS firmware (`firmwareVersion`).
    pub firmware_version: Option<String>,
    /// Hardware model (`marketName`, else `type`), e.g. `UNVR`.
    pub model: Option<String>,
}

impl NvrInfo {
    /// The version to show: the firmware version, else the Protect version.
    pub fn display_version(&self) -> Option<&str> {
        self.firmware_version.as_deref().or(self.version.as_deref())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CameraInfo {
    pub id: String,
    /// The user's name for the camera (falls back to the model, then the id).
    pub name: String,
    /// `camera` for cameras and doorbells.
    pub model_key: String,
    /// Protect's `type`: the hardware model, e.g. `UVC G4 Doorbell`.
    pub model: String,
    pub market_name: Option<String>,
    /// `featureFlags.isDoorbell`, or a model whose name says doorbell.
    pub is_doorbell: bool,
    /// `CONNECTED`, `DISCONNECTED`, ...
    pub state: Option<String>,
    /// `isConnected`, else `state == "CONNECTED"`.
    pub is_connected: bool,
    /// What the camera can detect (`featureFlags.smartDetectTypes`), e.g. `["person", "vehicle"]`.
    pub smart_detect_types: Vec<String>,
}

fn text(obj: &Map<String, Value>, key: &str) -> Option<String> {
    obj.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
        .map(str::to_string)
}

impl CameraInfo {
    /// One entry of `cameras`; `None` without a usable id. Fields of an unexpected type count
    /// as missing.
    fn from_json(cam: &Value) -> Option<CameraInfo> {
        let obj = cam.as_object()?;
        let id = text(obj, "id")?;
        let flags = obj.get("featureFlags").and_then(Value::as_object);
        let flag = |key: &str| flags.and_then(|f| f.get(key));
        let model = text(obj, "type").unwrap_or_default();
        let market_name = text(obj, "marketName");
        let says_doorbell = |s: &str| s.to_ascii_lowercase().contains("doorbell");
        let is_doorbell = flag("isDoorbell").and_then(Value::as_bool).unwrap_or(false)
            || says_doorbell(&model)
            || market_name.as_deref().is_some_and(says_doorbell);
        let state = text(obj, "state");
        let is_connected = obj
            .get("isConnected")
            .and_then(Value::as_bool)
            .unwrap_or_else(|| state.as_deref() == Some("CONNECTED"));
        let name = text(obj, "name")
            .or_else(|| market_name.clone())
            .or_else(|| Some(model.clone()).filter(|m| !m.is_empty()))
            .unwrap_or_else(|| id.clone());
        let smart_detect_types = flag("smartDetectTypes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect();
        Some(CameraInfo {
            id,
            name,
            model_key: text(obj, "modelKey").unwrap_or_else(|| "camera".into()),
            model,
            market_name,
            is_doorbell,
            state,
            is_connected,
            smart_detect_types,
        })
    }
}

impl Bootstrap {
    /// Parses a bootstrap body. The error says what is missing (no secrets are in a bootstrap
    /// error: the body is never quoted).
    pub fn parse(body: &[u8]) -> Result<Bootstrap, String> {
        let v: Value =
            serde_json::from_slice(body).map_err(|e| format!("the bootstrap is not JSON: {e}"))?;
        let Some(obj) = v.as_object() else {
            return Err("the bootstrap is not a JSON object".into());
        };
        let Some(nvr) = obj.get("nvr").and_then(Value::as_object) else {
            return Err("the bootstrap has no nvr".into());
        };
        let mut cameras = Vec::new();
        let list = obj.get("cameras").and_then(Value::as_array);
        for (idx, cam) in list.into_iter().flatten().enumerate() {
            match CameraInfo::from_json(cam) {
                Some(c) => cameras.push(c),
                None => tracing::warn!(
                    index = idx,
                    "Protect bootstrap: a camera without an id skipped"
                ),
            }
        }
        Ok(Bootstrap {
            nvr: NvrInfo {
                id: text(nvr, "id"),
                name: text(nvr, "name").unwrap_or_default(),
                version: text(nvr, "version"),
                firmware_version: text(nvr, "firmwareVersion"),
                model: text(nvr, "marketName").or_else(|| text(nvr, "type")),
            },
            cameras,
            last_update_id: obj
                .get("lastUpdateId")
                .and_then(Value::as_str)
                .map(str::to_string),
        })
    }

    pub fn camera(&self, id: &str) -> Option<&CameraInfo> {
        self.cameras.iter().find(|c| c.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_typical_bootstrap() {
        let body = json!({
            "authUserId": "u1",
            "lastUpdateId": "9b7f7c6e-1111-4222-8333-444455556666",
            "nvr": {"id": "n1", "name": "Home NVR", "version": "5.1.0", "firmwareVersion": "4.0.6",
                    "type": "UNVR", "marketName": "UNVR", "extra": {"x": 1}},
            "cameras": [
                {"id": "c1", "name": "Driveway", "modelKey": "camera", "type": "UVC G4 Bullet",
                 "state": "CONNECTED", "isConnected": true,
                 "featureFlags": {"isDoorbell": false, "smartDetectTypes": ["person", "vehicle"]}},
                {"id": "c2", "name": "Front Door", "modelKey": "camera", "type": "UVC G4 Doorbell Pro",
                 "state": "DISCONNECTED", "featureFlags": {"smartDetectTypes": ["person", "package", 7]}},
                {"name": "no id: skipped"},
                {"id": "c3", "name": "  ", "marketName": "G5 Flex", "featureFlags": null, "isConnected": "yes?"}
            ],
            "users": []
        });
        let b = Bootstrap::parse(body.to_string().as_bytes()).unwrap();
        assert_eq!(
            b.last_update_id.as_deref(),
            Some("9b7f7c6e-1111-4222-8333-444455556666")
        );
        assert_eq!(b.nvr.name, "Home NVR");
        assert_eq!(b.nvr.display_version(), Some("4.0.6"));
        assert_eq!(b.nvr.version.as_deref(), Some("5.1.0"));
        assert_eq!(b.nvr.model.as_deref(), Some("UNVR"));
        let ids: Vec<&str> = b.cameras.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(
            ids,
            ["c1", "c2", "c3"],
            "the entry without an id is skipped"
        );
        let drive = b.camera("c1").unwrap();
        assert!(!drive.is_doorbell && drive.is_connected);
        assert_eq!(drive.smart_detect_types, ["person", "vehicle"]);
        let door = b.camera("c2").unwrap();
        assert!(door.is_doorbell, "from the model name");
        assert!(!door.is_connected, "from the state");
        assert_eq!(door.smart_detect_types, ["person", "package"]);
        let flex = b.camera("c3").unwrap();
        assert_eq!(flex.name, "G5 Flex", "a blank name falls back to the model");
        assert!(
            !flex.is_connected,
            "a wrongly typed field counts as missing"
        );
    }

    #[test]
    fn defaults_and_fallbacks() {
        let body = json!({
            "nvr": {},
            "cameras": [
                {"id": "c1", "marketName": "G4 Doorbell", "featureFlags": {"isDoorbell": true}},
                {"id": "c2", "type": "UVC G3"},
                {"id": "c3"}
            ]
        });
        let b = Bootstrap::parse(body.to_string().as_bytes()).unwrap();
        assert_eq!(b.nvr.name, "");
        assert_eq!(b.nvr.display_version(), None);
        assert_eq!(b.last_update_id, None);
        let names: Vec<&str> = b.cameras.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["G4 Doorbell", "UVC G3", "c3"]);
        assert!(b.cameras[0].is_doorbell);
        assert_eq!(b.cameras[2].model_key, "camera");
        assert!(!b.cameras[2].is_connected);
    }

    #[test]
    fn unusable_bodies() {
        for body in ["", "[]", "{}", r#"{"nvr": 1}"#, "{"] {
            assert!(Bootstrap::parse(body.as_bytes()).is_err(), "{body}");
        }
    }
}
