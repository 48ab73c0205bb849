//! Databases for the conformance suite, and fixtures shared by its cases.

use tyboo_auth::{Principal, Role};
use tyboo_store::testing::TestWorld;
pub use tyboo_store::testing::{on_postgres, on_sqlite};
use uuid::Uuid;

use crate::domain::WorkspaceScope;
use crate::domain::validation::Email;
use crate::{Tenancy, TenancyConfig};

pub const SERVICE_SECRET: &str = "conformance-service-secret";

pub fn test_config() -> TenancyConfig {
    TenancyConfig {
        service_secret: SERVICE_SECRET.to_owned(),
        // Small batches make the verifier cross batch boundaries in tests.
        audit_verify_batch_size: 3,
        ..TenancyConfig::default()
    }
}

impl TestWorld for Tenancy {
    const SQLITE_PREFIX: &'static str = "tyboo-tenancy";
    const POSTGRES_PREFIX: &'static str = "tyboo_t";

    async fn open(url: &str) -> Tenancy {
        let tenancy = Tenancy::connect(url, test_config()).await.unwrap();
        tenancy.migrate().await.unwrap();
        tenancy
    }

    async fn close(self) {
        Tenancy::close(self).await.unwrap();
    }
}

/// A bootstrapped organization with its owner.
pub struct Fixture {
    pub organization_id: Uuid,
    pub workspace_id: Uuid,
    pub owner_id: Uuid,
    pub owner_key: String,
    pub owner: Principal,
}

impl Fixture {
    pub fn workspace(&self) -> String {
        self.workspace_id.to_string()
    }
}

pub async fn bootstrap(tenancy: &Tenancy) -> Fixture {
    let created = tenancy
        .bootstrap_if_empty("Acme", "Operations", "Owner@Acme.test")
        .await
        .unwrap()
        .expect("an empty database bootstraps");
    let owner = principal_for(tenancy, &created.api_key).await;
    Fixture {
        organization_id: created.organization_id,
        workspace_id: created.workspace_id,
        owner_id: created.user_id,
        owner_key: created.api_key,
        owner,
    }
}

/// The principal a key's holder presents: authenticate, then verify the
/// token exactly as a handler does.
pub async fn principal_for(tenancy: &Tenancy, api_key: &str) -> Principal {
    let issued = tenancy
        .domain()
        .authenticate_api_key(api_key)
        .await
        .unwrap();
    tenancy
        .domain()
        .verify_caller(Some(&issued.token))
        .await
        .unwrap()
}

pub async fn scope(tenancy: &Tenancy, principal: &Principal, workspace_id: Uuid) -> WorkspaceScope {
    tenancy
        .domain()
        .workspace_scope(principal, &workspace_id.to_string())
        .await
        .unwrap()
}

/// A new member of the fixture's workspace, invited by the owner.
pub struct Joined {
    pub user_id: Uuid,
    pub api_key: String,
    pub principal: Principal,
}

pub async fn join(tenancy: &Tenancy, fixture: &Fixture, email: &str, role: Role) -> Joined {
    let owner_scope = scope(tenancy, &fixture.owner, fixture.workspace_id).await;
    let domain = tenancy.domain();
    let invitation = domain
        .create_invitation(
            &owner_scope,
            &Email::parse("email", email).unwrap(),
            role,
            domain.invitation_ttl(0).unwrap(),
        )
        .await
        .unwrap();
    let accepted = domain
        .accept_invitation(&invitation.token, None, None)
        .await
        .unwrap();
    let principal = principal_for(tenancy, &accepted.api_key.secret).await;
    Joined {
        user_id: accepted.member.user_id,
        api_key: accepted.api_key.secret,
        principal,
    }
}

/// The gRPC code of a failed domain call.
pub fn code_of<T: std::fmt::Debug>(result: crate::TenancyResult<T>) -> tonic::Code {
    result.expect_err("the call should fail").code()
}
