//! The gRPC server every service runs: its routes plus `grpc.health.v1`,
//! server reflection (v1 and v1alpha, so every grpcurl works) listing exactly
//! those, an `UNIMPLEMENTED` that names any other service asked for, request
//! context and metrics layers, message-size limits, and a graceful drain.

use std::convert::Infallible;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::server::NamedService;
use tonic::service::Routes;
use tonic_health::ServingStatus;
use tower::{Service, ServiceBuilder};

use crate::context::RequestContextLayer;
use crate::grpc_metrics::GrpcMetricsLayer;
use crate::message_limits::MessageLimits;
use crate::reflection;
use crate::shutdown::Shutdown;
use crate::unserved::Unserved;

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GrpcConfig {
    /// Largest message a server decodes or encodes, in bytes.
    pub max_message_bytes: usize,
    /// Serve `grpc.reflection` so grpcurl works without proto files. It
    /// lists the server's own services, health and reflection, nothing else.
    pub reflection: bool,
    /// How long in-flight calls may take to finish after SIGTERM.
    pub drain_timeout_seconds: u64,
    /// Most concurrent streams a client may open on one connection.
    pub max_concurrent_streams: u32,
}

impl Default for GrpcConfig {
    fn default() -> Self {
        Self {
            max_message_bytes: 4 * 1024 * 1024,
            reflection: true,
            drain_timeout_seconds: 30,
            max_concurrent_streams: 256,
        }
    }
}

/// A gRPC server about to run: the services a caller added and their names
/// (for health, reflection and the answer to a call on any other service).
/// Every service decodes and encodes messages up to the configured
/// `max_message_bytes`, applied here and nowhere else.
#[derive(Default)]
pub struct GrpcServer {
    services: Vec<(&'static str, AddService)>,
}

/// Adds one service, limited to the given message size, to the routes.
type AddService = Box<dyn FnOnce(Routes, usize) -> Routes + Send>;

impl GrpcServer {
    pub fn new() -> Self {
        Self::default()
    }

    /// Serves `service` under the name its contract gives it.
    pub fn with<S>(mut self, service: S) -> Self
    where
        S: MessageLimits
            + Service<http::Request<tonic::body::Body>, Error = Infallible>
            + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Response: axum::response::IntoResponse,
        S::Future: Send + 'static,
    {
        self.services.push((
            S::NAME,
            Box::new(move |routes: Routes, max_message_bytes| {
                routes.add_service(service.limit_messages(max_message_bytes))
            }),
        ));
        self
    }

    /// Serves on `listener` until `shutdown` fires, then reports NOT_SERVING,
    /// stops accepting and lets in-flight calls finish (for at most the drain
    /// timeout).
    pub async fn serve(
        self,
        listener: TcpListener,
        config: &GrpcConfig,
        shutdown: Shutdown,
    ) -> Result<(), tonic::transport::Error> {
        let mut service_names = Vec::new();
        let mut routes = Routes::default();
        for (name, add) in self.services {
            service_names.push(name);
            routes = add(routes, config.max_message_bytes);
        }

        let (health_reporter, health_service) = tonic_health::server::health_reporter();
        health_reporter
            .set_service_status("", ServingStatus::Serving)
            .await;
        for name in &service_names {
            health_reporter
                .set_service_status(*name, ServingStatus::Serving)
                .await;
        }

        let mut routes = routes.add_service(health_service);
        let reflection_switch = if config.reflection {
            routes = routes
                .add_service(reflection::v1(&service_names))
                .add_service(reflection::v1alpha(&service_names));
            None
        } else {
            Some("grpc.reflection")
        };
        // A call to any other service (one of another port, most likely)
        // is told which service it asked for and who serves it.
        let unserved = Unserved::new(&service_names, reflection_switch);
        let routes = Routes::from(routes.into_axum_router().fallback(unserved.into_fallback()));

        // Context first, so metrics and handlers run inside the request's
        // span and see its id.
        let layers = ServiceBuilder::new()
            .layer(RequestContextLayer)
            .layer(GrpcMetricsLayer)
            .layer(crate::status_codes::StatusCodesLayer);

        let names = service_names.clone();
        let drain_started = {
            let shutdown = shutdown.clone();
            async move {
                shutdown.signaled().await;
                health_reporter
                    .set_service_status("", ServingStatus::NotServing)
                    .await;
                for name in &names {
                    health_reporter
                        .set_service_status(*name, ServingStatus::NotServing)
                        .await;
                }
                tracing::info!("grpc server draining");
            }
        };
        let server = tonic::transport::Server::builder()
            .tcp_nodelay(true)
            .http2_keepalive_interval(Some(Duration::from_secs(30)))
            .max_concurrent_streams(config.max_concurrent_streams)
            .layer(layers)
            .add_routes(routes)
            .serve_with_incoming_shutdown(TcpListenerStream::new(listener), drain_started);

        let drain_timeout = Duration::from_secs(config.drain_timeout_seconds);
        tokio::select! {
            result = server => result,
            () = async {
                shutdown.signaled().await;
                tokio::time::sleep(drain_timeout).await;
            } => {
                tracing::warn!("drain timeout passed with calls still open; stopping");
                Ok(())
            }
        }
    }
}
