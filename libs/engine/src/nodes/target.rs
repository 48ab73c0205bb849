//! The one way a node reaches an outside target (an HTTP API, a database):
//! through the circuit breaker of its (node type, host). Before the call the
//! breaker is asked; an open one holds the call back, and the step is parked
//! until the breaker's probe time (or, for a node that opts to fail fast,
//! the attempt fails). After the call its outcome is recorded: only failures
//! that say the target is unhealthy count against it, so one tenant's bad
//! credentials or bad requests never open a breaker every tenant shares.

use std::future::Future;
use std::sync::Arc;

use serde_json::Value;
use tyboo_breaker::{
    Admission, BreakerKey, CircuitBreakers, FailureKind, Outcome, counts_against_target,
};

use super::NodeRun;
use crate::error::{ErrorClass, NodeError};

/// The node parameter that makes an open breaker fail the attempt at once
/// (spending retry budget) instead of parking the step.
pub(crate) const FAIL_FAST_PARAMETER: &str = "fail_fast_on_open_breaker";

/// Metric: breaker store errors, by operation; calls then go ahead as if
/// the breaker were closed, so a down Redis never stops every node call.
pub const BREAKER_ERRORS_TOTAL: &str = "tyboo_engine_breaker_errors_total";

/// The schema of [`FAIL_FAST_PARAMETER`], shared by every target node type.
pub(crate) fn fail_fast_schema() -> Value {
    serde_json::json!({
        "type": "boolean",
        "default": false,
        "description": "When the target's circuit breaker is open, fail this attempt at once (spending the retry policy) instead of waiting for the breaker's probe time"
    })
}

/// The breaker key of `url`'s target: its host, with the port when it is not
/// the scheme's default, as the URL parser normalised them.
pub(crate) fn host_of(url: &url::Url) -> Option<String> {
    let host = url.host_str().filter(|host| !host.is_empty())?;
    Some(match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    })
}

/// Makes `call` to `host` under its breaker. `failure_of` says what a
/// finished call tells about the target (`None`: it answered well).
pub(crate) async fn call_target<T>(
    run: &NodeRun<'_>,
    host: &str,
    call: impl Future<Output = Result<T, NodeError>>,
    failure_of: impl FnOnce(&T) -> Option<FailureKind>,
) -> Result<T, NodeError> {
    let Some(breakers) = run.breakers else {
        return call.await;
    };
    let key = BreakerKey::new(run.node.node_type.clone(), host);
    match breakers.admit(&key).await {
        Ok(Admission::Allowed | Admission::Probe) => {}
        Ok(Admission::Rejected { retry_at }) => return Err(rejected(run, host, retry_at)),
        Err(error) => {
            // An unreachable breaker store must not stop every outbound call:
            // the call goes ahead unguarded, and nothing is recorded for it.
            tracing::warn!(%error, node_type = %key.node_type, "circuit breaker unavailable; calling without it");
            ::metrics::counter!(BREAKER_ERRORS_TOTAL, "operation" => "admit").increment(1);
            return call.await;
        }
    }
    let mut pending = Pending {
        breakers: breakers.clone(),
        key,
        deadline: run.deadline,
        armed: true,
    };
    let result = call.await;
    pending.armed = false;
    let failure = match &result {
        Ok(value) => failure_of(value),
        Err(error) => Some(match error.class {
            ErrorClass::Timeout => FailureKind::Timeout,
            // The node's transient errors on a call are the network's: no
            // answer, a reset, a broken body.
            ErrorClass::Transient => FailureKind::Connection,
            // Refused egress, a bad redirect, a body past its cap: the
            // target answered, or was never asked.
            ErrorClass::Permanent => FailureKind::InvalidRequest,
        }),
    };
    let outcome = match failure {
        Some(kind) if counts_against_target(kind) => Outcome::Failure,
        _ => Outcome::Success,
    };
    record(breakers.as_ref(), &pending.key, outcome).await;
    result
}

/// The error for a call an open breaker held back.
fn rejected(run: &NodeRun<'_>, host: &str, retry_at: chrono::DateTime<chrono::Utc>) -> NodeError {
    let node_type = &run.node.node_type;
    let message = format!(
        "node `{}`: the circuit breaker of {node_type} calls to `{host}` is open; the next probe is at {}",
        run.node.id,
        retry_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    );
    let fail_fast = run
        .parameters
        .get(FAIL_FAST_PARAMETER)
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let wait = (retry_at - chrono::Utc::now()).to_std().unwrap_or_default();
    let error = NodeError::transient(message).with_retry_after(Some(wait));
    if fail_fast {
        error
    } else {
        error.parked_until(retry_at)
    }
}

async fn record(breakers: &dyn CircuitBreakers, key: &BreakerKey, outcome: Outcome) {
    if let Err(error) = breakers.record(key, outcome).await {
        tracing::warn!(%error, node_type = %key.node_type, "recording a call's outcome at its circuit breaker failed");
        ::metrics::counter!(BREAKER_ERRORS_TOTAL, "operation" => "record").increment(1);
    }
}

/// An admitted call whose outcome is not recorded yet. When the node's
/// timeout drops the call, the drop records the timeout (from a task of its
/// own, as a drop cannot wait); a call dropped earlier (the execution was
/// cancelled) says nothing about the target and records nothing: a probe
/// slot it held is given out again after the probe timeout.
struct Pending {
    breakers: Arc<dyn CircuitBreakers>,
    key: BreakerKey,
    deadline: tokio::time::Instant,
    armed: bool,
}

impl Drop for Pending {
    fn drop(&mut self) {
        if !self.armed || tokio::time::Instant::now() < self.deadline {
            return;
        }
        let breakers = self.breakers.clone();
        let key = self.key.clone();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                record(breakers.as_ref(), &key, Outcome::Failure).await;
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_keep_non_default_ports_only() {
        let host = |text: &str| host_of(&url::Url::parse(text).expect("valid url"));
        assert_eq!(
            host("https://api.example.com/v1").as_deref(),
            Some("api.example.com")
        );
        assert_eq!(
            host("https://api.example.com:443/v1").as_deref(),
            Some("api.example.com")
        );
        assert_eq!(
            host("http://127.0.0.1:8080/x").as_deref(),
            Some("127.0.0.1:8080")
        );
        assert_eq!(host("http://[::1]:81/").as_deref(), Some("[::1]:81"));
        assert_eq!(
            host("HTTP://API.Example.COM/").as_deref(),
            Some("api.example.com")
        );
    }
}
