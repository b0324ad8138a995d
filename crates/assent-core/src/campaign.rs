//! When a campaign step falls due, and what happens to one that is already late.

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

/// A step found more than this long after it fell due (its campaign started or resumed
/// late, the server was down, or the estimate arrived late) is skipped, not sent.
pub const CATCH_UP_DAYS: i64 = 7;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timing {
    /// Not due yet; look again then.
    NotYet(DateTime<Utc>),
    Now,
    /// Fell due more than 7 days ago: skipped with `too_late`.
    TooLate,
    /// Due, but a later step of the same estimate or service is due too and goes instead:
    /// skipped with `superseded`, so nobody gets two follow-ups at once.
    Superseded,
}

pub fn timing(due: DateTime<Utc>, now: DateTime<Utc>) -> Timing {
    if due > now {
        Timing::NotYet(due)
    } else if now - due > Duration::days(CATCH_UP_DAYS) {
        Timing::TooLate
    } else {
        Timing::Now
    }
}

/// The timing of each not-yet-recorded step of one estimate or service, given their due
/// times: [`timing`] for each, except that of several due now only the latest goes.
pub fn step_timings(dues: &[DateTime<Utc>], now: DateTime<Utc>) -> Vec<Timing> {
    let latest_due_now = dues
        .iter()
        .copied()
        .filter(|d| timing(*d, now) == Timing::Now)
        .max();
    let mut chosen = false;
    dues.iter()
        .map(|d| match timing(*d, now) {
            Timing::Now if Some(*d) == latest_due_now && !chosen => {
                chosen = true;
                Timing::Now
            }
            Timing::Now => Timing::Superseded,
            other => other,
        })
        .collect()
}

/// An unsold-estimate follow-up: N × 24 h after the estimate was created.
pub fn estimate_step_due(created_at: DateTime<Utc>, days_after: u32) -> DateTime<Utc> {
    created_at + Duration::days(i64::from(days_after))
}

/// A recurring-service reminder: N × 24 h before 10:00 tenant time on the due date.
pub fn recurring_step_due(due_on: NaiveDate, days_before: u32, tz: Tz) -> DateTime<Utc> {
    let ten = due_on.and_time(NaiveTime::from_hms_opt(10, 0, 0).unwrap_or_default());
    let anchor = tz
        .from_local_datetime(&ten)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|| ten.and_utc());
    anchor - Duration::days(i64::from(days_before))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// At most one step of an anchor goes at a time, never one found more than a week
        /// late, never one not yet due; every other due step is accounted for.
        #[test]
        fn at_most_one_step_goes_and_only_a_recent_one(offsets in proptest::collection::vec(-30 * 24i64..30 * 24, 0..8)) {
            let now = Utc.with_ymd_and_hms(2026, 3, 20, 12, 0, 0).unwrap();
            let dues: Vec<_> = offsets.iter().map(|h| now + Duration::hours(*h)).collect();
            let t = step_timings(&dues, now);
            prop_assert_eq!(t.len(), dues.len());
            let going: Vec<_> = dues.iter().zip(&t).filter(|(_, t)| **t == Timing::Now).map(|(d, _)| *d).collect();
            prop_assert!(going.len() <= 1);
            for (d, t) in dues.iter().zip(&t) {
                match t {
                    Timing::NotYet(at) => prop_assert!(*at == *d && *d > now),
                    Timing::TooLate => prop_assert!(now - *d > Duration::days(CATCH_UP_DAYS)),
                    Timing::Now => prop_assert!(*d <= now && now - *d <= Duration::days(CATCH_UP_DAYS)),
                    Timing::Superseded => prop_assert!(going.first().is_some_and(|g| g >= d)),
                }
            }
            let recent = dues.iter().any(|d| *d <= now && now - *d <= Duration::days(CATCH_UP_DAYS));
            prop_assert_eq!(going.len() == 1, recent);
        }
    }

    #[test]
    fn steps_due_within_a_week_go_now_older_ones_are_too_late() {
        let now = Utc.with_ymd_and_hms(2026, 3, 20, 12, 0, 0).unwrap();
        assert_eq!(
            timing(now + Duration::hours(1), now),
            Timing::NotYet(now + Duration::hours(1))
        );
        assert_eq!(timing(now - Duration::days(6), now), Timing::Now);
        assert_eq!(timing(now - Duration::days(8), now), Timing::TooLate);
    }

    #[test]
    fn recurring_reminders_anchor_at_ten_tenant_time() {
        let due = NaiveDate::from_ymd_opt(2026, 7, 15).unwrap();
        // 10:00 CDT = 15:00 UTC, minus 3 days.
        assert_eq!(
            recurring_step_due(due, 3, chrono_tz::America::Chicago),
            Utc.with_ymd_and_hms(2026, 7, 12, 15, 0, 0).unwrap()
        );
    }
}
