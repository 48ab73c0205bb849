//! Circuit breakers ↔ proto.

use tyboo_breaker::{BreakerKey, BreakerState, CircuitState};
use tyboo_proto::executor as pb;

use super::timestamp;
use crate::error::{ExecutorError, ExecutorResult};

/// The key a request names; both parts are checked again by the domain
/// against the bounds every breaker store relies on.
pub fn breaker_key_from_proto(key: Option<pb::CircuitBreakerKey>) -> ExecutorResult<BreakerKey> {
    let pb::CircuitBreakerKey { node_type, host } =
        key.ok_or_else(|| ExecutorError::invalid("key", "is required"))?;
    if node_type.is_empty() {
        return Err(ExecutorError::invalid("key.node_type", "is required"));
    }
    if host.is_empty() {
        return Err(ExecutorError::invalid("key.host", "is required"));
    }
    Ok(BreakerKey::new(node_type, host))
}

pub fn breaker_state_to_proto(state: &CircuitState) -> pb::CircuitBreakerState {
    match state {
        CircuitState::Closed => pb::CircuitBreakerState::Closed,
        CircuitState::Open { .. } => pb::CircuitBreakerState::Open,
        CircuitState::HalfOpen => pb::CircuitBreakerState::HalfOpen,
        CircuitState::ForcedOpen => pb::CircuitBreakerState::ForcedOpen,
        CircuitState::ForcedClosed => pb::CircuitBreakerState::ForcedClosed,
    }
}

pub fn breaker_to_proto(breaker: &BreakerState) -> pb::CircuitBreaker {
    let BreakerState {
        key,
        state,
        failure_rate_percent,
        calls_in_window,
        failures_in_window,
        trips,
        opened_at,
        retry_at,
    } = breaker;
    let count = |value: u64| i64::try_from(value).unwrap_or(i64::MAX);
    pb::CircuitBreaker {
        key: Some(pb::CircuitBreakerKey {
            node_type: key.node_type.clone(),
            host: key.host.clone(),
        }),
        state: breaker_state_to_proto(state).into(),
        calls_in_window: count(*calls_in_window),
        failures_in_window: count(*failures_in_window),
        successes_in_window: count(calls_in_window.saturating_sub(*failures_in_window)),
        failure_rate_percent: *failure_rate_percent,
        trip_count: i32::try_from(*trips).unwrap_or(i32::MAX),
        opened_at: opened_at.map(timestamp),
        next_probe_time: retry_at.map(timestamp),
    }
}
