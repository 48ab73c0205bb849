//! The tenancy service's settings. Every limit has a default here and a key
//! of the same name in the `tenancy` section of the configuration.

use serde::{Deserialize, Serialize};

#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct TenancyConfig {
    /// How long an invitation stays valid when the request names no TTL.
    pub invitation_ttl_seconds: i64,
    /// The longest TTL a request may ask for.
    pub invitation_ttl_max_seconds: i64,
    /// Lifetime of the principal tokens `Authenticate` issues.
    pub principal_token_ttl_seconds: u64,
    /// Lifetime of service tokens.
    pub service_token_ttl_seconds: u64,
    /// Shared secret of the mesh for `IssueServiceToken`; empty disables it.
    pub service_secret: String,
    pub audit_page_size_default: u32,
    pub audit_page_size_max: u32,
    /// Events read per batch while verifying a chain.
    pub audit_verify_batch_size: u32,
    /// Longest organization, workspace, user and API key name, in characters.
    pub max_name_length: usize,
    /// A key's last-use time is written at most once per this interval.
    pub api_key_last_use_resolution_seconds: u64,
    /// How long a process keeps signing with the key it loaded before looking
    /// for a newer one (another replica may have rotated).
    pub signing_key_cache_seconds: u64,
    /// How long an access change (role change, removal, revoked or rotated
    /// key) stays readable with `ListAccessChanges`. Edges that fall further
    /// behind drop their whole token cache; it must outlast their cache TTL.
    pub access_changes_retention_seconds: u64,
    /// Access changes per `ListAccessChanges` answer when the request names
    /// no page size, and the most a request may ask for.
    pub access_changes_page_size_default: u32,
    pub access_changes_page_size_max: u32,
    pub database_max_connections: u32,
}

impl Default for TenancyConfig {
    fn default() -> Self {
        Self {
            invitation_ttl_seconds: 7 * 24 * 3600,
            invitation_ttl_max_seconds: 30 * 24 * 3600,
            principal_token_ttl_seconds: 300,
            service_token_ttl_seconds: 300,
            service_secret: String::new(),
            audit_page_size_default: 50,
            audit_page_size_max: 500,
            audit_verify_batch_size: 1000,
            max_name_length: 200,
            api_key_last_use_resolution_seconds: 60,
            signing_key_cache_seconds: 30,
            access_changes_retention_seconds: 3600,
            access_changes_page_size_default: 500,
            access_changes_page_size_max: 1000,
            database_max_connections: 10,
        }
    }
}

// The service secret must never reach a log line.
impl std::fmt::Debug for TenancyConfig {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Self {
            invitation_ttl_seconds,
            invitation_ttl_max_seconds,
            principal_token_ttl_seconds,
            service_token_ttl_seconds,
            service_secret,
            audit_page_size_default,
            audit_page_size_max,
            audit_verify_batch_size,
            max_name_length,
            api_key_last_use_resolution_seconds,
            signing_key_cache_seconds,
            access_changes_retention_seconds,
            access_changes_page_size_default,
            access_changes_page_size_max,
            database_max_connections,
        } = self;
        let secret = if service_secret.is_empty() {
            "<unset>"
        } else {
            "<redacted>"
        };
        formatter
            .debug_struct("TenancyConfig")
            .field("invitation_ttl_seconds", invitation_ttl_seconds)
            .field("invitation_ttl_max_seconds", invitation_ttl_max_seconds)
            .field("principal_token_ttl_seconds", principal_token_ttl_seconds)
            .field("service_token_ttl_seconds", service_token_ttl_seconds)
            .field("service_secret", &secret)
            .field("audit_page_size_default", audit_page_size_default)
            .field("audit_page_size_max", audit_page_size_max)
            .field("audit_verify_batch_size", audit_verify_batch_size)
            .field("max_name_length", max_name_length)
            .field(
                "api_key_last_use_resolution_seconds",
                api_key_last_use_resolution_seconds,
            )
            .field("signing_key_cache_seconds", signing_key_cache_seconds)
            .field(
                "access_changes_retention_seconds",
                access_changes_retention_seconds,
            )
            .field(
                "access_changes_page_size_default",
                access_changes_page_size_default,
            )
            .field("access_changes_page_size_max", access_changes_page_size_max)
            .field("database_max_connections", database_max_connections)
            .finish()
    }
}

impl TenancyConfig {
    /// Rejects settings the service cannot run with; the message names the key.
    pub fn validate(&self) -> Result<(), String> {
        // Every problem, not only the first: an operator fixes them in one go.
        let mut problems: Vec<String> = Vec::new();
        if self.invitation_ttl_seconds <= 0 {
            problems.push("invitation_ttl_seconds: must be positive".to_owned());
        }
        if self.invitation_ttl_max_seconds > 366 * 24 * 3600 {
            problems.push("invitation_ttl_max_seconds: must be at most one year".to_owned());
        }
        if self.invitation_ttl_max_seconds < self.invitation_ttl_seconds {
            problems.push(
                "invitation_ttl_max_seconds: must be at least invitation_ttl_seconds".to_owned(),
            );
        }
        // Tokens are meant to live minutes; a day is the outer bound.
        for (key, value) in [
            (
                "principal_token_ttl_seconds",
                self.principal_token_ttl_seconds,
            ),
            ("service_token_ttl_seconds", self.service_token_ttl_seconds),
        ] {
            if value == 0 || value > 86_400 {
                problems.push(format!("{key}: must be between 1 and 86400"));
            }
        }
        if self.audit_page_size_default == 0 || self.audit_page_size_max == 0 {
            problems.push("audit_page_size_default: page sizes must be positive".to_owned());
        }
        if self.audit_page_size_default > self.audit_page_size_max {
            problems
                .push("audit_page_size_default: must not exceed audit_page_size_max".to_owned());
        }
        if self.audit_verify_batch_size == 0 {
            problems.push("audit_verify_batch_size: must be positive".to_owned());
        }
        // The contracts cap names at 200 characters (`max_len` in
        // tenancy.proto); a setting can only lower that.
        if self.max_name_length == 0 || self.max_name_length > 200 {
            problems.push("max_name_length: must be between 1 and 200".to_owned());
        }
        if self.api_key_last_use_resolution_seconds > 86_400 {
            problems.push("api_key_last_use_resolution_seconds: must be at most 86400".to_owned());
        }
        if self.signing_key_cache_seconds > 3600 {
            problems.push("signing_key_cache_seconds: must be at most 3600".to_owned());
        }
        // A minute covers an edge that misses a few polls; a week keeps the
        // table small however busy the platform.
        if !(60..=604_800).contains(&self.access_changes_retention_seconds) {
            problems
                .push("access_changes_retention_seconds: must be between 60 and 604800".to_owned());
        }
        if self.access_changes_page_size_default == 0 || self.access_changes_page_size_max == 0 {
            problems
                .push("access_changes_page_size_default: page sizes must be positive".to_owned());
        }
        if self.access_changes_page_size_default > self.access_changes_page_size_max {
            problems.push(
                "access_changes_page_size_default: must not exceed access_changes_page_size_max"
                    .to_owned(),
            );
        }
        if self.database_max_connections == 0 {
            problems.push("database_max_connections: must be positive".to_owned());
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("\n"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_documented_values() {
        let config = TenancyConfig::default();
        assert_eq!(config.validate(), Ok(()));
        assert_eq!(config.invitation_ttl_seconds, 604_800);
        assert_eq!(config.principal_token_ttl_seconds, 300);
        assert_eq!(config.audit_page_size_default, 50);
        assert_eq!(config.audit_page_size_max, 500);
        assert_eq!(config.max_name_length, 200);
        assert_eq!(config.access_changes_retention_seconds, 3600);
        assert_eq!(config.access_changes_page_size_default, 500);
        assert_eq!(config.access_changes_page_size_max, 1000);
    }

    #[test]
    fn access_change_limits_hold_at_their_edges() {
        let with = |retention: u64, default: u32, max: u32| TenancyConfig {
            access_changes_retention_seconds: retention,
            access_changes_page_size_default: default,
            access_changes_page_size_max: max,
            ..TenancyConfig::default()
        };
        assert_eq!(with(60, 1, 1).validate(), Ok(()));
        assert_eq!(with(604_800, 1000, 1000).validate(), Ok(()));
        for (config, key) in [
            (with(59, 500, 1000), "access_changes_retention_seconds"),
            (with(604_801, 500, 1000), "access_changes_retention_seconds"),
            (with(3600, 0, 1000), "access_changes_page_size_default"),
            (with(3600, 1, 0), "access_changes_page_size_default"),
            (with(3600, 1001, 1000), "access_changes_page_size_default"),
        ] {
            let error = config.validate().unwrap_err();
            assert!(error.starts_with(key), "{error}");
        }
    }

    #[test]
    fn partial_input_keeps_defaults_and_unknown_keys_are_rejected() {
        let config: TenancyConfig =
            serde_json::from_str(r#"{"service_secret":"s3cret","max_name_length":80}"#).unwrap();
        assert_eq!(config.max_name_length, 80);
        assert_eq!(config.audit_page_size_max, 500);
        assert!(serde_json::from_str::<TenancyConfig>(r#"{"no_such_key":1}"#).is_err());
    }

    #[test]
    fn invalid_settings_name_their_key() {
        let config = TenancyConfig {
            audit_page_size_default: 600,
            ..TenancyConfig::default()
        };
        assert!(
            config
                .validate()
                .unwrap_err()
                .starts_with("audit_page_size_default")
        );
        let config = TenancyConfig {
            principal_token_ttl_seconds: 0,
            ..TenancyConfig::default()
        };
        assert!(
            config
                .validate()
                .unwrap_err()
                .starts_with("principal_token_ttl_seconds")
        );
    }

    #[test]
    fn debug_output_hides_the_service_secret() {
        let config = TenancyConfig {
            service_secret: "hunter2".to_owned(),
            ..TenancyConfig::default()
        };
        let printed = format!("{config:?}");
        assert!(!printed.contains("hunter2"));
        assert!(printed.contains("<redacted>"));
    }
}
