//! The step state machine workers drive: claim a step under a lease with a
//! new fencing number, then commit its outcome only while still holding it.
//! Each commit locks the execution row first (claims too), so the steps of
//! one execution commit one at a time and every lock is taken in the same
//! order.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use tyboo_broker::Job;
use tyboo_engine::{ErrorClass, LlmUsage, NodeError, NodeSpec, RetryPolicy, WorkflowGraph};
use tyboo_store::Session;
use uuid::Uuid;

use super::concurrency::Slot;
use super::progress::{Aftermath, Stop, terminal_map};
use super::{
    Domain, Execution, ExecutionStatus, NodeRun, NodeRunStatus, Scope, Step, StepState,
    json_column, now, to_json_text,
};
use crate::error::{ExecutorError, ExecutorResult};
use crate::storage::{executions, node_runs, steps};

/// A step this worker holds.
#[derive(Clone, Debug)]
pub struct Claimed {
    pub execution: Execution,
    pub step: Step,
    pub graph: Arc<WorkflowGraph>,
    pub node: NodeSpec,
    /// Outputs of the predecessors whose edges fired, in edge order.
    pub inputs: Vec<Value>,
    /// Outputs of every node that succeeded so far, by node id.
    pub nodes: Map<String, Value>,
    pub trigger: Value,
    /// Set when the step was waiting and is now due: it completes with this
    /// output without running again.
    pub resume_output: Option<Value>,
}

impl Claimed {
    pub fn attempt(&self) -> u32 {
        u32::try_from(self.step.attempt).unwrap_or(1)
    }

    /// Attempts that ended in an error the node reported, which the retry
    /// policy counts; attempts lost with their worker are not among them.
    pub fn reported_attempts(&self) -> u32 {
        u32::try_from(self.step.attempt - self.step.lost_workers).unwrap_or(1)
    }

    pub fn policy(&self) -> RetryPolicy {
        self.node.retry.clone().unwrap_or_default()
    }

    pub fn job(&self) -> Job {
        self.step.job()
    }

    /// The scope a worker acts in for this step: its execution's workspace.
    pub fn scope(&self) -> Scope {
        Scope::Workspace(self.execution.workspace_id)
    }
}

/// Who may take the next step of an execution on right after committing
/// one: a worker of these pools.
#[derive(Clone, Copy, Debug)]
pub struct Continue<'a> {
    pub pools: &'a [String],
    pub owner: &'a str,
}

pub enum ClaimOutcome {
    Claimed(Box<Claimed>),
    /// Nothing to run for this message: acknowledge it.
    Nothing,
    /// Not runnable yet: deliver again at this time.
    Later(DateTime<Utc>),
}

/// What became of a commit.
#[derive(Debug, PartialEq, Eq)]
pub enum Committed {
    Applied,
    /// The worker no longer held the step (or the execution had stopped):
    /// the result was discarded.
    Refused,
}

/// What the commit of a failed attempt decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// Another attempt is scheduled.
    Retried,
    /// The step failed for good; its execution failed.
    Failed,
    /// The step timed out for good; its execution timed out.
    TimedOut,
}

impl Failure {
    pub fn as_str(self) -> &'static str {
        match self {
            Failure::Retried => "retried",
            Failure::Failed => "failed",
            Failure::TimedOut => "timed_out",
        }
    }
}

impl From<Option<Failure>> for Committed {
    /// A failure that was decided was applied; none means it was refused.
    fn from(failure: Option<Failure>) -> Self {
        match failure {
            Some(_) => Committed::Applied,
            None => Committed::Refused,
        }
    }
}

impl Domain {
    /// Takes the step a job names, if it can run now. One transaction: the
    /// execution row is locked first (as every commit does), and the reads
    /// the claim depends on happen under that lock.
    pub async fn claim_step(&self, job: &Job, owner: &str) -> ExecutorResult<ClaimOutcome> {
        let now = now();
        // The job names its workspace: a job whose execution is not there
        // finds nothing.
        let scope = Scope::Workspace(job.workspace_id);
        let mut work = self.begin(scope).await?;
        let Some(execution) = executions::lock(work.tx(), job.execution_id).await? else {
            work.rollback().await?;
            return Ok(ClaimOutcome::Nothing);
        };
        if execution.status.is_terminal() {
            work.rollback().await?;
            return Ok(ClaimOutcome::Nothing);
        }
        if execution.deadline <= now {
            work.rollback().await?;
            self.time_out_execution(scope, execution.id).await?;
            return Ok(ClaimOutcome::Nothing);
        }
        let rows = steps::list_for_execution(work.tx(), execution.id).await?;
        let Some(step) = rows.iter().find(|row| row.node_id == job.node_id).cloned() else {
            work.rollback().await?;
            return Ok(ClaimOutcome::Nothing);
        };
        let state = step.state;
        let lost = match state {
            StepState::Ready | StepState::Waiting if step.available_at > now => {
                work.rollback().await?;
                return Ok(ClaimOutcome::Later(step.available_at));
            }
            StepState::Ready | StepState::Waiting => false,
            // A running step whose lease ran out lost its worker.
            StepState::Running if step.lease_expires_at.is_some_and(|at| at <= now) => true,
            _ => {
                work.rollback().await?;
                return Ok(ClaimOutcome::Nothing);
            }
        };
        // The first step of an execution takes its concurrency slots, or
        // the execution waits, still queued, saying why.
        if execution.status == ExecutionStatus::Queued && self.config().concurrency.enabled {
            let limits = self.limits_of(execution.workspace_id).await;
            if let Slot::Wait(reason) = self.take_slot(&execution, &limits).await {
                if let Some(error) = Domain::waited_too_long(&execution, &limits, now) {
                    let stopped = self
                        .stop_execution(
                            work.tx(),
                            execution.id,
                            Stop {
                                status: ExecutionStatus::TimedOut,
                                error: &error,
                                error_class: Some(ErrorClass::Timeout.as_str()),
                                failed_node_id: None,
                                now,
                            },
                        )
                        .await?;
                    if stopped {
                        work.record(execution.id, ExecutionStatus::TimedOut.into());
                        ::metrics::counter!(crate::metrics::QUEUE_WAIT_TIMEOUTS_TOTAL).increment(1);
                    }
                    self.commit(work).await?;
                    return Ok(ClaimOutcome::Nothing);
                }
                if execution.queue_reason.as_deref() != Some(reason.as_str()) {
                    executions::set_queue_reason(work.tx(), execution.id, Some(&reason)).await?;
                }
                // The broker brings the message back at the recheck; the
                // reconciler need not.
                steps::mark_dispatched(work.tx(), &[step.id], now).await?;
                self.commit(work).await?;
                return Ok(ClaimOutcome::Later(self.recheck_at(now)));
            }
        }
        // An execution starts once it holds its slots, not when its claim
        // began: the slot may have freed only while it waited for it.
        let now = if execution.status == ExecutionStatus::Queued {
            super::now()
        } else {
            now
        };
        let graph = self
            .graph_on(work.tx(), execution.workflow_id, execution.workflow_version)
            .await?;
        let node = graph.node(&step.node_id).cloned().ok_or_else(|| {
            ExecutorError::Internal(format!("step of unknown node {}", step.node_id))
        })?;
        // A lost delivery ends its attempt (the node run is closed as failed)
        // without spending the node's retry budget, which is for errors the
        // node reports; lost deliveries have their own limit.
        let attempt = if lost { step.attempt + 1 } else { step.attempt };
        let lost_workers = step.lost_workers + i32::from(lost);
        let max_deliveries = i32::try_from(self.config().max_deliveries).unwrap_or(i32::MAX);
        let poisoned = lost && lost_workers >= max_deliveries;

        let trigger = json_column(&execution.input)?;
        let (inputs, nodes) = inputs_of(&graph, &step.node_id, &rows, &trigger)?;
        let resume_output = match (state == StepState::Waiting, step.output.as_deref()) {
            (true, Some(text)) => Some(json_column(text)?),
            (true, None) => Some(Value::Null),
            (false, _) => None,
        };

        let previous_attempt = step.attempt;
        let Some(step) = self
            .lease_step(work.tx(), step, attempt, lost_workers, owner, now)
            .await?
        else {
            work.rollback().await?;
            return Ok(ClaimOutcome::Nothing);
        };
        if lost {
            node_runs::finish(
                work.tx(),
                execution.id,
                &step.node_id,
                previous_attempt,
                node_runs::RunEnd {
                    error: Some("the worker running this attempt stopped responding"),
                    error_class: Some(ErrorClass::Transient.as_str()),
                    end_time: Some(now),
                    ..node_runs::RunEnd::new(NodeRunStatus::Failed)
                },
            )
            .await?;
        }
        if execution.status == ExecutionStatus::Queued {
            executions::mark_running(work.tx(), execution.id, now).await?;
        }
        if resume_output.is_none() && !poisoned {
            start_run(work.tx(), &execution, &step, now).await?;
        }
        let mut claimed = Claimed {
            execution,
            step,
            graph,
            node,
            inputs,
            nodes,
            trigger,
            resume_output,
        };
        // A step whose deliveries crash or stall their worker every time is
        // poison: after `max_deliveries` of them it goes to the dead-letter
        // queue instead of taking down worker after worker.
        if poisoned {
            let error = NodeError::permanent(format!(
                "delivered {lost_workers} times, and each time the worker running it \
                 stopped responding before a result (max_deliveries = {max_deliveries})"
            ));
            claimed.step.attempt = attempt - 1;
            if let Some((aftermath, _)) =
                self.apply_failure(work.tx(), &claimed, error, now).await?
            {
                work.record(claimed.execution.id, aftermath);
            }
            self.commit(work).await?;
            ::metrics::counter!(crate::metrics::POISON_STEPS_TOTAL, "pool" => claimed.step.pool.clone())
                .increment(1);
            return Ok(ClaimOutcome::Nothing);
        }
        self.commit(work).await?;
        Ok(ClaimOutcome::Claimed(Box::new(claimed)))
    }

    /// Claims `step` for `owner` as `attempt` (with `lost_workers` lost
    /// deliveries behind it) under a new lease and the next fencing number;
    /// the row as the claim leaves it, or `None` when someone changed it
    /// first.
    async fn lease_step<S: Session>(
        &self,
        db: &S,
        step: Step,
        attempt: i32,
        lost_workers: i32,
        owner: &str,
        now: DateTime<Utc>,
    ) -> ExecutorResult<Option<Step>> {
        let lease_expires_at = now + self.lease_duration();
        let taken = steps::claim(
            db,
            steps::Claim {
                step_id: step.id,
                expected_state: step.state,
                expected_fencing: step.fencing,
                attempt,
                lost_workers,
                lease_owner: owner.to_owned(),
                lease_expires_at,
                now,
            },
        )
        .await?;
        Ok(taken.then(|| Step {
            state: StepState::Running,
            attempt,
            lost_workers,
            fencing: step.fencing + 1,
            lease_owner: Some(owner.to_owned()),
            lease_expires_at: Some(lease_expires_at),
            start_time: Some(now),
            ..step
        }))
    }

    /// Extends the lease of a running step; false when the worker no longer
    /// holds it or its execution stopped, so it must abandon the node. A
    /// write like any other: on SQLite it queues with the other writers
    /// instead of racing them for the file's lock.
    pub async fn renew_lease(&self, claimed: &Claimed) -> ExecutorResult<bool> {
        let expires = now() + self.lease_duration();
        let work = self.begin(claimed.scope()).await?;
        let renewed =
            steps::renew_lease(work.tx(), claimed.step.id, claimed.step.fencing, expires).await?;
        self.commit(work).await?;
        Ok(renewed)
    }

    /// Commits a node's output and moves the execution forward; and, when
    /// `next` is given and the commit readies a step of one of its pools,
    /// claims that step for the same worker in the same transaction: the worker runs it at once, without a
    /// queue round trip or a claim transaction of its own. Other readied
    /// steps are dispatched as usual. A worker that dies holding the taken
    /// step loses it like any claimed step: its lease runs out and the
    /// reconciler dispatches it again.
    pub async fn commit_success_and_continue(
        &self,
        claimed: &Claimed,
        output: Value,
        port: String,
        usage: Option<LlmUsage>,
        next: Option<Continue<'_>>,
    ) -> ExecutorResult<(Committed, Option<Box<Claimed>>)> {
        let now = now();
        let mut work = self.begin(claimed.scope()).await?;
        let Some(execution) = self.lock_active(work.tx(), claimed.execution.id).await? else {
            work.rollback().await?;
            return Ok((self.refused(), None));
        };
        let depth = super::json_depth(&output);
        let limit = self.config().max_json_depth;
        if depth > limit {
            let error = NodeError::permanent(format!(
                "the node's output nests {depth} levels of arrays and objects, more than the \
                 {limit} a stored value may (max_json_depth)"
            ));
            return Ok((
                self.finish_failure(work, claimed, error, now).await?.into(),
                None,
            ));
        }
        let output_text = to_json_text(&output);
        let data_bytes = execution
            .data_bytes
            .saturating_add(i64::try_from(output_text.len()).unwrap_or(i64::MAX));
        let cap = self.config().max_execution_data_bytes;
        if data_bytes > i64::try_from(cap).unwrap_or(i64::MAX) {
            let error = NodeError::permanent(format!(
                "the execution's data would reach {data_bytes} bytes, over the execution data \
                 cap of {cap} bytes (max_execution_data_bytes)"
            ));
            return Ok((
                self.finish_failure(work, claimed, error, now).await?.into(),
                None,
            ));
        }
        let moved = steps::transition_held(
            work.tx(),
            claimed.step.id,
            claimed.step.fencing,
            steps::Transition {
                state: StepState::Succeeded,
                attempt: claimed.step.attempt,
                available_at: claimed.step.available_at,
                output: Some(&output_text),
                port: Some(&port),
                error: None,
                error_class: None,
                end_time: Some(now),
                dispatched_at: claimed.step.dispatched_at,
            },
        )
        .await?;
        if !moved {
            work.rollback().await?;
            return Ok((self.refused(), None));
        }
        let (llm_model, prompt_tokens, completion_tokens, total_tokens) = match &usage {
            Some(usage) => (
                Some(usage.model.as_str()),
                Some(usage.prompt_tokens as i64),
                Some(usage.completion_tokens as i64),
                Some(usage.total_tokens as i64),
            ),
            None => (None, None, None, None),
        };
        node_runs::finish(
            work.tx(),
            execution.id,
            &claimed.step.node_id,
            claimed.step.attempt,
            node_runs::RunEnd {
                output: Some(&output_text),
                port: Some(&port),
                end_time: Some(now),
                llm_model,
                prompt_tokens,
                completion_tokens,
                total_tokens,
                ..node_runs::RunEnd::new(NodeRunStatus::Succeeded)
            },
        )
        .await?;
        executions::set_data_bytes(work.tx(), execution.id, data_bytes).await?;
        self.count_task(work.tx(), execution.workspace_id, now)
            .await?;
        self.meter_success(
            work.tx(),
            &execution,
            &claimed.step.node_id,
            usage.as_ref(),
            now,
        )
        .await?;
        let mut aftermath = self
            .advance_execution(work.tx(), &execution, &claimed.graph, now)
            .await?;
        let continued = match next {
            Some(next) if aftermath.finished.is_none() && execution.deadline > now => {
                let execution = Execution {
                    data_bytes,
                    ..execution
                };
                self.take_next(work.tx(), execution, claimed, &mut aftermath, next, now)
                    .await?
            }
            _ => None,
        };
        work.record(claimed.execution.id, aftermath);
        self.commit(work).await?;
        Ok((Committed::Applied, continued))
    }

    /// Claims, inside the committing transaction, one step the commit made
    /// ready now in a pool of `next`; the rest stay in `aftermath.jobs`.
    async fn take_next<S: Session>(
        &self,
        db: &S,
        execution: Execution,
        previous: &Claimed,
        aftermath: &mut Aftermath,
        next: Continue<'_>,
        now: DateTime<Utc>,
    ) -> ExecutorResult<Option<Box<Claimed>>> {
        let Some(index) = aftermath
            .jobs
            .iter()
            .position(|(job, at)| at.is_none() && next.pools.contains(&job.pool))
        else {
            return Ok(None);
        };
        let node_id = aftermath.jobs[index].0.node_id.clone();
        let Some(step) = aftermath
            .steps
            .iter()
            .find(|row| row.node_id == node_id)
            .cloned()
        else {
            return Ok(None);
        };
        let Some(node) = previous.graph.node(&node_id).cloned() else {
            return Ok(None);
        };
        let (attempt, lost_workers) = (step.attempt, step.lost_workers);
        let Some(step) = self
            .lease_step(db, step, attempt, lost_workers, next.owner, now)
            .await?
        else {
            return Ok(None);
        };
        aftermath.jobs.remove(index);
        let (inputs, nodes) = inputs_of(
            &previous.graph,
            &node_id,
            &aftermath.steps,
            &previous.trigger,
        )?;
        start_run(db, &execution, &step, now).await?;
        Ok(Some(Box::new(Claimed {
            execution,
            step,
            graph: previous.graph.clone(),
            node,
            inputs,
            nodes,
            trigger: previous.trigger.clone(),
            resume_output: None,
        })))
    }

    /// Parks a step until `until` (a `delay` node); it then completes with
    /// `output` without running again.
    pub async fn commit_wait(
        &self,
        claimed: &Claimed,
        until: DateTime<Utc>,
        output: Value,
    ) -> ExecutorResult<Committed> {
        let now = now();
        let until = crate::storage::truncate(until.max(now));
        let mut work = self.begin(claimed.scope()).await?;
        if self
            .lock_active(work.tx(), claimed.execution.id)
            .await?
            .is_none()
        {
            work.rollback().await?;
            return Ok(self.refused());
        }
        let output_text = to_json_text(&output);
        let moved = steps::transition_held(
            work.tx(),
            claimed.step.id,
            claimed.step.fencing,
            steps::Transition {
                state: StepState::Waiting,
                attempt: claimed.step.attempt,
                available_at: until,
                output: Some(&output_text),
                port: Some(tyboo_engine::MAIN_PORT),
                error: None,
                error_class: None,
                end_time: None,
                dispatched_at: Some(now),
            },
        )
        .await?;
        if !moved {
            work.rollback().await?;
            return Ok(self.refused());
        }
        node_runs::finish(
            work.tx(),
            claimed.execution.id,
            &claimed.step.node_id,
            claimed.step.attempt,
            node_runs::RunEnd {
                output: Some(&output_text),
                port: Some(tyboo_engine::MAIN_PORT),
                resume_time: Some(until),
                ..node_runs::RunEnd::new(NodeRunStatus::Waiting)
            },
        )
        .await?;
        work.dispatch(claimed.job(), Some(until));
        self.commit(work).await?;
        Ok(Committed::Applied)
    }

    /// Hands a held step back without spending an attempt, for a worker that
    /// shuts down before its node finished; another worker takes it at once.
    pub async fn release_step(&self, claimed: &Claimed) -> ExecutorResult<()> {
        let now = now();
        let mut work = self.begin(claimed.scope()).await?;
        executions::lock(work.tx(), claimed.execution.id).await?;
        let moved = steps::transition_held(
            work.tx(),
            claimed.step.id,
            claimed.step.fencing,
            steps::Transition {
                state: StepState::Ready,
                attempt: claimed.step.attempt,
                available_at: now,
                output: None,
                port: None,
                error: None,
                error_class: None,
                end_time: None,
                dispatched_at: Some(now),
            },
        )
        .await?;
        if moved {
            node_runs::finish(
                work.tx(),
                claimed.execution.id,
                &claimed.step.node_id,
                claimed.step.attempt,
                node_runs::RunEnd {
                    error: Some("the worker shut down; the step was handed back"),
                    end_time: Some(now),
                    ..node_runs::RunEnd::new(NodeRunStatus::Cancelled)
                },
            )
            .await?;
            work.dispatch(claimed.job(), None);
        }
        self.commit(work).await?;
        Ok(())
    }

    /// The execution, locked, if it can still change.
    pub(crate) async fn lock_active<S: Session>(
        &self,
        db: &S,
        execution_id: Uuid,
    ) -> ExecutorResult<Option<Execution>> {
        Ok(executions::lock(db, execution_id)
            .await?
            .filter(|row| !row.status.is_terminal()))
    }

    pub(crate) fn refused(&self) -> Committed {
        ::metrics::counter!(crate::metrics::STALE_COMMITS_TOTAL).increment(1);
        Committed::Refused
    }

    pub(crate) fn lease_duration(&self) -> chrono::Duration {
        chrono::Duration::milliseconds(
            i64::try_from(self.config().lease_duration_ms).unwrap_or(i64::MAX / 2),
        )
    }
}

/// Records the start of the attempt a claim took `step` for.
async fn start_run<S: Session>(
    db: &S,
    execution: &Execution,
    step: &Step,
    now: DateTime<Utc>,
) -> ExecutorResult<()> {
    let run = NodeRun {
        id: Uuid::now_v7(),
        workspace_id: execution.workspace_id,
        execution_id: execution.id,
        node_id: step.node_id.clone(),
        attempt: step.attempt,
        status: NodeRunStatus::Running,
        // Read back from the predecessors' outputs when shown (see
        // `StoredOutputs`): a second copy of every input would double what
        // an execution stores.
        input: DERIVED_INPUT.to_owned(),
        output: None,
        port: None,
        error: None,
        error_class: None,
        start_time: now,
        end_time: None,
        resume_time: None,
        llm_model: None,
        prompt_tokens: None,
        completion_tokens: None,
        total_tokens: None,
    };
    node_runs::record_start(db, &run).await?;
    Ok(())
}

/// The inputs of `node_id` (outputs of the predecessors whose edges fired, in
/// edge order) and the outputs of every succeeded node, by id. `trigger` is
/// the execution's input: the trigger's output, which is kept once, in the
/// execution's row (see [`StoredOutputs`]).
pub fn inputs_of(
    graph: &WorkflowGraph,
    node_id: &str,
    rows: &[Step],
    trigger: &Value,
) -> ExecutorResult<(Vec<Value>, Map<String, Value>)> {
    let outputs = StoredOutputs::read(rows, trigger)?;
    let inputs = outputs.inputs_of(graph, node_id);
    Ok((inputs, outputs.nodes))
}

/// What an execution's steps hold, read once. A succeeded step stores its
/// output, except the trigger: its output is the execution's input, which
/// the execution's row already holds, so the step keeps none. A node run
/// stores no input either ([`DERIVED_INPUT`]): its inputs are the outputs of
/// its predecessors, which every predecessor has settled before the node
/// may run and which never change after, so they are read back from the
/// steps when the run is shown.
pub struct StoredOutputs {
    terminal: std::collections::HashMap<String, tyboo_engine::Terminal>,
    pub nodes: Map<String, Value>,
}

impl StoredOutputs {
    pub fn read(rows: &[Step], trigger: &Value) -> ExecutorResult<StoredOutputs> {
        let terminal = terminal_map(rows);
        let mut nodes = Map::new();
        for row in rows {
            if row.state == StepState::Succeeded {
                let output = match row.output.as_deref() {
                    Some(text) => json_column(text)?,
                    None => trigger.clone(),
                };
                nodes.insert(row.node_id.clone(), output);
            }
        }
        Ok(StoredOutputs { terminal, nodes })
    }

    /// The inputs of `node_id`: the outputs of the predecessors whose edges
    /// fired, in edge order.
    pub fn inputs_of(&self, graph: &WorkflowGraph, node_id: &str) -> Vec<Value> {
        tyboo_engine::fired_sources(graph, node_id, &self.terminal)
            .into_iter()
            .map(|source| self.nodes.get(source).cloned().unwrap_or(Value::Null))
            .collect()
    }
}

/// The `input` of a node run recorded without a copy of its inputs.
pub const DERIVED_INPUT: &str = "";

/// A step's stored output as text: a succeeded step without one is the
/// trigger, whose output is the execution's input.
pub fn output_text<'row>(row: &'row Step, execution: &'row Execution) -> Option<&'row str> {
    match row.output.as_deref() {
        Some(text) => Some(text),
        None if row.state == StepState::Succeeded => Some(&execution.input),
        None => None,
    }
}
