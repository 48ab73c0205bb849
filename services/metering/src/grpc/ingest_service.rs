//! `tyboo.metering.v1.MeteringIngestService`: the executor's outbox
//! delivers here, with a service token.

use tonic::{Request, Response, Status};
use tyboo_proto::metering::metering_ingest_service_server::MeteringIngestService;
use tyboo_proto::metering::{RecordUsageRequest, RecordUsageResponse};

use super::conversions::records_from_proto;
use crate::domain::Domain;
use crate::error::MeteringError;

#[derive(Clone, Debug)]
pub struct MeteringIngestGrpc {
    domain: Domain,
}

impl MeteringIngestGrpc {
    pub fn new(domain: Domain) -> Self {
        Self { domain }
    }
}

#[tonic::async_trait]
impl MeteringIngestService for MeteringIngestGrpc {
    #[tracing::instrument(skip(self, request), fields(records = request.get_ref().records.len()))]
    async fn record_usage(
        &self,
        request: Request<RecordUsageRequest>,
    ) -> Result<Response<RecordUsageResponse>, Status> {
        let bearer = tyboo_auth::bearer_token(request.metadata());
        self.domain.authorize_recorder(bearer).await?;
        let records = request.into_inner().records;
        let max = self.domain.config().max_batch_records as usize;
        if records.is_empty() || records.len() > max {
            return Err(MeteringError::invalid(
                "records",
                format!(
                    "must hold 1 to {max} records (metering.max_batch_records), got {}",
                    records.len()
                ),
            )
            .into());
        }
        let recorded = self.domain.record(records_from_proto(records)?).await?;
        Ok(Response::new(RecordUsageResponse {
            recorded: u32::try_from(recorded.recorded).unwrap_or(u32::MAX),
            duplicates: u32::try_from(recorded.duplicates).unwrap_or(u32::MAX),
        }))
    }
}
