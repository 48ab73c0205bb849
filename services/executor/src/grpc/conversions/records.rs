//! Executions, node runs and dead letters as messages.

use std::collections::HashSet;

use tyboo_proto::executor as pb;

use super::{
    dead_letter_state_to_proto, error_class_to_proto, execution_status_to_proto,
    node_run_status_to_proto, optional_json, step_status_to_proto, timestamp,
    trigger_type_to_proto,
};
use crate::domain::{DeadLetter, Execution, ExecutionDetail, NodeRun, Step};
use crate::error::ExecutorResult;

/// An execution without its node runs.
pub fn execution_to_proto(execution: &Execution) -> ExecutorResult<pb::Execution> {
    Ok(pb::Execution {
        id: execution.id.to_string(),
        workspace_id: execution.workspace_id.to_string(),
        workflow_id: execution.workflow_id.to_string(),
        workflow_version: execution.workflow_version,
        status: execution_status_to_proto(execution.status) as i32,
        trigger_type: trigger_type_to_proto(execution.trigger_type) as i32,
        input: optional_json(Some(&execution.input)),
        error: execution.error.clone().unwrap_or_default(),
        error_class: error_class_to_proto(execution.error_class.as_deref()) as i32,
        failed_node_id: execution.failed_node_id.clone().unwrap_or_default(),
        create_time: Some(timestamp(execution.create_time)),
        start_time: execution.start_time.map(timestamp),
        end_time: execution.end_time.map(timestamp),
        deadline_time: Some(timestamp(execution.deadline)),
        node_runs: Vec::new(),
        dead_letter_id: execution
            .dead_letter_id
            .map(|id| id.to_string())
            .unwrap_or_default(),
        started_by: execution
            .started_by
            .map(|id| id.to_string())
            .unwrap_or_default(),
        queue_reason: execution.queue_reason.clone().unwrap_or_default(),
    })
}

/// An execution with every node run. Steps that have no run of their own
/// (the trigger, skipped and queued nodes, nodes carried over by a replay)
/// appear as one run each, so every node of the execution is visible.
/// Leaves out the data of the runs that would take `runs` past `budget`
/// bytes, marking them; the runs themselves all stay.
pub fn within_budget(runs: &mut [pb::NodeRun], mut budget: usize) {
    use prost::Message;
    for run in runs {
        let size = run.encoded_len();
        if size <= budget {
            budget -= size;
            continue;
        }
        run.input = None;
        run.output = None;
        run.data_omitted = true;
        budget = budget.saturating_sub(run.encoded_len());
    }
}

/// One stored run as a message.
pub fn stored_run_to_proto(run: &NodeRun) -> ExecutorResult<pb::NodeRun> {
    node_run_to_proto(run)
}

pub fn execution_detail_to_proto(detail: &ExecutionDetail) -> ExecutorResult<pb::Execution> {
    let mut message = execution_to_proto(&detail.execution)?;
    let with_runs: HashSet<&str> = detail.runs.iter().map(|run| run.node_id.as_str()).collect();
    let mut runs: Vec<(chrono::DateTime<chrono::Utc>, pb::NodeRun)> = detail
        .runs
        .iter()
        .map(|run| Ok((run.start_time, node_run_to_proto(run)?)))
        .collect::<ExecutorResult<_>>()?;
    for row in &detail.steps {
        if with_runs.contains(row.node_id.as_str()) {
            continue;
        }
        let order = row.start_time.or(row.end_time).unwrap_or(row.available_at);
        runs.push((order, step_to_run(row)?));
    }
    runs.sort_by_key(|(order, _)| *order);
    message.node_runs = runs.into_iter().map(|(_, run)| run).collect();
    Ok(message)
}

fn node_run_to_proto(run: &NodeRun) -> ExecutorResult<pb::NodeRun> {
    let usage = run.llm_model.as_ref().map(|model| pb::LlmUsage {
        model: model.clone(),
        prompt_tokens: run.prompt_tokens.unwrap_or_default(),
        completion_tokens: run.completion_tokens.unwrap_or_default(),
        total_tokens: run.total_tokens.unwrap_or_default(),
    });
    Ok(pb::NodeRun {
        node_id: run.node_id.clone(),
        attempt: u32::try_from(run.attempt).unwrap_or_default(),
        status: node_run_status_to_proto(run.status) as i32,
        input: optional_json(Some(&run.input)),
        output: optional_json(run.output.as_deref()),
        output_port: run.port.clone().unwrap_or_default(),
        error: run.error.clone().unwrap_or_default(),
        error_class: error_class_to_proto(run.error_class.as_deref()) as i32,
        start_time: Some(timestamp(run.start_time)),
        end_time: run.end_time.map(timestamp),
        usage,
        resume_time: run.resume_time.map(timestamp),
        data_omitted: false,
    })
}

fn step_to_run(row: &Step) -> ExecutorResult<pb::NodeRun> {
    let skipped = row.state == crate::domain::StepState::Skipped;
    Ok(pb::NodeRun {
        node_id: row.node_id.clone(),
        attempt: if skipped {
            0
        } else {
            u32::try_from(row.attempt).unwrap_or_default()
        },
        status: step_status_to_proto(row.state) as i32,
        input: None,
        output: optional_json(row.output.as_deref()),
        output_port: row.port.clone().unwrap_or_default(),
        error: row.error.clone().unwrap_or_default(),
        error_class: error_class_to_proto(row.error_class.as_deref()) as i32,
        start_time: row.start_time.map(timestamp),
        end_time: row.end_time.map(timestamp),
        usage: None,
        resume_time: None,
        data_omitted: false,
    })
}

pub fn dead_letter_to_proto(letter: &DeadLetter) -> ExecutorResult<pb::DeadLetter> {
    Ok(pb::DeadLetter {
        id: letter.id.to_string(),
        workspace_id: letter.workspace_id.to_string(),
        execution_id: letter.execution_id.to_string(),
        workflow_id: letter.workflow_id.to_string(),
        workflow_version: letter.workflow_version,
        node_id: letter.node_id.clone(),
        inputs: Some(super::json_text(&letter.inputs)),
        error_class: error_class_to_proto(Some(&letter.error_class)) as i32,
        error: letter.error.clone(),
        attempts: u32::try_from(letter.attempts).unwrap_or_default(),
        state: dead_letter_state_to_proto(letter.state) as i32,
        create_time: Some(timestamp(letter.create_time)),
        resolve_time: letter.resolve_time.map(timestamp),
        replay_execution_id: letter
            .replay_execution_id
            .map(|id| id.to_string())
            .unwrap_or_default(),
    })
}
