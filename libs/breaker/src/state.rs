//! What a breaker reports, and the modes both backends store.

use chrono::{DateTime, Utc};

use crate::clock::from_millis;
use crate::{BreakerConfig, BreakerKey};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CircuitState {
    Closed,
    /// Rejecting calls until `until`, when it becomes half-open.
    Open {
        until: DateTime<Utc>,
    },
    HalfOpen,
    ForcedOpen,
    ForcedClosed,
}

impl CircuitState {
    /// The state's name, as metric labels and the operations API show it.
    pub fn name(&self) -> &'static str {
        Mode::of(self).name()
    }
}

/// One breaker as of the moment it was read.
#[derive(Clone, Debug, PartialEq)]
pub struct BreakerState {
    pub key: BreakerKey,
    pub state: CircuitState,
    /// Failures per call in the window, in percent; `None` while the window
    /// holds fewer than the minimum calls, when the rate cannot open it.
    pub failure_rate_percent: Option<f64>,
    pub calls_in_window: u64,
    pub failures_in_window: u64,
    /// Consecutive trips since the breaker last closed; sets the cool-down.
    pub trips: u32,
    /// When it last opened, by trip (not by an operator).
    pub opened_at: Option<DateTime<Utc>>,
    /// When an open breaker admits its first probe.
    pub retry_at: Option<DateTime<Utc>>,
}

/// A breaker's mode without the times, as both backends store it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    Closed,
    Open,
    HalfOpen,
    ForcedOpen,
    ForcedClosed,
}

impl Mode {
    pub(crate) const ALL: [Mode; 5] = [
        Mode::Closed,
        Mode::Open,
        Mode::HalfOpen,
        Mode::ForcedOpen,
        Mode::ForcedClosed,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Mode::Closed => "closed",
            Mode::Open => "open",
            Mode::HalfOpen => "half_open",
            Mode::ForcedOpen => "forced_open",
            Mode::ForcedClosed => "forced_closed",
        }
    }

    pub(crate) fn parse(name: &str) -> Option<Self> {
        Mode::ALL.into_iter().find(|mode| mode.name() == name)
    }

    fn of(state: &CircuitState) -> Self {
        match state {
            CircuitState::Closed => Mode::Closed,
            CircuitState::Open { .. } => Mode::Open,
            CircuitState::HalfOpen => Mode::HalfOpen,
            CircuitState::ForcedOpen => Mode::ForcedOpen,
            CircuitState::ForcedClosed => Mode::ForcedClosed,
        }
    }
}

/// A change of mode, for the transition metric.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Transition {
    pub(crate) from: Mode,
    pub(crate) to: Mode,
}

impl Transition {
    pub(crate) fn between(from: Mode, to: Mode) -> Option<Self> {
        (from != to).then_some(Self { from, to })
    }
}

/// A breaker as stored, with its window already slid to now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct StoredView {
    pub(crate) mode: Mode,
    pub(crate) until_ms: i64,
    pub(crate) opened_at_ms: Option<i64>,
    pub(crate) trips: u32,
    pub(crate) calls: u64,
    pub(crate) failures: u64,
}

impl StoredView {
    /// An open breaker whose cool-down has passed is reported half-open: the
    /// next admission makes it so.
    pub(crate) fn report(
        self,
        key: BreakerKey,
        now_ms: i64,
        config: &BreakerConfig,
    ) -> BreakerState {
        let state = match self.mode {
            Mode::Open if now_ms >= self.until_ms => CircuitState::HalfOpen,
            Mode::Open => CircuitState::Open {
                until: from_millis(self.until_ms),
            },
            Mode::Closed => CircuitState::Closed,
            Mode::HalfOpen => CircuitState::HalfOpen,
            Mode::ForcedOpen => CircuitState::ForcedOpen,
            Mode::ForcedClosed => CircuitState::ForcedClosed,
        };
        let retry_at = match state {
            CircuitState::Open { until } => Some(until),
            _ => None,
        };
        let failure_rate_percent = (self.calls > 0
            && self.calls >= u64::from(config.minimum_calls))
        .then(|| self.failures as f64 * 100.0 / self.calls as f64);
        BreakerState {
            key,
            state,
            failure_rate_percent,
            calls_in_window: self.calls,
            failures_in_window: self.failures,
            trips: self.trips,
            opened_at: self.opened_at_ms.map(from_millis),
            retry_at,
        }
    }
}
