use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{BrokerError, BrokerResult};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BrokerConfig {
    /// How long a delivery may stay unacknowledged before it is handed out
    /// again. Longer than the slowest step's commit, shorter than the time an
    /// operator would accept for a dead worker's step to sit still.
    pub visibility_timeout_ms: u64,
    /// Every Redis key starts with this. For Redis Cluster use a hash tag
    /// such as `{tyboo}`: the scripts touch several keys at once.
    pub key_prefix: String,
    /// Consumer group shared by every worker of every pool.
    pub consumer_group: String,
    /// Longest single blocking read. A waiting consumer looks for stalled
    /// messages between reads, so this also bounds how late a reclaim runs.
    pub block_ms: u64,
    /// How often one process scans a pool for stalled messages.
    pub reclaim_interval_ms: u64,
    /// Longest sleep of the task that moves due delayed jobs into their
    /// streams. It wakes earlier for jobs this process schedules; the cap
    /// covers jobs scheduled by other processes.
    pub promote_max_sleep_ms: u64,
    /// Delayed jobs moved per script call, so one call never blocks Redis long.
    pub promote_batch: u32,
    /// Dedicated connections for blocking reads: a blocking command stalls
    /// every other command on its connection, so each concurrent `receive`
    /// needs its own. A `receive` that finds none free waits for one, within
    /// its `wait`.
    pub blocking_connections: usize,
    /// Connections for every other command.
    pub command_connections: usize,
    /// A command that gets no answer within this fails with `Unavailable`
    /// instead of hanging while Redis is down.
    pub command_timeout_ms: u64,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        Self {
            visibility_timeout_ms: 30_000,
            key_prefix: "tyboo".to_owned(),
            consumer_group: "workers".to_owned(),
            block_ms: 1_000,
            reclaim_interval_ms: 5_000,
            promote_max_sleep_ms: 1_000,
            promote_batch: 256,
            blocking_connections: 4,
            command_connections: 2,
            command_timeout_ms: 5_000,
        }
    }
}

impl BrokerConfig {
    pub fn validate(&self) -> BrokerResult<()> {
        let positive = [
            ("visibility_timeout_ms", self.visibility_timeout_ms),
            ("block_ms", self.block_ms),
            ("reclaim_interval_ms", self.reclaim_interval_ms),
            ("promote_max_sleep_ms", self.promote_max_sleep_ms),
            ("promote_batch", u64::from(self.promote_batch)),
            ("blocking_connections", self.blocking_connections as u64),
            ("command_connections", self.command_connections as u64),
            ("command_timeout_ms", self.command_timeout_ms),
        ];
        if let Some((name, _)) = positive.iter().find(|(_, value)| *value == 0) {
            return Err(BrokerError::Invalid(format!(
                "broker {name} must be positive"
            )));
        }
        if self.key_prefix.is_empty() || self.key_prefix.contains(char::is_whitespace) {
            return Err(BrokerError::Invalid(
                "broker key_prefix must be non-empty and contain no whitespace".to_owned(),
            ));
        }
        if self.consumer_group.is_empty() {
            return Err(BrokerError::Invalid(
                "broker consumer_group is empty".to_owned(),
            ));
        }
        Ok(())
    }

    pub(crate) fn visibility_timeout(&self) -> Duration {
        Duration::from_millis(self.visibility_timeout_ms)
    }

    pub(crate) fn block(&self) -> Duration {
        Duration::from_millis(self.block_ms)
    }

    pub(crate) fn reclaim_interval(&self) -> Duration {
        Duration::from_millis(self.reclaim_interval_ms)
    }

    pub(crate) fn promote_max_sleep(&self) -> Duration {
        Duration::from_millis(self.promote_max_sleep_ms)
    }

    pub(crate) fn command_timeout(&self) -> Duration {
        Duration::from_millis(self.command_timeout_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert!(BrokerConfig::default().validate().is_ok());
    }

    #[test]
    fn unknown_keys_are_refused() {
        let parsed: Result<BrokerConfig, _> =
            serde_json::from_str(r#"{ "visibility_timeout": 10 }"#);
        assert!(parsed.is_err());
    }

    #[test]
    fn partial_config_keeps_other_defaults() {
        let parsed: BrokerConfig =
            serde_json::from_str(r#"{ "visibility_timeout_ms": 500 }"#).expect("valid config");
        assert_eq!(parsed.visibility_timeout_ms, 500);
        assert_eq!(parsed.key_prefix, "tyboo");
    }

    #[test]
    fn zero_timeouts_are_refused() {
        let config = BrokerConfig {
            visibility_timeout_ms: 0,
            ..BrokerConfig::default()
        };
        assert!(config.validate().is_err());
    }
}
