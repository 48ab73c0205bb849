//! `tyboo.vault.v1.CredentialService`: metadata in, metadata out. Fields go
//! in sealed and never come back.

use tonic::{Request, Response, Status};
use tyboo_auth::Permission;
use tyboo_proto::vault::credential_service_server::CredentialService;
use tyboo_proto::vault::*;

use super::conversions::{
    credential_to_proto, credential_type_to_proto, fields_from_proto, parse_id,
};
use super::scope;
use crate::domain::{Domain, NewCredential, Replacement, types};

#[derive(Clone, Debug)]
pub struct CredentialGrpc {
    domain: Domain,
}

impl CredentialGrpc {
    pub fn new(domain: Domain) -> Self {
        Self { domain }
    }
}

#[tonic::async_trait]
impl CredentialService for CredentialGrpc {
    #[tracing::instrument(skip(self, request))]
    async fn create_credential(
        &self,
        request: Request<CreateCredentialRequest>,
    ) -> Result<Response<CreateCredentialResponse>, Status> {
        let scope = scope(&self.domain, &request, Permission::CredentialsWrite).await?;
        let CreateCredentialRequest {
            name,
            r#type,
            fields,
            allowed_hosts,
        } = request.into_inner();
        let new = NewCredential {
            name,
            credential_type: r#type,
            fields: fields_from_proto(fields)?,
            allowed_hosts,
        };
        let view = self.domain.create_credential(&scope, new).await?;
        Ok(Response::new(CreateCredentialResponse {
            credential: Some(credential_to_proto(&view)),
        }))
    }

    #[tracing::instrument(skip(self, request))]
    async fn replace_credential(
        &self,
        request: Request<ReplaceCredentialRequest>,
    ) -> Result<Response<ReplaceCredentialResponse>, Status> {
        let scope = scope(&self.domain, &request, Permission::CredentialsWrite).await?;
        let ReplaceCredentialRequest {
            credential_id,
            fields,
            allowed_hosts,
            expected_version,
        } = request.into_inner();
        let credential_id = parse_id(&credential_id, "credential")?;
        let replacement = Replacement {
            fields: fields_from_proto(fields)?,
            allowed_hosts: allowed_hosts.map(|AllowedHosts { hosts }| hosts),
            expected_version,
        };
        let view = self
            .domain
            .replace_credential(&scope, credential_id, replacement)
            .await?;
        Ok(Response::new(ReplaceCredentialResponse {
            credential: Some(credential_to_proto(&view)),
        }))
    }

    #[tracing::instrument(skip(self, request))]
    async fn get_credential(
        &self,
        request: Request<GetCredentialRequest>,
    ) -> Result<Response<GetCredentialResponse>, Status> {
        let scope = scope(&self.domain, &request, Permission::CredentialsRead).await?;
        let GetCredentialRequest { credential_id } = request.into_inner();
        let credential_id = parse_id(&credential_id, "credential")?;
        let view = self.domain.get_credential(&scope, credential_id).await?;
        Ok(Response::new(GetCredentialResponse {
            credential: Some(credential_to_proto(&view)),
        }))
    }

    #[tracing::instrument(skip(self, request))]
    async fn list_credentials(
        &self,
        request: Request<ListCredentialsRequest>,
    ) -> Result<Response<ListCredentialsResponse>, Status> {
        let scope = scope(&self.domain, &request, Permission::CredentialsRead).await?;
        let ListCredentialsRequest {
            page_size,
            page_token,
            r#type,
        } = request.into_inner();
        let (views, next_page_token) = self
            .domain
            .list_credentials(&scope, page_size, &page_token, &r#type)
            .await?;
        Ok(Response::new(ListCredentialsResponse {
            credentials: views.iter().map(credential_to_proto).collect(),
            next_page_token,
        }))
    }

    #[tracing::instrument(skip(self, request))]
    async fn delete_credential(
        &self,
        request: Request<DeleteCredentialRequest>,
    ) -> Result<Response<DeleteCredentialResponse>, Status> {
        let scope = scope(&self.domain, &request, Permission::CredentialsWrite).await?;
        let DeleteCredentialRequest { credential_id } = request.into_inner();
        let credential_id = parse_id(&credential_id, "credential")?;
        self.domain.delete_credential(&scope, credential_id).await?;
        Ok(Response::new(DeleteCredentialResponse {}))
    }

    #[tracing::instrument(skip(self, request))]
    async fn list_credential_types(
        &self,
        request: Request<ListCredentialTypesRequest>,
    ) -> Result<Response<ListCredentialTypesResponse>, Status> {
        scope(&self.domain, &request, Permission::CredentialsRead).await?;
        let ListCredentialTypesRequest {} = request.into_inner();
        Ok(Response::new(ListCredentialTypesResponse {
            credential_types: types::catalog()
                .iter()
                .map(credential_type_to_proto)
                .collect(),
        }))
    }
}
