//! The edge's configuration. Every default is written here, once.

use http::HeaderValue;
use serde::{Deserialize, Serialize};
use tyboo_ratelimit::RateLimitConfig;

use crate::errors::{EdgeError, EdgeResult};

/// Polling faster than every 100 ms loads tenancy for nothing a person would
/// notice; slower than a minute, cached tokens age out before a change
/// arrives (the cache keeps them 30 s by default).
const AUTH_CHANGES_POLL_MS: std::ops::RangeInclusive<u64> = 100..=60_000;

/// Limits and behaviour of the public entry point.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EdgeConfig {
    /// Largest HTTP/JSON request body accepted; a larger one is answered 413.
    pub max_body_bytes: usize,
    /// Deadline of a whole request, also sent upstream as `grpc-timeout`.
    /// A gRPC client's own shorter `grpc-timeout` wins.
    pub request_timeout_ms: u64,
    /// Longest time an API key → principal token exchange is reused. A token
    /// is never reused past its own expiry minus a safety margin.
    pub auth_cache_ttl_seconds: u64,
    /// Most API keys whose principal token is kept; 0 turns the cache off.
    pub auth_cache_max_entries: usize,
    /// How often tenancy is asked for access changes (role changes,
    /// removals, revoked or rotated keys), whose cached tokens are dropped:
    /// such a change reaches the edge within this plus one round trip.
    pub auth_changes_poll_ms: u64,
    /// Emit fields that hold their default value (like Envoy's
    /// `always_print_primitive_fields`), so clients see `0`, `""` and `false`
    /// rather than missing keys.
    pub json_emit_defaults: bool,
    /// Origins allowed to call from a browser; empty sends no CORS headers.
    /// `"*"` allows any origin.
    pub cors_allowed_origins: Vec<String>,
    /// Largest gRPC message the edge encodes or decodes on a transcoded call.
    pub max_grpc_message_bytes: usize,
    /// Serve gRPC server reflection (v1 and v1alpha) on the edge's port,
    /// listing the public services, so grpcurl works there without proto
    /// files. Off by default: the public needs the contracts, not a way to
    /// browse them.
    pub grpc_reflection: bool,
    /// How long a new connection may take to send its first byte, and an
    /// HTTP/1 request its whole head; slower connections are closed.
    pub header_read_timeout_ms: u64,
    /// Most connections open at once; more are closed as they arrive. Keep
    /// it below the process's file-descriptor limit.
    pub max_connections: usize,
    /// Most connections open at once from one address.
    pub max_connections_per_ip: usize,
    /// Most requests this edge process serves at once; past it a request
    /// is answered 503 with `Retry-After: 1` (gRPC: UNAVAILABLE) at once,
    /// before any work. `/healthz` and gRPC health are never refused.
    pub max_in_flight_requests: usize,
    /// Request rate limits on (the default) or off.
    pub rate_limits_enabled: bool,
    /// The address-based and webhook quotas, and the shared limiter. The
    /// per-API-key and per-workspace quotas are each workspace's limits
    /// (`limits.defaults` with its overrides).
    pub rate_limits: RateLimitConfig,
}

impl Default for EdgeConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 1024 * 1024,
            request_timeout_ms: 30_000,
            auth_cache_ttl_seconds: 30,
            auth_cache_max_entries: 100_000,
            auth_changes_poll_ms: 1_000,
            json_emit_defaults: true,
            cors_allowed_origins: Vec::new(),
            max_grpc_message_bytes: 4 * 1024 * 1024,
            grpc_reflection: false,
            header_read_timeout_ms: 10_000,
            max_connections: 8_192,
            max_connections_per_ip: 256,
            max_in_flight_requests: 1_024,
            rate_limits_enabled: true,
            rate_limits: RateLimitConfig::default(),
        }
    }
}

impl EdgeConfig {
    /// Checks the values once at start-up so that a bad value fails loudly
    /// there rather than as odd behaviour under traffic.
    pub fn validate(&self) -> EdgeResult<()> {
        // Every problem, not only the first: an operator fixes them in one go.
        let mut problems: Vec<String> = Vec::new();
        if self.max_body_bytes == 0 {
            problems.push("max_body_bytes must be positive".into());
        }
        if self.header_read_timeout_ms == 0 {
            problems.push("header_read_timeout_ms must be positive".into());
        }
        if self.max_connections == 0 || self.max_connections_per_ip == 0 {
            problems.push("max_connections and max_connections_per_ip must be positive".into());
        }
        if self.max_connections_per_ip > self.max_connections {
            problems.push("max_connections_per_ip must not exceed max_connections".into());
        }
        if self.request_timeout_ms == 0 {
            problems.push("request_timeout_ms must be positive".into());
        }
        if !AUTH_CHANGES_POLL_MS.contains(&self.auth_changes_poll_ms) {
            problems.push(format!(
                "auth_changes_poll_ms must be between {} and {} (milliseconds between \
                 checks for access changes), not {}",
                AUTH_CHANGES_POLL_MS.start(),
                AUTH_CHANGES_POLL_MS.end(),
                self.auth_changes_poll_ms
            ));
        }
        if self.max_in_flight_requests == 0 {
            problems.push("max_in_flight_requests must be positive".into());
        }
        if let Err(error) = self.rate_limits.validate() {
            // `failed_auth_per_address: …` and `redis key_prefix …` name their fields
            // under `rate_limits`.
            problems.extend(error.problems.iter().map(|problem| {
                let problem = problem
                    .strip_prefix("redis ")
                    .map_or_else(|| problem.clone(), |rest| format!("redis.{rest}"));
                format!("rate_limits.{problem}")
            }));
        }
        if self.max_grpc_message_bytes == 0 {
            problems.push("max_grpc_message_bytes must be positive".into());
        }
        for origin in &self.cors_allowed_origins {
            if origin != "*" && HeaderValue::from_str(origin).is_err() {
                problems.push(format!(
                    "cors_allowed_origins holds `{origin}`, which is not a valid origin"
                ));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(EdgeError::Config(problems.join("\n")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_partial_config_keeps_them() {
        EdgeConfig::default()
            .validate()
            .expect("defaults are valid");
        let config: EdgeConfig =
            serde_json::from_str(r#"{"max_body_bytes": 2048}"#).expect("partial config parses");
        assert_eq!(config.max_body_bytes, 2048);
        assert_eq!(config.request_timeout_ms, 30_000);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_rejected() {
        assert!(serde_json::from_str::<EdgeConfig>(r#"{"max_body": 1}"#).is_err());
        let config = EdgeConfig {
            request_timeout_ms: 0,
            ..EdgeConfig::default()
        };
        assert!(config.validate().is_err());
        let config = EdgeConfig {
            cors_allowed_origins: vec!["https://ok.example\n".into()],
            ..EdgeConfig::default()
        };
        assert!(config.validate().is_err());
    }

    #[test]
    fn connection_limits_hold_at_their_edges() {
        let with = |header_read_timeout_ms, max_connections, max_connections_per_ip| EdgeConfig {
            header_read_timeout_ms,
            max_connections,
            max_connections_per_ip,
            ..EdgeConfig::default()
        };
        assert!(with(1, 1, 1).validate().is_ok());
        assert!(with(10_000, 8_192, 8_192).validate().is_ok());
        for bad in [
            with(0, 10, 1),
            with(1, 0, 0),
            with(1, 10, 0),
            with(1, 10, 11),
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_access_change_poll_interval_holds_at_its_edges() {
        let with = |auth_changes_poll_ms| EdgeConfig {
            auth_changes_poll_ms,
            ..EdgeConfig::default()
        };
        assert_eq!(EdgeConfig::default().auth_changes_poll_ms, 1_000);
        with(100).validate().expect("the fastest poll is valid");
        with(60_000).validate().expect("the slowest poll is valid");
        for refused in [0, 99, 60_001] {
            let error = with(refused).validate().unwrap_err().to_string();
            assert!(
                error.contains("auth_changes_poll_ms must be between 100 and 60000"),
                "{error}"
            );
        }
    }

    #[test]
    fn the_request_limits_hold_at_their_edges_and_name_their_fields() {
        let defaults = EdgeConfig::default();
        assert_eq!(defaults.max_in_flight_requests, 1_024);
        assert!(defaults.rate_limits_enabled);
        let with_cap = |max_in_flight_requests| EdgeConfig {
            max_in_flight_requests,
            ..EdgeConfig::default()
        };
        with_cap(1).validate().expect("a cap of one is valid");
        let error = with_cap(0).validate().unwrap_err().to_string();
        assert!(
            error.contains("max_in_flight_requests must be positive"),
            "{error}"
        );

        let zero = tyboo_ratelimit::Quota {
            rate: 0,
            period: std::time::Duration::from_secs(60),
            burst: 0,
        };
        let config = EdgeConfig {
            rate_limits: RateLimitConfig {
                failed_auth_per_address: zero,
                invitation_accept_per_address: zero,
                webhook_per_workspace_path: zero,
                fallback_share: 0.0,
                fallback_retry_ms: 0,
                redis: tyboo_ratelimit::RedisLimiterConfig {
                    key_prefix: String::new(),
                    connections: 0,
                    command_timeout_ms: 0,
                },
            },
            ..EdgeConfig::default()
        };
        let EdgeError::Config(message) = config.validate().unwrap_err() else {
            panic!("a config error");
        };
        for field in [
            "rate_limits.failed_auth_per_address: rate must be at least 1",
            "rate_limits.failed_auth_per_address: burst must be at least 1",
            "rate_limits.invitation_accept_per_address: rate",
            "rate_limits.webhook_per_workspace_path: rate",
            "rate_limits.fallback_share 0 must be in (0, 1]",
            "rate_limits.fallback_retry_ms must be positive",
            "rate_limits.redis.key_prefix must be non-empty",
            "rate_limits.redis.connections must be at least 1",
            "rate_limits.redis.command_timeout_ms must be positive",
        ] {
            assert!(message.contains(field), "{field} not in {message}");
        }
        // Each problem on a line of its own, keyed by its field.
        for line in message.lines() {
            assert!(line.starts_with("rate_limits."), "{line}");
        }
        let parsed: EdgeConfig = serde_json::from_str(
            r#"{"max_in_flight_requests": 8, "rate_limits_enabled": false,
                "rate_limits": {"failed_auth_per_address": {"rate": 5, "period_ms": 60000, "burst": 5}}}"#,
        )
        .expect("parses");
        assert_eq!(parsed.max_in_flight_requests, 8);
        assert!(!parsed.rate_limits_enabled);
        assert_eq!(parsed.rate_limits.failed_auth_per_address.burst, 5);
        assert_eq!(
            parsed.rate_limits.webhook_per_workspace_path,
            RateLimitConfig::default().webhook_per_workspace_path
        );
    }
}
