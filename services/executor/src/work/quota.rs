//! Releases HELD executions once their workspace's monthly quota allows
//! them (a raised limit, the month's turn), oldest first. Every executor
//! runs it; a release is a conditional update, so each execution is
//! released once.

use std::time::Duration;

use tokio::task::JoinHandle;
use tyboo_runtime::shutdown::Shutdown;

use crate::domain::Domain;

pub fn spawn(domain: Domain, shutdown: Shutdown) -> JoinHandle<()> {
    tokio::spawn(async move {
        let every = Duration::from_millis(domain.config().quota_release_interval_ms);
        loop {
            match domain.release_all_held().await {
                Ok(0) => {}
                Ok(released) => tracing::info!(released, "held executions released"),
                Err(error) => tracing::warn!(%error, "releasing held executions failed"),
            }
            tokio::select! {
                () = tokio::time::sleep(every) => {}
                () = shutdown.signaled() => break,
            }
        }
    })
}
