//! The executor's settings. Every limit has a default here and a key of the
//! same name in the `executor` section of the configuration.

use serde::{Deserialize, Serialize};
use tyboo_breaker::{BreakerConfig, BreakerError};
use tyboo_broker::BrokerConfig;
use tyboo_engine::EngineConfig;
use tyboo_lease::LeaseConfig;

/// Default nesting limit of stored JSON values.
pub const DEFAULT_MAX_JSON_DEPTH: usize = 32;
/// The deepest a stored value may be configured to nest: a node run's
/// output sits three messages deep in an answer, and each JSON object level
/// costs three protobuf levels of the decoders' 100.
pub const MAX_JSON_DEPTH_LIMIT: usize = 32;

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExecutorConfig {
    /// Largest trigger payload (request input, webhook body), in bytes.
    pub max_trigger_payload_bytes: usize,
    /// Largest sum of every node output of one execution, in bytes.
    pub max_execution_data_bytes: usize,
    /// How deep any stored JSON value (trigger data, node output) may nest
    /// arrays and objects. Every value must stay decodable as a protobuf
    /// `Value` inside the API's answers, whose decoders stop at 100 levels
    /// (each JSON level is two or three of those).
    pub max_json_depth: usize,
    /// The most data one answer carries (GetExecution, a page of
    /// ListNodeRuns); node runs past it come without their data. Must stay
    /// below `grpc.max_message_bytes`.
    pub max_answer_bytes: usize,
    /// A workflow's `max_duration_ms` when it sets none.
    pub default_max_duration_ms: u64,
    /// The longest `max_duration_ms` a workflow may ask for.
    pub max_duration_cap_ms: u64,
    /// How long a worker holds a step before another may take it over; the
    /// holder renews it while the node runs.
    pub lease_duration_ms: u64,
    /// How often a running step's lease is renewed and the execution's
    /// status checked (the cross-process half of cancellation).
    pub heartbeat_interval_ms: u64,
    /// Deliveries of one step that may lose their worker (it crashed or
    /// stalled past its lease) before the step is treated as poison and
    /// dead-lettered. Errors a node reports count against its retry policy
    /// instead.
    pub max_deliveries: u32,
    pub reconcile_interval_ms: u64,
    /// How often HELD executions are checked against their workspace's
    /// monthly quota and released in order when it allows them.
    pub quota_release_interval_ms: u64,
    /// A ready step whose dispatch is older than this is dispatched again, in
    /// case its message was lost.
    pub redispatch_grace_ms: u64,
    /// Rows the reconciler and the scheduler handle per pass.
    pub reconcile_batch_size: u64,
    pub scheduler_interval_ms: u64,
    /// Steps one worker process runs at once, per `Workers::start`.
    pub worker_concurrency: usize,
    /// Steps of one execution a worker takes on in a row, each claimed by
    /// the commit of the step before, before it hands the next one to the
    /// queue so that other executions get the slot; 0 sends every step
    /// through the queue.
    pub worker_steps_in_a_row: u32,
    /// How long a worker waits for jobs per receive call.
    pub worker_receive_wait_ms: u64,
    /// How long a worker waits for held steps to finish on shutdown before
    /// releasing them to the queue.
    pub worker_shutdown_grace_ms: u64,
    /// A sync webhook's `response_timeout_ms` when it sets none.
    pub webhook_sync_default_wait_ms: u64,
    /// The longest a sync webhook may wait for its execution.
    pub webhook_sync_max_wait_ms: u64,
    /// How many sync webhook callers this process keeps waiting at once;
    /// one more is refused (UNAVAILABLE, 503 at the edge) before its
    /// execution is admitted, so shedding it loses nothing.
    pub webhook_sync_max_waiters: u32,
    pub page_size_default: u32,
    pub page_size_max: u32,
    /// Dead letters handled per bulk replay or discard when the request sets
    /// no limit, and the most it may ask for.
    pub bulk_limit_default: u32,
    pub bulk_limit_max: u32,
    /// Longest workflow name, in characters.
    pub max_name_length: usize,
    pub max_description_length: usize,
    pub database_max_connections: u32,
    pub engine: EngineConfig,
    pub broker: BrokerConfig,
    pub concurrency: ConcurrencyConfig,
    /// Circuit breakers per (node type, target host) on every outside call
    /// a node makes. Off, calls go out unguarded and the operations API
    /// answers FAILED_PRECONDITION.
    pub breakers_enabled: bool,
    /// The breakers' window, thresholds and cool-downs. In distributed mode
    /// they live on the queue's Redis under `breakers.key_prefix`.
    pub breakers: BreakerConfig,
    /// Usage (executions, tasks, LLM calls) written to the outbox with the
    /// work it counts and delivered to metering.
    pub usage: UsageConfig,
}

/// The usage outbox (`executor.usage`): every execution admitted and every
/// successful node run is written in the same transaction as the work
/// itself, then delivered to metering in batches, retried until metering
/// acknowledges them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UsageConfig {
    /// Off: nothing is written to the outbox, and nothing is metered.
    pub enabled: bool,
    /// Events delivered in one call to metering (at most 1000).
    pub batch_size: u32,
    /// How often the outbox is read when the last read found it empty.
    pub poll_interval_ms: u64,
    /// The longest wait between two attempts while metering does not answer;
    /// attempts start at `poll_interval_ms` and double up to it.
    pub retry_max_ms: u64,
}

impl Default for UsageConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            batch_size: 500,
            poll_interval_ms: 200,
            retry_max_ms: 10_000,
        }
    }
}

impl UsageConfig {
    /// Every problem as `key: reason`, one a line, relative to this section.
    pub fn validate(&self) -> Result<(), String> {
        let mut problems = Vec::new();
        if !(1..=1_000).contains(&self.batch_size) {
            problems.push("batch_size: must be between 1 and 1000".to_owned());
        }
        if !(10..=60_000).contains(&self.poll_interval_ms) {
            problems.push("poll_interval_ms: must be between 10 and 60000".to_owned());
        }
        if self.retry_max_ms < self.poll_interval_ms || self.retry_max_ms > 600_000 {
            problems.push("retry_max_ms: must be between poll_interval_ms and 600000".to_owned());
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("\n"))
        }
    }
}

/// Running executions per workspace and per user, held as leases that expire
/// with their holder (`executor.concurrency`). The limits themselves are the
/// workspace's (`limits.defaults` and its overrides).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConcurrencyConfig {
    /// Off: executions start as soon as a worker takes them, however many run.
    pub enabled: bool,
    /// How often an execution waiting for a slot looks again, besides being
    /// woken when an execution of its workspace finishes.
    pub recheck_ms: u64,
    /// The leases: their ttl (how long a dead holder's slot stays taken),
    /// how often running executions renew them, and their Redis keys.
    pub leases: LeaseConfig,
}

impl Default for ConcurrencyConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            recheck_ms: 10_000,
            leases: LeaseConfig::default(),
        }
    }
}

impl ConcurrencyConfig {
    /// Every problem as `key: reason`, one a line, relative to this section.
    pub fn validate(&self) -> Result<(), String> {
        let mut problems = Vec::new();
        if !(50..=600_000).contains(&self.recheck_ms) {
            problems.push("recheck_ms: must be between 50 and 600000".to_owned());
        }
        if let Err(leases) = self.leases.validate() {
            problems.extend(leases.lines().map(|line| format!("leases.{line}")));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("\n"))
        }
    }
}

impl Default for ExecutorConfig {
    fn default() -> Self {
        Self {
            max_trigger_payload_bytes: 1024 * 1024,
            max_execution_data_bytes: 16 * 1024 * 1024,
            max_json_depth: DEFAULT_MAX_JSON_DEPTH,
            max_answer_bytes: 3 * 1024 * 1024,
            default_max_duration_ms: 3_600_000,
            max_duration_cap_ms: 24 * 3_600_000,
            lease_duration_ms: 30_000,
            heartbeat_interval_ms: 2_000,
            max_deliveries: 5,
            reconcile_interval_ms: 5_000,
            quota_release_interval_ms: 2_000,
            redispatch_grace_ms: 30_000,
            reconcile_batch_size: 500,
            scheduler_interval_ms: 1_000,
            worker_concurrency: 8,
            worker_steps_in_a_row: 32,
            worker_receive_wait_ms: 1_000,
            worker_shutdown_grace_ms: 10_000,
            webhook_sync_default_wait_ms: 30_000,
            webhook_sync_max_wait_ms: 120_000,
            webhook_sync_max_waiters: 1_024,
            page_size_default: 50,
            page_size_max: 500,
            bulk_limit_default: 100,
            bulk_limit_max: 1_000,
            max_name_length: 200,
            max_description_length: 2_000,
            database_max_connections: 10,
            engine: EngineConfig::default(),
            broker: BrokerConfig::default(),
            concurrency: ConcurrencyConfig::default(),
            breakers_enabled: true,
            usage: UsageConfig::default(),
            breakers: BreakerConfig::default(),
        }
    }
}

impl ExecutorConfig {
    /// Rejects settings the service cannot run with; the message names the key.
    pub fn validate(&self) -> Result<(), String> {
        // Every problem, not only the first: an operator fixes them in one go.
        let mut problems: Vec<String> = Vec::new();
        let positive: [(&str, u64); 20] = [
            (
                "webhook_sync_max_waiters",
                u64::from(self.webhook_sync_max_waiters),
            ),
            ("max_answer_bytes", self.max_answer_bytes as u64),
            (
                "max_trigger_payload_bytes",
                self.max_trigger_payload_bytes as u64,
            ),
            (
                "max_execution_data_bytes",
                self.max_execution_data_bytes as u64,
            ),
            ("default_max_duration_ms", self.default_max_duration_ms),
            ("max_duration_cap_ms", self.max_duration_cap_ms),
            ("lease_duration_ms", self.lease_duration_ms),
            ("heartbeat_interval_ms", self.heartbeat_interval_ms),
            ("max_deliveries", u64::from(self.max_deliveries)),
            ("reconcile_interval_ms", self.reconcile_interval_ms),
            ("quota_release_interval_ms", self.quota_release_interval_ms),
            ("reconcile_batch_size", self.reconcile_batch_size),
            ("scheduler_interval_ms", self.scheduler_interval_ms),
            ("worker_concurrency", self.worker_concurrency as u64),
            ("worker_receive_wait_ms", self.worker_receive_wait_ms),
            (
                "webhook_sync_default_wait_ms",
                self.webhook_sync_default_wait_ms,
            ),
            ("page_size_default", u64::from(self.page_size_default)),
            ("bulk_limit_default", u64::from(self.bulk_limit_default)),
            ("max_name_length", self.max_name_length as u64),
            (
                "database_max_connections",
                u64::from(self.database_max_connections),
            ),
        ];
        for (key, value) in positive {
            if value == 0 {
                problems.push(format!("{key}: must be positive"));
            }
        }
        if self.max_json_depth == 0 || self.max_json_depth > MAX_JSON_DEPTH_LIMIT {
            problems.push(format!(
                "max_json_depth: must be between 1 and {MAX_JSON_DEPTH_LIMIT}, so that every \
                 stored value stays readable through the API"
            ));
        }
        if self.default_max_duration_ms > self.max_duration_cap_ms {
            problems
                .push("default_max_duration_ms: must not exceed max_duration_cap_ms".to_owned());
        }
        // A lease renewed less often than it lasts would lapse under a live
        // worker and let a second one run the same step.
        if self.heartbeat_interval_ms.saturating_mul(2) > self.lease_duration_ms {
            problems.push(
                "heartbeat_interval_ms: must be at most half of lease_duration_ms".to_owned(),
            );
        }
        if self.page_size_default > self.page_size_max {
            problems.push("page_size_default: must not exceed page_size_max".to_owned());
        }
        // The contract caps a workflow's name at 200 characters and its
        // description at 2000 (workflow.proto); a setting can only lower that.
        if self.max_name_length == 0 || self.max_name_length > 200 {
            problems.push("max_name_length: must be between 1 and 200".to_owned());
        }
        if self.max_description_length > 2000 {
            problems.push("max_description_length: must be at most 2000".to_owned());
        }
        if self.bulk_limit_default > self.bulk_limit_max {
            problems.push("bulk_limit_default: must not exceed bulk_limit_max".to_owned());
        }
        if self.webhook_sync_default_wait_ms > self.webhook_sync_max_wait_ms {
            problems.push(
                "webhook_sync_default_wait_ms: must not exceed webhook_sync_max_wait_ms".to_owned(),
            );
        }
        if self.max_execution_data_bytes < self.max_trigger_payload_bytes {
            problems.push(
                "max_execution_data_bytes: must be at least max_trigger_payload_bytes".to_owned(),
            );
        }
        if let Err(BreakerError::InvalidConfig(found)) = self.breakers.validate() {
            problems.extend(
                found
                    .into_iter()
                    .map(|problem| format!("breakers.{problem}")),
            );
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("\n"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrency_settings_are_checked_at_their_edges() {
        let mut config = ExecutorConfig::default();
        for (recheck_ms, ok) in [(49, false), (50, true), (600_000, true), (600_001, false)] {
            config.concurrency.recheck_ms = recheck_ms;
            let outcome = config.concurrency.validate();
            assert_eq!(outcome.is_ok(), ok, "{recheck_ms}: {outcome:?}");
            if let Err(message) = outcome {
                assert!(message.starts_with("recheck_ms:"), "{message}");
            }
        }
        config.concurrency.recheck_ms = 10_000;
        config.concurrency.leases.renew_interval_ms = config.concurrency.leases.ttl_ms;
        let message = config.concurrency.validate().unwrap_err();
        assert!(message.starts_with("leases.renew_interval_ms"), "{message}");
    }

    #[test]
    fn defaults_are_valid_and_documented_values() {
        let config = ExecutorConfig::default();
        assert_eq!(config.validate(), Ok(()));
        assert_eq!(config.max_trigger_payload_bytes, 1_048_576);
        assert_eq!(config.webhook_sync_default_wait_ms, 30_000);
        assert_eq!(config.lease_duration_ms, 30_000);
    }

    #[test]
    fn partial_input_keeps_defaults_and_unknown_keys_are_rejected() {
        let config: ExecutorConfig =
            serde_json::from_str(r#"{"worker_concurrency":2,"page_size_max":80}"#).unwrap();
        assert_eq!(config.worker_concurrency, 2);
        assert_eq!(config.page_size_max, 80);
        assert_eq!(config.page_size_default, 50);
        assert!(serde_json::from_str::<ExecutorConfig>(r#"{"no_such_key":1}"#).is_err());
    }

    #[test]
    fn json_depth_limits_are_checked_at_their_edges() {
        let with_depth = |max_json_depth| ExecutorConfig {
            max_json_depth,
            ..ExecutorConfig::default()
        };
        assert_eq!(ExecutorConfig::default().max_json_depth, 32);
        let answers = |max_answer_bytes| ExecutorConfig {
            max_answer_bytes,
            ..ExecutorConfig::default()
        };
        assert!(answers(1).validate().is_ok());
        assert!(
            answers(0)
                .validate()
                .unwrap_err()
                .starts_with("max_answer_bytes")
        );
        assert!(with_depth(1).validate().is_ok());
        assert!(with_depth(MAX_JSON_DEPTH_LIMIT).validate().is_ok());
        for bad in [0, MAX_JSON_DEPTH_LIMIT + 1] {
            let error = with_depth(bad).validate().unwrap_err();
            assert!(error.starts_with("max_json_depth"), "{error}");
        }
    }

    #[test]
    fn the_sync_waiter_cap_is_checked_at_its_edge() {
        let waiters = |webhook_sync_max_waiters| ExecutorConfig {
            webhook_sync_max_waiters,
            ..ExecutorConfig::default()
        };
        assert_eq!(ExecutorConfig::default().webhook_sync_max_waiters, 1_024);
        assert!(waiters(1).validate().is_ok());
        let error = waiters(0).validate().unwrap_err();
        assert!(error.starts_with("webhook_sync_max_waiters"), "{error}");
    }

    #[test]
    fn breaker_settings_are_validated_and_named() {
        let config = ExecutorConfig::default();
        assert!(config.breakers_enabled);
        assert_eq!(config.breakers.minimum_calls, 10);
        let config = ExecutorConfig {
            breakers: BreakerConfig {
                minimum_calls: 0,
                ..BreakerConfig::default()
            },
            ..ExecutorConfig::default()
        };
        let error = config.validate().unwrap_err();
        assert!(error.starts_with("breakers.minimum_calls"), "{error}");
        let config = ExecutorConfig {
            breakers: BreakerConfig {
                successes_to_close: 4,
                half_open_probes: 3,
                ..BreakerConfig::default()
            },
            ..ExecutorConfig::default()
        };
        let error = config.validate().unwrap_err();
        assert!(error.starts_with("breakers.successes_to_close"), "{error}");
        let parsed: ExecutorConfig =
            serde_json::from_str(r#"{"breakers":{"minimum_calls":4},"breakers_enabled":false}"#)
                .unwrap();
        assert_eq!(parsed.breakers.minimum_calls, 4);
        assert_eq!(parsed.breakers.half_open_probes, 3);
        assert!(!parsed.breakers_enabled);
        assert!(serde_json::from_str::<ExecutorConfig>(r#"{"breakers":{"minimum":4}}"#).is_err());
    }

    #[test]
    fn invalid_settings_name_their_key() {
        let config = ExecutorConfig {
            heartbeat_interval_ms: 20_000,
            ..ExecutorConfig::default()
        };
        assert!(
            config
                .validate()
                .unwrap_err()
                .starts_with("heartbeat_interval_ms")
        );
        let config = ExecutorConfig {
            worker_concurrency: 0,
            ..ExecutorConfig::default()
        };
        assert!(
            config
                .validate()
                .unwrap_err()
                .starts_with("worker_concurrency")
        );
    }
}
