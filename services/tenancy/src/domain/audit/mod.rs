//! The tamper-evident audit log: each event's hash covers the previous hash
//! and an unambiguous encoding of every field, events are appended in the
//! transaction of the change they record, and a verifier walks the chain.

mod chain;
mod external;
mod query;

use std::borrow::Cow;
use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use tyboo_store::Scope;
use uuid::Uuid;

use super::model::AuditEvent;
use super::scope::GLOBAL_AUDIT;
use crate::error::{TenancyError, TenancyResult};
use crate::storage::entities::audit_event;
use crate::storage::{self, Session, audit as audit_store};

pub(crate) use chain::ChainWalk;
pub use external::ExternalAuditEvent;
pub use query::{AuditQuery, decode_page_token, encode_page_token};

/// The chain of events that belong to no workspace (signing-key rotations).
pub const GLOBAL_CHAIN: Uuid = Uuid::nil();

/// The scope a chain's rows are read and written in: its workspace's, or
/// the global chain's own.
pub(crate) fn chain_scope(chain_id: Uuid) -> Scope {
    if chain_id == GLOBAL_CHAIN {
        GLOBAL_AUDIT
    } else {
        Scope::Workspace(chain_id)
    }
}

/// The actor of changes the service makes on its own, such as the first start.
pub const SYSTEM_ACTOR: &str = "system";
/// Versions the encoding below; a new encoding gets a new tag.
const HASH_DOMAIN: &[u8] = b"tyboo.audit.v1";

/// A change to record.
#[derive(Clone, Debug)]
pub(crate) struct AuditEntry {
    /// Tenancy's own actions are constants; other services name theirs.
    pub action: Cow<'static, str>,
    pub target: String,
    pub details: BTreeMap<String, String>,
}

impl AuditEntry {
    pub fn new(action: impl Into<Cow<'static, str>>, target: impl Into<String>) -> Self {
        Self {
            action: action.into(),
            target: target.into(),
            details: BTreeMap::new(),
        }
    }

    pub fn detail(mut self, key: &str, value: impl Into<String>) -> Self {
        self.details.insert(key.to_owned(), value.into());
        self
    }
}

/// The fields an event's hash covers, besides the previous hash.
pub(crate) struct EventContent<'a> {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub sequence: i64,
    pub actor: &'a str,
    pub action: &'a str,
    pub target: &'a str,
    pub request_id: &'a str,
    pub occur_time: DateTime<Utc>,
    pub details: &'a BTreeMap<String, String>,
}

/// Hex SHA-256 over a domain tag, the previous hash and every field, each
/// variable-length part prefixed with its length so no two different events
/// encode alike (a field's end can never be read as the next one's start).
pub(crate) fn event_hash(previous_hash: &str, content: &EventContent<'_>) -> String {
    fn put(hasher: &mut Sha256, bytes: &[u8]) {
        hasher.update((bytes.len() as u64).to_be_bytes());
        hasher.update(bytes);
    }
    let mut hasher = Sha256::new();
    put(&mut hasher, HASH_DOMAIN);
    put(&mut hasher, previous_hash.as_bytes());
    hasher.update(content.id.as_bytes());
    hasher.update(content.workspace_id.as_bytes());
    hasher.update(content.sequence.to_be_bytes());
    put(&mut hasher, content.actor.as_bytes());
    put(&mut hasher, content.action.as_bytes());
    put(&mut hasher, content.target.as_bytes());
    put(&mut hasher, content.request_id.as_bytes());
    hasher.update(content.occur_time.timestamp_micros().to_be_bytes());
    hasher.update((content.details.len() as u64).to_be_bytes());
    for (key, value) in content.details {
        put(&mut hasher, key.as_bytes());
        put(&mut hasher, value.as_bytes());
    }
    hex::encode(hasher.finalize())
}

/// The head of a chain, locked for the rest of the transaction.
#[derive(Debug)]
pub(crate) struct ChainHead {
    workspace_id: Uuid,
    last_sequence: i64,
    last_hash: String,
}

/// Locks the chain of `workspace_id`; a workspace without one does not exist.
pub(crate) async fn lock_chain<C: Session>(db: &C, workspace_id: Uuid) -> TenancyResult<ChainHead> {
    let head = audit_store::lock_head(db, workspace_id)
        .await?
        .ok_or(TenancyError::NotFound("workspace"))?;
    Ok(ChainHead {
        workspace_id: head.workspace_id,
        last_sequence: head.last_sequence,
        last_hash: head.last_hash,
    })
}

/// Appends one event to a locked chain. Runs in the caller's transaction, so
/// if this fails the change it records is rolled back with it.
pub(crate) async fn append<C: Session>(
    db: &C,
    head: &mut ChainHead,
    actor: &str,
    entry: AuditEntry,
) -> TenancyResult<AuditEvent> {
    let request_id = tyboo_runtime::context::current_request_id().unwrap_or_default();
    let event_id = Uuid::now_v7();
    let sequence = head.last_sequence + 1;
    let occur_time = storage::now();
    let hash = event_hash(
        &head.last_hash,
        &EventContent {
            id: event_id,
            workspace_id: head.workspace_id,
            sequence,
            actor,
            action: &entry.action,
            target: &entry.target,
            request_id: &request_id,
            occur_time,
            details: &entry.details,
        },
    );
    let details_json = serde_json::to_string(&entry.details)
        .map_err(|error| TenancyError::Internal(format!("encoding audit details: {error}")))?;
    audit_store::insert_event(
        db,
        audit_event::Model {
            id: event_id,
            workspace_id: head.workspace_id,
            sequence,
            actor: actor.to_owned(),
            action: entry.action.to_string(),
            target: entry.target.clone(),
            request_id: request_id.clone(),
            occur_time,
            details: details_json,
            previous_hash: head.last_hash.clone(),
            hash: hash.clone(),
        },
    )
    .await?;
    audit_store::advance_head(db, head.workspace_id, sequence, &hash).await?;
    let previous_hash = std::mem::replace(&mut head.last_hash, hash.clone());
    head.last_sequence = sequence;
    Ok(AuditEvent {
        id: event_id,
        workspace_id: head.workspace_id,
        sequence,
        actor: actor.to_owned(),
        action: entry.action.into_owned(),
        target: entry.target,
        request_id,
        occur_time,
        details: entry.details,
        hash,
        previous_hash,
    })
}

pub(crate) fn parse_details(text: &str) -> Option<BTreeMap<String, String>> {
    serde_json::from_str(text).ok()
}

pub(crate) fn event_from_row(row: audit_event::Model) -> TenancyResult<AuditEvent> {
    let details = parse_details(&row.details).ok_or_else(|| {
        TenancyError::Internal(format!("audit event {} has unreadable details", row.id))
    })?;
    Ok(AuditEvent {
        id: row.id,
        workspace_id: row.workspace_id,
        sequence: row.sequence,
        actor: row.actor,
        action: row.action,
        target: row.target,
        request_id: row.request_id,
        occur_time: row.occur_time,
        details,
        hash: row.hash,
        previous_hash: row.previous_hash,
    })
}
