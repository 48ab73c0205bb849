//! Per-RPC request count, in-flight gauge and latency histogram, recorded by
//! one tower layer around every gRPC server rather than by each handler.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use http::{Request, Response};
use tower::{Layer, Service};

pub const GRPC_REQUESTS_TOTAL: &str = "tyboo_grpc_server_requests_total";
pub const GRPC_REQUEST_DURATION_SECONDS: &str = "tyboo_grpc_server_request_duration_seconds";
pub const GRPC_REQUESTS_IN_FLIGHT: &str = "tyboo_grpc_server_requests_in_flight";

/// Registers descriptions for the metrics of this module.
pub fn describe() {
    metrics::describe_counter!(
        GRPC_REQUESTS_TOTAL,
        "gRPC calls served, by service, method and status code"
    );
    metrics::describe_histogram!(
        GRPC_REQUEST_DURATION_SECONDS,
        metrics::Unit::Seconds,
        "time until the response headers of a gRPC call were ready"
    );
    metrics::describe_gauge!(GRPC_REQUESTS_IN_FLIGHT, "gRPC calls being served");
}

#[derive(Clone, Debug, Default)]
pub struct GrpcMetricsLayer;

impl<S> Layer<S> for GrpcMetricsLayer {
    type Service = GrpcMetrics<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GrpcMetrics { inner }
    }
}

#[derive(Clone, Debug)]
pub struct GrpcMetrics<S> {
    inner: S,
}

impl<S, B, ResBody> Service<Request<B>> for GrpcMetrics<S>
where
    S: Service<Request<B>, Response = Response<ResBody>> + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        // Paths are "/package.Service/Method"; both parts come from our own
        // route table, so the label set stays bounded. Unknown paths are
        // folded into one label value.
        let (service, method) = split_path(request.uri().path());
        let started = Instant::now();
        let in_flight = metrics::gauge!(GRPC_REQUESTS_IN_FLIGHT, "service" => service.clone());
        in_flight.increment(1.0);
        let future = self.inner.call(request);
        Box::pin(async move {
            let result = future.await;
            in_flight.decrement(1.0);
            // A unary error is a trailers-only response with grpc-status in
            // the headers; a success carries it in trailers, so absent = OK.
            let code = match &result {
                Ok(response) => response
                    .headers()
                    .get("grpc-status")
                    .and_then(|value| value.to_str().ok())
                    .and_then(|value| value.parse::<i32>().ok())
                    .map(tonic::Code::from_i32)
                    .unwrap_or(tonic::Code::Ok),
                Err(_) => tonic::Code::Unknown,
            };
            let labels = [
                ("service", service),
                ("method", method),
                ("code", crate::error::code_name(code).to_owned()),
            ];
            metrics::counter!(GRPC_REQUESTS_TOTAL, &labels).increment(1);
            metrics::histogram!(GRPC_REQUEST_DURATION_SECONDS, &labels[..2])
                .record(started.elapsed().as_secs_f64());
            result
        })
    }
}

fn split_path(path: &str) -> (String, String) {
    let mut parts = path.trim_start_matches('/').splitn(2, '/');
    match (parts.next(), parts.next()) {
        (Some(service), Some(method))
            if !service.is_empty()
                && !method.is_empty()
                && service.len() <= 128
                && method.len() <= 128
                && !method.contains('/') =>
        {
            (service.to_owned(), method.to_owned())
        }
        _ => ("unknown".to_owned(), "unknown".to_owned()),
    }
}
