//! `tyboo.tenancy.v1.AuthService`: internal to the mesh.

use tonic::{Request, Response, Status};
use tyboo_proto::tenancy::auth_service_server::AuthService;
use tyboo_proto::tenancy::*;

use super::conversions::timestamp;
use crate::domain::validation::ServiceName;
use crate::domain::{AccessChangesQuery, Domain};
use crate::error::TenancyError;

#[derive(Clone, Debug)]
pub struct AuthGrpc {
    domain: Domain,
}

impl AuthGrpc {
    pub fn new(domain: Domain) -> Self {
        Self { domain }
    }
}

#[tonic::async_trait]
impl AuthService for AuthGrpc {
    #[tracing::instrument(skip(self, request))]
    async fn authenticate(
        &self,
        request: Request<AuthenticateRequest>,
    ) -> Result<Response<AuthenticateResponse>, Status> {
        let AuthenticateRequest { api_key } = request.into_inner();
        if api_key.is_empty() {
            return Err(TenancyError::invalid("api_key", "must be set").into());
        }
        let issued = self.domain.authenticate_api_key(&api_key).await?;
        Ok(Response::new(AuthenticateResponse {
            token: issued.token,
            expire_time: Some(timestamp(issued.expire_time)),
            principal: Some(issued.principal.to_proto()),
        }))
    }

    #[tracing::instrument(skip(self, request))]
    async fn get_signing_keys(
        &self,
        request: Request<GetSigningKeysRequest>,
    ) -> Result<Response<GetSigningKeysResponse>, Status> {
        let GetSigningKeysRequest {} = request.into_inner();
        let keys = self.domain.signing_keys().await?;
        Ok(Response::new(GetSigningKeysResponse {
            keys: keys.into_iter().map(Into::into).collect(),
        }))
    }

    #[tracing::instrument(skip(self, request))]
    async fn issue_service_token(
        &self,
        request: Request<IssueServiceTokenRequest>,
    ) -> Result<Response<IssueServiceTokenResponse>, Status> {
        let IssueServiceTokenRequest { service, secret } = request.into_inner();
        let service = ServiceName::parse("service", &service)?;
        if secret.is_empty() {
            return Err(TenancyError::invalid("secret", "must be set").into());
        }
        let issued = self.domain.issue_service_token(&service, &secret).await?;
        Ok(Response::new(IssueServiceTokenResponse {
            token: issued.token,
            expire_time: Some(timestamp(issued.expire_time)),
        }))
    }

    #[tracing::instrument(skip(self, request))]
    async fn rotate_signing_key(
        &self,
        request: Request<RotateSigningKeyRequest>,
    ) -> Result<Response<RotateSigningKeyResponse>, Status> {
        let bearer = tyboo_auth::bearer_token(request.metadata());
        let caller = self.domain.verify_caller(bearer).await?;
        let RotateSigningKeyRequest {} = request.into_inner();
        let key = self.domain.rotate_signing_key(&caller).await?;
        Ok(Response::new(RotateSigningKeyResponse {
            key: Some(key.into()),
        }))
    }

    #[tracing::instrument(skip(self, request))]
    async fn list_access_changes(
        &self,
        request: Request<ListAccessChangesRequest>,
    ) -> Result<Response<ListAccessChangesResponse>, Status> {
        let bearer = tyboo_auth::bearer_token(request.metadata());
        let caller = self.domain.verify_caller(bearer).await?;
        let ListAccessChangesRequest {
            after,
            page_size,
            head_only,
        } = request.into_inner();
        let query = if head_only {
            AccessChangesQuery::Head
        } else {
            if after < 0 {
                return Err(TenancyError::invalid("after", "must not be negative").into());
            }
            AccessChangesQuery::After {
                after,
                page_size: self.domain.access_changes_page_size(page_size)?,
            }
        };
        let page = self.domain.list_access_changes(&caller, query).await?;
        Ok(Response::new(page.into()))
    }
}
