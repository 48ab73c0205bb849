//! The limits, their overrides, their bounds and the cache settings.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Every limit of one workspace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Sustained requests per minute through the edge for one API key.
    pub api_key_requests_per_minute: u32,
    /// Requests one API key may send at once above the sustained rate.
    pub api_key_burst: u32,
    /// Sustained requests per minute into one workspace, whatever the key.
    pub workspace_requests_per_minute: u32,
    pub workspace_burst: u32,
    /// Executions of one workspace running at once; more wait QUEUED.
    pub running_executions_per_workspace: u32,
    /// Executions started by one user running at once (API and webhook
    /// starts count against the workspace only).
    pub running_executions_per_user: u32,
    /// How long an execution may wait for a concurrency slot before it ends
    /// TIMED_OUT.
    pub queue_wait_limit_seconds: u32,
    /// Executions one workspace may start in a calendar month (UTC); past
    /// it new executions are HELD until the quota allows them. 0: no quota.
    pub executions_per_month: u32,
    /// Tasks (successful non-trigger node runs) one workspace may use in a
    /// calendar month; once used up, new executions are HELD. 0: no quota.
    pub tasks_per_month: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            api_key_requests_per_minute: 600,
            api_key_burst: 100,
            workspace_requests_per_minute: 3_000,
            workspace_burst: 300,
            running_executions_per_workspace: 50,
            running_executions_per_user: 20,
            queue_wait_limit_seconds: 3_600,
            executions_per_month: 0,
            tasks_per_month: 0,
        }
    }
}

/// The inclusive bounds of every limit, the same as the proto's rules.
pub(crate) const BOUNDS: [(&str, u32, u32); 9] = [
    ("api_key_requests_per_minute", 1, 6_000_000),
    ("api_key_burst", 1, 1_000_000),
    ("workspace_requests_per_minute", 1, 6_000_000),
    ("workspace_burst", 1, 1_000_000),
    ("running_executions_per_workspace", 1, 100_000),
    ("running_executions_per_user", 1, 100_000),
    ("queue_wait_limit_seconds", 1, 2_592_000),
    ("executions_per_month", 0, 1_000_000_000),
    ("tasks_per_month", 0, 1_000_000_000),
];

impl Limits {
    fn values(&self) -> [u32; 9] {
        [
            self.api_key_requests_per_minute,
            self.api_key_burst,
            self.workspace_requests_per_minute,
            self.workspace_burst,
            self.running_executions_per_workspace,
            self.running_executions_per_user,
            self.queue_wait_limit_seconds,
            self.executions_per_month,
            self.tasks_per_month,
        ]
    }

    /// Whether a monthly quota is in force: admission then reserves it.
    pub fn has_monthly_quota(&self) -> bool {
        self.executions_per_month > 0 || self.tasks_per_month > 0
    }

    pub fn queue_wait_limit(&self) -> Duration {
        Duration::from_secs(u64::from(self.queue_wait_limit_seconds))
    }

    /// These limits with `overrides` laid over them.
    pub fn with(&self, overrides: &LimitOverrides) -> Limits {
        let pick = |value: Option<u32>, default: u32| value.unwrap_or(default);
        Limits {
            api_key_requests_per_minute: pick(
                overrides.api_key_requests_per_minute,
                self.api_key_requests_per_minute,
            ),
            api_key_burst: pick(overrides.api_key_burst, self.api_key_burst),
            workspace_requests_per_minute: pick(
                overrides.workspace_requests_per_minute,
                self.workspace_requests_per_minute,
            ),
            workspace_burst: pick(overrides.workspace_burst, self.workspace_burst),
            running_executions_per_workspace: pick(
                overrides.running_executions_per_workspace,
                self.running_executions_per_workspace,
            ),
            running_executions_per_user: pick(
                overrides.running_executions_per_user,
                self.running_executions_per_user,
            ),
            queue_wait_limit_seconds: pick(
                overrides.queue_wait_limit_seconds,
                self.queue_wait_limit_seconds,
            ),
            executions_per_month: pick(overrides.executions_per_month, self.executions_per_month),
            tasks_per_month: pick(overrides.tasks_per_month, self.tasks_per_month),
        }
    }

    /// Every value outside its bounds, named with `prefix`.
    fn problems(&self, prefix: &str) -> Vec<String> {
        BOUNDS
            .iter()
            .zip(self.values())
            .filter(|((_, low, high), value)| value < low || value > high)
            .map(|((name, low, high), value)| {
                format!("{prefix}{name} must be between {low} and {high} (got {value})")
            })
            .collect()
    }
}

/// What one workspace sets apart from the defaults; `None` takes the default.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitOverrides {
    pub api_key_requests_per_minute: Option<u32>,
    pub api_key_burst: Option<u32>,
    pub workspace_requests_per_minute: Option<u32>,
    pub workspace_burst: Option<u32>,
    pub running_executions_per_workspace: Option<u32>,
    pub running_executions_per_user: Option<u32>,
    pub queue_wait_limit_seconds: Option<u32>,
    pub executions_per_month: Option<u32>,
    pub tasks_per_month: Option<u32>,
}

impl LimitOverrides {
    pub fn is_empty(&self) -> bool {
        *self == LimitOverrides::default()
    }

    /// Every override by name, in the order of [`BOUNDS`]; `None` where
    /// the default applies.
    pub fn fields(&self) -> [(&'static str, Option<u32>); 9] {
        let values = [
            self.api_key_requests_per_minute,
            self.api_key_burst,
            self.workspace_requests_per_minute,
            self.workspace_burst,
            self.running_executions_per_workspace,
            self.running_executions_per_user,
            self.queue_wait_limit_seconds,
            self.executions_per_month,
            self.tasks_per_month,
        ];
        let mut fields = [("", None); 9];
        for (field, ((name, _, _), value)) in fields.iter_mut().zip(BOUNDS.iter().zip(values)) {
            *field = (*name, value);
        }
        fields
    }

    /// Every override outside its bounds, each naming its field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let problems: Vec<String> = BOUNDS
            .iter()
            .zip(self.fields().map(|(_, value)| value))
            .filter_map(|((name, low, high), value)| {
                let value = value?;
                (value < *low || value > *high)
                    .then(|| format!("{name} must be between {low} and {high} (got {value})"))
            })
            .collect();
        ConfigError::from_problems(problems)
    }
}

/// The `limits` section: the defaults of every workspace and how long
/// services keep a workspace's limits before asking again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    pub defaults: Limits,
    /// How long the edge and the executor keep a workspace's limits: a
    /// change is in force everywhere within this time.
    pub cache_ttl_ms: u64,
    /// Workspaces whose limits a process keeps at once.
    pub cache_max_entries: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            defaults: Limits::default(),
            cache_ttl_ms: 5_000,
            cache_max_entries: 100_000,
        }
    }
}

impl LimitsConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut problems = self.defaults.problems("defaults.");
        if !(100..=600_000).contains(&self.cache_ttl_ms) {
            problems.push(format!(
                "cache_ttl_ms must be between 100 and 600000 (got {})",
                self.cache_ttl_ms
            ));
        }
        if !(1..=10_000_000).contains(&self.cache_max_entries) {
            problems.push(format!(
                "cache_max_entries must be between 1 and 10000000 (got {})",
                self.cache_max_entries
            ));
        }
        ConfigError::from_problems(problems)
    }

    pub fn cache_ttl(&self) -> Duration {
        Duration::from_millis(self.cache_ttl_ms)
    }
}

/// Every problem found, each naming its field.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    pub problems: Vec<String>,
}

impl ConfigError {
    fn from_problems(problems: Vec<String>) -> Result<(), ConfigError> {
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError { problems })
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.problems.join("\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_overrides_lay_over_them() {
        LimitsConfig::default()
            .validate()
            .expect("defaults are valid");
        let overrides = LimitOverrides {
            running_executions_per_workspace: Some(2),
            api_key_burst: Some(5),
            ..LimitOverrides::default()
        };
        overrides.validate().expect("in bounds");
        let limits = Limits::default().with(&overrides);
        assert_eq!(limits.running_executions_per_workspace, 2);
        assert_eq!(limits.api_key_burst, 5);
        assert_eq!(
            limits.api_key_requests_per_minute,
            Limits::default().api_key_requests_per_minute
        );
        assert_eq!(
            Limits::default().with(&LimitOverrides::default()),
            Limits::default()
        );
        assert!(LimitOverrides::default().is_empty());
        assert!(!overrides.is_empty());
    }

    #[test]
    fn every_bound_is_checked_at_its_edge() {
        for (index, (name, low, high)) in BOUNDS.iter().enumerate() {
            // A bound of 0 (no quota) has nothing below it.
            let below = low.checked_sub(1).map(|value| (value, false));
            for (value, ok) in [(*low, true), (*high, true), (high + 1, false)]
                .into_iter()
                .chain(below)
            {
                let mut values = Limits::default().values();
                values[index] = value;
                let limits = Limits {
                    api_key_requests_per_minute: values[0],
                    api_key_burst: values[1],
                    workspace_requests_per_minute: values[2],
                    workspace_burst: values[3],
                    running_executions_per_workspace: values[4],
                    running_executions_per_user: values[5],
                    queue_wait_limit_seconds: values[6],
                    executions_per_month: values[7],
                    tasks_per_month: values[8],
                };
                let problems = limits.problems("defaults.");
                assert_eq!(problems.is_empty(), ok, "{name}={value}: {problems:?}");
                if !ok {
                    assert!(problems[0].contains(name), "{problems:?}");
                }
            }
        }
        let overrides = LimitOverrides {
            running_executions_per_user: Some(0),
            ..LimitOverrides::default()
        };
        let error = overrides.validate().unwrap_err();
        assert!(error.to_string().contains("running_executions_per_user"));
    }

    #[test]
    fn cache_settings_are_bounded_and_unknown_keys_refused() {
        let mut config = LimitsConfig {
            cache_ttl_ms: 99,
            ..LimitsConfig::default()
        };
        assert!(
            config
                .validate()
                .unwrap_err()
                .to_string()
                .contains("cache_ttl_ms")
        );
        config.cache_ttl_ms = 100;
        config.validate().expect("the lowest ttl");
        config.cache_max_entries = 0;
        assert!(
            config
                .validate()
                .unwrap_err()
                .to_string()
                .contains("cache_max_entries")
        );
        let unknown = serde_json::from_str::<LimitsConfig>(r#"{"defaults":{"rpm":1}}"#);
        assert!(unknown.is_err());
        let partial: LimitsConfig =
            serde_json::from_str(r#"{"defaults":{"api_key_burst":7}}"#).expect("partial");
        assert_eq!(partial.defaults.api_key_burst, 7);
        assert_eq!(
            partial.defaults.workspace_burst,
            Limits::default().workspace_burst
        );
    }
}
