//! The whole configuration of a Tyboo process. Every default lives here (and
//! in the sections the service crates own) and is listed in the README.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use tyboo_edge::EdgeConfig;
use tyboo_executor::ExecutorConfig;
use tyboo_limits::LimitsConfig;
use tyboo_metering::MeteringConfig;
use tyboo_runtime::config::{ConfigError, ConfigProblem};
use tyboo_runtime::server::GrpcConfig;
use tyboo_runtime::telemetry::LogConfig;
use tyboo_tenancy::TenancyConfig;
use tyboo_vault::VaultConfig;

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TybooConfig {
    /// Where SQLite files live when `database_url` is empty.
    pub data_dir: PathBuf,
    /// `postgres://…` to run on PostgreSQL (each service in its own schema);
    /// empty for SQLite files under `data_dir`.
    pub database_url: String,
    /// SQLite files only: `full` syncs the write-ahead log at every commit;
    /// `normal` only at checkpoints, which survives a crashed process but
    /// may lose the last commits on power loss.
    pub sqlite_synchronous: SqliteSynchronous,
    /// `redis://…` to dispatch steps through Redis Streams; empty for the
    /// in-process queue (one process only).
    pub queue_url: String,
    pub log: LogConfig,
    pub grpc: GrpcConfig,
    pub listen: ListenConfig,
    pub endpoints: EndpointsConfig,
    pub edge: EdgeConfig,
    pub tenancy: TenancyConfig,
    pub executor: ExecutorConfig,
    pub vault: VaultConfig,
    pub metering: MeteringConfig,
    /// Every workspace's limits unless an operator overrides them.
    pub limits: LimitsConfig,
    pub bootstrap: BootstrapConfig,
}

impl Default for TybooConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./tyboo-data"),
            database_url: String::new(),
            sqlite_synchronous: SqliteSynchronous::Full,
            queue_url: String::new(),
            log: LogConfig::default(),
            grpc: GrpcConfig::default(),
            listen: ListenConfig::default(),
            endpoints: EndpointsConfig::default(),
            edge: EdgeConfig::default(),
            tenancy: TenancyConfig::default(),
            executor: ExecutorConfig::default(),
            vault: VaultConfig::default(),
            metering: MeteringConfig::default(),
            limits: LimitsConfig::default(),
            bootstrap: BootstrapConfig::default(),
        }
    }
}

/// What kind of process a configuration is checked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// `tyboo up`, and the tools that open the same data (`migrate`, `admin`).
    Embedded,
    Tenancy,
    Vault,
    Executor,
    Metering,
    Edge,
    Worker,
}

/// How often SQLite syncs its write-ahead log to disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SqliteSynchronous {
    Full,
    Normal,
}

/// The address each server binds. Port 0 picks a free port (tests).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ListenConfig {
    /// Public HTTP/1.1 and h2c gRPC on one port.
    pub edge: SocketAddr,
    pub tenancy: SocketAddr,
    pub vault: SocketAddr,
    pub executor: SocketAddr,
    pub template: SocketAddr,
    pub metering: SocketAddr,
    /// `/metrics` and `/healthz` for the process.
    pub admin: SocketAddr,
}

impl Default for ListenConfig {
    fn default() -> Self {
        let local = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));
        Self {
            edge: local(8080),
            tenancy: local(50051),
            vault: local(50052),
            executor: local(50053),
            template: local(50054),
            metering: local(50055),
            admin: local(9090),
        }
    }
}

/// Where to reach other services. Empty means "this process": `tyboo up`
/// fills them in from the addresses it bound.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EndpointsConfig {
    /// For example `http://tyboo-tenancy:50051`.
    pub tenancy: String,
    /// For example `http://tyboo-vault:50052`.
    pub vault: String,
    /// For example `http://tyboo-executor:50053`.
    pub executor: String,
    /// For example `http://tyboo-metering:50055`. The executor delivers
    /// usage there and the edge routes usage reads there; without it a lone
    /// executor keeps usage in its outbox until one is configured.
    pub metering: String,
}

/// What the first start of an empty platform creates.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BootstrapConfig {
    pub enabled: bool,
    pub organization: String,
    pub workspace: String,
    pub owner_email: String,
}

impl Default for BootstrapConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            organization: "Default organization".to_owned(),
            workspace: "Default workspace".to_owned(),
            owner_email: "owner@tyboo.local".to_owned(),
        }
    }
}

impl TybooConfig {
    /// The platform's own database, queue and data folder, which no workflow node
    /// may reach whatever egress ranges are allowed.
    pub fn platform_stores(&self) -> tyboo_engine::PlatformStores {
        tyboo_engine::PlatformStores {
            urls: [&self.database_url, &self.queue_url]
                .into_iter()
                .filter(|url| !url.is_empty())
                .cloned()
                .collect(),
            paths: vec![self.data_dir.clone()],
        }
    }

    /// The database URL of one service: the shared PostgreSQL URL, or a
    /// SQLite file of its own under the data folder.
    pub fn database_url_for(&self, service: &str) -> String {
        if self.database_url.is_empty() {
            let path = self.data_dir.join(format!("{service}.db"));
            let synchronous = match self.sqlite_synchronous {
                SqliteSynchronous::Full => "full",
                SqliteSynchronous::Normal => "normal",
            };
            format!(
                "sqlite://{}?mode=rwc&synchronous={synchronous}",
                path.display()
            )
        } else {
            self.database_url.clone()
        }
    }

    /// [`TybooConfig::validate_for`] for `tyboo up`, `migrate` and `admin`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.validate_for(Role::Embedded)
    }

    /// Checks every value serde cannot: each section's own rules, every URL,
    /// range and CIDR, and the names the first start would create. Runs once,
    /// before the process binds a port or writes a row, so that a bad value
    /// never leaves a half-started platform behind. Reports every section's
    /// problem at once, each under the key and environment variable that
    /// set it.
    ///
    /// `role` adds what that kind of process needs on top: the endpoints of
    /// the services it calls in other processes, the shared secret of a lone
    /// edge, and master keys for a vault that keeps none in a data folder.
    pub fn validate_for(&self, role: Role) -> Result<(), ConfigError> {
        let mut problems = Vec::new();
        // A section reports each of its problems on a line of its own.
        let mut check = |section: &str, outcome: Result<(), String>| {
            if let Err(messages) = outcome {
                for message in messages.lines() {
                    problems.push(ConfigProblem::from_message(section, message));
                }
            }
        };
        check("", self.validate_top_level());
        check("log", self.log.validate());
        check("grpc", validate_grpc(&self.grpc));
        for (service, endpoint) in [
            ("tenancy", &self.endpoints.tenancy),
            ("vault", &self.endpoints.vault),
            ("executor", &self.endpoints.executor),
            ("metering", &self.endpoints.metering),
        ] {
            check("endpoints", validate_endpoint(service, endpoint));
        }
        check(
            "edge",
            self.edge.validate().map_err(|error| match error {
                tyboo_edge::EdgeError::Config(message) => message,
                other => other.to_string(),
            }),
        );
        check("tenancy", self.tenancy.validate());
        check(
            "limits",
            self.limits.validate().map_err(|error| error.to_string()),
        );
        // `tyboo up` keeps a generated master key in the data folder when
        // none is configured, and only a vault uses master keys at all; a
        // lone vault must be given them.
        let mut vault = self.vault.clone();
        if role != Role::Vault && vault.master_keys.is_empty() && vault.master_key_file.is_none() {
            vault.master_key_file = Some(self.data_dir.join("vault-master.key"));
        }
        check("vault", vault.validate());
        check("metering", self.metering.validate());
        check("executor", self.executor.validate());
        check("executor.engine", self.executor.engine.validate());
        check("executor.concurrency", self.executor.concurrency.validate());
        check("executor.usage", self.executor.usage.validate());
        check(
            "executor.broker",
            self.executor
                .broker
                .validate()
                .map_err(|error| match error {
                    tyboo_broker::BrokerError::Invalid(message)
                    | tyboo_broker::BrokerError::Unavailable(message) => message
                        .strip_prefix("broker ")
                        .map(str::to_owned)
                        .unwrap_or(message),
                }),
        );
        // With no valid name length the tenancy problem above says it all.
        if self.bootstrap.enabled && self.tenancy.max_name_length > 0 {
            self.validate_bootstrap(&mut problems);
        }
        problems.extend(self.role_problems(role));
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid(problems))
        }
    }

    /// What a process of `role` needs that another may do without.
    fn role_problems(&self, role: Role) -> Vec<ConfigProblem> {
        let mut problems = Vec::new();
        let calls: &[(&str, &String)] = match role {
            Role::Embedded | Role::Tenancy => &[],
            Role::Vault | Role::Executor | Role::Metering | Role::Worker => {
                &[("tenancy", &self.endpoints.tenancy)]
            }
            Role::Edge => &[
                ("tenancy", &self.endpoints.tenancy),
                ("executor", &self.endpoints.executor),
                ("vault", &self.endpoints.vault),
            ],
        };
        for (service, endpoint) in calls {
            if endpoint.is_empty() {
                problems.push(ConfigProblem::new(
                    format!("endpoints.{service}"),
                    format!("must be set when {service} runs in another process"),
                ));
            }
        }
        // The edge follows access changes with a service token; a lone edge
        // without the secret would keep changed roles and revoked keys
        // working until cached tokens age out.
        if role == Role::Edge && self.tenancy.service_secret.is_empty() {
            problems.push(ConfigProblem::new(
                "tenancy.service_secret",
                "must be set for a lone edge (the same value as tenancy's), which needs a \
                 service token to follow access changes",
            ));
        }
        problems
    }

    fn validate_top_level(&self) -> Result<(), String> {
        if !self.database_url.is_empty()
            && !self.database_url.starts_with("postgres://")
            && !self.database_url.starts_with("postgresql://")
            && !self.database_url.starts_with("sqlite:")
        {
            return Err("database_url: must be a postgres:// or sqlite: URL, or empty".to_owned());
        }
        if self.database_url.is_empty() && self.data_dir.as_os_str().is_empty() {
            return Err("data_dir: must be set when database_url is empty".to_owned());
        }
        if !self.queue_url.is_empty()
            && !self.queue_url.starts_with("redis://")
            && !self.queue_url.starts_with("rediss://")
        {
            return Err("queue_url: must be a redis:// URL or empty".to_owned());
        }
        Ok(())
    }

    fn validate_bootstrap(&self, problems: &mut Vec<ConfigProblem>) {
        use tyboo_tenancy::domain::validation::{Email, Name};
        let max_length = self.tenancy.max_name_length;
        let bootstrap = &self.bootstrap;
        for (key, value) in [
            ("bootstrap.organization", &bootstrap.organization),
            ("bootstrap.workspace", &bootstrap.workspace),
        ] {
            if let Err(error) = Name::parse("name", value, max_length) {
                problems.push(ConfigProblem::new(key, reason_of(&error)));
            }
        }
        if let Err(error) = Email::parse("owner_email", &bootstrap.owner_email) {
            problems.push(ConfigProblem::new(
                "bootstrap.owner_email",
                reason_of(&error),
            ));
        }
    }

    /// The configuration as TOML, with secrets masked.
    pub fn to_redacted_toml(&self) -> String {
        let mut shown = self.clone();
        if !shown.tenancy.service_secret.is_empty() {
            shown.tenancy.service_secret = "********".to_owned();
        }
        shown.queue_url = mask_password(&shown.queue_url);
        shown.database_url = mask_password(&shown.database_url);
        toml::to_string_pretty(&shown).unwrap_or_else(|error| format!("# cannot render: {error}"))
    }
}

fn validate_grpc(grpc: &GrpcConfig) -> Result<(), String> {
    if grpc.max_message_bytes < 1024 {
        return Err("max_message_bytes: must be at least 1024".to_owned());
    }
    if grpc.max_concurrent_streams == 0 {
        return Err("max_concurrent_streams: must be positive".to_owned());
    }
    if grpc.drain_timeout_seconds > 3600 {
        return Err("drain_timeout_seconds: must be at most 3600".to_owned());
    }
    Ok(())
}

/// An endpoint is empty (this process) or an `http://host:port` URL.
fn validate_endpoint(service: &str, endpoint: &str) -> Result<(), String> {
    if endpoint.is_empty() {
        return Ok(());
    }
    let scheme_ok = endpoint.starts_with("http://") || endpoint.starts_with("https://");
    let parsed = tonic::transport::Endpoint::from_shared(endpoint.to_owned());
    if !scheme_ok || parsed.is_err() {
        return Err(format!(
            "{service}: must be an http:// URL such as http://tyboo-{service}:50051, or empty"
        ));
    }
    Ok(())
}

/// What a tenancy validation error says, without the field name it was
/// checked under (the caller names the configuration key instead).
fn reason_of(error: &tyboo_tenancy::TenancyError) -> String {
    match error {
        tyboo_tenancy::TenancyError::InvalidArgument { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

/// `scheme://user:secret@host` → `scheme://user:********@host`.
fn mask_password(url: &str) -> String {
    let mut shown = url.to_owned();
    if let Some(at) = shown.find('@')
        && let Some(scheme_end) = shown.find("://")
        && scheme_end + 3 <= at
        && let Some(colon) = shown[scheme_end + 3..at].find(':')
    {
        let start = scheme_end + 3 + colon + 1;
        shown.replace_range(start..at, "********");
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert!(TybooConfig::default().validate().is_ok());
    }

    #[test]
    fn every_section_is_checked_and_each_problem_names_its_key() {
        let mut config = TybooConfig::default();
        config.executor.engine.egress.allow_cidrs = vec!["10.0.0.0/33".to_owned()];
        config.edge.max_body_bytes = 0;
        config.tenancy.principal_token_ttl_seconds = 0;
        config.vault.page_size_default = 0;
        config.executor.broker.key_prefix = String::new();
        config.endpoints.tenancy = "tenancy:50051".to_owned();
        config.log.filter = "info,[".to_owned();
        config.bootstrap.owner_email = "nobody".to_owned();
        let Err(ConfigError::Invalid(problems)) = config.validate() else {
            panic!("invalid settings pass");
        };
        let keys: Vec<&str> = problems
            .iter()
            .map(|problem| problem.key.as_str())
            .collect();
        assert_eq!(
            keys,
            [
                "log.filter",
                "endpoints.tenancy",
                "edge.max_body_bytes",
                "tenancy.principal_token_ttl_seconds",
                "vault.page_size_default",
                "executor.engine.egress.allow_cidrs",
                "executor.broker.key_prefix",
                "bootstrap.owner_email",
            ]
        );
        let text = ConfigError::Invalid(problems).to_string();
        assert!(
            text.contains(
                "executor.engine.egress.allow_cidrs (TYBOO_EXECUTOR__ENGINE__EGRESS__ALLOW_CIDRS)"
            ),
            "{text}"
        );
    }

    #[test]
    fn an_invalid_breaker_setting_is_refused_under_its_own_key() {
        let mut config = TybooConfig::default();
        config.executor.breakers.minimum_calls = 0;
        config.executor.breakers.cool_down_max_ms = 1;
        let Err(ConfigError::Invalid(problems)) = config.validate() else {
            panic!("invalid breaker settings pass");
        };
        let keys: Vec<&str> = problems
            .iter()
            .map(|problem| problem.key.as_str())
            .collect();
        assert_eq!(
            keys,
            [
                "executor.breakers.minimum_calls",
                "executor.breakers.cool_down_max_ms"
            ]
        );
        let text = ConfigError::Invalid(problems).to_string();
        assert!(
            text.contains(
                "executor.breakers.minimum_calls (TYBOO_EXECUTOR__BREAKERS__MINIMUM_CALLS)"
            ),
            "{text}"
        );
    }

    #[test]
    fn every_problem_of_one_section_is_named_not_only_the_first() {
        let mut config = TybooConfig::default();
        config.executor.page_size_default = 0;
        config.executor.max_json_depth = 99;
        config.executor.max_description_length = 5000;
        config.executor.engine.egress.allow_cidrs = vec!["nope".to_owned()];
        config.executor.engine.egress.connect_timeout_ms = 0;
        config.edge.max_body_bytes = 0;
        config.edge.request_timeout_ms = 0;
        config.tenancy.max_name_length = 201;
        config.tenancy.invitation_ttl_seconds = 0;
        config.vault.page_size_max = 0;
        config.vault.max_allowed_hosts = 33;
        config.metering.max_breakdown_rows = 0;
        config.metering.prices = vec![tyboo_metering::ModelPrice {
            model: "gpt-4o".to_owned(),
            input_micros_per_million_tokens: -1,
            output_micros_per_million_tokens: 10_000_000,
        }];
        config.executor.usage.batch_size = 5_000;
        let Err(ConfigError::Invalid(problems)) = config.validate() else {
            panic!("invalid settings pass");
        };
        let keys: Vec<&str> = problems
            .iter()
            .map(|problem| problem.key.as_str())
            .collect();
        for expected in [
            "metering.max_breakdown_rows",
            "metering.prices.0.input_micros_per_million_tokens",
            "executor.usage.batch_size",
            "executor.page_size_default",
            "executor.max_json_depth",
            "executor.max_description_length",
            "executor.engine.egress.allow_cidrs",
            "executor.engine.egress.connect_timeout_ms",
            "edge.max_body_bytes",
            "edge.request_timeout_ms",
            "tenancy.max_name_length",
            "tenancy.invitation_ttl_seconds",
            "vault.page_size_max",
            "vault.max_allowed_hosts",
        ] {
            assert!(keys.contains(&expected), "{expected} missing in {keys:?}");
        }
    }

    #[test]
    fn the_embedded_master_key_file_satisfies_the_vault_of_up_only() {
        let config = TybooConfig::default();
        assert!(config.vault.master_keys.is_empty());
        assert!(config.vault.master_key_file.is_none());
        assert!(config.validate().is_ok());
        let mut config = TybooConfig::default();
        config.endpoints.tenancy = "http://tyboo-tenancy:50051".to_owned();
        let Err(ConfigError::Invalid(problems)) = config.validate_for(Role::Vault) else {
            panic!("a lone vault without master keys passes");
        };
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].key, "vault.master_keys");
    }

    #[test]
    fn lone_services_need_the_endpoints_they_call_and_an_edge_the_secret() {
        let config = TybooConfig::default();
        assert!(config.validate_for(Role::Tenancy).is_ok());
        let Err(ConfigError::Invalid(problems)) = config.validate_for(Role::Edge) else {
            panic!("a lone edge with nothing to call passes");
        };
        let keys: Vec<&str> = problems
            .iter()
            .map(|problem| problem.key.as_str())
            .collect();
        assert_eq!(
            keys,
            [
                "endpoints.tenancy",
                "endpoints.executor",
                "endpoints.vault",
                "tenancy.service_secret"
            ]
        );
        let Err(ConfigError::Invalid(problems)) = config.validate_for(Role::Worker) else {
            panic!("a worker without tenancy passes");
        };
        assert_eq!(problems[0].key, "endpoints.tenancy");
    }
}
