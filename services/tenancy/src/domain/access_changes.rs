//! The log of changes that take access away or alter it: a member's role
//! changed, a member removed, an API key revoked or rotated. Each is written
//! in the transaction of the change itself, so the log never claims a change
//! that did not commit nor misses one that did. The edge reads it to drop
//! the principal tokens it caches, which otherwise keep the old role until
//! they age out. Expiring keys need no entry: a token never outlives its key.

use chrono::{DateTime, Utc};
use tyboo_auth::Principal;
use tyboo_runtime::pagination::page_size;
use uuid::Uuid;

use super::Domain;
use super::scope::ACCESS_CHANGES;
use crate::error::{TenancyError, TenancyResult};
use crate::storage::Session;
use crate::storage::access_changes::{self, NewAccessChange};
use crate::storage::entities::access_change;

/// What kind of change took place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccessChangeKind {
    RoleChanged,
    MemberRemoved,
    ApiKeyRevoked,
    ApiKeyRotated,
}

impl AccessChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AccessChangeKind::RoleChanged => "role_changed",
            AccessChangeKind::MemberRemoved => "member_removed",
            AccessChangeKind::ApiKeyRevoked => "api_key_revoked",
            AccessChangeKind::ApiKeyRotated => "api_key_rotated",
        }
    }

    fn parse(stored: &str) -> TenancyResult<AccessChangeKind> {
        [
            AccessChangeKind::RoleChanged,
            AccessChangeKind::MemberRemoved,
            AccessChangeKind::ApiKeyRevoked,
            AccessChangeKind::ApiKeyRotated,
        ]
        .into_iter()
        .find(|kind| kind.as_str() == stored)
        .ok_or_else(|| TenancyError::Internal(format!("stored access change kind {stored:?}")))
    }
}

/// A change as the domain records it: a member's changes touch every token
/// of that user in the workspace, a key's changes every token of that key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AccessChangeOf {
    RoleChanged { user_id: Uuid },
    MemberRemoved { user_id: Uuid },
    ApiKeyRevoked { api_key_id: Uuid },
    ApiKeyRotated { api_key_id: Uuid },
}

/// One recorded change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessChange {
    pub cursor: i64,
    pub workspace_id: Uuid,
    pub user_id: Option<Uuid>,
    pub api_key_id: Option<Uuid>,
    pub kind: AccessChangeKind,
    pub create_time: DateTime<Utc>,
}

/// One answer of `ListAccessChanges`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessChangesPage {
    pub changes: Vec<AccessChange>,
    pub next_cursor: i64,
    /// Changes after the requested cursor may have been pruned (or the log
    /// was reset): the reader must drop what it derived and resume from
    /// `next_cursor`, the newest cursor.
    pub cursor_expired: bool,
}

/// Which part of the log a caller asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccessChangesQuery {
    /// Only the newest cursor, for a reader that starts with nothing cached.
    Head,
    /// Up to `page_size` changes after the cursor `after`.
    After { after: i64, page_size: u32 },
}

/// Records `change` inside the caller's transaction. Call it as the last
/// write before commit: it serializes every writer of the log until then.
pub(crate) async fn record<C: Session>(
    db: &C,
    domain: &Domain,
    workspace_id: Uuid,
    change: AccessChangeOf,
) -> TenancyResult<()> {
    let (kind, user_id, api_key_id) = match change {
        AccessChangeOf::RoleChanged { user_id } => {
            (AccessChangeKind::RoleChanged, Some(user_id), None)
        }
        AccessChangeOf::MemberRemoved { user_id } => {
            (AccessChangeKind::MemberRemoved, Some(user_id), None)
        }
        AccessChangeOf::ApiKeyRevoked { api_key_id } => {
            (AccessChangeKind::ApiKeyRevoked, None, Some(api_key_id))
        }
        AccessChangeOf::ApiKeyRotated { api_key_id } => {
            (AccessChangeKind::ApiKeyRotated, None, Some(api_key_id))
        }
    };
    let retention = super::bounded_seconds(domain.config().access_changes_retention_seconds);
    access_changes::append(
        db,
        NewAccessChange {
            workspace_id,
            user_id,
            api_key_id,
            kind: kind.as_str(),
        },
        crate::storage::now() - retention,
    )
    .await?;
    Ok(())
}

impl TryFrom<access_change::Model> for AccessChange {
    type Error = TenancyError;

    fn try_from(model: access_change::Model) -> TenancyResult<AccessChange> {
        let access_change::Model {
            id,
            workspace_id,
            user_id,
            api_key_id,
            kind,
            create_time,
        } = model;
        Ok(AccessChange {
            cursor: id,
            workspace_id,
            user_id,
            api_key_id,
            kind: AccessChangeKind::parse(&kind)?,
            create_time,
        })
    }
}

/// Whether a reader at `after` may have missed changes, given the ids still
/// kept. Pruning removes a prefix of the log and always keeps its newest
/// row, so the kept ids are a tail and the newest id is the head. A cursor
/// above the head means the log was reset under the reader. A gap left by a
/// rolled-back PostgreSQL insert can make this answer true needlessly, which
/// costs the reader a cache refill and nothing else.
fn cursor_expired(after: i64, kept: Option<(i64, i64)>) -> bool {
    match kept {
        None => after > 0,
        Some((oldest, newest)) => after > newest || oldest > after.saturating_add(1),
    }
}

impl Domain {
    /// The page size to use for a request's `page_size`: the default for
    /// zero, capped at the maximum.
    pub fn access_changes_page_size(&self, requested: i32) -> TenancyResult<u32> {
        let config = self.config();
        Ok(page_size(
            requested,
            config.access_changes_page_size_default,
            config.access_changes_page_size_max,
        )?)
    }

    /// Reads the log of access changes. Only the mesh itself (a service
    /// token) may: the log names members and keys of every workspace.
    pub async fn list_access_changes(
        &self,
        caller: &Principal,
        query: AccessChangesQuery,
    ) -> TenancyResult<AccessChangesPage> {
        if !caller.is_service() {
            return Err(TenancyError::PermissionDenied(
                "reading access changes needs a service token".to_owned(),
            ));
        }
        let (after, page_size) = match query {
            AccessChangesQuery::Head => {
                let head = access_changes::bounds(&self.store().read(ACCESS_CHANGES))
                    .await?
                    .map_or(0, |(_, newest)| newest);
                return Ok(AccessChangesPage {
                    changes: Vec::new(),
                    next_cursor: head,
                    cursor_expired: false,
                });
            }
            AccessChangesQuery::After { after, page_size } => (after, page_size),
        };
        if after < 0 {
            return Err(TenancyError::invalid("after", "must not be negative"));
        }
        let page_size = page_size.clamp(1, self.config().access_changes_page_size_max);
        let db = self.store().read(ACCESS_CHANGES);
        let rows = access_changes::list_after(&db, after, u64::from(page_size)).await?;
        // Read after the page: pruning only ever removes older rows, so if
        // nothing after `after` was gone by now, nothing was when the page
        // was read either.
        let kept = access_changes::bounds(&db).await?;
        if cursor_expired(after, kept) {
            return Ok(AccessChangesPage {
                changes: Vec::new(),
                next_cursor: kept.map_or(0, |(_, newest)| newest),
                cursor_expired: true,
            });
        }
        let changes = rows
            .into_iter()
            .map(AccessChange::try_from)
            .collect::<TenancyResult<Vec<_>>>()?;
        let next_cursor = changes.last().map_or(after, |change| change.cursor);
        Ok(AccessChangesPage {
            changes,
            next_cursor,
            cursor_expired: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_outside_the_kept_tail_has_expired() {
        // Nothing recorded yet: only the start is a valid cursor.
        assert!(!cursor_expired(0, None));
        assert!(cursor_expired(3, None));
        // Ids 5..=9 kept: a reader at 4 misses nothing, one at 3 missed 4.
        assert!(!cursor_expired(4, Some((5, 9))));
        assert!(!cursor_expired(9, Some((5, 9))));
        assert!(cursor_expired(3, Some((5, 9))));
        // Beyond the newest id: the log was reset under the reader.
        assert!(cursor_expired(10, Some((5, 9))));
        // Nothing pruned yet: reading from the start is fine.
        assert!(!cursor_expired(0, Some((1, 9))));
    }

    #[test]
    fn kinds_read_back_as_written() {
        for kind in [
            AccessChangeKind::RoleChanged,
            AccessChangeKind::MemberRemoved,
            AccessChangeKind::ApiKeyRevoked,
            AccessChangeKind::ApiKeyRotated,
        ] {
            assert_eq!(AccessChangeKind::parse(kind.as_str()).unwrap(), kind);
        }
        assert!(AccessChangeKind::parse("promoted").is_err());
    }
}
