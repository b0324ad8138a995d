//! The log's account of what changed: every consent change, as it commits, with the phone
//! masked. (Campaigns, reviews, settings and sign-ins log where they change.)

use assent_core::phone::E164;
use assent_store::*;
use chrono::{DateTime, Utc};

use crate::AppState;

/// The store's consent transaction, logged: `audit::of(app).transact(…)` in place of
/// `app.store.transact(…)`.
pub fn of(app: &AppState) -> Audited<'_> {
    Audited(app)
}

pub struct Audited<'a>(&'a AppState);

impl Audited<'_> {
    /// [`ConsentStore::transact`], then one info line per ledger entry the committed plan
    /// wrote (nothing for a duplicate or a failed transaction).
    pub async fn transact(
        &self,
        tenant_id: &str,
        phone: &E164,
        now: DateTime<Utc>,
        dedup: Option<&str>,
        plan: &mut Planner<'_>,
    ) -> Result<Transacted> {
        transact(self.0, tenant_id, phone, now, dedup, plan).await
    }
}

async fn transact(
    app: &AppState,
    tenant_id: &str,
    phone: &E164,
    now: DateTime<Utc>,
    dedup: Option<&str>,
    plan: &mut Planner<'_>,
) -> Result<Transacted> {
    let mut written: Vec<NewLedgerEntry> = Vec::new();
    let mut planned = |snap: &PhoneSnapshot| {
        let p = plan(snap);
        written.clone_from(&p.ledger);
        p
    };
    let done = app
        .store
        .transact(tenant_id, phone, now, dedup, &mut planned)
        .await?;
    if done == Transacted::Applied {
        for e in &written {
            consent_changed(tenant_id, e);
        }
    }
    Ok(done)
}

/// One consent change, for the log.
pub fn consent_changed(tenant_id: &str, e: &NewLedgerEntry) {
    tracing::info!(
        tenant = %tenant_id,
        phone = %e.phone.masked(),
        channel = e.channel.as_str(),
        from = e.old_state.as_str(),
        to = e.new_state.as_str(),
        source = e.source.as_str(),
        actor = %e.actor,
        "consent changed"
    );
}

/// An email for the log: its first letter and its domain (`o***@acme.example`).
pub fn mask_email(email: &str) -> String {
    match email.trim().split_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => "***".into(),
    }
}
