//! Keeps the breaker state gauges (`tyboo_breaker_breakers{node_type,
//! state}`) current: they are set from a full listing, which nothing else
//! asks for unless an operator does. Every replica reports the same
//! numbers for shared (Redis) breakers.

use std::time::Duration;

use tokio::task::JoinHandle;
use tyboo_runtime::shutdown::Shutdown;

use crate::domain::Domain;

/// How often the gauges are refreshed.
const REFRESH_EVERY: Duration = Duration::from_secs(15);

pub fn spawn(domain: Domain, shutdown: Shutdown) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            if let Some(breakers) = domain.breakers()
                && let Err(error) = breakers.list().await
            {
                tracing::warn!(%error, "refreshing the breaker gauges failed");
            }
            tokio::select! {
                () = tokio::time::sleep(REFRESH_EVERY) => {}
                () = shutdown.signaled() => break,
            }
        }
    })
}
