//! Reassigned-number checks (the FCC's safe harbour), on the send path.
//!
//! With a lookup provider (`ASSENT_LOOKUP=twilio`), a claimed marketing message to a US
//! phone whose written consent is older than the tenant's `reassigned_check_days` (0: any
//! age) goes to the provider only after Twilio Lookup v2's `reassigned_number` answered
//! for that phone since the consent and within the last [`CACHE_DAYS`] days: otherwise
//! Assent asks now, between the claim and the hand-off, so campaigns, single sends and
//! follow-ups all pass here. Every query is kept (`reassigned_checks`) as evidence.
//!
//! - `yes`: the phone's marketing consent is revoked (ledger source `reassigned_number`,
//!   rule [`REASSIGNED_RULE`], the answer as the evidence text) and the message is
//!   `blocked` with reason `reassigned_number`.
//! - `no`, `no_data_available`: kept; the message goes.
//! - a failure (unreachable, a timeout, a non-2xx status, no answer): kept with the error;
//!   the message is `deferred` for [`RETRY_AFTER`] with reason `reassigned_check_failed`,
//!   never sent unchecked.
//!
//! Lookups are paced per process ([`Lookups::rate_per_second`], default
//! [`DEFAULT_RATE`]) with at most [`CONCURRENCY`] in flight. A claim waits for its lookups
//! at most [`CLAIM_BUDGET`]: the messages whose lookup could not start by then are deferred
//! for a few seconds without asking (their claim would otherwise outlive the sweep that
//! takes an unstarted claim for dead).

use std::collections::HashMap;
use std::time::Duration as StdDuration;

use assent_core::consent::{self, Event, LedgerState, MarketingStatus, Scope, Source, Topic};
use assent_core::gate::Purpose;
use assent_core::phone::E164;
use assent_store::page::{LedgerFilter, Seek};
use assent_store::*;
use chrono::{DateTime, Duration, Utc};

use crate::AppState;
use crate::service::proof::REASSIGNED_RULE;

/// A phone is asked at most once in this many days.
pub const CACHE_DAYS: i64 = 30;
/// Lookups per second per process, unless `ASSENT_LOOKUP_RATE` says otherwise.
pub const DEFAULT_RATE: u32 = 20;
/// Lookups in flight at once per process.
pub const CONCURRENCY: usize = 8;
/// How long a claim waits for its lookups to start.
pub const CLAIM_BUDGET: StdDuration = StdDuration::from_secs(20);
/// How long a message waits after its lookup failed.
pub const RETRY_AFTER: Duration = Duration::minutes(10);
/// How long a message waits when its lookup could not start within [`CLAIM_BUDGET`].
const NOT_ASKED_YET: Duration = Duration::seconds(5);
/// The block reason of a message to a reassigned number.
pub const BLOCK_REASON: MessageReason = MessageReason::ReassignedNumber;
/// The deferral reason of a message whose lookup failed.
pub const FAILED_REASON: MessageReason = MessageReason::ReassignedCheckFailed;

/// The configured lookup provider, with this process's pace.
pub struct Lookups {
    /// `twilio`.
    pub provider: &'static str,
    pub client: assent_provider::lookup::Lookup,
    pub rate_per_second: u32,
    next_slot: tokio::sync::Mutex<tokio::time::Instant>,
    in_flight: tokio::sync::Semaphore,
}

impl Lookups {
    pub fn twilio(client: assent_provider::lookup::Lookup, rate_per_second: u32) -> Self {
        Lookups {
            provider: "twilio",
            client,
            rate_per_second: rate_per_second.max(1),
            next_slot: tokio::sync::Mutex::new(tokio::time::Instant::now()),
            in_flight: tokio::sync::Semaphore::new(CONCURRENCY),
        }
    }

    /// Waits for this process's next lookup slot; false (taking none) when it comes after
    /// `deadline`.
    async fn pace(&self, deadline: tokio::time::Instant) -> bool {
        let interval = StdDuration::from_secs(1) / self.rate_per_second;
        let slot = {
            let mut next = self.next_slot.lock().await;
            let slot = (*next).max(tokio::time::Instant::now());
            if slot > deadline {
                return false;
            }
            *next = slot + interval;
            slot
        };
        tokio::time::sleep_until(slot).await;
        true
    }
}

/// A claimed message the check applies to.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub tenant_id: String,
    pub id: String,
    pub phone: E164,
    /// The last written consent, when the phone's state knows it.
    pub consent_at: Option<DateTime<Utc>>,
}

/// Whether a message the gate lets go at claim needs its phone checked: marketing, to a US
/// number (the only ones Twilio's Reassigned Number covers), opted in with a consent older
/// than the tenant's `reassigned_check_days`.
pub fn candidate(m: &Message, snap: &PhoneSnapshot, now: DateTime<Utc>) -> Option<Candidate> {
    if m.purpose != Some(Purpose::Marketing)
        || snap.consent.marketing != MarketingStatus::OptedIn
        || assent_core::quiet_hours::country(&m.phone) != Some("US")
    {
        return None;
    }
    let days = i64::from(snap.tenant.settings.reassigned_check_days);
    let consent_at = snap.consent.last_opt_in;
    let old = days == 0 || consent_at.is_none_or(|t| now - t > Duration::days(days));
    old.then(|| Candidate {
        tenant_id: m.tenant_id.clone(),
        id: m.id.clone(),
        phone: m.phone.clone(),
        consent_at,
    })
}

/// What a check decided for a phone.
enum Verdict {
    Go,
    Block,
    Defer(Duration, MessageReason),
}

/// Checks the claimed messages that need it and returns those that may be handed off; the
/// others are settled (blocked or deferred) before this returns.
pub async fn screen(
    app: &AppState,
    claimed: Vec<Message>,
    candidates: Vec<Candidate>,
    claimed_at: DateTime<Utc>,
) -> Result<Vec<Message>> {
    let Some(lookups) = app.lookups.clone() else {
        return Ok(claimed);
    };
    if candidates.is_empty() {
        return Ok(claimed);
    }
    // One check per phone, however many of its messages the claim holds.
    let mut phones: HashMap<(String, E164), Vec<Candidate>> = HashMap::new();
    for c in candidates {
        phones
            .entry((c.tenant_id.clone(), c.phone.clone()))
            .or_default()
            .push(c);
    }
    let deadline = tokio::time::Instant::now() + CLAIM_BUDGET;
    let mut set = tokio::task::JoinSet::new();
    for ((tenant_id, phone), group) in phones {
        let (app, lookups) = (app.clone(), lookups.clone());
        set.spawn(async move {
            let v = check_phone(&app, &lookups, &tenant_id, &phone, &group, deadline).await;
            (group, v)
        });
    }
    let mut outcomes = Vec::new();
    let mut failed = None;
    let now = app.clock.now();
    while let Some(done) = set.join_next().await {
        let (group, verdict) = match done {
            Ok(x) => x,
            Err(e) => {
                failed.get_or_insert(StoreError::Database(format!("reassigned check: {e}")));
                continue;
            }
        };
        let verdict = match verdict {
            Ok(v) => v,
            Err(e) => {
                tracing::error!(error = %e, "reassigned-number check could not be recorded");
                failed.get_or_insert(e);
                // Not checked: not sent now either.
                Verdict::Defer(RETRY_AFTER, FAILED_REASON)
            }
        };
        let (status, reason, due_at) = match verdict {
            Verdict::Go => continue,
            Verdict::Block => (MessageStatus::Blocked, BLOCK_REASON, now),
            Verdict::Defer(after, reason) => (MessageStatus::Deferred, reason, now + after),
        };
        outcomes.extend(group.into_iter().map(|c| ClaimOutcome {
            tenant_id: c.tenant_id,
            id: c.id,
            status,
            reason: reason.clone(),
            due_at,
        }));
    }
    if !outcomes.is_empty() {
        app.store
            .settle_claimed(&outcomes, claimed_at, app.clock.now())
            .await?;
    }
    if let Some(e) = failed {
        // The settled ones are settled; the rest of the claim goes back to the queue by
        // the sweep (nothing of it was started).
        return Err(e);
    }
    Ok(claimed
        .into_iter()
        .filter(|m| {
            !outcomes
                .iter()
                .any(|o| o.id == m.id && o.tenant_id == m.tenant_id)
        })
        .collect())
}

/// The consent date a lookup asks about: the phone's last written consent, else the last
/// marketing opt-in in its ledger.
async fn consent_date(
    app: &AppState,
    tenant_id: &str,
    phone: &E164,
    known: Option<DateTime<Utc>>,
) -> Result<Option<DateTime<Utc>>> {
    if known.is_some() {
        return Ok(known);
    }
    let filter = LedgerFilter {
        phone: Some(phone.clone()),
        ..Default::default()
    };
    let mut seek = Seek::first(500);
    let mut last = None;
    loop {
        let page = app.store.ledger_page(tenant_id, &filter, &seek).await?;
        let next = page.next().cloned();
        for e in &page.items {
            if e.entry.channel == Topic::Marketing && e.entry.new_state == LedgerState::OptedIn {
                last = Some(e.entry.occurred_at);
            }
        }
        match next {
            Some(k) => seek = Seek::after(Some(k), 500),
            None => return Ok(last),
        }
    }
}

async fn check_phone(
    app: &AppState,
    lookups: &Lookups,
    tenant_id: &str,
    phone: &E164,
    group: &[Candidate],
    deadline: tokio::time::Instant,
) -> Result<Verdict> {
    let now = app.clock.now();
    let known = group.iter().filter_map(|c| c.consent_at).max();
    let consent_at = consent_date(app, tenant_id, phone, known).await?;
    // A check counts for a month, and only for the consent it was asked after.
    let since = (now - Duration::days(CACHE_DAYS)).max(consent_at.unwrap_or(now));
    let since = since.min(now);
    if let Some(c) = app
        .store
        .answered_check_since(tenant_id, phone, since)
        .await?
    {
        return Ok(if c.answer.as_deref() == Some("yes") {
            Verdict::Block
        } else {
            Verdict::Go
        });
    }
    let message_id = group.first().map(|c| c.id.clone());
    let Some(consent_at) = consent_at else {
        // Opted in with no consent on file to ask about: never sent unchecked.
        tracing::warn!(to = %phone.masked(), "no consent date to ask a reassigned-number lookup about");
        return Ok(Verdict::Defer(RETRY_AFTER, FAILED_REASON));
    };
    let _permit = lookups.in_flight.acquire().await;
    if !lookups.pace(deadline).await {
        return Ok(Verdict::Defer(
            NOT_ASKED_YET,
            MessageReason::ReassignedCheckPending,
        ));
    }
    let date = consent_at.format("%Y%m%d").to_string();
    let result = lookups.client.reassigned(phone.as_str(), &date).await;
    let mut check = ReassignedCheck {
        tenant_id: tenant_id.to_string(),
        phone: phone.clone(),
        asked_at: app.clock.now(),
        provider: lookups.provider.to_string(),
        last_verified_date: date.clone(),
        answer: None,
        error: None,
        message_id,
    };
    match result {
        Err(e) => {
            tracing::warn!(to = %phone.masked(), error = %e, "reassigned-number lookup failed: the message waits");
            check.error = Some(e);
            app.store.record_reassigned_check(&check).await?;
            Ok(Verdict::Defer(RETRY_AFTER, FAILED_REASON))
        }
        Ok(r) => {
            check.answer = Some(r.answer.clone());
            check.error = r.error_code.clone();
            app.store.record_reassigned_check(&check).await?;
            if r.answer == "yes" {
                tracing::info!(to = %phone.masked(), "reassigned-number lookup: the number changed hands; marketing consent revoked");
                revoke(app, tenant_id, phone, lookups.provider, &date).await?;
                Ok(Verdict::Block)
            } else {
                Ok(Verdict::Go)
            }
        }
    }
}

/// Revokes the phone's marketing consent: the lookup said the number changed hands.
async fn revoke(
    app: &AppState,
    tenant_id: &str,
    phone: &E164,
    provider: &str,
    date: &str,
) -> Result<()> {
    let now = app.clock.now();
    let evidence = Evidence {
        text: Some(format!(
            "{provider} Lookup reassigned_number: yes (LastVerifiedDate {date})"
        )),
        rule: Some(REASSIGNED_RULE.to_string()),
        ..Default::default()
    };
    super::audit::of(app)
        .transact(tenant_id, phone, now, None, &mut |snap| {
            let mut t = consent::apply(
                &snap.consent,
                &Event::RecordedOptOut {
                    scope: Scope::Marketing,
                    source: Source::ReassignedNumber,
                    rule: REASSIGNED_RULE,
                    at: None,
                },
                super::policy(&snap.tenant),
                now,
            );
            t.state.possibly_reassigned = Some(now);
            Plan {
                consent: super::consent_changed(&snap.consent, &t.state),
                ledger: super::ledger_entries(phone, &t.changes, "assent", now, &evidence),
                ..Default::default()
            }
        })
        .await?;
    Ok(())
}
