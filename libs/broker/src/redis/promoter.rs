//! Moves due delayed jobs to their workspace's ready list. It sleeps until the earliest
//! due time the delayed set holds, capped so that jobs scheduled by other
//! processes are not missed for long, and wakes early when this process
//! schedules one. Every process runs one; the script is atomic, so they never
//! move a job twice.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;

use super::Shared;
use super::reply;
use super::scripts::Script;
use crate::{BrokerResult, unix_millis};

pub(super) async fn run(shared: Arc<Shared>) {
    let mut failing = false;
    loop {
        let sleep_for = match promote_due(&shared).await {
            Ok(sleep_for) => {
                if failing {
                    tracing::info!("moving delayed jobs works again");
                    failing = false;
                }
                sleep_for
            }
            Err(error) => {
                // Logged once per outage rather than once per attempt.
                if !failing {
                    tracing::warn!(%error, "moving delayed jobs failed; retrying");
                    failing = true;
                }
                shared.config.promote_max_sleep()
            }
        };
        if sleep_for.is_zero() {
            continue;
        }
        tokio::select! {
            () = shared.delayed_scheduled.notified() => {}
            () = tokio::time::sleep(sleep_for) => {}
        }
    }
}

/// Moves one batch and returns how long to sleep before the next.
async fn promote_due(shared: &Shared) -> BrokerResult<Duration> {
    let now_millis = unix_millis(Utc::now());
    let keys = vec![shared.keys.delayed(), shared.keys.delayed_counts()];
    let args = vec![
        shared.keys.prefix.clone(),
        now_millis.to_string(),
        shared.config.promote_batch.to_string(),
    ];
    let result = shared
        .run(Script::Promote, keys, args)
        .await
        .map_err(|error| crate::BrokerError::Unavailable(error.to_string()))?;
    let values = result.into_array();
    let [moved, next_due] = values.as_slice() else {
        return Err(crate::BrokerError::Unavailable(
            "unexpected reply from redis: promote".to_owned(),
        ));
    };
    let moved = reply::integer(moved, "promote moved")?;
    if moved >= i64::from(shared.config.promote_batch) {
        // A full batch: more may be due already.
        return Ok(Duration::ZERO);
    }
    let cap = shared.config.promote_max_sleep();
    // Scores are whole milliseconds but may arrive as "1.5e12"-style text.
    let next_due = reply::string(next_due, "promote next due")?
        .parse::<f64>()
        .unwrap_or(-1.0);
    if next_due < 0.0 {
        return Ok(cap);
    }
    let wait_millis = (next_due as i64 - now_millis).max(1);
    Ok(Duration::from_millis(wait_millis as u64).min(cap))
}
