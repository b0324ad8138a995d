//! A person's decision on a text that may mean stop (`POST /reviews/{id}` and the Review
//! page).

use assent_store::{Review, ReviewDecision, StoreError, Tenant};

use super::error::{Error, Result};
use crate::AppState;
use crate::error::Code;

fn already_decided() -> Error {
    Error::refused(Code::AlreadyDecided, "this review was already decided")
}

/// Decides review `id` as `opt_out` or `not_opt_out`, by `actor`. The first decision
/// stands: a review decided already, even a moment ago, is `AlreadyDecided`.
pub async fn decide(
    app: &AppState,
    t: &Tenant,
    id: &str,
    decision: &str,
    actor: &str,
) -> Result<Review> {
    let opt_out = match ReviewDecision::from_text(decision) {
        ReviewDecision::OptOut => true,
        ReviewDecision::NotOptOut => false,
        ReviewDecision::Other(_) => {
            return Err(Error::invalid("decision", "must be opt_out or not_opt_out"));
        }
    };
    let review = app
        .store
        .review(&t.id, id)
        .await?
        .ok_or_else(|| Error::not_found("review"))?;
    if review.decision.is_some() {
        return Err(already_decided());
    }
    match super::decide_review(app, t, &review, opt_out, actor).await {
        Err(StoreError::Conflict(_)) => return Err(already_decided()),
        other => other?,
    }
    app.wake.notify_one();
    app.store
        .review(&t.id, id)
        .await?
        .ok_or_else(|| Error::not_found("review"))
}
