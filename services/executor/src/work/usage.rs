//! Delivers the usage outbox to metering: the oldest batch first, again at
//! once while rows remain, and with a doubling wait while metering does not
//! answer. Several executor processes may deliver the same rows; metering
//! counts each idempotency key once.

use std::time::Duration;

use tokio::task::JoinHandle;
use tyboo_runtime::shutdown::Shutdown;

use crate::domain::Domain;

pub fn spawn(domain: Domain, shutdown: Shutdown) -> Option<JoinHandle<()>> {
    let sink = domain.usage_sink()?.clone();
    Some(tokio::spawn(async move {
        let config = domain.config().usage.clone();
        let poll = Duration::from_millis(config.poll_interval_ms);
        let retry_max = Duration::from_millis(config.retry_max_ms);
        let mut wait = poll;
        loop {
            let pause = match domain.deliver_usage(&sink).await {
                Ok(0) => {
                    wait = poll;
                    poll
                }
                Ok(delivered) => {
                    ::metrics::counter!(crate::metrics::USAGE_DELIVERED_TOTAL)
                        .increment(delivered as u64);
                    wait = poll;
                    Duration::ZERO
                }
                Err(error) => {
                    ::metrics::counter!(crate::metrics::USAGE_DELIVERY_FAILURES_TOTAL).increment(1);
                    tracing::warn!(%error, retry_in_ms = wait.as_millis() as u64, "usage delivery failed; the outbox keeps the rows");
                    let pause = wait;
                    wait = (wait * 2).min(retry_max);
                    pause
                }
            };
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                () = shutdown.signaled() => break,
            }
        }
    }))
}
