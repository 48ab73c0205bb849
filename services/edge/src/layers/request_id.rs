//! Gives every request an id and its trace context, and echoes the id back.
//!
//! A caller's own `x-request-id` is kept (so a client can correlate its logs
//! with ours), otherwise a UUIDv7 is made. The id and `traceparent` are stored
//! as a [`RequestContext`] extension that the handlers forward upstream, and
//! the whole request runs in a tracing span that carries the id.

use std::convert::Infallible;

use axum::extract::Request;
use axum::response::Response;
use http::HeaderValue;
use tower::Service;
use tracing::Instrument;
use tyboo_runtime::context::{REQUEST_ID_HEADER, RequestContext, from_headers};

use crate::layers::middleware::{Middleware, MiddlewareLayer, ResponseFuture};

pub(crate) type RequestIdLayer = MiddlewareLayer<RequestId>;

impl RequestIdLayer {
    pub(crate) fn new() -> Self {
        Self::wrapping(RequestId)
    }
}

/// Every request with an id, echoed on its answer.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RequestId;

impl Middleware for RequestId {
    fn call<S>(&self, inner: &mut S, mut request: Request) -> ResponseFuture
    where
        S: Service<Request, Response = Response, Error = Infallible>,
        S::Future: Send + 'static,
    {
        let context: RequestContext = from_headers(request.headers());
        let header_value = HeaderValue::from_str(&context.request_id).ok();
        if let Some(value) = &header_value {
            request
                .headers_mut()
                .insert(REQUEST_ID_HEADER, value.clone());
        }
        let span = tracing::info_span!(
            "edge_request",
            request_id = %context.request_id,
            method = %request.method(),
            path = %request.uri().path(),
        );
        request.extensions_mut().insert(context);
        let future = inner.call(request);
        Box::pin(
            async move {
                let mut response = future.await?;
                if let Some(value) = header_value {
                    response.headers_mut().insert(REQUEST_ID_HEADER, value);
                }
                Ok(response)
            }
            .instrument(span),
        )
    }
}

/// The request's context as the layer left it, or one made from its headers
/// when the request did not pass through the layer.
pub(crate) fn context_of(request: &Request) -> RequestContext {
    request
        .extensions()
        .get::<RequestContext>()
        .cloned()
        .unwrap_or_else(|| from_headers(request.headers()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::{Layer, ServiceExt};

    fn echo_service()
    -> impl Service<Request, Response = Response, Error = Infallible, Future: Send + 'static> {
        tower::service_fn(|request: Request| async move {
            let seen = context_of(&request).request_id;
            Ok::<_, Infallible>(Response::new(axum::body::Body::from(seen)))
        })
    }

    #[tokio::test]
    async fn a_missing_id_is_created_and_echoed() {
        let response = RequestIdLayer::new()
            .layer(echo_service())
            .oneshot(Request::new(axum::body::Body::empty()))
            .await
            .expect("infallible");
        let echoed = response.headers()[REQUEST_ID_HEADER]
            .to_str()
            .unwrap()
            .to_owned();
        assert_eq!(echoed.len(), 36, "a UUID: {echoed}");
        let body = axum::body::to_bytes(response.into_body(), 1024)
            .await
            .unwrap();
        assert_eq!(body, echoed.as_bytes());
    }

    #[tokio::test]
    async fn a_caller_id_is_kept() {
        let request = Request::builder()
            .header(REQUEST_ID_HEADER, "caller-42")
            .body(axum::body::Body::empty())
            .unwrap();
        let response = RequestIdLayer::new()
            .layer(echo_service())
            .oneshot(request)
            .await
            .expect("infallible");
        assert_eq!(response.headers()[REQUEST_ID_HEADER], "caller-42");
    }
}
