//! The printable proof of consent (`service::proof`): the customer record's **Proof of
//! consent** button opens it, and the API's `GET /consent/{e164}/proof?format=html` answers
//! the same page. It is a document of its own (no navigation, its own print stylesheet), so
//! the browser's Print → Save as PDF gives a clean file to hand to counsel.

use askama::Template;
use assent_store::Tenant;
use axum::extract::{Path, State};
use axum::response::Response;
use chrono::{DateTime, Utc};

use super::session::SignedIn;
use super::{WebResult, render, when};
use crate::AppState;
use crate::service::proof::Proof;

#[derive(Template)]
#[template(path = "proof.html")]
pub struct ProofPage<'a> {
    proof: &'a Proof,
    tenant: &'a Tenant,
    entry_cap: usize,
    message_cap: usize,
}

impl ProofPage<'_> {
    /// A time as the business reads it, with the exact UTC instant beside it.
    fn at(&self, at: impl Instant) -> String {
        let at = at.instant();
        format!(
            "{} ({})",
            when(self.tenant, at),
            at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        )
    }
}

/// A time however the template holds it (a field, or a reference to one).
trait Instant {
    fn instant(&self) -> DateTime<Utc>;
}
impl Instant for DateTime<Utc> {
    fn instant(&self) -> DateTime<Utc> {
        *self
    }
}
impl<T: Instant> Instant for &T {
    fn instant(&self) -> DateTime<Utc> {
        (**self).instant()
    }
}

/// The page for a bundle already gathered.
pub fn page(tenant: &Tenant, proof: &Proof) -> Response {
    render(&ProofPage {
        proof,
        tenant,
        entry_cap: crate::service::proof::ENTRY_CAP,
        message_cap: crate::service::proof::MESSAGE_CAP,
    })
}

/// `GET /customers/{id}/phones/{phone}/proof`: a phone of a customer of the signed-in
/// tenant.
pub async fn for_customer_phone(
    user: SignedIn,
    State(app): State<AppState>,
    Path((id, phone)): Path<(String, String)>,
) -> WebResult<Response> {
    let t = &user.tenant;
    let phone = super::customers::phone_of_customer(&app, t, &id, &phone).await?;
    let proof = crate::service::proof::bundle(&app, t, &phone).await?;
    Ok(page(t, &proof))
}

/// The page's own stylesheet, print rules included (the pages' policy allows no inline
/// style).
pub async fn stylesheet() -> impl axum::response::IntoResponse {
    (
        [
            (axum::http::header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (axum::http::header::CACHE_CONTROL, "public, max-age=300"),
        ],
        include_str!("proof.css"),
    )
}
