//! Sending through the gate, reading a phone's messages, and the simulator's controls.

use std::sync::atomic::Ordering;

use assent_core::gate::{Purpose, Reason, RegistrationStatus};
use assent_core::phone::E164;
use assent_provider::simulator::Behavior;
use assent_store::{Message, MessageKind, Tenant};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiJson, ApiQuery};
use crate::AppState;
use crate::auth::TenantAuth;
use crate::error::{ApiError, ApiResult};
use crate::service;

/// Bodies longer than this (ten concatenated segments) are refused.
const MAX_BODY_CHARS: usize = 1530;

pub fn message_json(m: &Message) -> Value {
    json!({
        "id": m.id,
        "direction": m.direction,
        "channel": m.channel.as_str(),
        "from": m.from,
        "to": m.to,
        "body": m.body,
        "kind": m.kind,
        "purpose": m.purpose.map(|p| p.as_str()),
        "status": m.status.as_str(),
        "reason": m.reason,
        "provider_id": m.provider_id,
        "segments": m.segments,
        "deferred_until": m.deferred_until(),
        "created_at": m.created_at,
        "updated_at": m.updated_at,
    })
}

fn accepted_json(m: &Message) -> Value {
    let mut v = message_json(m);
    v["segments"] = json!(m.segments);
    v
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendBody {
    to: String,
    purpose: String,
    body: String,
}

/// A retry with an Idempotency-Key gets the first answer only if it is the same request:
/// a key reused for another message is a client's bug, and answering as if it had been
/// sent would hide that the second message never was.
fn same_request(t: &Tenant, existing: &Message, b: &SendBody, purpose: Purpose) -> ApiResult<()> {
    let same = E164::parse(&b.to).is_ok_and(|p| p == existing.phone)
        && existing.purpose == Some(purpose)
        && service::same_body(t, purpose, &existing.body, &b.body);
    if same {
        Ok(())
    } else {
        Err(ApiError::new(
            crate::error::Code::IdempotencyKeyReused,
            "this Idempotency-Key was used for another request",
        ))
    }
}

pub async fn send(
    TenantAuth(t): TenantAuth,
    State(app): State<AppState>,
    headers: HeaderMap,
    ApiJson(b): ApiJson<SendBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let purpose = Purpose::parse_api(&b.purpose).ok_or_else(|| {
        ApiError::field(
            "purpose",
            "must be job_notification, transactional_campaign, missed_call or marketing",
        )
    })?;
    if b.body.trim().is_empty() {
        return Err(ApiError::field("body", "is required"));
    }
    if b.body.chars().count() > MAX_BODY_CHARS {
        return Err(ApiError::field(
            "body",
            format!("is longer than {MAX_BODY_CHARS} characters"),
        ));
    }
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty());
    if let Some(k) = &key
        && let Some(existing) = app.store.message_by_idempotency_key(&t.id, k).await?
    {
        same_request(&t, &existing, &b, purpose)?;
        return Ok((StatusCode::ACCEPTED, Json(accepted_json(&existing))));
    }
    let refuse = |reason: Reason| {
        app.metrics.gate_refusals.fetch_add(1, Ordering::Relaxed);
        Err(ApiError::gate(reason))
    };
    let phone = match E164::parse(&b.to) {
        Ok(p) => p,
        Err(_) => {
            // The gate's order: registration first, then the number.
            let regs = app.store.registrations(&t.id).await?;
            if regs.texting_status() != RegistrationStatus::Approved {
                return refuse(Reason::TextingNotRegistered);
            }
            if purpose == Purpose::Marketing
                && regs.marketing_status() != RegistrationStatus::Approved
            {
                return refuse(Reason::MarketingNotRegistered);
            }
            return refuse(Reason::InvalidNumber);
        }
    };
    if t.sender(purpose.channel()).is_none() {
        return Err(ApiError::new(
            crate::error::Code::SenderNotConfigured,
            format!(
                "set a {} sender first (PUT /senders)",
                purpose.channel().as_str()
            ),
        ));
    }
    match service::send(
        &app,
        &t,
        &phone,
        purpose,
        &b.body,
        MessageKind::Api,
        key.clone(),
    )
    .await
    {
        Ok(Ok(m)) => {
            app.metrics.api_sends.fetch_add(1, Ordering::Relaxed);
            app.wake.notify_one();
            Ok((StatusCode::ACCEPTED, Json(accepted_json(&m))))
        }
        Ok(Err(reason)) => refuse(reason),
        // Two requests with one idempotency key raced: answer with the one that won.
        Err(assent_store::StoreError::Conflict(_)) if key.is_some() => {
            // The winner may still be committing: give it a moment to become visible.
            let k = key.unwrap_or_default();
            for _ in 0..100 {
                if let Some(m) = app.store.message_by_idempotency_key(&t.id, &k).await? {
                    same_request(&t, &m, &b, purpose)?;
                    return Ok((StatusCode::ACCEPTED, Json(accepted_json(&m))));
                }
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            Err(ApiError::new(
                crate::error::Code::Conflict,
                "a request with this Idempotency-Key is still in progress",
            ))
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
pub struct PhoneQuery {
    phone: Option<String>,
}

pub async fn list(
    TenantAuth(t): TenantAuth,
    State(app): State<AppState>,
    ApiQuery(q): ApiQuery<PhoneQuery>,
) -> ApiResult<Json<Value>> {
    let raw = q
        .phone
        .ok_or_else(|| ApiError::field("phone", "is required"))?;
    let phone = E164::parse(&raw).map_err(|e| ApiError::field("phone", e.to_string()))?;
    let messages = app.store.messages_for_phone(&t.id, &phone).await?;
    Ok(Json(
        json!({"messages": messages.iter().map(message_json).collect::<Vec<_>>()}),
    ))
}

pub async fn get_one(
    TenantAuth(t): TenantAuth,
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    match app.store.message(&t.id, &id).await? {
        Some(m) => Ok(Json(message_json(&m))),
        None => Err(ApiError::not_found("message")),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BehaviorBody {
    behavior: Behavior,
}

/// Applies to messages from this tenant's senders only: another tenant texting the same
/// phone is not affected (a `block` is a permanent carrier opt-out in the ledger).
pub async fn simulator_behavior(
    TenantAuth(t): TenantAuth,
    State(app): State<AppState>,
    Path(phone): Path<String>,
    ApiJson(b): ApiJson<BehaviorBody>,
) -> ApiResult<Json<Value>> {
    let sim = app
        .simulator
        .as_ref()
        .ok_or_else(|| ApiError::not_found("simulator"))?;
    let phone = E164::parse(&phone).map_err(|e| ApiError::field("phone", e.to_string()))?;
    let senders: Vec<E164> = [&t.senders.transactional, &t.senders.marketing]
        .into_iter()
        .flatten()
        .cloned()
        .collect();
    if senders.is_empty() {
        return Err(ApiError::field(
            "senders",
            "set this tenant's senders first: the behavior applies to messages from them",
        ));
    }
    sim.set_behavior(&senders, &phone, b.behavior);
    Ok(Json(json!({"phone": phone, "behavior": b.behavior})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InjectBody {
    from: String,
    to: String,
    body: String,
}

/// Lets a developer text the tenant as a customer would, through the inbound path.
pub async fn simulator_inbound(
    TenantAuth(t): TenantAuth,
    State(app): State<AppState>,
    ApiJson(b): ApiJson<InjectBody>,
) -> ApiResult<Json<Value>> {
    if app.simulator.is_none() {
        return Err(ApiError::not_found("simulator"));
    }
    let from = E164::parse(&b.from).map_err(|e| ApiError::field("from", e.to_string()))?;
    let to = E164::parse(&b.to).map_err(|e| ApiError::field("to", e.to_string()))?;
    if t.thread_of(&to).is_none() {
        return Err(ApiError::field("to", "is not one of this tenant's senders"));
    }
    let inbound = service::Inbound {
        message_sid: format!("SMin{}", uuid::Uuid::now_v7().simple()),
        from,
        to,
        body: b.body,
        provider_answered: false,
        provider_keyword: None,
    };
    let outcome = crate::webhooks::process_inbound(&app, &t, &inbound).await?;
    Ok(Json(
        json!({"message_sid": inbound.message_sid, "reply": outcome.reply.map(|r| r.as_str())}),
    ))
}
