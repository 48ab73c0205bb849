//! What a caller asks for (a quota, a key, a cost) and what it gets back.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::LimiterError;

/// Keys become part of Redis keys and of the in-process map; the edge builds
/// them from ids, addresses and paths, so anything longer is a bug upstream.
pub const MAX_KEY_LEN: usize = 512;
/// The longest a quota may take to refill a full burst (`burst · period /
/// rate`). It keeps every TAT far below the 2^53 µs up to which the Redis
/// script's doubles are exact; no request limit needs more.
pub const MAX_REFILL: Duration = Duration::from_secs(366 * 24 * 60 * 60);

/// `rate` requests per `period` sustained, at most `burst` at once.
///
/// The period has a resolution of one microsecond (finer parts are dropped),
/// and the emission interval `period / rate` is rounded up to a whole
/// microsecond, so a limiter never allows more than the quota says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Quota {
    pub rate: u32,
    #[serde(rename = "period_ms", with = "millis")]
    pub period: Duration,
    pub burst: u32,
}

impl Quota {
    /// A validated quota.
    pub fn new(rate: u32, period: Duration, burst: u32) -> Result<Self, LimiterError> {
        let quota = Self {
            rate,
            period,
            burst,
        };
        quota.validate()?;
        Ok(quota)
    }

    /// `rate` per minute, at most `burst` at once.
    pub fn per_minute(rate: u32, burst: u32) -> Result<Self, LimiterError> {
        Self::new(rate, Duration::from_secs(60), burst)
    }

    pub fn validate(&self) -> Result<(), LimiterError> {
        let problems = self.problems();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(LimiterError::Invalid(problems.join("; ")))
        }
    }

    /// Every way in which this quota is unusable; empty when it is valid.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.rate == 0 {
            problems.push("rate must be at least 1".to_owned());
        }
        if self.period.as_micros() == 0 {
            problems.push("period must be at least 1 µs".to_owned());
        }
        if self.burst == 0 {
            problems.push("burst must be at least 1".to_owned());
        }
        if problems.is_empty() && self.full_refill_micros() > MAX_REFILL.as_micros() {
            problems.push(format!(
                "burst · period / rate must not exceed {} days",
                MAX_REFILL.as_secs() / 86_400
            ));
        }
        problems
    }

    /// The emission interval `T` in µs: the time one unit takes to come back.
    pub(crate) fn interval_micros(&self) -> u64 {
        let period = self.period.as_micros().min(u128::from(u64::MAX)) as u64;
        period.div_ceil(u64::from(self.rate.max(1))).max(1)
    }

    /// `τ = T · (burst − 1)` in µs: how far ahead of now the TAT may run.
    pub(crate) fn tolerance_micros(&self) -> u64 {
        self.interval_micros()
            .saturating_mul(u64::from(self.burst.saturating_sub(1)))
    }

    fn full_refill_micros(&self) -> u128 {
        u128::from(self.interval_micros()) * u128::from(self.burst)
    }
}

/// The answer to one check, in GCRA's terms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// The burst: the most units a key can hold.
    pub limit: u32,
    /// Units of cost 1 that would be allowed right now, after this check.
    pub remaining: u32,
    /// Until the key holds a full burst again (`TAT − now`, zero when full).
    pub reset_after: Duration,
    /// On refusal, until the same request (same cost) would be allowed.
    pub retry_after: Option<Duration>,
}

/// Checks what every backend relies on before it touches any state.
pub(crate) fn validate_request(key: &str, quota: &Quota, cost: u32) -> Result<(), LimiterError> {
    quota.validate()?;
    if key.is_empty() {
        return Err(LimiterError::Invalid("key is empty".to_owned()));
    }
    if key.len() > MAX_KEY_LEN {
        return Err(LimiterError::Invalid(format!(
            "key is longer than {MAX_KEY_LEN} bytes"
        )));
    }
    if cost == 0 || cost > quota.burst {
        return Err(LimiterError::Invalid(format!(
            "cost {cost} must be between 1 and the burst {}",
            quota.burst
        )));
    }
    Ok(())
}

/// Durations in config files are whole milliseconds.
mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(
        duration: &Duration,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(duration.as_millis().min(u128::from(u64::MAX)) as u64)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Duration, D::Error> {
        u64::deserialize(deserializer).map(Duration::from_millis)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_problem_is_reported() {
        let quota = Quota {
            rate: 0,
            period: Duration::ZERO,
            burst: 0,
        };
        assert_eq!(quota.problems().len(), 3, "{:?}", quota.problems());
        assert!(Quota::new(1, Duration::from_micros(1), 1).is_ok());
    }

    #[test]
    fn refill_is_bounded_at_its_edge() {
        let day = Duration::from_secs(86_400);
        assert!(Quota::new(1, day, 366).is_ok());
        assert!(Quota::new(1, day, 367).is_err());
    }

    #[test]
    fn interval_rounds_up() {
        let quota = Quota::new(3, Duration::from_secs(1), 1).expect("valid");
        assert_eq!(quota.interval_micros(), 333_334);
        let quota = Quota::new(600, Duration::from_secs(60), 100).expect("valid");
        assert_eq!(quota.interval_micros(), 100_000);
        assert_eq!(quota.tolerance_micros(), 9_900_000);
    }

    #[test]
    fn cost_and_key_are_bounded() {
        let quota = Quota::per_minute(10, 5).expect("valid");
        assert!(validate_request("k", &quota, 5).is_ok());
        assert!(validate_request("k", &quota, 0).is_err());
        assert!(validate_request("k", &quota, 6).is_err());
        assert!(validate_request("", &quota, 1).is_err());
        assert!(validate_request(&"k".repeat(MAX_KEY_LEN), &quota, 1).is_ok());
        assert!(validate_request(&"k".repeat(MAX_KEY_LEN + 1), &quota, 1).is_err());
    }

    #[test]
    fn period_is_read_in_milliseconds() {
        let quota: Quota =
            serde_json::from_str(r#"{ "rate": 20, "period_ms": 60000, "burst": 10 }"#)
                .expect("quota");
        assert_eq!(quota, Quota::per_minute(20, 10).expect("valid"));
    }
}
