//! The decisions both backends make about what they read, as pure functions: which claimed
//! messages go and what happens to the rest, when a failed hand-off is tried again, whether
//! the opt-in form's limits let a submission through, which statuses a message may leave,
//! and where the 24-hour windows start. A backend reads what these need, calls them, and
//! writes what they return; the rules themselves live (and are tested) only here.

pub mod chain;

use chrono::{DateTime, Duration, Utc};

use crate::codec::{ms, time};
use crate::{
    Handoff, Message, MessageStatus, MessageUpdate, Pacer, PhoneSnapshot, first_counted_bucket,
};

// ---------------------------------------------------------------------------------------
// The 24-hour windows.

/// The frequency cap looks back this far at a phone's marketing hand-offs.
pub const FREQUENCY_WINDOW_MS: i64 = 24 * 3_600_000;

/// The oldest marketing hand-off (by `handed_off_at`, in ms) a snapshot at `now_ms` reads:
/// only later ones count toward the frequency cap.
pub fn frequency_window_start(now_ms: i64) -> i64 {
    now_ms - FREQUENCY_WINDOW_MS
}

/// Hand-off buckets before this one are older than any window at `now_ms` and of no more
/// use (kept a day past the counted ones, so a clock a little behind loses nothing).
pub fn oldest_kept_bucket(now_ms: i64) -> i64 {
    first_counted_bucket(now_ms) - 24
}

/// A claim put back unstarted: `(tenant_id, id, handed_off_at ms, segments)`.
pub type Unstarted = (String, String, i64, i64);

/// A claimed message held back at its call, as [`handoff_refunds`] counts it.
pub fn held_back(m: &Message, claimed_at: DateTime<Utc>) -> Unstarted {
    (
        m.tenant_id.clone(),
        m.id.clone(),
        ms(claimed_at),
        i64::from(m.segments),
    )
}

/// What putting `unstarted` back gives back against the daily cap at `now_ms`: per
/// (tenant, hour bucket), in key order (the order a claim takes the buckets in), the
/// segments as the claim counted them (one at least). Buckets no longer counted are left
/// out: nothing reads them, and a claim may be deleting them.
pub fn handoff_refunds(unstarted: &[Unstarted], now_ms: i64) -> Vec<(&str, i64, i64)> {
    let counted_from = first_counted_bucket(now_ms);
    let mut refunds: std::collections::BTreeMap<(&str, i64), i64> = Default::default();
    for (tenant_id, _, handed_off_at, segments) in unstarted {
        let hour = crate::handoff_bucket(*handed_off_at);
        if hour >= counted_from {
            *refunds.entry((tenant_id.as_str(), hour)).or_default() += (*segments).max(1);
        }
    }
    refunds.into_iter().map(|((t, h), n)| (t, h, n)).collect()
}

// ---------------------------------------------------------------------------------------
// Status ranking.

/// Every status, for [`ranked_below`].
pub const STATUSES: [MessageStatus; 11] = [
    MessageStatus::Received,
    MessageStatus::Queued,
    MessageStatus::Deferred,
    MessageStatus::Sending,
    MessageStatus::Sent,
    MessageStatus::Delivered,
    MessageStatus::Undelivered,
    MessageStatus::Failed,
    MessageStatus::Blocked,
    MessageStatus::Unknown,
    MessageStatus::Expired,
];

/// The statuses a message may move to `to` from: those of lower [`MessageStatus::rank`]
/// (none when there is no new status). Backends update only rows in one of them, so a
/// status never moves backwards whatever order reports arrive in.
pub fn ranked_below(to: Option<MessageStatus>) -> Vec<&'static str> {
    let Some(to) = to else {
        return Vec::new();
    };
    STATUSES
        .iter()
        .filter(|s| s.rank() < to.rank())
        .map(|s| s.as_str())
        .collect()
}

/// Whether a message written with this status was handed to the provider (the frequency
/// cap counts it): sending or later, but not blocked or expired before it went.
pub fn handed_off(status: MessageStatus) -> bool {
    status.rank() >= MessageStatus::Sending.rank()
        && status != MessageStatus::Blocked
        && status != MessageStatus::Expired
}

/// The common update, a hand-off the provider accepted: `sent` with its id and no reason.
/// Backends write a burst of these in one statement and anything else one by one.
pub fn is_acceptance(u: &MessageUpdate) -> bool {
    u.status == Some(MessageStatus::Sent) && u.reason.is_none() && u.provider_id.is_some()
}

// ---------------------------------------------------------------------------------------
// The claim planner.

/// What a claim or a call's start does with a message that does not go now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The message's tenant, which every write of the outcome names beside its id.
    pub tenant_id: String,
    pub id: String,
    pub status: MessageStatus,
    pub reason: Option<crate::MessageReason>,
    pub due_at: DateTime<Utc>,
}

/// The outcome of a hand-off decision for a message that does not go (`None` when it
/// goes): deferred until the planner's time, or refused with its status where it was due.
pub fn outcome(m: &Message, handoff: Handoff) -> Option<Outcome> {
    let (status, reason, due_at) = match handoff {
        Handoff::Send => return None,
        Handoff::Defer { until, reason } => (MessageStatus::Deferred, reason, until),
        Handoff::Refuse { status, reason } => (status, reason, m.due_at),
    };
    Some(Outcome {
        tenant_id: m.tenant_id.clone(),
        id: m.id.clone(),
        status,
        reason: Some(reason),
        due_at,
    })
}

/// One claim's decisions. The backend reads the due messages and their phones' snapshots,
/// asks the gate's planner about each message, loads what the [`Pacer`] does not know yet
/// (`pacer.knows_sender`, `pacer.knows_tenant`), and hands the answer to [`Claim::settle`].
/// At the end it writes `sending` (now `sending`), `held` (deferred, blocked or expired)
/// and the pacer's changes.
#[derive(Debug)]
pub struct Claim {
    now: DateTime<Utc>,
    pub pacer: Pacer,
    pub sending: Vec<Message>,
    pub held: Vec<Outcome>,
}

impl Claim {
    pub fn new(now: DateTime<Utc>) -> Self {
        Claim {
            now,
            pacer: Pacer::default(),
            sending: Vec::new(),
            held: Vec::new(),
        }
    }

    /// Decides one message the gate answered `handoff` about: one it let through still
    /// has to fit its sender's pace and its tenant's daily cap. A message that goes is
    /// counted in its snapshot at once, so a second marketing text to the same phone in
    /// this claim sees the first (as the database will answer once this commits).
    pub fn settle(&mut self, mut m: Message, snap: &mut PhoneSnapshot, handoff: Handoff) {
        let handoff = match handoff {
            Handoff::Send => self
                .pacer
                .admit(&m, &snap.tenant.settings.rate_limits, self.now),
            other => other,
        };
        match outcome(&m, handoff) {
            Some(o) => self.held.push(o),
            None => {
                if m.purpose == Some(assent_core::gate::Purpose::Marketing) {
                    snap.recent_marketing.push(time(ms(self.now)));
                }
                m.status = MessageStatus::Sending;
                m.updated_at = self.now;
                self.sending.push(m);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Retries.

/// What becomes of a `sending` message whose hand-off sent nothing back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    pub status: MessageStatus,
    /// Hand-offs tried, this one included.
    pub attempts: u32,
    pub due_at: DateTime<Utc>,
}

/// After `attempts_before` earlier tries, this one failed too: the message is queued again
/// after `backoff(attempts)`, or fails once `max_attempts` hand-offs were tried. With no
/// `max_attempts` the provider throttled the account, which says nothing about the
/// message: it waits as long as the next attempt would, and that attempt is not used up.
pub fn retry(
    attempts_before: u32,
    max_attempts: Option<u32>,
    now: DateTime<Utc>,
    backoff: &dyn Fn(u32) -> Duration,
) -> Retry {
    let next = attempts_before.saturating_add(1);
    let Some(max_attempts) = max_attempts else {
        return Retry {
            status: MessageStatus::Queued,
            attempts: attempts_before,
            due_at: now + backoff(next),
        };
    };
    let attempts = next;
    if attempts >= max_attempts {
        Retry {
            status: MessageStatus::Failed,
            attempts,
            due_at: now,
        }
    } else {
        Retry {
            status: MessageStatus::Queued,
            attempts,
            due_at: now + backoff(attempts),
        }
    }
}

// ---------------------------------------------------------------------------------------
// The opt-in form's limits.

/// Where the window of a `(key, max, window)` limit starts at `now`: hits after it count.
pub fn hits_since(window: Duration, now: DateTime<Utc>) -> DateTime<Utc> {
    now - window
}

/// All or nothing: given how many hits each limit already has in its window (in the order
/// of `limits`), the keys to record one hit on each, or `None` (record nothing, refuse)
/// when any limit is full.
pub fn take_hits<'a>(
    limits: &'a [(String, u32, Duration)],
    counts: &[i64],
) -> Option<Vec<&'a str>> {
    let full = limits
        .iter()
        .zip(counts)
        .any(|((_, max, _), n)| *n >= i64::from(*max));
    (!full).then(|| limits.iter().map(|(k, _, _)| k.as_str()).collect())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use assent_core::consent::Channel;
    use assent_core::gate::Purpose;
    use assent_core::phone::E164;
    use chrono::TimeZone;

    #[test]
    fn refunds_go_to_each_claims_hour_in_key_order_one_segment_at_least() {
        let hour = crate::HANDOFF_BUCKET_MS;
        let now = 100 * hour + 5;
        let row = |t: &str, at: i64, segments: i64| (t.to_string(), "m".to_string(), at, segments);
        let unstarted = [
            row("t2", 99 * hour, 3),
            row("t1", 100 * hour + 1, 0),
            row("t1", 99 * hour + 7, 2),
            row("t1", 100 * hour + 2, 1),
            // A day and more before: no longer counted, left alone.
            row("t1", 70 * hour, 4),
        ];
        assert_eq!(
            handoff_refunds(&unstarted, now),
            [("t1", 99, 2), ("t1", 100, 2), ("t2", 99, 3)]
        );
    }

    fn message(id: &str, due_hour: u32, purpose: Option<Purpose>) -> Message {
        let phone = E164::parse("+15555550123").unwrap();
        Message {
            id: id.into(),
            tenant_id: "t".into(),
            direction: crate::Direction::Outbound,
            channel: Channel::Marketing,
            from: E164::parse("+15555550100").unwrap(),
            to: phone.clone(),
            phone,
            body: "hi".into(),
            kind: crate::MessageKind::Campaign,
            purpose,
            status: MessageStatus::Queued,
            reason: None,
            provider_id: None,
            segments: 1,
            priority: 1,
            due_at: at(due_hour),
            expires_at: None,
            idempotency_key: None,
            created_at: at(0),
            updated_at: at(0),
        }
    }

    fn snapshot(per_day: u32) -> PhoneSnapshot {
        let mut settings = crate::Settings::default();
        settings.rate_limits.per_tenant_per_day = per_day;
        crate::testing::snapshot(
            crate::Tenant {
                id: "t".into(),
                slug: "t".into(),
                name: "T".into(),
                time_zone: assent_core::Tz::America__New_York,
                settings,
                senders: Default::default(),
                created_at: at(0),
            },
            crate::Registrations {
                texting: None,
                marketing: None,
            },
            Default::default(),
        )
    }

    #[test]
    fn a_claim_sends_what_the_gate_and_the_pacer_let_through() {
        let now = at(10) + Duration::milliseconds(1) + Duration::microseconds(500);
        let mut claim = Claim::new(now);
        let mut snap = snapshot(1);
        claim
            .pacer
            .load_sender(&E164::parse("+15555550100").unwrap(), None);
        claim.pacer.load_tenant("t", 0);
        claim.settle(
            message("a", 9, Some(Purpose::Marketing)),
            &mut snap,
            Handoff::Send,
        );
        // The daily cap of one is used up: the second waits, though the gate let it go.
        claim.settle(
            message("b", 9, Some(Purpose::Marketing)),
            &mut snap,
            Handoff::Send,
        );
        claim.settle(
            message("c", 9, None),
            &mut snap,
            Handoff::Refuse {
                status: MessageStatus::Blocked,
                reason: "opted_out".into(),
            },
        );
        assert_eq!(claim.sending.len(), 1);
        let sent = &claim.sending[0];
        assert_eq!(
            (sent.id.as_str(), sent.status, sent.updated_at),
            ("a", MessageStatus::Sending, now)
        );
        // Counted as the database will answer: to the millisecond.
        assert_eq!(snap.recent_marketing, [time(ms(now))]);
        let held: Vec<_> = claim
            .held
            .iter()
            .map(|o| (o.id.as_str(), o.status))
            .collect();
        assert_eq!(
            held,
            [
                ("b", MessageStatus::Deferred),
                ("c", MessageStatus::Blocked)
            ]
        );
        assert_eq!(
            claim.held[1].due_at,
            at(9),
            "a refused message keeps its due time"
        );
        assert_eq!(claim.pacer.handed_off().count(), 1);
    }

    #[test]
    fn a_claim_counts_no_hand_off_of_a_non_marketing_text() {
        let mut claim = Claim::new(at(10));
        let mut snap = snapshot(10);
        claim
            .pacer
            .load_sender(&E164::parse("+15555550100").unwrap(), None);
        claim.pacer.load_tenant("t", 0);
        claim.settle(
            message("a", 9, Some(Purpose::JobNotification)),
            &mut snap,
            Handoff::Send,
        );
        assert_eq!(claim.sending.len(), 1);
        assert!(snap.recent_marketing.is_empty());
    }

    fn at(h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 2, h, 0, 0).unwrap()
    }

    #[test]
    fn the_frequency_window_is_a_day_back() {
        assert_eq!(
            frequency_window_start(ms(at(12))),
            ms(at(12) - Duration::hours(24))
        );
    }

    #[test]
    fn buckets_are_kept_a_day_longer_than_counted() {
        let now = ms(at(12));
        assert_eq!(oldest_kept_bucket(now), first_counted_bucket(now) - 24);
        assert_eq!(
            oldest_kept_bucket(now),
            crate::handoff_bucket(now) - 48,
            "the current hour, the 24 counted and a day more"
        );
    }

    #[test]
    fn a_status_moves_only_forward() {
        assert!(ranked_below(None).is_empty());
        assert_eq!(
            ranked_below(Some(MessageStatus::Received)),
            Vec::<&str>::new()
        );
        assert_eq!(
            ranked_below(Some(MessageStatus::Sent)),
            ["received", "queued", "deferred", "sending"]
        );
        // Sent and unknown share a rank: neither replaces the other.
        assert!(!ranked_below(Some(MessageStatus::Unknown)).contains(&"sent"));
        let delivered = ranked_below(Some(MessageStatus::Delivered));
        assert!(delivered.contains(&"failed") && delivered.contains(&"unknown"));
        assert!(!delivered.contains(&"blocked") && !delivered.contains(&"delivered"));
        assert_eq!(ranked_below(Some(MessageStatus::Expired)).len(), 9);
    }

    #[test]
    fn every_status_is_listed_once() {
        for s in STATUSES {
            assert_eq!(STATUSES.iter().filter(|t| **t == s).count(), 1);
            assert_eq!(s.as_str().parse::<MessageStatus>().ok(), Some(s));
        }
    }

    #[test]
    fn handed_off_is_sending_or_later_but_not_stopped_before_it_went() {
        let yes: Vec<_> = STATUSES.into_iter().filter(|s| handed_off(*s)).collect();
        assert_eq!(
            yes,
            [
                MessageStatus::Sending,
                MessageStatus::Sent,
                MessageStatus::Delivered,
                MessageStatus::Undelivered,
                MessageStatus::Failed,
                MessageStatus::Unknown,
            ]
        );
    }

    #[test]
    fn only_a_plain_acceptance_is_one() {
        let sent = MessageUpdate {
            status: Some(MessageStatus::Sent),
            provider_id: Some("SM1".into()),
            ..Default::default()
        };
        assert!(is_acceptance(&sent));
        assert!(!is_acceptance(&MessageUpdate {
            reason: Some("x".into()),
            ..sent.clone()
        }));
        assert!(!is_acceptance(&MessageUpdate {
            provider_id: None,
            ..sent.clone()
        }));
        assert!(!is_acceptance(&MessageUpdate {
            status: Some(MessageStatus::Delivered),
            ..sent
        }));
    }

    #[test]
    fn a_retry_backs_off_until_the_last_attempt_fails() {
        let backoff = |n: u32| Duration::seconds(30 * i64::from(n));
        assert_eq!(
            retry(0, Some(3), at(1), &backoff),
            Retry {
                status: MessageStatus::Queued,
                attempts: 1,
                due_at: at(1) + Duration::seconds(30),
            }
        );
        assert_eq!(
            retry(1, Some(3), at(1), &backoff).due_at,
            at(1) + Duration::seconds(60)
        );
        assert_eq!(
            retry(2, Some(3), at(1), &backoff),
            Retry {
                status: MessageStatus::Failed,
                attempts: 3,
                due_at: at(1),
            }
        );
        // Nothing is retried when a single attempt is allowed (or none).
        assert_eq!(
            retry(0, Some(1), at(1), &backoff).status,
            MessageStatus::Failed
        );
        assert_eq!(
            retry(0, Some(0), at(1), &backoff).status,
            MessageStatus::Failed
        );
    }

    #[test]
    fn a_throttle_waits_like_the_next_attempt_without_using_it_up() {
        let backoff = |n: u32| Duration::seconds(30 * i64::from(n));
        // Even past the limit: a throttle never fails a message.
        for before in [0, 2, 9] {
            assert_eq!(
                retry(before, None, at(1), &backoff),
                Retry {
                    status: MessageStatus::Queued,
                    attempts: before,
                    due_at: at(1) + Duration::seconds(30 * i64::from(before + 1)),
                }
            );
        }
    }

    #[test]
    fn form_hits_are_all_or_nothing() {
        let limits = vec![
            ("ip:1".to_string(), 2, Duration::hours(1)),
            ("tenant:t".to_string(), 5, Duration::hours(24)),
        ];
        assert_eq!(take_hits(&limits, &[0, 0]), Some(vec!["ip:1", "tenant:t"]));
        assert_eq!(take_hits(&limits, &[1, 4]), Some(vec!["ip:1", "tenant:t"]));
        assert_eq!(take_hits(&limits, &[2, 0]), None);
        assert_eq!(take_hits(&limits, &[0, 5]), None);
        assert_eq!(
            take_hits(&[], &[]),
            Some(vec![]),
            "no limits, nothing to refuse"
        );
        assert_eq!(hits_since(Duration::hours(1), at(5)), at(4));
    }

    #[test]
    fn a_held_outcome_keeps_the_planners_word() {
        let m = message("m1", 3, Some(Purpose::Marketing));
        assert_eq!(outcome(&m, Handoff::Send), None);
        assert_eq!(
            outcome(
                &m,
                Handoff::Defer {
                    until: at(9),
                    reason: "quiet_hours".into()
                }
            ),
            Some(Outcome {
                tenant_id: m.tenant_id.clone(),
                id: "m1".into(),
                status: MessageStatus::Deferred,
                reason: Some("quiet_hours".into()),
                due_at: at(9),
            })
        );
        assert_eq!(
            outcome(
                &m,
                Handoff::Refuse {
                    status: MessageStatus::Blocked,
                    reason: "opted_out".into()
                }
            ),
            Some(Outcome {
                tenant_id: m.tenant_id.clone(),
                id: "m1".into(),
                status: MessageStatus::Blocked,
                reason: Some("opted_out".into()),
                due_at: at(3),
            })
        );
    }
}
