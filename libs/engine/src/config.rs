//! What an operator configures for the engine: egress, run limits, the user agent and
//! where `sql.query` may connect; checked once at start.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::egress::{EgressConfig, PlatformStores};
use crate::error::EngineError;
use crate::expr::ExpressionLimits;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngineConfig {
    pub egress: EgressConfig,
    pub limits: RunLimits,
    pub user_agent: String,
    pub sql: SqlConfig,
    /// The platform's own stores, refused to every node. Set by the process from its
    /// own connection settings, never read from a configuration file.
    #[serde(skip)]
    pub platform: PlatformStores,
}

impl Default for EngineConfig {
    fn default() -> EngineConfig {
        EngineConfig {
            egress: EgressConfig::default(),
            limits: RunLimits::default(),
            user_agent: concat!("tyboo-studio/", env!("CARGO_PKG_VERSION")).to_owned(),
            sql: SqlConfig::default(),
            platform: PlatformStores::default(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RunLimits {
    pub default_node_timeout_ms: u64,
    pub max_node_timeout_ms: u64,
    /// Serialized size of one node's output.
    pub node_output_bytes: usize,
    /// Body of one HTTP response, counted while it streams in.
    pub http_response_bytes: usize,
    pub expression: ExpressionLimits,
    pub sql_max_rows: usize,
    pub delay_max_ms: u64,
}

impl Default for RunLimits {
    fn default() -> RunLimits {
        RunLimits {
            default_node_timeout_ms: 30_000,
            max_node_timeout_ms: 15 * 60 * 1000,
            node_output_bytes: 1024 * 1024,
            http_response_bytes: 5 * 1024 * 1024,
            expression: ExpressionLimits::default(),
            sql_max_rows: 10_000,
            delay_max_ms: 7 * 24 * 60 * 60 * 1000,
        }
    }
}

/// Where `sql.query` may connect. SQLite opens files on the worker, so it is off unless
/// the operator names a directory to confine databases to; PostgreSQL hosts go through
/// the same egress policy as HTTP.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SqlConfig {
    pub sqlite_dir: Option<PathBuf>,
}

impl EngineConfig {
    /// Every check [`crate::Engine::new`] makes, without building anything, as
    /// `key: reason` with the key relative to this section: the process runs
    /// it before it binds or writes anything.
    pub fn validate(&self) -> Result<(), String> {
        // Every problem, not only the first: an operator fixes them in one go.
        let mut problems: Vec<String> = Vec::new();
        let limits = &self.limits;
        if limits.default_node_timeout_ms == 0
            || limits.default_node_timeout_ms > limits.max_node_timeout_ms
        {
            problems.push(
                "limits.default_node_timeout_ms: must be between 1 and limits.max_node_timeout_ms"
                    .to_owned(),
            );
        }
        if let Err(error) = limits.expression.validate() {
            problems.push(match error {
                EngineError::InvalidConfig(message) => message.replacen(" must", ": must", 1),
                other => other.to_string(),
            });
        }
        for range in &self.egress.allow_cidrs {
            if let Err(error) = range.parse::<ipnet::IpNet>() {
                problems.push(format!(
                    "egress.allow_cidrs: `{range}` is not a CIDR range such as 10.20.0.0/16 \
                     ({error})"
                ));
            }
        }
        if self.egress.connect_timeout_ms == 0 {
            problems.push("egress.connect_timeout_ms: must be positive".to_owned());
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("\n"))
        }
    }
}
