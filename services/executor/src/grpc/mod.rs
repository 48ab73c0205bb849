//! Thin gRPC adapters: authenticate, validate the request, call the domain,
//! convert the answer. No SQL and no rules live here.

mod circuit_breaker_service;
pub mod conversions;
mod dead_letter_service;
mod execution_service;
mod webhook_service;
mod workflow_service;

pub use circuit_breaker_service::CircuitBreakerGrpc;
pub use dead_letter_service::DeadLetterGrpc;
pub use execution_service::ExecutionGrpc;
pub use webhook_service::WebhookGrpc;
pub use workflow_service::WorkflowGrpc;

use tonic::Request;
use tyboo_auth::Permission;

use crate::domain::{Domain, WorkspaceScope};
use crate::error::ExecutorResult;

/// The caller's scope, after verifying its token and `permission`.
async fn scope<T>(
    domain: &Domain,
    request: &Request<T>,
    permission: Permission,
) -> ExecutorResult<WorkspaceScope> {
    let bearer = tyboo_auth::bearer_token(request.metadata());
    domain.authorize(bearer, permission).await
}
