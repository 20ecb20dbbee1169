//! The admin commands, run as real processes on the data dir of a running server.

use crate::support::*;
use reqwest::StatusCode;

pub fn argus(app: &TestApp, args: &[&str]) -> (bool, String, String) {
    let out = argus_command()
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

/// Under systemd (`Type=notify`, `WatchdogSec`): the real binary says `READY=1` once it serves,
/// feeds the watchdog at half the timeout, and says `STOPPING=1` on SIGTERM, then exits cleanly.
#[test]
fn the_service_speaks_sd_notify() {
    use std::os::unix::net::UnixDatagram;
    let dir = tempfile::tempdir().unwrap();
    let sock_path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    let mut child = argus_command()
        .args(["--listen", "127.0.0.1:0", "--motion-only", "--data-dir"])
        .arg(dir.path().join("data"))
        .arg("serve")
        .env_remove("ARGUS_CONFIG")
        .env("NOTIFY_SOCKET", &sock_path)
        .env("WATCHDOG_USEC", "400000")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut buf = [0u8; 256];
    let mut recv = || {
        let n = sock.recv(&mut buf).expect("a notification within 30 s");
        String::from_utf8_lossy(&buf[..n]).to_string()
    };
    let first = recv();
    assert!(first.starts_with("READY=1"), "{first}");
    // The data dir exists and the server answers by the time it says ready.
    assert!(dir.path().join("data/argus.db").exists());
    let started = std::time::Instant::now();
    assert_eq!(recv(), "WATCHDOG=1");
    assert_eq!(recv(), "WATCHDOG=1");
    // Two pings at a 200 ms interval (the first at once): well under the 400 ms timeout.
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    // SIGTERM: STOPPING=1, then a clean exit.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let mut stopping = false;
    for _ in 0..20 {
        if recv() == "STOPPING=1" {
            stopping = true;
            break;
        }
    }
    assert!(stopping);
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
}
