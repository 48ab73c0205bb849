//! Writing the ledger: each event once, priced when it is recorded.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use tyboo_store::Scope;
use uuid::Uuid;

use super::Domain;
use super::month::{Month, day_of};
use crate::error::{MeteringError, MeteringResult};
use crate::metrics;
use crate::storage::entities::usage_event::{self, UsageKind};
use crate::storage::{events, now};

/// Batches come from every workspace's executions at once.
const INGEST: Scope = Scope::System("usage ingest");

/// One event as the executor delivers it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsageInput {
    pub idempotency_key: String,
    pub kind: UsageKind,
    pub workspace_id: Uuid,
    pub workflow_id: Uuid,
    pub execution_id: Uuid,
    pub node_id: String,
    pub occurred_at: DateTime<Utc>,
    pub llm: Option<LlmInput>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LlmInput {
    pub provider_host: String,
    pub model: String,
    pub input_tokens: i64,
    pub output_tokens: i64,
}

/// What a batch did: rows written now, and rows the ledger already held.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Recorded {
    pub recorded: u64,
    pub duplicates: u64,
}

/// Largest token count of one call, as the contract bounds it.
const MAX_TOKENS: i64 = 1_000_000_000;

impl Domain {
    /// Writes the events of a batch in one transaction; an event whose
    /// (workspace, idempotency key) is already in the ledger is left as it
    /// was, so a batch delivered twice counts once. A bad event refuses the
    /// whole batch, naming it, and writes nothing.
    pub async fn record(&self, inputs: Vec<UsageInput>) -> MeteringResult<Recorded> {
        let now = now();
        let offered = inputs.len() as u64;
        let mut rows = Vec::with_capacity(inputs.len());
        let mut keys = BTreeSet::new();
        for (index, input) in inputs.into_iter().enumerate() {
            self.check(index, &input, now)?;
            // The same key twice in one batch is one event too.
            if !keys.insert((input.workspace_id, input.idempotency_key.clone())) {
                continue;
            }
            rows.push(self.row(input, now));
        }
        let tx = self.store().write(INGEST).await?;
        // Rows already in the ledger are left out before the insert, so the
        // answer and the counters say exactly what was new; the insert still
        // skips any that a concurrent delivery wrote meanwhile.
        let existing = events::existing_keys(&tx, &keys).await?;
        rows.retain(|row| !existing.contains(&(row.workspace_id, row.idempotency_key.clone())));
        let written = events::insert_new(&tx, rows.clone()).await?;
        tx.commit().await?;
        let recorded = Recorded {
            recorded: written,
            duplicates: offered.saturating_sub(written),
        };
        count(&rows, written == rows.len() as u64);
        ::metrics::counter!(metrics::DUPLICATES_TOTAL).increment(recorded.duplicates);
        Ok(recorded)
    }

    fn check(&self, index: usize, input: &UsageInput, now: DateTime<Utc>) -> MeteringResult<()> {
        let field = |name: &str| format!("records[{index}].{name}");
        let key = input.idempotency_key.as_str();
        if key.is_empty() || key.len() > 200 {
            return Err(MeteringError::invalid(
                field("idempotency_key"),
                "must be 1 to 200 characters",
            ));
        }
        let skew = chrono::Duration::seconds(i64::from(self.config().max_clock_skew_seconds));
        if input.occurred_at > now + skew {
            return Err(MeteringError::invalid(
                field("occurred_at"),
                format!(
                    "is {} in the future, more than the {}s clocks may differ by \
                     (metering.max_clock_skew_seconds)",
                    input.occurred_at,
                    self.config().max_clock_skew_seconds
                ),
            ));
        }
        if input.node_id.len() > 200 {
            return Err(MeteringError::invalid(
                field("node_id"),
                "must be at most 200 characters",
            ));
        }
        match (input.kind, &input.llm) {
            (UsageKind::Execution, Some(_)) | (UsageKind::Task, Some(_)) => {
                return Err(MeteringError::invalid(
                    field("llm"),
                    "is only for LLM calls (kind USAGE_KIND_LLM_CALL)",
                ));
            }
            (UsageKind::LlmCall, None) => {
                return Err(MeteringError::invalid(
                    field("llm"),
                    "must be set for an LLM call",
                ));
            }
            (UsageKind::LlmCall, Some(llm)) => {
                if llm.model.is_empty() || llm.model.len() > 200 {
                    return Err(MeteringError::invalid(
                        field("llm.model"),
                        "must be 1 to 200 characters",
                    ));
                }
                if llm.provider_host.len() > 253 {
                    return Err(MeteringError::invalid(
                        field("llm.provider_host"),
                        "must be at most 253 characters",
                    ));
                }
                for (name, tokens) in [
                    ("llm.input_tokens", llm.input_tokens),
                    ("llm.output_tokens", llm.output_tokens),
                ] {
                    if !(0..=MAX_TOKENS).contains(&tokens) {
                        return Err(MeteringError::invalid(
                            field(name),
                            format!("must be between 0 and {MAX_TOKENS}"),
                        ));
                    }
                }
            }
            (UsageKind::Execution, None) | (UsageKind::Task, None) => {}
        }
        if input.kind != UsageKind::Execution && input.node_id.is_empty() {
            return Err(MeteringError::invalid(
                field("node_id"),
                "must be set for a task or an LLM call",
            ));
        }
        Ok(())
    }

    fn row(&self, input: UsageInput, now: DateTime<Utc>) -> usage_event::Model {
        let (provider_host, model, input_tokens, output_tokens, cost) = match input.llm {
            Some(llm) => {
                let cost = self
                    .prices()
                    .cost(&llm.model, llm.input_tokens, llm.output_tokens);
                (
                    llm.provider_host,
                    llm.model,
                    llm.input_tokens,
                    llm.output_tokens,
                    cost,
                )
            }
            None => (
                String::new(),
                String::new(),
                0,
                0,
                super::Cost {
                    micros: 0,
                    price_version: String::new(),
                },
            ),
        };
        usage_event::Model {
            id: Uuid::now_v7(),
            workspace_id: input.workspace_id,
            idempotency_key: input.idempotency_key,
            kind: input.kind,
            workflow_id: input.workflow_id,
            execution_id: input.execution_id,
            node_id: input.node_id,
            usage_month: Month::of(input.occurred_at).to_string(),
            usage_day: day_of(input.occurred_at),
            occurred_at: input.occurred_at,
            recorded_at: now,
            provider_host,
            model,
            input_tokens,
            output_tokens,
            cost_micros: cost.micros,
            price_version: cost.price_version,
        }
    }
}

/// Counts what was written; when a concurrent delivery won some rows (rare),
/// the kinds are not known row by row, so only the total is counted.
fn count(rows: &[usage_event::Model], exact: bool) {
    if !exact {
        return;
    }
    let mut kinds: BTreeMap<&'static str, u64> = BTreeMap::new();
    let (mut input, mut output, mut cost) = (0u64, 0u64, 0u64);
    for row in rows {
        *kinds.entry(row.kind.as_str()).or_default() += 1;
        input += row.input_tokens.unsigned_abs();
        output += row.output_tokens.unsigned_abs();
        cost += row.cost_micros.unsigned_abs();
    }
    for (kind, count) in kinds {
        ::metrics::counter!(metrics::EVENTS_RECORDED_TOTAL, "kind" => kind).increment(count);
    }
    ::metrics::counter!(metrics::LLM_TOKENS_TOTAL, "direction" => "input").increment(input);
    ::metrics::counter!(metrics::LLM_TOKENS_TOTAL, "direction" => "output").increment(output);
    ::metrics::counter!(metrics::LLM_COST_MICROS_TOTAL).increment(cost);
}
