//! The vault's internal access service as the domain's credential source,
//! called with the executor's own service token.

use std::time::Duration;

use async_trait::async_trait;
use tonic::transport::Channel;
use tyboo_auth::ServiceTokenSource;
use tyboo_proto::vault::credential_access_service_client::CredentialAccessServiceClient;
use tyboo_proto::vault::{CheckCredentialsRequest, DecryptCredentialRequest};
use uuid::Uuid;

use crate::domain::credentials::{
    CredentialSource, DecryptedCredential, ExistingCredential, VaultError,
};

/// Calls to the vault are on the path of a save or a node run; a vault that
/// does not answer must fail them, not hold them.
const VAULT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone, Debug)]
pub struct GrpcVault {
    channel: Channel,
    tokens: ServiceTokenSource,
}

impl GrpcVault {
    pub fn new(channel: Channel, tokens: ServiceTokenSource) -> Self {
        Self { channel, tokens }
    }

    async fn request<T>(&self, message: T) -> Result<tonic::Request<T>, VaultError> {
        let mut request = tonic::Request::new(message);
        request.set_timeout(VAULT_TIMEOUT);
        self.tokens
            .authorize(&mut request)
            .await
            .map_err(vault_error)?;
        Ok(request)
    }
}

#[async_trait]
impl CredentialSource for GrpcVault {
    async fn check(
        &self,
        workspace_id: Uuid,
        credential_ids: Vec<String>,
    ) -> Result<Vec<ExistingCredential>, VaultError> {
        let request = self
            .request(CheckCredentialsRequest {
                workspace_id: workspace_id.to_string(),
                credential_ids,
            })
            .await?;
        let response = CredentialAccessServiceClient::new(self.channel.clone())
            .check_credentials(request)
            .await
            .map_err(vault_error)?;
        Ok(response
            .into_inner()
            .credentials
            .into_iter()
            .map(|existing| ExistingCredential {
                credential_id: existing.credential_id,
                credential_type: existing.r#type,
                allowed_hosts: existing.allowed_hosts,
            })
            .collect())
    }

    async fn decrypt(
        &self,
        workspace_id: Uuid,
        credential_id: &str,
        execution_id: Uuid,
        node_id: &str,
    ) -> Result<DecryptedCredential, VaultError> {
        let request = self
            .request(DecryptCredentialRequest {
                workspace_id: workspace_id.to_string(),
                credential_id: credential_id.to_owned(),
                execution_id: execution_id.to_string(),
                node_id: node_id.to_owned(),
            })
            .await?;
        let response = CredentialAccessServiceClient::new(self.channel.clone())
            .decrypt_credential(request)
            .await
            .map_err(vault_error)?
            .into_inner();
        let fields = response
            .fields
            .map(|fields| {
                fields
                    .fields
                    .into_iter()
                    .filter_map(|(name, value)| match value.kind {
                        Some(prost_types::value::Kind::StringValue(text)) => Some((name, text)),
                        _ => None,
                    })
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        Ok(DecryptedCredential {
            credential_type: response.r#type,
            fields,
            allowed_hosts: response.allowed_hosts,
        })
    }
}

/// A refused or failed call, by what the caller can do about it.
fn vault_error(status: tonic::Status) -> VaultError {
    let message = status.message().to_owned();
    match status.code() {
        tonic::Code::Unavailable | tonic::Code::DeadlineExceeded => {
            VaultError::Unreachable(message)
        }
        tonic::Code::Aborted
        | tonic::Code::ResourceExhausted
        | tonic::Code::Internal
        | tonic::Code::Unknown => VaultError::Transient(message),
        _ => VaultError::Refused(message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_sort_into_what_a_caller_can_do() {
        for code in [tonic::Code::Unavailable, tonic::Code::DeadlineExceeded] {
            assert!(matches!(
                vault_error(tonic::Status::new(code, "down")),
                VaultError::Unreachable(message) if message == "down"
            ));
        }
        for code in [
            tonic::Code::Aborted,
            tonic::Code::ResourceExhausted,
            tonic::Code::Internal,
            tonic::Code::Unknown,
        ] {
            assert!(matches!(
                vault_error(tonic::Status::new(code, "busy")),
                VaultError::Transient(_)
            ));
        }
        for code in [
            tonic::Code::NotFound,
            tonic::Code::PermissionDenied,
            tonic::Code::InvalidArgument,
        ] {
            assert!(matches!(
                vault_error(tonic::Status::new(code, "no")),
                VaultError::Refused(_)
            ));
        }
    }
}
