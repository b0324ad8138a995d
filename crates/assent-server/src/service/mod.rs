//! The service layer, shared by the API (`api/`) and the web app (`web/`): each feature
//! that has both an endpoint and a page is written here once, validation included, and
//! the edges only parse the request, call it and render the answer. Refusals are an
//! [`Error`], which each edge shows its own way.
//!
//! The consent workflows in this file load a phone's snapshot through the store, let the
//! core decide (state machine and gate), and hand the store the plan to write in the
//! same transaction.

pub mod audit;
pub mod campaigns;
pub mod customers;
mod error;
pub mod events;
mod inbound;
pub mod ledger;
pub mod opt_in_tools;
pub mod pages;
pub mod proof;
pub mod reassigned;
pub mod registrations;
pub mod reviews;
pub mod settings;
pub mod team;
pub mod tenants;

pub use error::Error;
pub use inbound::{Inbound, InboundOutcome, receive};
pub use ledger::day_start;

use assent_core::compose::{self, segments};
use assent_core::consent::{
    self, Channel, ConsentState, Event, LedgerState, Policy, ReplyKind, Scope, Source, Thread,
    Topic,
};
use assent_core::gate::{self, Decision, GateInput, Purpose, Reason, Stage};
use assent_core::keyword::Lang;
use assent_core::phone::E164;
use assent_core::quiet_hours;
use assent_store::*;
use chrono::{DateTime, Duration, Utc};

use crate::AppState;

pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// Asks the gate about one message for the phone in `snap`.
pub fn gate_for(
    snap: &PhoneSnapshot,
    phone: &E164,
    purpose: Purpose,
    stage: Stage,
    now: DateTime<Utc>,
) -> Decision {
    let tz = snap.tenant.time_zone;
    let recipient = quiet_hours::locate(phone, snap.address.as_deref(), tz);
    let s = &snap.tenant.settings;
    gate::decide(&GateInput {
        purpose,
        stage,
        texting: snap.registrations.texting_status(),
        marketing_registration: snap.registrations.marketing_status(),
        // A reply goes to whoever texted us: a STOP's confirmation is never held back by
        // the tenant's countries.
        valid_number: purpose == Purpose::AutoReply || s.texts_to(phone),
        consent: &snap.consent,
        toggles: snap.toggles,
        now,
        recipient: &recipient,
        quiet_hours: s.quiet_hours,
        recent_marketing: &snap.recent_marketing,
        marketing_cap_per_day: s.marketing_cap_per_day,
    })
}

/// A phone's marketing consent as the API and the customer record show it: a request left
/// unanswered past its life is no consent asked for at all.
pub fn marketing_status(c: &ConsentState, now: DateTime<Utc>) -> consent::MarketingStatus {
    if c.pending_expired(now) {
        consent::MarketingStatus::None
    } else {
        c.marketing
    }
}

pub fn policy(t: &Tenant) -> Policy {
    Policy {
        stop_revokes_all: t.settings.stop_revokes_all,
        provider_answers_keywords: t.settings.keyword_replies == KeywordReplies::Provider,
    }
}

/// The key of a tenant's own text of one kind in one language: `help` for English,
/// `help.es` for Spanish.
pub fn text_key(kind: &str, lang: Lang) -> String {
    match lang {
        Lang::En => kind.to_string(),
        other => format!("{kind}.{}", other.as_str()),
    }
}

/// The text of an automatic reply in the phone's language, from the tenant's overrides or
/// the CTIA-style default.
pub fn reply_text(t: &Tenant, kind: ReplyKind, lang: Lang) -> String {
    let contact = contact_of(t);
    let keyword = t.settings.opt_in_keyword();
    let text = match t.settings.reply_texts.get(&text_key(kind.as_str(), lang)) {
        Some(custom) => {
            compose::fill(custom, &t.name, &contact).replace("{opt_in_keyword}", keyword)
        }
        // The defaults say START; a tenant whose provider lifts its block on another word
        // (its Advanced Opt-Out opt-in keyword) has that word named instead.
        None if keyword != "START"
            && matches!(
                kind,
                ReplyKind::OptOutAll | ReplyKind::OptOutMarketing | ReplyKind::ProviderBlocked
            ) =>
        {
            compose::default_reply_in(kind, lang, &t.name, &contact).replace("START", keyword)
        }
        None => compose::default_reply_in(kind, lang, &t.name, &contact),
    };
    if kind == ReplyKind::Help {
        with_casl_identification(t, text)
    } else {
        text
    }
}

pub fn opt_in_request_text(t: &Tenant, lang: Lang) -> String {
    let text = match t
        .settings
        .reply_texts
        .get(&text_key("opt_in_request", lang))
    {
        Some(custom) => compose::fill(custom, &t.name, &contact_of(t)),
        None => compose::default_opt_in_request_in(lang, &t.name),
    };
    with_casl_identification(t, text)
}

/// A HELP reply to a phone opted out (or blocked at the provider) in its thread: it names
/// the word that resubscribes, the one the provider honours, unless it already does.
pub fn naming_opt_in_keyword(t: &Tenant, text: String, lang: Lang) -> String {
    let keyword = t.settings.opt_in_keyword();
    if assent_core::keyword::words(&text)
        .iter()
        .any(|w| w.eq_ignore_ascii_case(keyword))
    {
        return text;
    }
    let sentence = match lang {
        Lang::Es => format!("Responde {keyword} para volver a suscribirte."),
        Lang::Fr => format!("Repondez {keyword} pour vous reabonner."),
        Lang::En => format!("Reply {keyword} to resubscribe."),
    };
    format!("{} {sentence}", text.trim_end())
}

/// The brand a tenant's marketing messages start with (its short brand name, else its
/// name).
pub fn brand(t: &Tenant) -> &str {
    t.settings.brand(&t.name)
}

/// A marketing body as it leaves: the brand first (unless the body already starts with it
/// or with the business's name), the footer in the phone's language last.
pub fn marketing_body(t: &Tenant, body: &str, lang: Lang) -> String {
    let footer = match t
        .settings
        .reply_texts
        .get(&text_key("marketing_footer", lang))
    {
        Some(footer) => footer.as_str(),
        None => compose::default_footer(lang),
    };
    compose::marketing_message(body, brand(t), &[t.name.as_str()], footer)
}

/// CASL: a tenant that texts Canada names its mailing address and contact in the consent
/// request and the HELP reply (once, if the tenant's own text already carries them).
fn with_casl_identification(t: &Tenant, text: String) -> String {
    match t.settings.casl_identification(&t.name) {
        Some(_) if text.contains(t.settings.mailing_address.trim()) => text,
        Some(id) => format!("{text} {id}"),
        None => text,
    }
}

pub(crate) fn contact_of(t: &Tenant) -> String {
    if !t.settings.help_contact.is_empty() {
        return t.settings.help_contact.clone();
    }
    t.senders
        .transactional
        .as_ref()
        .map(|n| n.to_string())
        .unwrap_or_else(|| "this number".into())
}

pub struct Outbound<'a> {
    pub tenant: &'a Tenant,
    pub channel: Channel,
    pub to: &'a E164,
    pub body: String,
    pub kind: MessageKind,
    pub purpose: Purpose,
    pub idempotency_key: Option<String>,
}

/// A new outbound message whose status follows the gate's queue-time decision.
pub fn outbound_message(
    o: Outbound<'_>,
    decision: Decision,
    now: DateTime<Utc>,
) -> Option<Message> {
    let from = o.tenant.sender(o.channel)?.clone();
    let (status, reason, due_at) = match decision {
        Decision::Allow => (MessageStatus::Queued, None, now),
        Decision::Defer { reason, until } => (MessageStatus::Deferred, Some(reason.into()), until),
        Decision::Block(r) => (MessageStatus::Blocked, Some(r.into()), now),
    };
    let auto = o.purpose == Purpose::AutoReply;
    Some(Message {
        id: new_id(),
        tenant_id: o.tenant.id.clone(),
        direction: Direction::Outbound,
        channel: o.channel,
        from,
        to: o.to.clone(),
        phone: o.to.clone(),
        segments: segments(&o.body).count as u32,
        body: o.body,
        kind: o.kind,
        purpose: Some(o.purpose),
        status,
        reason,
        provider_id: None,
        priority: if auto { 0 } else { 1 },
        due_at,
        // An opt-out confirmation not handed over within 5 minutes is never sent (FCC).
        expires_at: auto.then(|| now + Duration::minutes(5)),
        idempotency_key: o.idempotency_key,
        created_at: now,
        updated_at: now,
    })
}

fn ledger_entries(
    phone: &E164,
    changes: &[consent::Change],
    actor: &str,
    now: DateTime<Utc>,
    evidence: &Evidence,
) -> Vec<NewLedgerEntry> {
    changes
        .iter()
        .map(|c| {
            // An expiry is nobody's act and carries none of the event's evidence: it is
            // only noticed at that event.
            let expiry = c.source == Source::Expiry;
            NewLedgerEntry {
                phone: phone.clone(),
                channel: c.channel.into(),
                old_state: c.old_state,
                new_state: c.new_state,
                source: c.source,
                actor: if expiry {
                    "assent".into()
                } else {
                    actor.into()
                },
                occurred_at: c.at.unwrap_or(now),
                evidence: if expiry {
                    Evidence {
                        rule: c.rule.clone(),
                        ..Evidence::default()
                    }
                } else {
                    Evidence {
                        rule: c.rule.clone().or_else(|| evidence.rule.clone()),
                        ..evidence.clone()
                    }
                },
            }
        })
        .collect()
}

fn consent_changed(old: &ConsentState, new: &ConsentState) -> Option<ConsentState> {
    (old != new).then(|| new.clone())
}

/// The tenant's zone. A stored zone that does not parse is a bug elsewhere; New York is
/// the most common zone of Assent's tenants and the strictest for quiet hours in the East.
pub fn tenant_zone(t: &Tenant) -> assent_core::Tz {
    t.time_zone
}

/// An opt-in request for the phone in `snap`, and the pending state it leads to; or the
/// gate's reason for refusing.
fn plan_opt_in(
    snap: &PhoneSnapshot,
    phone: &E164,
    customer_asked: bool,
    source: Source,
    idempotency_key: Option<String>,
    now: DateTime<Utc>,
) -> std::result::Result<(Message, consent::Transition), Reason> {
    let purpose = Purpose::OptInRequest { customer_asked };
    let decision = gate_for(snap, phone, purpose, Stage::Queue, now);
    if let Decision::Block(reason) = decision {
        return Err(reason);
    }
    let body = opt_in_request_text(&snap.tenant, snap.consent.language);
    let msg = outbound_message(
        Outbound {
            tenant: &snap.tenant,
            channel: Channel::Marketing,
            to: phone,
            body,
            kind: MessageKind::OptInRequest,
            purpose,
            idempotency_key,
        },
        decision,
        now,
    )
    .ok_or(Reason::MarketingNotRegistered)?;
    let t = consent::apply(
        &snap.consent,
        &Event::OptInRequested {
            source,
            request: &msg.id,
        },
        policy(&snap.tenant),
        now,
    );
    Ok((msg, t))
}

/// What started an opt-in request.
pub struct OptInStart {
    pub source: Source,
    pub actor: String,
    /// The customer asked (web form): it goes at once, like a keyword reply.
    pub customer_asked: bool,
    pub evidence: Evidence,
    /// The caller's `Idempotency-Key`: a retried call finds the first request by it.
    pub idempotency_key: Option<String>,
}

/// Starts the double opt-in for one phone. Returns the request's message id, or the gate's
/// reason for refusing (in which case nothing was written).
pub async fn request_opt_in(
    app: &AppState,
    tenant: &Tenant,
    phone: &E164,
    start: OptInStart,
) -> Result<std::result::Result<String, Reason>> {
    let now = app.clock.now();
    let mut answer = Err(Reason::InvalidNumber);
    audit::of(app)
        .transact(&tenant.id, phone, now, None, &mut |snap| {
            let (msg, t) = match plan_opt_in(
                snap,
                phone,
                start.customer_asked,
                start.source,
                start.idempotency_key.clone(),
                now,
            ) {
                Ok(planned) => planned,
                Err(reason) => {
                    answer = Err(reason);
                    return Plan::default();
                }
            };
            let evidence = Evidence {
                text: Some(msg.body.clone()),
                ..start.evidence.clone()
            };
            answer = Ok(msg.id.clone());
            Plan {
                consent: consent_changed(&snap.consent, &t.state),
                ledger: ledger_entries(phone, &t.changes, &start.actor, now, &evidence),
                messages: vec![msg],
                ..Default::default()
            }
        })
        .await?;
    Ok(answer)
}

/// Whether a stored message's body is what `requested` became: the same text, or (for
/// marketing) the text with the footer Assent added in the phone's language.
pub fn same_body(t: &Tenant, purpose: Purpose, stored: &str, requested: &str) -> bool {
    let requested = requested.trim_end();
    if purpose == Purpose::Marketing {
        // Assent put the brand in front: compare what follows it.
        let named = compose::with_brand(requested, brand(t), &[t.name.as_str()]);
        if stored == named
            || stored
                .strip_prefix(named.as_str())
                .is_some_and(|rest| rest.starts_with('\n'))
        {
            return true;
        }
    }
    stored == requested
        || (purpose == Purpose::Marketing
            && stored
                .strip_prefix(requested)
                .is_some_and(|rest| rest.starts_with('\n')))
}

/// Queues one message through the gate. A refusal writes nothing.
pub async fn send(
    app: &AppState,
    tenant: &Tenant,
    phone: &E164,
    purpose: Purpose,
    body: &str,
    kind: MessageKind,
    idempotency_key: Option<String>,
) -> Result<std::result::Result<Message, Reason>> {
    send_as(
        app,
        tenant,
        phone,
        purpose,
        body,
        kind,
        idempotency_key,
        WrittenAs::default(),
    )
    .await
}

/// What a message is written as beyond its words: the id it takes (the Twilio-compatible
/// API writes the message's status callback under its id before the message is queued, so
/// that no status change can come first) and the web app user who wrote it (recorded in
/// the message's own transaction).
#[derive(Debug, Default, Clone, Copy)]
pub struct WrittenAs<'a> {
    pub id: Option<&'a str>,
    pub author: Option<&'a str>,
}

/// [`send`], the message written as `written` says.
#[allow(clippy::too_many_arguments)]
pub async fn send_as(
    app: &AppState,
    tenant: &Tenant,
    phone: &E164,
    purpose: Purpose,
    body: &str,
    kind: MessageKind,
    idempotency_key: Option<String>,
    written: WrittenAs<'_>,
) -> Result<std::result::Result<Message, Reason>> {
    let now = app.clock.now();
    let mut answer = Err(Reason::InvalidNumber);
    audit::of(app)
        .transact(&tenant.id, phone, now, None, &mut |snap| {
            let decision = gate_for(snap, phone, purpose, Stage::Queue, now);
            if let Decision::Block(reason) = decision {
                answer = Err(reason);
                return Plan::default();
            }
            let body = if purpose == Purpose::Marketing {
                marketing_body(&snap.tenant, body, snap.consent.language)
            } else {
                body.trim_end().to_string()
            };
            let msg = outbound_message(
                Outbound {
                    tenant: &snap.tenant,
                    channel: purpose.channel(),
                    to: phone,
                    body,
                    kind,
                    purpose,
                    idempotency_key: idempotency_key.clone(),
                },
                decision,
                now,
            );
            match msg {
                Some(mut m) => {
                    if let Some(id) = written.id {
                        m.id = id.to_string();
                    }
                    answer = Ok(m.clone());
                    Plan {
                        messages: vec![m],
                        author: written.author.map(str::to_string),
                        ..Default::default()
                    }
                }
                None => Plan::default(),
            }
        })
        .await?;
    Ok(answer)
}

/// The opt-out confirmation a thread's STOP earns, in the phone's language.
fn opt_out_reply(
    snap: &PhoneSnapshot,
    thread: Thread,
    phone: &E164,
    state: &ConsentState,
    now: DateTime<Utc>,
) -> Option<Message> {
    let kind = if thread == Thread::Marketing && !snap.tenant.settings.stop_revokes_all {
        ReplyKind::OptOutMarketing
    } else {
        ReplyKind::OptOutAll
    };
    let d = gate_for(snap, phone, Purpose::AutoReply, Stage::Queue, now);
    outbound_message(
        Outbound {
            tenant: &snap.tenant,
            channel: thread.reply_channel(),
            to: phone,
            body: reply_text(&snap.tenant, kind, state.language),
            kind: MessageKind::AutoReply,
            purpose: Purpose::AutoReply,
            idempotency_key: None,
        },
        d,
        now,
    )
}

/// Applies a person's decision on a review item (or the deadline's, with actor `assent`).
/// `Conflict` when it was decided already, by anyone: the first decision stands.
pub async fn decide_review(
    app: &AppState,
    tenant: &Tenant,
    review: &Review,
    opt_out: bool,
    actor: &str,
) -> Result<()> {
    let now = app.clock.now();
    let decision = if opt_out {
        ReviewDecision::OptOut
    } else {
        ReviewDecision::NotOptOut
    };
    audit::of(app)
        .transact(&tenant.id, &review.phone, now, None, &mut |snap| {
            let evidence = Evidence {
                text: Some(review.text.clone()),
                rule: Some(if actor == "assent" {
                    "review:deadline_passed".to_string()
                } else {
                    format!("review:{decision}")
                }),
                ..Default::default()
            };
            let mut state = snap.consent.clone();
            state.open_reviews.remove(&review.id);
            let mut plan = Plan {
                review_decision: Some((review.id.clone(), decision.clone())),
                // What waited for this review is decided again at hand-off: sent if the
                // text was not a revocation, blocked if it was.
                release_held: true,
                ..Default::default()
            };
            if opt_out {
                let t = consent::apply(
                    &state,
                    &Event::ReviewOptOut {
                        thread: review.thread,
                    },
                    policy(&snap.tenant),
                    now,
                );
                plan.ledger = ledger_entries(&review.phone, &t.changes, actor, now, &evidence);
                plan.messages.extend(opt_out_reply(
                    snap,
                    review.thread,
                    &review.phone,
                    &t.state,
                    now,
                ));
                state = t.state;
            } else {
                // The person's call is evidence too, even though nothing changes.
                let channel = review.thread.reply_channel();
                let current = match channel {
                    Channel::Marketing => state.marketing.into(),
                    Channel::Transactional => {
                        LedgerState::transactional(state.transactional_opted_out)
                    }
                };
                plan.ledger.push(NewLedgerEntry {
                    phone: review.phone.clone(),
                    channel: channel.into(),
                    old_state: current,
                    new_state: current,
                    source: Source::Review,
                    actor: actor.into(),
                    occurred_at: now,
                    evidence: evidence.clone(),
                });
            }
            plan.consent = consent_changed(&snap.consent, &state);
            plan
        })
        .await?;
    tracing::info!(
        tenant = %tenant.id,
        review = %review.id,
        phone = %review.phone.masked(),
        decision = decision.as_str(),
        actor,
        "review decided"
    );
    Ok(())
}

/// Decides every review whose deadline has passed as an opt-out, by `assent`. Returns how
/// many it decided; a review decided by a person meanwhile is left as they decided it.
pub async fn decide_overdue_reviews(app: &AppState) -> Result<u64> {
    let mut decided = 0;
    loop {
        let overdue = app.store.overdue_reviews(app.clock.now(), 100).await?;
        let n = overdue.len();
        for (tenant_id, review) in overdue {
            let Some(tenant) = app.store.tenant(&tenant_id).await? else {
                continue;
            };
            match decide_review(app, &tenant, &review, true, "assent").await {
                Ok(()) => decided += 1,
                Err(StoreError::Conflict(_)) => {}
                Err(e) => return Err(e),
            }
        }
        if n < 100 {
            return Ok(decided);
        }
    }
}

/// Decides overdue reviews as they fall due. A deadline is days away, so a look every
/// half minute is plenty; every process may run it, since each decision is conditional.
pub async fn run_review_deadlines(app: AppState) {
    loop {
        match decide_overdue_reviews(&app).await {
            Ok(0) => {}
            Ok(n) => {
                tracing::info!(n, "reviews past their deadline decided as opt-outs");
                app.wake.notify_one();
            }
            Err(e) => tracing::error!(error = %e, "could not decide overdue reviews"),
        }
        tokio::time::sleep(std::time::Duration::from_secs(30)).await;
    }
}

/// Twilio's error text for 21610, kept as the evidence of a provider STOP-list refusal.
pub const STOP_LIST_ERROR: &str = "Twilio error 21610: Attempt to send to unsubscribed recipient";

/// The provider refused a send because the number is on its STOP list for that sender
/// (21610): the effect of a STOP in the thread of the number it was sent from.
pub async fn provider_stop_list(app: &AppState, msg: &Message) -> Result<()> {
    let Some(tenant) = app.store.tenant(&msg.tenant_id).await? else {
        return Ok(());
    };
    let thread = tenant.thread_of(&msg.from).unwrap_or(match msg.channel {
        Channel::Marketing => Thread::Marketing,
        Channel::Transactional => Thread::Transactional,
    });
    let now = app.clock.now();
    audit::of(app)
        .transact(&tenant.id, &msg.phone, now, None, &mut |snap| {
            let t = consent::apply(
                &snap.consent,
                &Event::ProviderStopList { thread },
                policy(&snap.tenant),
                now,
            );
            let evidence = Evidence {
                // The refused message: the provider's id when it gave one, else ours.
                message_sid: Some(msg.provider_id.clone().unwrap_or_else(|| msg.id.clone())),
                text: Some(STOP_LIST_ERROR.into()),
                ..Default::default()
            };
            Plan {
                consent: consent_changed(&snap.consent, &t.state),
                ledger: ledger_entries(&msg.phone, &t.changes, "carrier", now, &evidence),
                ..Default::default()
            }
        })
        .await?;
    Ok(())
}

/// Who made a change: the ledger's source and actor.
#[derive(Debug, Clone, Copy)]
pub struct Who<'a> {
    pub source: Source,
    pub actor: &'a str,
}

/// A revocation that came another way, as a person records it.
#[derive(Debug, Clone, Copy)]
pub struct RecordedOptOut<'a> {
    pub scope: Scope,
    pub method: OptOutMethod,
    pub note: Option<&'a str>,
}

/// The longest note a recorded opt-out keeps.
pub const OPT_OUT_NOTE_CHARS: usize = 1000;

impl<'a> RecordedOptOut<'a> {
    /// Reads a recorded opt-out as the API and the customer record post it: `scope`
    /// marketing or all, how it came in, and an optional note (blank is none).
    pub fn parse(
        scope: &str,
        method: &str,
        note: Option<&'a str>,
    ) -> std::result::Result<Self, Error> {
        let scope = scope
            .parse::<Scope>()
            .ok()
            .ok_or_else(|| Error::invalid("scope", "must be marketing or all"))?;
        let method = method.parse::<OptOutMethod>().ok().ok_or_else(|| {
            Error::invalid(
                "method",
                "must be phone_call, email, in_person, letter or other",
            )
        })?;
        let note = note.map(str::trim).filter(|n| !n.is_empty());
        if note.is_some_and(|n| n.chars().count() > OPT_OUT_NOTE_CHARS) {
            return Err(Error::invalid("note", "must be at most 1,000 characters"));
        }
        Ok(RecordedOptOut {
            scope,
            method,
            note,
        })
    }
}

assent_core::text_enum! {
    /// How a revocation that came another way reached the business.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum OptOutMethod as "method" {
        PhoneCall = "phone_call",
        Email = "email",
        InPerson = "in_person",
        Letter = "letter",
        Other = "other",
    }
}

impl OptOutMethod {
    pub fn label(self) -> &'static str {
        match self {
            OptOutMethod::PhoneCall => "Phone call",
            OptOutMethod::Email => "Email",
            OptOutMethod::InPerson => "In person",
            OptOutMethod::Letter => "Letter",
            OptOutMethod::Other => "Other",
        }
    }
}

/// Records a revocation that came another way (a call, an email, in person, a letter):
/// `scope` marketing or everything, the method as the rule, the note as the text, the person
/// as actor. No confirmation is texted: the customer did not ask by text.
pub async fn record_opt_out(
    app: &AppState,
    tenant: &Tenant,
    phone: &E164,
    r: &RecordedOptOut<'_>,
    who: Who<'_>,
) -> Result<()> {
    let (scope, method, note) = (r.scope, r.method, r.note);
    let Who { source, actor } = who;
    let now = app.clock.now();
    audit::of(app)
        .transact(&tenant.id, phone, now, None, &mut |snap| {
            let t = consent::apply(
                &snap.consent,
                &Event::RecordedOptOut {
                    scope,
                    source,
                    rule: method.as_str(),
                    at: None,
                },
                policy(&snap.tenant),
                now,
            );
            let evidence = Evidence {
                text: note.map(str::to_string),
                ..Default::default()
            };
            Plan {
                consent: consent_changed(&snap.consent, &t.state),
                ledger: ledger_entries(phone, &t.changes, actor, now, &evidence),
                ..Default::default()
            }
        })
        .await?;
    Ok(())
}

/// An opt-out imported from another system, dated when it happened there: it opts out only
/// if newer than the last consent given here; otherwise it is recorded and changes nothing.
/// Returns whether it was applied.
pub async fn import_opt_out(
    app: &AppState,
    tenant: &Tenant,
    phone: &E164,
    scope: Scope,
    at: DateTime<Utc>,
    evidence: Evidence,
) -> Result<bool> {
    let now = app.clock.now();
    let mut applied = false;
    audit::of(app)
        .transact(&tenant.id, phone, now, None, &mut |snap| {
            let t = consent::apply(
                &snap.consent,
                &Event::RecordedOptOut {
                    scope,
                    source: Source::Import,
                    rule: "import",
                    at: Some(at),
                },
                policy(&snap.tenant),
                now,
            );
            // The same rule the state machine applied: older than the last consent given
            // here is evidence only.
            applied = snap.consent.last_opt_in.is_none_or(|last| at > last);
            Plan {
                consent: consent_changed(&snap.consent, &t.state),
                ledger: ledger_entries(phone, &t.changes, "import", now, &evidence),
                ..Default::default()
            }
        })
        .await?;
    Ok(applied)
}

/// Sets one contact method's toggles, recorded with the person as actor. Turning Marketing
/// updates off for a phone that is opted in (or pending) is that customer's revocation,
/// passed on by the person: it opts the phone out of marketing in the same transaction.
pub async fn set_notifications(
    app: &AppState,
    tenant_id: &str,
    customer_id: &str,
    phone: &E164,
    (old, new): ((bool, bool), (bool, bool)),
    who: Who<'_>,
) -> Result<()> {
    let Who { source, actor } = who;
    let now = app.clock.now();
    audit::of(app)
        .transact(tenant_id, phone, now, None, &mut |snap| {
            let mut ledger = toggle_entries(phone, Some(old), new, source, actor, now);
            let mut state = snap.consent.clone();
            let switched_off = old.1 && !new.1;
            if switched_off
                && matches!(
                    snap.consent.marketing,
                    consent::MarketingStatus::OptedIn | consent::MarketingStatus::Pending
                )
            {
                let t = consent::apply(
                    &snap.consent,
                    &Event::RecordedOptOut {
                        scope: Scope::Marketing,
                        source,
                        rule: "marketing_updates_off",
                        at: None,
                    },
                    policy(&snap.tenant),
                    now,
                );
                ledger.extend(ledger_entries(
                    phone,
                    &t.changes,
                    actor,
                    now,
                    &Evidence::default(),
                ));
                state = t.state;
            }
            Plan {
                consent: consent_changed(&snap.consent, &state),
                ledger,
                toggles: Some((customer_id.to_string(), new.0, new.1)),
                ..Default::default()
            }
        })
        .await?;
    Ok(())
}

/// Ledger entries for toggle changes on a contact method.
pub fn toggle_entries(
    phone: &E164,
    old: Option<(bool, bool)>,
    new: (bool, bool),
    source: Source,
    actor: &str,
    now: DateTime<Utc>,
) -> Vec<NewLedgerEntry> {
    let mut out = Vec::new();
    for (channel, before, after) in [
        (Topic::JobNotifications, old.map(|o| o.0), new.0),
        (Topic::MarketingUpdates, old.map(|o| o.1), new.1),
    ] {
        if before == Some(after) {
            continue;
        }
        out.push(NewLedgerEntry {
            phone: phone.clone(),
            channel,
            old_state: before.map_or(LedgerState::None, LedgerState::toggle),
            new_state: LedgerState::toggle(after),
            source,
            actor: actor.into(),
            occurred_at: now,
            evidence: Evidence::default(),
        });
    }
    out
}
