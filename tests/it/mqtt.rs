//! MQTT and Home Assistant against a real Mosquitto broker: the settings API, connection tests,
//! discovery payloads field by field, HA's birth, switch commands, a broker crash with queued
//! messages, and three appliances on one broker.

use crate::mosquitto::{Broker, Msg, Sub};
use crate::support::{assert_error, TestApp, TINY_JPEG_B64};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::time::Duration;

/// Turns MQTT on with this broker (plus `extra` fields); returns the saved settings.
pub async fn enable_mqtt(app: &TestApp, admin: &str, port: u16, extra: Value) -> Value {
    let mut body = json!({"enabled": true, "broker_host": "127.0.0.1", "broker_port": port});
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().cloned().unwrap_or_default());
    let (s, v) = app
        .put("/api/v1/integrations/mqtt/config", admin, body)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v
}

/// Polls the MQTT status until `connected` is `want`; returns the status.
pub async fn wait_connected(app: &TestApp, admin: &str, want: bool, secs: u64) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let (_, st) = app.get("/api/v1/integrations/mqtt/status", admin).await;
        if st["connected"] == json!(want) {
            return st;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "MQTT connected never became {want}: {st}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn person(cam: &str) -> Value {
    json!({"camera_id": cam, "detection_type": "person", "confidence": 90,
           "objects_detected": ["person"], "description": "A person at the door.",
           "thumbnail_base64": TINY_JPEG_B64})
}

/// The retained device configs of one node, by topic.
fn configs<'a>(msgs: &'a [Msg], node: &str) -> Vec<&'a Msg> {
    msgs.iter()
        .filter(|m| {
            m.topic
                .starts_with(&format!("homeassistant/device/{node}_"))
                && m.topic.ends_with("/config")
                && !m.payload.is_empty()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_settings_api_validates_seals_the_password_and_applies_at_once() {
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    let (s, v) = app.get("/api/v1/integrations/mqtt/config", &admin).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["enabled"], json!(false));
    assert_eq!(v["broker_port"], json!(1883));
    assert_eq!(v["topic_prefix"], json!("argus"));
    assert_eq!(v["discovery_prefix"], json!("homeassistant"));
    assert_eq!(v["qos"], json!(1));
    assert_eq!(v["retain"], json!(true));
    assert_eq!(v["has_password"], json!(false));
    let node = v["node_id"].as_str().unwrap().to_string();
    assert!(node.starts_with("argus_"), "{node}");
    for (body, field) in [
        (json!({"enabled": true}), "broker_host"),
        (json!({"broker_port": 70000}), "broker_port"),
        (json!({"qos": 5}), "qos"),
        (json!({"topic_prefix": "a/+"}), "topic_prefix"),
        (json!({"node_id": "has space"}), "node_id"),
        (json!({"ca_cert": "-----BEGIN NOTHING-----"}), "ca_cert"),
        (json!({"brokerhost": "x"}), "brokerhost"),
    ] {
        let (s, e) = app
            .put("/api/v1/integrations/mqtt/config", &admin, body.clone())
            .await;
        assert_error(s, &e, 422, field);
    }
    let (s, _) = app
        .put(
            "/api/v1/integrations/mqtt/config",
            &admin,
            json!({"qos": "1"}),
        )
        .await;
    assert_eq!(s.as_u16(), 422);
    let (s, v) = app
        .put(
            "/api/v1/integrations/mqtt/config",
            &admin,
            json!({"broker_host": "broker.lan", "username": "argus", "password": "s3cret"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["has_password"], json!(true));
    assert!(!v.to_string().contains("s3cret"), "{v}");
    // The password is sealed in the database, never in the clear.
    let db = std::fs::read(app.data_dir().join("argus.db")).unwrap_or_default();
    let wal = std::fs::read(app.data_dir().join("argus.db-wal")).unwrap_or_default();
    assert!(
        !db.windows(6).any(|w| w == b"s3cret") && !wal.windows(6).any(|w| w == b"s3cret"),
        "the password is stored in the clear"
    );
    // A key without `admin` cannot read or change it.
    let (_, key) = app.api_key(&admin, &["read:events"], None).await;
    let (s, e) = app.get("/api/v1/integrations/mqtt/config", &key).await;
    assert_error(s, &e, 403, "admin");
    // Status: off, not connected.
    let (_, st) = app.get("/api/v1/integrations/mqtt/status", &admin).await;
    assert_eq!(st["connected"], json!(false));
    assert_eq!(st["broker"], json!("broker.lan:1883"));
    let (s, e) = app
        .post(
            "/api/v1/integrations/mqtt/publish-discovery",
            &admin,
            json!({}),
        )
        .await;
    assert_error(s, &e, 409, "not enabled");
    // Settings survive a restart.
    let dir = app.stop_keep_dir().await;
    let cfg = argus::config::Config::for_data_dir(&dir.path().join("data"));
    let app = TestApp::start_in(dir, cfg).await;
    let admin = app.admin_token().await;
    let (_, v) = app.get("/api/v1/integrations/mqtt/config", &admin).await;
    assert_eq!(v["broker_host"], json!("broker.lan"));
    assert_eq!(v["has_password"], json!(true));
    assert_eq!(v["node_id"], json!(node), "the default node id is stable");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connection_test_says_why_it_failed() {
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    let test = |body: Value| {
        let app = &app;
        let admin = admin.clone();
        async move {
            let (s, v) = app
                .post("/api/v1/integrations/mqtt/test", &admin, body)
                .await;
            assert_eq!(s, StatusCode::OK, "{v}");
            (
                v["success"].as_bool().unwrap(),
                v["message"].as_str().unwrap().to_string(),
            )
        }
    };
    let pw = Broker::start_with_password("argus", "right").await;
    let (ok, msg) = test(json!({"broker_host": "127.0.0.1", "broker_port": pw.port(),
                                "username": "argus", "password": "wrong"}))
    .await;
    assert!(!ok && msg.contains("refused the credentials"), "{msg}");
    let (ok, msg) = test(json!({"broker_host": "127.0.0.1", "broker_port": pw.port(),
                                "username": "argus", "password": "right"}))
    .await;
    assert!(ok, "{msg}");
    // Nothing listening.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let (ok, msg) = test(json!({"broker_host": "127.0.0.1", "broker_port": closed})).await;
    assert!(!ok && msg.contains("connection refused"), "{msg}");
    // Something that accepts and never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    let hold = tokio::spawn(async move {
        let mut keep = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            keep.push(s);
        }
    });
    let (ok, msg) = test(json!({"broker_host": "127.0.0.1", "broker_port": silent_port})).await;
    assert!(!ok && msg.contains("did not answer"), "{msg}");
    hold.abort();
    // TLS: refused without the private CA, accepted with it.
    let tls = Broker::start_tls().await;
    let (ok, msg) =
        test(json!({"broker_host": "localhost", "broker_port": tls.port(), "use_tls": true})).await;
    assert!(!ok && msg.contains("TLS"), "{msg}");
    let (ok, msg) = test(
        json!({"broker_host": "localhost", "broker_port": tls.port(), "use_tls": true,
                                "ca_cert": tls.ca_pem().unwrap()}),
    )
    .await;
    assert!(ok, "{msg}");
    // Nothing was saved.
    let (_, v) = app.get("/api/v1/integrations/mqtt/config", &admin).await;
    assert_eq!(v["broker_host"], json!(""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_states_events_and_ha_birth_over_tls() {
    // One broker variant per concern elsewhere; here TLS, so the appliance's own rustls
    // configuration (ring, the owner's CA) carries everything.
    let broker = Broker::start_tls().await;
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    let cam = app.camera(&admin, "Front Door").await;
    let tls_opts = {
        let mut o = crate::mosquitto::client_options("ha", broker.port());
        o.set_transport(crate::mosquitto::tls_transport(&broker.ca_pem().unwrap()));
        o
    };
    let mut ha = Sub::connect_with(tls_opts, &["homeassistant/#", "argus/#"]).await;
    let v = enable_mqtt(
        &app,
        &admin,
        broker.port(),
        json!({"broker_host": "localhost", "use_tls": true, "ca_cert": broker.ca_pem().unwrap()}),
    )
    .await;
    let node = v["node_id"].as_str().unwrap().to_string();
    wait_connected(&app, &admin, true, 10).await;
    let cfg_topic = format!(
        "homeassistant/device/{node}_{}/config",
        cam.replace('-', "_")
    );
    ha.wait_for(10, |m| m.topic == cfg_topic).await;
    // Everything of the connection, in whatever order it came.
    let mut first = ha.collect(1.0).await;
    first.extend(
        Sub::connect_with(
            {
                let mut o = crate::mosquitto::client_options("late", broker.port());
                o.set_transport(crate::mosquitto::tls_transport(&broker.ca_pem().unwrap()));
                o
            },
            &["homeassistant/#", "argus/#"],
        )
        .await
        .collect(1.0)
        .await,
    );
    let has = |topic: &str, text: &str| first.iter().any(|m| m.topic == topic && m.text() == text);
    let m = first
        .iter()
        .find(|m| m.topic == cfg_topic && m.retain)
        .expect("the config is retained");
    let c = m.json();
    // Device, origin, availability.
    assert_eq!(c["dev"]["name"], json!("Front Door"));
    assert_eq!(c["dev"]["manufacturer"], json!("Argus Edge"));
    assert_eq!(
        c["dev"]["identifiers"][0],
        json!(format!("argus_{node}_{}", cam.replace('-', "_")))
    );
    assert_eq!(c["o"]["name"], json!("Argus Edge"));
    assert!(c["o"]["sw_version"].is_string());
    assert_eq!(
        c["availability"][0]["topic"],
        json!(format!("argus/{node}/status"))
    );
    // Components: the camera's default filter is person and vehicle.
    let cmps = c["cmps"].as_object().unwrap();
    let base = format!("argus/{node}/front_door");
    let want = [
        (
            "person",
            "binary_sensor",
            "state_topic",
            format!("{base}/person"),
        ),
        (
            "vehicle",
            "binary_sensor",
            "state_topic",
            format!("{base}/vehicle"),
        ),
        (
            "motion",
            "binary_sensor",
            "state_topic",
            format!("{base}/motion"),
        ),
        (
            "detection",
            "event",
            "state_topic",
            format!("{base}/detection"),
        ),
        (
            "snapshot",
            "image",
            "image_topic",
            format!("{base}/snapshot"),
        ),
        (
            "description",
            "sensor",
            "state_topic",
            format!("{base}/description"),
        ),
        ("status", "sensor", "state_topic", format!("{base}/status")),
        (
            "enabled",
            "switch",
            "command_topic",
            format!("{base}/enabled/set"),
        ),
        (
            "detect",
            "switch",
            "command_topic",
            format!("{base}/detect/set"),
        ),
    ];
    let mut uids = HashSet::new();
    for (key, platform, field, topic) in &want {
        let e = &cmps[*key];
        assert_eq!(e["p"], json!(platform), "{key}: {e}");
        assert_eq!(e[*field], json!(topic), "{key}: {e}");
        let uid = e["unique_id"].as_str().unwrap();
        assert!(uid.starts_with(&format!("argus_{node}_")), "{uid}");
        assert!(uids.insert(uid.to_string()), "duplicate unique id {uid}");
        let de = e["default_entity_id"].as_str().unwrap();
        assert!(
            de.starts_with(&format!("{platform}.argus_{node}_front_door_")),
            "{de}"
        );
        assert!(e.get("object_id").is_none(), "{key} uses object_id");
    }
    assert_eq!(cmps["person"]["device_class"], json!("occupancy"));
    assert_eq!(cmps["motion"]["device_class"], json!("motion"));
    assert!(cmps["detection"]["event_types"]
        .as_array()
        .unwrap()
        .contains(&json!("person")));
    assert!(!cmps.contains_key("animal"), "not in the camera's filter");
    assert!(!cmps.contains_key("doorbell"), "not a doorbell");
    // Availability and the states (retained: a late subscriber has them too).
    assert!(has(&format!("argus/{node}/status"), "online"));
    assert!(has(&format!("{base}/enabled"), "ON"));
    assert!(has(&format!("{base}/detect"), "ON"));
    assert!(has(&format!("{base}/motion"), "OFF"));
    assert!(has(&format!("{base}/person"), "0"));
    assert!(first
        .iter()
        .any(|m| m.topic == format!("{base}/status") && m.retain));
    // An event: its JSON, the detection event entity, the snapshot; its description.
    let e = app.event(&admin, person(&cam)).await;
    let ev = ha
        .wait_for(5, |m| m.topic == format!("{base}/events"))
        .await;
    let j = ev.json();
    assert_eq!(j["id"], e["id"]);
    assert_eq!(j["action"], json!("created"));
    assert_eq!(j["camera_id"], json!(cam));
    assert_eq!(j["event_type"], json!("person"));
    assert!(!ev.retain);
    let d = ha
        .wait_for(5, |m| m.topic == format!("{base}/detection"))
        .await;
    assert_eq!(d.json()["event_type"], json!("person"));
    let snap = ha
        .wait_for(5, |m| m.topic == format!("{base}/snapshot"))
        .await;
    assert_eq!(&snap.payload[..2], &[0xFF, 0xD8], "a JPEG");
    // Home Assistant restarts: discovery comes again.
    ha.collect(0.3).await;
    ha.publish("homeassistant/status", b"online", false).await;
    let again = ha.wait_for(10, |m| m.topic == cfg_topic).await;
    assert_eq!(
        again.json()["cmps"]["person"]["unique_id"],
        cmps["person"]["unique_id"]
    );
    // The appliance stops: `offline`.
    app.stop().await;
    ha.wait_for(5, |m| {
        m.topic == format!("argus/{node}/status") && m.text() == "offline"
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_broker_a_switch_command_a_rename_and_a_deletion() {
    let broker = Broker::start_with_password("argus", "pw").await;
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    let cam = app.camera(&admin, "Garage").await;
    let opts = {
        let mut o = crate::mosquitto::client_options("ha", broker.port());
        o.set_credentials("argus", "pw");
        o
    };
    let mut ha = Sub::connect_with(opts, &["homeassistant/#", "argus/#"]).await;
    // Wrong password: not connected, and the status says why.
    enable_mqtt(
        &app,
        &admin,
        broker.port(),
        json!({"username": "argus", "password": "nope"}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (_, st) = app.get("/api/v1/integrations/mqtt/status", &admin).await;
    assert_eq!(st["connected"], json!(false), "{st}");
    assert!(
        st["last_error"]
            .as_str()
            .unwrap_or("")
            .contains("credentials"),
        "{st}"
    );
    let (_, v) = app
        .put(
            "/api/v1/integrations/mqtt/config",
            &admin,
            json!({"password": "pw"}),
        )
        .await;
    let node = v["node_id"].as_str().unwrap().to_string();
    wait_connected(&app, &admin, true, 10).await;
    let base = format!("argus/{node}/garage");
    ha.wait_for(10, |m| {
        m.topic == format!("{base}/enabled") && m.text() == "ON"
    })
    .await;
    // Garbage on a command topic is ignored; OFF stops the camera.
    ha.publish(&format!("{base}/enabled/set"), b"maybe", false)
        .await;
    ha.publish(&format!("{base}/nonsense/set"), b"ON", false)
        .await;
    ha.publish(&format!("argus/{node}/nobody/enabled/set"), b"OFF", false)
        .await;
    ha.publish(&format!("{base}/enabled/set"), b"OFF", false)
        .await;
    ha.wait_for(10, |m| {
        m.topic == format!("{base}/enabled") && m.text() == "OFF"
    })
    .await;
    let (_, c) = app.get(&format!("/api/v1/cameras/{cam}"), &admin).await;
    assert_eq!(c["is_enabled"], json!(false), "{c}");
    assert_eq!(c["status"]["status"], json!("stopped"), "{c}");
    // Detection off, through its switch.
    ha.publish(&format!("{base}/detect/set"), b"OFF", false)
        .await;
    ha.wait_for(10, |m| {
        m.topic == format!("{base}/detect") && m.text() == "OFF"
    })
    .await;
    let (_, c) = app.get(&format!("/api/v1/cameras/{cam}"), &admin).await;
    assert_eq!(c["motion_enabled"], json!(false), "{c}");
    // A rename: the same device (id-based topic), new state topics, the old ones cleared.
    let cfg_topic = format!(
        "homeassistant/device/{node}_{}/config",
        cam.replace('-', "_")
    );
    let (s, _) = app
        .put(
            &format!("/api/v1/cameras/{cam}"),
            &admin,
            json!({"name": "Side Gate"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let after = ha.collect(1.5).await;
    let m = after
        .iter()
        .find(|m| m.topic == cfg_topic && !m.payload.is_empty())
        .expect("a new config after the rename");
    assert_eq!(m.json()["dev"]["name"], json!("Side Gate"));
    assert_eq!(
        m.json()["cmps"]["enabled"]["command_topic"],
        json!(format!("argus/{node}/side_gate/enabled/set"))
    );
    assert!(
        after
            .iter()
            .any(|m| m.topic == format!("{base}/enabled") && m.payload.is_empty()),
        "the old retained state is cleared"
    );
    // Deleted: an empty retained config removes the device.
    let (s, _) = app.delete(&format!("/api/v1/cameras/{cam}"), &admin).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    ha.wait_for(10, |m| m.topic == cfg_topic && m.payload.is_empty())
        .await;
    // A fresh subscriber sees no retained config for it.
    let mut late = Sub::connect_with(
        {
            let mut o = crate::mosquitto::client_options("late", broker.port());
            o.set_credentials("argus", "pw");
            o
        },
        &["homeassistant/#"],
    )
    .await;
    let seen = late.collect(1.0).await;
    assert!(
        configs(&seen, &node).is_empty(),
        "ghost configs: {:?}",
        seen.iter().map(|m| &m.topic).collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_queued_while_the_broker_is_down_arrive_after_it_returns() {
    let mut broker = Broker::start().await;
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    let cam = app.camera(&admin, "Porch").await;
    let v = enable_mqtt(&app, &admin, broker.port(), json!({})).await;
    let node = v["node_id"].as_str().unwrap().to_string();
    wait_connected(&app, &admin, true, 10).await;
    broker.kill().await;
    wait_connected(&app, &admin, false, 10).await;
    // Events while the broker is away: stored and answered at once all the same.
    let mut ids = Vec::new();
    for _ in 0..5 {
        let started = std::time::Instant::now();
        let e = app.event(&admin, person(&cam)).await;
        assert!(started.elapsed() < Duration::from_secs(2));
        ids.push(e["id"].as_str().unwrap().to_string());
    }
    let (_, st) = app.get("/api/v1/integrations/mqtt/status", &admin).await;
    assert!(st["messages_queued"].as_u64().unwrap() >= 5, "{st}");
    let (_, h) = app.get("/api/v1/system/health", "").await;
    assert_eq!(h["mqtt"]["connected"], json!(false), "{h}");
    assert!(h["mqtt"]["messages_queued"].as_u64().unwrap() >= 5, "{h}");
    assert!(st["reconnect_attempt"].as_u64().unwrap() >= 1, "{st}");
    let (_, list) = app.get("/api/v1/events", &admin).await;
    assert_eq!(list["total"], json!(5), "{list}");
    broker.restart().await;
    let mut sub = Sub::connect(broker.port(), &[&format!("argus/{node}/porch/events")]).await;
    // Reconnection backs off (1 s doubling to 30 s); the queue follows it.
    let mut got = HashSet::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    while got.len() < ids.len() && tokio::time::Instant::now() < deadline {
        if let Some(m) = sub.next(1).await {
            got.insert(m.json()["id"].as_str().unwrap().to_string());
        }
    }
    for id in &ids {
        assert!(got.contains(id), "event {id} never arrived: {got:?}");
    }
    let st = wait_connected(&app, &admin, true, 5).await;
    assert_eq!(st["messages_dropped"], json!(0), "{st}");
    assert_eq!(st["reconnect_attempt"], json!(0), "{st}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_appliances_share_one_broker_without_collisions() {
    let broker = Broker::start().await;
    let mut ha = Sub::connect(broker.port(), &["homeassistant/#", "argus/#"]).await;
    let mut apps = Vec::new();
    let mut nodes = Vec::new();
    for _ in 0..3 {
        let app = TestApp::start().await;
        let admin = app.admin_token().await;
        // Every board calls its camera the same.
        app.camera(&admin, "Front Door").await;
        let v = enable_mqtt(&app, &admin, broker.port(), json!({})).await;
        nodes.push(v["node_id"].as_str().unwrap().to_string());
        apps.push((app, admin));
    }
    for (app, admin) in &apps {
        wait_connected(app, admin, true, 10).await;
    }
    assert_eq!(nodes.iter().collect::<HashSet<_>>().len(), 3, "{nodes:?}");
    let msgs = ha.collect(2.0).await;
    let mut uids = HashSet::new();
    let mut entity_ids = HashSet::new();
    let mut state_topics = HashSet::new();
    for node in &nodes {
        let cfgs = configs(&msgs, node);
        assert_eq!(
            cfgs.len(),
            1,
            "node {node}: {:?}",
            msgs.iter().map(|m| &m.topic).collect::<Vec<_>>()
        );
        let c = cfgs[0].json();
        for (_, e) in c["cmps"].as_object().unwrap() {
            assert!(uids.insert(e["unique_id"].as_str().unwrap().to_string()));
            assert!(entity_ids.insert(e["default_entity_id"].as_str().unwrap().to_string()));
            if let Some(t) = e["state_topic"].as_str() {
                assert!(state_topics.insert(t.to_string()), "{t} twice");
                assert!(t.starts_with(&format!("argus/{node}/")), "{t}");
            }
        }
        assert!(
            msgs.iter()
                .any(|m| m.topic == format!("argus/{node}/status") && m.text() == "online"),
            "{node} online"
        );
    }
    // An event on the second board reaches only its topic.
    let (app, admin) = &apps[1];
    let (_, cams) = app.get("/api/v1/cameras", admin).await;
    let cam = cams[0]["id"].as_str().unwrap();
    let e = app.event(admin, person(cam)).await;
    let m = ha
        .wait_for(5, |m| m.topic.ends_with("/front_door/events"))
        .await;
    assert_eq!(m.topic, format!("argus/{}/front_door/events", nodes[1]));
    assert_eq!(m.json()["id"], e["id"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_rule_with_the_mqtt_action_publishes_its_alert() {
    let broker = Broker::start().await;
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    let cam = app.camera(&admin, "Door").await;
    let v = enable_mqtt(
        &app,
        &admin,
        broker.port(),
        json!({"topic_prefix": "home/cams"}),
    )
    .await;
    let node = v["node_id"].as_str().unwrap().to_string();
    let mut sub = Sub::connect(broker.port(), &["home/cams/#"]).await;
    wait_connected(&app, &admin, true, 10).await;
    let (s, rule) = app
        .post(
            "/api/v1/alert-rules",
            &admin,
            json!({"name": "People", "conditions": {"object_types": ["person"]},
                   "actions": {"dashboard_notification": false, "mqtt": true}}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{rule}");
    assert_eq!(rule["actions"]["mqtt"], json!(true));
    let (s, quiet) = app
        .post(
            "/api/v1/alert-rules",
            &admin,
            json!({"name": "Vehicles", "conditions": {"object_types": ["vehicle"]},
                   "actions": {"mqtt": true}}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{quiet}");
    let e = app.event(&admin, person(&cam)).await;
    let m = sub
        .wait_for(5, |m| m.topic == format!("home/cams/{node}/alerts"))
        .await;
    let j = m.json();
    assert_eq!(j["rule_id"], rule["id"]);
    assert_eq!(j["event"]["id"], e["id"]);
    assert_eq!(j["title"], json!("People: person on Door"));
    let rest = sub.collect(0.5).await;
    assert!(
        !rest.iter().any(|m| m.topic.ends_with("/alerts")),
        "the vehicle rule published"
    );
    // The action can be turned off with a partial update.
    let (s, r) = app
        .put(
            &format!("/api/v1/alert-rules/{}", rule["id"].as_str().unwrap()),
            &admin,
            json!({"mqtt": false}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(r["actions"]["mqtt"], json!(false));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_camera_deleted_while_mqtt_was_off_leaves_no_ghost_device() {
    let broker = Broker::start().await;
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    let gone = app.camera(&admin, "Old shed").await;
    let kept = app.camera(&admin, "Porch").await;
    let v = enable_mqtt(&app, &admin, broker.port(), json!({})).await;
    let node = v["node_id"].as_str().unwrap().to_string();
    wait_connected(&app, &admin, true, 10).await;
    let topic = |id: &str| {
        format!(
            "homeassistant/device/{node}_{}/config",
            id.replace('-', "_")
        )
    };
    let mut watch = Sub::connect(broker.port(), &["homeassistant/device/#"]).await;
    watch.wait_for(5, |m| m.topic == topic(&gone)).await;
    // MQTT off; the camera goes; MQTT on again.
    let (s, _) = app
        .put(
            "/api/v1/integrations/mqtt/config",
            &admin,
            json!({"enabled": false}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    wait_connected(&app, &admin, false, 5).await;
    let (s, _) = app.delete(&format!("/api/v1/cameras/{gone}"), &admin).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = app
        .put(
            "/api/v1/integrations/mqtt/config",
            &admin,
            json!({"enabled": true}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    wait_connected(&app, &admin, true, 10).await;
    watch
        .wait_for(10, |m| m.topic == topic(&gone) && m.payload.is_empty())
        .await;
    let mut late = Sub::connect(broker.port(), &["homeassistant/device/#"]).await;
    let seen = late.collect(1.0).await;
    let live: Vec<&str> = seen
        .iter()
        .filter(|m| !m.payload.is_empty())
        .map(|m| m.topic.as_str())
        .collect();
    assert_eq!(live, [topic(&kept).as_str()], "{live:?}");
}
