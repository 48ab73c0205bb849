//! Domain ↔ protobuf. Structs are destructured in full so that a field added
//! on either side breaks the build here instead of being silently dropped.

use chrono::{DateTime, Utc};
use prost_types::Timestamp;
use tyboo_proto::tenancy as proto;

use crate::domain::{
    AccessChange, AccessChangeKind, AccessChangesPage, ApiKey, AuditEvent, AuditVerification,
    BrokenLink, Invitation, InvitationState, IssuedApiKey, Member, Organization, SigningKeyInfo,
    Workspace,
};
use crate::error::{TenancyError, TenancyResult};

/// The algorithm every signing key uses (Ed25519).
pub const SIGNING_ALGORITHM: &str = "EdDSA";

pub use tyboo_proto::convert::timestamp;

/// A request timestamp, rejected (naming the field) when out of range.
pub fn from_timestamp(field: &'static str, value: &Timestamp) -> TenancyResult<DateTime<Utc>> {
    tyboo_proto::convert::datetime(value)
        .ok_or_else(|| TenancyError::invalid(field, "is not a valid timestamp"))
}

/// Empty strings mean "any" in filters.
pub fn non_empty(value: String) -> Option<String> {
    (!value.is_empty()).then_some(value)
}

impl From<AccessChangeKind> for proto::AccessChangeKind {
    fn from(kind: AccessChangeKind) -> Self {
        match kind {
            AccessChangeKind::RoleChanged => proto::AccessChangeKind::RoleChanged,
            AccessChangeKind::MemberRemoved => proto::AccessChangeKind::MemberRemoved,
            AccessChangeKind::ApiKeyRevoked => proto::AccessChangeKind::ApiKeyRevoked,
            AccessChangeKind::ApiKeyRotated => proto::AccessChangeKind::ApiKeyRotated,
        }
    }
}

impl From<AccessChange> for proto::AccessChange {
    fn from(change: AccessChange) -> Self {
        let AccessChange {
            cursor,
            workspace_id,
            user_id,
            api_key_id,
            kind,
            create_time,
        } = change;
        proto::AccessChange {
            cursor,
            workspace_id: workspace_id.to_string(),
            user_id: user_id.map(|id| id.to_string()).unwrap_or_default(),
            api_key_id: api_key_id.map(|id| id.to_string()).unwrap_or_default(),
            kind: proto::AccessChangeKind::from(kind).into(),
            create_time: Some(timestamp(create_time)),
        }
    }
}

impl From<AccessChangesPage> for proto::ListAccessChangesResponse {
    fn from(page: AccessChangesPage) -> Self {
        let AccessChangesPage {
            changes,
            next_cursor,
            cursor_expired,
        } = page;
        proto::ListAccessChangesResponse {
            changes: changes.into_iter().map(Into::into).collect(),
            next_cursor,
            cursor_expired,
        }
    }
}

impl From<Organization> for proto::Organization {
    fn from(organization: Organization) -> Self {
        let Organization {
            id,
            name,
            create_time,
        } = organization;
        proto::Organization {
            id: id.to_string(),
            name,
            create_time: Some(timestamp(create_time)),
        }
    }
}

impl From<Workspace> for proto::Workspace {
    fn from(workspace: Workspace) -> Self {
        let Workspace {
            id,
            organization_id,
            name,
            create_time,
        } = workspace;
        proto::Workspace {
            id: id.to_string(),
            organization_id: organization_id.to_string(),
            name,
            create_time: Some(timestamp(create_time)),
        }
    }
}

impl From<Member> for proto::Member {
    fn from(member: Member) -> Self {
        let Member {
            user_id,
            workspace_id,
            email,
            display_name,
            role,
            join_time,
        } = member;
        proto::Member {
            user_id: user_id.to_string(),
            workspace_id: workspace_id.to_string(),
            email,
            display_name,
            role: role.to_proto(),
            join_time: Some(timestamp(join_time)),
        }
    }
}

impl From<InvitationState> for proto::InvitationState {
    fn from(state: InvitationState) -> Self {
        match state {
            InvitationState::Pending => proto::InvitationState::Pending,
            InvitationState::Accepted => proto::InvitationState::Accepted,
            InvitationState::Revoked => proto::InvitationState::Revoked,
            InvitationState::Expired => proto::InvitationState::Expired,
        }
    }
}

impl From<Invitation> for proto::Invitation {
    fn from(invitation: Invitation) -> Self {
        let Invitation {
            id,
            workspace_id,
            email,
            role,
            invited_by,
            state,
            create_time,
            expire_time,
        } = invitation;
        proto::Invitation {
            id: id.to_string(),
            workspace_id: workspace_id.to_string(),
            email,
            role: role.to_proto(),
            invited_by,
            state: proto::InvitationState::from(state) as i32,
            create_time: Some(timestamp(create_time)),
            expire_time: Some(timestamp(expire_time)),
        }
    }
}

impl From<ApiKey> for proto::ApiKey {
    fn from(api_key: ApiKey) -> Self {
        let ApiKey {
            id,
            workspace_id,
            user_id,
            name,
            prefix,
            create_time,
            expire_time,
            last_use_time,
            rotate_time,
        } = api_key;
        proto::ApiKey {
            id: id.to_string(),
            workspace_id: workspace_id.to_string(),
            user_id: user_id.to_string(),
            name,
            prefix,
            create_time: Some(timestamp(create_time)),
            expire_time: expire_time.map(timestamp),
            last_use_time: last_use_time.map(timestamp),
            rotate_time: rotate_time.map(timestamp),
        }
    }
}

impl From<IssuedApiKey> for proto::IssuedApiKey {
    fn from(issued: IssuedApiKey) -> Self {
        let IssuedApiKey { api_key, secret } = issued;
        proto::IssuedApiKey {
            api_key: Some(api_key.into()),
            secret,
        }
    }
}

impl From<AuditEvent> for proto::AuditEvent {
    fn from(event: AuditEvent) -> Self {
        let AuditEvent {
            id,
            workspace_id,
            sequence,
            actor,
            action,
            target,
            request_id,
            occur_time,
            details,
            hash,
            previous_hash,
        } = event;
        proto::AuditEvent {
            id: id.to_string(),
            workspace_id: workspace_id.to_string(),
            sequence,
            actor,
            action,
            target,
            request_id,
            occur_time: Some(timestamp(occur_time)),
            details: details.into_iter().collect(),
            hash,
            previous_hash,
        }
    }
}

impl From<AuditVerification> for proto::VerifyAuditLogResponse {
    fn from(verification: AuditVerification) -> Self {
        let intact = verification.intact();
        let AuditVerification {
            events_checked,
            first_broken,
        } = verification;
        let (first_broken_event_id, first_broken_sequence, reason) = match first_broken {
            Some(BrokenLink {
                event_id,
                sequence,
                reason,
            }) => (
                event_id.map(|id| id.to_string()).unwrap_or_default(),
                sequence,
                reason,
            ),
            None => (String::new(), 0, String::new()),
        };
        proto::VerifyAuditLogResponse {
            intact,
            events_checked,
            first_broken_event_id,
            first_broken_sequence,
            reason,
        }
    }
}

impl From<SigningKeyInfo> for proto::SigningKey {
    fn from(key: SigningKeyInfo) -> Self {
        let SigningKeyInfo {
            kid,
            public_key,
            create_time,
            active,
        } = key;
        proto::SigningKey {
            kid,
            algorithm: SIGNING_ALGORITHM.to_owned(),
            public_key: public_key.to_vec(),
            create_time: Some(timestamp(create_time)),
            active,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip_and_bad_ones_name_the_field() {
        let now = crate::storage::now();
        assert_eq!(from_timestamp("expire_time", &timestamp(now)).unwrap(), now);
        let bad = Timestamp {
            seconds: 0,
            nanos: -1,
        };
        assert_eq!(
            from_timestamp("expire_time", &bad).unwrap_err().to_string(),
            "expire_time: is not a valid timestamp"
        );
    }

    #[test]
    fn a_broken_chain_reports_where() {
        let response = proto::VerifyAuditLogResponse::from(AuditVerification {
            events_checked: 3,
            first_broken: Some(BrokenLink {
                event_id: None,
                sequence: 4,
                reason: "missing events".to_owned(),
            }),
        });
        assert!(!response.intact);
        assert_eq!(response.first_broken_sequence, 4);
        assert_eq!(response.first_broken_event_id, "");
    }
}
