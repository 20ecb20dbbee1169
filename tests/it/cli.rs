//! The admin commands, run as real processes on the data dir of a running server.

use crate::support::*;
use reqwest::StatusCode;

pub fn argus(app: &TestApp, args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_argus"))
        .args(args)
        .arg("--data-dir")
        .arg(app.data_dir())
        .env_remove("ARGUS_CONFIG")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn last_line(s: &str) -> String {
    s.trim_end().lines().last().unwrap_or("").to_string()
}

#[tokio::test]
async fn api_keys_created_and_revoked_from_the_cli_work_at_once() {
    let app = TestApp::start().await;
    let (ok, out, err) = argus(
        &app,
        &[
            "api-keys",
            "create",
            "--name",
            "script",
            "--scopes",
            "read:events,read:cameras",
            "--rate-limit",
            "30",
        ],
    );
    assert!(ok, "{err}");
    let key = last_line(&out);
    assert!(key.starts_with("argus_"), "{out}");
    assert_eq!(app.get("/api/v1/cameras", &key).await.0, StatusCode::OK);
    let (s, h, _) = app
        .call(reqwest::Method::GET, "/api/v1/events", Some(&key), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(h["x-ratelimit-limit"], "30");

    let (ok, out, _) = argus(&app, &["api-keys", "list"]);
    assert!(ok);
    assert!(out.contains("script") && out.contains("active"), "{out}");
    assert!(!out.contains(&key));
    let id = out
        .lines()
        .find(|l| l.contains("script"))
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();

    let (ok, _, err) = argus(&app, &["api-keys", "revoke", &id]);
    assert!(ok, "{err}");
    let (s, v) = app.get("/api/v1/cameras", &key).await;
    assert_error(s, &v, 401, "revoked");

    let (ok, _, err) = argus(
        &app,
        &["api-keys", "create", "--name", "bad", "--scopes", "root"],
    );
    assert!(!ok);
    assert!(err.contains("unknown scope"), "{err}");
    let (ok, _, err) = argus(
        &app,
        &["api-keys", "revoke", "00000000-0000-4000-8000-000000000000"],
    );
    assert!(!ok);
    assert!(err.contains("no API key"), "{err}");
}

#[tokio::test]
async fn reset_password_prints_a_working_one_time_password() {
    let app = TestApp::start().await;
    let token = app.admin_token().await;
    let (ok, out, err) = argus(&app, &["users", "reset-password"]);
    assert!(ok, "{err}");
    let pw = last_line(&out);
    assert!(pw.len() >= 16, "{out}");
    // Sessions of the user end; the new password works and must be changed.
    assert_eq!(
        app.get("/api/v1/events", &token).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (s, v) = app.login("admin", &pw).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["must_change_password"], serde_json::json!(true));
    let (ok, _, err) = argus(&app, &["users", "reset-password", "nobody"]);
    assert!(!ok);
    assert!(err.contains("no user"), "{err}");
    // Passwords never reach the logs.
    assert!(!err.contains(&pw));
}
