//! The MQTT broker settings an owner edits through `/api/v1/integrations/mqtt/config`: their
//! stored shape and the update body, defaults and validation, and where they are kept (the `mqtt` settings row; the
//! password sealed in its own row, never returned).

use crate::crypto::Keys;
use crate::store::{Store, StoreError};
use base64::Engine;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

const CONFIG_ROW: &str = "mqtt";
const PASSWORD_ROW: &str = "mqtt_password";

/// The stored settings (without the password).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MqttConfig {
    pub enabled: bool,
    pub broker_host: String,
    pub broker_port: u16,
    pub username: Option<String>,
    pub use_tls: bool,
    /// PEM certificates trusted for the broker, besides the public roots.
    pub ca_cert: Option<String>,
    pub topic_prefix: String,
    pub discovery_prefix: String,
    pub discovery_enabled: bool,
    pub qos: u8,
    pub retain: bool,
    /// `None`: this appliance's own id ([`Keys::node_id`]).
    pub node_id: Option<String>,
}

impl Default for MqttConfig {
    fn default() -> Self {
        MqttConfig {
            enabled: false,
            broker_host: String::new(),
            broker_port: 1883,
            username: None,
            use_tls: false,
            ca_cert: None,
            topic_prefix: "argus".into(),
            discovery_prefix: "homeassistant".into(),
            discovery_enabled: true,
            qos: 1,
            retain: true,
            node_id: None,
        }
    }
}

/// What the client runs with: the settings, the password and the node id resolved.
#[derive(Clone, PartialEq)]
pub struct Runtime {
    pub cfg: MqttConfig,
    pub password: Option<String>,
    pub node_id: String,
}

/// Never shows the password.
impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("cfg", &self.cfg)
            .field("password", &self.password.as_ref().map(|_| "********"))
            .field("node_id", &self.node_id)
            .finish()
    }
}

/// A partial update (`PUT`): fields left out keep their value; `password: null` removes it.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MqttConfigUpdate {
    pub enabled: Option<bool>,
    /// Host name or IP address of the broker (required when enabled), at most 253 characters.
    pub broker_host: Option<String>,
    /// 1-65535 (default 1883; 8883 is the usual TLS port).
    #[schema(minimum = 1, maximum = 65535)]
    pub broker_port: Option<u32>,
    /// At most 256 characters; `null` or empty for none.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub username: Option<Option<String>>,
    /// At most 256 characters; stored sealed and never returned. `null` removes it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub password: Option<Option<String>>,
    pub use_tls: Option<bool>,
    /// PEM certificate(s) of a private CA that signed the broker's certificate (at most 64 KiB).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub ca_cert: Option<Option<String>>,
    /// Topic prefix, 1-64 characters of `A-Z a-z 0-9 _ - /` (default `argus`).
    pub topic_prefix: Option<String>,
    /// Home Assistant's discovery prefix (default `homeassistant`).
    pub discovery_prefix: Option<String>,
    pub discovery_enabled: Option<bool>,
    /// 0, 1 or 2 (default 1).
    #[schema(minimum = 0, maximum = 2)]
    pub qos: Option<u32>,
    /// Retain the state topics (default true).
    #[serde(alias = "retain_messages")]
    pub retain: Option<bool>,
    /// 1-64 characters of `A-Z a-z 0-9 _ -`; `null` for this appliance's own id.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub node_id: Option<Option<String>>,
}

fn present<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

impl Runtime {
    /// `host:port`.
    pub fn broker(&self) -> String {
        if self.cfg.broker_host.contains(':') {
            format!("[{}]:{}", self.cfg.broker_host, self.cfg.broker_port)
        } else {
            format!("{}:{}", self.cfg.broker_host, self.cfg.broker_port)
        }
    }

    /// Applies an update, validating the result. The error names the field.
    pub fn apply(&self, u: MqttConfigUpdate, keys: &Keys) -> Result<Runtime, String> {
        let mut c = self.cfg.clone();
        let mut password = self.password.clone();
        if let Some(v) = u.enabled {
            c.enabled = v;
        }
        if let Some(v) = u.broker_host {
            c.broker_host = v.trim().to_string();
        }
        if let Some(v) = u.broker_port {
            c.broker_port = u16::try_from(v)
                .ok()
                .filter(|p| *p > 0)
                .ok_or("broker_port: between 1 and 65535")?;
        }
        if let Some(v) = u.username {
            c.username = v.filter(|s| !s.is_empty());
        }
        if let Some(v) = u.password {
            password = v.filter(|s| !s.is_empty());
        }
        if let Some(v) = u.use_tls {
            c.use_tls = v;
        }
        if let Some(v) = u.ca_cert {
            c.ca_cert = v.filter(|s| !s.trim().is_empty());
        }
        if let Some(v) = u.topic_prefix {
            c.topic_prefix = v.trim().to_string();
        }
        if let Some(v) = u.discovery_prefix {
            c.discovery_prefix = v.trim().to_string();
        }
        if let Some(v) = u.discovery_enabled {
            c.discovery_enabled = v;
        }
        if let Some(v) = u.qos {
            c.qos = u8::try_from(v)
                .ok()
                .filter(|q| *q <= 2)
                .ok_or("qos: 0, 1 or 2")?;
        }
        if let Some(v) = u.retain {
            c.retain = v;
        }
        if let Some(v) = u.node_id {
            c.node_id = v.map(|s| s.trim().to_string());
        }
        validate(&c, password.as_deref())?;
        Ok(Runtime {
            node_id: c
                .node_id
                .clone()
                .unwrap_or_else(|| keys.node_id().to_string()),
            cfg: c,
            password,
        })
    }
}

/// Checks every field; the error names the first field that is wrong.
pub fn validate(c: &MqttConfig, password: Option<&str>) -> Result<(), String> {
    let host = &c.broker_host;
    if c.enabled && host.is_empty() {
        return Err("broker_host: required when enabled".into());
    }
    if host.len() > 253
        || host
            .chars()
            .any(|ch| ch.is_whitespace() || ch.is_control() || "/@?#[]".contains(ch))
    {
        return Err("broker_host: a host name or IP address (no scheme, path or port)".into());
    }
    if c.username.as_ref().is_some_and(|u| u.chars().count() > 256) {
        return Err("username: at most 256 characters".into());
    }
    if password.is_some_and(|p| p.chars().count() > 256) {
        return Err("password: at most 256 characters".into());
    }
    if let Some(pem) = &c.ca_cert {
        if pem.len() > 64 * 1024 {
            return Err("ca_cert: at most 64 KiB of PEM".into());
        }
        super::connect::parse_ca(pem).map_err(|e| format!("ca_cert: {e}"))?;
    }
    check_prefix("topic_prefix", &c.topic_prefix)?;
    check_prefix("discovery_prefix", &c.discovery_prefix)?;
    if let Some(n) = &c.node_id {
        if n.is_empty()
            || n.len() > 64
            || !n
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-')
        {
            return Err("node_id: 1 to 64 characters of A-Z, a-z, 0-9, _ and -".into());
        }
    }
    if c.qos > 2 {
        return Err("qos: 0, 1 or 2".into());
    }
    Ok(())
}

fn check_prefix(field: &str, p: &str) -> Result<(), String> {
    let ok = !p.is_empty()
        && p.len() <= 64
        && !p.starts_with('/')
        && !p.ends_with('/')
        && !p.contains("//")
        && p.chars()
            .all(|ch| ch.is_ascii_alphanumeric() || "_-/".contains(ch));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{field}: 1 to 64 characters of A-Z, a-z, 0-9, _, - and / (no leading, trailing or double /)"
        ))
    }
}

/// Reads the stored settings (the defaults until an owner saves some).
pub async fn load(store: &Store, keys: &Keys) -> Result<Runtime, StoreError> {
    let (raw, sealed) = store
        .read(|c| {
            Ok((
                crate::store::settings::get(c, CONFIG_ROW)?,
                crate::store::settings::get(c, PASSWORD_ROW)?,
            ))
        })
        .await?;
    let cfg: MqttConfig = raw
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_default();
    let password = sealed
        .and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok())
        .and_then(|b| keys.unseal(&b).ok())
        .and_then(|b| String::from_utf8(b).ok());
    Ok(Runtime {
        node_id: cfg
            .node_id
            .clone()
            .unwrap_or_else(|| keys.node_id().to_string()),
        cfg,
        password,
    })
}

/// Saves the settings and the sealed password in one transaction.
pub async fn save(store: &Store, keys: &Keys, rt: &Runtime, now: i64) -> Result<(), StoreError> {
    let json = serde_json::to_string(&rt.cfg)?;
    let sealed = rt
        .password
        .as_ref()
        .map(|p| base64::engine::general_purpose::STANDARD.encode(keys.seal(p.as_bytes())));
    store
        .write(move |c| {
            let tx = c.transaction()?;
            crate::store::settings::put(&tx, CONFIG_ROW, &json, now)?;
            match &sealed {
                Some(v) => crate::store::settings::put(&tx, PASSWORD_ROW, v, now)?,
                None => crate::store::settings::delete(&tx, PASSWORD_ROW)?,
            }
            tx.commit()?;
            Ok(())
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Keys {
        Keys::from_master(&[7; 32])
    }

    fn base() -> Runtime {
        Runtime {
            cfg: MqttConfig::default(),
            password: None,
            node_id: keys().node_id().to_string(),
        }
    }

    fn upd(v: serde_json::Value) -> Result<Runtime, String> {
        base().apply(serde_json::from_value(v).unwrap(), &keys())
    }

    #[test]
    fn defaults_and_a_stable_node_id() {
        let rt = base();
        assert_eq!(rt.cfg.broker_port, 1883);
        assert_eq!(rt.cfg.topic_prefix, "argus");
        assert_eq!(rt.cfg.discovery_prefix, "homeassistant");
        assert_eq!(rt.cfg.qos, 1);
        assert!(rt.cfg.retain && rt.cfg.discovery_enabled && !rt.cfg.enabled);
        assert!(rt.node_id.starts_with("argus_") && rt.node_id.len() == 14);
        assert_eq!(keys().node_id(), Keys::from_master(&[7; 32]).node_id());
        assert_ne!(keys().node_id(), Keys::from_master(&[8; 32]).node_id());
    }

    #[test]
    fn updates_are_validated_field_by_field() {
        let bad = [
            (serde_json::json!({"enabled": true}), "broker_host"),
            (
                serde_json::json!({"broker_host": "mqtt://x"}),
                "broker_host",
            ),
            (serde_json::json!({"broker_host": "a b"}), "broker_host"),
            (serde_json::json!({"broker_port": 0}), "broker_port"),
            (serde_json::json!({"broker_port": 65536}), "broker_port"),
            (serde_json::json!({"qos": 3}), "qos"),
            (serde_json::json!({"topic_prefix": ""}), "topic_prefix"),
            (serde_json::json!({"topic_prefix": "a/#"}), "topic_prefix"),
            (
                serde_json::json!({"discovery_prefix": "/ha"}),
                "discovery_prefix",
            ),
            (serde_json::json!({"node_id": "a.b"}), "node_id"),
            (serde_json::json!({"ca_cert": "not a pem"}), "ca_cert"),
            (serde_json::json!({"password": "x".repeat(257)}), "password"),
        ];
        for (body, field) in bad {
            let e = upd(body.clone()).unwrap_err();
            assert!(e.starts_with(field), "{body}: {e}");
        }
        let rt = upd(
            serde_json::json!({"enabled": true, "broker_host": "10.0.0.2",
            "password": "pw", "node_id": "garage", "retain_messages": false}),
        )
        .unwrap();
        assert_eq!(rt.node_id, "garage");
        assert!(!rt.cfg.retain);
        assert_eq!(rt.password.as_deref(), Some("pw"));
        // `null` goes back to the appliance's own id and removes the password.
        let back = rt
            .apply(
                serde_json::from_value(serde_json::json!({"node_id": null, "password": null}))
                    .unwrap(),
                &keys(),
            )
            .unwrap();
        assert_eq!(back.node_id, keys().node_id());
        assert!(back.password.is_none());
    }

    #[test]
    fn unknown_fields_are_refused() {
        let r: Result<MqttConfigUpdate, _> =
            serde_json::from_value(serde_json::json!({"brokr_host": "x"}));
        assert!(r.is_err());
    }
}
