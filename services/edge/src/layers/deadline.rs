//! Bounds each request by a deadline and records it for the upstream call.
//!
//! The deadline is the earlier of the configured request timeout and a gRPC
//! caller's own `grpc-timeout`. It is stored in the request's
//! [`RequestContext`] so that the handler sends the time that remains
//! upstream, and the whole request (key exchange, body, upstream call, up to
//! the response head) is cut off when it passes: 504 `DEADLINE_EXCEEDED` in
//! JSON, or a trailers-only `DEADLINE_EXCEEDED` for gRPC. A streaming gRPC
//! response body is not cut here; the upstream service ends it at the
//! deadline it was sent.

use std::convert::Infallible;
use std::time::{Duration, Instant};

use axum::extract::Request;
use axum::response::Response;
use tonic::Code;
use tower::Service;

use crate::errors::ApiError;
use crate::layers::middleware::{Middleware, MiddlewareLayer, ResponseFuture};
use crate::layers::request_id::context_of;
use crate::protocol::is_grpc;

pub(crate) type DeadlineLayer = MiddlewareLayer<Deadline>;

impl DeadlineLayer {
    pub(crate) fn new(timeout: Duration) -> Self {
        Self::wrapping(Deadline { timeout })
    }
}

/// Requests cut off `timeout` after they arrive, or sooner if a gRPC caller
/// asks.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Deadline {
    timeout: Duration,
}

impl Middleware for Deadline {
    fn call<S>(&self, inner: &mut S, mut request: Request) -> ResponseFuture
    where
        S: Service<Request, Response = Response, Error = Infallible>,
        S::Future: Send + 'static,
    {
        let mut context = context_of(&request);
        let configured = Instant::now() + self.timeout;
        let deadline = context
            .deadline
            .map_or(configured, |asked| asked.min(configured));
        context.deadline = Some(deadline);
        let request_id = context.request_id.clone();
        let grpc = is_grpc(request.headers());
        request.extensions_mut().insert(context);
        let future = inner.call(request);
        Box::pin(async move {
            match tokio::time::timeout_at(deadline.into(), future).await {
                Ok(response) => response,
                Err(_elapsed) => {
                    let error = ApiError::new(Code::DeadlineExceeded, "the request took too long");
                    Ok(if grpc {
                        error.into_grpc_response()
                    } else {
                        error.into_json_response(&request_id)
                    })
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::StatusCode;
    use tower::{Layer, ServiceExt};
    use tyboo_runtime::context::RequestContext;

    fn slow_service()
    -> impl Service<Request, Response = Response, Error = Infallible, Future: Send + 'static> {
        tower::service_fn(|request: Request| async move {
            let deadline = request
                .extensions()
                .get::<RequestContext>()
                .and_then(|context| context.deadline);
            assert!(
                deadline.is_some(),
                "the deadline is recorded for the handler"
            );
            tokio::time::sleep(Duration::from_secs(5)).await;
            Ok::<_, Infallible>(Response::new(axum::body::Body::empty()))
        })
    }

    #[tokio::test]
    async fn a_slow_request_gets_504_json() {
        let response = DeadlineLayer::new(Duration::from_millis(20))
            .layer(slow_service())
            .oneshot(Request::new(axum::body::Body::empty()))
            .await
            .expect("infallible");
        assert_eq!(response.status(), StatusCode::GATEWAY_TIMEOUT);
    }

    #[tokio::test]
    async fn a_grpc_caller_gets_deadline_exceeded_at_its_own_shorter_timeout() {
        let request = Request::builder()
            .header(http::header::CONTENT_TYPE, "application/grpc")
            .header("grpc-timeout", "20m")
            .body(axum::body::Body::empty())
            .unwrap();
        let started = Instant::now();
        let response = DeadlineLayer::new(Duration::from_secs(30))
            .layer(slow_service())
            .oneshot(request)
            .await
            .expect("infallible");
        assert!(started.elapsed() < Duration::from_secs(2));
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["grpc-status"], "4");
    }
}
