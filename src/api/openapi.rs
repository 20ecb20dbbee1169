//! The OpenAPI 3.1 document, generated from the handlers' annotations and the DTO types.

use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

struct Security;

impl Modify for Security {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let c = doc.components.get_or_insert_with(Default::default);
        c.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-API-Key",
                "An API key (`argus_...`). The scopes each operation needs are listed with it.",
            ))),
        );
        c.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "A browser login from POST /api/v1/auth/login (also sent as the \
                         `access_token` cookie).",
                    ))
                    .build(),
            ),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Argus Edge API",
        description = "The ArgusAI REST API served by the Argus Edge appliance. Errors are \
            `{\"detail\": ..., \"status_code\": N}`. API-key requests carry `X-RateLimit-*` \
            headers. Live updates: WebSocket `/ws`. Live video: WebSocket \
            `/api/v1/cameras/{id}/live` (fragmented MP4) or `/api/v1/cameras/{id}/live.mjpeg`.",
        license(name = "MIT"),
    ),
    modifiers(&Security),
    paths(
        super::system::health, super::system::get_settings, super::system::put_settings,
        super::system::storage, super::system::ssl_status,
        super::auth::login, super::auth::logout, super::auth::me, super::auth::change_password,
        super::cameras::list, super::cameras::create, super::cameras::test, super::cameras::get,
        super::cameras::update, super::cameras::delete, super::cameras::start, super::cameras::stop, super::cameras::snapshot,
        super::live::websocket, super::live::mjpeg,
        super::events::list, super::events::create, super::events::stats, super::events::export,
        super::events::cleanup,
        super::events::get, super::events::delete, super::events::thumbnail, super::events::reanalyse,
        super::clips::clip,
        super::protect::list, super::protect::create, super::protect::test, super::protect::get,
        super::protect::update, super::protect::delete, super::protect::cameras,
        super::protect::test_saved, super::protect::enable, super::protect::disable,
        super::protect::filters,
        super::ai::providers, super::ai::describe, super::ai::usage, super::ai::capabilities,
        super::ai::context_metrics, super::ai::refine_prompt,
        super::api_keys::list, super::api_keys::create, super::api_keys::get,
        super::api_keys::revoke, super::api_keys::usage,
        super::alert_rules::list, super::alert_rules::create, super::alert_rules::get,
        super::alert_rules::update, super::alert_rules::delete, super::alert_rules::test,
        super::notifications::list, super::notifications::delete_all,
        super::notifications::mark_all_read, super::notifications::mark_read,
        super::notifications::delete,
        super::webhooks::test, super::webhooks::logs, super::webhooks::export,
        super::mqtt::get_config, super::mqtt::put_config, super::mqtt::status, super::mqtt::test,
        super::mqtt::publish_discovery,
    ),
    tags(
        (name = "system", description = "Health, settings, storage, TLS"),
        (name = "auth", description = "Browser login with JWT"),
        (name = "cameras", description = "Cameras and their capture"),
        (name = "events", description = "The event timeline"),
        (name = "protect", description = "UniFi Protect controllers"),
        (name = "ai", description = "Cloud vision descriptions and their cost"),
        (name = "api-keys", description = "Keys for integrations"),
        (name = "alerts", description = "Alert rules, webhooks and their delivery log"),
        (name = "notifications", description = "In-app notifications"),
        (name = "integrations", description = "MQTT and Home Assistant"),
    )
)]
pub struct ApiDoc;

/// The document as JSON, built once.
pub fn json() -> &'static str {
    static DOC: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DOC.get_or_init(|| {
        let mut doc = ApiDoc::openapi();
        doc.info.version = env!("CARGO_PKG_VERSION").to_string();
        doc.to_json().unwrap_or_else(|_| "{}".into())
    })
}

#[cfg(test)]
mod tests {
    use super::super::routes::ROUTES;

    #[test]
    fn every_route_is_documented_and_nothing_else() {
        let doc: serde_json::Value = serde_json::from_str(super::json()).unwrap();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
        let paths = doc["paths"].as_object().unwrap();
        let mut documented = 0;
        for (p, item) in paths {
            for m in item.as_object().unwrap().keys() {
                documented += 1;
                let path = p
                    .strip_prefix("/api/v1")
                    .expect("documented paths are under /api/v1");
                assert!(
                    ROUTES
                        .iter()
                        .any(|r| r.path == path && r.method.as_str().eq_ignore_ascii_case(m)),
                    "{m} {p} is documented but not routed"
                );
            }
        }
        for r in ROUTES {
            let p = format!("/api/v1{}", r.path);
            let m = r.method.as_str().to_ascii_lowercase();
            assert!(
                paths.get(&p).and_then(|i| i.get(&m)).is_some(),
                "{m} {p} is routed but not documented"
            );
        }
        assert_eq!(documented, ROUTES.len());
    }
}
