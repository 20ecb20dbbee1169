use crate::support::*;
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn first_boot_admin_must_change_password_and_it_is_not_logged() {
    let app = TestApp::start().await;
    let pw = app.initial_password();
    assert!(pw.len() >= 16);
    let meta = std::fs::metadata(app.data_dir().join("initial-admin-password")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let key_meta = std::fs::metadata(app.data_dir().join("secret.key")).unwrap();
    assert_eq!(key_meta.permissions().mode() & 0o777, 0o600);

    let (s, v) = app.login("admin", &pw).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["must_change_password"], json!(true));
    assert_eq!(v["token_type"], json!("bearer"));
    let token = v["access_token"].as_str().unwrap();
    // Until the password is changed, only me/logout/change-password work.
    let (s, v) = app.get("/api/v1/events", token).await;
    assert_error(s, &v, 403, "Change the initial password");
    let (s, v) = app.get("/api/v1/auth/me", token).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["name"], json!("admin"));
    // A weak new password is refused, naming the field.
    let (s, v) = app
        .post(
            "/api/v1/auth/change-password",
            token,
            json!({"current_password": pw, "new_password": "short"}),
        )
        .await;
    assert_error(s, &v, 422, "new_password");
    let (s, v) = app
        .post(
            "/api/v1/auth/change-password",
            token,
            json!({"current_password": "wrong", "new_password": ADMIN_PASSWORD}),
        )
        .await;
    assert_error(s, &v, 400, "current_password");
    let (s, _) = app
        .post(
            "/api/v1/auth/change-password",
            token,
            json!({"current_password": pw, "new_password": ADMIN_PASSWORD}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    // The initial password file is gone, the old password no longer works, the new one does.
    assert!(!app.data_dir().join("initial-admin-password").exists());
    let (s, v) = app.login("admin", &pw).await;
    assert_error(s, &v, 401, "Invalid username or password");
    let (s, v) = app.login("admin", ADMIN_PASSWORD).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["must_change_password"], json!(false));
    let (s, _) = app
        .get("/api/v1/events", v["access_token"].as_str().unwrap())
        .await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test]
async fn login_sets_an_httponly_lax_cookie_that_authenticates() {
    let app = TestApp::start().await;
    app.admin_token().await;
    let (s, h, _) = app
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"username": "ADMIN", "password": ADMIN_PASSWORD})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let cookie = h.get("set-cookie").unwrap().to_str().unwrap().to_string();
    assert!(cookie.starts_with("access_token="), "{cookie}");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax") && cookie.contains("Path=/"),
        "{cookie}"
    );
    let pair = cookie.split(';').next().unwrap();
    let r = app
        .client
        .get(app.url("/api/v1/cameras"))
        .header("cookie", pair)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn every_credential_failure_is_401_with_json() {
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    // No credential.
    let (s, h, v) = app.call(Method::GET, "/api/v1/events", None, None).await;
    assert_error(s, &v, 401, "Not authenticated");
    assert_eq!(h.get("www-authenticate").unwrap(), "Bearer");
    // A key of the right shape that does not exist.
    let fake = format!("argus_{}", "A".repeat(40));
    let (s, v) = app.get("/api/v1/events", &fake).await;
    assert_error(s, &v, 401, "Invalid API key");
    // Garbage key.
    let (s, v) = app.get("/api/v1/events", "argus_x").await;
    assert_error(s, &v, 401, "Invalid API key");
    // A tampered JWT.
    let mut bad = admin.clone();
    bad.replace_range(bad.len() - 3.., "abc");
    let (s, v) = app.get("/api/v1/events", &bad).await;
    assert_error(s, &v, 401, "Invalid token");
    // A malformed Authorization header.
    let r = app
        .client
        .get(app.url("/api/v1/events"))
        .header("authorization", "Basic Zm9vOmJhcg==")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // A revoked key fails at once.
    let (id, key) = app.api_key(&admin, &["read:events"], None).await;
    assert_eq!(app.get("/api/v1/events", &key).await.0, StatusCode::OK);
    let (s, _) = app.delete(&format!("/api/v1/api-keys/{id}"), &admin).await;
    assert_eq!(s, StatusCode::OK);
    let (s, v) = app.get("/api/v1/events", &key).await;
    assert_error(s, &v, 401, "revoked");
    // An API key also works as a bearer token, for scripts.
    let (_, key2) = app.api_key(&admin, &["read:events"], None).await;
    let (s, _) = app.get("/api/v1/events", &key2.to_string()).await;
    assert_eq!(s, StatusCode::OK);
    let r = app
        .client
        .get(app.url("/api/v1/events"))
        .bearer_auth(&key2)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn expired_keys_and_tokens_are_refused() {
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    let now = app.clock_now();
    let expires = argus::clock::format_rfc3339(now + 3_600_000);
    let (s, v) = app
        .post(
            "/api/v1/api-keys",
            &admin,
            json!({"name": "temp", "scopes": ["read:events"], "expires_at": expires}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let key = v["key"].as_str().unwrap().to_string();
    assert_eq!(app.get("/api/v1/events", &key).await.0, StatusCode::OK);
    // Past expiry dates are refused at creation.
    let (s, v) = app
        .post(
            "/api/v1/api-keys",
            &admin,
            json!({"name": "old", "scopes": ["read:events"], "expires_at": "2001-01-01"}),
        )
        .await;
    assert_error(s, &v, 422, "expires_at");
    // Two hours later the key has expired; after 25 hours so has the login (24 h sessions).
    app.clock.advance_ms(2 * 3_600_000);
    let (s, v) = app.get("/api/v1/events", &key).await;
    assert_error(s, &v, 401, "expired");
    assert_eq!(app.get("/api/v1/events", &admin).await.0, StatusCode::OK);
    app.clock.advance_ms(23 * 3_600_000);
    let (s, v) = app.get("/api/v1/events", &admin).await;
    assert_error(s, &v, 401, "Token has expired");
}

#[tokio::test]
async fn scopes_are_enforced_on_every_route() {
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    let (_, events) = app.api_key(&admin, &["read:events"], None).await;
    let (_, cams_r) = app.api_key(&admin, &["read:cameras"], None).await;
    let (_, cams_w) = app.api_key(&admin, &["write:cameras"], None).await;
    let (_, adm) = app.api_key(&admin, &["admin"], None).await;

    let (s, v) = app.get("/api/v1/cameras", &events).await;
    assert_error(s, &v, 403, "read:cameras");
    assert_eq!(app.get("/api/v1/cameras", &cams_r).await.0, StatusCode::OK);
    // write:cameras implies read:cameras.
    assert_eq!(app.get("/api/v1/cameras", &cams_w).await.0, StatusCode::OK);
    let body = json!({"name": "Door", "type": "rtsp", "rtsp_url": "rtsp://127.0.0.1:1/s"});
    let (s, v) = app.post("/api/v1/cameras", &cams_r, body.clone()).await;
    assert_error(s, &v, 403, "write:cameras");
    let (s, _) = app.post("/api/v1/cameras", &cams_w, body).await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, v) = app.get("/api/v1/events", &cams_w).await;
    assert_error(s, &v, 403, "read:events");
    // Admin-only routes.
    for path in [
        "/api/v1/api-keys",
        "/api/v1/system/settings",
        "/api/v1/system/storage",
    ] {
        let (s, v) = app.get(path, &cams_w).await;
        assert_error(s, &v, 403, "admin");
        assert_eq!(app.get(path, &adm).await.0, StatusCode::OK, "{path}");
    }
    // admin implies everything.
    assert_eq!(app.get("/api/v1/events", &adm).await.0, StatusCode::OK);
    assert_eq!(app.get("/api/v1/cameras", &adm).await.0, StatusCode::OK);
    // Password changes need a user login.
    let (s, v) = app
        .post(
            "/api/v1/auth/change-password",
            &adm,
            json!({"current_password": "a", "new_password": "b"}),
        )
        .await;
    assert_error(s, &v, 403, "user login");
    // Public routes need nothing.
    let (s, _, _) = app
        .call(Method::GET, "/api/v1/system/health", None, None)
        .await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test]
async fn logout_and_password_change_end_sessions_at_once() {
    let app = TestApp::start().await;
    app.admin_token().await;
    let a = app.login("admin", ADMIN_PASSWORD).await.1["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let b = app.login("admin", ADMIN_PASSWORD).await.1["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let c = app.login("admin", ADMIN_PASSWORD).await.1["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let (s, h, _) = app
        .call(Method::POST, "/api/v1/auth/logout", Some(&a), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(h
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    let (s, v) = app.get("/api/v1/events", &a).await;
    assert_error(s, &v, 401, "Session has ended");
    // Changing the password from session b ends session c but keeps b.
    let (s, _) = app
        .post(
            "/api/v1/auth/change-password",
            &b,
            json!({"current_password": ADMIN_PASSWORD, "new_password": "Another-Secret-7"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(app.get("/api/v1/events", &b).await.0, StatusCode::OK);
    assert_eq!(
        app.get("/api/v1/events", &c).await.0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn login_attempts_are_limited_per_ip() {
    let app = TestApp::start_with(|c| c.auth.login_attempts_per_15min = 3).await;
    for _ in 0..3 {
        let (s, _) = app.login("admin", "nope").await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
    let (s, h, v) = app
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"username": "admin", "password": app.initial_password()})),
        )
        .await;
    assert_error(s, &v, 429, "Too many login attempts");
    let wait: u64 = h
        .get("retry-after")
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=300).contains(&wait), "{wait}");
}

#[tokio::test]
async fn unknown_users_and_wrong_passwords_look_the_same() {
    let app = TestApp::start().await;
    let (s1, v1) = app.login("nobody", "whatever").await;
    let (s2, v2) = app.login("admin", "whatever").await;
    assert_eq!((s1, &v1), (s2, &v2));
    assert_error(s1, &v1, 401, "Invalid username or password");
}

impl TestApp {
    pub fn clock_now(&self) -> i64 {
        use argus::clock::Clock;
        self.clock.now_ms()
    }
}
