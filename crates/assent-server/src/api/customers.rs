//! Customers, their contact methods' toggles, and opt-in requests from the customer record.

use assent_core::consent::Source;
use assent_core::phone::E164;
use assent_store::Customer;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::ApiJson;
use crate::AppState;
use crate::auth::TenantAuth;
use crate::error::{ApiError, ApiResult};
use crate::service;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewPhone {
    number: String,
    job_notifications: Option<bool>,
    marketing_updates: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewCustomer {
    name: String,
    #[serde(default)]
    phones: Vec<NewPhone>,
    address: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
}

pub fn customer_json(c: &Customer) -> Value {
    json!({
        "id": c.id,
        "name": c.name,
        "address": c.address,
        "tags": c.tags,
        "phones": c.phones,
        "created_at": c.created_at,
    })
}

pub async fn create(
    TenantAuth(t): TenantAuth,
    State(app): State<AppState>,
    ApiJson(b): ApiJson<NewCustomer>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let input = service::customers::NewCustomer {
        name: b.name,
        phones: b.phones.into_iter().map(NewPhone::into_service).collect(),
        address: b.address,
        tags: b.tags,
    };
    let customer = service::customers::create(&app, &t.id, input, API).await?;
    Ok((StatusCode::CREATED, Json(customer_json(&customer))))
}

const API: service::Who<'static> = service::Who {
    source: Source::Api,
    actor: "api",
};

impl NewPhone {
    fn into_service(self) -> service::customers::NewPhone {
        service::customers::NewPhone {
            number: self.number,
            job_notifications: self.job_notifications,
            marketing_updates: self.marketing_updates,
        }
    }
}

/// `POST /customers/{id}/phones` `{"number", "job_notifications"?, "marketing_updates"?}`
/// → 201 with the customer.
pub async fn add_phone(
    TenantAuth(t): TenantAuth,
    State(app): State<AppState>,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<NewPhone>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let p = b.into_service();
    let c = service::customers::add_phone(&app, &t.id, &id, &p, API)
        .await
        .map_err(|e| match e {
            service::Error::Invalid { message, .. } => ApiError::field("number", message),
            e => e.into(),
        })?;
    Ok((StatusCode::CREATED, Json(customer_json(&c))))
}

/// `DELETE /customers/{id}/phones/{phone}` → the customer without that phone. The phone's
/// consent and ledger are kept.
pub async fn remove_phone(
    TenantAuth(t): TenantAuth,
    State(app): State<AppState>,
    Path((id, phone)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let phone = path_phone(&phone)?;
    let c = service::customers::remove_phone(&app, &t.id, &id, &phone).await?;
    Ok(Json(customer_json(&c)))
}

pub async fn get(
    TenantAuth(t): TenantAuth,
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    match app.store.customer(&t.id, &id).await? {
        Some(c) => Ok(Json(customer_json(&c))),
        None => Err(ApiError::not_found("customer")),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Toggles {
    job_notifications: bool,
    marketing_updates: bool,
}

fn path_phone(s: &str) -> ApiResult<E164> {
    E164::parse(s).map_err(|e| ApiError::field("phone", e.to_string()))
}

pub async fn set_notifications(
    TenantAuth(t): TenantAuth,
    State(app): State<AppState>,
    Path((id, phone)): Path<(String, String)>,
    ApiJson(b): ApiJson<Toggles>,
) -> ApiResult<Json<Value>> {
    let phone = path_phone(&phone)?;
    let c = service::customers::set_toggles(
        &app,
        &t.id,
        &id,
        &phone,
        (b.job_notifications, b.marketing_updates),
        service::Who {
            source: Source::Api,
            actor: "api",
        },
    )
    .await?;
    let p = c.phones.iter().find(|p| p.number == phone);
    Ok(Json(json!(p)))
}

/// The answer for an opt-in request: its id and status, and when quiet hours hold it, why
/// and until when.
fn opt_in_answer(m: &assent_store::Message) -> Value {
    json!({
        "message_id": m.id,
        "status": m.status.as_str(),
        "reason": m.reason,
        "deferred_until": m.deferred_until(),
    })
}

pub async fn request_opt_in(
    TenantAuth(t): TenantAuth,
    State(app): State<AppState>,
    Path((id, phone)): Path<(String, String)>,
    headers: axum::http::HeaderMap,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let phone = path_phone(&phone)?;
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty());
    let who = service::Who {
        source: Source::CustomerRecord,
        actor: "api",
    };
    let m = service::customers::request_opt_in(&app, &t, &id, &phone, who, key).await?;
    Ok((StatusCode::CREATED, Json(opt_in_answer(&m))))
}
