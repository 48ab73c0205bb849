//! The limits the edge applies, with their defaults. Quotas are read as
//! `{ rate, period_ms, burst }`; a partial file keeps the other defaults.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{Quota, RedisLimiterConfig};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Failed authentications from one client address: what slows down
    /// guessing API keys.
    pub failed_auth_per_address: Quota,
    /// Invitation accepts from one client address (guessing tokens).
    pub invitation_accept_per_address: Quota,
    /// Webhook deliveries to one workspace and path.
    pub webhook_per_workspace_path: Quota,
    /// The shared limiter (distributed mode).
    pub redis: RedisLimiterConfig,
    /// While Redis is unreachable, each replica enforces this share of every
    /// quota on its own; `1 / replicas` keeps the sum at the global limit.
    pub fallback_share: f64,
    /// After Redis fails, checks stay local this long before Redis is tried
    /// again, so an outage does not add a timeout to every request.
    pub fallback_retry_ms: u64,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        let per_minute = |rate, burst| Quota::per_minute(rate, burst).expect("valid default quota");
        Self {
            failed_auth_per_address: per_minute(20, 10),
            invitation_accept_per_address: per_minute(10, 5),
            webhook_per_workspace_path: per_minute(1_200, 200),
            redis: RedisLimiterConfig::default(),
            fallback_share: 0.5,
            fallback_retry_ms: 1_000,
        }
    }
}

/// Every problem found in a configuration, each naming its field.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    pub problems: Vec<String>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "invalid rate limit configuration: {}",
            self.problems.join("; ")
        )
    }
}

impl RateLimitConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        let quotas = [
            ("failed_auth_per_address", &self.failed_auth_per_address),
            (
                "invitation_accept_per_address",
                &self.invitation_accept_per_address,
            ),
            (
                "webhook_per_workspace_path",
                &self.webhook_per_workspace_path,
            ),
        ];
        let mut problems: Vec<String> = quotas
            .iter()
            .flat_map(|(name, quota)| {
                quota
                    .problems()
                    .into_iter()
                    .map(move |problem| format!("{name}: {problem}"))
            })
            .collect();
        problems.extend(self.redis.problems());
        if !(self.fallback_share > 0.0 && self.fallback_share <= 1.0) {
            problems.push(format!(
                "fallback_share {} must be in (0, 1]",
                self.fallback_share
            ));
        }
        if self.fallback_retry_ms == 0 {
            problems.push("fallback_retry_ms must be positive".to_owned());
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError { problems })
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn defaults_are_valid_and_as_documented() {
        let config = RateLimitConfig::default();
        assert_eq!(config.validate(), Ok(()));
        let minute = Duration::from_secs(60);
        let quota = |rate, burst| Quota {
            rate,
            period: minute,
            burst,
        };
        assert_eq!(config.failed_auth_per_address, quota(20, 10));
        assert_eq!(config.invitation_accept_per_address, quota(10, 5));
        assert_eq!(config.webhook_per_workspace_path, quota(1_200, 200));
        assert_eq!(config.redis.key_prefix, "tyboo");
        assert_eq!(config.fallback_share, 0.5);
    }

    #[test]
    fn partial_config_keeps_other_defaults() {
        let parsed: RateLimitConfig = serde_json::from_str(
            r#"{ "invitation_accept_per_address": { "rate": 60, "period_ms": 1000, "burst": 6 }, "fallback_share": 0.25 }"#,
        )
        .expect("valid config");
        assert_eq!(
            parsed.invitation_accept_per_address,
            Quota::new(60, Duration::from_secs(1), 6).expect("valid")
        );
        assert_eq!(parsed.fallback_share, 0.25);
        assert_eq!(
            parsed.failed_auth_per_address,
            RateLimitConfig::default().failed_auth_per_address
        );
    }

    #[test]
    fn unknown_keys_are_refused() {
        assert!(serde_json::from_str::<RateLimitConfig>(r#"{ "per_key": {} }"#).is_err());
        assert!(
            serde_json::from_str::<RateLimitConfig>(
                r#"{ "webhook_per_workspace_path": { "rate": 1, "period": 1, "burst": 1 } }"#
            )
            .is_err()
        );
    }

    #[test]
    fn every_problem_is_reported() {
        let zero = Quota {
            rate: 0,
            period: Duration::from_secs(60),
            burst: 1,
        };
        let config = RateLimitConfig {
            failed_auth_per_address: zero,
            webhook_per_workspace_path: zero,
            redis: RedisLimiterConfig {
                key_prefix: String::new(),
                ..RedisLimiterConfig::default()
            },
            fallback_share: 0.0,
            fallback_retry_ms: 0,
            ..RateLimitConfig::default()
        };
        let problems = config.validate().expect_err("invalid").problems;
        assert_eq!(problems.len(), 5, "{problems:?}");
        assert!(
            problems[0].starts_with("failed_auth_per_address: "),
            "{problems:?}"
        );
        assert!(
            problems[1].starts_with("webhook_per_workspace_path: "),
            "{problems:?}"
        );
    }

    #[test]
    fn fallback_share_edges() {
        let with_share = |fallback_share| RateLimitConfig {
            fallback_share,
            ..RateLimitConfig::default()
        };
        assert!(with_share(1.0).validate().is_ok());
        assert!(with_share(f64::MIN_POSITIVE).validate().is_ok());
        assert!(with_share(1.0 + f64::EPSILON).validate().is_err());
        assert!(with_share(-0.5).validate().is_err());
        assert!(with_share(f64::NAN).validate().is_err());
    }
}
