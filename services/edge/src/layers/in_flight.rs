//! Load shedding: at most `edge.max_in_flight_requests` requests are served
//! at once by one edge process. Past it a request is answered at once —
//! 503 with `Retry-After: 1` in JSON, `UNAVAILABLE` to gRPC — before any
//! work is spent on it (a semaphore's `try_acquire`, no waiting). A request
//! holds its place until its response head is written. Health checks are
//! never refused: a busy edge is not a dead one.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::Request;
use axum::response::Response;
use http::{HeaderValue, header};
use tokio::sync::Semaphore;
use tonic::Code;
use tower::Service;

use crate::errors::ApiError;
use crate::layers::middleware::{Middleware, MiddlewareLayer, ResponseFuture};
use crate::layers::request_id::context_of;
use crate::metrics::{KIND_LABEL, RATE_LIMITED_TOTAL};
use crate::protocol::is_grpc;

/// Paths served whatever the load.
const EXEMPT: [&str; 2] = ["/healthz", "/grpc.health.v1.Health/"];

pub(crate) type InFlightLayer = MiddlewareLayer<InFlight>;

impl InFlightLayer {
    pub(crate) fn new(max_in_flight: usize) -> Self {
        Self::wrapping(InFlight {
            places: Arc::new(Semaphore::new(max_in_flight)),
        })
    }
}

#[derive(Clone, Debug)]
pub(crate) struct InFlight {
    places: Arc<Semaphore>,
}

impl Middleware for InFlight {
    fn call<S>(&self, inner: &mut S, request: Request) -> ResponseFuture
    where
        S: Service<Request, Response = Response, Error = Infallible>,
        S::Future: Send + 'static,
    {
        let path = request.uri().path();
        if EXEMPT.iter().any(|exempt| path.starts_with(exempt)) {
            return Box::pin(inner.call(request));
        }
        let Ok(place) = self.places.clone().try_acquire_owned() else {
            metrics::counter!(RATE_LIMITED_TOTAL, KIND_LABEL => "in_flight").increment(1);
            let error = ApiError::new(
                Code::Unavailable,
                "the edge is serving as many requests as it can; retry in 1 s",
            )
            .with_headers(vec![(header::RETRY_AFTER, HeaderValue::from_static("1"))])
            .with_retry_delay(Duration::from_secs(1));
            let response = if is_grpc(request.headers()) {
                error.into_grpc_response()
            } else {
                error.into_json_response(&context_of(&request).request_id)
            };
            return Box::pin(async move { Ok(response) });
        };
        let future = inner.call(request);
        Box::pin(async move {
            let response = future.await;
            drop(place);
            response
        })
    }
}
