//! Customers, their contact methods' toggles, and opt-in requests from the customer record.

use assent_core::consent::Source;
use assent_core::phone::E164;
use assent_store::{ContactMethod, Customer};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::ApiJson;
use crate::AppState;
use crate::auth::TenantAuth;
use crate::error::{ApiError, ApiResult};
use crate::service::{self, toggle_entries};

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
    let name = b.name.trim();
    if name.is_empty() {
        return Err(ApiError::field("name", "is required"));
    }
    let now = app.clock.now();
    let mut phones: Vec<ContactMethod> = Vec::new();
    for (i, p) in b.phones.iter().enumerate() {
        let number = E164::parse(&p.number)
            .map_err(|e| ApiError::field(&format!("phones[{i}].number"), e.to_string()))?;
        if phones.iter().any(|q| q.number == number) {
            return Err(ApiError::field(
                &format!("phones[{i}].number"),
                "is listed twice",
            ));
        }
        // A customer who gives a number for service expects to hear about the job.
        phones.push(ContactMethod {
            number,
            job_notifications: p.job_notifications.unwrap_or(true),
            marketing_updates: p.marketing_updates.unwrap_or(false),
        });
    }
    let tags: Vec<String> = b
        .tags
        .iter()
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .collect();
    let customer = Customer {
        id: service::new_id(),
        name: name.to_string(),
        address: b
            .address
            .map(|a| a.trim().to_string())
            .filter(|a| !a.is_empty()),
        tags,
        phones,
        created_at: now,
    };
    let ledger: Vec<_> = customer
        .phones
        .iter()
        .flat_map(|p| {
            toggle_entries(
                &p.number,
                None,
                (p.job_notifications, p.marketing_updates),
                Source::Api,
                "api",
                now,
            )
        })
        .collect();
    app.store.create_customer(&t.id, &customer, &ledger).await?;
    Ok((StatusCode::CREATED, Json(customer_json(&customer))))
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
