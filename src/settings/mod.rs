//! Runtime settings an owner edits through `GET`/`PUT /api/v1/system/settings`: typed, validated,
//! with defaults, stored as one JSON document in the `settings` table. Unknown keys are refused.
//! [`SettingsHandle`] reads and writes them.

mod handle;
pub use handle::SettingsHandle;

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// Cloud AI providers the appliance can call, by wire name.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ProviderName {
    Openai,
    Anthropic,
    Gemini,
    Grok,
    OpenaiCompatible,
}

impl ProviderName {
    pub const ALL: [ProviderName; 5] = [
        ProviderName::Openai,
        ProviderName::Anthropic,
        ProviderName::Gemini,
        ProviderName::Grok,
        ProviderName::OpenaiCompatible,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ProviderName::Openai => "openai",
            ProviderName::Anthropic => "anthropic",
            ProviderName::Gemini => "gemini",
            ProviderName::Grok => "grok",
            ProviderName::OpenaiCompatible => "openai_compatible",
        }
    }
}

/// A cloud provider's settings as stored and shown. The API key itself is sealed in its own
/// row (never in this document, never returned): only whether one is set and its last 4
/// characters are.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct ProviderSettings {
    /// An API key is stored.
    pub configured: bool,
    /// Its last 4 characters.
    pub key_hint: Option<String>,
    /// `null` = the provider's public endpoint (README lists them).
    pub base_url: Option<String>,
    /// `null` = the provider's default model.
    pub model: Option<String>,
}

/// A partial update of one provider: `api_key` (`null` deletes it), `base_url`, `model`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProviderUpdate {
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub api_key: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub base_url: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub model: Option<Option<String>>,
}

/// USD per million tokens, overriding the built-in price table for a model.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Price {
    pub input_per_mtok: f64,
    pub output_per_mtok: f64,
}

/// One camera's retention, overriding the global `retention_days`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CameraRetention {
    /// Delete this camera's events older than this many days (0 = keep forever; the size limit
    /// and the free-disk floor still apply).
    pub retention_days: u32,
}

/// Object classes a camera can turn into events.
pub const DETECTION_CLASSES: [&str; 4] = ["person", "vehicle", "animal", "motion"];

/// The full settings document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct Settings {
    /// Delete events older than this many days (0 = keep forever).
    pub retention_days: u32,
    /// Upper bound for the database plus snapshots, in bytes. `null` = 50 % of the data
    /// filesystem's size (computed at each pruning run).
    pub max_storage_bytes: Option<u64>,
    /// Stop writing snapshots (and prune the oldest events) below this much free space on the
    /// data filesystem, in bytes. `null` = 256 MiB, or 5 % of the filesystem if that is smaller.
    pub min_free_disk_bytes: Option<u64>,
    /// Per-camera retention overriding `retention_days`, by camera id.
    pub camera_retention: BTreeMap<String, CameraRetention>,
    /// Order in which cloud providers are tried for descriptions; providers without a key are
    /// skipped.
    pub ai_provider_order: Vec<ProviderName>,
    /// Daily cloud AI spending cap in USD (`null` = none).
    pub ai_daily_cost_cap_usd: Option<f64>,
    /// Monthly cloud AI spending cap in USD (`null` = none).
    pub ai_monthly_cost_cap_usd: Option<f64>,
    /// Per-provider key state, endpoint and model.
    pub ai_providers: BTreeMap<ProviderName, ProviderSettings>,
    /// Price overrides by model name (USD per million tokens in and out).
    pub ai_prices: BTreeMap<String, Price>,
    /// Time allowed for one description across all providers and retries, in seconds.
    pub ai_description_budget_seconds: u32,
    /// Minimum time between two cloud calls for the same camera, in seconds.
    pub ai_min_interval_seconds: u32,
    /// Classes that create events on new cameras (`person`, `vehicle`, `animal`, `motion`).
    pub default_object_filter: Vec<String>,
    /// Minimum detector score (0..1) for an object to count.
    pub detection_min_score: f32,
    /// Default motion cooldown for new cameras, in seconds.
    pub default_motion_cooldown: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            retention_days: 30,
            max_storage_bytes: None,
            min_free_disk_bytes: None,
            camera_retention: BTreeMap::new(),
            ai_provider_order: vec![
                ProviderName::Openai,
                ProviderName::Anthropic,
                ProviderName::Gemini,
                ProviderName::Grok,
                ProviderName::OpenaiCompatible,
            ],
            ai_daily_cost_cap_usd: None,
            ai_monthly_cost_cap_usd: None,
            ai_providers: BTreeMap::new(),
            ai_prices: BTreeMap::new(),
            ai_description_budget_seconds: 10,
            ai_min_interval_seconds: 10,
            default_object_filter: vec!["person".into(), "vehicle".into()],
            detection_min_score: 0.5,
            default_motion_cooldown: 60,
        }
    }
}

/// A partial update: only the keys present change. `null` clears an optional value.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsUpdate {
    pub retention_days: Option<u32>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<u64>)]
    pub max_storage_bytes: Option<Option<u64>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<u64>)]
    pub min_free_disk_bytes: Option<Option<u64>>,
    /// Replaces the whole per-camera retention table.
    pub camera_retention: Option<BTreeMap<String, CameraRetention>>,
    pub ai_provider_order: Option<Vec<ProviderName>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<f64>)]
    pub ai_daily_cost_cap_usd: Option<Option<f64>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<f64>)]
    pub ai_monthly_cost_cap_usd: Option<Option<f64>>,
    /// Per provider, a partial update; only the providers named change.
    pub ai_providers: Option<BTreeMap<ProviderName, ProviderUpdate>>,
    /// Replaces the whole price override table.
    pub ai_prices: Option<BTreeMap<String, Price>>,
    pub ai_description_budget_seconds: Option<u32>,
    pub ai_min_interval_seconds: Option<u32>,
    pub default_object_filter: Option<Vec<String>>,
    pub detection_min_score: Option<f32>,
    pub default_motion_cooldown: Option<u32>,
}

/// Distinguishes "key absent" (outer `None`) from "key set to null" (`Some(None)`).
fn double_option<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Some(Option::deserialize(d)?))
}

impl Settings {
    /// Applies an update and validates the result; the error names the field.
    pub fn apply(&self, u: SettingsUpdate) -> Result<Settings, String> {
        let mut s = self.clone();
        if let Some(v) = u.retention_days {
            s.retention_days = v;
        }
        if let Some(v) = u.max_storage_bytes {
            s.max_storage_bytes = v;
        }
        if let Some(v) = u.min_free_disk_bytes {
            s.min_free_disk_bytes = v;
        }
        if let Some(v) = u.camera_retention {
            s.camera_retention = v;
        }
        if let Some(v) = u.ai_provider_order {
            s.ai_provider_order = v;
        }
        if let Some(v) = u.ai_daily_cost_cap_usd {
            s.ai_daily_cost_cap_usd = v;
        }
        if let Some(v) = u.ai_monthly_cost_cap_usd {
            s.ai_monthly_cost_cap_usd = v;
        }
        if let Some(map) = u.ai_providers {
            for (name, p) in map {
                let e = s.ai_providers.entry(name).or_default();
                if let Some(k) = p.api_key {
                    match k {
                        Some(k) => {
                            let k = k.trim().to_string();
                            if k.len() < 8 || k.len() > 512 || k.chars().any(char::is_control) {
                                return Err(format!(
                                    "ai_providers.{}.api_key: 8 to 512 printable characters, or null",
                                    name.as_str()
                                ));
                            }
                            e.configured = true;
                            e.key_hint = Some(k[k.len() - 4..].to_string());
                        }
                        None => {
                            e.configured = false;
                            e.key_hint = None;
                        }
                    }
                }
                if let Some(b) = p.base_url {
                    e.base_url = b;
                }
                if let Some(m) = p.model {
                    e.model = m;
                }
            }
        }
        if let Some(v) = u.ai_prices {
            s.ai_prices = v;
        }
        if let Some(v) = u.ai_description_budget_seconds {
            s.ai_description_budget_seconds = v;
        }
        if let Some(v) = u.ai_min_interval_seconds {
            s.ai_min_interval_seconds = v;
        }
        if let Some(v) = u.default_object_filter {
            s.default_object_filter = v;
        }
        if let Some(v) = u.detection_min_score {
            s.detection_min_score = v;
        }
        if let Some(v) = u.default_motion_cooldown {
            s.default_motion_cooldown = v;
        }
        s.validate()?;
        Ok(s)
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.retention_days > 3650 {
            return Err("retention_days: between 0 (keep forever) and 3650".into());
        }
        if matches!(self.max_storage_bytes, Some(b) if b < 16 << 20) {
            return Err("max_storage_bytes: at least 16 MiB (16777216), or null".into());
        }
        if matches!(self.min_free_disk_bytes, Some(b) if b > 1 << 50) {
            return Err("min_free_disk_bytes: at most 1 PiB, or null".into());
        }
        if self.camera_retention.len() > 1000 {
            return Err("camera_retention: at most 1000 cameras".into());
        }
        for (id, r) in &self.camera_retention {
            if uuid::Uuid::try_parse(id).is_err() {
                return Err(format!("camera_retention: {id:?} is not a camera id"));
            }
            if r.retention_days > 3650 {
                return Err(format!(
                    "camera_retention.{id}.retention_days: between 0 (keep forever) and 3650"
                ));
            }
        }
        let mut seen = std::collections::HashSet::new();
        if !self.ai_provider_order.iter().all(|p| seen.insert(*p)) {
            return Err("ai_provider_order: each provider may appear once".into());
        }
        for (name, cap) in [
            ("ai_daily_cost_cap_usd", self.ai_daily_cost_cap_usd),
            ("ai_monthly_cost_cap_usd", self.ai_monthly_cost_cap_usd),
        ] {
            if matches!(cap, Some(c) if !(c.is_finite() && c >= 0.0)) {
                return Err(format!("{name}: a non-negative amount in USD, or null"));
            }
        }
        for (name, p) in &self.ai_providers {
            if let Some(b) = &p.base_url {
                let ok = url::Url::parse(b)
                    .ok()
                    .is_some_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
                if !ok {
                    return Err(format!(
                        "ai_providers.{}.base_url: an http(s) URL such as https://api.openai.com/v1, or null",
                        name.as_str()
                    ));
                }
            }
            if let Some(m) = &p.model {
                if m.trim().is_empty() || m.len() > 200 {
                    return Err(format!(
                        "ai_providers.{}.model: a model name, or null",
                        name.as_str()
                    ));
                }
            }
        }
        for (model, p) in &self.ai_prices {
            let ok = |v: f64| v.is_finite() && (0.0..=10_000.0).contains(&v);
            if !ok(p.input_per_mtok) || !ok(p.output_per_mtok) {
                return Err(format!(
                    "ai_prices.{model}: input_per_mtok and output_per_mtok in USD (0 to 10000)"
                ));
            }
        }
        if !(1..=120).contains(&self.ai_description_budget_seconds) {
            return Err("ai_description_budget_seconds: between 1 and 120".into());
        }
        if self.ai_min_interval_seconds > 3600 {
            return Err("ai_min_interval_seconds: between 0 and 3600".into());
        }
        if self.default_object_filter.is_empty() {
            return Err("default_object_filter: name at least one class".into());
        }
        if let Some(bad) = self
            .default_object_filter
            .iter()
            .find(|c| !DETECTION_CLASSES.contains(&c.as_str()))
        {
            return Err(format!(
                "default_object_filter: unknown class {bad:?} (use person, vehicle, animal, motion)"
            ));
        }
        if !(0.05..=1.0).contains(&self.detection_min_score) {
            return Err("detection_min_score: between 0.05 and 1".into());
        }
        if self.default_motion_cooldown > 3600 {
            return Err("default_motion_cooldown: between 0 and 3600 seconds".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_update_and_null_clears() {
        let s = Settings {
            ai_daily_cost_cap_usd: Some(2.0),
            ..Default::default()
        };
        let u: SettingsUpdate =
            serde_json::from_str(r#"{"retention_days": 7, "ai_daily_cost_cap_usd": null}"#)
                .unwrap();
        let s2 = s.apply(u).unwrap();
        assert_eq!(s2.retention_days, 7);
        assert_eq!(s2.ai_daily_cost_cap_usd, None);
        assert_eq!(s2.min_free_disk_bytes, s.min_free_disk_bytes);
    }

    #[test]
    fn unknown_and_invalid_values_are_refused() {
        assert!(serde_json::from_str::<SettingsUpdate>(r#"{"retention": 7}"#).is_err());
        let u: SettingsUpdate = serde_json::from_str(r#"{"detection_min_score": 2}"#).unwrap();
        assert!(Settings::default()
            .apply(u)
            .unwrap_err()
            .starts_with("detection_min_score"));
        let u: SettingsUpdate =
            serde_json::from_str(r#"{"ai_provider_order": ["openai", "openai"]}"#).unwrap();
        assert!(Settings::default().apply(u).is_err());
    }

    #[test]
    fn retention_overrides_are_validated() {
        let id = "6f1c2b7e-0000-4000-8000-000000000001";
        let u: SettingsUpdate = serde_json::from_str(&format!(
            r#"{{"camera_retention": {{"{id}": {{"retention_days": 7}}}}, "min_free_disk_bytes": 1000}}"#
        ))
        .unwrap();
        let s = Settings::default().apply(u).unwrap();
        assert_eq!(s.camera_retention[id].retention_days, 7);
        assert_eq!(s.min_free_disk_bytes, Some(1000));
        for (body, field) in [
            (
                r#"{"camera_retention": {"front": {"retention_days": 7}}}"#.to_string(),
                "camera_retention",
            ),
            (
                format!(r#"{{"camera_retention": {{"{id}": {{"retention_days": 4000}}}}}}"#),
                "camera_retention.",
            ),
            (r#"{"retention_days": 3651}"#.to_string(), "retention_days"),
        ] {
            let u: SettingsUpdate = serde_json::from_str(&body).unwrap();
            let err = Settings::default().apply(u).unwrap_err();
            assert!(err.starts_with(field), "{err}");
        }
        assert!(serde_json::from_str::<SettingsUpdate>(&format!(
            r#"{{"camera_retention": {{"{id}": {{"days": 7}}}}}}"#
        ))
        .is_err());
        // An old document with a number for the floor still loads.
        let s: Settings = serde_json::from_str(r#"{"min_free_disk_bytes": 5}"#).unwrap();
        assert_eq!(s.min_free_disk_bytes, Some(5));
    }
}
