//! Reading and writing the settings document and the providers' sealed API keys: the narrow
//! handle services get instead of the application state.

use super::{ProviderName, Settings, SettingsUpdate};
use crate::crypto::Keys;
use crate::error::{AppError, AppResult};
use crate::store::Store;
use base64::Engine;

const SETTINGS_KEY: &str = "system";

/// The settings row holding a provider's sealed API key.
fn provider_key_row(name: ProviderName) -> String {
    format!("ai_key.{}", name.as_str())
}

/// Cheap to clone.
#[derive(Clone)]
pub struct SettingsHandle {
    store: Store,
    keys: Keys,
}

impl SettingsHandle {
    pub fn new(store: Store, keys: Keys) -> Self {
        SettingsHandle { store, keys }
    }

    /// The current settings (the defaults until an owner saves some).
    pub async fn get(&self) -> AppResult<Settings> {
        let raw = self
            .store
            .read(|c| crate::store::settings::get(c, SETTINGS_KEY))
            .await?;
        match raw {
            Some(s) => serde_json::from_str(&s).map_err(AppError::internal),
            None => Ok(Settings::default()),
        }
    }

    /// Applies a partial update in one transaction; API keys go sealed into their own rows,
    /// never into the settings document. A refused update (422) changes nothing.
    pub async fn update(&self, u: SettingsUpdate, now: i64) -> AppResult<Settings> {
        let sealed: Vec<(String, Option<String>)> = u
            .ai_providers
            .iter()
            .flatten()
            .filter_map(|(name, p)| {
                let key = p.api_key.as_ref()?;
                Some((
                    provider_key_row(*name),
                    key.as_ref().map(|k| {
                        base64::engine::general_purpose::STANDARD
                            .encode(self.keys.seal(k.trim().as_bytes()))
                    }),
                ))
            })
            .collect();
        let out = self
            .store
            .write(move |c| {
                let tx = c.transaction()?;
                let cur: Settings = match crate::store::settings::get(&tx, SETTINGS_KEY)? {
                    Some(s) => serde_json::from_str(&s)?,
                    None => Settings::default(),
                };
                let next = match cur.apply(u) {
                    Ok(n) => n,
                    Err(msg) => return Ok(Err(msg)),
                };
                crate::store::settings::put(
                    &tx,
                    SETTINGS_KEY,
                    &serde_json::to_string(&next)?,
                    now,
                )?;
                for (row, value) in &sealed {
                    match value {
                        Some(v) => crate::store::settings::put(&tx, row, v, now)?,
                        None => crate::store::settings::delete(&tx, row)?,
                    }
                }
                tx.commit()?;
                Ok(Ok(next))
            })
            .await?;
        out.map_err(AppError::invalid)
    }

    /// A cloud provider's API key, unsealed (for the request that needs it only).
    pub async fn provider_key(&self, name: ProviderName) -> Option<String> {
        let row = provider_key_row(name);
        let sealed = self
            .store
            .read(move |c| crate::store::settings::get(c, &row))
            .await
            .ok()??;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(sealed)
            .ok()?;
        String::from_utf8(self.keys.unseal(&bytes).ok()?).ok()
    }
}
