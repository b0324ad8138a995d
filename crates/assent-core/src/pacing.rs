//! Sending pace: how fast one sender may hand messages to the carrier, so the carrier never
//! has to throttle or drop (10DLC tiers: e.g. AT&T 240 to 4,500 a minute per campaign).
//!
//! The generic cell-rate algorithm: each sender keeps one time, its theoretical arrival
//! time (TAT). A message may go when the TAT is no further ahead than the burst allows;
//! the TAT then moves one interval on. One number per sender is all the state, which is
//! why it can live in the database and hold across processes.

use chrono::{DateTime, Duration, Utc};

/// The pace of one sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pace {
    pub per_minute: u32,
}

impl Pace {
    pub fn interval(self) -> Duration {
        Duration::microseconds(60_000_000 / i64::from(self.per_minute.max(1)))
    }
    /// A second's worth of messages may leave together.
    fn burst(self) -> i32 {
        (self.per_minute / 60).max(1) as i32
    }
}

/// Takes a slot: `Ok(new_tat)` when a message may go at `now`, `Err(when)` otherwise.
pub fn take_slot(
    tat: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    pace: Pace,
) -> Result<DateTime<Utc>, DateTime<Utc>> {
    take_slots(tat, now, pace, 1)
}

/// Takes `n` slots at once, for a text of `n` segments (carriers pace segments): it may go
/// when all `n` fit in the burst, or, for a text longer than a whole burst, when the sender
/// is idle; either way the TAT moves `n` intervals on.
pub fn take_slots(
    tat: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    pace: Pace,
    n: u32,
) -> Result<DateTime<Utc>, DateTime<Utc>> {
    let interval = pace.interval();
    let n = i32::try_from(n.max(1)).unwrap_or(i32::MAX);
    let tat = tat.unwrap_or(now).max(now);
    let tolerance = interval * (pace.burst() - 1);
    let allowed_at = tat + interval * (n.min(pace.burst()) - 1) - tolerance;
    if allowed_at > now {
        return Err(allowed_at);
    }
    Ok(tat + interval * n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 8, 12, 0, 0).unwrap()
    }

    #[test]
    fn sixty_a_minute_is_one_a_second() {
        let pace = Pace { per_minute: 60 };
        let tat = take_slot(None, t0(), pace).unwrap();
        assert_eq!(
            take_slot(Some(tat), t0(), pace),
            Err(t0() + Duration::seconds(1))
        );
        assert!(take_slot(Some(tat), t0() + Duration::seconds(1), pace).is_ok());
    }

    #[test]
    fn a_second_of_burst_then_the_steady_rate() {
        let pace = Pace { per_minute: 240 };
        let mut tat = None;
        for _ in 0..4 {
            tat = Some(take_slot(tat, t0(), pace).unwrap());
        }
        assert_eq!(
            take_slot(tat, t0(), pace),
            Err(t0() + Duration::milliseconds(250))
        );
    }

    #[test]
    fn a_text_of_three_segments_takes_three_slots() {
        let pace = Pace { per_minute: 60 };
        let tat = take_slots(None, t0(), pace, 3).unwrap();
        assert_eq!(tat, t0() + Duration::seconds(3));
        assert_eq!(
            take_slot(Some(tat), t0() + Duration::seconds(2), pace),
            Err(t0() + Duration::seconds(3))
        );
        // At 240 a minute (a burst of 4), two 2-segment texts fit in the burst; a third
        // waits for two slots, the second of which frees at 500 ms.
        let pace = Pace { per_minute: 240 };
        let tat = take_slots(None, t0(), pace, 2).unwrap();
        let tat = take_slots(Some(tat), t0(), pace, 2).unwrap();
        assert_eq!(
            take_slots(Some(tat), t0(), pace, 2),
            Err(t0() + Duration::milliseconds(500))
        );
    }

    proptest! {
        /// Counted in segments, no minute lets through more than the pace plus a burst and
        /// one text.
        #[test]
        fn segments_never_exceed_the_pace_in_any_minute(
            per_minute in 1u32..5000,
            texts in proptest::collection::vec((0i64..2000, 1u32..6), 1..400),
        ) {
            let pace = Pace { per_minute };
            let mut tat = None;
            let mut now = t0();
            let mut sent = Vec::new();
            for (g, n) in texts {
                now += Duration::milliseconds(g);
                if let Ok(next) = take_slots(tat, now, pace, n) {
                    tat = Some(next);
                    sent.push((now, n));
                }
            }
            for (i, (start, _)) in sent.iter().enumerate() {
                let in_window: u32 = sent[i..].iter().take_while(|(t, _)| *t < *start + Duration::minutes(1)).map(|(_, n)| n).sum();
                prop_assert!(in_window <= per_minute + pace.burst() as u32 + 5, "{in_window} > {per_minute}");
            }
        }

        /// However requests arrive, no window of a minute lets through more than the pace
        /// plus one burst.
        #[test]
        fn never_more_than_the_pace_in_any_minute(
            per_minute in 1u32..5000,
            gaps in proptest::collection::vec(0i64..2000, 1..400),
        ) {
            let pace = Pace { per_minute };
            let mut tat = None;
            let mut now = t0();
            let mut sent = Vec::new();
            for g in gaps {
                now += Duration::milliseconds(g);
                if let Ok(next) = take_slot(tat, now, pace) {
                    tat = Some(next);
                    sent.push(now);
                }
            }
            for (i, start) in sent.iter().enumerate() {
                let in_window = sent[i..].iter().take_while(|t| **t < *start + Duration::minutes(1)).count();
                prop_assert!(in_window as u32 <= per_minute + pace.burst() as u32, "{in_window} > {per_minute}");
            }
        }
    }
}
