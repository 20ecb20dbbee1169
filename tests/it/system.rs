use crate::support::*;
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn health_is_public_and_says_what_it_knows() {
    let app = TestApp::start().await;
    let (s, _, v) = app
        .call(Method::GET, "/api/v1/system/health", None, None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["status"], json!("ok"));
    assert_eq!(v["database"], json!(true));
    assert_eq!(v["version"], json!(env!("CARGO_PKG_VERSION")));
    assert!(v["uptime_seconds"].is_u64());
    assert_eq!(
        v["stream_lagged"],
        json!({}),
        "no subscriber fell behind: {v}"
    );
    assert_eq!(v["webhooks_pending"], json!(0));
    assert_eq!(
        v["mqtt"],
        json!({"enabled": false, "connected": false, "messages_queued": 0})
    );
}

#[tokio::test]
async fn settings_are_typed_validated_and_persisted() {
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    let (s, v) = app.get("/api/v1/system/settings", &admin).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["retention_days"], json!(30));
    assert_eq!(v["ai_provider_order"][0], json!("openai"));
    let (s, v) = app
        .put("/api/v1/system/settings", &admin, json!({"retention_days": 7, "ai_provider_order": ["gemini", "openai"], "ai_daily_cost_cap_usd": 1.5}))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["retention_days"], json!(7));
    assert_eq!(v["ai_provider_order"], json!(["gemini", "openai"]));
    let (s, v) = app
        .put("/api/v1/system/settings", &admin, json!({"retention": 7}))
        .await;
    assert_error(s, &v, 422, "retention");
    let (s, v) = app
        .put(
            "/api/v1/system/settings",
            &admin,
            json!({"ai_provider_order": ["skynet"]}),
        )
        .await;
    assert_error(s, &v, 422, "ai_provider_order");
    let (s, v) = app
        .put(
            "/api/v1/system/settings",
            &admin,
            json!({"max_storage_bytes": 10}),
        )
        .await;
    assert_error(s, &v, 422, "max_storage_bytes");
    // Nothing of the refused updates stuck.
    let (_, v) = app.get("/api/v1/system/settings", &admin).await;
    assert_eq!(v["retention_days"], json!(7));
    assert_eq!(v["ai_daily_cost_cap_usd"], json!(1.5));
    let (_, v) = app
        .put(
            "/api/v1/system/settings",
            &admin,
            json!({"ai_daily_cost_cap_usd": null}),
        )
        .await;
    assert!(v["ai_daily_cost_cap_usd"].is_null());
}

#[tokio::test]
async fn storage_reports_sizes_counts_and_policy() {
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    let cam = app.camera(&admin, "Drive").await;
    for _ in 0..3 {
        app.event(&admin, json!({"camera_id": cam, "detection_type": "person", "thumbnail_base64": TINY_JPEG_B64})).await;
    }
    let (s, v) = app.get("/api/v1/system/storage", &admin).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["event_count"], json!(3));
    // TINY_JPEG_B64 decodes to 125 bytes.
    assert_eq!(v["thumbnail_bytes"], json!(3 * 125));
    assert!(v["database_bytes"].as_u64().unwrap() > 0);
    assert!(v["free_bytes"].as_u64().unwrap() > 0);
    assert!(v["total_bytes"].as_u64().unwrap() >= v["free_bytes"].as_u64().unwrap());
    assert_eq!(v["by_camera"][0]["camera_name"], json!("Drive"));
    assert_eq!(v["policy"]["retention_days"], json!(30));
    assert!(v["oldest_event_at"].is_string());
}

#[tokio::test]
async fn openapi_and_offline_docs() {
    let app = TestApp::start().await;
    let r = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let doc: serde_json::Value = r.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    assert!(doc["paths"]["/api/v1/events"]["get"].is_object());
    assert!(doc["components"]["schemas"]["EventDto"].is_object());
    assert!(doc["components"]["securitySchemes"]["api_key"].is_object());
    for (path, ctype) in [("/docs", "text/html"), ("/redoc", "text/html")] {
        let r = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert!(r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with(ctype));
        let html = r.text().await.unwrap();
        assert!(
            !html.contains("http://") && !html.contains("https://"),
            "{path} must not load anything from the internet"
        );
    }
    // reqwest here has no gzip decoder, so the bytes arrive as stored.
    let r = app
        .client
        .get(app.url("/docs/swagger-ui-bundle.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-encoding"], "gzip");
    let b = r.bytes().await.unwrap();
    assert_eq!(&b[..2], &[0x1f, 0x8b]);
    assert!(b.len() > 100_000);
    let r = app
        .client
        .get(app.url("/redoc/redoc.standalone.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn ssl_status_without_and_with_tls() {
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    let (s, v) = app.get("/api/v1/system/ssl-status", &admin).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["ssl_enabled"], json!(false));
    drop(app);

    // With a certificate the appliance speaks HTTPS and describes the certificate.
    let dir = tempfile::tempdir().unwrap();
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.signing_key.serialize_pem()).unwrap();
    let mut cfg = argus::config::Config::for_data_dir(&dir.path().join("data"));
    cfg.tls = Some((cert.clone(), key));
    let info = argus::tls::describe_cert_file(&cert).unwrap();
    assert!(info.subject.contains("CN="), "{info:?}");
    assert!(info.not_after_ms > info.not_before_ms);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(argus::app::run(cfg, Default::default(), listener, async {
        let _ = rx.await;
    }));
    // A plain HTTP request to the TLS port gets nowhere; a TLS client gets the health JSON.
    let body = https_get(addr, ck.cert.der(), "/api/v1/system/health").await;
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    assert!(body.contains("\"status\":\"ok\""), "{body}");
    let _ = tx.send(());
    server.await.unwrap().unwrap();
}

async fn https_get(addr: std::net::SocketAddr, ca_der: &[u8], path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_rustls::rustls;
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls_pki_types::CertificateDer::from(ca_der.to_vec()))
        .unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(cfg));
    let mut tries = 0;
    let tcp = loop {
        match tokio::net::TcpStream::connect(addr).await {
            Ok(t) => break t,
            Err(_) if tries < 50 => {
                tries += 1;
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            Err(e) => panic!("{e}"),
        }
    };
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls = connector.connect(name, tcp).await.unwrap();
    tls.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut out = String::new();
    tls.read_to_string(&mut out).await.unwrap();
    out
}
