//! The consent state machine: what every inbound keyword, opt-in request, carrier block and
//! review decision does to a phone's consent, which ledger entries it writes, and which
//! automatic reply it earns. This is the one place to read "what happens on STOP".
//!
//! The state is a fold of the ledger: [`ConsentState::fold`] rebuilds it from the entries,
//! and the stores keep a copy only to read it quickly.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::keyword::{Classified, Lang};

/// How long a pending opt-in request waits for its YES.
pub const PENDING_TTL_DAYS: i64 = 30;
/// A repeated STOP or YES is not answered again within this window.
pub const REPEAT_REPLY_WINDOW_HOURS: i64 = 24;
/// At most this many unanswered opt-in requests per number in 30 days.
pub const MAX_UNANSWERED_REQUESTS: usize = 3;

crate::text_enum! {
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum Channel as "channel" {
        Transactional = "transactional",
        Marketing = "marketing",
    }
}

crate::text_enum! {
    /// The thread a message arrived in: which of the tenant's senders it was sent to.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Thread as "thread" {
        Transactional = "transactional",
        Marketing = "marketing",
        /// One number serves both channels: it acts as the transactional thread for STOP and
        /// RESTART words and as the marketing one for YES and the link phrase.
        Shared = "shared",
    }
}

impl Thread {
    /// The channel a reply in this thread is sent from.
    pub fn reply_channel(self) -> Channel {
        match self {
            Thread::Marketing => Channel::Marketing,
            _ => Channel::Transactional,
        }
    }
}

crate::text_enum! {
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    pub enum MarketingStatus as "marketing status" {
        #[default]
        None = "none",
        Pending = "pending",
        OptedIn = "opted_in",
        OptedOut = "opted_out",
    }
}

crate::text_enum! {
    /// Where a consent change came from (the ledger's `source`).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Source as "source" {
        CustomerRecord = "customer_record",
        OptInLink = "opt_in_link",
        WebForm = "web_form",
        Keyword = "keyword",
        FreeText = "free_text",
        Carrier = "carrier",
        Api = "api",
        Import = "import",
        Expiry = "expiry",
        Review = "review",
        /// A reassigned-number lookup answered that the number changed hands since the
        /// consent (Twilio Lookup's `reassigned_number`).
        ReassignedNumber = "reassigned_number",
    }
}

crate::text_enum! {
    /// What a ledger entry is about: a channel's consent, or one of a contact method's
    /// toggles (the ledger's `channel` column).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum Topic as "ledger channel" {
        Transactional = "transactional",
        Marketing = "marketing",
        JobNotifications = "job_notifications",
        MarketingUpdates = "marketing_updates",
    }
}

impl From<Channel> for Topic {
    fn from(c: Channel) -> Topic {
        match c {
            Channel::Transactional => Topic::Transactional,
            Channel::Marketing => Topic::Marketing,
        }
    }
}

impl Topic {
    /// The consent channel this entry is about, when it is one (not a toggle).
    pub fn channel(self) -> Option<Channel> {
        match self {
            Topic::Transactional => Some(Channel::Transactional),
            Topic::Marketing => Some(Channel::Marketing),
            Topic::JobNotifications | Topic::MarketingUpdates => None,
        }
    }
}

crate::text_enum! {
    /// A ledger entry's old or new state: the transactional channel's (`active`,
    /// `opted_out`), marketing's ([`MarketingStatus`]) or a toggle's (`on`, `off`, and
    /// `none` before a phone's first record).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum LedgerState as "ledger state" {
        Active = "active",
        OptedOut = "opted_out",
        None = "none",
        Pending = "pending",
        OptedIn = "opted_in",
        On = "on",
        Off = "off",
    }
}

impl From<MarketingStatus> for LedgerState {
    fn from(m: MarketingStatus) -> LedgerState {
        match m {
            MarketingStatus::None => LedgerState::None,
            MarketingStatus::Pending => LedgerState::Pending,
            MarketingStatus::OptedIn => LedgerState::OptedIn,
            MarketingStatus::OptedOut => LedgerState::OptedOut,
        }
    }
}

impl LedgerState {
    /// The transactional channel's state.
    pub fn transactional(opted_out: bool) -> LedgerState {
        if opted_out {
            LedgerState::OptedOut
        } else {
            LedgerState::Active
        }
    }

    /// A toggle's state.
    pub fn toggle(on: bool) -> LedgerState {
        if on {
            LedgerState::On
        } else {
            LedgerState::Off
        }
    }

    /// This state as marketing's, when it is one of marketing's.
    pub fn marketing(self) -> Option<MarketingStatus> {
        match self {
            LedgerState::None => Some(MarketingStatus::None),
            LedgerState::Pending => Some(MarketingStatus::Pending),
            LedgerState::OptedIn => Some(MarketingStatus::OptedIn),
            LedgerState::OptedOut => Some(MarketingStatus::OptedOut),
            LedgerState::Active | LedgerState::On | LedgerState::Off => None,
        }
    }
}

/// The consent of one phone at one tenant.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ConsentState {
    pub transactional_opted_out: bool,
    /// Which thread's STOP opted transactional out (only a marketing STOP under
    /// `stop_revokes_all` does that from the marketing side).
    pub transactional_out_by: Option<Channel>,
    pub marketing: MarketingStatus,
    /// Which thread's STOP opted marketing out: a transactional STOP revokes marketing too,
    /// and its RESTART then leaves marketing at `none`; a marketing STOP of its own stays.
    pub marketing_out_by: Option<Channel>,
    pub pending_since: Option<DateTime<Utc>>,
    /// Opt-in requests sent since the last opt-in (for the 3-in-30-days throttle).
    pub unanswered_requests: Vec<DateTime<Utc>>,
    pub last_opt_out_reply: Option<DateTime<Utc>>,
    pub last_opt_in_reply: Option<DateTime<Utc>>,
    /// The language of the phone's last keyword (replies follow it) until an English keyword
    /// or a person changes it.
    #[serde(default)]
    pub language: Lang,
    /// Reviews open for this phone, by id, with when each is decided as an opt-out if nobody
    /// decides it first. While any is open, only job notifications, missed-call text-backs
    /// and automatic replies go.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub open_reviews: std::collections::BTreeMap<String, DateTime<Utc>>,
    /// When the phone's owner last said "wrong number": the number may have changed hands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub possibly_reassigned: Option<DateTime<Utc>>,
    /// The last time the customer gave consent (YES, the link phrase, START): an opt-out
    /// imported from another system counts only if it is newer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_opt_in: Option<DateTime<Utc>>,
    /// The message id of the opt-in request a YES would answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_request: Option<String>,
    /// The senders (by channel) the provider is known to block for this phone: its
    /// `OptOutType=STOP` or a 21610 refusal, until its `OptOutType=START`. Only the
    /// provider's own opt-in keyword lifts such a block, so a YES there changes nothing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub provider_blocks: Vec<Channel>,
}

/// One ledger entry as the state machine writes it; the store adds tenant, phone, time,
/// actor and evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub channel: Channel,
    pub old_state: LedgerState,
    pub new_state: LedgerState,
    pub source: Source,
    /// The free-text rule or keyword that matched.
    pub rule: Option<String>,
    /// When it happened, if not at the event being processed: a pending request's expiry
    /// is noticed at the phone's next event but happened 30 days after the request.
    #[serde(default)]
    pub at: Option<DateTime<Utc>>,
}

crate::text_enum! {
    /// The automatic reply an inbound earns; the reply text comes from the tenant's settings.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum ReplyKind as "reply kind" {
        /// Opted out of everything (transactional thread).
        OptOutAll = "opt_out",
        /// Opted out of marketing only.
        OptOutMarketing = "opt_out_marketing",
        /// Transactional messages resumed.
        Resumed = "resumed",
        /// Opted in to marketing.
        OptInConfirmation = "opt_in_confirmation",
        Help = "help",
        /// YES or the link phrase on a thread the provider blocks after its STOP: the
        /// customer must text the provider's opt-in keyword (START) first.
        ProviderBlocked = "provider_blocked",
    }
}

crate::text_enum! {
    /// Twilio's `OptOutType` on an inbound webhook: the provider took the message as one of
    /// its keywords, answered it, and (STOP) blocks the sender or (START) unblocks it.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum ProviderKeyword as "OptOutType" {
        Stop = "STOP",
        Start = "START",
        Help = "HELP",
    }
}

/// Tenant settings the state machine needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// FCC revoke-all: a marketing-thread STOP also stops transactional messages.
    pub stop_revokes_all: bool,
    /// The provider (e.g. Twilio Advanced Opt-Out) answers STOP/START/HELP itself.
    pub provider_answers_keywords: bool,
}

crate::text_enum! {
    /// What a revocation that came another way covers.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Scope as "scope" {
        Marketing = "marketing",
        All = "all",
    }
}

/// What happened, as the state machine sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event<'a> {
    Inbound {
        thread: Thread,
        classified: &'a Classified,
        /// The language of the keyword or phrase, when it was one.
        lang: Option<Lang>,
        /// Twilio's `OptOutType` was present: the provider already replied.
        provider_answered: bool,
        /// What the message did at the provider: its `OptOutType`, or `Start` for an opt-in
        /// keyword the provider honours without telling (START without Advanced Opt-Out).
        provider_keyword: Option<ProviderKeyword>,
        /// The pending opt-in request (the disclosure) was handed to the carrier: only then
        /// is a YES written consent.
        request_sent: bool,
    },
    /// The provider refused a send because the number is on its STOP list for that sender
    /// (Twilio 21610): the effect of a STOP in that sender's thread.
    ProviderStopList { thread: Thread },
    /// A person decided a review item is a revocation (or the deadline did, for `assent`).
    ReviewOptOut { thread: Thread },
    /// A revocation that came another way (a call, an email, a letter, the Marketing updates
    /// switch turned off, an import from another system). `at` is when it happened when
    /// that is not now (an import): it opts out only if newer than the last consent given.
    RecordedOptOut {
        scope: Scope,
        source: Source,
        rule: &'a str,
        at: Option<DateTime<Utc>>,
    },
    /// An opt-in request was accepted for sending; `request` is its message id.
    OptInRequested { source: Source, request: &'a str },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub state: ConsentState,
    pub changes: Vec<Change>,
    pub reply: Option<ReplyKind>,
    /// The message needs a person's decision.
    pub review: bool,
    /// START (or ENROLL, UNSTOP…) from a phone that never saw the disclosure: not consent,
    /// but a request for it; the double opt-in starts and its request goes at once.
    pub start_opt_in: bool,
    /// A YES arrived while the request carrying the disclosure was still held: it goes now,
    /// and the customer's next YES counts.
    pub send_request_now: bool,
    /// Written consent was given: Marketing updates goes on on every record of the phone.
    pub written_consent: bool,
}

impl ConsentState {
    pub fn pending_expired(&self, now: DateTime<Utc>) -> bool {
        self.marketing == MarketingStatus::Pending
            && self
                .pending_since
                .is_some_and(|t| now - t >= Duration::days(PENDING_TTL_DAYS))
    }

    /// Until when a message held for an open review waits: the earliest deadline, and never
    /// less than a minute from now (a deadline just passed is being decided).
    pub fn review_hold_until(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let first = self.open_reviews.values().min()?;
        Some((*first).max(now + Duration::minutes(1)))
    }

    /// Requests that count towards the throttle at `now`.
    pub fn recent_unanswered(&self, now: DateTime<Utc>) -> usize {
        self.unanswered_requests
            .iter()
            .filter(|t| now - **t < Duration::days(PENDING_TTL_DAYS))
            .count()
    }

    /// Whether the provider is known to block the sender a reply in `thread` leaves from.
    pub fn provider_blocks(&self, thread: Thread) -> bool {
        self.provider_blocks.contains(&thread.reply_channel())
    }

    fn set_provider_block(&mut self, thread: Thread, blocked: bool) {
        let c = thread.reply_channel();
        self.provider_blocks.retain(|x| *x != c);
        if blocked {
            self.provider_blocks.push(c);
            self.provider_blocks.sort_by_key(|c| c.as_str());
        }
    }

    /// Rebuilds the consent flags from ledger entries, oldest first.
    pub fn fold<'a>(changes: impl IntoIterator<Item = &'a Change>) -> (bool, MarketingStatus) {
        let mut tx = false;
        let mut mk = MarketingStatus::None;
        for c in changes {
            match c.channel {
                Channel::Transactional => tx = c.new_state == LedgerState::OptedOut,
                Channel::Marketing => {
                    mk = c.new_state.marketing().unwrap_or(mk);
                }
            }
        }
        (tx, mk)
    }
}

struct Builder {
    state: ConsentState,
    changes: Vec<Change>,
    now: DateTime<Utc>,
}

impl Builder {
    fn set_tx(&mut self, out: bool, by: Option<Channel>, source: Source, rule: Option<&str>) {
        let old = self.state.transactional_opted_out;
        self.state.transactional_opted_out = out;
        self.state.transactional_out_by = if out { by } else { None };
        self.changes.push(Change {
            channel: Channel::Transactional,
            old_state: LedgerState::transactional(old),
            new_state: LedgerState::transactional(out),
            source,
            rule: rule.map(str::to_string),
            at: None,
        });
    }

    fn set_mk(&mut self, new: MarketingStatus, source: Source, rule: Option<&str>) {
        let old = self.state.marketing;
        self.state.marketing = new;
        match new {
            MarketingStatus::Pending => {}
            MarketingStatus::OptedIn => {
                self.state.pending_since = None;
                self.state.unanswered_requests.clear();
                self.state.marketing_out_by = None;
            }
            MarketingStatus::None => {
                self.state.pending_since = None;
                self.state.marketing_out_by = None;
            }
            MarketingStatus::OptedOut => self.state.pending_since = None,
        }
        self.changes.push(Change {
            channel: Channel::Marketing,
            old_state: old.into(),
            new_state: new.into(),
            source,
            rule: rule.map(str::to_string),
            at: None,
        });
    }

    /// STOP on the transactional side: everything stops, marketing consent is revoked.
    fn opt_out_all(&mut self, by: Channel, source: Source, rule: Option<&str>) {
        let by = if self.state.transactional_opted_out {
            self.state.transactional_out_by.or(Some(by))
        } else {
            Some(by)
        };
        self.set_tx(true, by, source, rule);
        if self.state.marketing != MarketingStatus::OptedOut {
            self.state.marketing_out_by = Some(by.unwrap_or(Channel::Transactional));
        }
        self.set_mk(MarketingStatus::OptedOut, source, rule);
    }

    fn opt_out_marketing(&mut self, source: Source, rule: Option<&str>) {
        self.state.marketing_out_by = Some(Channel::Marketing);
        self.set_mk(MarketingStatus::OptedOut, source, rule);
    }

    /// RESTART on the transactional side.
    fn resume_transactional(&mut self, source: Source, rule: Option<&str>) {
        self.state.last_opt_in = Some(self.now);
        self.set_tx(false, None, source, rule);
        if self.state.marketing == MarketingStatus::OptedOut
            && self.state.marketing_out_by != Some(Channel::Marketing)
        {
            self.set_mk(MarketingStatus::None, source, rule);
        }
    }

    /// Opt-in on the marketing side (START, YES, link phrase).
    fn opt_in_marketing(&mut self, source: Source, rule: Option<&str>) {
        self.state.last_opt_in = Some(self.now);
        self.state.pending_request = None;
        self.set_mk(MarketingStatus::OptedIn, source, rule);
        if self.state.transactional_opted_out
            && self.state.transactional_out_by == Some(Channel::Marketing)
        {
            self.set_tx(false, None, source, rule);
        }
    }

    fn repeated_within_window(&self, last: Option<DateTime<Utc>>) -> bool {
        last.is_some_and(|t| self.now - t < Duration::hours(REPEAT_REPLY_WINDOW_HOURS))
    }

    /// A STOP in `thread`: the transactional thread (or a shared number) stops everything;
    /// the marketing thread stops marketing, or everything under `stop_revokes_all`.
    /// Returns the reply it earns.
    fn stop_in_thread(
        &mut self,
        thread: Thread,
        policy: Policy,
        source: Source,
        rule: Option<&str>,
    ) -> ReplyKind {
        match thread {
            Thread::Marketing if !policy.stop_revokes_all => {
                self.opt_out_marketing(source, rule);
                ReplyKind::OptOutMarketing
            }
            Thread::Marketing => {
                self.opt_out_all(Channel::Marketing, source, rule);
                ReplyKind::OptOutAll
            }
            _ => {
                self.opt_out_all(Channel::Transactional, source, rule);
                ReplyKind::OptOutAll
            }
        }
    }

    /// An entry that records an event without changing the state (evidence too).
    fn record_unchanged(&mut self, channel: Channel, source: Source, rule: Option<&str>) {
        let state = match channel {
            Channel::Marketing => self.state.marketing.into(),
            Channel::Transactional => {
                LedgerState::transactional(self.state.transactional_opted_out)
            }
        };
        self.changes.push(Change {
            channel,
            old_state: state,
            new_state: state,
            source,
            rule: rule.map(str::to_string),
            at: None,
        });
    }
}

/// When a review opened at `opened` is decided as an opt-out if nobody decides it first:
/// `business_days` weekdays later, at the same local time in the tenant's zone.
pub fn review_deadline(
    opened: DateTime<Utc>,
    business_days: u32,
    tz: chrono_tz::Tz,
) -> DateTime<Utc> {
    use chrono::{Datelike, TimeZone, Weekday};
    let local = opened.with_timezone(&tz).naive_local();
    let mut day = local.date();
    let mut left = business_days;
    while left > 0 {
        day = day.succ_opt().unwrap_or(day);
        if !matches!(day.weekday(), Weekday::Sat | Weekday::Sun) {
            left -= 1;
        }
    }
    let at = day.and_time(local.time());
    tz.from_local_datetime(&at)
        .earliest()
        // A time that does not exist that day (spring forward) is an hour later.
        .or_else(|| {
            tz.from_local_datetime(&(at + Duration::hours(1)))
                .earliest()
        })
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or(opened + Duration::days(i64::from(business_days)))
}

/// Applies one event to a phone's consent: first what time alone changed (a pending
/// request that expired), then the event, each kind in its own function below.
pub fn apply(
    state: &ConsentState,
    event: &Event<'_>,
    policy: Policy,
    now: DateTime<Utc>,
) -> Transition {
    let mut b = Builder {
        state: state.clone(),
        changes: Vec::new(),
        now,
    };
    expire_pending(&mut b);
    let mut t = Transition {
        state: ConsentState::default(),
        changes: Vec::new(),
        reply: None,
        review: false,
        start_opt_in: false,
        send_request_now: false,
        written_consent: false,
    };
    match *event {
        Event::Inbound {
            thread,
            classified,
            lang,
            provider_answered,
            provider_keyword,
            request_sent,
        } => inbound(
            &mut b,
            &mut t,
            Inbound {
                thread,
                classified,
                lang,
                provider_answered,
                provider_keyword,
                request_sent,
            },
            policy,
        ),
        Event::ProviderStopList { thread } => provider_stop_list(&mut b, thread, policy),
        Event::ReviewOptOut { thread } => review_opt_out(&mut b, thread, policy),
        Event::RecordedOptOut {
            scope,
            source,
            rule,
            at,
        } => recorded_opt_out(&mut b, scope, source, rule, at),
        Event::OptInRequested { source, request } => opt_in_requested(&mut b, source, request),
    }
    t.state = b.state;
    t.changes = b.changes;
    t
}

/// A pending request unanswered for 30 days lapses; the entry is dated when it lapsed, not
/// when the phone's next event noticed it.
fn expire_pending(b: &mut Builder) {
    if !b.state.pending_expired(b.now) {
        return;
    }
    let expired_at = b
        .state
        .pending_since
        .map(|t| t + Duration::days(PENDING_TTL_DAYS));
    b.state.pending_request = None;
    b.set_mk(
        MarketingStatus::None,
        Source::Expiry,
        Some("unanswered_for_30_days"),
    );
    if let Some(change) = b.changes.last_mut() {
        change.at = expired_at;
    }
}

/// The provider refused a send because of its STOP list: a STOP in that thread, which the
/// provider has already answered.
fn provider_stop_list(b: &mut Builder, thread: Thread, policy: Policy) {
    b.state.set_provider_block(thread, true);
    b.stop_in_thread(
        thread,
        policy,
        Source::Carrier,
        Some("provider_stop_list_21610"),
    );
}

/// A review decided as a revocation: a STOP in the review's thread, without a reply.
fn review_opt_out(b: &mut Builder, thread: Thread, policy: Policy) {
    b.stop_in_thread(thread, policy, Source::Review, None);
}

/// An opt-in request was accepted: marketing is pending on it, and it counts towards the
/// throttle.
fn opt_in_requested(b: &mut Builder, source: Source, request: &str) {
    let now = b.now;
    b.state.pending_since = Some(now);
    b.state
        .unanswered_requests
        .retain(|t| now - *t < Duration::days(PENDING_TTL_DAYS));
    b.state.unanswered_requests.push(now);
    b.state.pending_request = Some(request.to_string());
    b.set_mk(MarketingStatus::Pending, source, None);
    b.state.pending_since = Some(now);
}

struct Inbound<'a> {
    thread: Thread,
    classified: &'a Classified,
    lang: Option<Lang>,
    provider_answered: bool,
    provider_keyword: Option<ProviderKeyword>,
    request_sent: bool,
}

/// A text from the customer: a keyword, a revocation in words, or something else.
fn inbound(b: &mut Builder, t: &mut Transition, i: Inbound<'_>, policy: Policy) {
    let (source, rule) = match i.classified {
        Classified::FreeTextOptOut { rule } | Classified::WrongNumber { rule } => {
            (Source::FreeText, Some(*rule))
        }
        Classified::OptOut { word } | Classified::Resume { word } => {
            (Source::Keyword, Some(word.as_str()))
        }
        Classified::Yes => (Source::Keyword, Some("YES")),
        Classified::LinkPhrase => (Source::OptInLink, Some("link_phrase")),
        _ => (Source::Keyword, None),
    };
    if let Some(l) = i.lang {
        b.state.language = l;
    }
    // The provider answered this very message (its `OptOutType`): that is the only sign,
    // whoever `keyword_replies` says answers. Twilio's Advanced Opt-Out does not know
    // REMOVE, ARRET, OPT OUT, STOP ALL or the Spanish words, and never answers YES, the
    // link phrase or a revocation in words, so those replies are ours.
    let provider_replies = i.provider_answered;
    match i.provider_keyword {
        Some(ProviderKeyword::Stop) => b.state.set_provider_block(i.thread, true),
        Some(ProviderKeyword::Start) => b.state.set_provider_block(i.thread, false),
        _ => {}
    }
    // YES or the link phrase where the provider still blocks the sender: consent given here
    // could never be confirmed (the provider refuses every text until its opt-in keyword),
    // so nothing changes and the customer is told the word that works.
    if matches!(i.classified, Classified::Yes | Classified::LinkPhrase)
        && b.state.provider_blocks(i.thread)
    {
        t.reply = Some(ReplyKind::ProviderBlocked);
        return;
    }
    let said = Said {
        source,
        rule,
        provider_replies,
    };
    match i.classified {
        Classified::OptOut { .. } | Classified::FreeTextOptOut { .. } => {
            inbound_opt_out(b, t, i.thread, policy, &said)
        }
        Classified::WrongNumber { .. } => {
            // "Wrong number" stops everything whichever thread it came in: the person who
            // has the number now consented to nothing.
            b.state.possibly_reassigned = Some(b.now);
            inbound_opt_out(b, t, Thread::Transactional, policy, &said)
        }
        Classified::Resume { .. } => inbound_resume(b, t, i.thread, &said),
        Classified::Yes => inbound_consent(b, t, &i, true, &said),
        Classified::LinkPhrase => inbound_consent(b, t, &i, false, &said),
        Classified::Help => {
            if !provider_replies {
                t.reply = Some(ReplyKind::Help);
            }
        }
        Classified::Review { .. } => t.review = true,
        Classified::Ordinary => {}
    }
}

/// What an inbound text said, as the ledger records it, and whether the provider answers it.
struct Said<'a> {
    source: Source,
    rule: Option<&'a str>,
    provider_replies: bool,
}

/// STOP (or a revocation in words) in `thread`. A repeat within the window is recorded but
/// not answered again.
fn inbound_opt_out(
    b: &mut Builder,
    t: &mut Transition,
    thread: Thread,
    policy: Policy,
    said: &Said<'_>,
) {
    let already = match thread {
        Thread::Marketing => b.state.marketing == MarketingStatus::OptedOut,
        _ => b.state.transactional_opted_out,
    };
    let kind = b.stop_in_thread(thread, policy, said.source, said.rule);
    let repeated = already && b.repeated_within_window(b.state.last_opt_out_reply);
    if !repeated && !said.provider_replies {
        b.state.last_opt_out_reply = Some(b.now);
        t.reply = Some(kind);
    }
}

/// START (RESTART, UNSTOP…): resumes the thread it came in, or on the marketing thread of
/// a phone never shown the disclosure, asks for consent instead.
fn inbound_resume(b: &mut Builder, t: &mut Transition, thread: Thread, said: &Said<'_>) {
    let kind = match thread {
        // Never shown the disclosure: START asks for it, it is not consent.
        Thread::Marketing
            if matches!(
                b.state.marketing,
                MarketingStatus::None | MarketingStatus::Pending
            ) =>
        {
            t.start_opt_in = true;
            None
        }
        Thread::Marketing => {
            b.opt_in_marketing(said.source, said.rule);
            Some(ReplyKind::OptInConfirmation)
        }
        _ => {
            b.resume_transactional(said.source, said.rule);
            Some(ReplyKind::Resumed)
        }
    };
    if !said.provider_replies {
        t.reply = kind;
    }
}

/// YES (`is_yes`) or the link phrase: written consent on the marketing side, and YES on
/// an opted-out transactional side resumes it like START.
fn inbound_consent(
    b: &mut Builder,
    t: &mut Transition,
    i: &Inbound<'_>,
    is_yes: bool,
    said: &Said<'_>,
) {
    let thread = i.thread;
    let tx_out = b.state.transactional_opted_out;
    let mk = b.state.marketing;
    let mut kind = None;
    // YES on the transactional side resumes like START when opted out.
    if is_yes && thread != Thread::Marketing && tx_out {
        b.resume_transactional(said.source, said.rule);
        kind = Some(ReplyKind::Resumed);
    }
    if thread != Thread::Transactional {
        if is_yes && mk == MarketingStatus::Pending && !i.request_sent {
            // The customer never saw the disclosure this YES would sign: send it
            // now (they are awake and texting); their next YES counts.
            t.send_request_now = true;
        } else if !is_yes || mk != MarketingStatus::None {
            // YES means something only when there is a request to confirm or an
            // opt-out to undo; the link phrase is a fresh written opt-in.
            let repeated = mk == MarketingStatus::OptedIn
                && b.repeated_within_window(b.state.last_opt_in_reply);
            b.opt_in_marketing(said.source, said.rule);
            t.written_consent = true;
            kind = if repeated {
                None
            } else {
                Some(ReplyKind::OptInConfirmation)
            };
        }
    }
    if let Some(k) = kind
        && !i.provider_answered
    {
        if k == ReplyKind::OptInConfirmation {
            b.state.last_opt_in_reply = Some(b.now);
        }
        t.reply = Some(k);
    }
}

/// A revocation that came another way. One dated before the last consent the customer gave
/// here (an import of an old system's opt-outs) is kept as evidence and changes nothing.
fn recorded_opt_out(
    b: &mut Builder,
    scope: Scope,
    source: Source,
    rule: &str,
    at: Option<DateTime<Utc>>,
) {
    let older = at.is_some_and(|at| b.state.last_opt_in.is_some_and(|last| at <= last));
    let first = b.changes.len();
    if older {
        b.record_unchanged(Channel::Marketing, source, Some(rule));
        if scope == Scope::All {
            b.record_unchanged(Channel::Transactional, source, Some(rule));
        }
    } else {
        match scope {
            Scope::Marketing => b.opt_out_marketing(source, Some(rule)),
            Scope::All => b.opt_out_all(Channel::Transactional, source, Some(rule)),
        }
    }
    for c in &mut b.changes[first..] {
        c.at = at;
    }
}

#[cfg(test)]
mod tests;
