//! Metric names, with their units, and their descriptions. Label values are
//! bounded: pools, statuses and error classes, never ids.

use metrics::{Unit, describe_counter, describe_histogram};

/// Node runs finished, by `pool` and `status` (succeeded, failed, timed_out,
/// retried, cancelled, waiting, parked, lost).
pub const STEPS_RUN_TOTAL: &str = "tyboo_executor_steps_run_total";
/// Wall time of one node run, by `pool`.
pub const STEP_DURATION_SECONDS: &str = "tyboo_executor_step_duration_seconds";
/// Executions that reached a terminal status, by `status`.
pub const EXECUTIONS_FINISHED_TOTAL: &str = "tyboo_executor_executions_finished_total";
/// Executions admitted, by `trigger` (manual, webhook, schedule, replay).
pub const EXECUTIONS_STARTED_TOTAL: &str = "tyboo_executor_executions_started_total";
/// Steps that landed in the dead-letter queue, by `pool` and `error_class`.
pub const DEAD_LETTERS_TOTAL: &str = "tyboo_executor_dead_letters_total";
/// Steps dead-lettered because every delivery lost its worker (crashed or
/// stalled it), by `pool`.
pub const POISON_STEPS_TOTAL: &str = "tyboo_executor_poison_steps_total";
/// Steps the reconciler dispatched again, by `reason` (lost, lease_expired,
/// startup).
pub const REDISPATCHED_TOTAL: &str = "tyboo_executor_redispatched_total";
/// Results refused because the worker no longer held the step's lease.
pub const STALE_COMMITS_TOTAL: &str = "tyboo_executor_stale_commits_total";
/// Steps parked because their target's circuit breaker was open, by `pool`
/// and `node_type`; each waits for the breaker's probe time without
/// spending an attempt.
pub const PARKED_STEPS_TOTAL: &str = "tyboo_executor_parked_steps_total";
/// Schedule ticks fired.
pub const SCHEDULE_FIRES_TOTAL: &str = "tyboo_executor_schedule_fires_total";
/// Executions that began to wait for a concurrency slot, by `limit`
/// (workspace, user).
pub const QUEUED_FOR_SLOT_TOTAL: &str = "tyboo_executor_queued_for_slot_total";
/// Executions that waited longer than their queue wait limit and timed out.
pub const QUEUE_WAIT_TIMEOUTS_TOTAL: &str = "tyboo_executor_queue_wait_timeouts_total";
/// Concurrency lease operations that failed, by `operation` (acquire,
/// renew, release) and `outcome` (unavailable, lost).
pub const LEASE_FAILURES_TOTAL: &str = "tyboo_executor_lease_failures_total";

/// Usage events metering acknowledged from the outbox.
pub const USAGE_DELIVERED_TOTAL: &str = "tyboo_executor_usage_delivered_total";
/// Deliveries of the usage outbox that failed and wait to be retried.
pub const USAGE_DELIVERY_FAILURES_TOTAL: &str = "tyboo_executor_usage_delivery_failures_total";

/// Usage events metering refused as invalid, set aside from the outbox.
pub const USAGE_REFUSED_TOTAL: &str = "tyboo_executor_usage_refused_total";

/// Executions admitted HELD over their workspace's monthly quota.
pub const EXECUTIONS_HELD_TOTAL: &str = "tyboo_executor_executions_held_total";
/// HELD executions released once the quota allowed them.
pub const EXECUTIONS_RELEASED_TOTAL: &str = "tyboo_executor_executions_released_total";

/// Registers descriptions with the installed recorder; call once at start-up.
pub fn describe() {
    describe_counter!(
        USAGE_DELIVERED_TOTAL,
        Unit::Count,
        "Usage events metering acknowledged from the outbox"
    );
    describe_counter!(
        USAGE_DELIVERY_FAILURES_TOTAL,
        Unit::Count,
        "Usage outbox deliveries that failed and will be retried"
    );
    describe_counter!(
        USAGE_REFUSED_TOTAL,
        Unit::Count,
        "Usage events metering refused as invalid and dropped from the outbox"
    );
    describe_counter!(
        EXECUTIONS_HELD_TOTAL,
        Unit::Count,
        "Executions admitted HELD over their workspace's monthly quota"
    );
    describe_counter!(
        EXECUTIONS_RELEASED_TOTAL,
        Unit::Count,
        "HELD executions released once the quota allowed them"
    );
    describe_counter!(
        QUEUED_FOR_SLOT_TOTAL,
        Unit::Count,
        "Executions that began to wait for a concurrency slot, by limit"
    );
    describe_counter!(
        QUEUE_WAIT_TIMEOUTS_TOTAL,
        Unit::Count,
        "Executions that timed out waiting for a concurrency slot"
    );
    describe_counter!(
        LEASE_FAILURES_TOTAL,
        Unit::Count,
        "Concurrency lease operations that failed, by operation and outcome"
    );
    describe_counter!(
        STEPS_RUN_TOTAL,
        Unit::Count,
        "Node runs finished, by pool and status"
    );
    describe_histogram!(
        STEP_DURATION_SECONDS,
        Unit::Seconds,
        "Wall time of one node run, by pool"
    );
    describe_counter!(
        EXECUTIONS_FINISHED_TOTAL,
        Unit::Count,
        "Executions that reached a terminal status, by status"
    );
    describe_counter!(
        EXECUTIONS_STARTED_TOTAL,
        Unit::Count,
        "Executions admitted, by trigger type"
    );
    describe_counter!(
        DEAD_LETTERS_TOTAL,
        Unit::Count,
        "Steps moved to the dead-letter queue, by pool and error class"
    );
    describe_counter!(
        POISON_STEPS_TOTAL,
        Unit::Count,
        "Steps dead-lettered because each delivery lost its worker, by pool"
    );
    describe_counter!(
        REDISPATCHED_TOTAL,
        Unit::Count,
        "Steps dispatched again by the reconciler, by reason"
    );
    describe_counter!(
        STALE_COMMITS_TOTAL,
        Unit::Count,
        "Node results refused because the worker had lost the step's lease"
    );
    describe_counter!(SCHEDULE_FIRES_TOTAL, Unit::Count, "Schedule ticks fired");
    describe_counter!(
        PARKED_STEPS_TOTAL,
        Unit::Count,
        "Steps parked until their target's circuit breaker admits a probe, by pool and node type"
    );
    describe_counter!(
        tyboo_engine::BREAKER_ERRORS_TOTAL,
        Unit::Count,
        "Breaker store errors on node calls, by operation; the calls went ahead unguarded"
    );
    tyboo_breaker::metrics::describe();
}
