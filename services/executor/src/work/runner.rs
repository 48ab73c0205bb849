//! Running one delivered job: claim the step, run its node while renewing
//! the lease and listening for cancellation, commit the outcome, and only
//! then acknowledge the message.

use std::time::{Duration, Instant};

use tokio::sync::watch;
use tyboo_broker::Delivery;
use tyboo_engine::{NodeContext, NodeError, NodeOutcome};
use tyboo_runtime::shutdown::Shutdown;

use crate::domain::credentials::PlaintextContext;
use crate::domain::steps::{ClaimOutcome, Claimed, Committed, Continue};
use crate::domain::{Domain, now};
use crate::error::ExecutorResult;

/// How long a job waits before it is offered again after the database could
/// not be reached.
const RETRY_AFTER_STORE_ERROR: Duration = Duration::from_secs(1);

/// Why a node stopped before it produced an outcome.
enum Interruption {
    /// The execution was cancelled or timed out, or the step was taken over.
    Stopped,
    /// The execution passed its deadline while the node ran.
    Deadline,
    /// The worker is shutting down and its grace period is over.
    Shutdown,
}

pub(super) async fn handle_delivery(
    domain: &Domain,
    delivery: Delivery,
    worker: &WorkerIdentity,
    abort: watch::Receiver<bool>,
) {
    let dispatch = domain.dispatch().clone();
    let outcome = run(domain, &delivery, worker, abort.clone()).await;
    let (result, mut next) = match outcome {
        Ok(Ran::Again(not_before)) => (dispatch.release(&delivery, not_before).await, None),
        Ok(Ran::Done(next)) => (dispatch.ack(&delivery).await, next),
        Err(error) => {
            tracing::warn!(%error, execution_id = %delivery.job.execution_id, node_id = %delivery.job.node_id, "step failed to run; offering it again");
            let later =
                now() + chrono::Duration::from_std(RETRY_AFTER_STORE_ERROR).unwrap_or_default();
            (dispatch.release(&delivery, Some(later)).await, None)
        }
    };
    if let Err(error) = result {
        // Unacknowledged deliveries come back after the visibility timeout.
        tracing::warn!(%error, "acknowledging a delivery failed");
    }
    // Steps the commits readied for this worker's pools run here at once,
    // one after another, on the same slot, up to the configured number in a
    // row; then the next one goes through the queue.
    let mut in_a_row = 0;
    while let Some(claimed) = next.take() {
        in_a_row += 1;
        match run_claimed(domain, &claimed, worker.follow(in_a_row), abort.clone()).await {
            Ok(following) => next = following,
            Err(error) => {
                tracing::warn!(%error, execution_id = %claimed.execution.id, node_id = %claimed.step.node_id, "step failed to commit; handing it back");
                if let Err(error) = domain.release_step(&claimed).await {
                    // Its lease runs out and the reconciler dispatches it.
                    tracing::warn!(%error, "handing a step back failed");
                }
            }
        }
    }
}

/// The worker a job runs on: its consumer name, the pools it serves, how
/// many steps of one execution it takes on in a row, and whether it still
/// takes work.
pub(super) struct WorkerIdentity {
    pub consumer: String,
    pub pools: Vec<String>,
    pub steps_in_a_row: u32,
    pub shutdown: Shutdown,
}

impl WorkerIdentity {
    /// Whether, and as whom, this worker takes the next step of an execution
    /// right after committing one, having taken `taken` on in a row already:
    /// not past `steps_in_a_row`, and not once it is shutting down.
    fn follow(&self, taken: u32) -> Option<Continue<'_>> {
        (taken < self.steps_in_a_row && !self.shutdown.is_triggered()).then_some(Continue {
            pools: &self.pools,
            owner: &self.consumer,
        })
    }
}

/// What became of a delivered job.
enum Ran {
    /// Deliver the message again (at this time, or at once).
    Again(Option<chrono::DateTime<chrono::Utc>>),
    /// Done with the message; maybe with the execution's next step claimed
    /// for this worker.
    Done(Option<Box<Claimed>>),
}

async fn run(
    domain: &Domain,
    delivery: &Delivery,
    worker: &WorkerIdentity,
    abort: watch::Receiver<bool>,
) -> ExecutorResult<Ran> {
    let claimed = match domain.claim_step(&delivery.job, &worker.consumer).await? {
        ClaimOutcome::Nothing => return Ok(Ran::Done(None)),
        ClaimOutcome::Later(at) => return Ok(Ran::Again(Some(at))),
        ClaimOutcome::Claimed(claimed) => claimed,
    };
    run_claimed(domain, &claimed, worker.follow(0), abort)
        .await
        .map(Ran::Done)
}

/// Runs a claimed step's node and commits its outcome; returns the next step
/// when the commit took one on for this worker.
async fn run_claimed(
    domain: &Domain,
    claimed: &Claimed,
    follow: Option<Continue<'_>>,
    abort: watch::Receiver<bool>,
) -> ExecutorResult<Option<Box<Claimed>>> {
    if let Some(output) = claimed.resume_output.clone() {
        let (_, next) = domain
            .commit_success_and_continue(
                claimed,
                output,
                tyboo_engine::MAIN_PORT.to_owned(),
                None,
                follow,
            )
            .await?;
        record(claimed, "succeeded", None);
        return Ok(next);
    }
    let started = Instant::now();
    let execution_id = claimed.execution.id;
    let result = run_node(domain, claimed, abort).await;
    domain.cancellations().release(execution_id);
    let elapsed = started.elapsed();
    let mut next = None;
    let (status, committed) = match result {
        Ok(Ok(NodeOutcome::Completed {
            port,
            output,
            usage,
        })) => {
            let (committed, following) = domain
                .commit_success_and_continue(claimed, output, port, usage, follow)
                .await?;
            next = following;
            ("succeeded", committed)
        }
        Ok(Ok(NodeOutcome::Wait { until, output })) => {
            ("waiting", domain.commit_wait(claimed, until, output).await?)
        }
        Ok(Err(NodeError {
            park_until: Some(until),
            message,
            ..
        })) => (
            "parked",
            domain.commit_parked(claimed, until, &message).await?,
        ),
        Ok(Err(error)) => match domain.commit_failure(claimed, error).await? {
            Some(failure) => (failure.as_str(), Committed::Applied),
            None => ("cancelled", Committed::Refused),
        },
        Err(Interruption::Stopped) => ("cancelled", Committed::Refused),
        Err(Interruption::Deadline) => {
            domain
                .time_out_execution(claimed.scope(), execution_id)
                .await?;
            ("timed_out", Committed::Refused)
        }
        Err(Interruption::Shutdown) => {
            domain.release_step(claimed).await?;
            ("released", Committed::Refused)
        }
    };
    let status = if committed == Committed::Refused && status != "released" {
        "cancelled"
    } else {
        status
    };
    record(claimed, status, Some(elapsed));
    Ok(next)
}

/// Runs the node until it finishes, or until the execution stops, the lease
/// is lost, the deadline passes or the worker must shut down.
async fn run_node(
    domain: &Domain,
    claimed: &Claimed,
    mut abort: watch::Receiver<bool>,
) -> Result<Result<NodeOutcome, NodeError>, Interruption> {
    let mut context = NodeContext {
        execution_id: claimed.execution.id,
        workflow_id: claimed.execution.workflow_id,
        workflow_version: claimed.execution.workflow_version,
        workspace_id: claimed.execution.workspace_id,
        node_id: claimed.step.node_id.clone(),
        attempt: claimed.attempt(),
        idempotency_key: format!("{}:{}", claimed.execution.id, claimed.step.node_id),
        trigger: claimed.trigger.clone(),
        nodes: claimed.nodes.clone(),
        inputs: claimed.inputs.clone(),
        credential: None,
    };
    // Decrypted only now, for this run, and only once the node's URL is known
    // to be one it may reach with this credential: a call that could never be
    // sent decrypts (and audits) nothing. The plaintext lives in the guarded
    // context below and is zeroized when it drops, however the run ends.
    match (&claimed.node.credential_id, domain.vault()) {
        (Some(credential_id), Some(vault)) => {
            let hosts = match vault
                .allowed_hosts(claimed.execution.workspace_id, credential_id)
                .await
            {
                Ok(Some(hosts)) => hosts,
                Ok(None) => {
                    return Ok(Err(NodeError::permanent(format!(
                        "node `{}`: credential `{credential_id}`: credential not found",
                        claimed.step.node_id
                    ))));
                }
                Err(error) => return Ok(Err(error)),
            };
            if let Err(error) = domain
                .engine()
                .preflight(&claimed.node, &context, &hosts)
                .await
            {
                return Ok(Err(error));
            }
            match vault
                .decrypt(
                    claimed.execution.workspace_id,
                    credential_id,
                    claimed.execution.id,
                    &claimed.step.node_id,
                )
                .await
            {
                Ok(credential) => context.credential = Some(credential),
                Err(error) => return Ok(Err(error)),
            }
        }
        (Some(credential_id), None) => {
            return Ok(Err(NodeError::permanent(format!(
                "node `{}`: credential `{credential_id}` cannot be used: no vault is configured",
                claimed.step.node_id
            ))));
        }
        (None, _) => {}
    }
    let context = PlaintextContext::new(context);
    let mut cancelled = domain.cancellations().listen(claimed.execution.id);
    let until_deadline = (claimed.execution.deadline - now())
        .to_std()
        .unwrap_or(Duration::ZERO);
    tokio::select! {
        outcome = domain.engine().run_node_guarded(&claimed.node, context.context(), domain.breakers()) => Ok(outcome),
        _ = cancelled.wait_for(|stopped| *stopped) => Err(Interruption::Stopped),
        () = keep_lease(domain, claimed) => Err(Interruption::Stopped),
        () = tokio::time::sleep(until_deadline) => Err(Interruption::Deadline),
        _ = abort.wait_for(|aborted| *aborted) => Err(Interruption::Shutdown),
    }
}

/// Renews the lease every heartbeat; returns when the step is no longer this
/// worker's (cancelled or timed out by another process, or taken over).
async fn keep_lease(domain: &Domain, claimed: &Claimed) {
    let every = Duration::from_millis(domain.config().heartbeat_interval_ms);
    loop {
        tokio::time::sleep(every).await;
        match domain.renew_lease(claimed).await {
            Ok(true) => {}
            Ok(false) => return,
            // A database hiccup is not a lost lease; the next beat decides.
            Err(error) => tracing::warn!(%error, "renewing a step lease failed"),
        }
    }
}

fn record(claimed: &Claimed, status: &'static str, elapsed: Option<Duration>) {
    let pool = claimed.step.pool.clone();
    ::metrics::counter!(
        crate::metrics::STEPS_RUN_TOTAL,
        "pool" => pool.clone(),
        "status" => status
    )
    .increment(1);
    if let Some(elapsed) = elapsed {
        ::metrics::histogram!(crate::metrics::STEP_DURATION_SECONDS, "pool" => pool)
            .record(elapsed.as_secs_f64());
    }
}
