//! What a call costs: a per-model price table in US dollars per million tokens, overridable by
//! the owner, and [`cost`]. The reference system kept two disagreeing tables (Gemini was free in
//! one of them); here there is one, and it is the only place prices live.
//!
//! The prices are the providers' public list prices for standard (non-batch, non-cached)
//! requests, **as of October 2025**, for prompts well under any long-context threshold (a
//! description prompt is a few thousand tokens). Image input is billed as input tokens by every
//! provider, and the token counts come from the providers' own usage fields, so the image is
//! included. Prices change: the owner can override any model's price in settings.

use crate::settings::ProviderName;
use std::collections::HashMap;

/// One table row: provider, model name (or model family prefix), USD per 1M input tokens, USD
/// per 1M output tokens.
pub type PriceRow = (ProviderName, &'static str, f64, f64);

/// List prices as of October 2025 (USD per 1M tokens), from the providers' pricing pages:
/// openai.com/api/pricing, anthropic.com/pricing, ai.google.dev/gemini-api/docs/pricing (paid
/// tier), docs.x.ai/docs/models. The first row of each provider is its default model.
pub const PRICES: &[PriceRow] = &[
    (ProviderName::Openai, "gpt-4o-mini", 0.15, 0.60),
    (ProviderName::Openai, "gpt-4o", 2.50, 10.00),
    (ProviderName::Openai, "gpt-4.1-nano", 0.10, 0.40),
    (ProviderName::Openai, "gpt-4.1-mini", 0.40, 1.60),
    (ProviderName::Openai, "gpt-4.1", 2.00, 8.00),
    (ProviderName::Openai, "gpt-5-nano", 0.05, 0.40),
    (ProviderName::Openai, "gpt-5-mini", 0.25, 2.00),
    (ProviderName::Openai, "gpt-5", 1.25, 10.00),
    (ProviderName::Anthropic, "claude-haiku-4-5", 1.00, 5.00),
    (ProviderName::Anthropic, "claude-3-5-haiku", 0.80, 4.00),
    (ProviderName::Anthropic, "claude-sonnet-4-5", 3.00, 15.00),
    (ProviderName::Anthropic, "claude-sonnet-4", 3.00, 15.00),
    (ProviderName::Gemini, "gemini-2.5-flash", 0.30, 2.50),
    (ProviderName::Gemini, "gemini-2.5-flash-lite", 0.10, 0.40),
    (ProviderName::Gemini, "gemini-2.5-pro", 1.25, 10.00),
    (ProviderName::Gemini, "gemini-2.0-flash", 0.10, 0.40),
    (ProviderName::Grok, "grok-4-fast-non-reasoning", 0.20, 0.50),
    (ProviderName::Grok, "grok-4-fast-reasoning", 0.20, 0.50),
    (ProviderName::Grok, "grok-4", 3.00, 15.00),
    (ProviderName::Grok, "grok-2-vision", 2.00, 10.00),
];

/// USD per 1M (input, output) tokens for `model` at `provider`.
///
/// Lookup order: an owner override for the model (exact name, else the longest override name
/// the model starts with), then the table (same rule, so the dated `gpt-4o-mini-2024-07-18`
/// costs what `gpt-4o-mini` costs and not what `gpt-4o` costs), then the provider's default
/// model price for a model the table does not know (a deliberate over- or under-estimate the
/// owner can fix with an override, better than counting the call as free). `openai_compatible`
/// servers run locally and cost nothing unless overridden.
pub fn price(
    provider: ProviderName,
    model: &str,
    overrides: &HashMap<String, (f64, f64)>,
) -> (f64, f64) {
    let model = model.trim().trim_start_matches("models/");
    if let Some(p) = longest_match(overrides.iter().map(|(k, v)| (k.as_str(), *v)), model) {
        return p;
    }
    if provider == ProviderName::OpenaiCompatible {
        return (0.0, 0.0);
    }
    let rows = PRICES.iter().filter(|r| r.0 == provider);
    if let Some(p) = longest_match(rows.clone().map(|r| (r.1, (r.2, r.3))), model) {
        return p;
    }
    rows.map(|r| (r.2, r.3)).next().unwrap_or((0.0, 0.0))
}

fn longest_match<'a>(
    entries: impl Iterator<Item = (&'a str, (f64, f64))>,
    model: &str,
) -> Option<(f64, f64)> {
    entries
        .filter(|(name, _)| {
            model == *name
                || model
                    .strip_prefix(name)
                    .is_some_and(|rest| rest.starts_with(['-', '@', ':', '.']))
        })
        .max_by_key(|(name, _)| name.len())
        .map(|(_, p)| p)
}

/// The cost in USD of a call that used `tokens_in` and `tokens_out` (see [`price`]).
pub fn cost(
    provider: ProviderName,
    model: &str,
    tokens_in: u64,
    tokens_out: u64,
    overrides: &HashMap<String, (f64, f64)>,
) -> f64 {
    let (per_m_in, per_m_out) = price(provider, model, overrides);
    (tokens_in as f64 * per_m_in + tokens_out as f64 * per_m_out) / 1_000_000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ai::provider::default_model;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn every_default_model_has_a_price() {
        for p in [
            ProviderName::Openai,
            ProviderName::Anthropic,
            ProviderName::Gemini,
            ProviderName::Grok,
        ] {
            let first = PRICES.iter().find(|r| r.0 == p).unwrap();
            assert_eq!(first.1, default_model(p), "{p:?}: default model first");
        }
    }

    #[test]
    fn costs_follow_the_table() {
        let none = HashMap::new();
        // 1M in + 1M out of gpt-4o-mini = 0.15 + 0.60.
        assert!(close(
            cost(
                ProviderName::Openai,
                "gpt-4o-mini",
                1_000_000,
                1_000_000,
                &none
            ),
            0.75
        ));
        // A typical description: 2,900 tokens in, 60 out.
        assert!(close(
            cost(
                ProviderName::Anthropic,
                "claude-haiku-4-5",
                1_600,
                60,
                &none
            ),
            (1_600.0 * 1.0 + 60.0 * 5.0) / 1e6
        ));
        // Dated names match the longest family prefix.
        assert_eq!(
            price(ProviderName::Openai, "gpt-4o-mini-2024-07-18", &none),
            (0.15, 0.60)
        );
        assert_eq!(
            price(ProviderName::Openai, "gpt-4o-2024-08-06", &none),
            (2.50, 10.00)
        );
        assert_eq!(
            price(ProviderName::Anthropic, "claude-haiku-4-5-20251001", &none),
            (1.00, 5.00)
        );
        assert_eq!(
            price(ProviderName::Gemini, "models/gemini-2.5-flash-lite", &none),
            (0.10, 0.40)
        );
        // "gpt-4o" must not match "gpt-4omni" (a prefix without a separator).
        assert_eq!(
            price(ProviderName::Openai, "gpt-4omni", &none),
            (0.15, 0.60)
        );
    }

    #[test]
    fn unknown_models_cost_the_provider_default_and_local_is_free() {
        let none = HashMap::new();
        assert_eq!(
            price(ProviderName::Grok, "grok-99-vision", &none),
            (0.20, 0.50)
        );
        assert_eq!(
            cost(ProviderName::OpenaiCompatible, "llava", 5000, 500, &none),
            0.0
        );
    }

    #[test]
    fn overrides_win() {
        let mut o = HashMap::new();
        o.insert("gpt-4o-mini".to_string(), (1.0, 2.0));
        o.insert("llava".to_string(), (0.01, 0.02));
        assert_eq!(
            price(ProviderName::Openai, "gpt-4o-mini-2024-07-18", &o),
            (1.0, 2.0)
        );
        assert!(close(
            cost(
                ProviderName::OpenaiCompatible,
                "llava:13b",
                1_000_000,
                0,
                &o
            ),
            0.01
        ));
        assert_eq!(price(ProviderName::Openai, "gpt-4o", &o), (2.50, 10.00));
    }
}
