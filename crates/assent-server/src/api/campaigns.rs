//! Campaigns and the data they run on: estimates, recurring services, calls and imports.

use std::collections::BTreeMap;

use assent_core::merge::Template;
use assent_core::phone::E164;
use assent_store::*;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use super::ApiJson;
use crate::AppState;
use crate::auth::TenantAuth;
use crate::campaigns::settled;
use crate::error::{ApiError, ApiResult};
use crate::service::new_id;

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
    DateTime::parse_from_rfc3339(v)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| {
            ApiError::field(
                field,
                "must be an RFC 3339 time such as 2026-12-01T15:00:00Z",
            )
        })
}

pub async fn create(
    TenantAuth(t): TenantAuth,
    State(app): State<AppState>,
    ApiJson(b): ApiJson<NewCampaign>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let c = create_campaign(&app, &t, b).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"id": c.id, "status": c.status, "type": c.kind})),
    ))
}

/// Validates and saves a new campaign (the API's `POST /campaigns` and the web composer).
pub async fn create_campaign(app: &AppState, t: &Tenant, b: NewCampaign) -> ApiResult<Campaign> {
    let name = b.name.trim();
    if name.is_empty() {
        return Err(ApiError::field("name", "is required"));
    }
    let kind = match b.kind.as_str() {
        "marketing" => CampaignKind::Marketing,
        "unsold_estimates" => CampaignKind::UnsoldEstimates,
        "recurring_services" => CampaignKind::RecurringServices,
        "missed_calls" => CampaignKind::MissedCalls,
        _ => {
            return Err(ApiError::field(
                "type",
                "must be marketing, unsold_estimates, recurring_services or missed_calls",
            ));
        }
    };
    if b.body.trim().is_empty() {
        return Err(ApiError::field("body", "is required"));
    }
    Template::parse(&b.body).map_err(|e| ApiError::field("body", e.to_string()))?;
    let schedule = b.schedule.unwrap_or_default();
    let days = match kind {
        CampaignKind::UnsoldEstimates => {
            schedule
                .days_after
                .filter(|d| !d.is_empty())
                .ok_or_else(|| {
                    ApiError::field("schedule.days_after", "is required, e.g. [2, 7, 14]")
                })?
        }
        CampaignKind::RecurringServices => schedule
            .days_before
            .filter(|d| !d.is_empty())
            .ok_or_else(|| ApiError::field("schedule.days_before", "is required, e.g. [7, 1]"))?,
        _ => Vec::new(),
    };
    if days.iter().any(|d| *d > 3650) {
        return Err(ApiError::field("schedule", "days must be at most 3650"));
    }
    let send_at = b
        .send_at
        .as_deref()
        .map(|s| parse_time("send_at", s))
        .transpose()?;
    let now = app.clock.now();
    let c = Campaign {
        id: new_id(),
        tenant_id: t.id.clone(),
        name: name.to_string(),
        kind,
        body: b.body,
        tags: b
            .audience
            .map(|a| a.tags)
            .unwrap_or_default()
            .into_iter()
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
            .collect(),
        days,
        send_at,
        status: if kind == CampaignKind::Marketing {
            CampaignStatus::Scheduled
        } else {
            CampaignStatus::Active
        },
        created_at: now,
        resumed_at: Some(now),
    };
    app.store.save_campaign(&c).await?;
    app.wake.notify_one();
    Ok(c)
}

pub async fn list(
    TenantAuth(t): TenantAuth,
    State(app): State<AppState>,
) -> ApiResult<Json<Value>> {
    let cs = app.store.campaigns(&t.id).await?;
    Ok(Json(
        json!({"campaigns": cs.iter().map(|c| json!({"id": c.id, "name": c.name, "type": c.kind, "status": c.status, "created_at": c.created_at})).collect::<Vec<_>>()}),
    ))
}

async fn load(app: &AppState, t: &Tenant, id: &str) -> ApiResult<Campaign> {
    app.store
        .campaign(&t.id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("campaign"))
}

pub async fn report(
    TenantAuth(t): TenantAuth,
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let c = load(&app, &t, &id).await?;
    let log = app.store.send_log(&t.id, &id).await?;
    let mut counts: BTreeMap<String, u64> = [
        "queued",
        "deferred",
        "sending",
        "sent",
        "delivered",
        "undelivered",
        "failed",
        "blocked",
        "unknown",
        "expired",
        "skipped",
    ]
    .iter()
    .map(|s| (s.to_string(), 0))
    .collect();
    let mut skipped = Vec::new();
    let mut opted_out_after = 0;
    for r in &log {
        *counts.entry(r.status.as_str().to_string()).or_default() += 1;
        if r.status == "skipped" {
            skipped.push(json!({"phone": r.phone, "reason": r.reason}));
        }
        opted_out_after += u64::from(r.opted_out_after);
    }
    let mut counts = json!(counts);
    counts["opted_out_after"] = json!(opted_out_after);
    Ok(Json(json!({
        "id": c.id,
        "name": c.name,
        "type": c.kind,
        "status": c.status,
        "body": c.body,
        "send_at": c.send_at,
        "recipients": log.len(),
        "settled": log.iter().all(|r| settled(r.status)),
        "counts": counts,
        "skipped": skipped,
    })))
}

pub async fn recipients(
    TenantAuth(t): TenantAuth,
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    load(&app, &t, &id).await?;
    let log = app.store.send_log(&t.id, &id).await?;
    Ok(Json(json!(log
        .iter()
        .map(|r| json!({"phone": r.phone, "step": r.step, "message_id": r.message_id, "status": r.status, "reason": r.reason, "sent_at": r.sent_at, "opted_out_after": r.opted_out_after, "deferred_until": r.deferred_until}))
        .collect::<Vec<_>>())))
}

pub async fn pause(
    TenantAuth(t): TenantAuth,
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    pause_campaign(&app, &t, &id).await.map(Json)
}

/// Holds a campaign's queued messages (the API's pause and the web page's button).
pub async fn pause_campaign(app: &AppState, t: &Tenant, id: &str) -> ApiResult<Value> {
    let id = id.to_string();
    // The status moves first, only from what was read (the runner may move it meanwhile:
    // read again); then the queued messages are held. A fan-out writing meanwhile holds
    // its own pages once the status says paused.
    for _ in 0..10 {
        let c = load(app, t, &id).await?;
        match c.status {
            CampaignStatus::Finished => {
                return Err(ApiError::new(
                    crate::error::Code::Finished,
                    "a finished campaign cannot be paused",
                ));
            }
            CampaignStatus::Paused => return Ok(json!({"id": id, "status": c.status, "held": 0})),
            from => {
                if app
                    .store
                    .move_campaign(&t.id, &id, from, CampaignStatus::Paused, None)
                    .await?
                {
                    let held = app
                        .store
                        .hold_campaign(&t.id, &id, true, app.clock.now())
                        .await?;
                    return Ok(json!({"id": id, "status": CampaignStatus::Paused, "held": held}));
                }
            }
        }
    }
    Err(ApiError::new(
        crate::error::Code::CampaignBusy,
        "the campaign's status kept changing; try again",
    ))
}

pub async fn resume(
    TenantAuth(t): TenantAuth,
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    resume_campaign(&app, &t, &id).await.map(Json)
}

/// Releases a paused campaign's messages; nothing already sent goes again.
pub async fn resume_campaign(app: &AppState, t: &Tenant, id: &str) -> ApiResult<Value> {
    let id = id.to_string();
    let c = load(app, t, &id).await?;
    if c.status != CampaignStatus::Paused {
        return Ok(json!({"id": id, "status": c.status, "released": 0}));
    }
    let now = app.clock.now();
    let recorded = app.store.campaign_recorded(&t.id, &id).await?;
    let to = match c.kind {
        CampaignKind::Marketing if recorded => CampaignStatus::Sending,
        CampaignKind::Marketing => CampaignStatus::Scheduled,
        _ => CampaignStatus::Active,
    };
    // The status moves first, then the held messages go (only while it is not paused
    // again); someone else's resume or pause in between stands.
    if !app
        .store
        .move_campaign(&t.id, &id, CampaignStatus::Paused, to, Some(now))
        .await?
    {
        let c = load(app, t, &id).await?;
        return Ok(json!({"id": id, "status": c.status, "released": 0}));
    }
    let released = app.store.hold_campaign(&t.id, &id, false, now).await?;
    app.wake.notify_one();
    Ok(json!({"id": id, "status": to, "released": released}))
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
    match s {
        "unsold" => Ok(EstimateStatus::Unsold),
        "sold" => Ok(EstimateStatus::Sold),
        "dismissed" => Ok(EstimateStatus::Dismissed),
        _ => Err(ApiError::field(
            "status",
            "must be unsold, sold or dismissed",
        )),
    }
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
    let mut e = app
        .store
        .estimate(&t.id, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("estimate"))?;
    e.status = estimate_status(&b.status)?;
    app.store.save_estimate(&t.id, &e).await?;
    if e.status != EstimateStatus::Unsold {
        // Sold or dismissed: follow-ups not yet handed off are withdrawn at once.
        app.store
            .withdraw_estimate_steps(&t.id, &e.id, app.clock.now())
            .await?;
    }
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
    body: String,
) -> ApiResult<Json<Value>> {
    let report = crate::import::import_customers(&app, &t.id, &body, |_, _| {}).await?;
    Ok(Json(json!(report)))
}

pub async fn import_estimates(
    TenantAuth(t): TenantAuth,
    State(app): State<AppState>,
    body: String,
) -> ApiResult<Json<Value>> {
    Ok(Json(json!(
        crate::import::import_estimates(&app, &t, &body).await?
    )))
}

pub async fn import_recurring_services(
    TenantAuth(t): TenantAuth,
    State(app): State<AppState>,
    body: String,
) -> ApiResult<Json<Value>> {
    Ok(Json(json!(
        crate::import::import_recurring_services(&app, &t, &body).await?
    )))
}

pub async fn import_calls(
    TenantAuth(t): TenantAuth,
    State(app): State<AppState>,
    body: String,
) -> ApiResult<Json<Value>> {
    Ok(Json(json!(
        crate::import::import_calls(&app, &t, &body).await?
    )))
}
