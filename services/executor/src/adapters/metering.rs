//! Metering's ingest service as the outbox's destination, called with the
//! executor's own service token.

use std::time::Duration;

use async_trait::async_trait;
use tonic::transport::Channel;
use tyboo_auth::ServiceTokenSource;
use tyboo_proto::convert::timestamp;
use tyboo_proto::metering as pb;
use tyboo_proto::metering::metering_ingest_service_client::MeteringIngestServiceClient;

use crate::domain::usage::{DeliveryError, EXECUTION, LLM_CALL, TASK, UsageSink};
use crate::storage::entities::usage_outbox;

/// A batch is at most a thousand small rows; a metering that takes longer
/// is treated as down and the batch goes again later.
const METERING_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone, Debug)]
pub struct GrpcMetering {
    channel: Channel,
    tokens: ServiceTokenSource,
}

impl GrpcMetering {
    pub fn new(channel: Channel, tokens: ServiceTokenSource) -> Self {
        Self { channel, tokens }
    }
}

/// The contract's record of an outbox row.
pub fn record_of(row: &usage_outbox::Model) -> pb::UsageRecord {
    let kind = match row.kind.as_str() {
        EXECUTION => pb::UsageKind::Execution,
        TASK => pb::UsageKind::Task,
        LLM_CALL => pb::UsageKind::LlmCall,
        _ => pb::UsageKind::Unspecified,
    };
    pb::UsageRecord {
        idempotency_key: row.idempotency_key.clone(),
        kind: kind.into(),
        workspace_id: row.workspace_id.to_string(),
        workflow_id: row.workflow_id.to_string(),
        execution_id: row.execution_id.to_string(),
        node_id: row.node_id.clone(),
        occurred_at: Some(timestamp(row.occurred_at)),
        llm: (kind == pb::UsageKind::LlmCall).then(|| pb::LlmCall {
            provider_host: row.provider_host.clone(),
            model: row.model.clone(),
            input_tokens: row.input_tokens,
            output_tokens: row.output_tokens,
        }),
    }
}

#[async_trait]
impl UsageSink for GrpcMetering {
    async fn deliver(&self, rows: &[usage_outbox::Model]) -> Result<(), DeliveryError> {
        let mut request = tonic::Request::new(pb::RecordUsageRequest {
            records: rows.iter().map(record_of).collect(),
        });
        request.set_timeout(METERING_TIMEOUT);
        self.tokens.authorize(&mut request).await.map_err(|error| {
            DeliveryError::Unavailable(format!("no service token for metering: {error}"))
        })?;
        MeteringIngestServiceClient::new(self.channel.clone())
            .record_usage(request)
            .await
            .map(|_| ())
            .map_err(|status| {
                let message = format!("{:?}: {}", status.code(), status.message());
                match status.code() {
                    tonic::Code::InvalidArgument => DeliveryError::Refused(message),
                    _ => DeliveryError::Unavailable(message),
                }
            })
    }
}
