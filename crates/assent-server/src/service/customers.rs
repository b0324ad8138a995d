//! A customer's contact methods: finding the one a request names, and its Notifications
//! toggles (`PUT /customers/{id}/phones/{phone}/notifications` and the record's dialog).

use assent_core::phone::E164;
use assent_store::{ContactMethod, Customer};

use super::error::{Error, Result};
use super::{Who, set_notifications};
use crate::AppState;

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
