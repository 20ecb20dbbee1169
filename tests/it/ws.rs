use crate::support::*;
use futures_util::StreamExt;
use serde_json::{json, Value};
use std::time::Duration;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(app: &TestApp, query: &str, header: Option<(&str, &str)>) -> Result<Ws, u16> {
    let mut req = format!("ws://{}/ws{query}", app.addr)
        .into_client_request()
        .unwrap();
    if let Some((k, v)) = header {
        let name: tokio_tungstenite::tungstenite::http::HeaderName = k.parse().unwrap();
        req.headers_mut().insert(name, v.parse().unwrap());
    }
    match tokio_tungstenite::connect_async(req).await {
        Ok((ws, _)) => Ok(ws),
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => Err(resp.status().as_u16()),
        Err(e) => panic!("{e}"),
    }
}

/// The next JSON message, skipping control frames; None after 2 s of silence.
async fn next_json(ws: &mut Ws) -> Option<Value> {
    loop {
        match tokio::time::timeout(Duration::from_secs(2), ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => {
                return Some(serde_json::from_str(t.as_str()).unwrap())
            }
            Ok(Some(Ok(_))) => continue,
            _ => return None,
        }
    }
}

#[tokio::test]
async fn websocket_needs_credentials() {
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    assert_eq!(connect(&app, "", None).await.err(), Some(401));
    assert_eq!(connect(&app, "?token=garbage", None).await.err(), Some(401));
    let fake = format!("argus_{}", "B".repeat(40));
    assert_eq!(
        connect(&app, "", Some(("x-api-key", &fake))).await.err(),
        Some(401)
    );
    assert!(connect(&app, &format!("?token={admin}"), None)
        .await
        .is_ok());
    assert!(connect(
        &app,
        "",
        Some(("authorization", &format!("Bearer {admin}")))
    )
    .await
    .is_ok());
    let (_, key) = app.api_key(&admin, &["read:events"], None).await;
    assert!(connect(&app, "", Some(("x-api-key", &key))).await.is_ok());
    // A cookie sent by a page of another site is refused.
    let cookie = format!("access_token={admin}");
    let mut req = format!("ws://{}/ws", app.addr)
        .into_client_request()
        .unwrap();
    req.headers_mut().insert("cookie", cookie.parse().unwrap());
    req.headers_mut()
        .insert("origin", "http://evil.example".parse().unwrap());
    match tokio_tungstenite::connect_async(req).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status().as_u16(), 403),
        other => panic!("expected 403, got {:?}", other.map(|_| ())),
    }
    // A plain GET on /ws is a JSON 400.
    let (s, v) = app.get("/ws", &admin).await;
    assert_error(s, &v, 400, "WebSocket");
}

#[tokio::test]
async fn events_fan_out_to_every_allowed_client() {
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    let cam = app.camera(&admin, "Porch").await;
    let (_, events_key) = app.api_key(&admin, &["read:events"], None).await;
    let (_, cams_key) = app.api_key(&admin, &["read:cameras"], None).await;
    let mut a = connect(&app, &format!("?token={admin}"), None)
        .await
        .unwrap();
    let mut b = connect(&app, "", Some(("x-api-key", &events_key)))
        .await
        .unwrap();
    let mut c = connect(&app, "", Some(("x-api-key", &cams_key)))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;

    let e = app.event(&admin, json!({"camera_id": cam, "detection_type": "person", "description": "someone at the door"})).await;
    for ws in [&mut a, &mut b] {
        let m = next_json(ws).await.expect("event.created");
        assert_eq!(m["type"], json!("event.created"));
        assert_eq!(m["data"]["id"], e["id"]);
        assert_eq!(m["data"]["camera_name"], json!("Porch"));
        assert_eq!(
            m["data"], e,
            "the message carries the event as GET /events/{{id}} returns it"
        );
        assert!(m["timestamp"].as_str().unwrap().ends_with('Z'));
    }
    // The key without read:events hears nothing about events, but does hear camera status
    // (the camera, pointing at a closed port, goes from connecting to error).
    let mut kinds = Vec::new();
    while let Some(m) = next_json(&mut c).await {
        kinds.push(m["type"].as_str().unwrap().to_string());
    }
    assert!(!kinds.iter().any(|k| k.starts_with("event.")), "{kinds:?}");
    assert!(kinds.iter().any(|k| k == "camera.status"), "{kinds:?}");
    // Text "ping" gets "pong".
    use futures_util::SinkExt;
    a.send(Message::text("ping")).await.unwrap();
    let pong = loop {
        match tokio::time::timeout(Duration::from_secs(2), a.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap()
        {
            Message::Text(t) if !t.as_str().starts_with('{') => break t.to_string(),
            _ => continue,
        }
    };
    assert_eq!(pong, "pong");
}

#[tokio::test]
async fn revoked_key_does_not_keep_listening_after_its_next_check() {
    // The credential re-check runs every 30 s; here we only verify that a key revoked before
    // connecting is refused and that the shutdown closes sockets cleanly.
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    let (id, key) = app.api_key(&admin, &["read:events"], None).await;
    let mut ws = connect(&app, "", Some(("x-api-key", &key))).await.unwrap();
    app.delete(&format!("/api/v1/api-keys/{id}"), &admin).await;
    assert_eq!(
        connect(&app, "", Some(("x-api-key", &key))).await.err(),
        Some(401)
    );
    app.stop().await;
    // Server shutdown sends a close frame (1001) or ends the stream.
    let mut closed = false;
    for _ in 0..10 {
        match tokio::time::timeout(Duration::from_secs(2), ws.next()).await {
            Ok(Some(Ok(Message::Close(_)))) | Ok(None) | Ok(Some(Err(_))) => {
                closed = true;
                break;
            }
            Ok(Some(Ok(_))) => continue,
            Err(_) => break,
        }
    }
    assert!(closed, "the socket is closed at shutdown");
}
