//! Calendar months (UTC), as the ledger counts in them.

use chrono::{DateTime, Datelike, NaiveDate, Utc};

use crate::error::{MeteringError, MeteringResult};

/// One calendar month, UTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Month {
    year: i32,
    month: u32,
}

impl Month {
    /// The month `time` falls in.
    pub fn of(time: DateTime<Utc>) -> Month {
        Month {
            year: time.year(),
            month: time.month(),
        }
    }

    /// "2026-12"; empty means the current month. Anything else is refused
    /// with the field named.
    pub fn parse_or_current(text: &str, now: DateTime<Utc>) -> MeteringResult<Month> {
        if text.is_empty() {
            return Ok(Month::of(now));
        }
        let refused =
            || MeteringError::invalid("month", "must be a month as YYYY-MM, e.g. 2026-12");
        let (year, month) = text.split_once('-').ok_or_else(refused)?;
        if year.len() != 4 || month.len() != 2 {
            return Err(refused());
        }
        let year: i32 = year.parse().map_err(|_| refused())?;
        let month: u32 = month.parse().map_err(|_| refused())?;
        if !(1..=12).contains(&month) || !(1970..=9999).contains(&year) {
            return Err(refused());
        }
        Ok(Month { year, month })
    }

    pub fn first_day(self) -> NaiveDate {
        NaiveDate::from_ymd_opt(self.year, self.month, 1).expect("a month's first day exists")
    }

    /// The month after this one.
    pub fn next(self) -> Month {
        if self.month == 12 {
            Month {
                year: self.year + 1,
                month: 1,
            }
        } else {
            Month {
                year: self.year,
                month: self.month + 1,
            }
        }
    }
}

impl std::fmt::Display for Month {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "{:04}-{:02}", self.year, self.month)
    }
}

/// "2026-12-07": the day `time` falls on, UTC.
pub fn day_of(time: DateTime<Utc>) -> String {
    time.format("%Y-%m-%d").to_string()
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn months_parse_strictly_and_turn_at_midnight_utc() {
        let now = Utc.with_ymd_and_hms(2026, 12, 31, 23, 59, 59).unwrap();
        assert_eq!(
            Month::parse_or_current("", now).unwrap().to_string(),
            "2026-12"
        );
        assert_eq!(
            Month::parse_or_current("2027-01", now).unwrap(),
            Month::of(now + chrono::Duration::seconds(1))
        );
        assert_eq!(Month::of(now).next().to_string(), "2027-01");
        for bad in [
            "2026-13",
            "2026-00",
            "26-12",
            "2026-1",
            "2026/12",
            "abcd-ef",
            "2026-12-01",
            "+202-12",
        ] {
            let error = Month::parse_or_current(bad, now).unwrap_err();
            assert!(error.to_string().starts_with("month: "), "{bad}: {error}");
        }
        assert_eq!(day_of(now), "2026-12-31");
    }
}
