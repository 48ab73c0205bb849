//! The [`Edge`] handle: built once from the config, the descriptor set and
//! the upstream channels; cheap to clone.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use http::{HeaderValue, StatusCode, header};
use prost_reflect::{DescriptorPool, SerializeOptions};
use tokio::sync::watch;
use tonic::transport::Channel;
use tower::ServiceBuilder;

use crate::auth::Authenticator;
use crate::config::EdgeConfig;
use crate::errors::{EdgeError, EdgeResult};
use crate::grpc_health::EdgeHealth;
use crate::own_grpc::OwnGrpc;
use crate::rate_limits::RateLimits;
use crate::routes::RouteTable;
use crate::state::{GrpcTarget, Shared};
use crate::{dispatch, layers, openapi, webhooks};

/// One public service and the channel that reaches it.
pub struct Upstream {
    /// Full service name, e.g. `tyboo.tenancy.v1.TenancyService`.
    pub service: String,
    pub channel: Channel,
}

/// The public entry point: HTTP/JSON transcoding, native gRPC passthrough
/// (with `grpc.health.v1`, and reflection when switched on), `/openapi.json`,
/// `/healthz` and webhooks, all on one listener. Metrics
/// are operations data (every tenant's totals): they are served only on the
/// process's admin listener, never here.
#[derive(Clone)]
pub struct Edge {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Edge {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Edge")
            .field("routes", &self.shared.routes.routes().len())
            .field("services", &self.shared.channels.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Edge {
    /// `public` are the services routed for the public (HTTP/JSON from their
    /// annotations and native gRPC passthrough); `auth` reaches tenancy's
    /// `AuthService`, which turns API keys into principal tokens.
    pub fn new(config: EdgeConfig, public: Vec<Upstream>, auth: Channel) -> EdgeResult<Edge> {
        config.validate()?;
        let pool = DescriptorPool::decode(tyboo_proto::FILE_DESCRIPTOR_SET)?;

        let mut channels = HashMap::new();
        let mut grpc_targets = HashMap::new();
        let mut seen = HashSet::new();
        for upstream in public {
            if !seen.insert(upstream.service.clone()) {
                return Err(EdgeError::DuplicateService(upstream.service));
            }
            let service = pool
                .get_service_by_name(&upstream.service)
                .ok_or_else(|| EdgeError::UnknownService(upstream.service.clone()))?;
            for method in service.methods() {
                let path = format!("/{}/{}", service.full_name(), method.name());
                let target = GrpcTarget {
                    channel: upstream.channel.clone(),
                    label: Arc::from(path.as_str()),
                };
                grpc_targets.insert(path, target);
            }
            channels.insert(upstream.service, upstream.channel);
        }
        let mut service_names: Vec<String> = channels.keys().cloned().collect();
        service_names.sort();
        let routes = RouteTable::build(&pool, &service_names)?;
        let openapi = Bytes::from(openapi::document(&routes).to_string());

        // The process recorder must exist before the first request is counted.
        tyboo_runtime::telemetry::init_metrics();
        crate::metrics::describe();
        tracing::info!(
            routes = routes.routes().len(),
            services = ?service_names,
            "edge routes built from the descriptor set"
        );

        let (serving, serving_changes) = watch::channel(true);
        let public_names: Vec<&str> = service_names.iter().map(String::as_str).collect();
        let health = EdgeHealth::new(serving_changes, service_names.iter().cloned().collect());
        let own_grpc = OwnGrpc::new(health, &public_names, config.grpc_reflection);

        let serialize_options =
            SerializeOptions::new().skip_default_fields(!config.json_emit_defaults);
        let authenticator = Authenticator::new(
            auth,
            Duration::from_secs(config.auth_cache_ttl_seconds),
            config.auth_cache_max_entries,
        );
        Ok(Edge {
            shared: Arc::new(Shared {
                config,
                routes,
                channels,
                grpc_targets,
                authenticator,
                webhooks: OnceLock::new(),
                serialize_options,
                own_grpc,
                openapi,
                serving,
                rate_limits: OnceLock::new(),
            }),
        })
    }

    /// Serves `/hooks/{token}/{path}` by handing each request to the
    /// executor's internal `WebhookService` on `channel`. Call before the
    /// router is built.
    pub fn with_webhooks(self, channel: Channel) -> Edge {
        // Set once, before serving; a second call keeps the first channel.
        let _ = self.shared.webhooks.set(channel);
        self
    }

    /// Checks the request rate limits with `limits` (a limiter shared by
    /// every replica through Redis, and the workspaces' own limits) instead
    /// of the in-process default. Call before the router is built.
    pub fn with_rate_limits(self, limits: RateLimits) -> Edge {
        // Set once, before serving; a second call keeps the first.
        let _ = self.shared.rate_limits.set(limits);
        self
    }

    /// Every route of the edge, wrapped in its middleware stack, behind the
    /// path normalization that must happen before routing.
    pub fn router(&self) -> Router {
        let router = Router::new()
            .route("/healthz", get(healthz))
            .route("/openapi.json", get(openapi_json))
            .route(
                "/hooks/{token}/{*path}",
                axum::routing::any(webhooks::deliver),
            )
            .fallback(dispatch::dispatch)
            .with_state(Arc::clone(&self.shared));
        let routed = layers::apply(router, &self.shared.config);
        Router::new().fallback_service(
            ServiceBuilder::new()
                .map_request(layers::normalize_path::normalize_request)
                .service(routed),
        )
    }

    /// Follows tenancy's access changes with the edge's own service tokens
    /// and drops the cached tokens they make stale, every
    /// `auth_changes_poll_ms`, until `stop` completes. Run it for as long as
    /// the edge serves; without it a changed role or a revoked key keeps
    /// working through the edge until its cached token ages out.
    pub fn watch_access_changes(
        &self,
        tokens: tyboo_auth::ServiceTokenSource,
        stop: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> tokio::task::JoinHandle<()> {
        crate::access_watch::spawn(
            self.shared.authenticator.clone(),
            tokens,
            Duration::from_millis(self.shared.config.auth_changes_poll_ms),
            stop,
        )
    }

    /// Marks the edge as serving or draining; `/healthz` answers 503 and
    /// `grpc.health.v1` NOT_SERVING while draining, so load balancers and
    /// probes stop sending new traffic.
    pub fn set_serving(&self, serving: bool) {
        self.shared.serving.send_replace(serving);
    }
}

async fn healthz(State(shared): State<Arc<Shared>>) -> Response {
    let (status, text) = if *shared.serving.borrow() {
        (StatusCode::OK, "SERVING")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "NOT_SERVING")
    };
    (status, axum::Json(serde_json::json!({ "status": text }))).into_response()
}

async fn openapi_json(State(shared): State<Arc<Shared>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        shared.openapi.clone(),
    )
        .into_response()
}
