//! Honest codes for the two request faults tonic reports under other names:
//! a request over the server's message cap arrives as OUT_OF_RANGE and an
//! undecodable message as INTERNAL, which blame a range the caller never
//! chose and a fault of ours. Rewritten here, on the trailers-only answer
//! tonic gives for both, to RESOURCE_EXHAUSTED (a server-side cap, with the
//! cap named) and INVALID_ARGUMENT.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::{HeaderMap, HeaderValue, Request, Response};
use tower::{Layer, Service};

/// Words of tonic's message for a request over the decoding cap.
const TOO_LARGE: &str = "message length too large";
/// Start of tonic's message for bytes that are not the request message.
const UNDECODABLE: &str = "failed to decode Protobuf message";
/// What `grpc-message` percent-encodes: everything outside printable ASCII,
/// and `%` itself.
const GRPC_MESSAGE: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS.add(b'%');

#[derive(Clone, Copy, Debug, Default)]
pub struct StatusCodesLayer;

impl<S> Layer<S> for StatusCodesLayer {
    type Service = StatusCodes<S>;

    fn layer(&self, inner: S) -> Self::Service {
        StatusCodes { inner }
    }
}

#[derive(Clone, Debug)]
pub struct StatusCodes<S> {
    inner: S,
}

impl<S, B, ResBody> Service<Request<B>> for StatusCodes<S>
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

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let future = self.inner.call(request);
        Box::pin(async move {
            let mut response = future.await?;
            rewrite(response.headers_mut());
            Ok(response)
        })
    }
}

/// Rewrites the status of a trailers-only answer, if it is one of the two.
pub fn rewrite(headers: &mut HeaderMap) {
    let code = headers
        .get("grpc-status")
        .and_then(|value| value.to_str().ok());
    let message = headers
        .get("grpc-message")
        .and_then(|value| value.to_str().ok())
        .map(|message| {
            percent_encoding::percent_decode_str(message)
                .decode_utf8_lossy()
                .into_owned()
        })
        .unwrap_or_default();
    let (code, text) = match code {
        // OUT_OF_RANGE
        Some("11") if message.contains(TOO_LARGE) => (
            "8",
            format!(
                "the request is larger than this server accepts (grpc.max_message_bytes): {message}"
            ),
        ),
        // INTERNAL
        Some("13") if message.starts_with(UNDECODABLE) => (
            "3",
            format!("the request is not a valid message of this method: {message}"),
        ),
        _ => return,
    };
    headers.insert("grpc-status", HeaderValue::from_static(code));
    let encoded = percent_encoding::utf8_percent_encode(&text, GRPC_MESSAGE).to_string();
    if let Ok(value) = HeaderValue::from_str(&encoded) {
        headers.insert("grpc-message", value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(code: &str, message: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("grpc-status", HeaderValue::from_str(code).unwrap());
        headers.insert("grpc-message", HeaderValue::from_str(message).unwrap());
        rewrite(&mut headers);
        headers
    }

    #[test]
    fn an_oversized_request_is_resource_exhausted() {
        let headers = answer(
            "11",
            "Error, decoded message length too large: found 5000000 bytes, the limit is: 4194304 bytes",
        );
        assert_eq!(headers["grpc-status"], "8");
        let message = headers["grpc-message"].to_str().unwrap();
        assert!(message.contains("grpc.max_message_bytes"), "{message}");
        assert!(message.contains("4194304"), "{message}");
    }

    #[test]
    fn an_undecodable_request_is_invalid_argument() {
        let headers = answer("13", "failed to decode Protobuf message: invalid wire type");
        assert_eq!(headers["grpc-status"], "3");
    }

    #[test]
    fn other_answers_are_left_alone() {
        for (code, message) in [
            ("11", "page_token: out of range"),
            ("13", "internal error"),
            ("0", ""),
            ("5", "workflow not found"),
        ] {
            let headers = answer(code, message);
            assert_eq!(headers["grpc-status"], code);
            assert_eq!(headers["grpc-message"], message);
        }
    }
}
