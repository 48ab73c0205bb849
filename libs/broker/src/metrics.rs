//! Queue metrics, labelled by pool only (pool names are few and validated),
//! so that a cluster can scale workers per pool on them.

use crate::PoolStats;

pub const QUEUE_DEPTH: &str = "tyboo_broker_queue_depth";
pub const QUEUE_DELAYED: &str = "tyboo_broker_queue_delayed";
pub const QUEUE_IN_FLIGHT: &str = "tyboo_broker_queue_in_flight";
pub const OLDEST_READY_AGE_SECONDS: &str = "tyboo_broker_oldest_ready_age_seconds";
pub const RECLAIMED_TOTAL: &str = "tyboo_broker_reclaimed_total";
pub const ENQUEUED_TOTAL: &str = "tyboo_broker_enqueued_total";
pub const ACKED_TOTAL: &str = "tyboo_broker_acked_total";

pub const POOL_LABEL: &str = "pool";

/// Registers descriptions for the metrics of this crate.
pub fn describe() {
    metrics::describe_gauge!(QUEUE_DEPTH, "jobs ready to be delivered, by pool");
    metrics::describe_gauge!(
        QUEUE_DELAYED,
        "jobs waiting for their not-before time, by pool"
    );
    metrics::describe_gauge!(
        QUEUE_IN_FLIGHT,
        "jobs delivered and not yet acknowledged, by pool"
    );
    metrics::describe_gauge!(
        OLDEST_READY_AGE_SECONDS,
        metrics::Unit::Seconds,
        "how long the oldest ready job has waited, by pool"
    );
    metrics::describe_counter!(
        RECLAIMED_TOTAL,
        "deliveries handed out again after their visibility timeout, by pool"
    );
    metrics::describe_counter!(ENQUEUED_TOTAL, "jobs enqueued, by pool");
    metrics::describe_counter!(ACKED_TOTAL, "deliveries acknowledged, by pool");
}

pub(crate) fn record_enqueued(pool: &str, count: u64) {
    metrics::counter!(ENQUEUED_TOTAL, POOL_LABEL => pool.to_owned()).increment(count);
}

pub(crate) fn record_acked(pool: &str) {
    metrics::counter!(ACKED_TOTAL, POOL_LABEL => pool.to_owned()).increment(1);
}

pub(crate) fn record_reclaimed(pool: &str, count: u64) {
    metrics::counter!(RECLAIMED_TOTAL, POOL_LABEL => pool.to_owned()).increment(count);
}

/// Gauges are set from a full snapshot so that every process reporting on a
/// shared Redis queue reports the same numbers.
pub(crate) fn record_stats(pool: &str, stats: &PoolStats) {
    let label = pool.to_owned();
    metrics::gauge!(QUEUE_DEPTH, POOL_LABEL => label.clone()).set(stats.ready as f64);
    metrics::gauge!(QUEUE_DELAYED, POOL_LABEL => label.clone()).set(stats.delayed as f64);
    metrics::gauge!(QUEUE_IN_FLIGHT, POOL_LABEL => label.clone()).set(stats.in_flight as f64);
    let oldest_seconds = stats.oldest_ready_age.map_or(0.0, |age| age.as_secs_f64());
    metrics::gauge!(OLDEST_READY_AGE_SECONDS, POOL_LABEL => label).set(oldest_seconds);
}
