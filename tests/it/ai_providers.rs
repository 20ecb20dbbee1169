//! The cloud AI provider layer (`argus::ai`) against local stand-ins that check requests the way
//! the real APIs do ([`crate::fake_ai`]): each provider's wire format, retries, fallback order,
//! circuit breakers, the time budget, and key hygiene in error texts.

use crate::fake_ai::{self, FakeAi, Reply};
use argus::ai::breaker::{BreakerConfig, Breakers};
use argus::ai::chain::{run_chain, ChainOutcome, ChainPolicy, ChainRequest};
use argus::ai::prompt::{system_prompt, user_prompt, SeenObject};
use argus::ai::provider::{call, CallError, ProviderConfig};
use argus::ai::{http_client, prepare, prices};
use argus::clock::{Clock, ManualClock, SystemClock};
use argus::settings::ProviderName;
use argus::video::jpeg::{encode_picture, Frame420};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

const JSON_ANSWER: &str = r#"{"description": "A person in a dark jacket walks across the yard towards the gate.", "objects": ["person"], "confidence": 88, "threat_level": "none"}"#;

fn person_jpeg_raw() -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/data/images/person.jpg",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// The real test photo, prepared for upload (640x424, so unchanged in size).
fn person() -> Vec<u8> {
    let p = prepare(&person_jpeg_raw()).unwrap();
    assert_eq!((p.width, p.height), (640, 424));
    p.jpeg
}

fn user() -> String {
    user_prompt(
        "Front door",
        "2025-01-14 21:03 (Tuesday)",
        &[SeenObject {
            label: "person".into(),
            score: 0.91,
            bbox: Some([0.29, 0.22, 0.15, 0.66]),
        }],
        None,
    )
}

fn api(name: ProviderName) -> &'static str {
    match name {
        ProviderName::Anthropic => "anthropic",
        ProviderName::Gemini => "gemini",
        _ => "openai",
    }
}

/// A provider pointed at the fake, with the default model.
fn provider(fake: &FakeAi, name: ProviderName, key: &str) -> ProviderConfig {
    let mut cfg = ProviderConfig::new(name, key);
    cfg.base_url = fake.base(api(name));
    cfg
}

fn client() -> reqwest::Client {
    http_client().unwrap()
}

/// Fast retries for tests; the other values are the defaults.
fn quick() -> ChainPolicy {
    ChainPolicy {
        backoff: vec![Duration::from_millis(50)],
        ..ChainPolicy::default()
    }
}

async fn chain(
    providers: &[ProviderConfig],
    policy: &ChainPolicy,
    breakers: &Breakers,
) -> ChainOutcome {
    let jpeg = person();
    let user = user();
    let none = HashMap::new();
    let req = ChainRequest {
        providers,
        jpeg: &jpeg,
        system: system_prompt(),
        user: &user,
        price_overrides: &none,
    };
    run_chain(&client(), &req, policy, breakers).await
}

fn breakers() -> Breakers {
    Breakers::new(Arc::new(SystemClock))
}

fn outcomes(o: &ChainOutcome) -> Vec<(ProviderName, &'static str)> {
    o.attempts.iter().map(|a| (a.provider, a.outcome)).collect()
}

async fn call_one(cfg: &ProviderConfig) -> Result<argus::ai::Answer, CallError> {
    call(
        &client(),
        cfg,
        &person(),
        system_prompt(),
        &user(),
        Duration::from_secs(5),
    )
    .await
}

#[tokio::test]
async fn openai_speaks_chat_completions() {
    let fake = FakeAi::answering(JSON_ANSWER).await;
    fake.require_key("openai", "sk-test-openai");
    let a = call_one(&provider(&fake, ProviderName::Openai, "sk-test-openai"))
        .await
        .unwrap();
    assert_eq!(a.text, JSON_ANSWER);
    assert_eq!((a.tokens_in, a.tokens_out), (2850, 40));
    assert_eq!(a.model, "gpt-4o-mini-2024-07-18");
    assert_eq!(fake.violations(), Vec::<String>::new());
    let r = &fake.requests()[0];
    assert_eq!(r.header("authorization"), Some("Bearer sk-test-openai"));
    assert_eq!(r.body["model"], "gpt-4o-mini");
    assert_eq!(r.body["max_completion_tokens"], 400);
    assert_eq!(r.body["response_format"]["type"], "json_object");
    assert_eq!(r.body["messages"][0]["content"], system_prompt());
    let text = r.body["messages"][1]["content"][0]["text"]
        .as_str()
        .unwrap();
    assert!(text.starts_with("Camera: Front door\n"), "{text}");
    assert_eq!(r.image, Some((640, 424)));
}

#[tokio::test]
async fn anthropic_speaks_messages() {
    let fake = FakeAi::answering(JSON_ANSWER).await;
    fake.require_key("anthropic", "sk-ant-test");
    let a = call_one(&provider(&fake, ProviderName::Anthropic, "sk-ant-test"))
        .await
        .unwrap();
    assert_eq!(a.text, JSON_ANSWER);
    assert_eq!((a.tokens_in, a.tokens_out), (1600, 55));
    assert_eq!(a.model, "claude-haiku-4-5-20251001");
    assert_eq!(fake.violations(), Vec::<String>::new());
    let r = &fake.requests()[0];
    assert_eq!(r.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(r.body["system"], system_prompt());
    assert_eq!(r.body["model"], "claude-haiku-4-5");
    assert_eq!(r.image, Some((640, 424)));
}

#[tokio::test]
async fn gemini_speaks_generate_content() {
    let fake = FakeAi::answering(JSON_ANSWER).await;
    fake.require_key("gemini", "AIza-test");
    let a = call_one(&provider(&fake, ProviderName::Gemini, "AIza-test"))
        .await
        .unwrap();
    assert_eq!(a.text, JSON_ANSWER);
    // Thinking tokens are billed as output.
    assert_eq!((a.tokens_in, a.tokens_out), (1290, 42));
    assert_eq!(a.model, "gemini-2.5-flash");
    assert_eq!(fake.violations(), Vec::<String>::new());
    let r = &fake.requests()[0];
    assert_eq!(r.path, "/v1beta/models/gemini-2.5-flash:generateContent");
    assert_eq!(
        r.body["generationConfig"]["responseMimeType"],
        "application/json"
    );
    assert_eq!(
        r.body["systemInstruction"]["parts"][0]["text"],
        system_prompt()
    );
}

#[tokio::test]
async fn grok_is_openai_compatible_at_its_own_url() {
    let fake = FakeAi::answering(JSON_ANSWER).await;
    fake.require_key("openai", "xai-test");
    let a = call_one(&provider(&fake, ProviderName::Grok, "xai-test"))
        .await
        .unwrap();
    assert_eq!(a.text, JSON_ANSWER);
    assert_eq!(fake.violations(), Vec::<String>::new());
    let r = &fake.requests()[0];
    assert_eq!(r.header("authorization"), Some("Bearer xai-test"));
    assert_eq!(r.body["model"], "grok-4-fast-non-reasoning");
    assert_eq!(r.body["max_tokens"], 400);
}

#[tokio::test]
async fn a_local_openai_compatible_server_needs_no_key() {
    let fake = FakeAi::answering(JSON_ANSWER).await;
    let mut cfg = provider(&fake, ProviderName::OpenaiCompatible, "");
    cfg.model = "llava:7b".into();
    assert!(cfg.usable());
    let a = call_one(&cfg).await.unwrap();
    assert_eq!(a.text, JSON_ANSWER);
    assert_eq!(fake.violations(), Vec::<String>::new());
    let r = &fake.requests()[0];
    assert_eq!(r.header("authorization"), None);
    assert_eq!(r.body["model"], "llava:7b");
    assert!(r.body.get("response_format").is_none());
}

/// A 1920x1272 picture (the test photo scaled up 3x) arrives at the provider as 1280x848.
#[tokio::test]
async fn large_images_are_scaled_to_1280_before_upload() {
    let small = Frame420::from_jpeg(&person_jpeg_raw()).unwrap();
    let (w, h) = (small.width * 3, small.height * 3);
    let mut big = Frame420::black(w, h);
    for y in 0..h {
        for x in 0..w {
            big.y[y * w + x] = small.y[(y / 3) * small.width + x / 3];
        }
    }
    let (cw, scw) = (w.div_ceil(2), small.width.div_ceil(2));
    for y in 0..h.div_ceil(2) {
        for x in 0..cw {
            big.u[y * cw + x] = small.u[(y / 3) * scw + x / 3];
            big.v[y * cw + x] = small.v[(y / 3) * scw + x / 3];
        }
    }
    let big_jpeg = encode_picture(&big.picture(), w, 90).unwrap();
    assert_eq!(Frame420::from_jpeg(&big_jpeg).unwrap().width, 1920);
    let p = prepare(&big_jpeg).unwrap();
    assert_eq!((p.width, p.height), (1280, 848));

    let fake = FakeAi::answering(JSON_ANSWER).await;
    for name in [
        ProviderName::Openai,
        ProviderName::Anthropic,
        ProviderName::Gemini,
    ] {
        call(
            &client(),
            &provider(&fake, name, "k-123456"),
            &p.jpeg,
            system_prompt(),
            &user(),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    }
    assert_eq!(fake.violations(), Vec::<String>::new());
    assert!(fake.requests().iter().all(|r| r.image == Some((1280, 848))));
    // The stand-in would have refused the picture as it was.
    let strict = FakeAi::answering(JSON_ANSWER).await;
    let err = call(
        &client(),
        &provider(&strict, ProviderName::Openai, "k-123456"),
        &big_jpeg,
        system_prompt(),
        &user(),
        Duration::from_secs(5),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), "bad_request");
    assert_eq!(
        strict.violations(),
        ["/v1/chat/completions: image is 1920x1272, over 1280 px"]
    );
}

#[tokio::test]
async fn wrong_keys_are_auth_errors_that_never_show_the_key() {
    let fake = FakeAi::answering(JSON_ANSWER).await;
    for (name, api) in [
        (ProviderName::Openai, "openai"),
        (ProviderName::Anthropic, "anthropic"),
        (ProviderName::Gemini, "gemini"),
    ] {
        fake.require_key(api, "the-right-key");
        let secret = "sk-live-0123456789abcdef";
        let err = call_one(&provider(&fake, name, secret)).await.unwrap_err();
        assert!(matches!(err, CallError::Auth(_)), "{name:?}: {err:?}");
        assert!(!err.retryable());
        assert!(!format!("{err} {err:?}").contains(secret), "{err}");
    }
    // The OpenAI stand-in echoes the key, as the real API does: it was scrubbed.
    let openai_err = call_one(&provider(
        &fake,
        ProviderName::Openai,
        "sk-live-0123456789abcdef",
    ))
    .await
    .unwrap_err();
    assert!(
        openai_err.to_string().contains("[redacted]"),
        "{openai_err}"
    );
}

#[tokio::test]
async fn unreachable_and_malformed_providers_are_classified() {
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let mut cfg = ProviderConfig::new(ProviderName::Openai, "sk-secret-network");
    cfg.base_url = format!("http://{closed}/v1");
    let err = call_one(&cfg).await.unwrap_err();
    assert_eq!(err.kind(), "network", "{err}");
    assert!(!err.to_string().contains("sk-secret-network"));

    let fake = FakeAi::start(Box::new(|_| Reply::new(200, "{not json"))).await;
    let err = call_one(&provider(&fake, ProviderName::Anthropic, "k-1234"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "malformed", "{err}");
    fake.set(Box::new(|_| {
        Reply::json(200, serde_json::json!({"choices": []}))
    }));
    let err = call_one(&provider(&fake, ProviderName::Openai, "k-1234"))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        CallError::Malformed("no choices in the response".into())
    );
}

#[tokio::test]
async fn a_429_with_retry_after_is_retried_after_the_wait() {
    let fake = FakeAi::answering(JSON_ANSWER).await;
    fake.script(vec![
        fake_ai::openai_rate_limited("1"),
        fake_ai::success("openai", JSON_ANSWER, "gpt-4o-mini".into()),
    ]);
    let providers = [
        provider(&fake, ProviderName::Openai, "sk-1"),
        provider(&fake, ProviderName::Anthropic, "sk-2"),
    ];
    let t0 = Instant::now();
    let o = chain(&providers, &quick(), &breakers()).await;
    let took = t0.elapsed();
    assert_eq!(
        outcomes(&o),
        [
            (ProviderName::Openai, "rate_limited"),
            (ProviderName::Openai, "ok")
        ]
    );
    assert!(
        took >= Duration::from_secs(1),
        "Retry-After not honoured: {took:?}"
    );
    assert!(took < Duration::from_secs(5), "{took:?}");
    let (name, _, parsed) = o.answer.as_ref().unwrap();
    assert_eq!(*name, ProviderName::Openai);
    assert!(parsed.structured);
    assert_eq!(parsed.confidence, Some(88));
    assert_eq!(parsed.threat_level.as_deref(), Some("none"));
    assert_eq!(parsed.objects, ["person"]);
    assert!(!o.fallback_used);
    assert_eq!(o.error, None);
    assert_eq!(
        o.attempts[0].error.as_deref(),
        Some("rate limited (retry after 1.0 s)")
    );
    // Usage: the failed attempt cost nothing, the answer its tokens at the list price.
    assert_eq!(o.attempts[0].cost_usd, 0.0);
    let want = prices::cost(
        ProviderName::Openai,
        "gpt-4o-mini-2024-07-18",
        2850,
        40,
        &HashMap::new(),
    );
    assert!((o.attempts[1].cost_usd - want).abs() < 1e-12);
    assert!((want - (2850.0 * 0.15 + 40.0 * 0.60) / 1e6).abs() < 1e-12);
    assert_eq!(o.attempts[1].model, "gpt-4o-mini-2024-07-18");
    assert_eq!(
        (o.attempts[1].tokens_in, o.attempts[1].tokens_out),
        (2850, 40)
    );
}

#[tokio::test]
async fn a_retry_after_longer_than_the_budget_moves_on_at_once() {
    let fake = FakeAi::answering(JSON_ANSWER).await;
    fake.set(Box::new(|r| match r.api {
        "openai" => fake_ai::openai_rate_limited("30"),
        _ => fake_ai::success(r.api, JSON_ANSWER, fake_ai::model_of(r)),
    }));
    let providers = [
        provider(&fake, ProviderName::Openai, "sk-1"),
        provider(&fake, ProviderName::Anthropic, "sk-2"),
    ];
    let t0 = Instant::now();
    let o = chain(&providers, &quick(), &breakers()).await;
    // Nowhere near the 30 s asked for (a loose bound, so it holds under emulation too).
    assert!(t0.elapsed() < Duration::from_secs(10));
    assert_eq!(
        outcomes(&o),
        [
            (ProviderName::Openai, "rate_limited"),
            (ProviderName::Anthropic, "ok")
        ]
    );
    assert!(o.fallback_used);
}

#[tokio::test]
async fn server_errors_are_retried_then_the_next_provider_answers() {
    let fake = FakeAi::answering(JSON_ANSWER).await;
    fake.set(Box::new(|r| match r.api {
        "openai" => fake_ai::server_error(500),
        _ => fake_ai::success(r.api, JSON_ANSWER, fake_ai::model_of(r)),
    }));
    let providers = [
        provider(&fake, ProviderName::Openai, "sk-1"),
        provider(&fake, ProviderName::Gemini, "g-1"),
    ];
    let o = chain(&providers, &quick(), &breakers()).await;
    assert_eq!(
        outcomes(&o),
        [
            (ProviderName::Openai, "server_error"),
            (ProviderName::Openai, "server_error"),
            (ProviderName::Openai, "server_error"),
            (ProviderName::Gemini, "ok"),
        ]
    );
    assert_eq!(o.answer.as_ref().unwrap().0, ProviderName::Gemini);
    assert!(o.fallback_used);
    assert_eq!(fake.violations(), Vec::<String>::new());
}

#[tokio::test]
async fn auth_errors_are_not_retried_and_pause_the_provider() {
    let fake = FakeAi::answering(JSON_ANSWER).await;
    fake.require_key("openai", "sk-right");
    let providers = [
        provider(&fake, ProviderName::Openai, "sk-wrong"),
        provider(&fake, ProviderName::Anthropic, "sk-2"),
    ];
    let b = breakers();
    let o = chain(&providers, &quick(), &b).await;
    assert_eq!(
        outcomes(&o),
        [
            (ProviderName::Openai, "auth"),
            (ProviderName::Anthropic, "ok")
        ]
    );
    assert!(o.fallback_used);
    assert_eq!(b.paused_reason(ProviderName::Openai), Some("auth"));
    assert_eq!(b.state(ProviderName::Openai), "open");
    // The next description does not call it again; fixing the key (a reset) brings it back.
    let o = chain(&providers, &quick(), &b).await;
    assert_eq!(outcomes(&o), [(ProviderName::Anthropic, "ok")]);
    assert_eq!(
        o.skipped,
        [(ProviderName::Openai, "paused (auth)".to_string())]
    );
    b.reset(ProviderName::Openai);
    let fixed = [provider(&fake, ProviderName::Openai, "sk-right")];
    let o = chain(&fixed, &quick(), &b).await;
    assert_eq!(outcomes(&o), [(ProviderName::Openai, "ok")]);
}

#[tokio::test]
async fn insufficient_quota_is_not_retried() {
    let fake = FakeAi::answering(JSON_ANSWER).await;
    fake.set(Box::new(|r| match r.api {
        "openai" => fake_ai::openai_insufficient_quota(),
        _ => fake_ai::success(r.api, JSON_ANSWER, fake_ai::model_of(r)),
    }));
    let providers = [
        provider(&fake, ProviderName::Openai, "sk-1"),
        provider(&fake, ProviderName::Anthropic, "sk-2"),
    ];
    let b = breakers();
    let o = chain(&providers, &quick(), &b).await;
    assert_eq!(
        outcomes(&o),
        [
            (ProviderName::Openai, "quota"),
            (ProviderName::Anthropic, "ok")
        ]
    );
    assert!(o.attempts[0]
        .error
        .as_deref()
        .unwrap()
        .starts_with("quota or billing limit reached: You exceeded your current quota"));
    assert_eq!(b.paused_reason(ProviderName::Openai), Some("quota"));
}

#[tokio::test]
async fn the_budget_ends_the_chain_and_says_so() {
    let fake = FakeAi::answering(JSON_ANSWER).await;
    fake.set(Box::new(|r| {
        fake_ai::success(r.api, JSON_ANSWER, fake_ai::model_of(r)).after(Duration::from_secs(10))
    }));
    let providers = [
        provider(&fake, ProviderName::Openai, "sk-1"),
        provider(&fake, ProviderName::Anthropic, "sk-2"),
    ];
    let policy = ChainPolicy {
        budget: Duration::from_secs(1),
        ..quick()
    };
    let b = breakers();
    let t0 = Instant::now();
    let o = chain(&providers, &policy, &b).await;
    let took = t0.elapsed();
    // Ended by the 1 s budget, not by the 10 s answer (loose above, for loaded machines).
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "{took:?}"
    );
    assert!(o.answer.is_none());
    assert_eq!(outcomes(&o), [(ProviderName::Openai, "timeout")]);
    assert_eq!(
        o.error.as_deref(),
        Some("budget of 1 s exhausted (openai: timed out)")
    );
    // A timeout imposed by our budget says nothing about the provider.
    assert_eq!(b.state(ProviderName::Openai), "closed");
}

#[tokio::test]
async fn a_provider_slower_than_its_attempt_limit_is_skipped_for_the_next() {
    let fake = FakeAi::answering(JSON_ANSWER).await;
    fake.set(Box::new(|r| {
        let reply = fake_ai::success(r.api, JSON_ANSWER, fake_ai::model_of(r));
        match r.api {
            "openai" => reply.after(Duration::from_secs(20)),
            _ => reply,
        }
    }));
    let providers = [
        provider(&fake, ProviderName::Openai, "sk-1"),
        provider(&fake, ProviderName::Anthropic, "sk-2"),
    ];
    let policy = ChainPolicy {
        // Long enough for a loopback answer on a loaded machine or under emulation.
        attempt_timeout: Duration::from_secs(2),
        ..quick()
    };
    let t0 = Instant::now();
    let o = chain(&providers, &policy, &breakers()).await;
    // Nowhere near the 20 s OpenAI takes (a loose bound, so it holds under emulation too).
    assert!(t0.elapsed() < Duration::from_secs(12));
    assert_eq!(
        outcomes(&o),
        [
            (ProviderName::Openai, "timeout"),
            (ProviderName::Anthropic, "ok")
        ]
    );
    assert!((1_900..10_000).contains(&o.attempts[0].latency_ms));
}

#[tokio::test]
async fn malformed_answers_fall_back_without_retry() {
    let fake = FakeAi::answering(JSON_ANSWER).await;
    fake.set(Box::new(|r| match r.api {
        "gemini" => Reply::new(200, "<html>upstream proxy error</html>"),
        _ => fake_ai::success(r.api, JSON_ANSWER, fake_ai::model_of(r)),
    }));
    let providers = [
        provider(&fake, ProviderName::Gemini, "g-1"),
        provider(&fake, ProviderName::Openai, "sk-1"),
    ];
    let o = chain(&providers, &quick(), &breakers()).await;
    assert_eq!(
        outcomes(&o),
        [
            (ProviderName::Gemini, "malformed"),
            (ProviderName::Openai, "ok")
        ]
    );
}

#[tokio::test]
async fn a_plain_text_answer_is_parsed_tolerantly() {
    let text = "A person in a dark coat walks along the pavement past the gate.\nConfidence: 70%";
    let fake = FakeAi::answering(text).await;
    let providers = [provider(&fake, ProviderName::Anthropic, "sk-2")];
    let o = chain(&providers, &quick(), &breakers()).await;
    let (_, answer, parsed) = o.answer.unwrap();
    assert_eq!(answer.text, text);
    assert!(!parsed.structured);
    assert_eq!(parsed.description, text);
    assert_eq!(parsed.confidence, Some(70));
    assert_eq!(parsed.threat_level, None);
}

#[tokio::test]
async fn providers_are_tried_exactly_in_the_given_order() {
    let fake = FakeAi::answering(JSON_ANSWER).await;
    fake.set(Box::new(|r| match r.api {
        "openai" => fake_ai::success(r.api, JSON_ANSWER, fake_ai::model_of(r)),
        api => fake_ai::error_reply(api, 400, "Could not process image"),
    }));
    let providers = [
        provider(&fake, ProviderName::Gemini, "g-1"),
        provider(&fake, ProviderName::Grok, ""),
        provider(&fake, ProviderName::Anthropic, "sk-2"),
        provider(&fake, ProviderName::Openai, "sk-1"),
        provider(&fake, ProviderName::OpenaiCompatible, ""),
    ];
    let o = chain(&providers, &quick(), &breakers()).await;
    assert_eq!(
        outcomes(&o),
        [
            (ProviderName::Gemini, "bad_request"),
            (ProviderName::Anthropic, "bad_request"),
            (ProviderName::Openai, "ok"),
        ]
    );
    let apis: Vec<&str> = fake.requests().iter().map(|r| r.api).collect();
    assert_eq!(apis, ["gemini", "anthropic", "openai"]);
    assert_eq!(o.skipped, [(ProviderName::Grok, "no API key".to_string())]);
    assert!(o.fallback_used);
    assert_eq!(
        o.attempts[0].error.as_deref(),
        Some("request rejected (HTTP 400): Could not process image")
    );

    // Everyone failing gives one message naming each provider, in order.
    fake.set(Box::new(|r| fake_ai::error_reply(r.api, 400, "nope")));
    let o = chain(&providers[..4], &quick(), &breakers()).await;
    assert_eq!(
        o.error.as_deref(),
        Some(
            "all providers failed: gemini: request rejected (HTTP 400): nope; anthropic: \
             request rejected (HTTP 400): nope; openai: request rejected (HTTP 400): nope"
        )
    );
    let o = chain(&[], &quick(), &breakers()).await;
    assert_eq!(o.error.as_deref(), Some("no AI provider is configured"));
}

#[tokio::test]
async fn the_breaker_opens_after_repeated_failures_and_recovers() {
    let clock = ManualClock::new(SystemClock.now_ms());
    let b = Breakers::with_config(Arc::new(clock.clone()), BreakerConfig::default());
    let fake = FakeAi::answering(JSON_ANSWER).await;
    fake.set(Box::new(|r| match r.api {
        "openai" => fake_ai::server_error(503),
        _ => fake_ai::success(r.api, JSON_ANSWER, fake_ai::model_of(r)),
    }));
    let providers = [
        provider(&fake, ProviderName::Openai, "sk-1"),
        provider(&fake, ProviderName::Anthropic, "sk-2"),
    ];
    let no_retry = ChainPolicy {
        max_retries: 0,
        ..quick()
    };
    let openai_calls = || fake.requests().iter().filter(|r| r.api == "openai").count();
    for i in 0..5 {
        assert_eq!(b.state(ProviderName::Openai), "closed", "run {i}");
        let o = chain(&providers, &no_retry, &b).await;
        assert_eq!(o.answer.unwrap().0, ProviderName::Anthropic);
        clock.advance_ms(1000);
    }
    assert_eq!(openai_calls(), 5);
    assert_eq!(b.state(ProviderName::Openai), "open");

    // While open, the provider is not called at all.
    let o = chain(&providers, &no_retry, &b).await;
    assert_eq!(outcomes(&o), [(ProviderName::Anthropic, "ok")]);
    assert_eq!(
        o.skipped,
        [(ProviderName::Openai, "circuit open".to_string())]
    );
    assert!(o.fallback_used);
    assert_eq!(openai_calls(), 5);

    // The provider heals; after the open period one probe goes through and closes it.
    fake.set(Box::new(|r| {
        fake_ai::success(r.api, JSON_ANSWER, fake_ai::model_of(r))
    }));
    clock.advance_ms(59_000);
    assert_eq!(b.state(ProviderName::Openai), "half_open");
    let o = chain(&providers, &no_retry, &b).await;
    assert_eq!(outcomes(&o), [(ProviderName::Openai, "ok")]);
    assert!(!o.fallback_used);
    assert_eq!(b.state(ProviderName::Openai), "closed");
    assert_eq!(openai_calls(), 6);
    assert_eq!(fake.violations(), Vec::<String>::new());
}

#[tokio::test]
async fn price_overrides_apply_to_usage() {
    let fake = FakeAi::answering(JSON_ANSWER).await;
    let providers = [provider(&fake, ProviderName::Openai, "sk-1")];
    let jpeg = person();
    let user = user();
    let mut overrides = HashMap::new();
    overrides.insert("gpt-4o-mini".to_string(), (1.0, 10.0));
    let req = ChainRequest {
        providers: &providers,
        jpeg: &jpeg,
        system: system_prompt(),
        user: &user,
        price_overrides: &overrides,
    };
    let o = run_chain(&client(), &req, &quick(), &breakers()).await;
    let want = (2850.0 * 1.0 + 40.0 * 10.0) / 1e6;
    assert!((o.cost_usd() - want).abs() < 1e-12, "{}", o.cost_usd());
}

#[tokio::test]
async fn retries_stop_when_the_breaker_opens() {
    let fake = FakeAi::answering(JSON_ANSWER).await;
    fake.set(Box::new(|_| fake_ai::server_error(500)));
    let b = Breakers::with_config(
        Arc::new(SystemClock),
        BreakerConfig {
            consecutive_failures: 2,
            ..BreakerConfig::default()
        },
    );
    let providers = [provider(&fake, ProviderName::Openai, "sk-1")];
    let o = chain(&providers, &quick(), &b).await;
    assert_eq!(
        outcomes(&o),
        [
            (ProviderName::Openai, "server_error"),
            (ProviderName::Openai, "server_error")
        ]
    );
    assert_eq!(
        o.error.as_deref(),
        Some("all providers failed: openai: server error (HTTP 500); circuit open now")
    );
    assert!(o.skipped.is_empty());
}
