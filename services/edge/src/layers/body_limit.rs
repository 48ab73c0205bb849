//! Caps the size of HTTP/JSON request bodies: 413 past the limit.
//!
//! A declared `Content-Length` over the limit is refused before any byte is
//! read; any other body is wrapped so reading stops at the limit, and the
//! handler turns that into the same 413 (tower-http's limit answers in plain
//! text, and every edge error is JSON). This layer is the one place the limit
//! is checked: the handlers read what it lets through
//! ([`crate::request::read_body`]). gRPC requests pass untouched: a
//! stream may rightly carry more than any one body, and each message is held
//! to the upstream server's message size limit.

use std::convert::Infallible;

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use http_body_util::Limited;
use tower::Service;

use crate::errors::ApiError;
use crate::layers::middleware::{Middleware, MiddlewareLayer, ResponseFuture};
use crate::layers::request_id::context_of;
use crate::protocol::is_grpc;

pub(crate) type BodyLimitLayer = MiddlewareLayer<BodyLimit>;

impl BodyLimitLayer {
    pub(crate) fn new(limit: usize) -> Self {
        Self::wrapping(BodyLimit { limit })
    }
}

/// HTTP/JSON bodies of at most `limit` bytes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BodyLimit {
    limit: usize,
}

impl Middleware for BodyLimit {
    fn call<S>(&self, inner: &mut S, request: Request) -> ResponseFuture
    where
        S: Service<Request, Response = Response, Error = Infallible>,
        S::Future: Send + 'static,
    {
        if is_grpc(request.headers()) {
            return Box::pin(inner.call(request));
        }
        let declared = request
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse::<u64>().ok());
        if declared.is_some_and(|length| length > self.limit as u64) {
            let request_id = context_of(&request).request_id;
            let response = ApiError::payload_too_large(self.limit).into_json_response(&request_id);
            return Box::pin(async move { Ok(response) });
        }
        let limit = self.limit;
        let request = request.map(|body| Body::new(Limited::new(body, limit)));
        Box::pin(inner.call(request))
    }
}

/// Whether reading a body failed because it passed the limit.
pub(crate) fn is_over_limit(error: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = source {
        if current.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = current.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::StatusCode;
    use tower::{Layer, ServiceExt};

    /// Reads the body as a handler would and reports what happened.
    fn reading_service()
    -> impl Service<Request, Response = Response, Error = Infallible, Future: Send + 'static> {
        tower::service_fn(|request: Request| async move {
            let status = match axum::body::to_bytes(request.into_body(), usize::MAX).await {
                Ok(_) => StatusCode::OK,
                Err(error) if is_over_limit(&error) => StatusCode::PAYLOAD_TOO_LARGE,
                Err(_) => StatusCode::BAD_REQUEST,
            };
            let mut response = Response::new(Body::empty());
            *response.status_mut() = status;
            Ok::<_, Infallible>(response)
        })
    }

    #[tokio::test]
    async fn a_declared_length_over_the_limit_is_refused_unread() {
        let request = Request::builder()
            .header(http::header::CONTENT_LENGTH, "11")
            .body(Body::from("hello world"))
            .unwrap();
        let response = BodyLimitLayer::new(10)
            .layer(reading_service())
            .oneshot(request)
            .await
            .expect("infallible");
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(
            response.headers()[http::header::CONTENT_TYPE],
            "application/json"
        );
    }

    #[tokio::test]
    async fn an_undeclared_body_stops_at_the_limit() {
        let chunks = futures::stream::iter(
            ["hello ", "world"].map(|chunk| Ok::<_, Infallible>(bytes::Bytes::from(chunk))),
        );
        let request = Request::new(Body::from_stream(chunks));
        let response = BodyLimitLayer::new(10)
            .layer(reading_service())
            .oneshot(request)
            .await
            .expect("infallible");
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
        let small = Request::new(Body::from("hello"));
        let response = BodyLimitLayer::new(10)
            .layer(reading_service())
            .oneshot(small)
            .await
            .expect("infallible");
        assert_eq!(response.status(), StatusCode::OK);
    }
}
