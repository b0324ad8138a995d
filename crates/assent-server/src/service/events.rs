//! Outbound events (CONTRACT.md "Outbound events"): the endpoints a tenant registers. The
//! events themselves are written to the outbox by the database in the transaction of the
//! change they report (migration `outbound_events`), and [`crate::outbox`] delivers them.

use assent_store::{Tenant, WebhookEndpoint};

use super::Error;
use crate::AppState;

/// The events an endpoint may ask for.
pub const EVENT_TYPES: [&str; 3] = ["consent.changed", "message.status", "review.opened"];

/// Registers an endpoint: an http(s) URL that is not a private or loopback address (unless
/// the operator allows them), and at least one known event. The answer holds its secret.
pub async fn create_endpoint(
    app: &AppState,
    tenant: &Tenant,
    url: &str,
    events: &[String],
) -> Result<WebhookEndpoint, Error> {
    let url = url.trim();
    if url.is_empty() {
        return Err(Error::invalid("url", "is required"));
    }
    crate::outbox::check_target(url, app.webhook_allow_private)
        .await
        .map_err(|e| Error::invalid("url", e))?;
    if events.is_empty() {
        return Err(Error::invalid("events", "must name at least one event"));
    }
    for (i, e) in events.iter().enumerate() {
        if !EVENT_TYPES.contains(&e.as_str()) {
            return Err(Error::invalid(
                &format!("events[{i}]"),
                format!("must be one of {}", EVENT_TYPES.join(", ")),
            ));
        }
    }
    let mut events: Vec<String> = events.to_vec();
    events.sort();
    events.dedup();
    let endpoint = WebhookEndpoint {
        id: super::new_id(),
        tenant_id: tenant.id.clone(),
        url: url.to_string(),
        secret: crate::auth::random_token("whsec_"),
        events,
        created_at: app.clock.now(),
        deleted_at: None,
    };
    app.store.create_webhook_endpoint(&endpoint).await?;
    Ok(endpoint)
}
