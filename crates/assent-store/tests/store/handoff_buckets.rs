//! The daily cap's hour buckets must never count less than the last 24 hours.

use assent_store::{HANDOFF_BUCKET_MS, first_counted_bucket, handoff_bucket};
use proptest::prelude::*;

const DAY_MS: i64 = 24 * 3_600_000;

proptest! {
    /// A hand-off at `t` still counts at every moment up to a day later.
    #[test]
    fn a_handoff_counts_for_at_least_a_day(t in 0i64..4_000_000_000_000, later in 0i64..=DAY_MS) {
        prop_assert!(handoff_bucket(t) >= first_counted_bucket(t + later));
    }

    /// ... and no longer than a day and an hour.
    #[test]
    fn a_handoff_stops_counting_within_a_day_and_an_hour(t in 0i64..4_000_000_000_000, extra in 1i64..10 * DAY_MS) {
        prop_assert!(handoff_bucket(t) < first_counted_bucket(t + DAY_MS + HANDOFF_BUCKET_MS + extra));
    }
}

#[test]
fn buckets_are_hours() {
    assert_eq!(handoff_bucket(0), 0);
    assert_eq!(handoff_bucket(3_599_999), 0);
    assert_eq!(handoff_bucket(3_600_000), 1);
    assert_eq!(first_counted_bucket(25 * 3_600_000), 1);
}
