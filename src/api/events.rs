//! `/events`: the event timeline (filtered, paged, full-text searched), single events and their
//! snapshots, statistics, streamed CSV export, and event creation by integrations.

use super::{check_uuid, parse_time_param, Ctx, Page, PageQuery};
use crate::api::body::{created, full, no_content, ok, query, read_json, Body, BoxError};
use crate::error::{AppError, AppResult, ErrorKind};
use crate::store::events::{self as rows, EventFilter, EventRow};
use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_TYPE};
use hyper::{Request, Response, StatusCode};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use utoipa::{IntoParams, ToSchema};

/// An event as the API and the WebSocket show it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EventDto {
    pub id: String,
    pub camera_id: String,
    pub camera_name: Option<String>,
    /// When it happened (RFC 3339 UTC).
    pub timestamp: String,
    /// Main class: `person`, `vehicle`, `animal`, `package`, `motion`, `ring`.
    pub detection_type: String,
    /// 0-100.
    pub confidence: u8,
    pub description: Option<String>,
    /// True while a cloud description is being fetched.
    pub description_pending: bool,
    pub objects_detected: Vec<String>,
    /// Boxes in normalised coordinates: `{x, y, width, height, label, score}`.
    #[schema(value_type = Vec<Object>)]
    pub bounding_boxes: serde_json::Value,
    /// `/api/v1/events/{id}/thumbnail` when a snapshot exists.
    pub thumbnail_url: Option<String>,
    /// True once the event's video clip is complete (`event.updated` says when).
    pub has_clip: bool,
    /// `/api/v1/events/{id}/clip` when `has_clip`.
    pub clip_url: Option<String>,
    /// The clip's length, when there is one.
    pub clip_duration_seconds: Option<f64>,
    /// How far into the clip the event was noticed (where a player should start), when known.
    pub clip_event_offset_seconds: Option<f64>,
    pub source_type: String,
    pub protect_event_id: Option<String>,
    pub smart_detection_type: Option<String>,
    pub is_doorbell_ring: bool,
    pub provider_used: Option<String>,
    pub ai_fallback_used: bool,
    pub ai_error: Option<String>,
    pub ai_confidence: Option<u8>,
    pub threat_level: Option<String>,
    pub ai_cost_usd: Option<f64>,
    pub reanalysis_count: u32,
    pub reanalyzed_at: Option<String>,
    pub created_at: String,
}

impl EventDto {
    /// The API view of an event from the stream or the event lifecycle.
    pub fn from_info(e: &crate::bus::EventInfo) -> Self {
        Self::from_row(e.row.clone(), e.camera_name.clone())
    }

    pub fn from_row(r: EventRow, camera_name: Option<String>) -> Self {
        let thumb = r
            .thumbnail_path
            .as_ref()
            .map(|_| format!("/api/v1/events/{}/thumbnail", r.id));
        let has_clip = r.clip_path.is_some();
        let seconds = |ms: Option<u64>| ms.filter(|_| has_clip).map(|ms| ms as f64 / 1000.0);
        EventDto {
            thumbnail_url: thumb,
            has_clip,
            clip_url: has_clip.then(|| format!("/api/v1/events/{}/clip", r.id)),
            clip_duration_seconds: seconds(r.clip_duration_ms),
            clip_event_offset_seconds: seconds(r.clip_offset_ms),
            camera_name,
            timestamp: crate::clock::format_rfc3339(r.ts),
            created_at: crate::clock::format_rfc3339(r.created_at),
            reanalyzed_at: r.reanalyzed_at.map(crate::clock::format_rfc3339),
            id: r.id,
            camera_id: r.camera_id,
            detection_type: r.detection_type,
            confidence: r.confidence,
            description: r.description,
            description_pending: r.description_pending,
            objects_detected: r.objects_detected,
            bounding_boxes: r.bounding_boxes,
            source_type: r.source_type,
            protect_event_id: r.protect_event_id,
            smart_detection_type: r.smart_detection_type,
            is_doorbell_ring: r.is_doorbell_ring,
            provider_used: r.provider_used,
            ai_fallback_used: r.ai_fallback_used,
            ai_error: r.ai_error,
            ai_confidence: r.ai_confidence,
            threat_level: r.threat_level,
            ai_cost_usd: r.ai_cost_usd,
            reanalysis_count: r.reanalysis_count,
        }
    }
}

/// Filters for the list, the export and the statistics.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventFilterQuery {
    pub camera_id: Option<String>,
    /// One class or several separated by commas (`person,vehicle`).
    pub detection_type: Option<String>,
    /// RFC 3339 or `YYYY-MM-DD` (start of day, inclusive).
    pub start_date: Option<String>,
    /// RFC 3339 or `YYYY-MM-DD` (whole day included).
    pub end_date: Option<String>,
    /// 0-100.
    pub min_confidence: Option<u8>,
    /// Words to find in descriptions (all must match, prefixes allowed).
    pub search: Option<String>,
}

impl EventFilterQuery {
    pub fn to_filter(&self) -> AppResult<EventFilter> {
        let start_ms = self
            .start_date
            .as_deref()
            .map(|v| parse_time_param("start_date", v, false))
            .transpose()?;
        let end_ms = self
            .end_date
            .as_deref()
            .map(|v| parse_time_param("end_date", v, true))
            .transpose()?;
        if let (Some(s), Some(e)) = (start_ms, end_ms) {
            if s > e {
                return Err(AppError::invalid("end_date: must not be before start_date"));
            }
        }
        if self.min_confidence.is_some_and(|m| m > 100) {
            return Err(AppError::invalid("min_confidence: between 0 and 100"));
        }
        if self
            .search
            .as_deref()
            .is_some_and(|s| s.chars().count() > 500)
        {
            return Err(AppError::invalid("search: at most 500 characters"));
        }
        let detection_types = self
            .detection_type
            .as_deref()
            .map(|s| {
                s.split(',')
                    .map(|t| t.trim().to_string())
                    .filter(|t| !t.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        Ok(EventFilter {
            camera_id: self.camera_id.clone().filter(|c| !c.is_empty()),
            detection_types,
            start_ms,
            end_ms,
            min_confidence: self.min_confidence,
            search: self.search.clone().filter(|s| !s.trim().is_empty()),
        })
    }
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    #[serde(flatten)]
    page: PageQueryFlat,
    #[serde(flatten)]
    filter: EventFilterQueryFlat,
}

// serde_urlencoded cannot deserialise numbers inside `flatten`, so the flat structs keep every
// value as a string and are converted by hand.
#[derive(Debug, Deserialize)]
struct PageQueryFlat {
    page: Option<String>,
    limit: Option<String>,
}

#[derive(Debug, Deserialize)]
struct EventFilterQueryFlat {
    camera_id: Option<String>,
    detection_type: Option<String>,
    start_date: Option<String>,
    end_date: Option<String>,
    min_confidence: Option<String>,
    search: Option<String>,
}

fn num<T: std::str::FromStr>(name: &str, v: Option<String>, what: &str) -> AppResult<Option<T>> {
    v.filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<T>()
                .map_err(|_| AppError::invalid(format!("{name}: {what}")))
        })
        .transpose()
}

fn parse_list_query(q: Option<&str>) -> AppResult<(PageQuery, EventFilterQuery)> {
    let lq: ListQuery = query(q)?;
    let page = PageQuery {
        page: num("page", lq.page.page, "a whole number, 1 or more")?,
        limit: num("limit", lq.page.limit, "a whole number between 1 and 500")?,
    };
    let f = lq.filter;
    let filter = EventFilterQuery {
        camera_id: f.camera_id,
        detection_type: f.detection_type,
        start_date: f.start_date.filter(|s| !s.is_empty()),
        end_date: f.end_date.filter(|s| !s.is_empty()),
        min_confidence: num::<u16>("min_confidence", f.min_confidence, "between 0 and 100")?
            .map(|v| {
                u8::try_from(v).map_err(|_| AppError::invalid("min_confidence: between 0 and 100"))
            })
            .transpose()?,
        search: f.search,
    };
    Ok((page, filter))
}

/// List events, newest first, with filters and full-text search.
#[utoipa::path(get, path = "/api/v1/events", tag = "events", params(PageQuery, EventFilterQuery),
    responses((status = 200, body = Page<EventDto>), (status = 422, body = super::ErrorBody)),
    security(("api_key" = ["read:events"]), ("bearer" = [])))]
pub async fn list(ctx: Ctx, req: Request<Incoming>) -> AppResult<Response<Body>> {
    let (pq, fq) = parse_list_query(req.uri().query())?;
    let (page, limit) = pq.resolve()?;
    let filter = fq.to_filter()?;
    let offset = (page as u64 - 1) * limit as u64;
    let (rows, total, names) = ctx
        .state
        .store
        .read(move |c| {
            let (rows, total) = rows::page(c, &filter, limit, offset)?;
            Ok((rows, total, crate::store::cameras::names(c)?))
        })
        .await?;
    let items = rows
        .into_iter()
        .map(|r| {
            let name = names.get(&r.camera_id).cloned();
            EventDto::from_row(r, name)
        })
        .collect();
    ok(&Page::new(items, total, page, limit))
}

/// Get an event.
#[utoipa::path(get, path = "/api/v1/events/{id}", tag = "events",
    params(("id" = String, Path, description = "Event id")),
    responses((status = 200, body = EventDto), (status = 404, body = super::ErrorBody)),
    security(("api_key" = ["read:events"]), ("bearer" = [])))]
pub async fn get(ctx: Ctx) -> AppResult<Response<Body>> {
    let id = ctx.param("id").to_string();
    check_uuid("Event", &id)?;
    let info = ctx.state.events.get(id).await?;
    ok(&EventDto::from_info(&info))
}

/// Delete an event and its snapshot.
#[utoipa::path(delete, path = "/api/v1/events/{id}", tag = "events",
    params(("id" = String, Path, description = "Event id")),
    responses((status = 204, description = "Deleted with its snapshot"),
        (status = 404, body = super::ErrorBody)),
    security(("api_key" = ["admin"]), ("bearer" = [])))]
pub async fn delete(ctx: Ctx) -> AppResult<Response<Body>> {
    let id = ctx.param("id").to_string();
    check_uuid("Event", &id)?;
    ctx.state.events.delete(&id).await?;
    no_content()
}

/// `DELETE /events/cleanup` query.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CleanupQuery {
    /// Delete events before this instant: RFC 3339, or `YYYY-MM-DD` (midnight UTC, so that
    /// day's events are kept).
    pub before_date: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CleanupResult {
    pub deleted_count: u64,
    pub thumbnails_deleted: u64,
    /// Bytes of snapshot files removed.
    pub bytes_freed: u64,
}

/// Delete every event before a date, with its snapshot (in batches; the answer comes when all
/// are gone).
#[utoipa::path(delete, path = "/api/v1/events/cleanup", tag = "events", params(CleanupQuery),
    responses((status = 200, body = CleanupResult),
        (status = 422, body = super::ErrorBody, description = "before_date missing or not a date")),
    security(("api_key" = ["admin"]), ("bearer" = [])))]
pub async fn cleanup(ctx: Ctx, req: Request<Incoming>) -> AppResult<Response<Body>> {
    let q: CleanupQuery = query(req.uri().query())?;
    let raw = q
        .before_date
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| AppError::invalid("before_date: required (RFC 3339 or YYYY-MM-DD)"))?;
    let before = parse_time_param("before_date", raw.trim(), false)?;
    let state = &ctx.state;
    let rep = state
        .retention
        .cleanup_before(&state.store, &*state.clock, before)
        .await;
    if let Some(e) = rep.error {
        return Err(AppError::internal(format!(
            "cleanup stopped after {} events: {e}",
            rep.events_deleted
        )));
    }
    ok(&CleanupResult {
        deleted_count: rep.events_deleted,
        thumbnails_deleted: rep.thumbnails_deleted,
        bytes_freed: rep.bytes_freed,
    })
}

/// The event snapshot (JPEG).
#[utoipa::path(get, path = "/api/v1/events/{id}/thumbnail", tag = "events",
    params(("id" = String, Path, description = "Event id")),
    responses((status = 200, content_type = "image/jpeg", description = "The event's snapshot (with an ETag: it is replaced by a better frame while the object stays in view)"),
        (status = 304, description = "Unchanged since the ETag sent in If-None-Match"),
        (status = 404, body = super::ErrorBody)),
    security(("api_key" = ["read:events"]), ("bearer" = [])))]
pub async fn thumbnail(ctx: Ctx, req: Request<Incoming>) -> AppResult<Response<Body>> {
    let id = ctx.param("id").to_string();
    check_uuid("Event", &id)?;
    let row = ctx.state.store.read(move |c| rows::get(c, &id)).await?;
    let rel = row
        .thumbnail_path
        .ok_or_else(|| AppError::not_found("This event has no snapshot"))?;
    let path = ctx.state.cfg.data_dir.join(&rel);
    let bytes = tokio::fs::read(&path).await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            AppError::not_found("The snapshot file is missing")
        } else {
            AppError::internal(e)
        }
    })?;
    // A better frame replaces the snapshot in place while the object's track goes on, so
    // browsers revalidate (a 304 when it is unchanged) instead of keeping a stale picture.
    let digest = ring::digest::digest(&ring::digest::SHA256, &bytes);
    let etag = format!(
        "\"{}\"",
        digest.as_ref()[..12]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    let unchanged = req
        .headers()
        .get(hyper::header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let b = Response::builder()
        .header(CONTENT_TYPE, "image/jpeg")
        .header(CACHE_CONTROL, "private, no-cache")
        .header(hyper::header::ETAG, &etag);
    Ok(if unchanged {
        b.status(hyper::StatusCode::NOT_MODIFIED)
            .body(full(Vec::new()))
    } else {
        b.body(full(bytes))
    }
    .expect("static headers are valid"))
}

/// An event reported by an integration (a doorbell, an alarm panel, a script).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventCreate {
    pub camera_id: String,
    /// Defaults to now.
    pub timestamp: Option<String>,
    /// `person`, `vehicle`, `animal`, `package`, `motion` or `ring`.
    pub detection_type: String,
    /// 0-100 (default 0).
    pub confidence: Option<u8>,
    /// Up to 5000 characters.
    pub description: Option<String>,
    pub objects_detected: Option<Vec<String>>,
    /// A JPEG snapshot, base64-encoded (no `data:` prefix needed).
    pub thumbnail_base64: Option<String>,
}

pub const EVENT_TYPES: [&str; 6] = ["person", "vehicle", "animal", "package", "motion", "ring"];

/// Record an event from an integration.
#[utoipa::path(post, path = "/api/v1/events", tag = "events", request_body = EventCreate,
    responses((status = 201, body = EventDto), (status = 404, body = super::ErrorBody),
        (status = 422, body = super::ErrorBody)),
    security(("api_key" = ["admin"]), ("bearer" = [])))]
pub async fn create(ctx: Ctx, req: Request<Incoming>) -> AppResult<Response<Body>> {
    use base64::Engine;
    let b: EventCreate = read_json(req, ctx.state.cfg.http.max_upload_bytes).await?;
    let now = ctx.state.clock.now_ms();
    let ts = b
        .timestamp
        .as_deref()
        .map(|t| parse_time_param("timestamp", t, false))
        .transpose()?
        .unwrap_or(now);
    if !EVENT_TYPES.contains(&b.detection_type.as_str()) {
        return Err(AppError::invalid(format!(
            "detection_type: one of {}",
            EVENT_TYPES.join(", ")
        )));
    }
    let confidence = b.confidence.unwrap_or(0);
    if confidence > 100 {
        return Err(AppError::invalid("confidence: between 0 and 100"));
    }
    if b.description
        .as_deref()
        .is_some_and(|d| d.chars().count() > 5000)
    {
        return Err(AppError::invalid("description: at most 5000 characters"));
    }
    let objects = b
        .objects_detected
        .unwrap_or_else(|| vec![b.detection_type.clone()]);
    if objects.len() > 32 || objects.iter().any(|o| o.is_empty() || o.len() > 32) {
        return Err(AppError::invalid(
            "objects_detected: up to 32 names of 1-32 characters",
        ));
    }
    let jpeg = match b.thumbnail_base64.as_deref() {
        Some(s) => {
            let data = s.split_once("base64,").map(|(_, d)| d).unwrap_or(s);
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(data.trim())
                .map_err(|_| AppError::invalid("thumbnail_base64: not valid base64"))?;
            if !bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
                return Err(AppError::invalid("thumbnail_base64: not a JPEG image"));
            }
            // Re-analysis decodes it later: refuse one whose decode would not fit the memory
            // budget (other header problems keep being stored as sent, as before).
            if let Err(e @ crate::ai::ImageError::TooLarge { .. }) = crate::ai::image::check(&bytes)
            {
                return Err(AppError::invalid(format!("thumbnail_base64: {e}")));
            }
            Some(bytes)
        }
        None => None,
    };
    check_uuid("Camera", &b.camera_id)?;
    let row = EventRow {
        id: crate::crypto::new_uuid(),
        camera_id: b.camera_id,
        ts,
        detection_type: b.detection_type,
        confidence,
        description: b.description,
        objects_detected: objects,
        bounding_boxes: serde_json::Value::Array(Vec::new()),
        source_type: "api".into(),
        created_at: now,
        ..Default::default()
    };
    let info = ctx.state.events.record(row, jpeg).await?;
    created(&EventDto::from_info(&info))
}

/// Options for re-describing an event.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReanalyseRequest {
    /// Use this prompt instead of the camera's or the default one.
    pub prompt: Option<String>,
}

/// Describe an event again from its snapshot.
#[utoipa::path(post, path = "/api/v1/events/{id}/reanalyse", tag = "events",
    request_body(content = Option<ReanalyseRequest>, description = "Optional; an empty body uses the defaults"),
    params(("id" = String, Path, description = "Event id")),
    responses((status = 200, body = EventDto), (status = 404, body = super::ErrorBody),
        (status = 409, body = super::ErrorBody, description = "No provider configured, a cost cap reached, or no snapshot"),
        (status = 429, body = super::ErrorBody, description = "More than 3 re-analyses of this event in an hour"),
        (status = 502, body = super::ErrorBody, description = "No provider answered; the event keeps its error")),
    security(("api_key" = ["admin"]), ("bearer" = [])))]
pub async fn reanalyse(ctx: Ctx, req: Request<Incoming>) -> AppResult<Response<Body>> {
    let id = ctx.param("id").to_string();
    check_uuid("Event", &id)?;
    let body = crate::api::body::read_bytes(req, ctx.body_limit()).await?;
    let r: ReanalyseRequest = if body.iter().all(|b| b.is_ascii_whitespace()) {
        ReanalyseRequest { prompt: None }
    } else {
        crate::api::body::parse_json(&body)?
    };
    if r.prompt.as_ref().is_some_and(|p| p.len() > 2000) {
        return Err(AppError::invalid("prompt: at most 2000 characters"));
    }
    let state = &ctx.state;
    let now = state.clock.now_ms();
    let eid = id.clone();
    let (ev, recent, camera) = state
        .store
        .read(move |c| {
            let ev = rows::get(c, &eid)?;
            let recent = crate::store::ai::reanalyses_since(c, &eid, now - 3_600_000)?;
            let camera = crate::store::cameras::get(c, &ev.camera_id).ok();
            Ok((ev, recent, camera))
        })
        .await?;
    if recent >= REANALYSES_PER_HOUR {
        return Err(AppError::new(
            ErrorKind::TooManyRequests,
            format!("This event was re-analysed {REANALYSES_PER_HOUR} times in the last hour; try again later"),
        )
        .with_header("Retry-After", "3600"));
    }
    let Some(rel) = ev.thumbnail_path.clone() else {
        return Err(AppError::conflict("This event has no snapshot to analyse"));
    };
    let image = tokio::fs::read(state.cfg.data_dir.join(&rel))
        .await
        .map_err(|_| AppError::conflict("This event's snapshot file is missing"))?;
    let settings = state.settings().await?;
    if state.describer.providers(&settings).await.is_empty() {
        return Err(AppError::conflict(
            crate::describe::RunError::NoProvider.to_string(),
        ));
    }
    if let Some(why) = state.describer.capped(&settings).await {
        return Err(AppError::conflict(why));
    }
    let mut seen: Vec<crate::ai::SeenObject> = ev
        .bounding_boxes
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|b| {
            let f = |k: &str| b[k].as_f64().map(|v| v as f32);
            Some(crate::ai::SeenObject {
                label: b["label"].as_str()?.to_string(),
                score: f("score").unwrap_or(0.0),
                bbox: Some([f("x")?, f("y")?, f("width")?, f("height")?]),
            })
        })
        .collect();
    if seen.is_empty() && ev.source_type == "protect" {
        // Protect reports what it saw without boxes.
        seen = ev
            .objects_detected
            .iter()
            .map(|label| crate::ai::SeenObject {
                label: label.clone(),
                score: f32::from(ev.confidence) / 100.0,
                bbox: None,
            })
            .collect();
    }
    let prompt = r
        .prompt
        .or_else(|| camera.as_ref().and_then(|c| c.prompt_override.clone()));
    let d = &state.describer;
    let (system, user) = d.prompts(
        camera.as_ref().map(|c| c.name.as_str()),
        ev.ts,
        &seen,
        prompt.as_deref(),
    );
    let eid = id.clone();
    state
        .store
        .write(move |c| crate::store::ai::add_reanalysis(c, &eid, now))
        .await?;
    let result = d
        .run(
            image,
            &system,
            &user,
            crate::describe::For {
                purpose: "reanalyse",
                event_id: Some(&id),
                camera_id: Some(&ev.camera_id),
            },
        )
        .await;
    let result = match result {
        Err(crate::describe::RunError::NoProvider) => {
            return Err(AppError::conflict(
                crate::describe::RunError::NoProvider.to_string(),
            ))
        }
        r => r,
    };
    let failed = match &result {
        Ok(o) if o.answer.is_none() => Some(
            o.error
                .clone()
                .unwrap_or_else(|| "no provider answered".into()),
        ),
        _ => None,
    };
    let desc = crate::describe::describe_result(result, true);
    let info = state
        .events
        .describe(&id, desc)
        .await?
        .ok_or_else(|| AppError::not_found("Event not found"))?;
    let dto = EventDto::from_info(&info);
    if let Some(why) = failed {
        return Err(AppError::new(ErrorKind::BadGateway, why));
    }
    ok(&dto)
}

/// Re-analyses allowed per event per hour.
const REANALYSES_PER_HOUR: u32 = 3;

/// Statistics query.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatsQuery {
    pub camera_id: Option<String>,
    /// Default: 30 days before `end_date`.
    pub start_date: Option<String>,
    /// Default: now.
    pub end_date: Option<String>,
    /// Minutes east of UTC for hour-of-day and day buckets: a multiple of 15 from -840 to 840
    /// (default 0).
    pub tz_offset_minutes: Option<i32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CameraCount {
    pub camera_id: String,
    pub camera_name: Option<String>,
    pub count: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DayCount {
    /// `YYYY-MM-DD` in the requested offset.
    pub date: String,
    pub count: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventStatsDto {
    pub start: String,
    pub end: String,
    pub total: u64,
    pub by_camera: Vec<CameraCount>,
    pub by_detection_type: HashMap<String, u64>,
    /// 24 counts, index = hour of day.
    pub by_hour: Vec<u64>,
    pub by_day: Vec<DayCount>,
}

/// Event counts by camera, type, hour of day and day.
#[utoipa::path(get, path = "/api/v1/events/stats", tag = "events", params(StatsQuery),
    responses((status = 200, body = EventStatsDto), (status = 422, body = super::ErrorBody)),
    security(("api_key" = ["read:events"]), ("bearer" = [])))]
pub async fn stats(ctx: Ctx, req: Request<Incoming>) -> AppResult<Response<Body>> {
    let q: StatsQuery = query(req.uri().query())?;
    let tz = q.tz_offset_minutes.unwrap_or(0);
    if !(-840..=840).contains(&tz) || tz % 15 != 0 {
        return Err(AppError::invalid(
            "tz_offset_minutes: a multiple of 15 between -840 and 840",
        ));
    }
    let now = ctx.state.clock.now_ms();
    let end = q
        .end_date
        .as_deref()
        .map(|v| parse_time_param("end_date", v, true))
        .transpose()?
        .unwrap_or(now);
    let start = q
        .start_date
        .as_deref()
        .map(|v| parse_time_param("start_date", v, false))
        .transpose()?
        .unwrap_or(end - 30 * 86_400_000);
    if start > end {
        return Err(AppError::invalid("end_date: must not be before start_date"));
    }
    let camera = q.camera_id.filter(|c| !c.is_empty());
    let (s, names) = ctx
        .state
        .store
        .read(move |c| {
            let s = rows::stats(c, camera.as_deref(), start, end, tz)?;
            Ok((s, crate::store::cameras::names(c)?))
        })
        .await?;
    let mut by_camera: Vec<CameraCount> = s
        .by_camera
        .into_iter()
        .map(|(id, count)| CameraCount {
            camera_name: names.get(&id).cloned(),
            camera_id: id,
            count,
        })
        .collect();
    by_camera.sort_by(|a, b| b.count.cmp(&a.count).then(a.camera_id.cmp(&b.camera_id)));
    ok(&EventStatsDto {
        start: crate::clock::format_rfc3339(start),
        end: crate::clock::format_rfc3339(end),
        total: s.total,
        by_camera,
        by_detection_type: s.by_detection_type.into_iter().collect(),
        by_hour: s.by_hour.to_vec(),
        by_day: s
            .by_day
            .into_iter()
            .map(|(date, count)| DayCount { date, count })
            .collect(),
    })
}

/// Quotes a CSV field when it needs it (RFC 4180).
pub fn csv_field(out: &mut String, v: &str) {
    if v.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&v.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(v);
    }
}

const CSV_HEADER: &str = "id,timestamp,camera_id,camera_name,detection_type,confidence,description,objects_detected,source_type,provider_used,thumbnail_url\r\n";

fn csv_row(out: &mut String, r: &EventRow, camera_name: &str) {
    let ts = crate::clock::format_rfc3339(r.ts);
    let thumb = r
        .thumbnail_path
        .as_ref()
        .map(|_| format!("/api/v1/events/{}/thumbnail", r.id))
        .unwrap_or_default();
    let confidence = r.confidence.to_string();
    let objects = r.objects_detected.join(";");
    let fields: [&str; 11] = [
        &r.id,
        &ts,
        &r.camera_id,
        camera_name,
        &r.detection_type,
        &confidence,
        r.description.as_deref().unwrap_or(""),
        &objects,
        &r.source_type,
        r.provider_used.as_deref().unwrap_or(""),
        &thumb,
    ];
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        csv_field(out, f);
    }
    out.push_str("\r\n");
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportFormat {
    /// Only `csv` (the default).
    pub format: Option<String>,
}

/// Export events as CSV (streamed).
#[utoipa::path(get, path = "/api/v1/events/export", tag = "events", params(ExportFormat, EventFilterQuery),
    responses((status = 200, content_type = "text/csv", description = "Every matching event, newest first, streamed"),
        (status = 422, body = super::ErrorBody)),
    security(("api_key" = ["read:events"]), ("bearer" = [])))]
pub async fn export(ctx: Ctx, req: Request<Incoming>) -> AppResult<Response<Body>> {
    let raw = req.uri().query().map(str::to_string);
    #[derive(Deserialize)]
    struct F {
        format: Option<String>,
    }
    let f: F = query(raw.as_deref())?;
    if let Some(fmt) = f.format.as_deref() {
        if fmt != "csv" {
            return Err(AppError::invalid("format: only csv is supported"));
        }
    }
    let (_, fq) = parse_list_query(raw.as_deref())?;
    let filter = fq.to_filter()?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, BoxError>>(4);
    let store = ctx.state.store.clone();
    tokio::task::spawn_blocking(move || {
        let mut buf = String::with_capacity(64 * 1024);
        buf.push_str(CSV_HEADER);
        let res = store.read_blocking(|c| {
            let names = crate::store::cameras::names(c)?;
            rows::for_each(c, &filter, |r| {
                let name = names.get(&r.camera_id).map(String::as_str).unwrap_or("");
                csv_row(&mut buf, &r, name);
                if buf.len() >= 60 * 1024 {
                    let chunk = Bytes::from(std::mem::take(&mut buf));
                    // A closed channel means the client went away: stop reading.
                    return tx.blocking_send(Ok(chunk)).is_ok();
                }
                true
            })
        });
        match res {
            Ok(()) => {
                if !buf.is_empty() {
                    let _ = tx.blocking_send(Ok(Bytes::from(buf)));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "CSV export failed part-way");
                let _ = tx.blocking_send(Err(Box::new(e)));
            }
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item.map(Frame::data), rx))
    });
    let body = StreamBody::new(stream).boxed();
    let day = crate::clock::utc_day(ctx.state.clock.now_ms());
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header(CONTENT_TYPE, "text/csv; charset=utf-8")
        .header(
            CONTENT_DISPOSITION,
            format!("attachment; filename=\"argus-events-{day}.csv\""),
        )
        .body(body)
        .expect("static headers are valid"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quoting() {
        let mut s = String::new();
        csv_field(&mut s, "plain");
        s.push('|');
        csv_field(&mut s, "a, \"quoted\"\nline");
        assert_eq!(s, "plain|\"a, \"\"quoted\"\"\nline\"");
    }
}
