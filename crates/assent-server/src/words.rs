//! The product's words for every status, reason and change a person reads: one mapping,
//! used by every page and by the CSV exports, so that "quiet_hours" or "active → active"
//! never reaches a person and a status reads the same wherever it is shown.
//!
//! Codes stay codes in the API's JSON and in the CSV's code columns (programs read those);
//! wherever a person reads one, it goes through a function here.

use assent_core::consent::{MarketingStatus, Source};
use assent_core::gate::Reason;
use assent_store::{MessageStatus, SendStatus};

/// A phone's marketing consent, as the contract names it (None, Pending, Opted in, Opted
/// out).
pub fn marketing(s: MarketingStatus) -> &'static str {
    match s {
        MarketingStatus::None => "None",
        MarketingStatus::Pending => "Pending",
        MarketingStatus::OptedIn => "Opted in",
        MarketingStatus::OptedOut => "Opted out",
    }
}

/// The badge class of a marketing status.
pub fn marketing_class(s: MarketingStatus) -> &'static str {
    match s {
        MarketingStatus::OptedIn => "ok",
        MarketingStatus::OptedOut => "bad",
        MarketingStatus::Pending => "warn",
        MarketingStatus::None => "none",
    }
}

/// A badge that says what it is about: `Marketing: Opted out`.
pub fn marketing_badge(s: MarketingStatus) -> String {
    format!("Marketing: {}", marketing(s))
}

/// Whether job texts (notifications, text-backs, automatic replies) reach the phone:
/// `Job texts: Receiving`, or `Job texts: Stopped` after a STOP on the transactional
/// number (or one for all texts).
pub fn job_texts_badge(stopped_all: bool) -> &'static str {
    if stopped_all {
        "Job texts: Stopped"
    } else {
        "Job texts: Receiving"
    }
}

/// Where a consent change came from.
pub fn source(s: Source) -> &'static str {
    match s {
        Source::CustomerRecord => "Customer record",
        Source::OptInLink => "Opt-in link",
        Source::WebForm => "Web form",
        Source::Keyword => "Keyword",
        Source::FreeText => "Free-text message",
        Source::Carrier => "Carrier",
        Source::Api => "API",
        Source::Import => "Import",
        Source::Expiry => "Expiry",
        Source::Review => "Review",
        Source::ReassignedNumber => "Reassigned-number check",
    }
}

/// What a ledger entry is about (its `channel`).
pub fn ledger_topic(channel: &str) -> String {
    match channel {
        "marketing" => "Marketing texts".into(),
        "transactional" => "All texts".into(),
        "job_notifications" => "Job Notifications".into(),
        "marketing_updates" => "Marketing updates".into(),
        other => sentence(other),
    }
}

/// A ledger change in words that do not repeat the status labels (None, Pending, Opted
/// in, Opted out), so the status badge is the one place those words appear: `Consent
/// given`, `All texts stopped (again)`. The same words on the customer record, the
/// Compliance page (filtered or not) and in the CSV.
pub fn ledger_change(channel: &str, old: &str, new: &str) -> String {
    let again = if old == new { " (again)" } else { "" };
    let what = match (channel, new) {
        ("marketing", "pending") => "Opt-in requested",
        ("marketing", "opted_in") => "Consent given",
        ("marketing", "opted_out") => "Consent withdrawn",
        ("marketing", "none") => "Consent reset",
        ("transactional", "opted_out") => "All texts stopped",
        ("transactional", "active") => "Texts resumed",
        (_, "on") => "Turned on",
        (_, "off") => "Turned off",
        (_, other) => {
            return format!("Changed from {} to {}", phrase(old), phrase(other));
        }
    };
    format!("{what}{again}")
}

/// A message's delivery status.
pub fn message_status(s: MessageStatus) -> &'static str {
    match s {
        MessageStatus::Received => "Received",
        MessageStatus::Queued => "Waiting to send",
        MessageStatus::Deferred => "Held",
        MessageStatus::Sending => "Sending",
        MessageStatus::Sent => "Sent",
        MessageStatus::Delivered => "Delivered",
        MessageStatus::Undelivered => "Not delivered",
        MessageStatus::Failed => "Failed",
        MessageStatus::Blocked => "Blocked by the consent check",
        MessageStatus::Unknown => "Delivery unknown",
        MessageStatus::Expired => "Expired before it could be sent",
    }
}

/// A campaign recipient's status in the send log.
pub fn send_status(s: SendStatus) -> &'static str {
    match s {
        SendStatus::Queued => "Waiting to send",
        SendStatus::Deferred => "Held",
        SendStatus::Sending => "Sending",
        SendStatus::Sent => "Sent",
        SendStatus::Delivered => "Delivered",
        SendStatus::Undelivered => "Not delivered",
        SendStatus::Failed => "Failed",
        SendStatus::Blocked => "Blocked by the consent check",
        SendStatus::Unknown => "Delivery unknown",
        SendStatus::Expired => "Expired before it could be sent",
        SendStatus::Skipped => "Skipped",
    }
}

/// Why the gate refused or held a message, as a sentence: `Held until the recipient's
/// local sending hours.`
pub fn gate_reason(r: Reason) -> String {
    sentence(crate::error::gate_message(r))
}

/// A stored reason code (the gate's, or a provider's) as a sentence; an unknown code is
/// shown in words rather than as a code.
pub fn reason(code: &str) -> String {
    match reason_of(code) {
        Some(r) => gate_reason(r),
        None => sentence(&phrase(code)),
    }
}

/// The gate's reason for a code, if it is one.
pub fn reason_of(code: &str) -> Option<Reason> {
    use assent_core::gate::Reason::*;
    [
        TextingNotRegistered,
        MarketingNotRegistered,
        InvalidNumber,
        OptedOut,
        NoMarketingConsent,
        JobNotificationsOff,
        MarketingUpdatesOff,
        AlreadyOptedIn,
        OptInThrottled,
        QuietHours,
        FrequencyCap,
        UnderReview,
    ]
    .into_iter()
    .find(|r| r.as_str() == code)
}

/// A code's words: `opted_out` → `opted out`.
fn phrase(code: &str) -> String {
    code.replace('_', " ")
}

/// Capitalised and ending with a full stop.
fn sentence(s: &str) -> String {
    let s = s.trim();
    let mut out = String::with_capacity(s.len() + 1);
    let mut chars = s.chars();
    if let Some(first) = chars.next() {
        out.extend(first.to_uppercase());
        out.push_str(chars.as_str());
    }
    if !out.is_empty() && !out.ends_with(['.', '!', '?']) {
        out.push('.');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_read_as_sentences_and_codes_never_show() {
        assert_eq!(
            reason("quiet_hours"),
            "Held until the recipient's local sending hours."
        );
        assert_eq!(
            reason("no_marketing_consent"),
            "The number has not given written consent to marketing messages."
        );
        assert_eq!(reason("carrier_violation"), "Carrier violation.");
        assert!(!reason("opted_out").contains('_'));
    }

    #[test]
    fn a_ledger_change_reads_the_same_words_for_a_repeat() {
        assert_eq!(
            ledger_change("transactional", "active", "active"),
            "Texts resumed (again)"
        );
        assert_eq!(
            ledger_change("marketing", "pending", "opted_in"),
            "Consent given"
        );
        assert_eq!(
            ledger_change("other", "a_b", "c_d"),
            "Changed from a b to c d"
        );
    }

    #[test]
    fn badges_say_what_they_are_about() {
        assert_eq!(
            marketing_badge(MarketingStatus::OptedOut),
            "Marketing: Opted out"
        );
        assert_eq!(job_texts_badge(false), "Job texts: Receiving");
    }
}
