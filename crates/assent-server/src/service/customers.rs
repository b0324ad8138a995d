//! A customer's contact methods: finding the one a request names, its Notifications
//! toggles (`PUT /customers/{id}/phones/{phone}/notifications` and the record's dialog),
//! and the opt-in request sent from the record.

use assent_core::phone::E164;
use assent_store::{ContactMethod, Customer, Evidence, Message, MessageKind, StoreError, Tenant};

use super::error::{Error, Result};
use super::{OptInStart, Who, set_notifications};
use crate::AppState;
use crate::error::Code;

/// The customer and its contact method for `phone`; `NotFound` names which is missing.
pub async fn holding(
    app: &AppState,
    tenant_id: &str,
    customer_id: &str,
    phone: &E164,
) -> Result<(Customer, ContactMethod)> {
    let customer = app
        .store
        .customer(tenant_id, customer_id)
        .await?
        .ok_or_else(|| Error::not_found("customer"))?;
    let method = customer
        .phones
        .iter()
        .find(|p| &p.number == phone)
        .cloned()
        .ok_or_else(|| Error::not_found("phone on this customer"))?;
    Ok((customer, method))
}

/// Sets a contact method's toggles (job notifications, marketing updates) and returns the
/// customer as saved.
pub async fn set_toggles(
    app: &AppState,
    tenant_id: &str,
    customer_id: &str,
    phone: &E164,
    new: (bool, bool),
    who: Who<'_>,
) -> Result<Customer> {
    let (_, current) = holding(app, tenant_id, customer_id, phone).await?;
    set_notifications(
        app,
        tenant_id,
        customer_id,
        phone,
        ((current.job_notifications, current.marketing_updates), new),
        who,
    )
    .await?;
    app.store
        .customer(tenant_id, customer_id)
        .await?
        .ok_or_else(|| Error::not_found("customer"))
}

/// Sends a customer's phone the opt-in request, from the record (the page's button and
/// `POST /customers/{id}/phones/{phone}/opt-in-requests`). A retried call with the same
/// `idempotency_key` gets the first request, not a throttle refusal; the gate's refusal
/// is [`Error::gate`].
pub async fn request_opt_in(
    app: &AppState,
    t: &Tenant,
    customer_id: &str,
    phone: &E164,
    who: Who<'_>,
    idempotency_key: Option<String>,
) -> Result<Message> {
    if let Some(existing) = by_key(app, t, idempotency_key.as_deref()).await? {
        if &existing.phone != phone || existing.kind != MessageKind::OptInRequest {
            return Err(Error::refused(
                Code::IdempotencyKeyReused,
                "this Idempotency-Key was used for another request",
            ));
        }
        return Ok(existing);
    }
    holding(app, &t.id, customer_id, phone).await?;
    if t.senders.marketing.is_none() {
        return Err(Error::refused(
            Code::SenderNotConfigured,
            "set a marketing sender first (PUT /senders)",
        ));
    }
    let start = OptInStart {
        source: who.source,
        actor: who.actor.to_string(),
        customer_asked: false,
        evidence: Evidence::default(),
        idempotency_key: idempotency_key.clone(),
    };
    let outcome = super::request_opt_in(app, t, phone, start).await;
    // Two calls with one key raced: the loser answers with the winner's request.
    if matches!(outcome, Ok(Err(_)) | Err(StoreError::Conflict(_)))
        && let Some(m) = by_key(app, t, idempotency_key.as_deref()).await?
    {
        return Ok(m);
    }
    let id = outcome?.map_err(Error::gate)?;
    app.wake.notify_one();
    app.store
        .message(&t.id, &id)
        .await?
        .ok_or_else(|| Error::not_found("opt-in request"))
}

async fn by_key(app: &AppState, t: &Tenant, key: Option<&str>) -> Result<Option<Message>> {
    Ok(match key {
        Some(k) => app.store.message_by_idempotency_key(&t.id, k).await?,
        None => None,
    })
}
