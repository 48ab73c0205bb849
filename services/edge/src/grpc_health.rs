//! `grpc.health.v1.Health` on the edge's port, for Kubernetes gRPC probes and
//! load balancers that speak gRPC.
//!
//! It answers without an API key, like `/healthz`, and from the same state:
//! SERVING while the edge serves, NOT_SERVING once it drains, for the whole
//! edge (`""`) and for each public service. Any other name is unknown here.

use std::collections::HashSet;
use std::pin::Pin;
use std::sync::Arc;

use futures::{Stream, StreamExt as _};
use tokio::sync::watch;
use tonic::{Request, Response, Status};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_server::Health;
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};

#[derive(Clone, Debug)]
pub(crate) struct EdgeHealth {
    serving: watch::Receiver<bool>,
    /// The public services, which are as healthy as the edge in front of them.
    services: Arc<HashSet<String>>,
}

impl EdgeHealth {
    pub(crate) fn new(serving: watch::Receiver<bool>, services: HashSet<String>) -> EdgeHealth {
        EdgeHealth {
            serving,
            services: Arc::new(services),
        }
    }

    fn knows(&self, service: &str) -> bool {
        service.is_empty() || self.services.contains(service)
    }
}

fn status_of(serving: bool) -> HealthCheckResponse {
    let status = if serving {
        ServingStatus::Serving
    } else {
        ServingStatus::NotServing
    };
    HealthCheckResponse {
        status: status as i32,
    }
}

type HealthStream = Pin<Box<dyn Stream<Item = Result<HealthCheckResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Health for EdgeHealth {
    async fn check(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        let service = request.into_inner().service;
        if !self.knows(&service) {
            // What the health protocol asks for a name the server does not know.
            return Err(Status::not_found(format!(
                "unknown service {service}; the edge reports on \"\" and its public services"
            )));
        }
        Ok(Response::new(status_of(*self.serving.borrow())))
    }

    type WatchStream = HealthStream;

    async fn watch(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let service = request.into_inner().service;
        if !self.knows(&service) {
            // The protocol keeps a watch on an unknown name open, reporting
            // SERVICE_UNKNOWN; it stays unknown on the edge, so one is all.
            let unknown = HealthCheckResponse {
                status: ServingStatus::ServiceUnknown as i32,
            };
            let stream: HealthStream = Box::pin(
                futures::stream::once(async move { Ok(unknown) }).chain(futures::stream::pending()),
            );
            return Ok(Response::new(stream));
        }
        // The current status first, then every change until the edge stops.
        let mut serving = self.serving.clone();
        let first = *serving.borrow_and_update();
        let changes = futures::stream::unfold(serving, |mut serving| async move {
            serving.changed().await.ok()?;
            let now = *serving.borrow_and_update();
            Some((Ok(status_of(now)), serving))
        });
        let stream: HealthStream =
            Box::pin(futures::stream::once(async move { Ok(status_of(first)) }).chain(changes));
        Ok(Response::new(stream))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn health() -> (watch::Sender<bool>, EdgeHealth) {
        let (sender, receiver) = watch::channel(true);
        let services = HashSet::from(["tyboo.tenancy.v1.TenancyService".to_owned()]);
        (sender, EdgeHealth::new(receiver, services))
    }

    async fn check(health: &EdgeHealth, service: &str) -> Result<i32, Status> {
        health
            .check(Request::new(HealthCheckRequest {
                service: service.to_owned(),
            }))
            .await
            .map(|response| response.into_inner().status)
    }

    #[tokio::test]
    async fn serving_until_draining_for_the_edge_and_its_public_services() {
        let (sender, health) = health();
        assert_eq!(
            check(&health, "").await.unwrap(),
            ServingStatus::Serving as i32
        );
        assert_eq!(
            check(&health, "tyboo.tenancy.v1.TenancyService")
                .await
                .unwrap(),
            ServingStatus::Serving as i32
        );
        let unknown = check(&health, "tyboo.tenancy.v1.AuthService")
            .await
            .unwrap_err();
        assert_eq!(unknown.code(), tonic::Code::NotFound);

        let mut watch = health
            .watch(Request::new(HealthCheckRequest::default()))
            .await
            .unwrap()
            .into_inner();
        let first = watch.next().await.unwrap().unwrap();
        assert_eq!(first.status, ServingStatus::Serving as i32);
        sender.send_replace(false);
        let changed = watch.next().await.unwrap().unwrap();
        assert_eq!(changed.status, ServingStatus::NotServing as i32);
        assert_eq!(
            check(&health, "").await.unwrap(),
            ServingStatus::NotServing as i32
        );
    }
}
