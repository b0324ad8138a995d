//! The workflows: each one loads a phone's snapshot through the store, lets the core decide
//! (state machine and gate), and hands the store the plan to write in the same transaction.

use assent_core::compose::{self, segments};
use assent_core::consent::{self, Channel, ConsentState, Event, Policy, ReplyKind, Source, Thread};
use assent_core::gate::{self, Decision, GateInput, Purpose, Reason, Stage};
use assent_core::keyword::{self, Classified};
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
    let tz = snap
        .tenant
        .time_zone
        .parse()
        .unwrap_or(assent_core::Tz::America__New_York);
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

pub fn policy(t: &Tenant) -> Policy {
    Policy {
        stop_revokes_all: t.settings.stop_revokes_all,
        provider_answers_keywords: t.settings.keyword_replies == KeywordReplies::Provider,
    }
}

/// The text of an automatic reply, from the tenant's overrides or the CTIA-style default.
pub fn reply_text(t: &Tenant, kind: ReplyKind) -> String {
    let contact = contact_of(t);
    match t.settings.reply_texts.get(kind.as_str()) {
        Some(custom) => compose::fill(custom, &t.name, &contact),
        None => compose::default_reply(kind, &t.name, &contact),
    }
}

pub fn opt_in_request_text(t: &Tenant) -> String {
    match t.settings.reply_texts.get("opt_in_request") {
        Some(custom) => compose::fill(custom, &t.name, &contact_of(t)),
        None => compose::default_opt_in_request(&t.name),
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
        Decision::Defer { reason, until } => (
            MessageStatus::Deferred,
            Some(reason.as_str().to_string()),
            until,
        ),
        Decision::Block(r) => (MessageStatus::Blocked, Some(r.as_str().to_string()), now),
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
                channel: c.channel.as_str().into(),
                old_state: c.old_state.clone(),
                new_state: c.new_state.clone(),
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

pub struct Inbound {
    pub message_sid: String,
    pub from: E164,
    pub to: E164,
    pub body: String,
    /// Twilio's `OptOutType`: the provider already answered this keyword.
    pub provider_answered: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundOutcome {
    pub duplicate: bool,
    pub opted_out: bool,
    pub reply: Option<ReplyKind>,
}

/// Records an inbound text and acts on it, all in one transaction.
pub async fn receive(app: &AppState, tenant: &Tenant, inbound: &Inbound) -> Result<InboundOutcome> {
    let Some(thread) = tenant.thread_of(&inbound.to) else {
        return Err(StoreError::NotFound);
    };
    let now = app.clock.now();
    let classified = keyword::classify(&inbound.body);
    let mut outcome = InboundOutcome {
        duplicate: false,
        opted_out: false,
        reply: None,
    };
    let result = app
        .store
        .transact(
            &tenant.id,
            &inbound.from,
            now,
            Some(&inbound.message_sid),
            &mut |snap| {
                let inbound_msg = Message {
                    id: new_id(),
                    tenant_id: tenant.id.clone(),
                    direction: Direction::Inbound,
                    channel: thread.reply_channel(),
                    from: inbound.from.clone(),
                    to: inbound.to.clone(),
                    phone: inbound.from.clone(),
                    body: inbound.body.clone(),
                    kind: MessageKind::Customer,
                    purpose: None,
                    status: MessageStatus::Received,
                    reason: None,
                    provider_id: Some(inbound.message_sid.clone()),
                    segments: segments(&inbound.body).count as u32,
                    priority: 1,
                    due_at: now,
                    expires_at: None,
                    idempotency_key: None,
                    created_at: now,
                    updated_at: now,
                };
                let t = consent::apply(
                    &snap.consent,
                    &Event::Inbound {
                        thread,
                        classified: &classified,
                        provider_answered: inbound.provider_answered,
                    },
                    policy(&snap.tenant),
                    now,
                );
                let evidence = Evidence {
                    message_sid: Some(inbound.message_sid.clone()),
                    text: Some(inbound.body.clone()),
                    ..Default::default()
                };
                let mut plan = Plan {
                    consent: consent_changed(&snap.consent, &t.state),
                    ledger: ledger_entries(&inbound.from, &t.changes, "customer", now, &evidence),
                    ..Default::default()
                };
                outcome.opted_out = t
                    .changes
                    .iter()
                    .any(|c| c.new_state == "opted_out" && c.old_state != "opted_out");
                if let Some(kind) = t.reply {
                    let decision =
                        gate_for(snap, &inbound.from, Purpose::AutoReply, Stage::Queue, now);
                    let msg = outbound_message(
                        Outbound {
                            tenant: &snap.tenant,
                            channel: thread.reply_channel(),
                            to: &inbound.from,
                            body: reply_text(&snap.tenant, kind),
                            kind: MessageKind::AutoReply,
                            purpose: Purpose::AutoReply,
                            idempotency_key: None,
                        },
                        decision,
                        now,
                    );
                    // Replies leave from the number the customer wrote to, whatever its channel.
                    if let Some(mut m) = msg {
                        m.from = inbound.to.clone();
                        plan.messages.push(m);
                    }
                    outcome.reply = Some(kind);
                }
                if let Classified::Review { word } = &classified {
                    plan.review = Some(NewReview {
                        id: new_id(),
                        thread,
                        message_id: inbound_msg.id.clone(),
                        text: inbound.body.clone(),
                        word: word.clone(),
                    });
                }
                plan.messages.insert(0, inbound_msg);
                plan
            },
        )
        .await?;
    outcome.duplicate = result == Transacted::Duplicate;
    Ok(outcome)
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
    app.store
        .transact(&tenant.id, phone, now, None, &mut |snap| {
            let purpose = Purpose::OptInRequest {
                customer_asked: start.customer_asked,
            };
            let decision = gate_for(snap, phone, purpose, Stage::Queue, now);
            if let Decision::Block(reason) = decision {
                answer = Err(reason);
                return Plan::default();
            }
            let body = opt_in_request_text(&snap.tenant);
            let Some(msg) = outbound_message(
                Outbound {
                    tenant: &snap.tenant,
                    channel: Channel::Marketing,
                    to: phone,
                    body: body.clone(),
                    kind: MessageKind::OptInRequest,
                    purpose,
                    idempotency_key: start.idempotency_key.clone(),
                },
                decision,
                now,
            ) else {
                answer = Err(Reason::MarketingNotRegistered);
                return Plan::default();
            };
            let t = consent::apply(
                &snap.consent,
                &Event::OptInRequested {
                    source: start.source,
                },
                policy(&snap.tenant),
                now,
            );
            let evidence = Evidence {
                text: Some(body),
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

/// The text a message of `purpose` is queued with: marketing gets its STOP footer.
pub fn final_body(purpose: Purpose, body: &str) -> String {
    if purpose == Purpose::Marketing {
        compose::with_marketing_footer(body)
    } else {
        body.trim_end().to_string()
    }
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
    let now = app.clock.now();
    let body = final_body(purpose, body);
    let mut answer = Err(Reason::InvalidNumber);
    app.store
        .transact(&tenant.id, phone, now, None, &mut |snap| {
            let decision = gate_for(snap, phone, purpose, Stage::Queue, now);
            if let Decision::Block(reason) = decision {
                answer = Err(reason);
                return Plan::default();
            }
            let msg = outbound_message(
                Outbound {
                    tenant: &snap.tenant,
                    channel: purpose.channel(),
                    to: phone,
                    body: body.clone(),
                    kind,
                    purpose,
                    idempotency_key: idempotency_key.clone(),
                },
                decision,
                now,
            );
            match msg {
                Some(m) => {
                    answer = Ok(m.clone());
                    Plan {
                        messages: vec![m],
                        ..Default::default()
                    }
                }
                None => Plan::default(),
            }
        })
        .await?;
    Ok(answer)
}

/// Applies a person's decision on a review item.
pub async fn decide_review(
    app: &AppState,
    tenant: &Tenant,
    review: &Review,
    opt_out: bool,
    actor: &str,
) -> Result<()> {
    let now = app.clock.now();
    let decision = if opt_out { "opt_out" } else { "not_opt_out" };
    app.store
        .transact(&tenant.id, &review.phone, now, None, &mut |snap| {
            let evidence = Evidence {
                text: Some(review.text.clone()),
                rule: Some(format!("review:{decision}")),
                ..Default::default()
            };
            let mut plan = Plan {
                review_decision: Some((review.id.clone(), decision.into())),
                ..Default::default()
            };
            if opt_out {
                let t = consent::apply(
                    &snap.consent,
                    &Event::ReviewOptOut {
                        thread: review.thread,
                    },
                    policy(&snap.tenant),
                    now,
                );
                plan.consent = consent_changed(&snap.consent, &t.state);
                plan.ledger = ledger_entries(&review.phone, &t.changes, actor, now, &evidence);
                let kind = if review.thread == Thread::Marketing
                    && !snap.tenant.settings.stop_revokes_all
                {
                    ReplyKind::OptOutMarketing
                } else {
                    ReplyKind::OptOutAll
                };
                let d = gate_for(snap, &review.phone, Purpose::AutoReply, Stage::Queue, now);
                plan.messages.extend(outbound_message(
                    Outbound {
                        tenant: &snap.tenant,
                        channel: review.thread.reply_channel(),
                        to: &review.phone,
                        body: reply_text(&snap.tenant, kind),
                        kind: MessageKind::AutoReply,
                        purpose: Purpose::AutoReply,
                        idempotency_key: None,
                    },
                    d,
                    now,
                ));
            } else {
                // The person's call is evidence too, even though nothing changes.
                let channel = review.thread.reply_channel();
                let state = match channel {
                    Channel::Marketing => snap.consent.marketing.as_str(),
                    Channel::Transactional if snap.consent.transactional_opted_out => "opted_out",
                    Channel::Transactional => "active",
                };
                plan.ledger.push(NewLedgerEntry {
                    phone: review.phone.clone(),
                    channel: channel.as_str().into(),
                    old_state: state.into(),
                    new_state: state.into(),
                    source: Source::Review,
                    actor: actor.into(),
                    occurred_at: now,
                    evidence: evidence.clone(),
                });
            }
            plan
        })
        .await?;
    Ok(())
}

/// A carrier block (21610) opts out the thread of the message that was refused.
pub async fn carrier_block(app: &AppState, msg: &Message) -> Result<()> {
    let Some(tenant) = app.store.tenant(&msg.tenant_id).await? else {
        return Ok(());
    };
    let thread = tenant.thread_of(&msg.from).unwrap_or(match msg.channel {
        Channel::Marketing => Thread::Marketing,
        Channel::Transactional => Thread::Transactional,
    });
    let now = app.clock.now();
    app.store
        .transact(&tenant.id, &msg.phone, now, None, &mut |snap| {
            let t = consent::apply(
                &snap.consent,
                &Event::CarrierBlock { thread },
                policy(&snap.tenant),
                now,
            );
            let evidence = Evidence {
                message_sid: msg.provider_id.clone(),
                text: Some("Twilio error 21610: attempt to send to unsubscribed recipient".into()),
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

/// Ledger entries for toggle changes on a contact method.
pub fn toggle_entries(
    phone: &E164,
    old: Option<(bool, bool)>,
    new: (bool, bool),
    source: Source,
    actor: &str,
    now: DateTime<Utc>,
) -> Vec<NewLedgerEntry> {
    let name = |on: bool| if on { "on" } else { "off" };
    let mut out = Vec::new();
    for (channel, before, after) in [
        ("job_notifications", old.map(|o| o.0), new.0),
        ("marketing_updates", old.map(|o| o.1), new.1),
    ] {
        if before == Some(after) {
            continue;
        }
        out.push(NewLedgerEntry {
            phone: phone.clone(),
            channel: channel.into(),
            old_state: before.map(name).unwrap_or("none").into(),
            new_state: name(after).into(),
            source,
            actor: actor.into(),
            occurred_at: now,
            evidence: Evidence::default(),
        });
    }
    out
}

/// Midnight of a `YYYY-MM-DD` date in the tenant's zone, or of the day after (`next_day`:
/// a `to` date includes its whole day). The web's ledger filter and the API's export read
/// dates the same way.
pub fn day_start(t: &Tenant, s: &str, next_day: bool) -> Option<DateTime<Utc>> {
    use chrono::TimeZone;
    let d = chrono::NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").ok()?;
    let d = if next_day { d.succ_opt()? } else { d };
    let tz: assent_core::Tz = t
        .time_zone
        .parse()
        .unwrap_or(assent_core::Tz::America__New_York);
    tz.from_local_datetime(&d.and_hms_opt(0, 0, 0)?)
        .earliest()
        .map(|x| x.with_timezone(&Utc))
}
