//! Breaker metrics, labelled by node type and state only: hosts are chosen by
//! tenants and unbounded, so they never become label values.

use std::collections::BTreeMap;

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
/// from the listing are set to zero.
pub(crate) fn record_snapshot(listed: &[BreakerState]) {
    let mut counts: BTreeMap<&str, [u64; Mode::ALL.len()]> = BTreeMap::new();
    for breaker in listed {
        let slot = Mode::ALL
            .iter()
            .position(|mode| mode.name() == breaker.state.name())
            .expect("every state has a mode");
        counts.entry(breaker.key.node_type.as_str()).or_default()[slot] += 1;
    }
    for (node_type, per_mode) in counts {
        for (mode, count) in Mode::ALL.iter().zip(per_mode) {
            metrics::gauge!(
                BREAKERS,
                NODE_TYPE_LABEL => node_type.to_owned(),
                STATE_LABEL => mode.name(),
            )
            .set(count as f64);
        }
    }
}
