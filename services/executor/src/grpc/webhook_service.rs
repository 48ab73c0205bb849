//! `tyboo.executor.v1.WebhookService`, internal to the mesh. It takes no
//! principal token: the edge has no credential of its own for it yet, and
//! the hook URL (its token and path) is what a caller presents. It must only
//! be served on the executor's internal address, which the edge never
//! exposes.

use tonic::{Request, Response, Status};
use tyboo_proto::executor::webhook_service_server::WebhookService;
use tyboo_proto::executor::*;

use super::conversions::{execution_status_to_proto, json_message};
use crate::domain::Domain;
use crate::domain::webhooks::{WebhookMode as Mode, WebhookRequest};

#[derive(Clone, Debug)]
pub struct WebhookGrpc {
    domain: Domain,
}

impl WebhookGrpc {
    pub fn new(domain: Domain) -> Self {
        Self { domain }
    }
}

#[tonic::async_trait]
impl WebhookService for WebhookGrpc {
    #[tracing::instrument(skip(self, request))]
    async fn deliver_webhook(
        &self,
        request: Request<DeliverWebhookRequest>,
    ) -> Result<Response<DeliverWebhookResponse>, Status> {
        let deadline = tyboo_runtime::context::current().and_then(|context| context.deadline);
        let DeliverWebhookRequest {
            token,
            path,
            method,
            headers,
            query,
            body,
            delivery_id,
        } = request.into_inner();
        let headers = headers
            .into_iter()
            .map(|(name, value)| (name.to_ascii_lowercase(), value))
            .collect();
        let reply = self
            .domain
            .deliver_webhook(WebhookRequest {
                token,
                path,
                method,
                headers,
                query,
                body,
                delivery_id,
                deadline,
            })
            .await?;
        let mode = match reply.mode {
            Mode::Async => WebhookMode::Async,
            Mode::Sync => WebhookMode::Sync,
        };
        let (status_code, response_body, timed_out) = match reply.sync {
            Some(sync) => (
                sync.status_code,
                Some(json_message(&sync.body)),
                sync.timed_out,
            ),
            None => (0, None, false),
        };
        Ok(Response::new(DeliverWebhookResponse {
            execution_id: reply.execution_id.to_string(),
            mode: mode as i32,
            duplicate: reply.duplicate,
            status_code,
            response_body,
            timed_out,
            status: execution_status_to_proto(reply.status) as i32,
        }))
    }
}
