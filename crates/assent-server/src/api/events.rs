//! `/webhook-endpoints`: the tenant's outbound-event endpoints and their delivery logs
//! (CONTRACT.md "Outbound events").

use assent_store::{Delivery, WebhookEndpoint};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use base64::Engine;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiJson, ApiQuery};
use crate::AppState;
use crate::auth::TenantAuth;
use crate::error::{ApiError, ApiResult};
use crate::service;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

pub fn endpoint_json(e: &WebhookEndpoint) -> Value {
    json!({"id": e.id, "url": e.url, "events": e.events, "created_at": e.created_at})
}

pub fn delivery_json(d: &Delivery) -> Value {
    let status = if d.delivered_at.is_some() {
        "delivered"
    } else if d.given_up_at.is_some() {
        "failed"
    } else {
        "pending"
    };
    json!({
        "id": d.id,
        "event_id": d.event_id,
        "type": d.event_type,
        "status": status,
        "attempts": d.attempts,
        "next_attempt_at": (status == "pending").then_some(d.next_attempt_at),
        "delivered_at": d.delivered_at,
        "last_error": d.last_error,
        "created_at": d.created_at,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    url: String,
    events: Vec<String>,
}

/// `POST /webhook-endpoints` → 201 with the endpoint and its `secret` (shown only here).
pub async fn create(
    TenantAuth(t): TenantAuth,
    State(app): State<AppState>,
    ApiJson(b): ApiJson<CreateBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let e = service::events::create_endpoint(&app, &t, &b.url, &b.events).await?;
    let mut v = endpoint_json(&e);
    v["secret"] = json!(e.secret);
    Ok((StatusCode::CREATED, Json(v)))
}

#[derive(Deserialize)]
pub struct PageQuery {
    limit: Option<String>,
    after: Option<String>,
}

impl PageQuery {
    fn limit(&self) -> ApiResult<u32> {
        match &self.limit {
            None => Ok(100),
            Some(v) => v
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=1000).contains(n))
                .ok_or_else(|| ApiError::field("limit", "must be a number from 1 to 1000")),
        }
    }
    fn after(&self) -> ApiResult<Option<String>> {
        self.after
            .as_deref()
            .map(|c| {
                B64.decode(c)
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .ok_or_else(|| ApiError::field("after", "is not a cursor from this list"))
            })
            .transpose()
    }
}

fn cursor(key: &str) -> String {
    B64.encode(key)
}

/// `GET /webhook-endpoints`: a page at a time, in id order.
pub async fn list(
    TenantAuth(t): TenantAuth,
    State(app): State<AppState>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<Value>> {
    let limit = q.limit()?;
    let after = q.after()?;
    let mut rows = app
        .store
        .webhook_endpoints(&t.id, after.as_deref(), limit + 1)
        .await?;
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let next = more.then(|| rows.last().map(|e| cursor(&e.id))).flatten();
    Ok(Json(json!({
        "webhook_endpoints": rows.iter().map(endpoint_json).collect::<Vec<_>>(),
        "next": next,
    })))
}

async fn endpoint(app: &AppState, tenant_id: &str, id: &str) -> ApiResult<WebhookEndpoint> {
    app.store
        .webhook_endpoint(tenant_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("webhook endpoint"))
}

pub async fn get_one(
    TenantAuth(t): TenantAuth,
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(endpoint_json(&endpoint(&app, &t.id, &id).await?)))
}

/// `DELETE /webhook-endpoints/{id}` → 204; its waiting deliveries are given up.
pub async fn delete(
    TenantAuth(t): TenantAuth,
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    if app
        .store
        .delete_webhook_endpoint(&t.id, &id, app.clock.now())
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("webhook endpoint"))
    }
}

/// `GET /webhook-endpoints/{id}/deliveries`: the delivery log, newest first, a page at a
/// time; `kept_days` says how long delivered and failed deliveries stay in it.
pub async fn deliveries(
    TenantAuth(t): TenantAuth,
    State(app): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<Value>> {
    let e = endpoint(&app, &t.id, &id).await?;
    let limit = q.limit()?;
    let before = match q.after()? {
        None => None,
        Some(s) => Some(
            s.parse::<i64>()
                .map_err(|_| ApiError::field("after", "is not a cursor from this list"))?,
        ),
    };
    let mut rows = app
        .store
        .deliveries(&t.id, &e.id, before, limit + 1)
        .await?;
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let next = more
        .then(|| rows.last().map(|d| cursor(&d.id.to_string())))
        .flatten();
    // How far back the log goes: delivered and failed deliveries are deleted after this.
    Ok(Json(json!({
        "deliveries": rows.iter().map(delivery_json).collect::<Vec<_>>(),
        "next": next,
        "kept_days": app.outbox_retention.num_days(),
    })))
}

/// `POST /webhook-endpoints/{id}/deliveries/{delivery}/resend`: delivers it again (same
/// event id), from now.
pub async fn resend(
    TenantAuth(t): TenantAuth,
    State(app): State<AppState>,
    Path((id, delivery)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let e = endpoint(&app, &t.id, &id).await?;
    let delivery: i64 = delivery
        .parse()
        .map_err(|_| ApiError::not_found("delivery"))?;
    if !app
        .store
        .resend_delivery(&t.id, &e.id, delivery, app.clock.now())
        .await?
    {
        return Err(ApiError::not_found("delivery"));
    }
    app.wake.notify_one();
    Ok(Json(json!({"id": delivery, "status": "pending"})))
}
