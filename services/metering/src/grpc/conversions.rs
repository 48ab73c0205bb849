//! Between the contract's messages and the domain's values.

use tyboo_proto::convert::{datetime, timestamp};
use tyboo_proto::metering as pb;
use uuid::Uuid;

use crate::domain::{LlmInput, UsageInput, UsageReport};
use crate::error::{MeteringError, MeteringResult};
use crate::storage::entities::usage_event::{self, UsageKind};
use crate::storage::events::Sums;

fn parse_uuid(text: &str, field: String) -> MeteringResult<Uuid> {
    Uuid::parse_str(text).map_err(|_| MeteringError::invalid(field, "must be a UUID"))
}

pub fn kind_from_proto(kind: i32, field: String) -> MeteringResult<UsageKind> {
    match pb::UsageKind::try_from(kind) {
        Ok(pb::UsageKind::Execution) => Ok(UsageKind::Execution),
        Ok(pb::UsageKind::Task) => Ok(UsageKind::Task),
        Ok(pb::UsageKind::LlmCall) => Ok(UsageKind::LlmCall),
        Ok(pb::UsageKind::Unspecified) | Err(_) => Err(MeteringError::invalid(
            field,
            "must be USAGE_KIND_EXECUTION, USAGE_KIND_TASK or USAGE_KIND_LLM_CALL",
        )),
    }
}

fn kind_to_proto(kind: UsageKind) -> pb::UsageKind {
    match kind {
        UsageKind::Execution => pb::UsageKind::Execution,
        UsageKind::Task => pb::UsageKind::Task,
        UsageKind::LlmCall => pb::UsageKind::LlmCall,
    }
}

/// The records of a batch, each field checked and named by its index.
pub fn records_from_proto(records: Vec<pb::UsageRecord>) -> MeteringResult<Vec<UsageInput>> {
    records
        .into_iter()
        .enumerate()
        .map(|(index, record)| {
            let field = |name: &str| format!("records[{index}].{name}");
            let occurred_at = record
                .occurred_at
                .as_ref()
                .ok_or_else(|| MeteringError::invalid(field("occurred_at"), "must be set"))
                .and_then(|time| {
                    datetime(time).ok_or_else(|| {
                        MeteringError::invalid(field("occurred_at"), "is not a valid time")
                    })
                })?;
            Ok(UsageInput {
                kind: kind_from_proto(record.kind, field("kind"))?,
                workspace_id: parse_uuid(&record.workspace_id, field("workspace_id"))?,
                workflow_id: parse_uuid(&record.workflow_id, field("workflow_id"))?,
                execution_id: parse_uuid(&record.execution_id, field("execution_id"))?,
                idempotency_key: record.idempotency_key,
                node_id: record.node_id,
                occurred_at,
                llm: record.llm.map(|llm| LlmInput {
                    provider_host: llm.provider_host,
                    model: llm.model,
                    input_tokens: llm.input_tokens,
                    output_tokens: llm.output_tokens,
                }),
            })
        })
        .collect()
}

pub fn event_to_proto(row: usage_event::Model) -> pb::UsageEvent {
    let llm = (row.kind == UsageKind::LlmCall).then_some(pb::LlmCall {
        provider_host: row.provider_host,
        model: row.model,
        input_tokens: row.input_tokens,
        output_tokens: row.output_tokens,
    });
    pb::UsageEvent {
        id: row.id.to_string(),
        kind: kind_to_proto(row.kind).into(),
        workspace_id: row.workspace_id.to_string(),
        workflow_id: row.workflow_id.to_string(),
        execution_id: row.execution_id.to_string(),
        node_id: row.node_id,
        occurred_at: Some(timestamp(row.occurred_at)),
        recorded_at: Some(timestamp(row.recorded_at)),
        llm,
        cost_micros: row.cost_micros,
        price_version: row.price_version,
        idempotency_key: row.idempotency_key,
    }
}

fn totals_to_proto(sums: Sums) -> pb::UsageTotals {
    pb::UsageTotals {
        executions: sums.executions,
        tasks: sums.tasks,
        llm_calls: sums.llm_calls,
        input_tokens: sums.input_tokens,
        output_tokens: sums.output_tokens,
        cost_micros: sums.cost_micros,
    }
}

pub fn report_to_proto(report: UsageReport) -> pb::GetWorkspaceUsageResponse {
    pb::GetWorkspaceUsageResponse {
        workspace_id: report.workspace_id.to_string(),
        month: report.month.to_string(),
        totals: Some(totals_to_proto(report.totals)),
        by_workflow: report
            .by_workflow
            .into_iter()
            .map(|row| pb::WorkflowUsage {
                workflow_id: row.workflow_id.to_string(),
                totals: Some(totals_to_proto(row.sums)),
            })
            .collect(),
        by_model: report
            .by_model
            .into_iter()
            .map(|row| pb::ModelUsage {
                provider_host: row.provider_host,
                model: row.model,
                totals: Some(totals_to_proto(row.sums)),
            })
            .collect(),
        by_day: report
            .by_day
            .into_iter()
            .map(|row| pb::DayUsage {
                day: row.usage_day,
                totals: Some(totals_to_proto(row.sums)),
            })
            .collect(),
        truncated: report.truncated,
    }
}
