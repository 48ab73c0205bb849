//! Keeps the concurrency slots of running executions: every
//! `leases.renew_interval_ms` their leases are renewed, so a slot lives as
//! long as its execution runs and no longer than the lease ttl after.

use std::time::Duration;

use tokio::task::JoinHandle;
use tyboo_runtime::shutdown::Shutdown;

use crate::domain::Domain;

pub fn spawn(domain: Domain, shutdown: Shutdown) -> JoinHandle<()> {
    tokio::spawn(async move {
        if !domain.config().concurrency.enabled {
            return;
        }
        let every = Duration::from_millis(domain.config().concurrency.leases.renew_interval_ms);
        loop {
            tokio::select! {
                () = tokio::time::sleep(every) => {}
                () = shutdown.signaled() => break,
            }
            if let Err(error) = domain.renew_slots().await {
                tracing::warn!(%error, "renewing concurrency leases failed");
            }
        }
    })
}
