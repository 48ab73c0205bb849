//! The whole configuration of a Tyboo process. Every default lives here (and
//! in the sections the service crates own) and is listed in the README.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use tyboo_edge::EdgeConfig;
use tyboo_executor::ExecutorConfig;
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
            bootstrap: BootstrapConfig::default(),
        }
    }
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

    /// Checks what serde cannot.
    pub fn validate(&self) -> Result<(), String> {
        if !self.database_url.is_empty()
            && !self.database_url.starts_with("postgres://")
            && !self.database_url.starts_with("postgresql://")
            && !self.database_url.starts_with("sqlite:")
        {
            return Err("database_url: must be a postgres:// or sqlite: URL".to_owned());
        }
        if !self.queue_url.is_empty()
            && !self.queue_url.starts_with("redis://")
            && !self.queue_url.starts_with("rediss://")
        {
            return Err("queue_url: must be a redis:// URL or empty".to_owned());
        }
        if self.grpc.max_message_bytes < 1024 {
            return Err("grpc.max_message_bytes: must be at least 1024".to_owned());
        }
        if self.edge.max_body_bytes == 0 {
            return Err("edge.max_body_bytes: must be positive".to_owned());
        }
        Ok(())
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
