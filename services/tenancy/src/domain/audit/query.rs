//! Listing the log page by page, and verifying a chain in bounded batches.

use chrono::{DateTime, Utc};
use tyboo_auth::Permission;
use tyboo_runtime::pagination::page_size;
use uuid::Uuid;

use super::{ChainWalk, chain_scope, event_from_row};
use crate::domain::model::{AuditPage, AuditVerification, BrokenLink};
use crate::domain::{Domain, WorkspaceScope};
use crate::error::{TenancyError, TenancyResult};
use crate::storage::audit as audit_store;

/// A page token is the sequence the next page continues below, in decimal:
/// the contract (`ListAuditEventsRequest.page_token`) states its form, so a
/// client that sends anything of that form gets a page, never an error.
pub fn encode_page_token(before_sequence: i64) -> String {
    before_sequence.to_string()
}

/// The sequence a page token continues below; `None` for the first page.
pub fn decode_page_token(token: &str) -> TenancyResult<Option<i64>> {
    if token.is_empty() {
        return Ok(None);
    }
    match token.parse::<i64>() {
        Ok(sequence) if sequence >= 1 && token.bytes().all(|b| b.is_ascii_digit()) => {
            Ok(Some(sequence))
        }
        _ => Err(TenancyError::invalid(
            "page_token",
            "is not a token this service issued",
        )),
    }
}

/// A listing request, already validated.
#[derive(Clone, Debug, Default)]
pub struct AuditQuery {
    pub action: Option<String>,
    pub actor: Option<String>,
    pub target: Option<String>,
    pub start_time: Option<DateTime<Utc>>,
    pub end_time: Option<DateTime<Utc>>,
    /// 1 to the configured maximum.
    pub page_size: u32,
    /// From the page token: only events below this sequence.
    pub before_sequence: Option<i64>,
}

impl Domain {
    /// The page size to use for a request's `page_size`: the default for
    /// zero, the maximum for anything larger.
    pub fn audit_page_size(&self, requested: i32) -> TenancyResult<u32> {
        let config = self.config();
        Ok(page_size(
            requested,
            config.audit_page_size_default,
            config.audit_page_size_max,
        )?)
    }

    /// The workspace's events, newest first.
    pub async fn list_audit_events(
        &self,
        scope: &WorkspaceScope,
        query: &AuditQuery,
    ) -> TenancyResult<AuditPage> {
        scope.require(Permission::AuditRead)?;
        let page_size = query.page_size.clamp(1, self.config().audit_page_size_max);
        let filter = audit_store::EventFilter {
            action: query.action.as_deref(),
            actor: query.actor.as_deref(),
            target: query.target.as_deref(),
            start_time: query.start_time,
            end_time: query.end_time,
        };
        // One extra row tells whether another page follows.
        let mut rows = audit_store::list_events(
            &self.store().read(scope.store_scope()),
            scope.workspace_id,
            &filter,
            query.before_sequence,
            u64::from(page_size) + 1,
        )
        .await?;
        let has_more = rows.len() > page_size as usize;
        rows.truncate(page_size as usize);
        let next_page_token = match (has_more, rows.last()) {
            (true, Some(last)) => encode_page_token(last.sequence),
            _ => String::new(),
        };
        let events = rows
            .into_iter()
            .map(event_from_row)
            .collect::<TenancyResult<Vec<_>>>()?;
        Ok(AuditPage {
            events,
            next_page_token,
        })
    }

    /// Walks the workspace's chain from the first event in bounded batches.
    pub async fn verify_audit_log(
        &self,
        scope: &WorkspaceScope,
    ) -> TenancyResult<AuditVerification> {
        scope.require(Permission::AuditRead)?;
        self.verify_chain(scope.workspace_id).await
    }

    /// Verifies any chain, including the global one; for operators and tests.
    pub async fn verify_chain(&self, chain_id: Uuid) -> TenancyResult<AuditVerification> {
        let db = self.store().read(chain_scope(chain_id));
        let Some(head) = audit_store::find_head(&db, chain_id).await? else {
            return Ok(AuditVerification {
                events_checked: 0,
                first_broken: Some(BrokenLink {
                    event_id: None,
                    sequence: 1,
                    reason: "the chain head is missing".to_owned(),
                }),
            });
        };
        let batch_size = u64::from(self.config().audit_verify_batch_size);
        let mut walk = ChainWalk::new();
        let mut after_sequence = 0;
        loop {
            // Events appended after the head was read are left for the next run.
            let batch = audit_store::events_in_order(
                &db,
                chain_id,
                after_sequence,
                head.last_sequence,
                batch_size,
            )
            .await?;
            let Some(last) = batch.last() else { break };
            after_sequence = last.sequence;
            for event in &batch {
                if let Err(broken) = walk.check(event) {
                    return Ok(AuditVerification {
                        events_checked: walk.checked(),
                        first_broken: Some(broken),
                    });
                }
            }
            if (batch.len() as u64) < batch_size {
                break;
            }
        }
        Ok(AuditVerification {
            events_checked: walk.checked(),
            first_broken: walk.finish(&head).err(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_tokens_round_trip_and_reject_garbage() {
        assert_eq!(decode_page_token("").unwrap(), None);
        assert_eq!(decode_page_token(&encode_page_token(42)).unwrap(), Some(42));
        for bad in ["!!", "bm90LWEtdG9rZW4", "+5", "-3", &encode_page_token(0)] {
            let error = decode_page_token(bad).unwrap_err();
            assert!(error.to_string().starts_with("page_token:"), "{bad}");
        }
    }
}
