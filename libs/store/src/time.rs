//! Times as the database keeps them.

use chrono::{DateTime, SubsecRound, Utc};

/// The current time, truncated to microseconds: PostgreSQL keeps no more, and
/// values that round-trip exactly keep compare-and-set on times and hashes
/// over times stable on both backends.
pub fn now() -> DateTime<Utc> {
    truncate(Utc::now())
}

/// A time as the database keeps it.
pub fn truncate(time: DateTime<Utc>) -> DateTime<Utc> {
    time.trunc_subsecs(6)
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Timelike};

    use super::*;

    #[test]
    fn truncate_drops_everything_below_a_microsecond() {
        let precise = Utc
            .with_ymd_and_hms(2026, 11, 25, 10, 30, 0)
            .unwrap()
            .with_nanosecond(123_456_789)
            .unwrap();
        let kept = truncate(precise);
        assert_eq!(kept.nanosecond(), 123_456_000);
        assert_eq!(kept.timestamp(), precise.timestamp());
        assert_eq!(truncate(kept), kept);
    }

    #[test]
    fn now_has_no_sub_microsecond_part() {
        assert_eq!(now().nanosecond() % 1_000, 0);
    }
}
