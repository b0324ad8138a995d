//! Proof of consent: everything Assent holds about one phone's consent, gathered for a
//! dispute (`GET /consent/{e164}/proof`, its printable HTML and the customer record's
//! **Proof of consent** button). Each ledger entry with its evidence; for each opt-in, the
//! request message as it went out; form submissions; the STOP timeline; the
//! reassigned-number checks made (`reassigned_checks`); and whether the tenant's hash chain holds, with its head.
//!
//! Reads are bounded: at most [`ENTRY_CAP`] ledger entries and [`MESSAGE_CAP`] messages of
//! the phone (a page at a time); a bundle that hit a cap says so in `truncated`. The
//! tenant's whole chain is recomputed once per process, a page at a time, and then only
//! what was added since, plus the stretches around the phone's own entries again against
//! the hashes this process computed ([`ChainChecks`]): a tenant's first proof after a start
//! reads its whole ledger (7 s at 1,500,000 entries on SQLite), later ones a few pages.

use assent_core::consent::{LedgerState, Source, Topic};
use assent_core::phone::E164;
use assent_store::page::{LedgerFilter, MessageFilter, Seek};
use assent_store::shared::chain;
use assent_store::{Direction, LedgerEntry, Message, MessageKind, Tenant};
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::error::Result;
use crate::AppState;

/// The most ledger entries of one phone a bundle holds.
pub const ENTRY_CAP: usize = 1000;
/// The most messages of one phone a bundle reads.
pub const MESSAGE_CAP: usize = 5000;
const PAGE: usize = 500;

#[derive(Debug, Serialize)]
pub struct Proof {
    pub phone: E164,
    pub business: String,
    pub generated_at: DateTime<Utc>,
    pub consent: ConsentNow,
    /// Every ledger entry of the phone, oldest first, with its evidence and hash.
    pub entries: Vec<ProofEntry>,
    pub opt_ins: Vec<OptInProof>,
    pub form_submissions: Vec<FormSubmission>,
    pub stops: Vec<StopTimeline>,
    pub reassigned_checks: Vec<ReassignedCheckProof>,
    pub chain: ChainProof,
    pub truncated: Truncated,
}

#[derive(Debug, Serialize)]
pub struct ConsentNow {
    pub marketing: String,
    pub transactional_opted_out: bool,
    /// When someone answered that this is the wrong number (the revocation work's flag):
    /// the number may have changed hands.
    pub possibly_reassigned_since: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize)]
pub struct ProofEntry {
    pub seq: i64,
    pub chain_seq: Option<i64>,
    pub hash: Option<String>,
    pub occurred_at: DateTime<Utc>,
    pub channel: String,
    pub old_state: String,
    pub new_state: String,
    pub source: String,
    pub actor: String,
    pub evidence: assent_store::Evidence,
}

/// A message as delivered: what the carrier was given and what it reported.
#[derive(Debug, Clone, Serialize)]
pub struct MessageProof {
    pub id: String,
    pub provider_id: Option<String>,
    pub direction: String,
    pub from: E164,
    pub to: E164,
    /// The exact text sent, disclosure and footer included.
    pub body: String,
    pub status: String,
    pub reason: Option<String>,
    pub created_at: DateTime<Utc>,
    /// When the status last changed (the last status callback or hand-off).
    pub status_at: DateTime<Utc>,
    /// Every status callback the provider sent for it, in the order received.
    pub status_history: Vec<CallbackProof>,
}

/// One status callback, as received.
#[derive(Debug, Clone, Serialize)]
pub struct CallbackProof {
    /// The provider's word, as sent.
    pub status: String,
    pub error_code: Option<i64>,
    pub received_at: DateTime<Utc>,
}

#[derive(Debug, Serialize)]
pub struct OptInProof {
    /// The ledger entry that recorded the opt-in.
    pub entry_seq: i64,
    pub at: DateTime<Utc>,
    pub source: String,
    /// The opt-in request the answer was to, as it went out (none for a form or an
    /// import, which have their own evidence).
    pub request: Option<MessageProof>,
    /// The customer's answer (the inbound YES), when there was one.
    pub answer: Option<MessageProof>,
}

#[derive(Debug, Serialize)]
pub struct FormSubmission {
    pub entry_seq: i64,
    pub at: DateTime<Utc>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub page: Option<String>,
    pub disclosure: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct StopTimeline {
    pub entry_seq: i64,
    pub channel: String,
    pub source: String,
    /// The customer's message (STOP or the words that revoked), when it came by text.
    pub received: Option<MessageProof>,
    /// When the ledger recorded the revocation.
    pub recorded_at: DateTime<Utc>,
    /// The confirmation Assent sent back.
    pub confirmation: Option<MessageProof>,
    /// The last message sent to the phone before the revocation arrived.
    pub last_message_before: Option<MessageProof>,
}

/// One reassigned-number lookup made for the phone (`reassigned_checks`).
#[derive(Debug, Serialize)]
pub struct ReassignedCheckProof {
    pub asked_at: DateTime<Utc>,
    pub provider: String,
    /// The consent date asked about (`LastVerifiedDate`, YYYYMMDD).
    pub last_verified_date: String,
    /// `yes`, `no` or `no_data_available`; `None` when the lookup failed.
    pub answer: Option<String>,
    pub error: Option<String>,
    /// The marketing message it was asked for.
    pub message_id: Option<String>,
}

/// The most reassigned-number checks of one phone a bundle lists.
pub const CHECK_CAP: u32 = 1000;
/// The most status callbacks a bundle lists.
const CALLBACK_CAP: u32 = 20_000;

/// What this process has verified of each tenant's chain ([`chain::Verified`]), with one
/// lock per tenant: two proofs of one tenant at once check it once.
#[derive(Default)]
pub struct ChainChecks(
    std::sync::Mutex<
        std::collections::HashMap<String, std::sync::Arc<tokio::sync::Mutex<chain::Verified>>>,
    >,
);

impl ChainChecks {
    fn of(&self, tenant_id: &str) -> std::sync::Arc<tokio::sync::Mutex<chain::Verified>> {
        let mut map = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.entry(tenant_id.to_string()).or_default().clone()
    }
}

#[derive(Debug, Serialize)]
pub struct ChainProof {
    /// Whether the tenant's whole hash chain recomputes from its entries: all of it as this
    /// process first checked it, what was added since, and the stretches that hold or held
    /// this phone's entries again now.
    pub verified: bool,
    /// The hash of the tenant's last entry (publish it to make later edits evident).
    pub head: String,
    pub head_seq: i64,
    /// The first entry that does not hold, when one does not.
    pub broken: Option<String>,
}

#[derive(Debug, Serialize, Default)]
pub struct Truncated {
    /// More than [`ENTRY_CAP`] ledger entries: only the first are here.
    pub entries: bool,
    /// More than [`MESSAGE_CAP`] messages were on file: only the first were searched.
    pub messages: bool,
}

fn message_proof(m: &Message) -> MessageProof {
    MessageProof {
        id: m.id.clone(),
        provider_id: m.provider_id.clone(),
        direction: m.direction.as_str().to_string(),
        from: m.from.clone(),
        to: m.to.clone(),
        body: m.body.clone(),
        status: m.status.as_str().to_string(),
        reason: m.reason.as_ref().map(ToString::to_string),
        created_at: m.created_at,
        status_at: m.updated_at,
        status_history: Vec::new(),
    }
}

/// Whether `m` is the message a piece of evidence names (by the provider's id or ours).
fn names(m: &Message, id: &str) -> bool {
    m.provider_id.as_deref() == Some(id) || m.id == id
}

/// Gathers the bundle for one phone of tenant `t`.
pub async fn bundle(app: &AppState, t: &Tenant, phone: &E164) -> Result<Proof> {
    let now = app.clock.now();
    let snap = app.store.snapshot(&t.id, phone, now).await?;
    let mut truncated = Truncated::default();

    let mut ledger: Vec<LedgerEntry> = Vec::new();
    let filter = LedgerFilter {
        phone: Some(phone.clone()),
        ..Default::default()
    };
    let mut seek = Seek::first(PAGE);
    loop {
        let page = app.store.ledger_page(&t.id, &filter, &seek).await?;
        let next = page.next().cloned();
        ledger.extend(page.items);
        if ledger.len() > ENTRY_CAP {
            ledger.truncate(ENTRY_CAP);
            truncated.entries = true;
            break;
        }
        match next {
            Some(k) => seek = Seek::after(Some(k), PAGE),
            None => break,
        }
    }

    let mut messages: Vec<Message> = Vec::new();
    let mfilter = MessageFilter {
        phone: Some(phone.clone()),
        ..Default::default()
    };
    let mut seek = Seek::first(PAGE);
    loop {
        let page = app.store.messages_page(&t.id, &mfilter, &seek).await?;
        let next = page.next().cloned();
        messages.extend(page.items);
        if messages.len() > MESSAGE_CAP {
            messages.truncate(MESSAGE_CAP);
            truncated.messages = true;
            break;
        }
        match next {
            Some(k) => seek = Seek::after(Some(k), PAGE),
            None => break,
        }
    }

    let mut opt_ins = opt_ins(&ledger, &messages);
    let mut stops = stops(&ledger, &messages);
    with_history(app, &t.id, &mut opt_ins, &mut stops).await?;
    let again: Vec<i64> = ledger.iter().filter_map(|e| e.chain_seq).collect();
    let verified = app.chains.of(&t.id);
    let check = chain::verify_since(
        &*app.store,
        &t.id,
        &mut *verified.lock().await,
        Some(phone.as_str()),
        &again,
    )
    .await?;
    let head = app.store.ledger_head(&t.id).await?;

    Ok(Proof {
        phone: phone.clone(),
        business: t.name.clone(),
        generated_at: now,
        consent: ConsentNow {
            marketing: super::marketing_status(&snap.consent, now)
                .as_str()
                .to_string(),
            transactional_opted_out: snap.consent.transactional_opted_out,
            possibly_reassigned_since: snap.consent.possibly_reassigned,
        },
        opt_ins,
        form_submissions: ledger
            .iter()
            .filter(|e| e.entry.source == Source::WebForm)
            .map(|e| FormSubmission {
                entry_seq: e.seq,
                at: e.entry.occurred_at,
                ip: e.entry.evidence.ip.clone(),
                user_agent: e.entry.evidence.user_agent.clone(),
                page: e.entry.evidence.page.clone(),
                disclosure: e.entry.evidence.disclosure.clone(),
            })
            .collect(),
        stops,
        reassigned_checks: app
            .store
            .reassigned_checks(&t.id, phone, CHECK_CAP)
            .await?
            .into_iter()
            .map(|c| ReassignedCheckProof {
                asked_at: c.asked_at,
                provider: c.provider,
                last_verified_date: c.last_verified_date,
                answer: c.answer,
                error: c.error,
                message_id: c.message_id,
            })
            .collect(),
        entries: ledger
            .iter()
            .map(|e| ProofEntry {
                seq: e.seq,
                chain_seq: e.chain_seq,
                hash: e.hash.clone(),
                occurred_at: e.entry.occurred_at,
                channel: e.entry.channel.as_str().to_string(),
                old_state: e.entry.old_state.as_str().to_string(),
                new_state: e.entry.new_state.as_str().to_string(),
                source: e.entry.source.as_str().to_string(),
                actor: e.entry.actor.to_string(),
                evidence: e.entry.evidence.clone(),
            })
            .collect(),
        chain: ChainProof {
            verified: check.holds(),
            head: head
                .as_ref()
                .map(|h| h.1.clone())
                .unwrap_or_else(|| chain::empty_head().1),
            head_seq: head.map(|h| h.0).unwrap_or(0),
            broken: check.broken.map(|b| b.to_string()),
        },
        truncated,
    })
}

/// Fills in the status-callback history of every message the bundle shows.
async fn with_history(
    app: &AppState,
    tenant_id: &str,
    opt_ins: &mut [OptInProof],
    stops: &mut [StopTimeline],
) -> Result<()> {
    let mut shown: Vec<&mut MessageProof> = Vec::new();
    for o in opt_ins.iter_mut() {
        shown.extend(o.request.as_mut());
        shown.extend(o.answer.as_mut());
    }
    for s in stops.iter_mut() {
        shown.extend(s.received.as_mut());
        shown.extend(s.confirmation.as_mut());
        shown.extend(s.last_message_before.as_mut());
    }
    let mut ids: Vec<String> = shown.iter().map(|m| m.id.clone()).collect();
    ids.sort();
    ids.dedup();
    if ids.is_empty() {
        return Ok(());
    }
    let events = app
        .store
        .status_events(tenant_id, &ids, CALLBACK_CAP)
        .await?;
    for m in shown {
        m.status_history = events
            .iter()
            .filter(|e| e.message_id == m.id)
            .map(|e| CallbackProof {
                status: e.status.clone(),
                error_code: e.error_code,
                received_at: e.received_at,
            })
            .collect();
    }
    Ok(())
}

/// The `rule` of a ledger entry that records a reassigned-number lookup.
pub const REASSIGNED_RULE: &str = "reassigned_number_lookup";

fn opt_ins(ledger: &[LedgerEntry], messages: &[Message]) -> Vec<OptInProof> {
    ledger
        .iter()
        .filter(|e| {
            e.entry.channel == Topic::Marketing && e.entry.new_state == LedgerState::OptedIn
        })
        .map(|e| {
            let at = e.entry.occurred_at;
            let ev = &e.entry.evidence;
            // The request the answer names; else the last request that went out before it.
            let request = ev
                .request
                .as_deref()
                .and_then(|r| messages.iter().find(|m| names(m, r)))
                .or_else(|| {
                    messages.iter().rev().find(|m| {
                        m.kind == MessageKind::OptInRequest
                            && m.direction == Direction::Outbound
                            && m.created_at <= at
                    })
                })
                .filter(|_| !matches!(e.entry.source, Source::WebForm | Source::Import))
                .map(message_proof);
            let answer = ev
                .message_sid
                .as_deref()
                .and_then(|sid| {
                    messages
                        .iter()
                        .find(|m| m.direction == Direction::Inbound && names(m, sid))
                })
                .map(message_proof);
            OptInProof {
                entry_seq: e.seq,
                at,
                source: e.entry.source.as_str().to_string(),
                request,
                answer,
            }
        })
        .collect()
}

fn stops(ledger: &[LedgerEntry], messages: &[Message]) -> Vec<StopTimeline> {
    ledger
        .iter()
        .filter(|e| {
            e.entry.new_state == LedgerState::OptedOut
                && matches!(e.entry.channel, Topic::Marketing | Topic::Transactional)
        })
        .map(|e| {
            let recorded = e.entry.occurred_at;
            let received = e.entry.evidence.message_sid.as_deref().and_then(|sid| {
                messages
                    .iter()
                    .find(|m| m.direction == Direction::Inbound && names(m, sid))
            });
            let arrived = received.map_or(recorded, |m| m.created_at);
            let confirmation = messages.iter().find(|m| {
                m.direction == Direction::Outbound
                    && m.kind == MessageKind::AutoReply
                    && m.created_at >= arrived
            });
            let last_before = messages
                .iter()
                .rev()
                .find(|m| m.direction == Direction::Outbound && m.created_at < arrived);
            StopTimeline {
                entry_seq: e.seq,
                channel: e.entry.channel.as_str().to_string(),
                source: e.entry.source.as_str().to_string(),
                received: received.map(message_proof),
                recorded_at: recorded,
                confirmation: confirmation.map(message_proof),
                last_message_before: last_before.map(message_proof),
            }
        })
        .collect()
}
