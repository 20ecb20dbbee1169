//! `/alert-rules`: the owner's rules (ArgusAI's shapes): list, create, get, partial update,
//! delete, and a dry run over the last stored events. Webhook header values are sealed at rest
//! and never returned; a rule's webhook signing secret is shown once, when its webhook is set.

use super::{check_uuid, Ctx};
use crate::alerts::rules::{self, Conditions};
use crate::alerts::sign;
use crate::api::body::{created, no_content, ok, query, read_json, Body};
use crate::error::{AppError, AppResult};
use crate::store::alerts::{self as sql, AlertRuleRow};
use hyper::body::Incoming;
use hyper::{Request, Response};
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};

/// Distinguishes a field that is absent (keep) from one that is `null` (remove).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// A webhook action as sent by a client.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookIn {
    /// `http` or `https`, at most 2000 characters. LAN hosts are allowed; link-local and
    /// multicast addresses are refused.
    pub url: String,
    /// Extra request headers (at most 20). On update, leave out to keep the stored ones.
    pub headers: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActionsIn {
    /// An in-app notification (and `notification.new` on `/ws`); default true.
    #[serde(default = "yes")]
    pub dashboard_notification: bool,
    /// POST the event to this URL; `null` for none.
    pub webhook: Option<WebhookIn>,
    /// Publish the alert to the MQTT broker (`<topic_prefix>/<node_id>/alerts`); default false.
    #[serde(default)]
    pub mqtt: bool,
}

fn yes() -> bool {
    true
}

impl Default for ActionsIn {
    fn default() -> Self {
        ActionsIn {
            dashboard_notification: true,
            webhook: None,
            mqtt: false,
        }
    }
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertRuleCreate {
    /// 1-200 characters.
    pub name: String,
    #[serde(default = "yes")]
    pub is_enabled: bool,
    /// All conditions must hold; inside one list, any entry will do.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub conditions: Conditions,
    #[serde(default)]
    pub actions: ActionsIn,
    /// Minutes after firing during which the rule stays quiet (0-1440, default 5).
    #[serde(default = "five")]
    pub cooldown_minutes: u32,
}

fn five() -> u32 {
    5
}

/// A partial update: fields left out stay as they are.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertRuleUpdate {
    pub name: Option<String>,
    pub is_enabled: Option<bool>,
    #[schema(value_type = Option<Object>)]
    pub conditions: Option<Conditions>,
    pub dashboard_notification: Option<bool>,
    /// Replaces the webhook; `null` removes it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<WebhookIn>)]
    pub webhook: Option<Option<WebhookIn>>,
    /// Publish alerts to the MQTT broker.
    pub mqtt: Option<bool>,
    /// The ArgusAI form: `{dashboard_notification, webhook, mqtt}` together.
    pub actions: Option<ActionsIn>,
    pub cooldown_minutes: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookOut {
    pub url: String,
    /// Header names with their values masked.
    pub headers: BTreeMap<String, String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ActionsOut {
    pub dashboard_notification: bool,
    pub webhook: Option<WebhookOut>,
    pub mqtt: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AlertRuleDto {
    pub id: String,
    pub name: String,
    pub is_enabled: bool,
    #[schema(value_type = Object)]
    pub conditions: serde_json::Value,
    pub actions: ActionsOut,
    pub cooldown_minutes: u32,
    pub last_triggered_at: Option<String>,
    pub trigger_count: u64,
    pub created_at: String,
    pub updated_at: String,
    /// The webhook signing secret: only in the answer that set the rule's first webhook.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_secret: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AlertRuleList {
    pub data: Vec<AlertRuleDto>,
    pub total_count: u64,
}

fn to_dto(ctx: &Ctx, r: AlertRuleRow, secret: Option<String>) -> AlertRuleDto {
    let headers: BTreeMap<String, String> = r
        .webhook_headers
        .as_deref()
        .and_then(|s| ctx.state.keys.unseal(s).ok())
        .and_then(|b| serde_json::from_slice::<BTreeMap<String, String>>(&b).ok())
        .unwrap_or_default()
        .into_keys()
        .map(|k| (k, "********".to_string()))
        .collect();
    AlertRuleDto {
        conditions: serde_json::from_str(&r.conditions).unwrap_or_default(),
        actions: ActionsOut {
            dashboard_notification: r.dashboard_notification,
            webhook: r.webhook_url.clone().map(|url| WebhookOut { url, headers }),
            mqtt: r.mqtt,
        },
        last_triggered_at: r.last_triggered_at.map(crate::clock::format_rfc3339),
        created_at: crate::clock::format_rfc3339(r.created_at),
        updated_at: crate::clock::format_rfc3339(r.updated_at),
        id: r.id,
        name: r.name,
        is_enabled: r.is_enabled,
        cooldown_minutes: r.cooldown_minutes,
        trigger_count: r.trigger_count,
        webhook_secret: secret,
    }
}

fn check_name(name: &str) -> AppResult<String> {
    let n = name.trim();
    if n.is_empty() || n.chars().count() > 200 {
        return Err(AppError::invalid("name: 1 to 200 characters"));
    }
    Ok(n.to_string())
}

fn check_cooldown(m: u32) -> AppResult<u32> {
    if m > 1440 {
        return Err(AppError::invalid(
            "cooldown_minutes: between 0 and 1440 (a day)",
        ));
    }
    Ok(m)
}

/// Validates and normalises conditions; every listed camera must exist.
async fn check_conditions(ctx: &Ctx, c: Conditions) -> AppResult<Conditions> {
    let c = rules::prepare(c).map_err(AppError::invalid)?;
    let wanted = c.cameras.clone();
    if !wanted.is_empty() {
        let known = ctx
            .state
            .store
            .read(|c| crate::store::cameras::list(c, None))
            .await?;
        for (i, id) in wanted.iter().enumerate() {
            if !known.iter().any(|k| &k.id == id) {
                return Err(AppError::invalid(format!(
                    "conditions.cameras[{i}]: no camera {id}"
                )));
            }
        }
    }
    Ok(c)
}

fn check_webhook(w: &WebhookIn) -> AppResult<()> {
    sign::check_webhook_url(&w.url, "actions.webhook.url").map_err(AppError::invalid)?;
    if let Some(h) = &w.headers {
        sign::check_headers(h, "actions.webhook.headers").map_err(AppError::invalid)?;
    }
    Ok(())
}

fn seal_headers(ctx: &Ctx, h: &BTreeMap<String, String>) -> Option<Vec<u8>> {
    if h.is_empty() {
        return None;
    }
    let json = serde_json::to_vec(h).ok()?;
    Some(ctx.state.keys.seal(&json))
}

/// Sets a rule's webhook; a rule that had none gets a new signing secret (returned).
fn apply_webhook(ctx: &Ctx, row: &mut AlertRuleRow, w: Option<&WebhookIn>) -> Option<String> {
    match w {
        None => {
            row.webhook_url = None;
            row.webhook_headers = None;
            None
        }
        Some(w) => {
            row.webhook_url = Some(w.url.trim().to_string());
            if let Some(h) = &w.headers {
                row.webhook_headers = seal_headers(ctx, h);
            }
            if row.webhook_secret.is_none() {
                let secret = sign::new_webhook_secret();
                row.webhook_secret = Some(ctx.state.keys.seal(secret.as_bytes()));
                Some(secret)
            } else {
                None
            }
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RuleListQuery {
    /// Only enabled (true) or disabled (false) rules.
    pub is_enabled: Option<bool>,
}

/// List alert rules.
#[utoipa::path(get, path = "/api/v1/alert-rules", tag = "alerts", params(RuleListQuery),
    responses((status = 200, body = AlertRuleList)),
    security(("api_key" = ["admin"]), ("bearer" = [])))]
pub async fn list(ctx: Ctx, req: Request<Incoming>) -> AppResult<Response<Body>> {
    let q: RuleListQuery = query(req.uri().query())?;
    let rows = ctx
        .state
        .store
        .read(move |c| sql::list_rules(c, q.is_enabled))
        .await?;
    let data: Vec<AlertRuleDto> = rows.into_iter().map(|r| to_dto(&ctx, r, None)).collect();
    ok(&AlertRuleList {
        total_count: data.len() as u64,
        data,
    })
}

/// Create an alert rule (201). With a webhook, the answer carries the signing secret, once.
#[utoipa::path(post, path = "/api/v1/alert-rules", tag = "alerts", request_body = AlertRuleCreate,
    responses((status = 201, body = AlertRuleDto), (status = 422, body = super::ErrorBody)),
    security(("api_key" = ["admin"]), ("bearer" = [])))]
pub async fn create(ctx: Ctx, req: Request<Incoming>) -> AppResult<Response<Body>> {
    let b: AlertRuleCreate = read_json(req, ctx.body_limit()).await?;
    let name = check_name(&b.name)?;
    let cooldown = check_cooldown(b.cooldown_minutes)?;
    if let Some(w) = &b.actions.webhook {
        check_webhook(w)?;
    }
    let conditions = check_conditions(&ctx, b.conditions).await?;
    let now = ctx.state.clock.now_ms();
    let mut row = AlertRuleRow {
        id: crate::crypto::new_uuid(),
        name,
        is_enabled: b.is_enabled,
        conditions: serde_json::to_string(&conditions).map_err(AppError::internal)?,
        dashboard_notification: b.actions.dashboard_notification,
        webhook_url: None,
        webhook_headers: None,
        webhook_secret: None,
        mqtt: b.actions.mqtt,
        cooldown_minutes: cooldown,
        last_triggered_at: None,
        trigger_count: 0,
        created_at: now,
        updated_at: now,
    };
    let secret = match &b.actions.webhook {
        Some(w) => apply_webhook(&ctx, &mut row, Some(w)),
        None => None,
    };
    let r = row.clone();
    ctx.state
        .store
        .write(move |c| sql::insert_rule(c, &r))
        .await?;
    tracing::info!(rule.id = %row.id, rule.name = %row.name, "alert rule created");
    created(&to_dto(&ctx, row, secret))
}

async fn load(ctx: &Ctx) -> AppResult<AlertRuleRow> {
    let id = ctx.param("id").to_string();
    check_uuid("Alert rule", &id)?;
    ctx.state
        .store
        .read(move |c| sql::get_rule(c, &id))
        .await
        .map_err(|e| match e {
            crate::store::StoreError::NotFound(_) => AppError::not_found("Alert rule not found"),
            e => e.into(),
        })
}

/// Get an alert rule.
#[utoipa::path(get, path = "/api/v1/alert-rules/{id}", tag = "alerts",
    params(("id" = String, Path, description = "Alert rule id")),
    responses((status = 200, body = AlertRuleDto), (status = 404, body = super::ErrorBody)),
    security(("api_key" = ["admin"]), ("bearer" = [])))]
pub async fn get(ctx: Ctx) -> AppResult<Response<Body>> {
    let row = load(&ctx).await?;
    ok(&to_dto(&ctx, row, None))
}

/// Update an alert rule: only the fields sent change.
#[utoipa::path(put, path = "/api/v1/alert-rules/{id}", tag = "alerts", request_body = AlertRuleUpdate,
    params(("id" = String, Path, description = "Alert rule id")),
    responses((status = 200, body = AlertRuleDto), (status = 404, body = super::ErrorBody),
        (status = 422, body = super::ErrorBody)),
    security(("api_key" = ["admin"]), ("bearer" = [])))]
pub async fn update(ctx: Ctx, req: Request<Incoming>) -> AppResult<Response<Body>> {
    let mut row = load(&ctx).await?;
    let u: AlertRuleUpdate = read_json(req, ctx.body_limit()).await?;
    if let Some(n) = &u.name {
        row.name = check_name(n)?;
    }
    if let Some(m) = u.cooldown_minutes {
        row.cooldown_minutes = check_cooldown(m)?;
    }
    if let Some(e) = u.is_enabled {
        row.is_enabled = e;
    }
    let (dashboard, webhook, mqtt) = match u.actions {
        Some(a) => (
            Some(a.dashboard_notification),
            Some(a.webhook),
            Some(a.mqtt),
        ),
        None => (u.dashboard_notification, u.webhook, u.mqtt),
    };
    if let Some(Some(w)) = &webhook {
        check_webhook(w)?;
    }
    if let Some(c) = u.conditions {
        let c = check_conditions(&ctx, c).await?;
        row.conditions = serde_json::to_string(&c).map_err(AppError::internal)?;
    }
    if let Some(d) = dashboard {
        row.dashboard_notification = d;
    }
    if let Some(m) = mqtt {
        row.mqtt = m;
    }
    let secret = match &webhook {
        Some(w) => apply_webhook(&ctx, &mut row, w.as_ref()),
        None => None,
    };
    row.updated_at = ctx.state.clock.now_ms();
    let r = row.clone();
    let found = ctx
        .state
        .store
        .write(move |c| sql::update_rule(c, &r))
        .await?;
    if !found {
        return Err(AppError::not_found("Alert rule not found"));
    }
    ok(&to_dto(&ctx, row, secret))
}

/// Delete an alert rule (its notifications stay, with the rule's name).
#[utoipa::path(delete, path = "/api/v1/alert-rules/{id}", tag = "alerts",
    params(("id" = String, Path, description = "Alert rule id")),
    responses((status = 204, description = "Deleted"), (status = 404, body = super::ErrorBody)),
    security(("api_key" = ["admin"]), ("bearer" = [])))]
pub async fn delete(ctx: Ctx) -> AppResult<Response<Body>> {
    let row = load(&ctx).await?;
    let id = row.id.clone();
    ctx.state
        .store
        .write(move |c| sql::delete_rule(c, &id))
        .await?;
    no_content()
}

#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleTestRequest {
    /// How many of the latest events to try (1-100, default 50).
    pub limit: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RuleTestResult {
    pub rule_id: String,
    pub events_tested: u64,
    pub events_matched: u64,
    pub matching_event_ids: Vec<String>,
}

/// Try a rule on the latest stored events (nothing fires, the cooldown is not used).
#[utoipa::path(post, path = "/api/v1/alert-rules/{id}/test", tag = "alerts",
    request_body = RuleTestRequest,
    params(("id" = String, Path, description = "Alert rule id")),
    responses((status = 200, body = RuleTestResult), (status = 404, body = super::ErrorBody),
        (status = 422, body = super::ErrorBody)),
    security(("api_key" = ["admin"]), ("bearer" = [])))]
pub async fn test(ctx: Ctx, req: Request<Incoming>) -> AppResult<Response<Body>> {
    let row = load(&ctx).await?;
    let b: RuleTestRequest = if req
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .is_some_and(|v| v.as_bytes() == b"0")
    {
        RuleTestRequest::default()
    } else {
        read_json(req, ctx.body_limit()).await?
    };
    let limit = b.limit.unwrap_or(50);
    if !(1..=100).contains(&limit) {
        return Err(AppError::invalid("limit: between 1 and 100"));
    }
    let c = crate::alerts::engine::conditions(&row)
        .ok_or_else(|| AppError::internal("the stored conditions do not parse"))?;
    let (events, _) = ctx
        .state
        .store
        .read(move |c| {
            crate::store::events::page(c, &crate::store::events::EventFilter::default(), limit, 0)
        })
        .await?;
    let matching: Vec<String> = events
        .iter()
        .filter(|e| rules::evaluate(&c, &crate::alerts::engine::facts(e)) == rules::Verdict::Match)
        .map(|e| e.id.clone())
        .collect();
    ok(&RuleTestResult {
        rule_id: row.id,
        events_tested: events.len() as u64,
        events_matched: matching.len() as u64,
        matching_event_ids: matching,
    })
}
