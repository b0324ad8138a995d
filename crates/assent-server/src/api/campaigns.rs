//! Campaigns and the data they run on: estimates, recurring services, calls and imports.

use std::collections::BTreeMap;

use assent_core::phone::E164;
use assent_store::*;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiJson, ApiQuery};
use crate::AppState;
use crate::auth::TenantAuth;
use crate::error::{ApiError, ApiResult};
use crate::service::{self, new_id};

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Audience {
    #[serde(default)]
    tags: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    days_after: Option<Vec<u32>>,
    days_before: Option<Vec<u32>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewCampaign {
    name: String,
    #[serde(rename = "type")]
    kind: String,
    body: String,
    audience: Option<Audience>,
    send_at: Option<String>,
    schedule: Option<Schedule>,
}

fn parse_time(field: &str, v: &str) -> ApiResult<DateTime<Utc>> {
    Ok(service::campaigns::parse_time(field, v)?)
}

/// The service's campaign request from the API's JSON.
pub fn spec(b: NewCampaign) -> service::campaigns::NewCampaign {
    let schedule = b.schedule.unwrap_or_default();
    service::campaigns::NewCampaign {
        name: b.name,
        kind: b.kind,
        body: b.body,
        tags: b.audience.map(|a| a.tags).unwrap_or_default(),
        send_at: b.send_at,
        days_after: schedule.days_after,
        days_before: schedule.days_before,
    }
}

pub async fn create(
    TenantAuth(t): TenantAuth,
    State(app): State<AppState>,
    ApiJson(b): ApiJson<NewCampaign>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let c = service::campaigns::create(&app, &t, spec(b)).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"id": c.id, "status": c.status, "type": c.kind})),
    ))
}

/// `POST /campaigns/preview`: the campaign `POST /campaigns` would create, counted and not
/// saved (see [`crate::preview`]).
pub async fn preview(
    TenantAuth(t): TenantAuth,
    State(app): State<AppState>,
    ApiJson(b): ApiJson<NewCampaign>,
) -> ApiResult<Json<Value>> {
    let c = service::campaigns::validate(&app, &t, spec(b))?;
    let p = crate::preview::preview(&app, &t, &c, crate::campaigns::PAGE).await?;
    let mut v = json!(p);
    // What a customer receives, filled for a sample customer: for marketing, the brand in
    // front and the footer; and what it costs.
    if let Ok(shown) = crate::web::campaigns::preview_for(&t, &c.body, c.kind) {
        v["body"] = json!(shown.body);
        v["segments"] = json!(shown.segments);
        v["encoding"] = json!(shown.encoding);
    }
    Ok(Json(v))
}

async fn load(app: &AppState, t: &Tenant, id: &str) -> ApiResult<Campaign> {
    Ok(service::campaigns::load(app, t, id).await?)
}

pub async fn report(
    TenantAuth(t): TenantAuth,
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let r = service::campaigns::report(&app, &t, &id).await?;
    // Every status is counted, nobody's as 0.
    let mut counts: BTreeMap<String, u64> = SendStatus::TEXTS
        .iter()
        .map(|s| (s.to_string(), 0))
        .collect();
    counts.extend(r.counts.iter().map(|(s, n)| (s.to_string(), *n)));
    let mut counts = json!(counts);
    counts["opted_out_after"] = json!(r.opted_out_after);
    let skipped: Vec<Value> = r
        .skipped
        .iter()
        .map(|s| json!({"phone": s.phone, "reason": s.reason}))
        .collect();
    let c = &r.campaign;
    Ok(Json(json!({
        "id": c.id,
        "name": c.name,
        "type": c.kind,
        "status": c.status,
        "body": c.body,
        "send_at": c.send_at,
        "recipients": r.recipients,
        "settled": r.settled(),
        "counts": counts,
        "skipped_by_reason": r.skipped_by_reason,
        "skipped": skipped,
    })))
}

/// A list page's query: kept as text so a bad value is refused naming its field.
#[derive(Deserialize)]
pub struct LogQuery {
    status: Option<String>,
    limit: Option<String>,
    after: Option<String>,
}

/// A list's `limit`: 100 when absent, 1 to 1000.
fn page_limit(limit: Option<&str>) -> ApiResult<usize> {
    Ok(service::pages::limit(limit, 100)?)
}

pub async fn recipients(
    TenantAuth(t): TenantAuth,
    State(app): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<LogQuery>,
) -> ApiResult<Json<Value>> {
    let limit = page_limit(q.limit.as_deref())?;
    let status = match q.status.as_deref() {
        None | Some("") => None,
        Some(s) => Some(s.parse::<SendStatus>().map_err(|_| {
            ApiError::field(
                "status",
                format!("must be one of {}", SendStatus::TEXTS.join(", ")),
            )
        })?),
    };
    let after =
        match q.after.as_deref() {
            None | Some("") => None,
            Some(a) => Some(service::campaigns::parse_log_cursor(a).ok_or_else(|| {
                ApiError::field("after", "is not a cursor from this list's `next`")
            })?),
        };
    load(&app, &t, &id).await?;
    let page = app
        .store
        .send_log_page(&t.id, &id, status, after.as_ref(), limit)
        .await?;
    let rows: Vec<Value> = page
        .rows
        .iter()
        .map(|r| json!({"phone": r.phone, "step": r.step, "message_id": r.message_id, "status": r.status, "reason": r.reason, "sent_at": r.sent_at, "opted_out_after": r.opted_out_after, "deferred_until": r.deferred_until}))
        .collect();
    Ok(Json(json!({
        "recipients": rows,
        "next": page.next.as_ref().map(service::campaigns::log_cursor),
    })))
}

pub async fn pause(
    TenantAuth(t): TenantAuth,
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let m = service::campaigns::pause(&app, &t, &id).await?;
    Ok(Json(
        json!({"id": id, "status": m.status, "held": m.messages}),
    ))
}

pub async fn resume(
    TenantAuth(t): TenantAuth,
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let m = service::campaigns::resume(&app, &t, &id).await?;
    Ok(Json(
        json!({"id": id, "status": m.status, "released": m.messages}),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewEstimate {
    customer_id: String,
    phone: Option<String>,
    number: Option<String>,
    amount_cents: i64,
    status: Option<String>,
    created_at: Option<String>,
}

fn estimate_status(s: &str) -> ApiResult<EstimateStatus> {
    Ok(service::campaigns::estimate_status(s)?)
}

pub async fn create_estimate(
    TenantAuth(t): TenantAuth,
    State(app): State<AppState>,
    ApiJson(b): ApiJson<NewEstimate>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let customer = app
        .store
        .customer(&t.id, &b.customer_id)
        .await?
        .ok_or_else(|| ApiError::field("customer_id", "no such customer"))?;
    let phone = b
        .phone
        .as_deref()
        .map(|p| E164::parse(p).map_err(|e| ApiError::field("phone", e.to_string())))
        .transpose()?;
    if let Some(p) = &phone
        && !customer.phones.iter().any(|c| &c.number == p)
    {
        return Err(ApiError::field(
            "phone",
            "is not one of the customer's phones",
        ));
    }
    if b.amount_cents < 0 {
        return Err(ApiError::field("amount_cents", "must not be negative"));
    }
    // An estimate with a number has the id an import gives it, so the API and CSV files
    // name the same estimate the same way (a later file can mark it sold).
    let id = match b.number.as_deref().map(str::trim).filter(|n| !n.is_empty()) {
        Some(n) => {
            let id = crate::import::keyed_id("est", &[n]);
            if app.store.estimate(&t.id, &id).await?.is_some() {
                return Err(ApiError::new(
                    crate::error::Code::EstimateExists,
                    format!(
                        "estimate {n:?} already exists as {id}; PATCH /estimates/{id} changes it"
                    ),
                ));
            }
            id
        }
        None => new_id(),
    };
    let e = Estimate {
        id,
        customer_id: customer.id,
        phone,
        number: b
            .number
            .map(|n| n.trim().to_string())
            .filter(|n| !n.is_empty()),
        amount_cents: b.amount_cents,
        status: estimate_status(b.status.as_deref().unwrap_or("unsold"))?,
        created_at: b
            .created_at
            .as_deref()
            .map(|s| parse_time("created_at", s))
            .transpose()?
            .unwrap_or_else(|| app.clock.now()),
    };
    app.store.save_estimate(&t.id, &e).await?;
    app.wake.notify_one();
    Ok((StatusCode::CREATED, Json(json!(e))))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EstimatePatch {
    status: String,
}

pub async fn patch_estimate(
    TenantAuth(t): TenantAuth,
    State(app): State<AppState>,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<EstimatePatch>,
) -> ApiResult<Json<Value>> {
    let e = service::campaigns::set_estimate_status(&app, &t, &id, &b.status).await?;
    Ok(Json(json!(e)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewRecurring {
    customer_id: String,
    name: String,
    due_on: String,
}

pub async fn create_recurring(
    TenantAuth(t): TenantAuth,
    State(app): State<AppState>,
    ApiJson(b): ApiJson<NewRecurring>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let customer = app
        .store
        .customer(&t.id, &b.customer_id)
        .await?
        .ok_or_else(|| ApiError::field("customer_id", "no such customer"))?;
    if b.name.trim().is_empty() {
        return Err(ApiError::field("name", "is required"));
    }
    let due_on = NaiveDate::parse_from_str(b.due_on.trim(), "%Y-%m-%d")
        .map_err(|_| ApiError::field("due_on", "must be a date YYYY-MM-DD"))?;
    let r = RecurringService {
        id: new_id(),
        customer_id: customer.id,
        name: b.name.trim().to_string(),
        due_on,
        created_at: app.clock.now(),
    };
    app.store.save_recurring_service(&t.id, &r).await?;
    app.wake.notify_one();
    Ok((StatusCode::CREATED, Json(json!(r))))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewCall {
    from: String,
    to: String,
    status: String,
    at: Option<String>,
}

pub async fn create_call(
    TenantAuth(t): TenantAuth,
    State(app): State<AppState>,
    ApiJson(b): ApiJson<NewCall>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let from = E164::parse(&b.from).map_err(|e| ApiError::field("from", e.to_string()))?;
    let to = E164::parse(&b.to).map_err(|e| ApiError::field("to", e.to_string()))?;
    let missed = match b.status.as_str() {
        "missed" => true,
        "answered" => false,
        _ => return Err(ApiError::field("status", "must be missed or answered")),
    };
    let at =
        b.at.as_deref()
            .map(|s| parse_time("at", s))
            .transpose()?
            .unwrap_or_else(|| app.clock.now());
    let call = Call {
        id: new_id(),
        from: from.clone(),
        to: to.clone(),
        missed,
        at,
    };
    app.store.save_call(&t.id, &call).await?;
    let texted_back = if missed && t.thread_of(&to).is_some() {
        crate::campaigns::missed_call(&app, &t, &from, at).await? > 0
    } else {
        false
    };
    Ok((
        StatusCode::CREATED,
        Json(
            json!({"id": call.id, "from": from, "to": to, "status": b.status, "at": at, "text_back_queued": texted_back}),
        ),
    ))
}

pub async fn import(
    TenantAuth(t): TenantAuth,
    State(app): State<AppState>,
    req: axum::extract::Request,
) -> ApiResult<Json<Value>> {
    let csv = crate::import::csv_body(&app, req).await?;
    let report = crate::import::import_customers(&app, &t.id, csv, |_| {}).await?;
    Ok(Json(json!(report)))
}

pub async fn import_estimates(
    TenantAuth(t): TenantAuth,
    State(app): State<AppState>,
    req: axum::extract::Request,
) -> ApiResult<Json<Value>> {
    let csv = crate::import::csv_body(&app, req).await?;
    Ok(Json(json!(
        crate::import::import_estimates(&app, &t, csv).await?
    )))
}

pub async fn import_recurring_services(
    TenantAuth(t): TenantAuth,
    State(app): State<AppState>,
    req: axum::extract::Request,
) -> ApiResult<Json<Value>> {
    let csv = crate::import::csv_body(&app, req).await?;
    Ok(Json(json!(
        crate::import::import_recurring_services(&app, &t, csv).await?
    )))
}

pub async fn import_calls(
    TenantAuth(t): TenantAuth,
    State(app): State<AppState>,
    req: axum::extract::Request,
) -> ApiResult<Json<Value>> {
    let csv = crate::import::csv_body(&app, req).await?;
    Ok(Json(json!(
        crate::import::import_calls(&app, &t, csv).await?
    )))
}
