//! The request id and trace context of the call being served, carried in
//! metadata from the edge through every service hop.
//!
//! The server layer ([`RequestContextLayer`]) reads them from the incoming
//! headers (creating a request id when there is none), keeps them in a
//! task-local for the handler, and echoes the request id in the response;
//! [`propagate`] copies them, with the remaining deadline, onto an outgoing
//! call.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use http::{HeaderValue, Request, Response};
use tower::{Layer, Service};
use tracing::Instrument;

pub const REQUEST_ID_HEADER: &str = "x-request-id";
pub const TRACEPARENT_HEADER: &str = "traceparent";
pub const GRPC_TIMEOUT_HEADER: &str = "grpc-timeout";

/// What a handler knows of the call it serves.
#[derive(Clone, Debug, Default)]
pub struct RequestContext {
    pub request_id: String,
    pub traceparent: Option<String>,
    /// When the caller stops waiting, from its `grpc-timeout`.
    pub deadline: Option<Instant>,
}

tokio::task_local! {
    static CURRENT: RequestContext;
}

/// The context of the call this task serves, if any.
pub fn current() -> Option<RequestContext> {
    CURRENT.try_with(Clone::clone).ok()
}

/// The request id of the call this task serves, if any.
pub fn current_request_id() -> Option<String> {
    CURRENT.try_with(|ctx| ctx.request_id.clone()).ok()
}

/// Runs `future` with `context` as the current request context.
pub async fn scope<F: Future>(context: RequestContext, future: F) -> F::Output {
    CURRENT.scope(context, future).await
}

/// Copies the current request id, trace context and remaining deadline onto an
/// outgoing gRPC request, so the next hop logs the same id and gives up when
/// the original caller does.
pub fn propagate<T>(request: &mut tonic::Request<T>) {
    let Some(context) = current() else {
        return;
    };
    if let Ok(value) = context.request_id.parse() {
        request.metadata_mut().insert(REQUEST_ID_HEADER, value);
    }
    if let Some(Ok(value)) = context.traceparent.as_deref().map(str::parse) {
        request.metadata_mut().insert(TRACEPARENT_HEADER, value);
    }
    if let Some(deadline) = context.deadline {
        request.set_timeout(deadline.saturating_duration_since(Instant::now()));
    }
}

/// Parses a `grpc-timeout` header value ("100m", "5S", …).
pub fn parse_grpc_timeout(value: &str) -> Option<Duration> {
    if value.len() < 2 || value.len() > 9 {
        return None;
    }
    let (digits, unit) = value.split_at(value.len() - 1);
    let amount: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(amount.checked_mul(3600)?),
        "M" => Duration::from_secs(amount.checked_mul(60)?),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

/// Formats a duration as a `grpc-timeout` header value.
pub fn format_grpc_timeout(timeout: Duration) -> String {
    let millis = timeout.as_millis();
    if millis < 100_000_000 {
        format!("{}m", millis.max(1))
    } else {
        format!("{}S", timeout.as_secs().min(99_999_999))
    }
}

/// A fresh request id: a UUIDv7, so ids sort by time in logs.
pub fn new_request_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// Builds a [`RequestContext`] from incoming headers.
pub fn from_headers(headers: &http::HeaderMap) -> RequestContext {
    let request_id = headers
        .get(REQUEST_ID_HEADER)
        .and_then(|value| value.to_str().ok())
        .filter(|value| !value.is_empty() && value.len() <= 128)
        .map(str::to_owned)
        .unwrap_or_else(new_request_id);
    let traceparent = headers
        .get(TRACEPARENT_HEADER)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let deadline = headers
        .get(GRPC_TIMEOUT_HEADER)
        .and_then(|value| value.to_str().ok())
        .and_then(parse_grpc_timeout)
        .map(|timeout| Instant::now() + timeout);
    RequestContext {
        request_id,
        traceparent,
        deadline,
    }
}

/// Server layer that establishes the [`RequestContext`] and a tracing span
/// for each call.
#[derive(Clone, Debug, Default)]
pub struct RequestContextLayer;

impl<S> Layer<S> for RequestContextLayer {
    type Service = RequestContextService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequestContextService { inner }
    }
}

#[derive(Clone, Debug)]
pub struct RequestContextService<S> {
    inner: S,
}

impl<S, B, ResBody> Service<Request<B>> for RequestContextService<S>
where
    S: Service<Request<B>, Response = Response<ResBody>> + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let context = from_headers(request.headers());
        // Make the id visible to handlers that read metadata directly.
        if let Ok(value) = HeaderValue::from_str(&context.request_id) {
            request.headers_mut().insert(REQUEST_ID_HEADER, value);
        }
        let span = tracing::info_span!(
            "rpc",
            path = %request.uri().path(),
            request_id = %context.request_id,
            traceparent = context.traceparent.as_deref().unwrap_or(""),
        );
        let request_id = context.request_id.clone();
        let future = self.inner.call(request);
        Box::pin(
            async move {
                let mut response = CURRENT.scope(context, future).await?;
                if let Ok(value) = HeaderValue::from_str(&request_id) {
                    response.headers_mut().insert(REQUEST_ID_HEADER, value);
                }
                Ok(response)
            }
            .instrument(span),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeout_round_trips() {
        assert_eq!(parse_grpc_timeout("250m"), Some(Duration::from_millis(250)));
        assert_eq!(parse_grpc_timeout("3S"), Some(Duration::from_secs(3)));
        assert_eq!(parse_grpc_timeout("1x"), None);
        assert_eq!(parse_grpc_timeout(""), None);
        assert_eq!(
            parse_grpc_timeout(&format_grpc_timeout(Duration::from_secs(2))),
            Some(Duration::from_secs(2))
        );
    }

    #[test]
    fn missing_request_id_is_created() {
        let context = from_headers(&http::HeaderMap::new());
        assert_eq!(context.request_id.len(), 36);
        let mut headers = http::HeaderMap::new();
        headers.insert(REQUEST_ID_HEADER, HeaderValue::from_static("abc"));
        assert_eq!(from_headers(&headers).request_id, "abc");
    }
}
