use uuid::Uuid;

use crate::{AuthError, Permission, Role, operator_allows, role_allows};

/// Who a verified token speaks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Subject {
    User(Uuid),
    Service(String),
    /// A person operating the platform itself (`tyboo admin operator-token`),
    /// in no workspace: what it may do is the matrix's operator column.
    Operator(String),
}

impl Subject {
    /// "user:<uuid>", "service:<name>" or "operator:<name>", as in token
    /// subjects and audit actors.
    pub fn as_string(&self) -> String {
        match self {
            Subject::User(id) => format!("user:{id}"),
            Subject::Service(name) => format!("service:{name}"),
            Subject::Operator(name) => format!("operator:{name}"),
        }
    }

    pub fn parse(text: &str) -> Option<Subject> {
        if let Some(id) = text.strip_prefix("user:") {
            return Uuid::parse_str(id).ok().map(Subject::User);
        }
        if let Some(name) = text.strip_prefix("operator:") {
            return is_valid_service_name(name).then(|| Subject::Operator(name.to_owned()));
        }
        let name = text.strip_prefix("service:")?;
        is_valid_service_name(name).then(|| Subject::Service(name.to_owned()))
    }
}

/// Service and operator names are short lowercase identifiers such as "executor".
pub fn is_valid_service_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-')
}

/// The verified caller of a request. Only token verification (or tenancy,
/// which issues tokens) produces one, so holding a `Principal` means the
/// workspace in it is the scope the caller may act in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub subject: Subject,
    pub workspace_id: Option<Uuid>,
    pub organization_id: Option<Uuid>,
    pub role: Option<Role>,
    pub api_key_id: Option<Uuid>,
    /// Which secret of that key the token was issued for: it changes on
    /// every rotation, so tenancy can refuse tokens of a rotated-away secret.
    pub api_key_version: Option<i64>,
}

impl Principal {
    pub fn service(name: &str) -> Principal {
        Principal {
            subject: Subject::Service(name.to_owned()),
            workspace_id: None,
            organization_id: None,
            role: None,
            api_key_id: None,
            api_key_version: None,
        }
    }

    /// An operator of the platform, in no workspace.
    pub fn operator(name: &str) -> Principal {
        Principal {
            subject: Subject::Operator(name.to_owned()),
            ..Principal::service(name)
        }
    }

    pub fn user_id(&self) -> Option<Uuid> {
        match self.subject {
            Subject::User(id) => Some(id),
            Subject::Service(_) | Subject::Operator(_) => None,
        }
    }

    pub fn is_service(&self) -> bool {
        matches!(self.subject, Subject::Service(_))
    }

    pub fn is_operator(&self) -> bool {
        matches!(self.subject, Subject::Operator(_))
    }

    /// The audit actor: "user:<id>", "service:<name>" or "operator:<name>".
    pub fn actor(&self) -> String {
        self.subject.as_string()
    }

    /// Fails with PermissionDenied unless the principal's role holds
    /// `permission`. Services act on behalf of the mesh and hold every
    /// permission within the workspace they name; operators hold what the
    /// matrix's operator column gives them.
    pub fn require(&self, permission: Permission) -> Result<(), AuthError> {
        match self.subject {
            Subject::Service(_) => return Ok(()),
            Subject::Operator(_) if operator_allows(permission) => return Ok(()),
            Subject::Operator(_) => {
                return Err(AuthError::PermissionDenied(
                    "an operator token may read and manage the platform's safeguards, not change a workspace".to_owned(),
                ));
            }
            Subject::User(_) => {}
        }
        match self.role {
            Some(role) if role_allows(role, permission) => Ok(()),
            Some(role) => Err(AuthError::PermissionDenied(match permission.least_role() {
                Some(least) => format!("the {role} role may not do this (needs {least})"),
                None => "only a platform operator may do this".to_owned(),
            })),
            None => Err(AuthError::PermissionDenied(
                "the caller has no role in a workspace".to_owned(),
            )),
        }
    }

    pub fn to_proto(&self) -> tyboo_proto::common::Principal {
        tyboo_proto::common::Principal {
            subject: self.subject.as_string(),
            user_id: self.user_id().map(|id| id.to_string()).unwrap_or_default(),
            workspace_id: self
                .workspace_id
                .map(|id| id.to_string())
                .unwrap_or_default(),
            organization_id: self
                .organization_id
                .map(|id| id.to_string())
                .unwrap_or_default(),
            role: self.role.map(Role::to_proto).unwrap_or_default(),
            api_key_id: self.api_key_id.map(|id| id.to_string()).unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_round_trip() {
        let id = Uuid::now_v7();
        assert_eq!(
            Subject::parse(&Subject::User(id).as_string()),
            Some(Subject::User(id))
        );
        assert_eq!(
            Subject::parse("service:executor"),
            Some(Subject::Service("executor".into()))
        );
        assert_eq!(
            Subject::parse("operator:cli"),
            Some(Subject::Operator("cli".into()))
        );
        assert_eq!(
            Subject::parse(&Subject::Operator("cli".into()).as_string()),
            Some(Subject::Operator("cli".into()))
        );
        assert_eq!(Subject::parse("operator:"), None);
        assert_eq!(Subject::parse("service:Bad Name"), None);
        assert_eq!(Subject::parse("user:not-a-uuid"), None);
    }

    #[test]
    fn require_follows_the_matrix() {
        let viewer = Principal {
            subject: Subject::User(Uuid::now_v7()),
            workspace_id: Some(Uuid::now_v7()),
            organization_id: None,
            role: Some(Role::Viewer),
            api_key_id: None,
            api_key_version: None,
        };
        assert!(viewer.require(Permission::MembersRead).is_ok());
        assert!(matches!(
            viewer.require(Permission::MembersInvite),
            Err(AuthError::PermissionDenied(_))
        ));
    }

    #[test]
    fn an_operator_reads_but_never_writes() {
        let operator = Principal::operator("cli");
        assert_eq!(operator.workspace_id, None);
        assert_eq!(operator.actor(), "operator:cli");
        assert!(!operator.is_service());
        assert!(operator.require(Permission::WorkspaceRead).is_ok());
        assert!(operator.require(Permission::AuditRead).is_ok());
        for write in [
            Permission::MembersManage,
            Permission::ApiKeysCreate,
            Permission::WorkflowsWrite,
            Permission::ExecutionsRun,
            Permission::CredentialsWrite,
        ] {
            assert!(
                matches!(operator.require(write), Err(AuthError::PermissionDenied(_))),
                "{write:?}"
            );
        }
    }
}
