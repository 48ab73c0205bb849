//! The checks every implementation makes before it touches a lease, and the
//! millisecond arithmetic both share, so that the in-process and the Redis
//! leases refuse the same requests and agree on every expiry.

use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::{Clock, LeaseConfig, LeaseError, LeaseResult};

/// The bounds of one set of leases, taken from its configuration.
#[derive(Clone, Debug)]
pub(crate) struct Rules {
    max_ttl_ms: u64,
    max_key_len: usize,
    max_holder_len: usize,
    max_keys_per_acquire: usize,
}

fn invalid(message: String) -> LeaseError {
    LeaseError::Invalid(message)
}

impl Rules {
    pub(crate) fn new(config: &LeaseConfig) -> LeaseResult<Self> {
        config.validate().map_err(invalid)?;
        Ok(Self {
            max_ttl_ms: config.max_ttl_ms,
            max_key_len: config.max_key_len,
            max_holder_len: config.max_holder_len,
            max_keys_per_acquire: config.max_keys_per_acquire,
        })
    }

    /// Checks an `acquire`; returns its ttl in milliseconds.
    pub(crate) fn acquire(
        &self,
        key: &str,
        holder: &str,
        limit: u32,
        ttl: Duration,
    ) -> LeaseResult<i64> {
        limit_of(limit)?;
        self.renew(key, holder, ttl)
    }

    /// Checks an `acquire_all`; returns its ttl in milliseconds.
    pub(crate) fn acquire_all(
        &self,
        keys: &[(&str, u32)],
        holder: &str,
        ttl: Duration,
    ) -> LeaseResult<i64> {
        self.keys(keys)?;
        self.holder(holder)?;
        self.ttl_millis(ttl)
    }

    /// Checks a `renew`; returns its ttl in milliseconds.
    pub(crate) fn renew(&self, key: &str, holder: &str, ttl: Duration) -> LeaseResult<i64> {
        self.release(key, holder)?;
        self.ttl_millis(ttl)
    }

    /// Checks a `release`.
    pub(crate) fn release(&self, key: &str, holder: &str) -> LeaseResult<()> {
        self.key(key)?;
        self.holder(holder)
    }

    pub(crate) fn key(&self, key: &str) -> LeaseResult<()> {
        name("key", key, self.max_key_len)
    }

    fn holder(&self, holder: &str) -> LeaseResult<()> {
        name("holder", holder, self.max_holder_len)
    }

    /// The ttl in whole milliseconds: at least one, at most `max_ttl_ms`.
    fn ttl_millis(&self, ttl: Duration) -> LeaseResult<i64> {
        let millis = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
        if millis == 0 || millis > self.max_ttl_ms {
            return Err(invalid(format!(
                "ttl must be between 1 ms and {} ms",
                self.max_ttl_ms
            )));
        }
        // max_ttl_ms is a validated u64 of milliseconds; anything sane fits.
        i64::try_from(millis).map_err(|_| invalid("ttl is too long".to_owned()))
    }

    /// Checks a request for several keys: between one and
    /// `max_keys_per_acquire`, distinct, each with a positive limit.
    fn keys(&self, keys: &[(&str, u32)]) -> LeaseResult<()> {
        if keys.is_empty() || keys.len() > self.max_keys_per_acquire {
            return Err(invalid(format!(
                "acquire between 1 and {} keys at once",
                self.max_keys_per_acquire
            )));
        }
        let mut seen = HashSet::with_capacity(keys.len());
        for (key, limit) in keys {
            self.key(key)?;
            limit_of(*limit)?;
            if !seen.insert(*key) {
                return Err(invalid(format!("key {key:?} is named twice")));
            }
        }
        Ok(())
    }
}

fn limit_of(limit: u32) -> LeaseResult<()> {
    if limit == 0 {
        return Err(invalid("limit must be positive".to_owned()));
    }
    Ok(())
}

/// Keys and holders become Redis key segments, set members and log fields,
/// so they are bounded and free of control characters.
fn name(what: &str, value: &str, max_len: usize) -> LeaseResult<()> {
    if value.is_empty() {
        return Err(invalid(format!("{what} is empty")));
    }
    if value.len() > max_len {
        return Err(invalid(format!("{what} is longer than {max_len} bytes")));
    }
    if value.chars().any(char::is_control) {
        return Err(invalid(format!(
            "{what} {value:?} contains control characters"
        )));
    }
    Ok(())
}

/// Now in whole milliseconds since the Unix epoch, the unit of every expiry.
pub(crate) fn now_millis(clock: &dyn Clock) -> i64 {
    clock.now().timestamp_millis()
}

pub(crate) fn time_of(millis: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(millis).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> Rules {
        Rules::new(&LeaseConfig {
            max_ttl_ms: 1_000,
            ttl_ms: 1_000,
            renew_interval_ms: 500,
            max_key_len: 8,
            max_holder_len: 4,
            max_keys_per_acquire: 2,
            ..LeaseConfig::default()
        })
        .expect("valid config")
    }

    #[test]
    fn an_invalid_config_is_refused() {
        let config = LeaseConfig {
            ttl_ms: 0,
            ..LeaseConfig::default()
        };
        assert!(matches!(Rules::new(&config), Err(LeaseError::Invalid(_))));
    }

    #[test]
    fn keys_and_holders_are_bounded() {
        let rules = rules();
        assert!(rules.key(&"k".repeat(8)).is_ok());
        assert!(rules.key(&"k".repeat(9)).is_err());
        assert!(rules.key("").is_err());
        assert!(rules.key("a\nb").is_err());
        assert!(rules.holder(&"h".repeat(4)).is_ok());
        assert!(rules.holder(&"h".repeat(5)).is_err());
        assert!(rules.holder("").is_err());
    }

    #[test]
    fn ttl_is_between_one_millisecond_and_the_maximum() {
        let rules = rules();
        assert!(rules.ttl_millis(Duration::from_micros(999)).is_err());
        assert_eq!(rules.ttl_millis(Duration::from_millis(1)).ok(), Some(1));
        assert_eq!(
            rules.ttl_millis(Duration::from_micros(1_500)).ok(),
            Some(1),
            "a ttl counts whole milliseconds"
        );
        assert_eq!(rules.ttl_millis(Duration::from_secs(1)).ok(), Some(1_000));
        assert!(rules.ttl_millis(Duration::from_millis(1_001)).is_err());
    }

    #[test]
    fn several_keys_are_distinct_bounded_and_limited() {
        let rules = rules();
        assert!(rules.keys(&[("a", 1), ("b", 2)]).is_ok());
        assert!(rules.keys(&[]).is_err());
        assert!(rules.keys(&[("a", 1), ("b", 1), ("c", 1)]).is_err());
        assert!(rules.keys(&[("a", 1), ("a", 2)]).is_err());
        assert!(rules.keys(&[("a", 0)]).is_err());
    }
}
