//! Tenants, senders, registrations and settings.

use assent_core::Tz;
use assent_core::gate::RegistrationStatus;
use assent_store::{Registration, RegistrationKind, Settings};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::ApiJson;
use crate::AppState;
use crate::auth::{Operator, TenantAuth};
use crate::error::{ApiError, ApiResult};
use crate::service::registrations;
use crate::service::tenants::{self, SenderField};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewTenant {
    pub name: String,
    pub time_zone: Option<String>,
    /// Another tenant may already have this name; without it a duplicate is a 409.
    #[serde(default)]
    pub allow_duplicate_name: bool,
}

pub async fn create(
    _: Operator,
    State(app): State<AppState>,
    ApiJson(body): ApiJson<NewTenant>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let (t, key) = tenants::create(
        &app,
        &body.name,
        body.time_zone.as_deref(),
        body.allow_duplicate_name,
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(
            json!({"id": t.id, "slug": t.slug, "name": t.name, "time_zone": t.time_zone.name(), "api_key": key}),
        ),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendersBody {
    transactional: Option<String>,
    marketing: Option<String>,
}

pub async fn put_senders(
    TenantAuth(t): TenantAuth,
    State(app): State<AppState>,
    ApiJson(b): ApiJson<SendersBody>,
) -> ApiResult<Json<Value>> {
    // A field left out keeps its number: changing one sender must not unset the other.
    fn field(v: &Option<String>) -> SenderField<'_> {
        v.as_deref().map_or(SenderField::Keep, SenderField::Set)
    }
    let senders =
        tenants::set_senders(&app, &t, field(&b.transactional), field(&b.marketing)).await?;
    Ok(Json(json!(senders)))
}

pub async fn get_senders(TenantAuth(t): TenantAuth) -> Json<Value> {
    Json(json!(t.senders))
}

/// A registration as `GET /registrations` shows it; `decided_by` says who decides a
/// submitted one: `twilio` (Assent reads Twilio's decision) or `operator`.
fn reg_json(app: &AppState, r: &Option<Registration>) -> Value {
    match r {
        Some(r) => {
            let by = if registrations::twilio_decides(app, r) {
                "twilio"
            } else {
                "operator"
            };
            json!({"status": r.status.as_str(), "reason": r.reason, "updated_at": r.updated_at,
                "details": r.details, "decided_by": by})
        }
        None => json!({"status": "not_submitted"}),
    }
}

pub async fn registrations(
    TenantAuth(t): TenantAuth,
    State(app): State<AppState>,
) -> ApiResult<Json<Value>> {
    let r = app.store.registrations(&t.id).await?;
    Ok(Json(
        json!({"texting": reg_json(&app, &r.texting), "marketing": reg_json(&app, &r.marketing)}),
    ))
}

/// Asks Twilio for its decision now (the hourly check, on demand).
pub async fn check_registration(
    TenantAuth(t): TenantAuth,
    State(app): State<AppState>,
    Path(kind): Path<String>,
) -> ApiResult<Json<Value>> {
    let kind = kind_of(&kind)?;
    let c = registrations::check_with_twilio(&app, &t.id, kind).await?;
    Ok(Json(
        json!({"status": c.status.as_str(), "reason": c.reason,
        "twilio_status": c.twilio_status, "changed": c.changed}),
    ))
}

fn kind_of(kind: &str) -> ApiResult<RegistrationKind> {
    registrations::kind_of(kind).ok_or_else(|| ApiError::not_found("registration kind"))
}

pub async fn submit_registration(
    TenantAuth(t): TenantAuth,
    State(app): State<AppState>,
    Path(kind): Path<String>,
    ApiJson(body): ApiJson<Value>,
) -> ApiResult<Json<Value>> {
    let kind = kind_of(&kind)?;
    registrations::submit(&app, &t.id, kind, body).await?;
    Ok(Json(json!({"status": "pending"})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    status: String,
    reason: Option<String>,
}

pub async fn decide_registration(
    _: Operator,
    State(app): State<AppState>,
    Path((id, kind)): Path<(String, String)>,
    ApiJson(b): ApiJson<Decision>,
) -> ApiResult<Json<Value>> {
    let kind = kind_of(&kind)?;
    // The id, or the slug (what an operator sees).
    let tenant = match app.store.tenant(&id).await? {
        Some(t) => t,
        None => app
            .store
            .tenant_by_slug(&id)
            .await?
            .ok_or_else(|| ApiError::not_found("tenant"))?,
    };
    let id = tenant.id;
    let status = match b.status.as_str() {
        "approved" => RegistrationStatus::Approved,
        "rejected" => RegistrationStatus::Rejected,
        _ => return Err(ApiError::field("status", "must be approved or rejected")),
    };
    registrations::decide(&app, &id, kind, status, b.reason.clone()).await?;
    Ok(Json(json!({"status": status.as_str(), "reason": b.reason})))
}

/// The settings, with the business name and time zone beside them.
fn settings_json(settings: &Settings, name: &str, time_zone: Tz) -> Value {
    let mut v = json!(settings);
    v["business_name"] = json!(name);
    v["time_zone"] = json!(time_zone.name());
    v
}

pub async fn get_settings(
    TenantAuth(t): TenantAuth,
    State(app): State<AppState>,
) -> ApiResult<Json<Value>> {
    let mut v = settings_json(&t.settings, &t.name, t.time_zone);
    v["account_sid"] = json!(account_sid(&app, &t.id).await?);
    Ok(Json(v))
}

/// The tenant's account SID for the Twilio-compatible API.
async fn account_sid(app: &AppState, tenant_id: &str) -> ApiResult<Option<String>> {
    Ok(app
        .store
        .twilio_account(tenant_id)
        .await?
        .map(|a| a.account_sid))
}

/// Merges the given keys into the current settings; unknown keys are refused by name.
pub async fn put_settings(
    TenantAuth(t): TenantAuth,
    State(app): State<AppState>,
    ApiJson(patch): ApiJson<Value>,
) -> ApiResult<Json<Value>> {
    let Value::Object(mut patch) = patch else {
        return Err(ApiError::field("body", "must be a JSON object"));
    };
    // The business name and time zone live on the tenant, not in its settings.
    let mut profile_field = |key: &str| -> ApiResult<Option<String>> {
        match patch.remove(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(ApiError::field(key, "must be a string")),
        }
    };
    let name = profile_field("business_name")?;
    let time_zone = profile_field("time_zone")?;
    // Read-only: a GET's answer sent back whole is taken, a changed SID is not.
    let sid = account_sid(&app, &t.id).await?;
    if let Some(given) = patch.remove("account_sid")
        && given.as_str() != sid.as_deref()
    {
        return Err(ApiError::field("account_sid", "is read-only"));
    }
    let (name, time_zone) =
        crate::service::settings::check_profile(&t, name.as_deref(), time_zone.as_deref())?;
    let mut current = json!(t.settings);
    let known: Vec<String> = current
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    for (k, v) in patch {
        if !known.contains(&k) {
            return Err(ApiError::field(&k, "is not a setting"));
        }
        // Named here rather than in serde's words for the whole body.
        if k == "reassigned_check_days" && v.as_u64().is_none_or(|n| n > 365) {
            return Err(ApiError::field(
                &k,
                "must be a whole number of days from 0 (check every consent) to 365",
            ));
        }
        current[k.as_str()] = v;
    }
    let settings: Settings =
        serde_json::from_value(current).map_err(|e| ApiError::field("settings", e.to_string()))?;
    let settings = crate::service::settings::update(&app, &t, settings).await?;
    crate::service::settings::update_profile(&app, &t, &name, time_zone).await?;
    let mut v = settings_json(&settings, &name, time_zone);
    v["account_sid"] = json!(sid);
    Ok(Json(v))
}

/// Approves (or otherwise decides) a registration without a submitted form: for the demo
/// and benchmarks, which stand in for the operator.
pub async fn decide_registration_for(
    app: &AppState,
    tenant_id: &str,
    kind: RegistrationKind,
    status: RegistrationStatus,
) -> ApiResult<()> {
    Ok(registrations::decide(app, tenant_id, kind, status, None).await?)
}

/// `GET /twilio/check`: what Twilio's API says about the tenant's senders, each finding
/// with what to change (see [`crate::twilio_check`]). 404 when the provider is not Twilio;
/// a check that could not run (Twilio unreachable, credentials refused) answers `ok`
/// false with the reason in `error`.
pub async fn twilio_check(
    TenantAuth(t): TenantAuth,
    State(app): State<AppState>,
) -> ApiResult<Json<Value>> {
    let Some(account) = &app.twilio_account else {
        return Err(ApiError::not_found("twilio"));
    };
    match crate::twilio_check::check(account, &t, &app.config.public_url).await {
        Ok(findings) => Ok(Json(json!({
            "ok": findings.iter().all(|f| f.level != crate::twilio_check::Level::Problem),
            "findings": findings,
        }))),
        Err(e) => Ok(Json(json!({"ok": false, "error": e, "findings": []}))),
    }
}
