//! Runs the scheduler: fires the due schedule triggers on every pass (see
//! `domain::schedules`).

use std::time::Duration;

use tokio::task::JoinHandle;
use tyboo_runtime::shutdown::Shutdown;

use crate::domain::Domain;

pub fn spawn(domain: Domain, shutdown: Shutdown) -> JoinHandle<()> {
    tokio::spawn(async move {
        let every = Duration::from_millis(domain.config().scheduler_interval_ms);
        loop {
            if let Err(error) = domain.fire_due_schedules().await {
                tracing::warn!(%error, "scheduler pass failed");
            }
            tokio::select! {
                () = tokio::time::sleep(every) => {}
                () = shutdown.signaled() => break,
            }
        }
    })
}
