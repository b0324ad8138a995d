//! An inbound text: recorded and acted on in one transaction of its phone. The core
//! decides what the text means for consent ([`consent::apply`]); this module turns that
//! decision into the plan the store writes, one step at a time.

use assent_core::compose::segments;
use assent_core::consent::{
    self, Channel, Event, LedgerState, MarketingStatus, ProviderKeyword, ReplyKind, Source, Thread,
    Topic, Transition,
};
use assent_core::gate::{Purpose, Stage};
use assent_core::keyword::{self, Classified, Reading};
use assent_core::phone::E164;
use assent_store::*;
use chrono::{DateTime, Utc};

use super::{
    Outbound, consent_changed, gate_for, ledger_entries, new_id, outbound_message, plan_opt_in,
    policy, reply_text, tenant_zone,
};
use crate::AppState;

pub struct Inbound {
    pub message_sid: String,
    pub from: E164,
    pub to: E164,
    pub body: String,
    /// Twilio's `OptOutType`: the provider already answered this keyword.
    pub provider_answered: bool,
    /// The `OptOutType` value, when it is one Assent knows (STOP, START, HELP).
    pub provider_keyword: Option<ProviderKeyword>,
}

/// What the message did at the provider: its `OptOutType`, or for an opt-in keyword that
/// came without one, `Start` when the provider lifts its block on that word anyway (START
/// and UNSTOP are Twilio's defaults; the tenant's configured keyword is its Advanced
/// Opt-Out one).
fn provider_keyword(
    tenant: &Tenant,
    inbound: &Inbound,
    reading: &Reading,
) -> Option<ProviderKeyword> {
    if inbound.provider_keyword.is_some() || inbound.provider_answered {
        return inbound.provider_keyword;
    }
    match &reading.classified {
        Classified::Resume { word }
            if word == "START"
                || word == "UNSTOP"
                || word.eq_ignore_ascii_case(tenant.settings.opt_in_keyword()) =>
        {
            Some(ProviderKeyword::Start)
        }
        _ => None,
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InboundOutcome {
    pub duplicate: bool,
    pub opted_out: bool,
    pub reply: Option<ReplyKind>,
}

/// Whether the opt-in request a YES from this phone would answer was handed to the carrier,
/// with its evidence (provider id, body). Read before the phone's transaction: a request's
/// status only moves forward, so a stale "still held" errs toward not counting the YES
/// (the customer's next YES does), never toward counting one early.
async fn pending_request(
    app: &AppState,
    tenant: &Tenant,
    phone: &E164,
) -> Result<(bool, Option<Message>)> {
    let snap = app
        .store
        .snapshot(&tenant.id, phone, app.clock.now())
        .await?;
    let Some(id) = snap.consent.pending_request.as_deref() else {
        // Pending before requests were tracked: the old rule (it was sent).
        return Ok((true, None));
    };
    let Some(m) = app.store.message(&tenant.id, id).await? else {
        return Ok((true, None));
    };
    let sent = matches!(
        m.status,
        MessageStatus::Sent
            | MessageStatus::Delivered
            | MessageStatus::Undelivered
            | MessageStatus::Unknown
    );
    Ok((sent, Some(m)))
}

/// Whether a message in this status will never reach the phone.
fn never_arrives(status: MessageStatus) -> bool {
    matches!(
        status,
        MessageStatus::Failed | MessageStatus::Blocked | MessageStatus::Expired
    )
}

/// Records an inbound text and acts on it, all in one transaction.
pub async fn receive(app: &AppState, tenant: &Tenant, inbound: &Inbound) -> Result<InboundOutcome> {
    let Some(thread) = tenant.thread_of(&inbound.to) else {
        return Err(StoreError::NotFound);
    };
    let reading = keyword::read(&inbound.body);
    // Only a YES on a thread that carries marketing can answer an opt-in request.
    let (request_sent, request) =
        if reading.classified == Classified::Yes && thread != Thread::Transactional {
            pending_request(app, tenant, &inbound.from).await?
        } else {
            (true, None)
        };
    let text = Text {
        inbound,
        provider_keyword: provider_keyword(tenant, inbound, &reading),
        thread,
        reading: &reading,
        request_sent,
        request: request.as_ref(),
        now: app.clock.now(),
    };
    let mut outcome = InboundOutcome::default();
    let result = super::audit::of(app)
        .transact(
            &tenant.id,
            &inbound.from,
            text.now,
            Some(&inbound.message_sid),
            &mut |snap| {
                let (plan, acted) = text.plan(snap);
                outcome = acted;
                plan
            },
        )
        .await?;
    outcome.duplicate = result == Transacted::Duplicate;
    Ok(outcome)
}

/// One inbound text, read, with what is known of the request a YES would answer.
struct Text<'a> {
    inbound: &'a Inbound,
    provider_keyword: Option<ProviderKeyword>,
    thread: Thread,
    reading: &'a Reading,
    request_sent: bool,
    request: Option<&'a Message>,
    now: DateTime<Utc>,
}

impl Text<'_> {
    /// The plan for the phone in `snap`: the text itself first, then the automatic reply,
    /// an opt-in request START asked for, a review, the consent change and its ledger.
    fn plan(&self, snap: &PhoneSnapshot) -> (Plan, InboundOutcome) {
        let received = self.message(&snap.tenant);
        let mut t = consent::apply(
            &snap.consent,
            &Event::Inbound {
                thread: self.thread,
                classified: &self.reading.classified,
                lang: self.reading.lang,
                provider_answered: self.inbound.provider_answered,
                provider_keyword: self.provider_keyword,
                request_sent: self.request_sent,
            },
            policy(&snap.tenant),
            self.now,
        );
        let evidence = self.evidence(&t);
        let mut plan = Plan::default();
        plan.messages.extend(self.reply(snap, &t));
        plan.messages.extend(self.requested_opt_in(snap, &mut t));
        if t.send_request_now {
            match self.request {
                // The request can no longer reach the customer, so a YES to it signs
                // nothing: they never saw its disclosure. They are texting now, so a new
                // request goes at once, as one they asked for; the 24 hours a pending request
                // holds the next back (about a request that reached them) do not apply, the
                // cap of unanswered requests in 30 days still does. Only while it is still
                // the pending one under the phone's lock: its status was read before the
                // lock, and another YES may have asked again in between.
                Some(m)
                    if never_arrives(m.status)
                        && t.state.pending_request.as_deref() == Some(m.id.as_str()) =>
                {
                    plan.messages.extend(self.ask(snap, &mut t, true));
                }
                _ => plan.release_request = t.state.pending_request.clone(),
            }
        }
        plan.review = self.review(snap, &mut t, &received.id);
        let mut ledger = ledger_entries(
            &self.inbound.from,
            &t.changes,
            "customer",
            self.now,
            &evidence,
        );
        if let Some(switched) = self.marketing_updates_on(snap, &t, &evidence) {
            plan.marketing_updates_on = true;
            ledger.push(switched);
        }
        let outcome = InboundOutcome {
            duplicate: false,
            opted_out: t.changes.iter().any(|c| {
                c.new_state == LedgerState::OptedOut && c.old_state != LedgerState::OptedOut
            }),
            reply: t.reply,
        };
        plan.consent = consent_changed(&snap.consent, &t.state);
        plan.ledger = ledger;
        plan.messages.insert(0, received);
        (plan, outcome)
    }

    /// The text as a received message.
    fn message(&self, tenant: &Tenant) -> Message {
        let i = self.inbound;
        Message {
            id: new_id(),
            tenant_id: tenant.id.clone(),
            direction: Direction::Inbound,
            channel: self.thread.reply_channel(),
            from: i.from.clone(),
            to: i.to.clone(),
            phone: i.from.clone(),
            body: i.body.clone(),
            kind: MessageKind::Customer,
            purpose: None,
            status: MessageStatus::Received,
            reason: None,
            provider_id: Some(i.message_sid.clone()),
            segments: segments(&i.body).count as u32,
            priority: 1,
            due_at: self.now,
            expires_at: None,
            idempotency_key: None,
            created_at: self.now,
            updated_at: self.now,
        }
    }

    /// The ledger's evidence: the text, and for a YES the request whose disclosure it
    /// signs.
    fn evidence(&self, t: &Transition) -> Evidence {
        let signed = self.request.filter(|_| t.written_consent);
        Evidence {
            message_sid: Some(self.inbound.message_sid.clone()),
            text: Some(self.inbound.body.clone()),
            request: signed.map(|r| r.provider_id.clone().unwrap_or_else(|| r.id.clone())),
            disclosure: signed.map(|r| r.body.clone()),
            ..Default::default()
        }
    }

    /// The automatic reply the text earns, through the gate, in the phone's language.
    fn reply(&self, snap: &PhoneSnapshot, t: &Transition) -> Option<Message> {
        let kind = t.reply?;
        let from = &self.inbound.from;
        let lang = t.state.language;
        let tenant = &snap.tenant;
        let (channel, body) = match kind {
            ReplyKind::ProviderBlocked => (
                self.unblocked_sender(tenant, t)?,
                reply_text(tenant, kind, lang),
            ),
            ReplyKind::Help => {
                let out = match self.thread {
                    Thread::Marketing => t.state.marketing == MarketingStatus::OptedOut,
                    _ => t.state.transactional_opted_out,
                } || t.state.provider_blocks(self.thread);
                let text = reply_text(tenant, kind, lang);
                let text = if out {
                    super::naming_opt_in_keyword(tenant, text, lang)
                } else {
                    text
                };
                (self.thread.reply_channel(), text)
            }
            _ => (self.thread.reply_channel(), reply_text(tenant, kind, lang)),
        };
        let decision = gate_for(snap, from, Purpose::AutoReply, Stage::Queue, self.now);
        let mut m = outbound_message(
            Outbound {
                tenant,
                channel,
                to: from,
                body,
                kind: MessageKind::AutoReply,
                purpose: Purpose::AutoReply,
                idempotency_key: None,
            },
            decision,
            self.now,
        )?;
        // Replies leave from the number the customer wrote to, whatever its channel; the
        // instruction to text START leaves from the sender the provider does not block.
        if kind != ReplyKind::ProviderBlocked {
            m.from = self.inbound.to.clone();
        }
        Some(m)
    }

    /// The channel whose sender may carry the instruction to text START to a phone the
    /// provider blocks in this thread: Twilio refuses every text from a blocked sender
    /// (21610), replies included, so only the transactional number can, when it is another
    /// number, not known to be blocked too, and the phone still takes its messages.
    fn unblocked_sender(&self, tenant: &Tenant, t: &Transition) -> Option<Channel> {
        let number = tenant.sender(Channel::Transactional)?;
        let usable = self.thread == Thread::Marketing
            && *number != self.inbound.to
            && !t.state.provider_blocks.contains(&Channel::Transactional)
            && !t.state.transactional_opted_out;
        usable.then_some(Channel::Transactional)
    }

    /// START from a phone that never saw the disclosure: the request goes at once, as the
    /// web form's does (the customer is waiting for it), and `t` becomes pending.
    fn requested_opt_in(&self, snap: &PhoneSnapshot, t: &mut Transition) -> Option<Message> {
        if !t.start_opt_in {
            return None;
        }
        self.ask(snap, t, false)
    }

    /// An opt-in request this text asked for, planned on the consent the text leaves
    /// (`t`); `None` when the gate refuses it. `last_failed`: the pending request never
    /// reached the phone, so it does not hold the next one back.
    fn ask(&self, snap: &PhoneSnapshot, t: &mut Transition, last_failed: bool) -> Option<Message> {
        let mut asked = snap.clone();
        asked.consent = t.state.clone();
        if last_failed {
            asked.consent.pending_since = None;
        }
        let (msg, asking) = plan_opt_in(
            &asked,
            &self.inbound.from,
            true,
            Source::Keyword,
            None,
            self.now,
        )
        .ok()?;
        t.state = asking.state;
        t.changes.extend(asking.changes);
        Some(msg)
    }

    /// A text that may mean stop waits for a person, until the tenant's deadline.
    fn review(
        &self,
        snap: &PhoneSnapshot,
        t: &mut Transition,
        message_id: &str,
    ) -> Option<NewReview> {
        let Classified::Review { word } = &self.reading.classified else {
            return None;
        };
        let deadline = consent::review_deadline(
            self.now,
            snap.tenant.settings.review_deadline_days,
            tenant_zone(&snap.tenant),
        );
        let id = new_id();
        t.state.open_reviews.insert(id.clone(), deadline);
        Some(NewReview {
            id,
            thread: self.thread,
            message_id: message_id.to_string(),
            text: self.inbound.body.clone(),
            word: word.clone(),
            deadline,
        })
    }

    /// Written consent is the customer's own yes to marketing: the switch that says so
    /// goes on on every record holding the phone. Its ledger entry, when it was off.
    fn marketing_updates_on(
        &self,
        snap: &PhoneSnapshot,
        t: &Transition,
        evidence: &Evidence,
    ) -> Option<NewLedgerEntry> {
        if !(t.written_consent && snap.toggles.on_a_record && !snap.toggles.marketing_updates) {
            return None;
        }
        Some(NewLedgerEntry {
            phone: self.inbound.from.clone(),
            channel: Topic::MarketingUpdates,
            old_state: LedgerState::Off,
            new_state: LedgerState::On,
            source: t
                .changes
                .last()
                .map(|c| c.source)
                .unwrap_or(Source::Keyword),
            actor: "customer".into(),
            occurred_at: self.now,
            evidence: evidence.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use assent_core::gate::RegistrationStatus;
    use chrono::{Duration, TimeZone};

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 4, 18, 0, 0).unwrap()
    }

    fn e164(s: &str) -> E164 {
        E164::parse(s).unwrap()
    }

    fn approved(kind: RegistrationKind) -> Option<Registration> {
        Some(Registration {
            kind,
            status: RegistrationStatus::Approved,
            reason: None,
            details: serde_json::json!({}),
            updated_at: now(),
        })
    }

    /// A phone whose pending request is `pending`, asked an hour ago; the first request
    /// (`r1`) failed at the carrier.
    fn pending_on(pending: &str) -> (PhoneSnapshot, Message) {
        let tenant = Tenant {
            id: "t".into(),
            slug: "acme".into(),
            name: "Acme".into(),
            time_zone: assent_core::Tz::America__Chicago,
            settings: Settings::default(),
            senders: Senders {
                transactional: Some(e164("+15125550100")),
                marketing: Some(e164("+15125550101")),
                former: Vec::new(),
            },
            created_at: now(),
        };
        let asked = now() - Duration::hours(1);
        let consent = consent::ConsentState {
            marketing: MarketingStatus::Pending,
            pending_since: Some(asked),
            unanswered_requests: vec![asked - Duration::hours(1), asked],
            pending_request: Some(pending.into()),
            ..Default::default()
        };
        let failed = Message {
            id: "r1".into(),
            tenant_id: "t".into(),
            direction: Direction::Outbound,
            channel: Channel::Marketing,
            from: e164("+15125550101"),
            to: e164("+15125550142"),
            phone: e164("+15125550142"),
            body: "Acme: Reply YES".into(),
            kind: MessageKind::OptInRequest,
            purpose: Some(Purpose::OptInRequest {
                customer_asked: false,
            }),
            status: MessageStatus::Failed,
            reason: None,
            provider_id: Some("SMr1".into()),
            segments: 1,
            priority: 1,
            due_at: asked,
            expires_at: None,
            idempotency_key: None,
            created_at: asked,
            updated_at: asked,
        };
        let snap = assent_store::testing::snapshot(
            tenant,
            Registrations {
                texting: approved(RegistrationKind::Texting),
                marketing: approved(RegistrationKind::Marketing),
            },
            consent,
        );
        (snap, failed)
    }

    fn plan_yes(snap: &PhoneSnapshot, failed: &Message) -> Plan {
        let inbound = Inbound {
            message_sid: "SMyes".into(),
            from: e164("+15125550142"),
            to: e164("+15125550101"),
            body: "YES".into(),
            provider_answered: false,
            provider_keyword: None,
        };
        let reading = keyword::read("YES");
        let text = Text {
            inbound: &inbound,
            provider_keyword: None,
            thread: Thread::Marketing,
            reading: &reading,
            request_sent: false,
            request: Some(failed),
            now: now(),
        };
        text.plan(snap).0
    }

    fn requests(plan: &Plan) -> usize {
        plan.messages
            .iter()
            .filter(|m| m.kind == MessageKind::OptInRequest)
            .count()
    }

    #[test]
    fn a_yes_to_the_failed_pending_request_asks_again() {
        let (snap, failed) = pending_on("r1");
        let plan = plan_yes(&snap, &failed);
        assert_eq!(requests(&plan), 1, "{plan:?}");
        assert_eq!(plan.release_request, None);
    }

    #[test]
    fn a_yes_after_another_yes_asked_again_only_releases_the_new_request() {
        // The YES read r1 as failed before its phone's lock; by then another YES had
        // asked again (r2 is pending, an hour old here): no third request.
        let (snap, failed) = pending_on("r2");
        let plan = plan_yes(&snap, &failed);
        assert_eq!(requests(&plan), 0, "{plan:?}");
        assert_eq!(plan.release_request.as_deref(), Some("r2"));
    }
}
