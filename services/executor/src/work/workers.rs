//! Worker tasks: receive step jobs of some pools and run them, at most
//! `concurrency` at once. The `tyboo worker` role and the embedded mode both
//! start them here.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, watch};
use tokio::task::{JoinHandle, JoinSet};
use tyboo_engine::Pool;
use tyboo_runtime::shutdown::Shutdown;

use super::runner::{WorkerIdentity, handle_delivery};
use crate::Executor;
use crate::domain::Domain;

/// Pause after the queue failed to answer, so an outage does not spin.
const RECEIVE_ERROR_PAUSE: Duration = Duration::from_millis(500);

pub struct Workers;

/// A running set of workers; `join` waits until they drained after shutdown.
pub struct WorkerHandle {
    task: JoinHandle<()>,
}

impl WorkerHandle {
    pub async fn join(self) {
        if let Err(error) = self.task.await {
            tracing::error!(%error, "worker task failed");
        }
    }

    /// Stops at once without draining, as a crash would: held steps keep
    /// their leases until they expire. For tests of recovery.
    pub fn abort(&self) {
        self.task.abort();
    }
}

impl Workers {
    /// Starts workers for `pools`. On shutdown they stop taking jobs, let
    /// running nodes finish within the configured grace period, then hand
    /// the rest back to the queue.
    pub fn start(
        executor: &Executor,
        pools: &[Pool],
        concurrency: usize,
        shutdown: Shutdown,
    ) -> WorkerHandle {
        let domain = executor.domain().clone();
        let pools: Vec<String> = pools.iter().map(|pool| pool.as_str().to_owned()).collect();
        let concurrency = concurrency.max(1);
        let task = tokio::spawn(receive_loop(domain, pools, concurrency, shutdown));
        WorkerHandle { task }
    }
}

async fn receive_loop(domain: Domain, pools: Vec<String>, concurrency: usize, shutdown: Shutdown) {
    let consumer = format!("worker-{}", uuid::Uuid::now_v7().simple());
    let permits = Arc::new(Semaphore::new(concurrency));
    let (abort_sender, abort) = watch::channel(false);
    let mut running = JoinSet::new();
    let wait = Duration::from_millis(domain.config().worker_receive_wait_ms);
    tracing::info!(consumer = %consumer, pools = ?pools, concurrency, "workers started");
    let worker = Arc::new(WorkerIdentity {
        consumer: consumer.clone(),
        pools: pools.clone(),
        steps_in_a_row: domain.config().worker_steps_in_a_row,
        shutdown: shutdown.clone(),
    });
    loop {
        while running.try_join_next().is_some() {}
        let first = tokio::select! {
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = shutdown.signaled() => break,
        };
        let mut held = vec![first];
        while let Ok(permit) = permits.clone().try_acquire_owned() {
            held.push(permit);
        }
        let received = tokio::select! {
            received = domain.dispatch().receive(&pools, &consumer, held.len(), wait) => received,
            () = shutdown.signaled() => break,
        };
        let deliveries = match received {
            Ok(deliveries) => deliveries,
            Err(error) => {
                tracing::warn!(%error, "receiving jobs failed");
                tokio::time::sleep(RECEIVE_ERROR_PAUSE).await;
                continue;
            }
        };
        for delivery in deliveries {
            let Some(permit) = held.pop() else {
                break;
            };
            let domain = domain.clone();
            let worker = worker.clone();
            let abort = abort.clone();
            running.spawn(async move {
                handle_delivery(&domain, delivery, &worker, abort).await;
                drop(permit);
            });
        }
    }
    let grace = Duration::from_millis(domain.config().worker_shutdown_grace_ms);
    let drained = tokio::time::timeout(grace, async {
        while running.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::info!(
            held = running.len(),
            "grace period over; handing held steps back"
        );
        abort_sender.send_replace(true);
        while running.join_next().await.is_some() {}
    }
    tracing::info!(consumer = %consumer, "workers stopped");
}
