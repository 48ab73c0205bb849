//! Thin gRPC adapters: authenticate, validate the request, call the domain,
//! convert the answer. No SQL and no rules live here.

mod access_service;
pub mod conversions;
mod credential_service;
mod key_management_service;

pub use access_service::CredentialAccessGrpc;
pub use credential_service::CredentialGrpc;
pub use key_management_service::KeyManagementGrpc;

use tonic::Request;
use tyboo_auth::Permission;

use crate::domain::{Domain, WorkspaceScope};
use crate::error::VaultResult;

/// The caller's scope, after verifying its token and `permission`.
async fn scope<T>(
    domain: &Domain,
    request: &Request<T>,
    permission: Permission,
) -> VaultResult<WorkspaceScope> {
    let bearer = tyboo_auth::bearer_token(request.metadata());
    domain.authorize(bearer, permission).await
}
