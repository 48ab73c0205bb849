//! The gRPC services the edge answers itself on its native gRPC face, before
//! anything is forwarded: `grpc.health.v1.Health` always, and server
//! reflection (v1 and v1alpha) of the public services when
//! `edge.grpc_reflection` is on. Neither needs an API key: health is for
//! probes, and reflection describes only contracts the caller could read
//! anyway, which is also why it is off unless an operator wants it.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use tonic::service::Routes;
use tower::ServiceExt;
use tyboo_runtime::reflection::{
    self, HEALTH_SERVICE, REFLECTION_V1_SERVICE, REFLECTION_V1ALPHA_SERVICE,
};

use crate::grpc_health::EdgeHealth;
use crate::metrics::UNMATCHED_ROUTE;

/// What the edge does with a gRPC call on one of its own services.
pub(crate) enum OwnCall {
    /// Answered here; the label counts it (a known method's path, or the
    /// unmatched label for a method no contract has).
    Serve(Arc<str>),
    /// Reflection, asked for while it is switched off.
    ReflectionOff(&'static str),
}

#[derive(Clone, Debug)]
pub(crate) struct OwnGrpc {
    routes: Routes,
    reflection: bool,
    /// `/service/Method` of every method served here, as metric labels.
    labels: HashMap<&'static str, Arc<str>>,
}

impl OwnGrpc {
    pub(crate) fn new(health: EdgeHealth, public: &[&str], reflection: bool) -> OwnGrpc {
        let mut routes = Routes::new(tonic_health::pb::health_server::HealthServer::new(health));
        let mut methods = vec![
            "/grpc.health.v1.Health/Check",
            "/grpc.health.v1.Health/Watch",
        ];
        if reflection {
            routes = routes
                .add_service(reflection::v1(public))
                .add_service(reflection::v1alpha(public));
            methods.extend([
                "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
                "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
            ]);
        }
        let labels = methods
            .into_iter()
            .map(|method| (method, Arc::from(method)))
            .collect();
        OwnGrpc {
            routes: routes.prepare(),
            reflection,
            labels,
        }
    }

    /// Whether a call on `path` is for one of the edge's own services.
    pub(crate) fn classify(&self, path: &str) -> Option<OwnCall> {
        let service = path.strip_prefix('/')?.split_once('/')?.0;
        let is_reflection =
            service == REFLECTION_V1_SERVICE || service == REFLECTION_V1ALPHA_SERVICE;
        if is_reflection && !self.reflection {
            let service = if service == REFLECTION_V1_SERVICE {
                REFLECTION_V1_SERVICE
            } else {
                REFLECTION_V1ALPHA_SERVICE
            };
            return Some(OwnCall::ReflectionOff(service));
        }
        if !is_reflection && service != HEALTH_SERVICE {
            return None;
        }
        let label = self
            .labels
            .get(path)
            .cloned()
            .unwrap_or_else(|| Arc::from(UNMATCHED_ROUTE));
        Some(OwnCall::Serve(label))
    }

    /// Serves a call that [`OwnGrpc::classify`] said is the edge's own.
    pub(crate) async fn call(&self, request: Request) -> Response {
        let response = match self.routes.clone().oneshot(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        };
        response.map(Body::new)
    }
}
