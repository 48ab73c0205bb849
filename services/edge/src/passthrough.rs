//! Native gRPC on the edge's port, forwarded to the public services.
//!
//! A call on `/<service>/<method>` of a public service is authenticated like
//! any HTTP call (the API key in `authorization` becomes the principal
//! token), gets the request id and the deadline, and is sent as the same
//! HTTP/2 request through the service's channel; the response body and
//! trailers stream back untouched, so every kind of RPC (streaming too) works
//! without the edge decoding a message. The edge answers health itself, and
//! reflection of the public services when it is switched on (see
//! [`crate::own_grpc`]). Anything else, including the internal `AuthService`,
//! is answered `UNIMPLEMENTED`: the public sees only public methods.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use http::{HeaderMap, HeaderName, HeaderValue, header};
use http_body_util::BodyExt;
use tonic::{Code, Status};
use tower::{Service, ServiceExt};
use tyboo_runtime::context::{GRPC_TIMEOUT_HEADER, REQUEST_ID_HEADER, format_grpc_timeout};

use crate::auth::Eviction;
use crate::errors::ApiError;
use crate::layers::metrics::with_route_label;
use crate::metrics::UNMATCHED_ROUTE;
use crate::own_grpc::OwnCall;
use crate::request::{ACCEPT_INVITATION, authenticate, call_context, client_address};
use crate::state::{GrpcTarget, Shared};
use crate::upstream::sanitize;

/// The `grpc-status` of `UNAUTHENTICATED`.
const GRPC_STATUS_UNAUTHENTICATED: &str = "16";

/// Headers that belong to one connection and must not cross the edge (an
/// HTTP/2 upstream refuses them).
const CONNECTION_HEADERS: &[HeaderName] = &[
    header::CONNECTION,
    header::HOST,
    header::PROXY_AUTHORIZATION,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

pub(crate) async fn forward(shared: &Shared, request: Request) -> Response {
    match shared.own_grpc.classify(request.uri().path()) {
        Some(OwnCall::Serve(label)) => {
            return with_route_label(shared.own_grpc.call(request).await, label);
        }
        Some(OwnCall::ReflectionOff(service)) => {
            let error = ApiError::new(
                Code::Unimplemented,
                format!(
                    "{service} is not served on this port: server reflection is off \
                     (edge.grpc_reflection = false)"
                ),
            );
            return with_route_label(error.into_grpc_response(), Arc::from(UNMATCHED_ROUTE));
        }
        None => {}
    }
    let Some(target) = shared.grpc_targets.get(request.uri().path()).cloned() else {
        let error = ApiError::new(
            Code::Unimplemented,
            format!("`{}` is not a public method", request.uri().path()),
        );
        return with_route_label(error.into_grpc_response(), Arc::from(UNMATCHED_ROUTE));
    };
    let label = Arc::clone(&target.label);
    let response = match forward_to(shared, target, request).await {
        Ok(response) => response,
        Err(error) => error.into_grpc_response(),
    };
    with_route_label(response, label)
}

async fn forward_to(
    shared: &Shared,
    target: GrpcTarget,
    request: Request,
) -> Result<Response, ApiError> {
    let context = call_context(&request, shared);
    let address = client_address(request.extensions());
    if request.uri().path() == ACCEPT_INVITATION {
        shared.rate_limits().invitation(address).await?;
    }
    let caller = authenticate(shared, request.headers(), address, &context).await?;
    let (principal_token, eviction) = (caller.token, caller.eviction);

    let (mut parts, body) = request.into_parts();
    for name in CONNECTION_HEADERS {
        parts.headers.remove(name);
    }
    // The caller's API key never travels past the edge.
    parts.headers.remove(header::AUTHORIZATION);
    if let Some(token) = principal_token {
        let bearer = HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|_| ApiError::new(Code::Internal, "unusable principal token"))?;
        parts.headers.insert(header::AUTHORIZATION, bearer);
    }
    if let Ok(value) = HeaderValue::from_str(&context.request_id) {
        parts.headers.insert(REQUEST_ID_HEADER, value);
    }
    let remaining = context.deadline.saturating_duration_since(Instant::now());
    if let Ok(value) = HeaderValue::from_str(&format_grpc_timeout(remaining)) {
        parts.headers.insert(GRPC_TIMEOUT_HEADER, value);
    }
    let upstream_request = http::Request::from_parts(parts, tonic::body::Body::new(body));

    let mut channel = target.channel;
    let sent = async {
        channel.ready().await?;
        channel.call(upstream_request).await
    };
    let response = sent.await.map_err(|error| {
        let status = sanitize(Status::from_error(Box::new(error)), &target.label);
        ApiError::new(status.code(), status.message())
    })?;

    let (mut parts, body) = response.into_parts();
    if let Some(allowance) = caller.allowance {
        parts.headers.extend(allowance.headers());
    }
    let body = match eviction {
        None => Body::new(body),
        Some(eviction) => {
            if is_unauthenticated(&parts.headers) {
                eviction.evict();
            }
            Body::new(evicting_on_unauthenticated(body, eviction))
        }
    };
    Ok(Response::from_parts(parts, body))
}

/// Watches the trailers go by and forgets the caller's token if the service
/// refused it, so the next call exchanges the key again.
fn evicting_on_unauthenticated(
    body: tonic::body::Body,
    eviction: Eviction,
) -> impl http_body::Body<Data = bytes::Bytes, Error = Status> + Send + 'static {
    body.map_frame(move |frame| {
        if frame.trailers_ref().is_some_and(is_unauthenticated) {
            eviction.evict();
        }
        frame
    })
}

fn is_unauthenticated(headers: &HeaderMap) -> bool {
    headers
        .get("grpc-status")
        .is_some_and(|status| status == GRPC_STATUS_UNAUTHENTICATED)
}
