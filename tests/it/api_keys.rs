use crate::support::*;
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn create_list_show_once_and_usage() {
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    let (s, v) = app
        .post("/api/v1/api-keys", &admin, json!({"name": "Home Assistant", "scopes": ["read:events", "read:cameras"], "rate_limit_per_minute": 50}))
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let key = v["key"].as_str().unwrap().to_string();
    let id = v["id"].as_str().unwrap().to_string();
    assert!(key.starts_with("argus_") && key.len() >= 6 + 32, "{key}");
    assert!(key[6..]
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
    assert_eq!(v["prefix"], json!(format!("{}...", &key[..14])));
    assert_eq!(v["scopes"], json!(["read:events", "read:cameras"]));

    // The key is never shown again, and its hash is what the database holds.
    let (s, list) = app.get("/api/v1/api-keys", &admin).await;
    assert_eq!(s, StatusCode::OK);
    assert!(!list.to_string().contains(&key));
    let db = std::fs::read(app.data_dir().join("argus.db")).unwrap();
    let wal = std::fs::read(app.data_dir().join("argus.db-wal")).unwrap_or_default();
    let needle = key.as_bytes();
    assert!(
        !db.windows(needle.len()).any(|w| w == needle)
            && !wal.windows(needle.len()).any(|w| w == needle)
    );

    for _ in 0..3 {
        assert_eq!(app.get("/api/v1/events", &key).await.0, StatusCode::OK);
    }
    let (s, u) = app
        .get(&format!("/api/v1/api-keys/{id}/usage"), &admin)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(u["usage_count"], json!(3));
    assert_eq!(u["last_used_ip"], json!("127.0.0.1"));
    assert_eq!(u["daily"][0]["count"], json!(3));
    assert_eq!(u["rate_limit_per_minute"], json!(50));
    let (_, one) = app.get(&format!("/api/v1/api-keys/{id}"), &admin).await;
    assert_eq!(one["is_active"], json!(true));
    assert_eq!(one["usage_count"], json!(3));

    // Revoked keys leave the default list but stay visible on request.
    app.delete(&format!("/api/v1/api-keys/{id}"), &admin).await;
    let (_, list) = app.get("/api/v1/api-keys", &admin).await;
    assert!(list
        .as_array()
        .unwrap()
        .iter()
        .all(|k| k["id"] != json!(id)));
    let (_, list) = app
        .get("/api/v1/api-keys?include_revoked=true", &admin)
        .await;
    let k = list
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == json!(id))
        .unwrap();
    assert_eq!(k["is_active"], json!(false));
    assert!(k["revoked_at"].is_string());
}

#[tokio::test]
async fn bad_key_requests_name_the_field() {
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    let (s, v) = app
        .post(
            "/api/v1/api-keys",
            &admin,
            json!({"name": "x", "scopes": ["superuser"]}),
        )
        .await;
    assert_error(s, &v, 422, "scopes");
    let (s, v) = app
        .post(
            "/api/v1/api-keys",
            &admin,
            json!({"name": "x", "scopes": []}),
        )
        .await;
    assert_error(s, &v, 422, "scopes");
    let (s, v) = app
        .post(
            "/api/v1/api-keys",
            &admin,
            json!({"name": "", "scopes": ["admin"]}),
        )
        .await;
    assert_error(s, &v, 422, "name");
    let (s, v) = app
        .post(
            "/api/v1/api-keys",
            &admin,
            json!({"name": "x", "rate_limit_per_minute": 0}),
        )
        .await;
    assert_error(s, &v, 422, "rate_limit_per_minute");
    let (s, v) = app
        .get(
            "/api/v1/api-keys/00000000-0000-4000-8000-000000000000",
            &admin,
        )
        .await;
    assert_error(s, &v, 404, "API key not found");
    let (s, v) = app.get("/api/v1/api-keys/not-a-uuid/usage", &admin).await;
    assert_error(s, &v, 404, "not found");
}

#[tokio::test]
async fn rate_limit_headers_and_429() {
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    let (_, key) = app.api_key(&admin, &["read:events"], Some(3)).await;
    let now_s = app.clock_now() / 1000;
    for expected_remaining in [2, 1, 0] {
        let (s, h, _) = app
            .call(Method::GET, "/api/v1/events", Some(&key), None)
            .await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(h["x-ratelimit-limit"], "3");
        assert_eq!(
            h["x-ratelimit-remaining"],
            expected_remaining.to_string().as_str()
        );
        let reset: i64 = h["x-ratelimit-reset"].to_str().unwrap().parse().unwrap();
        assert!(reset >= now_s && reset <= now_s + 61, "{reset} vs {now_s}");
    }
    let (s, h, v) = app
        .call(Method::GET, "/api/v1/events", Some(&key), None)
        .await;
    assert_error(s, &v, 429, "Rate limit exceeded");
    let retry: u64 = h["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=20).contains(&retry), "{retry}");
    assert_eq!(h["x-ratelimit-remaining"], "0");
    // Other keys are unaffected, and user logins have no per-key limit.
    let (_, other) = app.api_key(&admin, &["read:events"], Some(3)).await;
    assert_eq!(app.get("/api/v1/events", &other).await.0, StatusCode::OK);
    assert_eq!(app.get("/api/v1/events", &admin).await.0, StatusCode::OK);
}
