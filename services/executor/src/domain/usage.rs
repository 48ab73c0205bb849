//! Usage, as the outbox holds it: each execution admitted and each
//! successful run of a node that is not a trigger (a task, counted once per
//! execution and node), with the tokens of LLM calls. Rows are written in
//! the transaction of the work they count, so a crash loses neither or
//! both; the delivery hands them to metering, which counts each idempotency
//! key once however often it arrives.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tyboo_engine::LlmUsage;
use uuid::Uuid;

use super::Domain;
use super::model::Execution;
use crate::error::{ExecutorError, ExecutorResult};
use crate::storage::entities::usage_outbox;
use crate::storage::{Scope, Session, usage_outbox as outbox};

/// Delivery reads and deletes the rows of every workspace.
const DELIVERY: Scope = Scope::System("usage delivery");

/// Where the outbox is delivered: metering's ingest service.
#[async_trait]
pub trait UsageSink: Send + Sync + std::fmt::Debug {
    /// Records `rows`; Ok once metering holds every one of them.
    async fn deliver(&self, rows: &[usage_outbox::Model]) -> Result<(), DeliveryError>;
}

/// Why a batch was not recorded.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// Metering is down or did not answer: the batch goes again later.
    #[error("metering unavailable: {0}")]
    Unavailable(String),
    /// Metering refused the batch as invalid; it never will take it.
    #[error("metering refused the batch: {0}")]
    Refused(String),
}

/// Metering's bounds on what an API reports about itself.
const MAX_MODEL_CHARS: usize = 200;
const MAX_HOST_CHARS: usize = 253;

/// `text` cut to `max` bytes at a character boundary: a model name an API
/// invents at any length is still metered.
fn bounded(text: &str, max: usize) -> String {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

pub const EXECUTION: &str = "execution";
pub const TASK: &str = "task";
pub const LLM_CALL: &str = "llm_call";

fn row(
    execution: &Execution,
    kind: &str,
    key: String,
    node_id: &str,
    at: DateTime<Utc>,
) -> usage_outbox::Model {
    usage_outbox::Model {
        id: Uuid::now_v7(),
        workspace_id: execution.workspace_id,
        idempotency_key: key,
        kind: kind.to_owned(),
        workflow_id: execution.workflow_id,
        execution_id: execution.id,
        node_id: node_id.to_owned(),
        occurred_at: at,
        provider_host: String::new(),
        model: String::new(),
        input_tokens: 0,
        output_tokens: 0,
    }
}

impl Domain {
    fn metered(&self) -> bool {
        self.config().usage.enabled
    }

    /// The execution, counted once: written with its row.
    pub(crate) async fn meter_execution<S: Session>(
        &self,
        db: &S,
        execution: &Execution,
    ) -> ExecutorResult<()> {
        if !self.metered() {
            return Ok(());
        }
        let key = format!("execution:{}", execution.id);
        outbox::insert(
            db,
            vec![row(execution, EXECUTION, key, "", execution.create_time)],
        )
        .await?;
        Ok(())
    }

    /// A node run that succeeded: one task, and its LLM call if it made
    /// one. Written in the commit that moves its step to succeeded, which
    /// happens once per execution and node whatever retries and lost
    /// workers came before.
    pub(crate) async fn meter_success<S: Session>(
        &self,
        db: &S,
        execution: &Execution,
        node_id: &str,
        usage: Option<&LlmUsage>,
        at: DateTime<Utc>,
    ) -> ExecutorResult<()> {
        if !self.metered() {
            return Ok(());
        }
        let mut rows = vec![row(
            execution,
            TASK,
            format!("task:{}:{node_id}", execution.id),
            node_id,
            at,
        )];
        if let Some(usage) = usage {
            rows.push(usage_outbox::Model {
                provider_host: bounded(&usage.provider_host, MAX_HOST_CHARS),
                model: bounded(&usage.model, MAX_MODEL_CHARS),
                input_tokens: i64::try_from(usage.prompt_tokens).unwrap_or(i64::MAX),
                output_tokens: i64::try_from(usage.completion_tokens).unwrap_or(i64::MAX),
                ..row(
                    execution,
                    LLM_CALL,
                    format!("llm:{}:{node_id}", execution.id),
                    node_id,
                    at,
                )
            });
        }
        outbox::insert(db, rows).await?;
        Ok(())
    }

    /// Delivers the oldest batch of the outbox to `sink` and deletes it once
    /// acknowledged; answers how many rows went. A failed delivery leaves
    /// the rows for the next attempt.
    pub async fn deliver_usage(&self, sink: &Arc<dyn UsageSink>) -> ExecutorResult<usize> {
        let limit = u64::from(self.config().usage.batch_size);
        let rows = outbox::oldest(&self.read(DELIVERY), limit).await?;
        if rows.is_empty() {
            return Ok(0);
        }
        let ids: Vec<Uuid> = match sink.deliver(&rows).await {
            Ok(()) => rows.iter().map(|row| row.id).collect(),
            Err(DeliveryError::Unavailable(message)) => {
                return Err(ExecutorError::Unavailable(message));
            }
            // A row metering can never take must not hold back the rows
            // behind it: each goes alone, and only the refused one is set
            // aside (logged with its key, counted), never the others.
            Err(DeliveryError::Refused(message)) => {
                tracing::warn!(%message, "metering refused a usage batch; delivering its rows one by one");
                let mut done = Vec::with_capacity(rows.len());
                for row in &rows {
                    match sink.deliver(std::slice::from_ref(row)).await {
                        Ok(()) => done.push(row.id),
                        Err(DeliveryError::Refused(message)) => {
                            tracing::error!(
                                key = %row.idempotency_key,
                                workspace_id = %row.workspace_id,
                                %message,
                                "metering refused a usage event; it is dropped from the outbox"
                            );
                            ::metrics::counter!(crate::metrics::USAGE_REFUSED_TOTAL).increment(1);
                            done.push(row.id);
                        }
                        Err(DeliveryError::Unavailable(_)) => break,
                    }
                }
                done
            }
        };
        if ids.is_empty() {
            return Err(ExecutorError::Unavailable(
                "metering went away during a delivery".to_owned(),
            ));
        }
        let tx = self.store().write(DELIVERY).await?;
        outbox::delete(&tx, &ids).await?;
        tx.commit().await?;
        Ok(ids.len())
    }

    /// Rows metering has not acknowledged yet.
    pub async fn pending_usage(&self) -> ExecutorResult<u64> {
        Ok(outbox::count(&self.read(DELIVERY)).await?)
    }
}
