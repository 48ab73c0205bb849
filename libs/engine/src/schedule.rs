//! Cron schedules in a time zone, for `trigger.schedule` and the executor's scheduler.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use croner::Cron;

/// Parses five fields (minute hour day month weekday), six with seconds first, or a
/// nickname such as `@daily`.
pub fn parse_cron(cron: &str) -> Result<Cron, String> {
    Cron::from_str(cron).map_err(|error| format!("invalid cron expression: {error}"))
}

/// Parses an IANA time zone name such as `Europe/Paris` or `UTC`.
pub fn parse_timezone(timezone: &str) -> Result<Tz, String> {
    Tz::from_str(timezone).map_err(|_| {
        format!("unknown time zone `{timezone}`; use an IANA name such as Europe/Paris")
    })
}

/// The first time strictly after `after` at which `cron` fires in `timezone`.
///
/// The pattern is matched against wall-clock time in the zone, so `0 9 * * *` in
/// Europe/Paris stays at 09:00 local across daylight-saving changes. A fixed time that
/// falls into a spring-forward gap fires right after the gap; one in a fall-back overlap
/// fires once, at its first occurrence.
pub fn next_fire(
    cron: &str,
    timezone: &str,
    after: DateTime<Utc>,
) -> Result<DateTime<Utc>, String> {
    let schedule = parse_cron(cron)?;
    let zone = parse_timezone(timezone)?;
    let local_after = after.with_timezone(&zone);
    schedule
        .find_next_occurrence(&local_after, false)
        .map(|next| next.with_timezone(&Utc))
        .map_err(|error| format!("cron expression `{cron}` never fires: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .expect("valid time")
            .with_timezone(&Utc)
    }

    #[test]
    fn fires_at_local_wall_clock_time() {
        // 09:00 in Paris is 08:00 UTC in winter (CET, +01:00).
        let next =
            next_fire("0 9 * * *", "Europe/Paris", utc("2026-01-10T10:00:00Z")).expect("fires");
        assert_eq!(next, utc("2026-01-11T08:00:00Z"));
    }

    #[test]
    fn keeps_local_time_across_the_spring_forward_change() {
        // Paris moves to CEST (+02:00) on 2026-03-29, so 09:00 local becomes 07:00 UTC.
        let before =
            next_fire("0 9 * * *", "Europe/Paris", utc("2026-03-28T09:00:00Z")).expect("fires");
        assert_eq!(before, utc("2026-03-29T07:00:00Z"));
    }

    #[test]
    fn a_time_inside_the_dst_gap_fires_right_after_it() {
        // 02:30 does not exist in New York on 2026-03-08 (02:00 jumps to 03:00 EDT).
        let next = next_fire(
            "30 2 * * *",
            "America/New_York",
            utc("2026-03-08T05:00:00Z"),
        )
        .expect("fires");
        let local = next.with_timezone(&chrono_tz::America::New_York);
        assert_eq!(
            local.date_naive(),
            chrono::NaiveDate::from_ymd_opt(2026, 3, 8).expect("date")
        );
        assert!(
            next > utc("2026-03-08T06:59:59Z"),
            "after the gap, got {next}"
        );
        assert!(
            next <= utc("2026-03-08T07:30:00Z"),
            "on the same morning, got {next}"
        );
    }

    #[test]
    fn a_time_in_the_fall_back_overlap_fires_once() {
        // 01:30 happens twice in New York on 2026-11-01; a fixed-time job fires only at the first.
        let first = next_fire(
            "30 1 * * *",
            "America/New_York",
            utc("2026-11-01T04:00:00Z"),
        )
        .expect("fires");
        assert_eq!(
            first,
            chrono_tz::America::New_York
                .with_ymd_and_hms(2026, 11, 1, 1, 30, 0)
                .earliest()
                .expect("exists")
                .with_timezone(&Utc)
        );
        let second = next_fire("30 1 * * *", "America/New_York", first).expect("fires");
        assert_eq!(
            second
                .with_timezone(&chrono_tz::America::New_York)
                .date_naive(),
            chrono::NaiveDate::from_ymd_opt(2026, 11, 2).expect("date")
        );
    }

    #[test]
    fn rejects_bad_patterns_and_zones() {
        assert!(next_fire("61 * * * *", "UTC", Utc::now()).is_err());
        assert!(next_fire("* * * * *", "Mars/Olympus", Utc::now()).is_err());
    }
}
