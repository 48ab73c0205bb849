//! `tyboo.vault.v1.CredentialAccessService`: plaintext for mesh services.
//! The caller is checked before the request is even read, so any other
//! caller gets the same NOT_FOUND whatever it asked for.

use tonic::{Request, Response, Status};
use tyboo_proto::vault::credential_access_service_server::CredentialAccessService;
use tyboo_proto::vault::*;

use super::conversions::{decrypted_to_proto, parse_id};
use crate::domain::{DecryptRequest, Domain};

#[derive(Clone, Debug)]
pub struct CredentialAccessGrpc {
    domain: Domain,
}

impl CredentialAccessGrpc {
    pub fn new(domain: Domain) -> Self {
        Self { domain }
    }
}

#[tonic::async_trait]
impl CredentialAccessService for CredentialAccessGrpc {
    // The response carries plaintext: it is never logged, and the span
    // records no field of the request either.
    #[tracing::instrument(skip(self, request))]
    async fn decrypt_credential(
        &self,
        request: Request<DecryptCredentialRequest>,
    ) -> Result<Response<DecryptCredentialResponse>, Status> {
        let bearer = tyboo_auth::bearer_token(request.metadata());
        let caller = self.domain.authorize_credential_user(bearer).await?;
        let DecryptCredentialRequest {
            workspace_id,
            credential_id,
            execution_id,
            node_id,
        } = request.into_inner();
        let request = DecryptRequest {
            workspace_id: parse_id(&workspace_id, "credential")?,
            credential_id: parse_id(&credential_id, "credential")?,
            execution_id,
            node_id,
        };
        let decrypted = self.domain.decrypt_credential(&caller, request).await?;
        Ok(Response::new(decrypted_to_proto(&decrypted)))
    }

    #[tracing::instrument(skip(self, request))]
    async fn check_credentials(
        &self,
        request: Request<CheckCredentialsRequest>,
    ) -> Result<Response<CheckCredentialsResponse>, Status> {
        let bearer = tyboo_auth::bearer_token(request.metadata());
        let caller = match self.domain.authorize_credential_user(bearer).await {
            Ok(caller) => caller,
            // A caller who may not use credentials sees none exist.
            Err(crate::VaultError::NotFound(_)) => {
                return Ok(Response::new(CheckCredentialsResponse {
                    credentials: Vec::new(),
                }));
            }
            Err(error) => return Err(error.into()),
        };
        let CheckCredentialsRequest {
            workspace_id,
            credential_ids,
        } = request.into_inner();
        let Ok(workspace_id) = parse_id(&workspace_id, "credential") else {
            return Ok(Response::new(CheckCredentialsResponse {
                credentials: Vec::new(),
            }));
        };
        let existing = self
            .domain
            .check_credentials(&caller, workspace_id, &credential_ids)
            .await?;
        Ok(Response::new(CheckCredentialsResponse {
            credentials: existing
                .into_iter()
                .map(|(id, credential_type, allowed_hosts)| ExistingCredential {
                    credential_id: id.to_string(),
                    r#type: credential_type,
                    allowed_hosts,
                })
                .collect(),
        }))
    }
}
