//! How an execution moves forward once a step reaches a terminal state:
//! the graph decides which nodes run or are skipped next, new steps are
//! inserted in the same transaction, and the execution finishes when every
//! node is terminal. Jobs for the new steps are returned, to be enqueued only
//! after the transaction commits.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use tyboo_broker::Job;
use tyboo_engine::{Decision, Terminal, WorkflowGraph};
use tyboo_store::Session;
use uuid::Uuid;

use super::{Domain, Execution, ExecutionStatus, NodeRunStatus, Step, StepState};
use crate::error::{ExecutorError, ExecutorResult};
use crate::storage::{executions, node_runs, steps};

pub type Jobs = Vec<(Job, Option<DateTime<Utc>>)>;

/// What a transaction decided, to act on after it commits.
#[derive(Default)]
pub struct Aftermath {
    pub jobs: Jobs,
    /// The execution reached this terminal status.
    pub finished: Option<ExecutionStatus>,
    /// Every step row as the transaction left them, when it advanced the
    /// execution (for taking the next step on without reading them again).
    pub steps: Vec<Step>,
}

impl From<ExecutionStatus> for Aftermath {
    /// The aftermath of an execution stopped with `status` and nothing else.
    fn from(status: ExecutionStatus) -> Self {
        Aftermath {
            finished: Some(status),
            ..Aftermath::default()
        }
    }
}

/// The scheduling view of the execution's steps.
pub fn terminal_map(rows: &[Step]) -> HashMap<String, Terminal> {
    rows.iter()
        .filter_map(|row| match row.state {
            StepState::Succeeded => Some((
                row.node_id.clone(),
                Terminal::Succeeded {
                    port: row
                        .port
                        .clone()
                        .unwrap_or_else(|| tyboo_engine::MAIN_PORT.to_owned()),
                },
            )),
            StepState::Skipped => Some((row.node_id.clone(), Terminal::Skipped)),
            _ => None,
        })
        .collect()
}

impl Domain {
    /// Inserts the steps the graph now decides, and finishes the execution
    /// when every node is terminal.
    pub(crate) async fn advance_execution<S: Session>(
        &self,
        db: &S,
        execution: &Execution,
        graph: &WorkflowGraph,
        now: DateTime<Utc>,
    ) -> ExecutorResult<Aftermath> {
        let rows = steps::list_for_execution(db, execution.id).await?;
        self.advance_from(db, execution, graph, rows, now).await
    }

    /// [`Domain::advance_execution`] from `rows`, every step row of the
    /// execution as the transaction sees them (in insertion order).
    pub(crate) async fn advance_from<S: Session>(
        &self,
        db: &S,
        execution: &Execution,
        graph: &WorkflowGraph,
        mut rows: Vec<Step>,
        now: DateTime<Utc>,
    ) -> ExecutorResult<Aftermath> {
        let mut terminal = terminal_map(&rows);
        let mut known: HashSet<String> = rows.iter().map(|row| row.node_id.clone()).collect();
        let mut aftermath = Aftermath::default();
        // A skip can decide further nodes, so repeat until nothing changes.
        loop {
            let decided: Vec<(String, Decision)> = tyboo_engine::advance(graph, &terminal)
                .into_iter()
                .filter(|(node_id, _)| !known.contains(node_id))
                .collect();
            if decided.is_empty() {
                break;
            }
            for (node_id, decision) in decided {
                let node = graph.node(&node_id).ok_or_else(|| {
                    ExecutorError::Internal(format!("advance named unknown node {node_id}"))
                })?;
                let pool = self.pool_of(node).as_str().to_owned();
                let state = match decision {
                    Decision::Run => StepState::Ready,
                    Decision::Skip => StepState::Skipped,
                };
                let row = Step {
                    id: Uuid::now_v7(),
                    workspace_id: execution.workspace_id,
                    execution_id: execution.id,
                    node_id: node_id.clone(),
                    pool,
                    state,
                    attempt: 1,
                    fencing: 0,
                    lease_owner: None,
                    lease_expires_at: None,
                    available_at: now,
                    dispatched_at: (state == StepState::Ready).then_some(now),
                    output: None,
                    port: None,
                    error: None,
                    error_class: None,
                    start_time: None,
                    end_time: (state == StepState::Skipped).then_some(now),
                    lost_workers: 0,
                };
                steps::insert(db, &row).await?;
                known.insert(node_id.clone());
                match decision {
                    Decision::Run => aftermath.jobs.push((row.job(), None)),
                    Decision::Skip => {
                        terminal.insert(node_id, Terminal::Skipped);
                    }
                }
                rows.push(row);
            }
        }
        let complete = graph
            .nodes
            .iter()
            .all(|node| terminal.contains_key(&node.id));
        if complete {
            let finished = executions::finish(
                db,
                execution.id,
                executions::Finish {
                    status: ExecutionStatus::Succeeded,
                    error: None,
                    error_class: None,
                    failed_node_id: None,
                    end_time: now,
                },
            )
            .await?;
            if finished {
                aftermath.finished = Some(ExecutionStatus::Succeeded);
            }
        }
        aftermath.steps = rows;
        Ok(aftermath)
    }

    /// Ends an active execution with `status`, closing every step and run
    /// that could still change. Returns whether this call ended it.
    pub(crate) async fn stop_execution<S: Session>(
        &self,
        db: &S,
        execution_id: Uuid,
        stop: Stop<'_>,
    ) -> ExecutorResult<bool> {
        let finished = executions::finish(
            db,
            execution_id,
            executions::Finish {
                status: stop.status,
                error: Some(stop.error),
                error_class: stop.error_class,
                failed_node_id: stop.failed_node_id,
                end_time: stop.now,
            },
        )
        .await?;
        if !finished {
            return Ok(false);
        }
        let run_status = match stop.status {
            ExecutionStatus::TimedOut => NodeRunStatus::TimedOut,
            _ => NodeRunStatus::Cancelled,
        };
        steps::stop_active(db, execution_id, StepState::Cancelled, stop.now).await?;
        node_runs::stop_active(db, execution_id, run_status, stop.error, stop.now).await?;
        Ok(true)
    }
}

/// How to stop an execution.
pub struct Stop<'a> {
    pub status: ExecutionStatus,
    pub error: &'a str,
    pub error_class: Option<&'a str>,
    pub failed_node_id: Option<&'a str>,
    pub now: DateTime<Utc>,
}
