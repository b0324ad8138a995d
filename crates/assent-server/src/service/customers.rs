//! Customers and their contact methods: adding a customer (`POST /customers` and the
//! Add customer form), adding and removing a phone (the API and the record's Edit next to
//! Contact Methods), finding the one a request names, its Notifications toggles
//! (`PUT /customers/{id}/phones/{phone}/notifications` and the record's dialog), and the
//! opt-in request sent from the record.

use assent_core::phone::E164;
use assent_store::{ContactMethod, Customer, Evidence, Message, MessageKind, StoreError, Tenant};

use super::error::{Error, Result};
use super::{OptInStart, Who, new_id, set_notifications, toggle_entries};
use crate::AppState;
use crate::error::Code;

/// A phone given for a new customer; toggles left out take the defaults (job
/// notifications on: a customer who gives a number for service expects to hear about
/// the job; marketing updates off).
pub struct NewPhone {
    pub number: String,
    pub job_notifications: Option<bool>,
    pub marketing_updates: Option<bool>,
}

/// A customer as given, before it is checked.
pub struct NewCustomer {
    pub name: String,
    pub phones: Vec<NewPhone>,
    pub address: Option<String>,
    pub tags: Vec<String>,
}

/// How long a name, an address or a tag may be.
pub const MAX_NAME_CHARS: usize = 200;
pub const MAX_ADDRESS_CHARS: usize = 500;
pub const MAX_TAG_CHARS: usize = 60;
pub const MAX_TAGS: usize = 50;

/// Tags as a person types them: separated by commas or semicolons, blanks dropped, each
/// once.
pub fn split_tags(s: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for t in s.split([',', ';']).map(str::trim).filter(|t| !t.is_empty()) {
        if !out.iter().any(|o| o == t) {
            out.push(t.to_string());
        }
    }
    out
}

fn contact_method(field: &str, p: &NewPhone) -> Result<ContactMethod> {
    let number = E164::parse(&p.number).map_err(|e| Error::invalid(field, e.to_string()))?;
    Ok(ContactMethod {
        number,
        job_notifications: p.job_notifications.unwrap_or(true),
        marketing_updates: p.marketing_updates.unwrap_or(false),
    })
}

/// Checks and creates a customer, writing the ledger entries of each phone's initial
/// toggles with `who` as the actor. Field names in refusals are the API's (`name`,
/// `phones[0].number`, `address`, `tags[1]`).
pub async fn create(
    app: &AppState,
    tenant_id: &str,
    b: NewCustomer,
    who: Who<'_>,
) -> Result<Customer> {
    let name = b.name.trim();
    if name.is_empty() {
        return Err(Error::invalid("name", "is required"));
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(Error::invalid(
            "name",
            format!("is longer than {MAX_NAME_CHARS} characters"),
        ));
    }
    let now = app.clock.now();
    let mut phones: Vec<ContactMethod> = Vec::new();
    for (i, p) in b.phones.iter().enumerate() {
        let field = format!("phones[{i}].number");
        let method = contact_method(&field, p)?;
        if phones.iter().any(|q| q.number == method.number) {
            return Err(Error::invalid(&field, "is listed twice"));
        }
        phones.push(method);
    }
    let address = b
        .address
        .map(|a| a.trim().to_string())
        .filter(|a| !a.is_empty());
    if address
        .as_ref()
        .is_some_and(|a| a.chars().count() > MAX_ADDRESS_CHARS)
    {
        return Err(Error::invalid(
            "address",
            format!("is longer than {MAX_ADDRESS_CHARS} characters"),
        ));
    }
    let mut tags: Vec<String> = Vec::new();
    for (i, t) in b.tags.iter().enumerate() {
        let t = t.trim();
        if t.is_empty() || tags.iter().any(|o| o == t) {
            continue;
        }
        if t.chars().count() > MAX_TAG_CHARS {
            return Err(Error::invalid(
                &format!("tags[{i}]"),
                format!("is longer than {MAX_TAG_CHARS} characters"),
            ));
        }
        tags.push(t.to_string());
    }
    if tags.len() > MAX_TAGS {
        return Err(Error::invalid(
            "tags",
            format!("has more than {MAX_TAGS} tags"),
        ));
    }
    let customer = Customer {
        id: new_id(),
        name: name.to_string(),
        address,
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
                who.source,
                who.actor,
                now,
            )
        })
        .collect();
    app.store
        .create_customer(tenant_id, &customer, &ledger)
        .await?;
    Ok(customer)
}

/// Adds a phone to a customer (last among its contact methods), with the default
/// toggles unless given, and records them in the ledger. Refused as `phone` when it cannot
/// be read or the customer already has it.
pub async fn add_phone(
    app: &AppState,
    tenant_id: &str,
    customer_id: &str,
    p: &NewPhone,
    who: Who<'_>,
) -> Result<Customer> {
    let method = contact_method("phone", p)?;
    let now = app.clock.now();
    let ledger = toggle_entries(
        &method.number,
        None,
        (method.job_notifications, method.marketing_updates),
        who.source,
        who.actor,
        now,
    );
    match app
        .store
        .add_phone(tenant_id, customer_id, &method, &ledger)
        .await
    {
        Ok(()) => {}
        Err(StoreError::NotFound) => return Err(Error::not_found("customer")),
        Err(StoreError::Conflict(_)) => {
            return Err(Error::invalid("phone", "is already on this customer"));
        }
        Err(e) => return Err(e.into()),
    }
    app.store
        .customer(tenant_id, customer_id)
        .await?
        .ok_or_else(|| Error::not_found("customer"))
}

/// Takes a phone off a customer. The phone's consent and its ledger stay: consent belongs
/// to the number, and the ledger is never changed.
pub async fn remove_phone(
    app: &AppState,
    tenant_id: &str,
    customer_id: &str,
    phone: &E164,
) -> Result<Customer> {
    holding(app, tenant_id, customer_id, phone).await?;
    match app.store.remove_phone(tenant_id, customer_id, phone).await {
        Ok(()) => {}
        Err(StoreError::NotFound) => return Err(Error::not_found("phone on this customer")),
        Err(e) => return Err(e.into()),
    }
    app.store
        .customer(tenant_id, customer_id)
        .await?
        .ok_or_else(|| Error::not_found("customer"))
}

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
