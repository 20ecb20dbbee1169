//! In-app notifications (`/api/v1/notifications`): rule hits and cloud AI cost-cap notices,
//! stored in SQLite, listed, marked read and deleted; their `/ws` form (`notification.new`).

use super::{check_uuid, Ctx};
use crate::api::body::{no_content, ok, query, Body};
use crate::bus::Notice;
use crate::error::{AppError, AppResult};
use crate::store::alerts::{self as sql, NotificationRow};
use hyper::body::Incoming;
use hyper::{Request, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// The `data` of a `notification.new` message on `/ws`.
pub fn ws_data(n: &Notice) -> serde_json::Value {
    let mut v = serde_json::json!({
        "id": n.id,
        "type": n.kind,
        "event_id": n.event_id,
        "rule_id": n.rule_id,
        "rule_name": n.rule_name,
        "title": n.title,
        "event_description": n.event_description,
        "thumbnail_url": n.thumbnail_url,
        "read": false,
        "created_at": crate::clock::format_rfc3339(n.created_at),
    });
    if let (Some(obj), Some(extra)) = (v.as_object_mut(), n.extra.as_object()) {
        for (k, x) in extra {
            obj.entry(k.clone()).or_insert_with(|| x.clone());
        }
    }
    v
}

/// One notification as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct NotificationDto {
    pub id: String,
    /// `rule` (an alert rule matched) or `ai_cost` (a cloud AI cost cap).
    #[serde(rename = "type")]
    pub kind: String,
    pub event_id: Option<String>,
    pub rule_id: Option<String>,
    pub rule_name: Option<String>,
    pub title: Option<String>,
    /// The event's description (its first 200 characters) or the notice's text.
    pub event_description: Option<String>,
    /// A signed link to the event's snapshot, valid without an API key until it expires.
    pub thumbnail_url: Option<String>,
    pub read: bool,
    pub created_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct NotificationList {
    pub data: Vec<NotificationDto>,
    pub total_count: u64,
    pub unread_count: u64,
}

fn to_dto(ctx: &Ctx, n: NotificationRow, has_thumb: bool) -> NotificationDto {
    let thumbnail_url = match (&n.event_id, has_thumb) {
        (Some(id), true) => {
            let path = ctx.state.links.signed_path(id);
            Some(match ctx.state.links.base() {
                Some(b) => format!("{b}{path}"),
                None => path,
            })
        }
        _ => None,
    };
    NotificationDto {
        id: n.id,
        kind: n.kind,
        event_id: n.event_id,
        rule_id: n.rule_id,
        rule_name: n.rule_name,
        title: n.title,
        event_description: n.event_description,
        thumbnail_url,
        read: n.read,
        created_at: crate::clock::format_rfc3339(n.created_at),
    }
}

/// Notifications with whether their event still has a snapshot.
async fn with_thumbs(ctx: &Ctx, rows: Vec<NotificationRow>) -> AppResult<Vec<NotificationDto>> {
    let ids: Vec<Option<String>> = rows.iter().map(|n| n.event_id.clone()).collect();
    let thumbs = ctx
        .state
        .store
        .read(move |c| {
            Ok(ids
                .iter()
                .map(|id| {
                    id.as_ref().is_some_and(|id| {
                        crate::store::events::get(c, id).is_ok_and(|e| e.thumbnail_path.is_some())
                    })
                })
                .collect::<Vec<bool>>())
        })
        .await?;
    Ok(rows
        .into_iter()
        .zip(thumbs)
        .map(|(n, t)| to_dto(ctx, n, t))
        .collect())
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct NotificationQuery {
    /// Only read (true) or unread (false) notifications.
    pub read: Option<bool>,
    /// 1-100 (default 20).
    pub limit: Option<u32>,
    /// Notifications to skip (default 0).
    pub offset: Option<u64>,
}

/// List notifications, newest first.
#[utoipa::path(get, path = "/api/v1/notifications", tag = "notifications",
    params(NotificationQuery),
    responses((status = 200, body = NotificationList), (status = 422, body = super::ErrorBody)),
    security(("api_key" = ["read:events"]), ("bearer" = [])))]
pub async fn list(ctx: Ctx, req: Request<Incoming>) -> AppResult<Response<Body>> {
    let q: NotificationQuery = query(req.uri().query())?;
    let limit = q.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(AppError::invalid("limit: between 1 and 100"));
    }
    let offset = q.offset.unwrap_or(0);
    let (rows, total, unread) = ctx
        .state
        .store
        .read(move |c| sql::notifications_page(c, q.read, limit, offset))
        .await?;
    ok(&NotificationList {
        data: with_thumbs(&ctx, rows).await?,
        total_count: total,
        unread_count: unread,
    })
}

fn load_id(ctx: &Ctx) -> AppResult<String> {
    let id = ctx.param("id").to_string();
    check_uuid("Notification", &id)?;
    Ok(id)
}

/// Mark a notification read.
#[utoipa::path(patch, path = "/api/v1/notifications/{id}/read", tag = "notifications",
    params(("id" = String, Path, description = "Notification id")),
    responses((status = 200, body = NotificationDto), (status = 404, body = super::ErrorBody)),
    security(("api_key" = ["read:events"]), ("bearer" = [])))]
pub async fn mark_read(ctx: Ctx) -> AppResult<Response<Body>> {
    let id = load_id(&ctx)?;
    let row = ctx
        .state
        .store
        .write(move |c| {
            if !sql::mark_read(c, &id)? {
                return Ok(None);
            }
            sql::get_notification(c, &id).map(Some)
        })
        .await?
        .ok_or_else(|| AppError::not_found("Notification not found"))?;
    let mut dtos = with_thumbs(&ctx, vec![row]).await?;
    ok(&dtos.pop())
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MarkAllRead {
    pub success: bool,
    pub updated_count: u64,
}

/// Mark every notification read.
#[utoipa::path(patch, path = "/api/v1/notifications/mark-all-read", tag = "notifications",
    responses((status = 200, body = MarkAllRead)),
    security(("api_key" = ["read:events"]), ("bearer" = [])))]
pub async fn mark_all_read(ctx: Ctx) -> AppResult<Response<Body>> {
    let n = ctx.state.store.write(|c| sql::mark_all_read(c)).await?;
    ok(&MarkAllRead {
        success: true,
        updated_count: n,
    })
}

/// Delete a notification.
#[utoipa::path(delete, path = "/api/v1/notifications/{id}", tag = "notifications",
    params(("id" = String, Path, description = "Notification id")),
    responses((status = 204, description = "Deleted"), (status = 404, body = super::ErrorBody)),
    security(("api_key" = ["read:events"]), ("bearer" = [])))]
pub async fn delete(ctx: Ctx) -> AppResult<Response<Body>> {
    let id = load_id(&ctx)?;
    if !ctx
        .state
        .store
        .write(move |c| sql::delete_notification(c, &id))
        .await?
    {
        return Err(AppError::not_found("Notification not found"));
    }
    no_content()
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeleteAllQuery {
    /// Delete only the read ones (default false: all).
    pub read_only: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Deleted {
    pub success: bool,
    pub deleted_count: u64,
}

/// Delete all notifications, or only the read ones.
#[utoipa::path(delete, path = "/api/v1/notifications", tag = "notifications",
    params(DeleteAllQuery),
    responses((status = 200, body = Deleted)),
    security(("api_key" = ["read:events"]), ("bearer" = [])))]
pub async fn delete_all(ctx: Ctx, req: Request<Incoming>) -> AppResult<Response<Body>> {
    let q: DeleteAllQuery = query(req.uri().query())?;
    let read_only = q.read_only.unwrap_or(false);
    let n = ctx
        .state
        .store
        .write(move |c| sql::delete_notifications(c, read_only))
        .await?;
    ok(&Deleted {
        success: true,
        deleted_count: n,
    })
}
