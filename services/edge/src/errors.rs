//! Errors: [`EdgeError`] for start-up, [`ApiError`] for what a caller sees.
//!
//! Every answer to a failed request uses the one shared code table of
//! `tyboo_runtime::error`, so an HTTP client and a gRPC client see the same
//! meaning. Three answers have no gRPC code of their own and say so here:
//! - a body over the limit is HTTP 413 with code `PAYLOAD_TOO_LARGE` (the name
//!   the table reserves for it) and `RESOURCE_EXHAUSTED` to gRPC clients;
//! - a known path asked with the wrong method is HTTP 405 with code
//!   `UNIMPLEMENTED` and an `Allow` header, as grpc-gateway answers;
//! - an unknown path is HTTP 404 with code `NOT_FOUND`.

use std::time::Duration;

use axum::response::{IntoResponse, Response};
use http::{HeaderName, HeaderValue, Method, StatusCode, header};
use prost::Message;
use tonic::Code;
use tyboo_runtime::error::{PAYLOAD_TOO_LARGE, code_name, http_status};

/// Why the edge cannot start.
#[derive(Debug, thiserror::Error)]
pub enum EdgeError {
    #[error("invalid edge configuration: {0}")]
    Config(String),
    #[error("cannot decode the descriptor set: {0}")]
    Descriptors(#[from] prost_reflect::DescriptorError),
    #[error("public service `{0}` is not in the descriptor set")]
    UnknownService(String),
    #[error("public service `{0}` is listed twice")]
    DuplicateService(String),
    #[error("the edge's rate limiter cannot start: {0}")]
    RateLimiter(String),
    #[error("cannot route `{method}`: {reason}")]
    Route { method: String, reason: String },
}

pub type EdgeResult<T> = Result<T, EdgeError>;

/// A failed request as the caller sees it: an HTTP status, a code name from
/// the shared table, and a message safe to show.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ApiError {
    status: StatusCode,
    code: &'static str,
    grpc_code: Code,
    message: String,
    allow: Option<HeaderValue>,
    /// What a refusal by a limit adds; boxed, as few errors carry it.
    extra: Option<Box<Extra>>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Extra {
    /// Extra response headers (`Retry-After`, `RateLimit`, …).
    headers: Vec<(HeaderName, HeaderValue)>,
    /// When to try again, sent to gRPC clients as a `google.rpc.RetryInfo`.
    retry_delay: Option<Duration>,
}

impl ApiError {
    pub(crate) fn new(grpc_code: Code, message: impl Into<String>) -> Self {
        Self {
            status: http_status(grpc_code),
            code: code_name(grpc_code),
            grpc_code,
            message: message.into(),
            allow: None,
            extra: None,
        }
    }

    /// This error with `headers` added to its answer, HTTP or gRPC.
    pub(crate) fn with_headers(mut self, headers: Vec<(HeaderName, HeaderValue)>) -> Self {
        self.extra.get_or_insert_default().headers.extend(headers);
        self
    }

    /// Tells a gRPC client when to retry with a `google.rpc.RetryInfo`
    /// detail (HTTP clients read `Retry-After`).
    pub(crate) fn with_retry_delay(mut self, delay: Duration) -> Self {
        self.extra.get_or_insert_default().retry_delay = Some(delay);
        self
    }

    pub(crate) fn invalid_argument(message: impl Into<String>) -> Self {
        Self::new(Code::InvalidArgument, message)
    }

    pub(crate) fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(Code::Unauthenticated, message)
    }

    /// An error status returned by an upstream service. Services already
    /// turn internal failures into safe messages, so the message passes on.
    pub(crate) fn from_status(status: &tonic::Status) -> Self {
        Self::new(status.code(), status.message())
    }

    pub(crate) fn route_not_found(path: &str) -> Self {
        Self::new(Code::NotFound, format!("no route for `{path}`"))
    }

    pub(crate) fn method_not_allowed(method: &Method, allowed: &[Method]) -> Self {
        let allow = allowed
            .iter()
            .map(Method::as_str)
            .collect::<Vec<_>>()
            .join(", ");
        Self {
            status: StatusCode::METHOD_NOT_ALLOWED,
            code: code_name(Code::Unimplemented),
            grpc_code: Code::Unimplemented,
            message: format!("method {method} is not allowed here; allowed: {allow}"),
            allow: HeaderValue::from_str(&allow).ok(),
            extra: None,
        }
    }

    pub(crate) fn payload_too_large(limit: usize) -> Self {
        Self {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            code: PAYLOAD_TOO_LARGE,
            grpc_code: Code::ResourceExhausted,
            message: format!("request body is larger than {limit} bytes"),
            allow: None,
            extra: None,
        }
    }

    pub(crate) fn status(&self) -> StatusCode {
        self.status
    }

    pub(crate) fn message(&self) -> &str {
        &self.message
    }

    /// The JSON answer `{code, message, request_id}`.
    pub(crate) fn into_json_response(self, request_id: &str) -> Response {
        let body = serde_json::json!({
            "code": self.code,
            "message": self.message,
            "request_id": request_id,
        });
        let mut response = (
            self.status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            body.to_string(),
        )
            .into_response();
        if let Some(allow) = self.allow {
            response.headers_mut().insert(header::ALLOW, allow);
        }
        for (name, value) in self.extra.map(|extra| extra.headers).unwrap_or_default() {
            response.headers_mut().insert(name, value);
        }
        response
    }

    /// The gRPC answer: a trailers-only response carrying the status, and
    /// a `google.rpc.Status` with a `RetryInfo` in `grpc-status-details-bin`
    /// when the caller should come back later.
    pub(crate) fn into_grpc_response(self) -> Response {
        let extra = self.extra.map(|extra| *extra).unwrap_or_default();
        let status = match extra.retry_delay {
            None => tonic::Status::new(self.grpc_code, self.message),
            Some(delay) => {
                let details = rpc_status(self.grpc_code, &self.message, delay);
                tonic::Status::with_details(self.grpc_code, self.message, details.into())
            }
        };
        let mut response = status.into_http::<axum::body::Body>();
        for (name, value) in extra.headers {
            response.headers_mut().insert(name, value);
        }
        response
    }
}

/// `google.rpc.Status`, `google.rpc.RetryInfo` and `google.protobuf.Any`
/// as far as the edge writes them (the field numbers of their protos).
pub(crate) mod rpc {
    #[derive(Clone, PartialEq, prost::Message)]
    pub(crate) struct Status {
        #[prost(int32, tag = "1")]
        pub(crate) code: i32,
        #[prost(string, tag = "2")]
        pub(crate) message: String,
        #[prost(message, repeated, tag = "3")]
        pub(crate) details: Vec<prost_types::Any>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub(crate) struct RetryInfo {
        #[prost(message, optional, tag = "1")]
        pub(crate) retry_delay: Option<prost_types::Duration>,
    }

    pub(crate) const RETRY_INFO_TYPE_URL: &str = "type.googleapis.com/google.rpc.RetryInfo";
}

fn rpc_status(code: Code, message: &str, delay: Duration) -> Vec<u8> {
    let retry_info = rpc::RetryInfo {
        retry_delay: Some(prost_types::Duration {
            seconds: i64::try_from(delay.as_secs()).unwrap_or(i64::MAX),
            nanos: i32::try_from(delay.subsec_nanos()).unwrap_or(0),
        }),
    };
    rpc::Status {
        code: code as i32,
        message: message.to_owned(),
        details: vec![prost_types::Any {
            type_url: rpc::RETRY_INFO_TYPE_URL.to_owned(),
            value: retry_info.encode_to_vec(),
        }],
    }
    .encode_to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn json_of(response: Response) -> serde_json::Value {
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        serde_json::from_slice(&bytes).expect("json body")
    }

    #[tokio::test]
    async fn json_errors_carry_code_message_and_request_id() {
        let response = ApiError::new(Code::NotFound, "no such workspace").into_json_response("r-1");
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
        let body = json_of(response).await;
        assert_eq!(
            body,
            serde_json::json!({
                "code": "NOT_FOUND",
                "message": "no such workspace",
                "request_id": "r-1",
            })
        );
    }

    #[tokio::test]
    async fn oversize_bodies_are_413_with_the_reserved_code() {
        let response = ApiError::payload_too_large(10).into_json_response("r-2");
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(json_of(response).await["code"], "PAYLOAD_TOO_LARGE");
    }

    #[test]
    fn wrong_method_lists_the_allowed_ones() {
        let response = ApiError::method_not_allowed(&Method::PUT, &[Method::GET, Method::POST])
            .into_json_response("r-3");
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(response.headers()[header::ALLOW], "GET, POST");
    }

    #[test]
    fn grpc_errors_are_trailers_only() {
        let response = ApiError::unauthenticated("invalid API key").into_grpc_response();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["grpc-status"], "16");
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/grpc");
    }
}
