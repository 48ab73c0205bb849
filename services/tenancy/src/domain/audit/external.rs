//! Events other mesh services record in tenancy's log (the vault's credential
//! actions, for example). They join the same hash chains as tenancy's own
//! events, so one verifier covers everything a workspace's log holds.

use std::collections::BTreeMap;

use tyboo_auth::Principal;
use uuid::Uuid;

use super::{AuditEntry, GLOBAL_CHAIN, append, chain_scope, lock_chain};
use crate::domain::Domain;
use crate::domain::model::AuditEvent;
use crate::error::{TenancyError, TenancyResult};
use crate::storage::audit as audit_store;

/// Bounds on what another service may write, so one event stays a row of
/// reasonable size however the caller misbehaves.
const MAX_FIELD_LENGTH: usize = 200;
const MAX_DETAILS: usize = 32;
const MAX_DETAIL_VALUE_LENGTH: usize = 2_000;

/// One event as another service asks for it, before validation.
#[derive(Clone, Debug, Default)]
pub struct ExternalAuditEvent {
    /// `None` for an event of the whole mesh: it joins the global chain.
    pub workspace_id: Option<Uuid>,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub details: BTreeMap<String, String>,
}

fn bounded(field: &'static str, value: &str, required: bool) -> TenancyResult<()> {
    if required && value.is_empty() {
        return Err(TenancyError::invalid(field, "must be set"));
    }
    if value.chars().count() > MAX_FIELD_LENGTH {
        return Err(TenancyError::invalid(
            field,
            format!("must be at most {MAX_FIELD_LENGTH} characters"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(TenancyError::invalid(
            field,
            "must not contain control characters",
        ));
    }
    Ok(())
}

impl ExternalAuditEvent {
    fn validate(&self) -> TenancyResult<()> {
        bounded("actor", &self.actor, true)?;
        bounded("action", &self.action, true)?;
        bounded("target", &self.target, false)?;
        if self.details.len() > MAX_DETAILS {
            return Err(TenancyError::invalid(
                "details",
                format!("must have at most {MAX_DETAILS} entries"),
            ));
        }
        for (key, value) in &self.details {
            bounded("details", key, true)?;
            if value.chars().count() > MAX_DETAIL_VALUE_LENGTH {
                return Err(TenancyError::invalid(
                    "details",
                    format!("{key}: must be at most {MAX_DETAIL_VALUE_LENGTH} characters"),
                ));
            }
        }
        Ok(())
    }
}

impl Domain {
    /// Appends another service's event to its workspace's chain (the global
    /// chain without a workspace) in one transaction. Only service tokens may
    /// write here: a user must never be able to forge entries in the log
    /// that records what they did.
    pub async fn append_external_audit_event(
        &self,
        caller: &Principal,
        event: ExternalAuditEvent,
    ) -> TenancyResult<AuditEvent> {
        if !caller.is_service() {
            return Err(TenancyError::PermissionDenied(
                "appending audit events needs a service token".to_owned(),
            ));
        }
        event.validate()?;
        let chain = event.workspace_id.unwrap_or(GLOBAL_CHAIN);
        let transaction = self.store().write(chain_scope(chain)).await?;
        if event.workspace_id.is_none() {
            audit_store::ensure_head(&transaction, GLOBAL_CHAIN).await?;
        }
        let mut head = lock_chain(&transaction, chain).await?;
        let mut entry = AuditEntry::new(event.action, event.target);
        entry.details = event.details;
        let stored = append(&transaction, &mut head, &event.actor, entry).await?;
        transaction.commit().await?;
        Ok(stored)
    }
}
