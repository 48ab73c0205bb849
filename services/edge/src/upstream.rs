//! The transcoded call: one unary gRPC request of already-encoded bytes.
//!
//! The edge knows messages only through descriptors, so it encodes the
//! dynamic message itself and hands tonic plain bytes through [`RawCodec`];
//! tonic does the framing, compression negotiation, size limits and status
//! parsing.

use std::time::Instant;

use bytes::{Buf, BufMut, Bytes};
use http::uri::PathAndQuery;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::transport::Channel;
use tonic::{Code, Status};
use tyboo_runtime::context::{REQUEST_ID_HEADER, TRACEPARENT_HEADER};

/// A codec for messages that are already encoded.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct RawCodec;

#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct RawEncoder;

#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct RawDecoder;

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = RawEncoder;
    type Decoder = RawDecoder;

    fn encoder(&mut self) -> Self::Encoder {
        RawEncoder
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawDecoder
    }
}

impl Encoder for RawEncoder {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawDecoder {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

/// What the edge forwards with every call it makes on a caller's behalf.
#[derive(Clone, Debug)]
pub(crate) struct CallContext {
    pub(crate) request_id: String,
    pub(crate) traceparent: Option<String>,
    pub(crate) deadline: Instant,
    /// The caller's `Idempotency-Key`, passed on as `idempotency-key`
    /// metadata for the services that honour one (StartExecution).
    pub(crate) idempotency_key: Option<String>,
}

/// The header (and metadata key) that names a retry-safe request.
pub(crate) const IDEMPOTENCY_KEY_HEADER: &str = "idempotency-key";
/// Longest idempotency key passed on; longer ones are dropped, not cut.
const MAX_IDEMPOTENCY_KEY_LENGTH: usize = 200;

/// The `Idempotency-Key` of a request when it is printable ASCII of a sane
/// length.
pub(crate) fn idempotency_key(headers: &http::HeaderMap) -> Option<String> {
    let value = headers.get(IDEMPOTENCY_KEY_HEADER)?.to_str().ok()?.trim();
    (!value.is_empty()
        && value.len() <= MAX_IDEMPOTENCY_KEY_LENGTH
        && value.bytes().all(|byte| byte.is_ascii_graphic()))
    .then(|| value.to_owned())
}

impl CallContext {
    /// Writes the request id, trace context, principal token and remaining
    /// deadline into outgoing metadata.
    pub(crate) fn apply<T>(&self, request: &mut tonic::Request<T>, principal_token: Option<&str>) {
        let metadata: &mut MetadataMap = request.metadata_mut();
        if let Ok(value) = MetadataValue::try_from(self.request_id.as_str()) {
            metadata.insert(REQUEST_ID_HEADER, value);
        }
        if let Some(Ok(value)) = self.traceparent.as_deref().map(MetadataValue::try_from) {
            metadata.insert(TRACEPARENT_HEADER, value);
        }
        if let Some(Ok(value)) = self.idempotency_key.as_deref().map(MetadataValue::try_from) {
            metadata.insert(IDEMPOTENCY_KEY_HEADER, value);
        }
        if let Some(Ok(value)) = principal_token
            .map(|token| format!("Bearer {token}"))
            .map(|bearer| MetadataValue::try_from(bearer.as_str()))
        {
            metadata.insert("authorization", value);
        }
        request.set_timeout(self.deadline.saturating_duration_since(Instant::now()));
    }
}

/// Calls `path` on `channel` with an encoded request; returns the encoded
/// response.
pub(crate) async fn unary(
    channel: Channel,
    path: PathAndQuery,
    payload: Bytes,
    context: &CallContext,
    principal_token: Option<&str>,
    max_message_bytes: usize,
) -> Result<Bytes, Status> {
    let mut grpc = tonic::client::Grpc::new(channel)
        .max_decoding_message_size(max_message_bytes)
        .max_encoding_message_size(max_message_bytes);
    grpc.ready()
        .await
        .map_err(|err| sanitize(Status::from_error(Box::new(err)), path.as_str()))?;
    let mut request = tonic::Request::new(payload);
    context.apply(&mut request, principal_token);
    grpc.unary(request, path.clone(), RawCodec)
        .await
        .map(tonic::Response::into_inner)
        .map_err(|status| sanitize(status, path.as_str()))
}

/// A status that tonic made from a transport failure carries the failure as
/// its source and often addresses in its message; the caller gets a plain
/// "unavailable" and the details go to the log.
pub(crate) fn sanitize(status: Status, path: &str) -> Status {
    if status.code() == Code::OutOfRange && status.message().contains("message length too large") {
        // The service's answer is over the edge's own cap: a server-side
        // limit, not a range the caller asked for.
        tracing::warn!(path, error = %status, "upstream answer over the edge's message cap");
        return Status::resource_exhausted(
            "the answer is larger than the edge passes on (edge.max_grpc_message_bytes)",
        );
    }
    if std::error::Error::source(&status).is_none() {
        return status;
    }
    tracing::warn!(path, error = %status, "upstream call failed in transport");
    // A transport failure is the mesh's, not a limit the caller reached: an
    // HTTP/2 reset such as ENHANCE_YOUR_CALM must not read as 429, and a
    // connection that hyper gave up on ("operation was canceled") is not a
    // caller that went away: only the edge's own deadline keeps its code.
    let code = match status.code() {
        Code::DeadlineExceeded => status.code(),
        _ => Code::Unavailable,
    };
    Status::new(code, "the service is unavailable")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn context_is_written_as_metadata() {
        let context = CallContext {
            request_id: "req-1".into(),
            traceparent: Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into()),
            deadline: Instant::now() + Duration::from_secs(5),
            idempotency_key: Some("retry-1".into()),
        };
        let mut request = tonic::Request::new(());
        context.apply(&mut request, Some("tok"));
        assert_eq!(
            request.metadata().get(IDEMPOTENCY_KEY_HEADER).unwrap(),
            "retry-1"
        );
        let metadata = request.metadata();
        assert_eq!(metadata.get(REQUEST_ID_HEADER).unwrap(), "req-1");
        assert!(metadata.get(TRACEPARENT_HEADER).is_some());
        assert_eq!(metadata.get("authorization").unwrap(), "Bearer tok");
        let timeout = metadata.get("grpc-timeout").unwrap().to_str().unwrap();
        let remaining = tyboo_runtime::context::parse_grpc_timeout(timeout).expect("valid");
        assert!(remaining <= Duration::from_secs(5) && remaining > Duration::from_secs(4));
    }

    #[test]
    fn a_service_status_passes_unchanged() {
        let status = sanitize(Status::not_found("no such workspace"), "/x/Y");
        assert_eq!(status.code(), Code::NotFound);
        assert_eq!(status.message(), "no such workspace");
    }

    #[test]
    fn an_answer_over_the_cap_is_resource_exhausted() {
        let status = sanitize(
            Status::out_of_range(
                "Error, decoded message length too large: found 6000000 bytes, the limit is: 4194304 bytes",
            ),
            "/x/Y",
        );
        assert_eq!(status.code(), Code::ResourceExhausted);
        assert!(status.message().contains("edge.max_grpc_message_bytes"));
        let range = sanitize(Status::out_of_range("page 9 of 3"), "/x/Y");
        assert_eq!(range.code(), Code::OutOfRange);
    }

    #[test]
    fn transport_failures_are_503_whatever_the_reset_says() {
        for code in [
            Code::ResourceExhausted,
            Code::Internal,
            Code::Unknown,
            Code::PermissionDenied,
            Code::Cancelled,
        ] {
            let mut status = Status::new(code, "h2 protocol error: enhance your calm");
            status.set_source(std::sync::Arc::new(std::io::Error::other("stream reset")));
            let sanitized = sanitize(status, "/x/Y");
            assert_eq!(sanitized.code(), Code::Unavailable, "{code:?}");
            assert_eq!(sanitized.message(), "the service is unavailable");
        }
        let mut late = Status::deadline_exceeded("timeout");
        late.set_source(std::sync::Arc::new(std::io::Error::other("timer")));
        assert_eq!(sanitize(late, "/x/Y").code(), Code::DeadlineExceeded);
    }

    #[test]
    fn only_sane_idempotency_keys_are_passed_on() {
        let key = |value: &str| {
            let mut headers = http::HeaderMap::new();
            headers.insert(IDEMPOTENCY_KEY_HEADER, value.parse().unwrap());
            idempotency_key(&headers)
        };
        assert_eq!(key("order-7").as_deref(), Some("order-7"));
        assert_eq!(key(" spaced ").as_deref(), Some("spaced"));
        assert_eq!(key(&"k".repeat(200)).map(|key| key.len()), Some(200));
        assert_eq!(key(&"k".repeat(201)), None);
        assert_eq!(key("two words"), None);
        assert_eq!(key(""), None);
        assert_eq!(idempotency_key(&http::HeaderMap::new()), None);
    }
}
