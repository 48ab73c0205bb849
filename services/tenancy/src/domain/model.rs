//! What the domain hands out: plain values, free of storage and wire types.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use tyboo_auth::{Principal, Role};
use uuid::Uuid;

use crate::error::{TenancyError, TenancyResult};
use crate::storage::entities::{api_key, invitation, membership, organization, user, workspace};
use crate::storage::invitations::{STATE_ACCEPTED, STATE_PENDING, STATE_REVOKED};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Organization {
    pub id: Uuid,
    pub name: String,
    pub create_time: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Workspace {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub name: String,
    pub create_time: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub id: Uuid,
    pub email: String,
    pub display_name: String,
    pub create_time: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub user_id: Uuid,
    pub workspace_id: Uuid,
    pub email: String,
    pub display_name: String,
    pub role: Role,
    pub join_time: DateTime<Utc>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InvitationState {
    Pending,
    Accepted,
    Revoked,
    /// Pending, but past its expiry.
    Expired,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invitation {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub email: String,
    pub role: Role,
    /// The audit actor who invited, e.g. "user:<id>".
    pub invited_by: String,
    pub state: InvitationState,
    pub create_time: DateTime<Utc>,
    pub expire_time: DateTime<Utc>,
}

/// An invitation with its token, which exists only in this value.
#[derive(Clone, Debug)]
pub struct IssuedInvitation {
    pub invitation: Invitation,
    pub token: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiKey {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub user_id: Uuid,
    pub name: String,
    pub prefix: String,
    pub create_time: DateTime<Utc>,
    pub expire_time: Option<DateTime<Utc>>,
    pub last_use_time: Option<DateTime<Utc>>,
    pub rotate_time: Option<DateTime<Utc>>,
}

/// An API key with its secret, which exists only in this value.
#[derive(Clone, Debug)]
pub struct IssuedApiKey {
    pub api_key: ApiKey,
    pub secret: String,
}

/// A signed token and what it says.
#[derive(Clone, Debug)]
pub struct IssuedToken {
    pub token: String,
    pub expire_time: DateTime<Utc>,
    pub principal: Principal,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SigningKeyInfo {
    pub kid: String,
    pub public_key: [u8; 32],
    pub create_time: DateTime<Utc>,
    pub active: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEvent {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub sequence: i64,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub request_id: String,
    pub occur_time: DateTime<Utc>,
    pub details: BTreeMap<String, String>,
    pub hash: String,
    pub previous_hash: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditPage {
    pub events: Vec<AuditEvent>,
    /// Empty when there is no further page.
    pub next_page_token: String,
}

/// Where a chain first stops holding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokenLink {
    /// The offending event; `None` when events are missing at the end.
    pub event_id: Option<Uuid>,
    pub sequence: i64,
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditVerification {
    pub events_checked: i64,
    pub first_broken: Option<BrokenLink>,
}

impl AuditVerification {
    pub fn intact(&self) -> bool {
        self.first_broken.is_none()
    }
}

/// What the first start created.
#[derive(Clone, Debug)]
pub struct Bootstrap {
    pub organization_id: Uuid,
    pub workspace_id: Uuid,
    pub user_id: Uuid,
    pub owner_email: String,
    /// The owner's API key secret, shown once.
    pub api_key: String,
    /// A restart before the first key was ever used: this key replaces the
    /// one printed before, which no longer works.
    pub renewed: bool,
}

pub(crate) fn parse_role(stored: &str) -> TenancyResult<Role> {
    Role::parse(stored).ok_or_else(|| TenancyError::Internal(format!("stored role {stored:?}")))
}

impl From<organization::Model> for Organization {
    fn from(model: organization::Model) -> Self {
        let organization::Model {
            id,
            name,
            create_time,
        } = model;
        Organization {
            id,
            name,
            create_time,
        }
    }
}

impl From<workspace::Model> for Workspace {
    fn from(model: workspace::Model) -> Self {
        let workspace::Model {
            id,
            organization_id,
            name,
            create_time,
        } = model;
        Workspace {
            id,
            organization_id,
            name,
            create_time,
        }
    }
}

impl From<user::Model> for User {
    fn from(model: user::Model) -> Self {
        let user::Model {
            id,
            email,
            display_name,
            create_time,
        } = model;
        User {
            id,
            email,
            display_name,
            create_time,
        }
    }
}

impl From<api_key::Model> for ApiKey {
    fn from(model: api_key::Model) -> Self {
        ApiKey {
            id: model.id,
            workspace_id: model.workspace_id,
            user_id: model.user_id,
            name: model.name,
            prefix: model.prefix,
            create_time: model.create_time,
            expire_time: model.expire_time,
            last_use_time: model.last_use_time,
            rotate_time: model.rotate_time,
        }
    }
}

pub(crate) fn member_from_rows(
    membership: membership::Model,
    user: user::Model,
) -> TenancyResult<Member> {
    Ok(Member {
        user_id: membership.user_id,
        workspace_id: membership.workspace_id,
        email: user.email,
        display_name: user.display_name,
        role: parse_role(&membership.role)?,
        join_time: membership.join_time,
    })
}

pub(crate) fn invitation_from_row(
    model: invitation::Model,
    now: DateTime<Utc>,
) -> TenancyResult<Invitation> {
    let state = match model.state.as_str() {
        STATE_PENDING if model.expire_time <= now => InvitationState::Expired,
        STATE_PENDING => InvitationState::Pending,
        STATE_ACCEPTED => InvitationState::Accepted,
        STATE_REVOKED => InvitationState::Revoked,
        other => {
            return Err(TenancyError::Internal(format!(
                "stored invitation state {other:?}"
            )));
        }
    };
    Ok(Invitation {
        id: model.id,
        workspace_id: model.workspace_id,
        email: model.email,
        role: parse_role(&model.role)?,
        invited_by: model.invited_by,
        state,
        create_time: model.create_time,
        expire_time: model.expire_time,
    })
}
