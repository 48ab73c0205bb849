//! Lease settings. The ttl and renew interval are what the callers (the
//! executor) use for their leases; the bounds keep every key and holder small
//! enough to be a Redis key segment and a sorted-set member.

use std::time::Duration;

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LeaseConfig {
    /// How long a lease lasts unless renewed: how long a crashed holder's slot
    /// stays taken.
    pub ttl_ms: u64,
    /// How often a live holder renews its leases. At most half the ttl, so
    /// one late or lost renewal does not let a live holder's lease lapse.
    pub renew_interval_ms: u64,
    /// Longest ttl a request may ask for, so that no lease pins a slot for
    /// long after its holder is gone.
    pub max_ttl_ms: u64,
    /// Every Redis key starts with this. For Redis Cluster use a hash tag
    /// such as `{tyboo}`: acquiring several keys is one script.
    pub key_prefix: String,
    /// Longest key, in bytes.
    pub max_key_len: usize,
    /// Longest holder name, in bytes.
    pub max_holder_len: usize,
    /// Most keys one `acquire_all` may take.
    pub max_keys_per_acquire: usize,
    /// Redis connections.
    pub command_connections: usize,
    /// A Redis command that gets no answer within this fails with
    /// `Unavailable` instead of hanging while Redis is down.
    pub command_timeout_ms: u64,
}

impl Default for LeaseConfig {
    fn default() -> Self {
        Self {
            ttl_ms: 30_000,
            renew_interval_ms: 10_000,
            max_ttl_ms: 60 * 60 * 1_000,
            key_prefix: "tyboo".to_owned(),
            max_key_len: 256,
            max_holder_len: 256,
            max_keys_per_acquire: 8,
            command_connections: 2,
            command_timeout_ms: 5_000,
        }
    }
}

impl LeaseConfig {
    /// Every problem as `key: reason`, one a line, with the key relative to
    /// this section.
    pub fn validate(&self) -> Result<(), String> {
        // Every problem, not only the first: an operator fixes them in one go.
        let mut problems: Vec<String> = Vec::new();
        let positive: [(&str, u64); 8] = [
            ("ttl_ms", self.ttl_ms),
            ("renew_interval_ms", self.renew_interval_ms),
            ("max_ttl_ms", self.max_ttl_ms),
            ("max_key_len", self.max_key_len as u64),
            ("max_holder_len", self.max_holder_len as u64),
            ("max_keys_per_acquire", self.max_keys_per_acquire as u64),
            ("command_connections", self.command_connections as u64),
            ("command_timeout_ms", self.command_timeout_ms),
        ];
        for (key, value) in positive {
            if value == 0 {
                problems.push(format!("{key}: must be positive"));
            }
        }
        if self.ttl_ms > self.max_ttl_ms {
            problems.push("ttl_ms: must not exceed max_ttl_ms".to_owned());
        }
        if self.renew_interval_ms.saturating_mul(2) > self.ttl_ms {
            problems.push("renew_interval_ms: must be at most half of ttl_ms".to_owned());
        }
        if self.key_prefix.is_empty() || self.key_prefix.contains(char::is_whitespace) {
            problems.push("key_prefix: must be non-empty and contain no whitespace".to_owned());
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("\n"))
        }
    }

    pub fn ttl(&self) -> Duration {
        Duration::from_millis(self.ttl_ms)
    }

    pub fn renew_interval(&self) -> Duration {
        Duration::from_millis(self.renew_interval_ms)
    }

    pub(crate) fn command_timeout(&self) -> Duration {
        Duration::from_millis(self.command_timeout_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        let config = LeaseConfig::default();
        assert_eq!(config.validate(), Ok(()));
        assert_eq!(config.ttl(), Duration::from_secs(30));
        assert_eq!(config.renew_interval(), Duration::from_secs(10));
    }

    #[test]
    fn unknown_keys_are_refused() {
        let parsed: Result<LeaseConfig, _> = serde_json::from_str(r#"{ "ttl": 10 }"#);
        assert!(parsed.is_err());
    }

    #[test]
    fn partial_config_keeps_other_defaults() {
        let parsed: LeaseConfig =
            serde_json::from_str(r#"{ "ttl_ms": 60000 }"#).expect("valid config");
        assert_eq!(parsed.ttl_ms, 60_000);
        assert_eq!(parsed.renew_interval_ms, 10_000);
        assert_eq!(parsed.key_prefix, "tyboo");
    }

    #[test]
    fn every_problem_is_reported() {
        let config = LeaseConfig {
            ttl_ms: 0,
            max_key_len: 0,
            key_prefix: "a b".to_owned(),
            ..LeaseConfig::default()
        };
        let problems = config.validate().unwrap_err();
        let lines: Vec<&str> = problems.lines().collect();
        assert_eq!(
            lines,
            [
                "ttl_ms: must be positive",
                "max_key_len: must be positive",
                "renew_interval_ms: must be at most half of ttl_ms",
                "key_prefix: must be non-empty and contain no whitespace",
            ]
        );
    }

    #[test]
    fn renew_interval_may_be_half_the_ttl_and_no_more() {
        let with = |renew_interval_ms| LeaseConfig {
            ttl_ms: 1_000,
            renew_interval_ms,
            ..LeaseConfig::default()
        };
        assert_eq!(with(500).validate(), Ok(()));
        assert!(with(501).validate().is_err());
    }

    #[test]
    fn ttl_may_reach_max_ttl_and_no_more() {
        let with = |ttl_ms| LeaseConfig {
            ttl_ms,
            renew_interval_ms: 1,
            max_ttl_ms: 10_000,
            ..LeaseConfig::default()
        };
        assert_eq!(with(10_000).validate(), Ok(()));
        assert_eq!(
            with(10_001).validate(),
            Err("ttl_ms: must not exceed max_ttl_ms".to_owned())
        );
    }
}
