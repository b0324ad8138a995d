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
        /// A step goes when due, never one found more than a week late, never early.
        #[test]
        fn a_step_goes_only_when_due_and_recent(hours in -30 * 24i64..30 * 24) {
            let now = Utc.with_ymd_and_hms(2026, 3, 20, 12, 0, 0).unwrap();
            let due = now + Duration::hours(hours);
            match timing(due, now) {
                Timing::NotYet(at) => prop_assert!(at == due && due > now),
                Timing::TooLate => prop_assert!(now - due > Duration::days(CATCH_UP_DAYS)),
                Timing::Now => prop_assert!(due <= now && now - due <= Duration::days(CATCH_UP_DAYS)),
            }
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
