use std::collections::BTreeMap;

use assent_core::consent::{Channel, ConsentState, LedgerState, Source, Thread, Topic};
use assent_core::gate::{Purpose, RegistrationStatus, Toggles};
use assent_core::phone::E164;
use assent_core::quiet_hours::QuietPolicy;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A time zone as its IANA name in JSON.
mod zone_name {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(tz: &assent_core::Tz, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(tz.name())
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<assent_core::Tz, D::Error> {
        let name = String::deserialize(d)?;
        name.parse()
            .map_err(|_| serde::de::Error::custom(format!("{name:?} is not an IANA time zone")))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Tenant {
    pub id: String,
    pub slug: String,
    pub name: String,
    /// Parsed when the tenant is read: a zone that does not parse is a stored-data error,
    /// never a silent New York.
    #[serde(with = "zone_name")]
    pub time_zone: assent_core::Tz,
    pub settings: Settings,
    pub senders: Senders,
    pub created_at: DateTime<Utc>,
}

impl Tenant {
    /// Which thread a message to or from `sender` belongs to: a current sender's, or a
    /// number the tenant used before, as the channel it served then (a STOP sent to a
    /// replaced number still counts).
    pub fn thread_of(&self, sender: &E164) -> Option<Thread> {
        let current = thread_for(
            self.senders.transactional.as_ref() == Some(sender),
            self.senders.marketing.as_ref() == Some(sender),
        );
        current.or_else(|| {
            self.senders
                .former
                .iter()
                .find(|f| f.number == *sender)
                .and_then(|f| thread_for(f.transactional, f.marketing))
        })
    }
    pub fn sender(&self, channel: Channel) -> Option<&E164> {
        match channel {
            Channel::Transactional => self.senders.transactional.as_ref(),
            Channel::Marketing => self.senders.marketing.as_ref(),
        }
    }
}

fn thread_for(transactional: bool, marketing: bool) -> Option<Thread> {
    match (transactional, marketing) {
        (true, true) => Some(Thread::Shared),
        (true, false) => Some(Thread::Transactional),
        (false, true) => Some(Thread::Marketing),
        _ => None,
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Senders {
    pub transactional: Option<E164>,
    pub marketing: Option<E164>,
    /// Numbers the tenant texted from before, kept so keywords sent to them still act.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub former: Vec<FormerSender>,
}

impl Senders {
    /// Builds a tenant's senders from its rows: (number, transactional, marketing,
    /// retired_at), current ones without `retired_at`.
    pub fn from_rows(
        rows: impl IntoIterator<Item = (E164, bool, bool, Option<DateTime<Utc>>)>,
    ) -> Senders {
        let mut s = Senders::default();
        for (number, transactional, marketing, retired_at) in rows {
            match retired_at {
                None => {
                    if transactional {
                        s.transactional = Some(number.clone());
                    }
                    if marketing {
                        s.marketing = Some(number);
                    }
                }
                Some(retired_at) => s.former.push(FormerSender {
                    number,
                    transactional,
                    marketing,
                    retired_at,
                }),
            }
        }
        s.former.sort_by_key(|f| std::cmp::Reverse(f.retired_at));
        s
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FormerSender {
    pub number: E164,
    pub transactional: bool,
    pub marketing: bool,
    pub retired_at: DateTime<Utc>,
}

assent_core::text_enum! {
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    pub enum KeywordReplies as "keyword replies" {
        #[default]
        Assent = "assent",
        Provider = "provider",
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    pub stop_revokes_all: bool,
    pub keyword_replies: KeywordReplies,
    /// Overrides of the default reply texts, by kind (`opt_out`, `help`, …, `opt_in_request`).
    pub reply_texts: BTreeMap<String, String>,
    pub quiet_hours: QuietPolicy,
    pub marketing_cap_per_day: u32,
    pub rate_limits: RateLimits,
    /// Shown in HELP replies.
    pub help_contact: String,
    pub terms_url: String,
    pub privacy_url: String,
    /// Opt-in form submissions allowed per tenant per day.
    pub form_daily_limit: u32,
    /// The countries (ISO codes, by area code) whose numbers this tenant texts and its
    /// opt-in form accepts; every other number is `invalid_number`. The NANP's other
    /// countries (+1 876 Jamaica, +1 809 Dominican Republic, …) are where SMS pumping
    /// goes, so they are out unless named. A new tenant texts the US only; settings stored
    /// before this key existed keep what they meant then, the US and Canada.
    #[serde(default = "Settings::stored_countries")]
    pub countries: Vec<String>,
    /// Business days a review may stay open before `assent` decides it as an opt-out
    /// (the FCC allows 10; we default to 2).
    #[serde(default = "default_review_deadline_days")]
    pub review_deadline_days: u32,
    /// The business's mailing address and how to reach it (a phone number, email or web
    /// address). CASL wants both in the consent request and every commercial message, so
    /// Canada can be switched on only once they are given; they then close the opt-in
    /// request and the HELP reply.
    pub mailing_address: String,
    pub contact: String,
    /// The name marketing messages start with when the business's own name is too long
    /// (over 30 characters); empty uses the business name.
    pub short_brand_name: String,
    /// The opt-in keyword configured at the provider (Twilio's Advanced Opt-Out) that
    /// lifts its block after a STOP; replies name it. Empty is START.
    pub provider_opt_in_keyword: String,
    /// With a lookup provider (`ASSENT_LOOKUP`), a marketing text to a phone whose written
    /// consent is older than this many days waits for a reassigned-number lookup (then at
    /// most one lookup a month per phone). 0 checks whatever the consent's age.
    #[serde(default = "default_reassigned_check_days")]
    pub reassigned_check_days: u32,
}

fn default_reassigned_check_days() -> u32 {
    90
}

/// The largest `reassigned_check_days` a tenant may set.
pub const MAX_REASSIGNED_CHECK_DAYS: u32 = 365;

fn default_review_deadline_days() -> u32 {
    2
}

/// The longest review deadline a tenant may set: the FCC's 10 business days.
pub const MAX_REVIEW_DEADLINE_DAYS: u32 = 10;

impl Settings {
    /// Whether `phone` is a number this tenant texts.
    pub fn texts_to(&self, phone: &E164) -> bool {
        assent_core::quiet_hours::country(phone)
            .is_some_and(|c| self.countries.iter().any(|k| k == c))
    }

    fn stored_countries() -> Vec<String> {
        vec!["US".into(), "CA".into()]
    }

    fn texts_canada(&self) -> bool {
        self.countries.iter().any(|c| c == "CA")
    }

    /// Why these settings, replacing `before`, may not text Canada: the field to fill and
    /// what to say. Settings that already text Canada keep doing so while the address and
    /// contact stay as they were (tenants from before this rule), so saving another
    /// setting is never refused over them.
    pub fn canada_problem(&self, before: &Settings) -> Option<(&'static str, &'static str)> {
        if !self.texts_canada() {
            return None;
        }
        let kept = before.texts_canada()
            && before.mailing_address == self.mailing_address
            && before.contact == self.contact;
        if kept {
            return None;
        }
        if self.mailing_address.trim().is_empty() {
            return Some((
                "mailing_address",
                "is required before countries can include CA (CASL)",
            ));
        }
        if self.contact.trim().is_empty() {
            return Some((
                "contact",
                "is required before countries can include CA (CASL)",
            ));
        }
        None
    }

    /// The name marketing messages start with: the short brand name when set, else the
    /// business name.
    pub fn brand<'a>(&'a self, business: &'a str) -> &'a str {
        match self.short_brand_name.trim() {
            "" => business.trim(),
            short => short,
        }
    }

    /// The word that lifts the provider's block after a STOP (START unless configured).
    pub fn opt_in_keyword(&self) -> &str {
        match self.provider_opt_in_keyword.trim() {
            "" => "START",
            k => k,
        }
    }

    /// The sender's identification CASL asks of messages to Canada: the business, its
    /// mailing address and its contact; `None` unless the tenant texts Canada and gave both.
    pub fn casl_identification(&self, business: &str) -> Option<String> {
        let (address, contact) = (self.mailing_address.trim(), self.contact.trim());
        (self.texts_canada() && !address.is_empty() && !contact.is_empty())
            .then(|| format!("{business}, {address}. Contact: {contact}."))
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            stop_revokes_all: false,
            keyword_replies: KeywordReplies::Assent,
            reply_texts: BTreeMap::new(),
            quiet_hours: QuietPolicy::Standard,
            marketing_cap_per_day: 3,
            rate_limits: RateLimits::default(),
            help_contact: String::new(),
            terms_url: String::new(),
            privacy_url: String::new(),
            form_daily_limit: 500,
            countries: vec!["US".into()],
            review_deadline_days: default_review_deadline_days(),
            mailing_address: String::new(),
            contact: String::new(),
            short_brand_name: String::new(),
            provider_opt_in_keyword: String::new(),
            reassigned_check_days: default_reassigned_check_days(),
        }
    }
}

/// Carriers' limits, counted in segments as carriers count them: a text of three segments
/// is three against both numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RateLimits {
    /// The 10DLC tier these numbers come from; `None` is the tenant's own numbers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preset: Option<RatePreset>,
    /// Segments each sender hands to the carrier per minute (AT&T's TPM is per campaign).
    pub per_sender_per_minute: u32,
    /// Segments the tenant hands to the carrier in a rolling 24 hours (T-Mobile's daily cap
    /// is per brand).
    pub per_tenant_per_day: u32,
}

impl Default for RateLimits {
    fn default() -> Self {
        // The lowest 10DLC tiers: AT&T 240/min per campaign, T-Mobile 2,000/day per brand.
        RateLimits {
            preset: None,
            per_sender_per_minute: 240,
            per_tenant_per_day: 2000,
        }
    }
}

impl RateLimits {
    /// These limits with a named preset's numbers, or `Err` naming the number that
    /// contradicts it (a preset and other numbers cannot both hold).
    pub fn resolved(self) -> Result<RateLimits, &'static str> {
        let Some(p) = self.preset else {
            return Ok(self);
        };
        let (minute, day) = p.limits();
        let given = RateLimits::default();
        // Numbers left as they were or equal to the preset's are the preset's; others clash.
        if self.per_sender_per_minute != minute
            && self.per_sender_per_minute != given.per_sender_per_minute
        {
            return Err("per_sender_per_minute");
        }
        if self.per_tenant_per_day != day && self.per_tenant_per_day != given.per_tenant_per_day {
            return Err("per_tenant_per_day");
        }
        Ok(RateLimits {
            preset: Some(p),
            per_sender_per_minute: minute,
            per_tenant_per_day: day,
        })
    }
}

assent_core::text_enum! {
    /// The 10DLC tiers: AT&T's throughput per campaign by message class (its vetting score)
    /// and T-Mobile's daily cap per brand by its tier, in segments.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum RatePreset as "rate preset" {
        /// A sole proprietor brand: about 15 a minute and 1,000 a day.
        SoleProprietor = "sole_proprietor",
        /// Low-volume mixed campaign (AT&T class T): 75 a minute; T-Mobile's lowest cap.
        LowVolumeMixed = "low_volume_mixed",
        /// Standard brand vetted 1–49 (AT&T classes E/F): 240 a minute; T-Mobile 10,000 a day.
        StandardLow = "standard_low",
        /// Standard brand vetted 50–74 (AT&T classes C/D): 2,400 a minute; T-Mobile 40,000.
        StandardMid = "standard_mid",
        /// Standard brand vetted 75–100 (AT&T classes A/B): 4,500 a minute; T-Mobile 200,000.
        StandardTop = "standard_top",
    }
}

impl RatePreset {
    /// (segments per sender per minute, segments per tenant per day).
    pub fn limits(self) -> (u32, u32) {
        match self {
            RatePreset::SoleProprietor => (15, 1_000),
            RatePreset::LowVolumeMixed => (75, 2_000),
            RatePreset::StandardLow => (240, 10_000),
            RatePreset::StandardMid => (2_400, 40_000),
            RatePreset::StandardTop => (4_500, 200_000),
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            RatePreset::SoleProprietor => "Sole proprietor",
            RatePreset::LowVolumeMixed => "Low-volume mixed",
            RatePreset::StandardLow => "Standard, vetting score 1–49",
            RatePreset::StandardMid => "Standard, vetting score 50–74",
            RatePreset::StandardTop => "Standard, vetting score 75–100",
        }
    }
}

assent_core::text_enum! {
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum RegistrationKind as "registration kind" {
        Texting = "texting",
        Marketing = "marketing",
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Registration {
    pub kind: RegistrationKind,
    pub status: RegistrationStatus,
    pub reason: Option<String>,
    pub details: serde_json::Value,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Registrations {
    pub texting: Option<Registration>,
    pub marketing: Option<Registration>,
}

impl Registrations {
    pub fn texting_status(&self) -> RegistrationStatus {
        self.texting.as_ref().map(|r| r.status).unwrap_or_default()
    }
    pub fn marketing_status(&self) -> RegistrationStatus {
        self.marketing
            .as_ref()
            .map(|r| r.status)
            .unwrap_or_default()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactMethod {
    pub number: E164,
    pub job_notifications: bool,
    pub marketing_updates: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Customer {
    pub id: String,
    pub name: String,
    pub address: Option<String>,
    pub tags: Vec<String>,
    pub phones: Vec<ContactMethod>,
    pub created_at: DateTime<Utc>,
}

/// The evidence kept with a ledger entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    pub message_sid: Option<String>,
    pub text: Option<String>,
    pub rule: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub page: Option<String>,
    pub disclosure: Option<String>,
    /// The opt-in request a YES answers (its provider id, or its message id before the
    /// provider gave one).
    #[serde(default)]
    pub request: Option<String>,
}

assent_core::text_enum! {
    /// Who made a ledger entry: the customer, an API client, an import, Assent itself (an
    /// expiry, a review's deadline), or a web app user by id.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum Actor as "actor" {
        Customer = "customer",
        Operator = "operator",
        Carrier = "carrier",
        System = "system",
        Api = "api",
        Import = "import",
        Assent = "assent",
        // A web app user, by id.
        _ => User,
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewLedgerEntry {
    pub phone: E164,
    pub channel: Topic,
    pub old_state: LedgerState,
    pub new_state: LedgerState,
    pub source: Source,
    pub actor: Actor,
    pub occurred_at: DateTime<Utc>,
    pub evidence: Evidence,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEntry {
    /// Commit order.
    pub seq: i64,
    #[serde(flatten)]
    pub entry: NewLedgerEntry,
    /// Its place in the tenant's hash chain and its hash (see `decide::chain`).
    #[serde(default)]
    pub chain_seq: Option<i64>,
    #[serde(default)]
    pub hash: Option<String>,
}

assent_core::text_enum! {
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Direction as "direction" {
        Inbound = "inbound",
        Outbound = "outbound",
    }
}

assent_core::text_enum! {
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum MessageKind as "message kind" {
        AutoReply = "auto_reply",
        OptInRequest = "opt_in_request",
        Campaign = "campaign",
        Api = "api",
        Customer = "customer",
    }
}

assent_core::text_enum! {
    /// A message's delivery status.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
    pub enum MessageStatus as "message status" {
        Received = "received",
        Queued = "queued",
        Deferred = "deferred",
        Sending = "sending",
        Sent = "sent",
        Delivered = "delivered",
        Undelivered = "undelivered",
        Failed = "failed",
        Blocked = "blocked",
        Unknown = "unknown",
        Expired = "expired",
    }
}

assent_core::text_enum! {
    /// Why a message is held, refused or failed: the gate's reason, the queue's own, or
    /// the provider's error as it was written (`provider_error_{code}`, `provider_refused:
    /// …`, `provider_unavailable: …`, `provider_throttled: …`, `handoff_outcome_unknown: …`,
    /// and a status callback's
    /// `carrier_error_{code}`), kept byte for byte.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum MessageReason as "message reason" {
        TextingNotRegistered = "texting_not_registered",
        MarketingNotRegistered = "marketing_not_registered",
        InvalidNumber = "invalid_number",
        OptedOut = "opted_out",
        NoMarketingConsent = "no_marketing_consent",
        JobNotificationsOff = "job_notifications_off",
        MarketingUpdatesOff = "marketing_updates_off",
        AlreadyOptedIn = "already_opted_in",
        OptInThrottled = "opt_in_throttled",
        QuietHours = "quiet_hours",
        FrequencyCap = "frequency_cap",
        UnderReview = "under_review",
        /// The sender's pace: the next slot is later.
        RateLimited = "rate_limited",
        /// The tenant's 24-hour hand-off cap.
        DailyCap = "daily_cap",
        /// Claimed but not handed off within 5 minutes of its claim: too stale to send.
        NotHandedOffWithin5Minutes = "not_handed_off_within_5_minutes",
        /// An outbound message that names no purpose cannot pass the gate.
        NoPurpose = "no_purpose",
        CampaignPaused = "campaign_paused",
        EstimateClosed = "estimate_closed",
        /// The process died after the provider call started: it may or may not have gone.
        HandoffInterrupted = "handoff_interrupted",
        ReassignedNumber = "reassigned_number",
        ReassignedCheckFailed = "reassigned_check_failed",
        /// The lookup could not start within the claim's budget: asked again shortly.
        ReassignedCheckPending = "reassigned_check_pending",
        /// The carrier answered 21610: the phone has blocked the sender.
        CarrierBlocked = "carrier_blocked_21610",
        _ => Provider,
    }
}

impl MessageReason {
    /// The provider's error code, for `provider_error_{code}`.
    pub fn provider_error(code: u32) -> Self {
        MessageReason::Provider(format!("provider_error_{code}"))
    }
}

impl From<assent_core::gate::Reason> for MessageReason {
    fn from(r: assent_core::gate::Reason) -> MessageReason {
        // Every gate reason is a variant with the same text (a test checks it).
        MessageReason::from_text(r.as_str())
    }
}

impl MessageStatus {
    /// How far along a message is; a status update may only move it forward.
    pub fn rank(self) -> u8 {
        match self {
            MessageStatus::Received => 0,
            MessageStatus::Queued | MessageStatus::Deferred => 1,
            MessageStatus::Sending => 2,
            MessageStatus::Sent | MessageStatus::Unknown => 3,
            MessageStatus::Undelivered | MessageStatus::Failed => 4,
            MessageStatus::Delivered => 5,
            MessageStatus::Blocked | MessageStatus::Expired => 6,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Message {
    pub id: String,
    pub tenant_id: String,
    pub direction: Direction,
    pub channel: Channel,
    pub from: E164,
    pub to: E164,
    /// The customer's phone: `to` for outbound, `from` for inbound.
    pub phone: E164,
    pub body: String,
    pub kind: MessageKind,
    pub purpose: Option<Purpose>,
    pub status: MessageStatus,
    pub reason: Option<MessageReason>,
    pub provider_id: Option<String>,
    pub segments: u32,
    /// 0 is the priority lane (automatic replies); 1 everything else.
    pub priority: u8,
    pub due_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub idempotency_key: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Message {
    /// When a held message will go: its `due_at` while deferred, except a paused campaign's,
    /// which waits for Resume rather than for a time.
    pub fn deferred_until(&self) -> Option<DateTime<Utc>> {
        (self.status == MessageStatus::Deferred
            && self.due_at.timestamp_millis() != PAUSED_UNTIL_MS)
            .then_some(self.due_at)
    }
}

/// What happens to one claimed message at hand-off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handoff {
    Send,
    Defer {
        until: DateTime<Utc>,
        reason: MessageReason,
    },
    Refuse {
        status: MessageStatus,
        reason: MessageReason,
    },
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageUpdate {
    pub status: Option<MessageStatus>,
    pub reason: Option<MessageReason>,
    pub provider_id: Option<String>,
    pub at: Option<DateTime<Utc>>,
}

/// Everything the gate and the state machine need to know about one phone.
#[derive(Debug, Clone)]
pub struct PhoneSnapshot {
    /// Shared by every snapshot of one read: a fan-out takes thousands at a time.
    pub tenant: std::sync::Arc<Tenant>,
    pub registrations: std::sync::Arc<Registrations>,
    pub consent: ConsentState,
    pub toggles: Toggles,
    /// The address of a customer holding the phone, for quiet hours.
    pub address: Option<String>,
    /// When marketing messages were handed off to this phone in the last 24 h.
    pub recent_marketing: Vec<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewReview {
    pub id: String,
    pub thread: Thread,
    pub message_id: String,
    pub text: String,
    pub word: String,
    /// Decided as an opt-out by `assent` at this time if nobody decides it first.
    pub deadline: DateTime<Utc>,
}

assent_core::text_enum! {
    /// How a person (or the deadline) decided a review. Rows may hold words written
    /// before the decision was typed; they are kept, and written back, as read.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum ReviewDecision as "review decision" {
        /// The text was a request to stop: treated as STOP.
        OptOut = "opt_out",
        /// Not a request to stop: consent stays as it was.
        NotOptOut = "not_opt_out",
        _ => Other,
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Review {
    pub id: String,
    pub phone: E164,
    pub thread: Thread,
    pub message_id: String,
    pub text: String,
    pub word: String,
    pub decision: Option<ReviewDecision>,
    pub created_at: DateTime<Utc>,
    pub decided_at: Option<DateTime<Utc>>,
    /// Reviews opened before deadlines existed have none until the migration gives them one.
    pub deadline: Option<DateTime<Utc>>,
}

/// What a transaction writes.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// The phone's new consent, when it changed.
    pub consent: Option<ConsentState>,
    pub ledger: Vec<NewLedgerEntry>,
    pub messages: Vec<Message>,
    pub review: Option<NewReview>,
    /// (review id, decision) to close. Only an open review is closed: when another
    /// decision came first, the whole transaction fails with `Conflict`.
    pub review_decision: Option<(String, ReviewDecision)>,
    /// Messages to this phone held for a review (`deferred`, `under_review`) are due now:
    /// the review was decided, and the hand-off's gate decides them again.
    pub release_held: bool,
    /// An opt-in request still held (quiet hours) goes now, as one the customer asked for:
    /// the customer texted YES before it left.
    pub release_request: Option<String>,
    /// Sets one contact method's toggles (customer id, Job Notifications, Marketing
    /// updates), in the same transaction as the consent change they cause.
    pub toggles: Option<(String, bool, bool)>,
    /// Written consent: Marketing updates goes on on every record holding the phone.
    pub marketing_updates_on: bool,
    /// The web app user who wrote this plan's outbound messages (a conversation's Reply),
    /// recorded with every one of them: a reply is never on file without its author. Only
    /// a plan of the reply alone should carry it.
    pub author: Option<String>,
}

/// Conversions shared by the SQL backends, which store enums as their snake_case names,
/// times as UTC milliseconds and structured values as JSON text.
pub mod codec {
    use super::*;
    use crate::StoreError;

    pub fn ms(t: DateTime<Utc>) -> i64 {
        t.timestamp_millis()
    }
    pub fn time(ms: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(ms).unwrap_or_default()
    }
    pub fn phone(s: &str) -> Result<E164, StoreError> {
        E164::parse(s).map_err(|e| StoreError::Database(format!("stored phone {s:?}: {e}")))
    }
    pub fn bad(what: &str, v: &str) -> StoreError {
        StoreError::Database(format!("stored {what} {v:?} is not valid"))
    }
    pub fn json<T: serde::de::DeserializeOwned>(what: &str, v: &str) -> Result<T, StoreError> {
        serde_json::from_str(v).map_err(|e| StoreError::Database(format!("stored {what}: {e}")))
    }
    pub fn to_json<T: Serialize>(v: &T) -> String {
        serde_json::to_string(v).unwrap_or_default()
    }
    /// A text column read some other way than `try_get` (inside a JSON row, say), named
    /// in the error when it holds no variant of `T`.
    pub fn column<T: std::str::FromStr<Err = assent_core::text::UnknownText>>(
        name: &str,
        v: &str,
    ) -> Result<T, StoreError> {
        v.parse()
            .map_err(|e| StoreError::Database(format!("stored {name}: {e}")))
    }
    pub fn purpose(v: Option<&str>) -> Result<Option<Purpose>, StoreError> {
        v.map(|p| Purpose::parse(p).ok_or_else(|| bad("purpose", p)))
            .transpose()
    }
    /// Combines the toggles of every record holding a phone: on only if on in all.
    pub fn combine_toggles(rows: &[(bool, bool)]) -> Toggles {
        Toggles {
            on_a_record: !rows.is_empty(),
            job_notifications: !rows.is_empty() && rows.iter().all(|r| r.0),
            marketing_updates: !rows.is_empty() && rows.iter().all(|r| r.1),
        }
    }
}

/// Applies the per-sender pace and the per-tenant daily cap inside a claiming transaction.
/// Backends load each sender's pace and each tenant's 24-hour hand-off count once per
/// batch, ask [`Pacer::admit`] about every message the gate let through, and write the
/// changed paces and counts back before they commit. Automatic replies (priority 0) are
/// never held.
#[derive(Debug, Default)]
pub struct Pacer {
    tats: std::collections::HashMap<String, Option<DateTime<Utc>>>,
    daily: std::collections::HashMap<String, u32>,
    added: std::collections::BTreeMap<String, u32>,
    changed: std::collections::BTreeSet<String>,
}

/// The daily cap counts hand-offs per tenant in hourly buckets (a table, so every process
/// sees the same count, and reading it costs 25 rows rather than a day of messages).
pub const HANDOFF_BUCKET_MS: i64 = 3_600_000;

/// The hour bucket a hand-off at `now_ms` is counted in.
pub fn handoff_bucket(now_ms: i64) -> i64 {
    now_ms.div_euclid(HANDOFF_BUCKET_MS)
}

/// The oldest bucket that still counts toward the cap at `now_ms`. The current hour and
/// the 24 before it: up to an hour more than a day is counted, never less, so no 24-hour
/// window ever lets more than the cap through.
pub fn first_counted_bucket(now_ms: i64) -> i64 {
    handoff_bucket(now_ms) - 24
}

impl Pacer {
    pub fn knows_sender(&self, number: &E164) -> bool {
        self.tats.contains_key(number.as_str())
    }
    pub fn load_sender(&mut self, number: &E164, tat: Option<DateTime<Utc>>) {
        self.tats.insert(number.as_str().to_string(), tat);
    }
    pub fn knows_tenant(&self, tenant_id: &str) -> bool {
        self.daily.contains_key(tenant_id)
    }
    pub fn load_tenant(&mut self, tenant_id: &str, handed_off_last_24h: u32) {
        self.daily
            .insert(tenant_id.to_string(), handed_off_last_24h);
    }

    /// What happens to a message the gate allowed. Both limits count segments, as
    /// carriers do.
    pub fn admit(&mut self, m: &Message, limits: &RateLimits, now: DateTime<Utc>) -> Handoff {
        let segments = m.segments.max(1);
        let count = self.daily.entry(m.tenant_id.clone()).or_insert(0);
        if m.priority == 0 {
            *count += segments;
            *self.added.entry(m.tenant_id.clone()).or_insert(0) += segments;
            return Handoff::Send;
        }
        // A text longer than the whole cap goes alone into an empty day rather than never.
        if *count > 0 && count.saturating_add(segments) > limits.per_tenant_per_day {
            // The rolling window frees up gradually; look again in a quarter of an hour.
            return Handoff::Defer {
                until: now + chrono::Duration::minutes(15),
                reason: MessageReason::DailyCap,
            };
        }
        let pace = assent_core::pacing::Pace {
            per_minute: limits.per_sender_per_minute,
        };
        let tat = self.tats.get(m.from.as_str()).copied().flatten();
        match assent_core::pacing::take_slots(tat, now, pace, segments) {
            Ok(next) => {
                self.tats.insert(m.from.as_str().to_string(), Some(next));
                self.changed.insert(m.from.as_str().to_string());
                *count += segments;
                *self.added.entry(m.tenant_id.clone()).or_insert(0) += segments;
                Handoff::Send
            }
            Err(until) => Handoff::Defer {
                until,
                reason: MessageReason::RateLimited,
            },
        }
    }

    /// Tenants that handed off messages in this batch, with how many segments.
    pub fn handed_off(&self) -> impl Iterator<Item = (&str, u32)> {
        self.added.iter().map(|(t, n)| (t.as_str(), *n))
    }

    /// Senders whose pace moved, with their new theoretical arrival time.
    pub fn changed(&self) -> Vec<(String, DateTime<Utc>)> {
        self.changed
            .iter()
            .filter_map(|n| Some((n.clone(), (*self.tats.get(n)?)?)))
            .collect()
    }
}

assent_core::text_enum! {
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum CampaignKind as "campaign kind" {
        Marketing = "marketing",
        UnsoldEstimates = "unsold_estimates",
        RecurringServices = "recurring_services",
        MissedCalls = "missed_calls",
    }
}

assent_core::text_enum! {
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum CampaignStatus as "campaign status" {
        /// A marketing campaign waiting for its time.
        Scheduled = "scheduled",
        /// A marketing campaign whose messages are out; finished once all are accounted for.
        Sending = "sending",
        /// A transactional campaign that keeps sending as steps fall due.
        Active = "active",
        Paused = "paused",
        Finished = "finished",
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Campaign {
    pub id: String,
    pub tenant_id: String,
    pub name: String,
    pub kind: CampaignKind,
    pub body: String,
    /// Marketing audience: customers with any of these tags; empty = every opted-in phone.
    pub tags: Vec<String>,
    /// Days after (estimates) or before (recurring services) each step.
    pub days: Vec<u32>,
    pub send_at: Option<DateTime<Utc>>,
    pub status: CampaignStatus,
    pub created_at: DateTime<Utc>,
    /// When it last started or resumed: steps older than 7 days then are too late.
    pub resumed_at: Option<DateTime<Utc>>,
}

/// `due_at` of a message held by a paused campaign: never, until it is resumed.
pub const PAUSED_UNTIL_MS: i64 = 253_402_300_799_000;

/// A queued or deferred campaign message as a paused campaign holds it (what
/// `CampaignStore::hold_campaign` does in the database, for a message not yet written).
pub fn held_for_pause(m: &Message) -> Message {
    let mut m = m.clone();
    if matches!(m.status, MessageStatus::Queued | MessageStatus::Deferred) {
        m.status = MessageStatus::Deferred;
        m.reason = Some(MessageReason::CampaignPaused);
        if let Some(never) = DateTime::from_timestamp_millis(PAUSED_UNTIL_MS) {
            m.due_at = never;
        }
    }
    m
}

assent_core::text_enum! {
    /// Why a campaign step skipped a phone: the gate's reason, or the campaign's own.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum SkipReason as "skip reason" {
        TextingNotRegistered = "texting_not_registered",
        MarketingNotRegistered = "marketing_not_registered",
        InvalidNumber = "invalid_number",
        OptedOut = "opted_out",
        NoMarketingConsent = "no_marketing_consent",
        JobNotificationsOff = "job_notifications_off",
        MarketingUpdatesOff = "marketing_updates_off",
        AlreadyOptedIn = "already_opted_in",
        OptInThrottled = "opt_in_throttled",
        QuietHours = "quiet_hours",
        FrequencyCap = "frequency_cap",
        UnderReview = "under_review",
        /// A step first looked at more than 7 days after it fell due, or a missed call
        /// reported more than an hour late.
        TooLate = "too_late",
        SenderNotConfigured = "sender_not_configured",
        /// Written by earlier versions (of several steps due at once, only the latest
        /// went); never written now, still read from their rows.
        Superseded = "superseded",
    }
}

impl From<assent_core::gate::Reason> for SkipReason {
    fn from(r: assent_core::gate::Reason) -> SkipReason {
        use assent_core::gate::Reason as R;
        match r {
            R::TextingNotRegistered => SkipReason::TextingNotRegistered,
            R::MarketingNotRegistered => SkipReason::MarketingNotRegistered,
            R::InvalidNumber => SkipReason::InvalidNumber,
            R::OptedOut => SkipReason::OptedOut,
            R::NoMarketingConsent => SkipReason::NoMarketingConsent,
            R::JobNotificationsOff => SkipReason::JobNotificationsOff,
            R::MarketingUpdatesOff => SkipReason::MarketingUpdatesOff,
            R::AlreadyOptedIn => SkipReason::AlreadyOptedIn,
            R::OptInThrottled => SkipReason::OptInThrottled,
            R::QuietHours => SkipReason::QuietHours,
            R::FrequencyCap => SkipReason::FrequencyCap,
            R::UnderReview => SkipReason::UnderReview,
        }
    }
}

/// One phone in a campaign step: queued with a message, or skipped with a reason.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Recipient {
    pub campaign_id: String,
    /// `send` for a marketing blast; `{estimate}:{days}`, `{service}:{days}` or the
    /// caller's local date for transactional steps.
    pub step: String,
    pub phone: E164,
    pub message: Option<Message>,
    pub skip_reason: Option<SkipReason>,
    pub created_at: DateTime<Utc>,
}

impl Recipient {
    /// One phone of a step, not yet queued or skipped.
    pub fn new(campaign_id: &str, step: String, phone: &E164, at: DateTime<Utc>) -> Recipient {
        Recipient {
            campaign_id: campaign_id.to_string(),
            step,
            phone: phone.clone(),
            message: None,
            skip_reason: None,
            created_at: at,
        }
    }

    /// The same phone, skipped with `reason`.
    pub fn skipped(self, reason: SkipReason) -> Recipient {
        Recipient {
            skip_reason: Some(reason),
            ..self
        }
    }
}

assent_core::text_enum! {
    /// A recipient's status in a campaign's send log: its message's, or `skipped`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum SendStatus as "send log status" {
        Queued = "queued",
        Deferred = "deferred",
        Sending = "sending",
        Sent = "sent",
        Delivered = "delivered",
        Undelivered = "undelivered",
        Failed = "failed",
        Blocked = "blocked",
        Unknown = "unknown",
        Expired = "expired",
        Skipped = "skipped",
    }
}

// Ordered by text, so counts keyed by status come out as they did when the keys were text.
impl Ord for SendStatus {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl PartialOrd for SendStatus {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl SendStatus {
    /// A recipient's status: `skipped` when it was, else its message's (`queued` while the
    /// message is not written yet). A campaign message is never `received`: a row saying so
    /// is a stored-data error.
    pub fn of(
        skipped: bool,
        message: Option<MessageStatus>,
    ) -> Result<SendStatus, crate::StoreError> {
        if skipped {
            return Ok(SendStatus::Skipped);
        }
        let status = message.unwrap_or(MessageStatus::Queued);
        codec::column("campaign message status", status.as_str())
    }
}

/// A row of a campaign's send log.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SendLogRow {
    pub phone: E164,
    pub step: String,
    pub message_id: Option<String>,
    pub status: SendStatus,
    pub reason: Option<String>,
    pub sent_at: Option<DateTime<Utc>>,
    /// The phone opted out within 7 days after this message.
    pub opted_out_after: bool,
    /// When a deferred message will go (quiet hours, the frequency cap, pacing); `None`
    /// for any other status, and for a paused campaign's messages, which wait for Resume.
    pub deferred_until: Option<DateTime<Utc>>,
}

impl SendLogRow {
    /// [`SendLogRow::deferred_until`] from a message's status and `due_at` (ms).
    pub fn deferred_until_of(
        status: Option<MessageStatus>,
        due_at_ms: Option<i64>,
    ) -> Option<DateTime<Utc>> {
        due_at_ms
            .filter(|ms| status == Some(MessageStatus::Deferred) && *ms != PAUSED_UNTIL_MS)
            .and_then(DateTime::from_timestamp_millis)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AudienceMember {
    pub phone: E164,
    pub name: Option<String>,
}

/// One page of a marketing audience, in phone order, each phone with its snapshot.
#[derive(Debug, Clone, Default)]
pub struct AudiencePage {
    pub members: Vec<(AudienceMember, PhoneSnapshot)>,
    /// Where the next page starts (after this phone), or `None` after the last page.
    pub next: Option<E164>,
}

/// Where an audience page ends, found before the page is read ([`crate::AudienceRanges`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PageEnd {
    /// The page holds the phones up to and including this one; more may follow.
    At(E164),
    /// The page holds every phone left.
    Last,
}

assent_core::text_enum! {
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum EstimateStatus as "estimate status" {
        Unsold = "unsold",
        Sold = "sold",
        Dismissed = "dismissed",
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Estimate {
    pub id: String,
    pub customer_id: String,
    /// The phone to follow up on; `None` means every phone of the customer.
    pub phone: Option<E164>,
    pub number: Option<String>,
    pub amount_cents: i64,
    pub status: EstimateStatus,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecurringService {
    pub id: String,
    pub customer_id: String,
    pub name: String,
    pub due_on: chrono::NaiveDate,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Call {
    pub id: String,
    pub from: E164,
    pub to: E164,
    pub missed: bool,
    pub at: DateTime<Utc>,
}

assent_core::text_enum! {
    /// What a user may do in the web app. An owner also manages the team, the
    /// registrations, the sending numbers and the settings; a marketer works with
    /// customers, conversations and campaigns. Users made before roles existed are owners.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Role as "role" {
        Owner = "owner",
        Marketer = "marketer",
    }
}

/// A person who signs in to the web app; belongs to one tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: String,
    pub tenant_id: String,
    /// Trimmed and lower-cased; unique across tenants (sign-in asks only for it).
    pub email: String,
    /// An argon2 PHC string.
    pub password_hash: String,
    /// Failed sign-ins in a row.
    pub failed_logins: u32,
    pub locked_until: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub role: Role,
    /// A disabled user cannot sign in, and their sessions have ended.
    pub disabled: bool,
}

/// A failed sign-in to one of a tenant's accounts, as its Settings page lists them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginFailure {
    pub at: DateTime<Utc>,
    /// Masked (`a***@acme.example`): the page shows who, not the whole address.
    pub email: String,
    /// Whether the account was locked after this attempt (or already was).
    pub locked: bool,
}

/// Failed sign-ins kept per tenant; older ones are dropped as new ones come.
pub const LOGIN_FAILURES_KEPT: i64 = 100;

/// A signed-in browser. Only the SHA-256 of the cookie's random id is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub id_hash: String,
    pub user_id: String,
    /// Checked on every form a signed-in page posts.
    pub csrf_token: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// A phone with its latest message, for the conversations list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationSummary {
    pub phone: E164,
    pub last_at: DateTime<Utc>,
    /// The text of the latest message when the customer sent it: nobody has answered yet.
    pub last_inbound: Option<String>,
    /// The latest message's text and direction, whoever sent it.
    pub last_body: Option<String>,
    pub last_direction: Option<Direction>,
    /// The oldest customer holding the phone, if any does.
    pub customer_name: Option<String>,
}

/// How the backends read a customer search: a LIKE pattern for the name, and one for the
/// phone when the query has at least three digits (`%` and `_` escaped with `\`).
pub fn customer_search_patterns(q: &str) -> (String, Option<String>) {
    let escaped: String = q
        .trim()
        .to_lowercase()
        .chars()
        .flat_map(|c| match c {
            '%' | '_' | '\\' => vec!['\\', c],
            c => vec![c],
        })
        .collect();
    let digits: String = q.chars().filter(char::is_ascii_digit).collect();
    (
        format!("%{escaped}%"),
        (digits.len() >= 3).then(|| format!("%{digits}%")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_gate_reason_is_a_message_reason_of_its_own_with_the_same_text() {
        for r in assent_core::gate::Reason::ALL {
            let m = MessageReason::from(r);
            assert!(
                !matches!(m, MessageReason::Provider(_)),
                "{r} fell to Provider"
            );
            assert_eq!(m.as_str(), r.as_str());
        }
    }

    #[test]
    fn a_providers_error_reads_back_byte_for_byte() {
        for text in [
            "provider_error_30007",
            "provider_refused: no, thanks",
            "carrier_error_30034",
        ] {
            let r = MessageReason::from(text);
            assert_eq!(r, MessageReason::Provider(text.into()));
            assert_eq!(r.to_string(), text);
        }
        assert_eq!(
            MessageReason::provider_error(21211).as_str(),
            "provider_error_21211"
        );
        assert_eq!(
            MessageReason::from("carrier_blocked_21610"),
            MessageReason::CarrierBlocked
        );
        let json = serde_json::to_string(&MessageReason::QuietHours).unwrap();
        assert_eq!(json, "\"quiet_hours\"");
    }

    #[test]
    fn new_tenants_text_the_us_only_and_stored_settings_keep_what_they_had() {
        assert_eq!(Settings::default().countries, vec!["US"]);
        // Settings stored before `countries` existed meant the US and Canada.
        let old: Settings = serde_json::from_str(r#"{"help_contact":"x"}"#).unwrap();
        assert_eq!(old.countries, vec!["US", "CA"]);
        let stored: Settings = serde_json::from_str(r#"{"countries":["US","CA","JM"]}"#).unwrap();
        assert_eq!(stored.countries, vec!["US", "CA", "JM"]);
        let us: Settings = serde_json::from_str(r#"{"countries":["US"]}"#).unwrap();
        assert_eq!(us.countries, vec!["US"]);
    }

    #[test]
    fn canada_needs_a_mailing_address_and_a_contact() {
        let us = Settings::default();
        let mut ca = us.clone();
        ca.countries.push("CA".into());
        assert_eq!(ca.canada_problem(&us).map(|p| p.0), Some("mailing_address"));
        ca.mailing_address = "1 Main St, Buffalo, NY 14202".into();
        assert_eq!(ca.canada_problem(&us).map(|p| p.0), Some("contact"));
        assert_eq!(ca.casl_identification("Acme"), None);
        ca.contact = "help@acme.example".into();
        assert_eq!(ca.canada_problem(&us), None);
        assert_eq!(
            ca.casl_identification("Acme").as_deref(),
            Some("Acme, 1 Main St, Buffalo, NY 14202. Contact: help@acme.example.")
        );
        // A tenant that already texted Canada without them keeps it for other changes…
        let legacy: Settings = serde_json::from_str("{}").unwrap();
        let mut changed = legacy.clone();
        changed.marketing_cap_per_day = 2;
        assert_eq!(changed.canada_problem(&legacy), None);
        // …but cannot clear one once given.
        let mut cleared = ca.clone();
        cleared.contact.clear();
        assert_eq!(cleared.canada_problem(&ca).map(|p| p.0), Some("contact"));
    }
}

/// A campaign's send log counted by the database: `GET /campaigns/{id}` and the report page
/// read these instead of the rows, so a report costs the same at any audience size.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CampaignCounts {
    /// Recipients (one per phone per step).
    pub recipients: u64,
    /// Recipients by their current status, `skipped` included; statuses nobody has are
    /// absent.
    pub by_status: std::collections::BTreeMap<SendStatus, u64>,
    /// Skipped recipients by the gate's reason.
    pub skipped_by_reason: std::collections::BTreeMap<String, u64>,
    /// Recipients who opted out within 7 days after their message.
    pub opted_out_after: u64,
}

/// Where a page of the send log resumes: the last row's key, (step, phone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendLogKey {
    pub step: String,
    pub phone: String,
}

/// One page of a campaign's send log, in key order (step, phone).
#[derive(Debug, Clone, Default)]
pub struct SendLogPage {
    pub rows: Vec<SendLogRow>,
    /// The key to resume after, when there is more.
    pub next: Option<SendLogKey>,
}

impl SendLogPage {
    /// A page from up to `limit + 1` rows in key order: the extra row only says there is
    /// more.
    pub fn of(mut rows: Vec<SendLogRow>, limit: usize) -> SendLogPage {
        let more = rows.len() > limit;
        rows.truncate(limit);
        let next = more.then(|| rows.last()).flatten().map(|r| SendLogKey {
            step: r.step.clone(),
            phone: r.phone.as_str().to_string(),
        });
        SendLogPage { rows, next }
    }

    /// [`SendLogPage::of`] for rows read backwards (descending key): put back in key order,
    /// `next` being the first row's key when more come before it.
    pub fn of_backwards(mut rows: Vec<SendLogRow>, limit: usize) -> SendLogPage {
        let more = rows.len() > limit;
        rows.truncate(limit);
        rows.reverse();
        let next = more.then(|| rows.first()).flatten().map(|r| SendLogKey {
            step: r.step.clone(),
            phone: r.phone.as_str().to_string(),
        });
        SendLogPage { rows, next }
    }
}

/// One reassigned-number lookup, as kept for evidence (the FCC's safe harbour needs the
/// query on file): what was asked and what came back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReassignedCheck {
    pub tenant_id: String,
    pub phone: E164,
    pub asked_at: DateTime<Utc>,
    /// `twilio`.
    pub provider: String,
    /// The consent date sent as `LastVerifiedDate`, `YYYYMMDD`.
    pub last_verified_date: String,
    /// `yes`, `no` or `no_data_available`; `None` when the lookup failed.
    pub answer: Option<String>,
    /// The provider's `error_code`, or why the lookup failed.
    pub error: Option<String>,
    /// The marketing message the check was made for.
    pub message_id: Option<String>,
}

/// One status callback from the provider about a message, as received.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusEvent {
    pub tenant_id: String,
    pub message_id: String,
    pub provider_id: String,
    /// The provider's own word (`sent`, `delivered`, …), unmapped.
    pub status: String,
    pub error_code: Option<i64>,
    pub received_at: DateTime<Utc>,
}

/// A claimed message that does not go after all (a reassigned-number check blocked or
/// deferred it): its new status, reason and due time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimOutcome {
    pub tenant_id: String,
    pub id: String,
    pub status: MessageStatus,
    pub reason: MessageReason,
    pub due_at: DateTime<Utc>,
}
