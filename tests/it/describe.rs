//! Cloud descriptions in the running appliance, against the local provider stand-ins of
//! `fake_ai`: configuration through settings (keys sealed, never returned), the demo clip's
//! person event described after it was announced, fallback in the owner's order, usage rows
//! and `/ai/usage`, cost caps and their alerts, `/ai/describe`, re-analysis and its limit.

use crate::fake_ai::{self, FakeAi};
use crate::support::*;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;

const ANSWER: &str = r#"{"description": "A person in a dark jacket walks left to right across a field past horses.", "objects": ["person", "horse"], "confidence": 88, "threat_level": "none"}"#;

fn person_jpeg_b64() -> String {
    use base64::Engine;
    let bytes = std::fs::read(format!(
        "{}/tests/data/images/person.jpg",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// `POST /ai/describe` with person.jpg.
async fn describe_person(app: &TestApp, admin: &str) -> (StatusCode, Value) {
    app.post(
        "/api/v1/ai/describe",
        admin,
        json!({"image_base64": person_jpeg_b64()}),
    )
    .await
}

async fn configure(app: &TestApp, admin: &str, body: Value) {
    let (s, v) = app.put("/api/v1/system/settings", admin, body).await;
    assert_eq!(s, StatusCode::OK, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_person_is_announced_then_described_with_fallback_in_the_owners_order() {
    let fake = FakeAi::answering(ANSWER).await;
    fake.require_key("anthropic", "sk-ant-right-key-0000");
    let app = TestApp::start_with(with_detector).await;
    let admin = app.admin_token().await;
    // Anthropic first, with a wrong key (401: no retry, next provider), then OpenAI.
    configure(
        &app,
        &admin,
        json!({
            "ai_provider_order": ["anthropic", "openai", "gemini"],
            "ai_providers": {
                "anthropic": {"api_key": "sk-ant-wrong-key-1234", "base_url": fake.base("anthropic")},
                "openai": {"api_key": "sk-test-openai-key-abcd", "base_url": fake.base("openai"), "model": "gpt-4o-mini"},
            },
        }),
    )
    .await;
    // Keys are never returned: only whether one is set and its last 4 characters.
    let (_, s) = app.get("/api/v1/system/settings", &admin).await;
    let text = s.to_string();
    assert!(
        !text.contains("sk-test-openai-key") && !text.contains("sk-ant-wrong"),
        "{text}"
    );
    assert_eq!(s["ai_providers"]["openai"]["configured"], json!(true));
    assert_eq!(s["ai_providers"]["openai"]["key_hint"], json!("abcd"));
    let (_, p) = app.get("/api/v1/ai/providers", &admin).await;
    assert!(!p.to_string().contains("sk-test-openai-key"));
    assert_eq!(p["order"], json!(["anthropic", "openai", "gemini"]));

    let (mut ws, _) =
        tokio_tungstenite::connect_async(format!("ws://{}/ws?token={admin}", app.addr))
            .await
            .unwrap();
    let demo = format!(
        "{}/assets/demo/person-walk.h264",
        env!("CARGO_MANIFEST_DIR")
    );
    let (s, _) = app
        .post(
            "/api/v1/cameras",
            &admin,
            json!({"name": "Front door", "type": "file", "file_path": demo, "frame_rate": 5}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);

    // The event goes out at once, its description pending...
    let created = next_matching(&mut ws, 20, |m| m["type"] == json!("event.created")).await;
    let e = &created["data"];
    assert_eq!(e["detection_type"], json!("person"));
    assert_eq!(e["description_pending"], json!(true), "{e}");
    assert!(e["description"].is_null());
    // ...and the description follows.
    let id = e["id"].clone();
    let updated = next_matching(&mut ws, 15, |m| {
        m["type"] == json!("event.updated") && m["data"]["id"] == id
    })
    .await;
    let u = &updated["data"];
    assert_eq!(
        u["description"],
        json!("A person in a dark jacket walks left to right across a field past horses.")
    );
    assert_eq!(u["description_pending"], json!(false));
    assert_eq!(u["provider_used"], json!("openai"));
    assert_eq!(u["ai_fallback_used"], json!(true));
    assert_eq!(u["ai_confidence"], json!(88));
    assert_eq!(u["threat_level"], json!("none"));

    // What the providers were sent: the camera's name, the local detection, a JPEG.
    let reqs = fake.requests();
    assert_eq!(
        reqs.len(),
        2,
        "anthropic refused, openai answered: {reqs:?}"
    );
    assert_eq!(reqs[0].api, "anthropic");
    assert_eq!(reqs[1].api, "openai");
    assert!(fake.violations().is_empty(), "{:?}", fake.violations());
    let prompt = reqs[1].body.to_string();
    assert!(prompt.contains("Front door"), "{prompt}");
    assert!(prompt.contains("person"), "{prompt}");
    assert_eq!(reqs[1].image, Some((640, 360)));

    // One usage row per call; /ai/usage agrees.
    let (s, usage) = app.get("/api/v1/ai/usage", &admin).await;
    assert_eq!(s, StatusCode::OK, "{usage}");
    assert_eq!(usage["total_calls"], json!(2), "{usage}");
    assert_eq!(usage["successful_calls"], json!(1));
    assert_eq!(usage["failed_calls"], json!(1));
    assert_eq!(
        usage["by_provider"]["anthropic"]["successful_calls"],
        json!(0)
    );
    assert_eq!(usage["by_provider"]["openai"]["calls"], json!(1));
    assert!(usage["total_cost_usd"].as_f64().unwrap() > 0.0);
    let (_, ctx) = app.get("/api/v1/ai/context-metrics", &admin).await;
    assert_eq!(ctx["prompts"], json!(1), "{ctx}");
    assert_eq!(ctx["source_usage"]["local_detections"], json!(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_on_demand_json_or_multipart_and_clear_errors() {
    let fake = FakeAi::answering(ANSWER).await;
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    // No provider yet: 409 saying what to do.
    let (s, v) = describe_person(&app, &admin).await;
    assert_error(s, &v, 409, "ai_providers");
    configure(
        &app,
        &admin,
        json!({"ai_provider_order": ["gemini"], "ai_providers": {"gemini": {"api_key": "gm-test-key-9876", "base_url": fake.base("gemini")}}}),
    )
    .await;
    let (s, v) = app
        .post(
            "/api/v1/ai/describe",
            &admin,
            json!({"image_base64": format!("data:image/jpeg;base64,{}", person_jpeg_b64()), "camera_name": "Garden"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["provider"], json!("gemini"));
    assert_eq!(v["objects"], json!(["person", "horse"]));
    assert_eq!(v["confidence"], json!(88));
    assert_eq!(v["fallback_used"], json!(false));
    // Multipart upload.
    let jpeg = std::fs::read(format!(
        "{}/tests/data/images/dog.jpg",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let mut body = Vec::new();
    body.extend_from_slice(b"--b0undary\r\nContent-Disposition: form-data; name=\"image\"; filename=\"dog.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n");
    body.extend_from_slice(&jpeg);
    body.extend_from_slice(b"\r\n--b0undary\r\nContent-Disposition: form-data; name=\"prompt\"\r\n\r\nIs the dog on a lead?\r\n--b0undary--\r\n");
    let r = app
        .client
        .post(app.url("/api/v1/ai/describe"))
        .bearer_auth(&admin)
        .header("content-type", "multipart/form-data; boundary=b0undary")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let last = fake.requests().pop().unwrap();
    assert!(last.body.to_string().contains("Is the dog on a lead?"));
    assert_eq!(last.image, Some((768, 576)), "(width, height) of dog.jpg");
    // Bad input: 422 naming the field; nothing sent to the provider.
    let before = fake.requests().len();
    for (body, needle) in [
        (json!({"image_base64": "%%%"}), "image_base64"),
        (json!({"image_base64": "aGVsbG8gd29ybGQ="}), "JPEG or PNG"),
        (json!({}), "image_base64"),
    ] {
        let (s, v) = app.post("/api/v1/ai/describe", &admin, body).await;
        assert_error(s, &v, 422, needle);
    }
    assert_eq!(fake.requests().len(), before);
    // A provider failing everything: 502 with what it said.
    fake.set(Box::new(|_| fake_ai::server_error(503)));
    let (s, v) = describe_person(&app, &admin).await;
    assert_error(s, &v, 502, "gemini");
    let (_, caps) = app.get("/api/v1/ai/capabilities", &admin).await;
    assert_eq!(caps["gemini"]["configured"], json!(true));
    assert_eq!(caps["openai"]["configured"], json!(false));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cost_cap_pauses_cloud_calls_alerts_once_and_events_still_arrive() {
    let fake = FakeAi::answering(ANSWER).await;
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    // A price that makes one call cost more than the daily cap.
    configure(
        &app,
        &admin,
        json!({
            "ai_provider_order": ["openai"],
            "ai_providers": {"openai": {"api_key": "sk-test-openai-key-abcd", "base_url": fake.base("openai"), "model": "gpt-4o-mini"}},
            "ai_prices": {"gpt-4o-mini": {"input_per_mtok": 10000, "output_per_mtok": 10000}},
            "ai_daily_cost_cap_usd": 0.5,
        }),
    )
    .await;
    let (mut ws, _) =
        tokio_tungstenite::connect_async(format!("ws://{}/ws?token={admin}", app.addr))
            .await
            .unwrap();
    let (s, v) = describe_person(&app, &admin).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(v["cost_usd"].as_f64().unwrap() > 0.5, "{v}");
    let n = next_matching(&mut ws, 5, |m| m["type"] == json!("notification.new")).await;
    assert_eq!(n["data"]["level"], json!(100), "{n}");
    assert_eq!(n["data"]["type"], json!("ai_cost"));
    // Paused: no further call, a clear 409.
    let (s, v) = describe_person(&app, &admin).await;
    assert_error(s, &v, 409, "daily cost cap");
    assert_eq!(fake.requests().len(), 1);
    // Events are still recorded; re-describing one is refused while paused.
    let cam = app.camera(&admin, "Porch").await;
    let e = app
        .event(
            &admin,
            json!({"camera_id": cam, "detection_type": "person", "thumbnail_base64": person_jpeg_b64()}),
        )
        .await;
    let (s, v) = app
        .post(
            &format!("/api/v1/events/{}/reanalyse", e["id"].as_str().unwrap()),
            &admin,
            json!({}),
        )
        .await;
    assert_error(s, &v, 409, "cost cap");
    assert_eq!(fake.requests().len(), 1);
    // Raising the cap resumes; the 100 % alert is not sent twice for the day.
    configure(&app, &admin, json!({"ai_daily_cost_cap_usd": 1000})).await;
    let (s, _) = describe_person(&app, &admin).await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reanalysis_describes_from_the_snapshot_at_most_three_times_an_hour() {
    let fake = FakeAi::answering(ANSWER).await;
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    let cam = app.camera(&admin, "Drive").await;
    let e = app
        .event(
            &admin,
            json!({"camera_id": cam, "detection_type": "person", "thumbnail_base64": person_jpeg_b64()}),
        )
        .await;
    let path = format!("/api/v1/events/{}/reanalyse", e["id"].as_str().unwrap());
    let (s, v) = app.post(&path, &admin, json!({})).await;
    assert_error(s, &v, 409, "no cloud AI provider");
    configure(
        &app,
        &admin,
        json!({"ai_provider_order": ["grok"], "ai_providers": {"grok": {"api_key": "xai-test-key-5555", "base_url": fake.base("grok")}}}),
    )
    .await;
    for i in 0..3 {
        let (s, v) = app
            .post(
                &path,
                &admin,
                json!({"prompt": "Is anyone carrying a parcel?"}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["provider_used"], json!("grok"));
        assert_eq!(v["reanalysis_count"], json!(i + 1), "{v}");
        assert!(v["description"].as_str().unwrap().starts_with("A person"));
    }
    let (s, v) = app.post(&path, &admin, json!({})).await;
    assert_error(s, &v, 429, "3 times");
    assert_eq!(fake.requests().len(), 3);
    assert!(fake.requests()[0]
        .body
        .to_string()
        .contains("Is anyone carrying a parcel?"));
    // An hour later it is allowed again.
    app.clock.advance_ms(3_601_000);
    let (s, _) = app.post(&path, &admin, json!({})).await;
    assert_eq!(s, StatusCode::OK);
    // Unknown event: 404; bad body: 422.
    let (s, v) = app
        .post(
            "/api/v1/events/00000000-0000-4000-8000-000000000000/reanalyse",
            &admin,
            json!({}),
        )
        .await;
    assert_error(s, &v, 404, "Event");
    let (s, v) = app.post(&path, &admin, json!({"prompt": 5})).await;
    assert_error(s, &v, 422, "prompt");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_slower_than_the_budget_leaves_the_event_with_its_local_detection() {
    let fake = FakeAi::answering(ANSWER).await;
    fake.script(vec![fake_ai::success(
        "openai",
        ANSWER,
        "gpt-4o-mini".into(),
    )
    .after(Duration::from_secs(10))]);
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    configure(
        &app,
        &admin,
        json!({
            "ai_provider_order": ["openai"],
            "ai_providers": {"openai": {"api_key": "sk-test-openai-key-abcd", "base_url": fake.base("openai")}},
            "ai_description_budget_seconds": 1,
        }),
    )
    .await;
    let cam = app.camera(&admin, "Gate").await;
    let e = app
        .event(
            &admin,
            json!({"camera_id": cam, "detection_type": "person", "confidence": 77, "thumbnail_base64": person_jpeg_b64()}),
        )
        .await;
    let started = std::time::Instant::now();
    let (s, v) = app
        .post(
            &format!("/api/v1/events/{}/reanalyse", e["id"].as_str().unwrap()),
            &admin,
            json!({}),
        )
        .await;
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "the budget (1 s), not the provider (10 s), ends the wait"
    );
    assert_error(s, &v, 502, "budget");
    let (_, ev) = app
        .get(
            &format!("/api/v1/events/{}", e["id"].as_str().unwrap()),
            &admin,
        )
        .await;
    assert_eq!(ev["detection_type"], json!("person"));
    assert_eq!(ev["confidence"], json!(77));
    assert_eq!(ev["description_pending"], json!(false));
    assert!(ev["ai_error"].as_str().unwrap().contains("budget"), "{ev}");
}
