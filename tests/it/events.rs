use crate::support::*;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn pagination_arithmetic_and_filters() {
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    let a = app.camera(&admin, "A").await;
    let b = app.camera(&admin, "B").await;
    // 45 events: on camera A, alternating person/vehicle, an hour apart, newest last.
    for i in 0..45 {
        let kind = if i % 2 == 0 { "person" } else { "vehicle" };
        app.event(
            &admin,
            json!({"camera_id": a, "detection_type": kind, "confidence": i + 50,
                   "timestamp": format!("2025-03-01T{:02}:{:02}:00Z", i / 4, (i % 4) * 15),
                   "description": format!("event number {i}")}),
        )
        .await;
    }
    app.event(
        &admin,
        json!({"camera_id": b, "detection_type": "animal", "timestamp": "2025-03-02T12:00:00Z",
                             "description": "A red fox crosses the lawn"}),
    )
    .await;

    let (s, p) = app.get("/api/v1/events?limit=20", &admin).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        (
            p["total"].clone(),
            p["page"].clone(),
            p["limit"].clone(),
            p["pages"].clone()
        ),
        (json!(46), json!(1), json!(20), json!(3))
    );
    assert_eq!(p["items"].as_array().unwrap().len(), 20);
    // Newest first.
    assert_eq!(
        p["items"][0]["description"],
        json!("A red fox crosses the lawn")
    );
    assert_eq!(p["items"][0]["camera_name"], json!("B"));
    let (_, p3) = app.get("/api/v1/events?limit=20&page=3", &admin).await;
    assert_eq!(p3["items"].as_array().unwrap().len(), 6);
    assert_eq!(p3["items"][5]["description"], json!("event number 0"));
    let (_, p4) = app.get("/api/v1/events?limit=20&page=4", &admin).await;
    assert_eq!(p4["items"].as_array().unwrap().len(), 0);
    assert_eq!(p4["total"], json!(46));
    // Pages do not overlap.
    let (_, p2) = app.get("/api/v1/events?limit=20&page=2", &admin).await;
    let ids = |p: &serde_json::Value| {
        p["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["id"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    let all: std::collections::HashSet<_> = ids(&p)
        .into_iter()
        .chain(ids(&p2))
        .chain(ids(&p3))
        .collect();
    assert_eq!(all.len(), 46);

    let count = |q: &str| {
        let app = &app;
        let admin = admin.clone();
        let q = q.to_string();
        async move {
            app.get(&format!("/api/v1/events?{q}"), &admin).await.1["total"]
                .as_u64()
                .unwrap()
        }
    };
    assert_eq!(count(&format!("camera_id={b}")).await, 1);
    assert_eq!(count("detection_type=person").await, 23);
    assert_eq!(count("detection_type=person,animal").await, 24);
    assert_eq!(
        count(&format!("camera_id={a}&detection_type=vehicle")).await,
        22
    );
    assert_eq!(count("min_confidence=90").await, 5);
    assert_eq!(count("start_date=2025-03-02").await, 1);
    assert_eq!(count("end_date=2025-03-01").await, 45);
    assert_eq!(
        count("start_date=2025-03-01T10:00:00Z&end_date=2025-03-01T10:59:59Z").await,
        4
    );
    // Full-text search: words, prefixes, and hostile syntax treated as words.
    assert_eq!(count("search=fox").await, 1);
    assert_eq!(count("search=lawn%20red").await, 1);
    assert_eq!(count("search=cro").await, 1);
    assert_eq!(count("search=number%2042").await, 1);
    assert_eq!(count("search=%22OR%20NEAR(").await, 0);
    assert_eq!(count("search=fox&detection_type=person").await, 0);
}

#[tokio::test]
async fn thumbnails_are_stored_atomically_served_and_deleted_with_the_row() {
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    let cam = app.camera(&admin, "Yard").await;
    let e = app.event(&admin, json!({"camera_id": cam, "detection_type": "person", "thumbnail_base64": TINY_JPEG_B64})).await;
    let id = e["id"].as_str().unwrap();
    assert_eq!(
        e["thumbnail_url"],
        json!(format!("/api/v1/events/{id}/thumbnail"))
    );
    let r = app
        .client
        .get(app.url(&format!("/api/v1/events/{id}/thumbnail")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "image/jpeg");
    // Revalidated, not kept: a better frame replaces the snapshot while the track goes on.
    assert_eq!(r.headers()["cache-control"], "private, no-cache");
    let etag = r.headers()["etag"].clone();
    let bytes = r.bytes().await.unwrap();
    assert_eq!(&bytes[..3], &[0xFF, 0xD8, 0xFF]);
    let r = app
        .client
        .get(app.url(&format!("/api/v1/events/{id}/thumbnail")))
        .bearer_auth(&admin)
        .header("if-none-match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
    // Thumbnails need read:events like the rest.
    let r = app
        .client
        .get(app.url(&format!("/api/v1/events/{id}/thumbnail")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let files: Vec<_> = walk(&app.data_dir().join("thumbnails"));
    assert_eq!(files.len(), 1, "{files:?}");

    let (s, v) = app
        .post(
            "/api/v1/events",
            &admin,
            json!({"camera_id": cam, "detection_type": "person", "thumbnail_base64": "aGVsbG8="}),
        )
        .await;
    assert_error(s, &v, 422, "not a JPEG");
    let (s, v) = app.post("/api/v1/events", &admin, json!({"camera_id": "00000000-0000-4000-8000-000000000000", "detection_type": "person"})).await;
    assert_error(s, &v, 404, "Camera not found");
    let (s, v) = app
        .post(
            "/api/v1/events",
            &admin,
            json!({"camera_id": cam, "detection_type": "ufo"}),
        )
        .await;
    assert_error(s, &v, 422, "detection_type");

    let (s, _) = app.delete(&format!("/api/v1/events/{id}"), &admin).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert!(walk(&app.data_dir().join("thumbnails")).is_empty());
    let (s, _) = app.get(&format!("/api/v1/events/{id}"), &admin).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // No event without a snapshot has a thumbnail.
    let e = app
        .event(
            &admin,
            json!({"camera_id": cam, "detection_type": "motion"}),
        )
        .await;
    assert!(e["thumbnail_url"].is_null());
    let (s, v) = app
        .get(
            &format!("/api/v1/events/{}/thumbnail", e["id"].as_str().unwrap()),
            &admin,
        )
        .await;
    assert_error(s, &v, 404, "no snapshot");
    // Deleting a camera deletes its events and their files.
    app.event(
        &admin,
        json!({"camera_id": cam, "detection_type": "person", "thumbnail_base64": TINY_JPEG_B64}),
    )
    .await;
    app.delete(&format!("/api/v1/cameras/{cam}"), &admin).await;
    assert!(walk(&app.data_dir().join("thumbnails")).is_empty());
    assert_eq!(app.get("/api/v1/events", &admin).await.1["total"], json!(0));
}

#[tokio::test]
async fn stats_group_by_camera_type_hour_and_day() {
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    let a = app.camera(&admin, "A").await;
    let b = app.camera(&admin, "B").await;
    for (cam, kind, ts) in [
        (&a, "person", "2025-05-01T08:10:00Z"),
        (&a, "person", "2025-05-01T08:50:00Z"),
        (&a, "vehicle", "2025-05-01T23:30:00Z"),
        (&b, "person", "2025-05-02T08:00:00Z"),
        (&b, "animal", "2025-06-01T08:00:00Z"),
    ] {
        app.event(
            &admin,
            json!({"camera_id": cam, "detection_type": kind, "timestamp": ts}),
        )
        .await;
    }
    let (s, v) = app
        .get(
            "/api/v1/events/stats?start_date=2025-05-01&end_date=2025-05-31",
            &admin,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["total"], json!(4));
    assert_eq!(
        v["by_camera"][0],
        json!({"camera_id": a, "camera_name": "A", "count": 3})
    );
    assert_eq!(v["by_detection_type"], json!({"person": 3, "vehicle": 1}));
    assert_eq!(v["by_hour"][8], json!(3));
    assert_eq!(v["by_hour"][23], json!(1));
    assert_eq!(
        v["by_day"],
        json!([{"date": "2025-05-01", "count": 3}, {"date": "2025-05-02", "count": 1}])
    );
    // Shifted to UTC+2 the late event falls on the next day at 01:00.
    let (_, v) = app
        .get(
            "/api/v1/events/stats?start_date=2025-05-01&end_date=2025-05-31&tz_offset_minutes=120",
            &admin,
        )
        .await;
    assert_eq!(v["by_hour"][1], json!(1));
    assert_eq!(
        v["by_day"],
        json!([{"date": "2025-05-01", "count": 2}, {"date": "2025-05-02", "count": 2}])
    );
    let (_, v) = app
        .get(
            &format!(
                "/api/v1/events/stats?start_date=2025-01-01&end_date=2025-12-31&camera_id={b}"
            ),
            &admin,
        )
        .await;
    assert_eq!(v["total"], json!(2));
    let (s, v) = app
        .get("/api/v1/events/stats?tz_offset_minutes=9999", &admin)
        .await;
    assert_error(s, &v, 422, "tz_offset_minutes");
}

#[tokio::test]
async fn csv_export_streams_every_match_with_correct_quoting() {
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    let cam = app.camera(&admin, "Gate, north").await;
    let tricky = "He said \"hello\", then\nleft";
    app.event(&admin, json!({"camera_id": cam, "detection_type": "person", "description": tricky, "timestamp": "2025-01-01T10:00:00Z"})).await;
    for i in 0..1500 {
        app.event(&admin, json!({"camera_id": cam, "detection_type": "vehicle", "description": format!("car {i}"), "timestamp": "2025-01-01T09:00:00Z"})).await;
    }
    let r = app
        .client
        .get(app.url("/api/v1/events/export"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "text/csv; charset=utf-8");
    assert!(r.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .contains("attachment"));
    let text = r.text().await.unwrap();
    let mut lines = text.split("\r\n");
    assert_eq!(
        lines.next().unwrap(),
        "id,timestamp,camera_id,camera_name,detection_type,confidence,description,objects_detected,source_type,provider_used,thumbnail_url"
    );
    let first = lines.next().unwrap();
    assert!(
        first.contains(
            ",\"Gate, north\",person,0,\"He said \"\"hello\"\", then\nleft\",person,api,,"
        ),
        "{first}"
    );
    assert_eq!(text.matches("\r\n").count(), 1 + 1 + 1500);
    // Filters apply.
    let r = app
        .client
        .get(app.url("/api/v1/events/export?detection_type=person"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap().matches("\r\n").count(), 2);
    let (s, v) = app.get("/api/v1/events/export?format=xml", &admin).await;
    assert_error(s, &v, 422, "format");
}
