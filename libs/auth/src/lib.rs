//! Identity for the mesh: principal and service tokens signed by tenancy
//! (EdDSA JWTs with a key id), their verification against tenancy's published
//! key set, the one permission matrix for the four roles, and the workspace a
//! verified caller acts in.
#![forbid(unsafe_code)]

mod error;
mod permissions;
mod principal;
mod scope;
mod service_tokens;
pub mod testing;
mod tokens;
mod verifier;

#[cfg(test)]
mod forged_tokens;

pub use error::AuthError;
pub use permissions::{Permission, Role, operator_allows, role_allows};
pub use principal::{Principal, Subject, is_valid_service_name};
pub use scope::WorkspaceScope;
pub use service_tokens::ServiceTokenSource;
pub use tokens::{SigningKeyMaterial, TokenSigner, generate_signing_key};
pub use verifier::{GrpcKeySource, KeySource, PublicKey, TokenVerifier, bearer_token};
