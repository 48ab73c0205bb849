//! Reading the ledger: a month's totals and breakdowns, its rows a page at
//! a time, and all of them as a stream.

use futures::Stream;
use tyboo_runtime::pagination::{decode_id_token, next_token, page_size};
use tyboo_store::Scope;
use uuid::Uuid;

use super::Domain;
use super::month::Month;
use crate::error::{MeteringError, MeteringResult};
use crate::storage::entities::usage_event;
use crate::storage::events::{self, DaySums, ModelSums, Sums, WorkflowSums};
use crate::storage::now;

/// A workspace's month.
#[derive(Debug)]
pub struct UsageReport {
    pub workspace_id: Uuid,
    pub month: Month,
    pub totals: Sums,
    pub by_workflow: Vec<WorkflowSums>,
    pub by_model: Vec<ModelSums>,
    pub by_day: Vec<DaySums>,
    /// A breakdown had more rows than `max_breakdown_rows`.
    pub truncated: bool,
}

impl Domain {
    /// The month's totals (the sum of its days, read in one statement with
    /// them) and its breakdowns.
    pub async fn usage(&self, workspace_id: Uuid, month: &str) -> MeteringResult<UsageReport> {
        let month = Month::parse_or_current(month, now())?;
        let text = month.to_string();
        let reader = self.store().read(Scope::Workspace(workspace_id));
        let limit = u64::from(self.config().max_breakdown_rows);
        let by_day = events::by_day(&reader, workspace_id, &text).await?;
        let mut by_workflow = events::by_workflow(&reader, workspace_id, &text, limit + 1).await?;
        let mut by_model = events::by_model(&reader, workspace_id, &text, limit + 1).await?;
        let truncated = by_workflow.len() as u64 > limit || by_model.len() as u64 > limit;
        by_workflow.truncate(limit as usize);
        by_model.truncate(limit as usize);
        let totals = by_day
            .iter()
            .fold(Sums::default(), |total, day| add(total, day.sums));
        Ok(UsageReport {
            workspace_id,
            month,
            totals,
            by_workflow,
            by_model,
            by_day,
            truncated,
        })
    }

    /// A page of the month's rows in recording order, after the row the
    /// token names (a row of this workspace's month, or the token is
    /// refused).
    pub async fn usage_events(
        &self,
        workspace_id: Uuid,
        month: &str,
        requested_size: i32,
        page_token: &str,
    ) -> MeteringResult<(Vec<usage_event::Model>, String)> {
        let month = Month::parse_or_current(month, now())?.to_string();
        let config = self.config();
        let limit = u64::from(page_size(
            requested_size,
            config.page_size_default,
            config.page_size_max,
        )?);
        let reader = self.store().read(Scope::Workspace(workspace_id));
        let after = decode_id_token(page_token)?;
        if let Some(after) = after
            && !events::exists_in_month(&reader, workspace_id, &month, after).await?
        {
            return Err(MeteringError::invalid(
                "page_token",
                "is not a token this service issued",
            ));
        }
        let rows = events::page(&reader, workspace_id, &month, after, limit).await?;
        let token = next_token(&rows, limit, |row| row.id.to_string());
        Ok((rows, token))
    }

    /// Every row of the month in recording order, read in batches of
    /// `export_batch_rows` as the receiver takes them. The month is checked
    /// before the stream starts.
    pub fn export(
        &self,
        workspace_id: Uuid,
        month: &str,
    ) -> MeteringResult<impl Stream<Item = MeteringResult<usage_event::Model>> + Send + 'static>
    {
        let month = Month::parse_or_current(month, now())?.to_string();
        let batch = u64::from(self.config().export_batch_rows);
        let domain = self.clone();
        let state = (
            domain,
            None::<Uuid>,
            Vec::<usage_event::Model>::new(),
            false,
        );
        Ok(futures::stream::unfold(
            state,
            move |(domain, after, mut pending, done)| {
                let month = month.clone();
                async move {
                    if pending.is_empty() {
                        if done {
                            return None;
                        }
                        let reader = domain.store().read(Scope::Workspace(workspace_id));
                        match events::page(&reader, workspace_id, &month, after, batch).await {
                            Ok(rows) => {
                                let done = (rows.len() as u64) < batch;
                                if rows.is_empty() {
                                    return None;
                                }
                                pending = rows;
                                pending.reverse();
                                let row = pending.pop()?;
                                let after = Some(row.id);
                                return Some((Ok(row), (domain, after, pending, done)));
                            }
                            Err(error) => {
                                return Some((Err(error.into()), (domain, after, pending, true)));
                            }
                        }
                    }
                    let row = pending.pop()?;
                    let after = Some(row.id);
                    Some((Ok(row), (domain, after, pending, done)))
                }
            },
        ))
    }
}

fn add(a: Sums, b: Sums) -> Sums {
    Sums {
        executions: a.executions + b.executions,
        tasks: a.tasks + b.tasks,
        llm_calls: a.llm_calls + b.llm_calls,
        input_tokens: a.input_tokens + b.input_tokens,
        output_tokens: a.output_tokens + b.output_tokens,
        cost_micros: a.cost_micros + b.cost_micros,
    }
}
