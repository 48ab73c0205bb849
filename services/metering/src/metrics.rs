//! Metric names and their descriptions. Labels are bounded: the kind of an
//! event and the direction of tokens, never a workspace or a model.

use metrics::{Unit, describe_counter};

/// Ledger rows written, by `kind` (execution, task, llm_call).
pub const EVENTS_RECORDED_TOTAL: &str = "tyboo_metering_events_recorded_total";
/// Deliveries of events the ledger already held: retries after a lost
/// answer, counted once.
pub const DUPLICATES_TOTAL: &str = "tyboo_metering_duplicate_events_total";
/// LLM tokens recorded, by `direction` (input, output).
pub const LLM_TOKENS_TOTAL: &str = "tyboo_metering_llm_tokens_total";
/// Cost of LLM calls recorded, in micros of the price table's currency.
pub const LLM_COST_MICROS_TOTAL: &str = "tyboo_metering_llm_cost_micros_total";

/// Registers descriptions with the installed recorder; call once at start-up.
pub fn describe() {
    describe_counter!(
        EVENTS_RECORDED_TOTAL,
        Unit::Count,
        "Usage events written to the ledger, by kind"
    );
    describe_counter!(
        DUPLICATES_TOTAL,
        Unit::Count,
        "Usage events delivered again and counted once"
    );
    describe_counter!(
        LLM_TOKENS_TOTAL,
        Unit::Count,
        "LLM tokens recorded, by direction"
    );
    describe_counter!(
        LLM_COST_MICROS_TOTAL,
        Unit::Count,
        "Cost of recorded LLM calls in micros"
    );
}
