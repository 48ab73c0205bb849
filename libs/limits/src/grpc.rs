//! Tenancy's `LimitsService` as a [`LimitsSource`], called with the
//! caller's own service token.

use std::time::Duration;

use async_trait::async_trait;
use tonic::Code;
use tonic::transport::Channel;
use tyboo_auth::ServiceTokenSource;
use tyboo_proto::tenancy::GetWorkspaceLimitsRequest;
use tyboo_proto::tenancy::limits_service_client::LimitsServiceClient;
use uuid::Uuid;

use crate::{Limits, LimitsError, LimitsSource};

/// A limits read is on the path of a request; tenancy must answer quickly
/// or the cache serves what it has.
const TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Clone, Debug)]
pub struct GrpcLimits {
    channel: Channel,
    tokens: ServiceTokenSource,
}

impl GrpcLimits {
    pub fn new(channel: Channel, tokens: ServiceTokenSource) -> Self {
        Self { channel, tokens }
    }
}

#[async_trait]
impl LimitsSource for GrpcLimits {
    async fn limits(&self, workspace_id: Uuid) -> Result<Limits, LimitsError> {
        let mut request = tonic::Request::new(GetWorkspaceLimitsRequest {
            workspace_id: workspace_id.to_string(),
        });
        request.set_timeout(TIMEOUT);
        self.tokens
            .authorize(&mut request)
            .await
            .map_err(|status| LimitsError::Unavailable(status.message().to_owned()))?;
        let response = LimitsServiceClient::new(self.channel.clone())
            .get_workspace_limits(request)
            .await
            .map_err(|status| match status.code() {
                Code::NotFound => LimitsError::NotFound,
                _ => LimitsError::Unavailable(format!("{}: {}", status.code(), status.message())),
            })?
            .into_inner();
        let limits = response
            .limits
            .ok_or_else(|| LimitsError::Unavailable("tenancy sent no limits".to_owned()))?;
        Ok(Limits::from_proto(&limits))
    }
}
