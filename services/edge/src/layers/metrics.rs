//! Counts and times every request by route template, method and status.
//!
//! The route is the matched template (set by the handler as a [`RouteLabel`]
//! response extension, or axum's matched path for the edge's own routes),
//! never the raw path, so label values stay bounded.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::response::Response;
use http::Method;
use tower::Service;

use crate::layers::middleware::{Middleware, MiddlewareLayer, ResponseFuture};
use crate::metrics::{
    METHOD_LABEL, REQUEST_DURATION_SECONDS, REQUESTS_IN_FLIGHT, REQUESTS_TOTAL, ROUTE_LABEL,
    STATUS_LABEL, UNMATCHED_ROUTE,
};

/// The bounded route name of an answered request.
#[derive(Clone, Debug)]
pub(crate) struct RouteLabel(pub(crate) Arc<str>);

/// Tags a response with the route it answered.
pub(crate) fn with_route_label(mut response: Response, label: Arc<str>) -> Response {
    response.extensions_mut().insert(RouteLabel(label));
    response
}

pub(crate) type MetricsLayer = MiddlewareLayer<RequestMetrics>;

impl MetricsLayer {
    pub(crate) fn new() -> Self {
        Self::wrapping(RequestMetrics)
    }
}

/// Every request counted and timed.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RequestMetrics;

/// Keeps the in-flight gauge right even when the caller goes away and the
/// request future is dropped unfinished.
struct InFlight;

impl InFlight {
    fn start() -> Self {
        metrics::gauge!(REQUESTS_IN_FLIGHT).increment(1.0);
        Self
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        metrics::gauge!(REQUESTS_IN_FLIGHT).decrement(1.0);
    }
}

impl Middleware for RequestMetrics {
    fn call<S>(&self, inner: &mut S, request: Request) -> ResponseFuture
    where
        S: Service<Request, Response = Response, Error = Infallible>,
        S::Future: Send + 'static,
    {
        let started = Instant::now();
        let method = method_label(request.method());
        let matched_path = request
            .extensions()
            .get::<MatchedPath>()
            .map(|path| path.as_str().to_owned());
        let in_flight = InFlight::start();
        let future = inner.call(request);
        Box::pin(async move {
            let response = future.await?;
            drop(in_flight);
            let route = response
                .extensions()
                .get::<RouteLabel>()
                .map(|label| label.0.to_string())
                .or(matched_path)
                .unwrap_or_else(|| UNMATCHED_ROUTE.to_owned());
            metrics::counter!(
                REQUESTS_TOTAL,
                ROUTE_LABEL => route.clone(),
                METHOD_LABEL => method,
                STATUS_LABEL => response.status().as_str().to_owned(),
            )
            .increment(1);
            metrics::histogram!(
                REQUEST_DURATION_SECONDS,
                ROUTE_LABEL => route,
                METHOD_LABEL => method,
            )
            .record(started.elapsed().as_secs_f64());
            Ok(response)
        })
    }
}

/// Methods outside the standard set share one label value.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}
