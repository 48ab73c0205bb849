//! Running one delivered job: claim the step, run its node while renewing
//! the lease and listening for cancellation, commit the outcome, and only
//! then acknowledge the message.

use std::time::{Duration, Instant};

use tokio::sync::watch;
use tyboo_broker::Delivery;
use tyboo_engine::{NodeContext, NodeError, NodeOutcome};

use crate::domain::credentials::PlaintextContext;
use crate::domain::steps::{ClaimOutcome, Claimed, Committed};
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
    owner: &str,
    abort: watch::Receiver<bool>,
) {
    let dispatch = domain.dispatch().clone();
    let outcome = run(domain, &delivery, owner, abort).await;
    let result = match outcome {
        Ok(Some(not_before)) => dispatch.release(&delivery, not_before).await,
        Ok(None) => dispatch.ack(&delivery).await,
        Err(error) => {
            tracing::warn!(%error, execution_id = %delivery.job.execution_id, node_id = %delivery.job.node_id, "step failed to run; offering it again");
            let later =
                now() + chrono::Duration::from_std(RETRY_AFTER_STORE_ERROR).unwrap_or_default();
            dispatch.release(&delivery, Some(later)).await
        }
    };
    if let Err(error) = result {
        // Unacknowledged deliveries come back after the visibility timeout.
        tracing::warn!(%error, "acknowledging a delivery failed");
    }
}

/// Runs the job; `Ok(Some(at))` asks for the message back (at `at`, or at
/// once), `Ok(None)` means it is done with.
async fn run(
    domain: &Domain,
    delivery: &Delivery,
    owner: &str,
    abort: watch::Receiver<bool>,
) -> ExecutorResult<Option<Option<chrono::DateTime<chrono::Utc>>>> {
    let claimed = match domain.claim_step(&delivery.job, owner).await? {
        ClaimOutcome::Nothing => return Ok(None),
        ClaimOutcome::Later(at) => return Ok(Some(Some(at))),
        ClaimOutcome::Claimed(claimed) => claimed,
    };
    if let Some(output) = claimed.resume_output.clone() {
        domain
            .commit_success(&claimed, output, tyboo_engine::MAIN_PORT.to_owned(), None)
            .await?;
        record(&claimed, "succeeded", None);
        return Ok(None);
    }
    let started = Instant::now();
    let execution_id = claimed.execution.id;
    let result = run_node(domain, &claimed, abort).await;
    domain.cancellations().release(execution_id);
    let elapsed = started.elapsed();
    let (status, committed) = match result {
        Ok(Ok(NodeOutcome::Completed {
            port,
            output,
            usage,
        })) => (
            "succeeded",
            domain.commit_success(&claimed, output, port, usage).await?,
        ),
        Ok(Ok(NodeOutcome::Wait { until, output })) => (
            "waiting",
            domain.commit_wait(&claimed, until, output).await?,
        ),
        Ok(Err(error)) => {
            let status = if error.class.is_retryable()
                && claimed.attempt() < claimed.policy().max_attempts
            {
                "retried"
            } else if error.class == tyboo_engine::ErrorClass::Timeout {
                "timed_out"
            } else {
                "failed"
            };
            (status, domain.commit_failure(&claimed, error).await?)
        }
        Err(Interruption::Stopped) => ("cancelled", Committed::Refused),
        Err(Interruption::Deadline) => {
            domain.time_out_execution(execution_id).await?;
            ("timed_out", Committed::Refused)
        }
        Err(Interruption::Shutdown) => {
            domain.release_step(&claimed).await?;
            ("released", Committed::Refused)
        }
    };
    let status = if committed == Committed::Refused && status != "released" {
        "cancelled"
    } else {
        status
    };
    record(&claimed, status, Some(elapsed));
    Ok(None)
}

/// Runs the node until it finishes, or until the execution stops, the lease
/// is lost, the deadline passes or the worker must shut down.
async fn run_node(
    domain: &Domain,
    claimed: &Claimed,
    mut abort: watch::Receiver<bool>,
) -> Result<Result<NodeOutcome, NodeError>, Interruption> {
    // Decrypted only now, for this run; the plaintext lives in the guarded
    // context below and is zeroized when it drops, however the run ends.
    let credential = match (&claimed.node.credential_id, domain.vault()) {
        (Some(credential_id), Some(vault)) => {
            match vault
                .decrypt(
                    claimed.execution.workspace_id,
                    credential_id,
                    claimed.execution.id,
                    &claimed.step.node_id,
                )
                .await
            {
                Ok(credential) => Some(credential),
                Err(error) => return Ok(Err(error)),
            }
        }
        (Some(credential_id), None) => {
            return Ok(Err(NodeError::permanent(format!(
                "node `{}`: credential `{credential_id}` cannot be used: no vault is configured",
                claimed.step.node_id
            ))));
        }
        (None, _) => None,
    };
    let context = PlaintextContext::new(NodeContext {
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
        credential,
    });
    let mut cancelled = domain.cancellations().listen(claimed.execution.id);
    let until_deadline = (claimed.execution.deadline - now())
        .to_std()
        .unwrap_or(Duration::ZERO);
    tokio::select! {
        outcome = domain.engine().run_node(&claimed.node, context.context()) => Ok(outcome),
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
