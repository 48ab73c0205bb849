//! Every port a process will serve, bound together before anything else
//! starts: a conflict on one is reported with all the others, each under
//! the configuration key that set it, and nothing has been served or
//! written by then.

use std::net::SocketAddr;

use tokio::net::TcpListener;
use tyboo_runtime::config::environment_variable;

use crate::config::TybooConfig;

/// A `listen.*` key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PortKey {
    Admin,
    Tenancy,
    Vault,
    Executor,
    Metering,
    Edge,
}

impl PortKey {
    pub fn key(self) -> &'static str {
        match self {
            PortKey::Admin => "listen.admin",
            PortKey::Tenancy => "listen.tenancy",
            PortKey::Vault => "listen.vault",
            PortKey::Executor => "listen.executor",
            PortKey::Metering => "listen.metering",
            PortKey::Edge => "listen.edge",
        }
    }

    fn configured(self, config: &TybooConfig) -> SocketAddr {
        match self {
            PortKey::Admin => config.listen.admin,
            PortKey::Tenancy => config.listen.tenancy,
            PortKey::Vault => config.listen.vault,
            PortKey::Executor => config.listen.executor,
            PortKey::Metering => config.listen.metering,
            PortKey::Edge => config.listen.edge,
        }
    }
}

/// One address that cannot be served.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortConflict {
    pub key: &'static str,
    pub address: SocketAddr,
    pub reason: String,
}

/// Every conflict found, in the order of the keys.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on every configured address:{}", list(.0))]
pub struct PortConflicts(pub Vec<PortConflict>);

fn list(conflicts: &[PortConflict]) -> String {
    conflicts
        .iter()
        .map(|conflict| {
            format!(
                "\n  {} ({}) {}: {}",
                conflict.key,
                environment_variable(conflict.key),
                conflict.address,
                conflict.reason
            )
        })
        .collect()
}

/// Whether two configured addresses would take the same port: port 0 is
/// always a fresh one, and an unspecified address covers every other.
fn overlap(first: SocketAddr, second: SocketAddr) -> bool {
    first.port() != 0
        && first.port() == second.port()
        && (first.ip() == second.ip()
            || first.ip().is_unspecified()
            || second.ip().is_unspecified())
}

/// The bound listeners, taken one by one by the servers that use them.
#[derive(Debug)]
pub struct Ports {
    listeners: Vec<(PortKey, TcpListener)>,
}

impl Ports {
    /// Binds every one of `keys`, or none: on any conflict every listener is
    /// dropped again and all conflicts are returned together.
    pub async fn bind(config: &TybooConfig, keys: &[PortKey]) -> Result<Ports, PortConflicts> {
        let mut conflicts = Vec::new();
        let mut listeners = Vec::new();
        for (index, key) in keys.iter().enumerate() {
            let address = key.configured(config);
            if let Some(earlier) = keys[..index]
                .iter()
                .find(|earlier| overlap(earlier.configured(config), address))
            {
                conflicts.push(PortConflict {
                    key: key.key(),
                    address,
                    reason: format!("the same port as {}", earlier.key()),
                });
                continue;
            }
            match TcpListener::bind(address).await {
                Ok(listener) => listeners.push((*key, listener)),
                Err(error) => conflicts.push(PortConflict {
                    key: key.key(),
                    address,
                    reason: match error.kind() {
                        std::io::ErrorKind::AddrInUse => {
                            "already in use by another process".to_owned()
                        }
                        std::io::ErrorKind::AddrNotAvailable => {
                            "not an address of this machine".to_owned()
                        }
                        std::io::ErrorKind::PermissionDenied => {
                            "permission denied (ports below 1024 need privileges)".to_owned()
                        }
                        _ => error.to_string(),
                    },
                }),
            }
        }
        if conflicts.is_empty() {
            Ok(Ports { listeners })
        } else {
            Err(PortConflicts(conflicts))
        }
    }

    /// The address a bound key listens on (the real port when 0 was asked).
    pub fn address(&self, key: PortKey) -> anyhow::Result<SocketAddr> {
        let (_, listener) = self
            .listeners
            .iter()
            .find(|(bound, _)| *bound == key)
            .ok_or_else(|| anyhow::anyhow!("{} was not bound", key.key()))?;
        Ok(listener.local_addr()?)
    }

    pub fn take(&mut self, key: PortKey) -> anyhow::Result<TcpListener> {
        let index = self
            .listeners
            .iter()
            .position(|(bound, _)| *bound == key)
            .ok_or_else(|| anyhow::anyhow!("{} was not bound", key.key()))?;
        Ok(self.listeners.swap_remove(index).1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_conflict_is_reported_with_its_key_and_nothing_stays_bound() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let taken_address = taken.local_addr().unwrap();
        let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let free_address = free.local_addr().unwrap();
        drop(free);
        let mut config = TybooConfig::default();
        config.listen.admin = free_address;
        config.listen.edge = taken_address;
        config.listen.tenancy = free_address;
        let error = Ports::bind(&config, &[PortKey::Admin, PortKey::Edge, PortKey::Tenancy])
            .await
            .unwrap_err();
        let keys: Vec<&str> = error.0.iter().map(|conflict| conflict.key).collect();
        assert_eq!(keys, ["listen.edge", "listen.tenancy"], "{error}");
        let text = error.to_string();
        assert!(text.contains("listen.edge (TYBOO_LISTEN__EDGE)"), "{text}");
        assert!(text.contains("the same port as listen.admin"), "{text}");
        // The admin port bound during the attempt was let go again.
        std::net::TcpListener::bind(free_address).expect("nothing stays bound");
    }

    #[tokio::test]
    async fn ephemeral_ports_never_conflict() {
        let mut config = TybooConfig::default();
        let any = SocketAddr::from(([127, 0, 0, 1], 0));
        config.listen.admin = any;
        config.listen.edge = any;
        let mut ports = Ports::bind(&config, &[PortKey::Admin, PortKey::Edge])
            .await
            .unwrap();
        assert_ne!(
            ports.address(PortKey::Admin).unwrap(),
            ports.address(PortKey::Edge).unwrap()
        );
        ports.take(PortKey::Edge).unwrap();
        assert!(ports.take(PortKey::Edge).is_err());
    }
}
