//! Breaker metrics, labelled by node type and state only: hosts are chosen by
//! tenants and unbounded, so they never become label values.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use crate::state::{Mode, Transition};
use crate::{Admission, BreakerState};

pub const TRANSITIONS_TOTAL: &str = "tyboo_breaker_transitions_total";
pub const REJECTED_TOTAL: &str = "tyboo_breaker_rejected_total";
pub const BREAKERS: &str = "tyboo_breaker_breakers";

pub const NODE_TYPE_LABEL: &str = "node_type";
pub const FROM_LABEL: &str = "from";
pub const TO_LABEL: &str = "to";
pub const STATE_LABEL: &str = "state";

/// Registers descriptions for the metrics of this crate.
pub fn describe() {
    metrics::describe_counter!(
        TRANSITIONS_TOTAL,
        "breaker state changes made by this process, by node type, from and to state"
    );
    metrics::describe_counter!(
        REJECTED_TOTAL,
        "calls a breaker rejected in this process, by node type"
    );
    metrics::describe_gauge!(
        BREAKERS,
        "breakers in each state, by node type, as of the last list"
    );
}

pub(crate) fn record_transition(node_type: &str, transition: Option<Transition>) {
    let Some(Transition { from, to }) = transition else {
        return;
    };
    tracing::info!(
        node_type,
        from = from.name(),
        to = to.name(),
        "breaker changed state"
    );
    metrics::counter!(
        TRANSITIONS_TOTAL,
        NODE_TYPE_LABEL => node_type.to_owned(),
        FROM_LABEL => from.name(),
        TO_LABEL => to.name(),
    )
    .increment(1);
}

pub(crate) fn record_admission(node_type: &str, admission: Admission) {
    if let Admission::Rejected { .. } = admission {
        metrics::counter!(REJECTED_TOTAL, NODE_TYPE_LABEL => node_type.to_owned()).increment(1);
    }
}

/// Gauges are set from a full listing, so every process reporting on shared
/// Redis breakers reports the same numbers; a node type's states missing
/// from the listing are set to zero, and so are those of a node type this
/// process reported before that has no breaker left (after a reset or the
/// idle expiry), which would otherwise keep its last counts.
pub(crate) fn record_snapshot(listed: &[BreakerState]) {
    let mut reported = REPORTED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    for (node_type, per_mode) in snapshot_counts(listed, &mut reported) {
        for (mode, count) in Mode::ALL.iter().zip(per_mode) {
            metrics::gauge!(
                BREAKERS,
                NODE_TYPE_LABEL => node_type.clone(),
                STATE_LABEL => mode.name(),
            )
            .set(count as f64);
        }
    }
}

/// Node types whose gauges this process has set. Node types come from the
/// catalog, so the set stays small.
static REPORTED: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

/// Breakers per node type and mode in `listed`, with every node type of
/// `reported` (which it extends) present, at zero when it has none left.
fn snapshot_counts(
    listed: &[BreakerState],
    reported: &mut BTreeSet<String>,
) -> BTreeMap<String, [u64; Mode::ALL.len()]> {
    let mut counts: BTreeMap<String, [u64; Mode::ALL.len()]> = reported
        .iter()
        .map(|node_type| (node_type.clone(), [0; Mode::ALL.len()]))
        .collect();
    for breaker in listed {
        let slot = Mode::ALL
            .iter()
            .position(|mode| mode.name() == breaker.state.name())
            .expect("every state has a mode");
        counts.entry(breaker.key.node_type.clone()).or_default()[slot] += 1;
    }
    reported.extend(counts.keys().cloned());
    counts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BreakerKey, CircuitState};

    fn breaker(node_type: &str, host: &str, state: CircuitState) -> BreakerState {
        BreakerState {
            key: BreakerKey::new(node_type, host),
            state,
            failure_rate_percent: None,
            calls_in_window: 0,
            failures_in_window: 0,
            trips: 0,
            opened_at: None,
            retry_at: None,
        }
    }

    #[test]
    fn a_node_type_with_no_breaker_left_is_reported_at_zero() {
        let mut reported = BTreeSet::new();
        let first = snapshot_counts(
            &[
                breaker("http.request", "a.example", CircuitState::ForcedOpen),
                breaker("http.request", "b.example", CircuitState::Closed),
                breaker("llm.chat", "c.example", CircuitState::HalfOpen),
            ],
            &mut reported,
        );
        assert_eq!(first["http.request"], [1, 0, 0, 1, 0]);
        assert_eq!(first["llm.chat"], [0, 0, 1, 0, 0]);

        let after_reset = snapshot_counts(
            &[breaker("llm.chat", "c.example", CircuitState::Closed)],
            &mut reported,
        );
        assert_eq!(after_reset["http.request"], [0; 5]);
        assert_eq!(after_reset["llm.chat"], [1, 0, 0, 0, 0]);
    }
}
