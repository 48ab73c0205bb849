use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{BreakerError, BreakerResult};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BreakerConfig {
    /// Length of the sliding window the failure rate is computed over.
    pub window_ms: u64,
    /// The window slides one bucket at a time; `window_ms` must divide into
    /// this many buckets of whole milliseconds.
    pub window_buckets: u32,
    /// Calls the window must hold before its failure rate can open the
    /// breaker, so that a few failures of a rarely called target do not.
    pub minimum_calls: u32,
    /// The breaker opens when failures reach this share of calls, in percent.
    pub failure_rate_threshold_percent: u32,
    /// Cool-down after the first trip; each consecutive trip doubles it.
    pub cool_down_base_ms: u64,
    /// Longest cool-down, however many trips in a row.
    pub cool_down_max_ms: u64,
    /// Trial calls admitted while half-open.
    pub half_open_probes: u32,
    /// Probe successes that close the breaker; at most `half_open_probes`.
    pub successes_to_close: u32,
    /// Probes whose results have not come within this are taken as lost (a
    /// worker died mid-call) and their slots given out again.
    pub probe_timeout_ms: u64,
    /// A breaker nobody has touched for this long is forgotten (forced ones
    /// excepted), which bounds memory however many hosts tenants call.
    pub idle_expiry_ms: u64,
    /// Every Redis key starts with this. For Redis Cluster use a hash tag
    /// such as `{tyboo}`: the list script touches several keys.
    pub key_prefix: String,
    /// Redis connections for breaker commands.
    pub command_connections: usize,
    /// A command that gets no answer within this fails with `Unavailable`.
    pub command_timeout_ms: u64,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            window_ms: 60_000,
            window_buckets: 12,
            minimum_calls: 10,
            failure_rate_threshold_percent: 50,
            cool_down_base_ms: 5_000,
            cool_down_max_ms: 300_000,
            half_open_probes: 3,
            successes_to_close: 3,
            probe_timeout_ms: 30_000,
            idle_expiry_ms: 3_600_000,
            key_prefix: "tyboo".to_owned(),
            command_connections: 2,
            command_timeout_ms: 5_000,
        }
    }
}

impl BreakerConfig {
    /// Checks every field and reports every problem at once.
    pub fn validate(&self) -> BreakerResult<()> {
        let mut problems = Vec::new();
        let positive = [
            ("window_ms", self.window_ms),
            ("window_buckets", u64::from(self.window_buckets)),
            ("minimum_calls", u64::from(self.minimum_calls)),
            ("cool_down_base_ms", self.cool_down_base_ms),
            ("half_open_probes", u64::from(self.half_open_probes)),
            ("successes_to_close", u64::from(self.successes_to_close)),
            ("probe_timeout_ms", self.probe_timeout_ms),
            ("command_connections", self.command_connections as u64),
            ("command_timeout_ms", self.command_timeout_ms),
        ];
        for (name, _) in positive.iter().filter(|(_, value)| *value == 0) {
            problems.push(format!("{name} must be positive"));
        }
        if self.window_buckets > 0
            && !self
                .window_ms
                .is_multiple_of(u64::from(self.window_buckets))
        {
            problems.push("window_ms must be a multiple of window_buckets".to_owned());
        }
        if !(1..=100).contains(&self.failure_rate_threshold_percent) {
            problems.push("failure_rate_threshold_percent must be between 1 and 100".to_owned());
        }
        if self.cool_down_max_ms < self.cool_down_base_ms {
            problems.push("cool_down_max_ms must be at least cool_down_base_ms".to_owned());
        }
        if self.successes_to_close > self.half_open_probes {
            problems.push("successes_to_close must be at most half_open_probes".to_owned());
        }
        let outlived = self
            .window_ms
            .max(self.cool_down_max_ms)
            .max(self.probe_timeout_ms);
        if self.idle_expiry_ms <= outlived {
            problems.push(
                "idle_expiry_ms must be longer than window_ms, cool_down_max_ms and probe_timeout_ms"
                    .to_owned(),
            );
        }
        // Stored times are milliseconds in Lua numbers (doubles): keep every
        // duration far below 2^53 so sums stay exact.
        let durations = [
            ("window_ms", self.window_ms),
            ("cool_down_max_ms", self.cool_down_max_ms),
            ("probe_timeout_ms", self.probe_timeout_ms),
            ("idle_expiry_ms", self.idle_expiry_ms),
        ];
        for (name, _) in durations
            .iter()
            .filter(|(_, value)| *value > MAX_DURATION_MS)
        {
            problems.push(format!(
                "{name} must be at most {MAX_DURATION_MS} (one year)"
            ));
        }
        if self.key_prefix.is_empty() || self.key_prefix.contains(char::is_whitespace) {
            problems.push("key_prefix must be non-empty and contain no whitespace".to_owned());
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(BreakerError::InvalidConfig(problems))
        }
    }

    pub(crate) fn bucket_ms(&self) -> i64 {
        millis(self.window_ms / u64::from(self.window_buckets))
    }

    /// The cool-down after `trips` consecutive trips (the first is 1).
    pub(crate) fn cool_down_ms(&self, trips: u32) -> i64 {
        let doublings = trips.saturating_sub(1).min(63);
        let grown = self
            .cool_down_base_ms
            .checked_shl(doublings)
            .filter(|grown| grown >> doublings == self.cool_down_base_ms)
            .unwrap_or(u64::MAX);
        millis(grown.min(self.cool_down_max_ms))
    }

    pub(crate) fn command_timeout(&self) -> Duration {
        Duration::from_millis(self.command_timeout_ms)
    }
}

const MAX_DURATION_MS: u64 = 365 * 24 * 3_600_000;

/// Validated durations are far below `i64::MAX`.
pub(crate) fn millis(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(config: &BreakerConfig) -> Vec<String> {
        match config.validate() {
            Ok(()) => Vec::new(),
            Err(BreakerError::InvalidConfig(problems)) => problems,
            Err(other) => panic!("unexpected error {other}"),
        }
    }

    #[test]
    fn defaults_are_valid() {
        assert_eq!(problems(&BreakerConfig::default()), Vec::<String>::new());
    }

    #[test]
    fn unknown_keys_are_refused_and_missing_ones_defaulted() {
        let unknown: Result<BreakerConfig, _> = serde_json::from_str(r#"{ "window": 10 }"#);
        assert!(unknown.is_err());
        let partial: BreakerConfig =
            serde_json::from_str(r#"{ "minimum_calls": 4 }"#).expect("valid config");
        assert_eq!(partial.minimum_calls, 4);
        assert_eq!(partial.failure_rate_threshold_percent, 50);
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let config = BreakerConfig {
            window_ms: 0,
            minimum_calls: 0,
            failure_rate_threshold_percent: 101,
            cool_down_max_ms: 1_000,
            successes_to_close: 4,
            key_prefix: "has space".to_owned(),
            ..BreakerConfig::default()
        };
        let found = problems(&config);
        assert_eq!(found.len(), 6, "{found:?}");
    }

    #[test]
    fn limits_are_checked_at_their_edges() {
        let valid = |config: BreakerConfig| problems(&config).is_empty();
        let base = BreakerConfig::default;
        assert!(valid(BreakerConfig {
            failure_rate_threshold_percent: 1,
            ..base()
        }));
        assert!(valid(BreakerConfig {
            failure_rate_threshold_percent: 100,
            ..base()
        }));
        assert!(!valid(BreakerConfig {
            failure_rate_threshold_percent: 0,
            ..base()
        }));
        assert!(valid(BreakerConfig {
            minimum_calls: 1,
            ..base()
        }));
        assert!(valid(BreakerConfig {
            successes_to_close: 3,
            half_open_probes: 3,
            ..base()
        }));
        assert!(!valid(BreakerConfig {
            successes_to_close: 4,
            half_open_probes: 3,
            ..base()
        }));
        assert!(!valid(BreakerConfig {
            half_open_probes: 0,
            successes_to_close: 0,
            ..base()
        }));
        assert!(valid(BreakerConfig {
            cool_down_max_ms: 5_000,
            cool_down_base_ms: 5_000,
            ..base()
        }));
        assert!(!valid(BreakerConfig {
            cool_down_max_ms: 4_999,
            cool_down_base_ms: 5_000,
            ..base()
        }));
        assert!(valid(BreakerConfig {
            window_ms: 60_000,
            window_buckets: 60_000,
            ..base()
        }));
        assert!(!valid(BreakerConfig {
            window_ms: 60_000,
            window_buckets: 7,
            ..base()
        }));
        assert!(!valid(BreakerConfig {
            window_buckets: 0,
            ..base()
        }));
        assert!(valid(BreakerConfig {
            idle_expiry_ms: 300_001,
            ..base()
        }));
        assert!(!valid(BreakerConfig {
            idle_expiry_ms: 300_000,
            ..base()
        }));
        assert!(!valid(BreakerConfig {
            probe_timeout_ms: 0,
            ..base()
        }));
        assert!(!valid(BreakerConfig {
            command_timeout_ms: 0,
            ..base()
        }));
    }

    #[test]
    fn cool_down_doubles_per_trip_up_to_the_cap() {
        let config = BreakerConfig::default();
        let cool_downs: Vec<i64> = (1..=8).map(|trips| config.cool_down_ms(trips)).collect();
        assert_eq!(
            cool_downs,
            [
                5_000, 10_000, 20_000, 40_000, 80_000, 160_000, 300_000, 300_000
            ]
        );
        assert_eq!(config.cool_down_ms(0), 5_000);
        assert_eq!(config.cool_down_ms(u32::MAX), 300_000);
    }
}
