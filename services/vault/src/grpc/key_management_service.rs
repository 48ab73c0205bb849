//! `tyboo.vault.v1.KeyManagementService`: master key status and rewrap, for
//! service tokens. No key material ever leaves through it.

use tonic::{Request, Response, Status};
use tyboo_proto::vault::key_management_service_server::KeyManagementService;
use tyboo_proto::vault::*;

use super::conversions::{master_keys_to_proto, rewrap_to_proto, rotation_status_to_proto};
use crate::domain::Domain;

#[derive(Clone, Debug)]
pub struct KeyManagementGrpc {
    domain: Domain,
}

impl KeyManagementGrpc {
    pub fn new(domain: Domain) -> Self {
        Self { domain }
    }
}

#[tonic::async_trait]
impl KeyManagementService for KeyManagementGrpc {
    #[tracing::instrument(skip(self, request))]
    async fn list_master_keys(
        &self,
        request: Request<ListMasterKeysRequest>,
    ) -> Result<Response<ListMasterKeysResponse>, Status> {
        let bearer = tyboo_auth::bearer_token(request.metadata());
        let caller = self.domain.authorize_operator(bearer).await?;
        let ListMasterKeysRequest {} = request.into_inner();
        let view = self.domain.list_master_keys(&caller).await?;
        Ok(Response::new(master_keys_to_proto(view)))
    }

    #[tracing::instrument(skip(self, request))]
    async fn rewrap_credentials(
        &self,
        request: Request<RewrapCredentialsRequest>,
    ) -> Result<Response<RewrapCredentialsResponse>, Status> {
        let bearer = tyboo_auth::bearer_token(request.metadata());
        let caller = self.domain.authorize_operator(bearer).await?;
        let RewrapCredentialsRequest { batch_size } = request.into_inner();
        let outcome = self.domain.rewrap_credentials(&caller, batch_size).await?;
        Ok(Response::new(rewrap_to_proto(outcome)))
    }

    #[tracing::instrument(skip(self, request))]
    async fn get_rotation_status(
        &self,
        request: Request<GetRotationStatusRequest>,
    ) -> Result<Response<GetRotationStatusResponse>, Status> {
        let bearer = tyboo_auth::bearer_token(request.metadata());
        let caller = self.domain.authorize_operator(bearer).await?;
        let GetRotationStatusRequest {} = request.into_inner();
        let status = self.domain.rotation_status(&caller).await?;
        Ok(Response::new(rotation_status_to_proto(status)))
    }
}
