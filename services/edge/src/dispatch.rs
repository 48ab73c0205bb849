//! Everything that is not one of the edge's own paths lands here: native gRPC
//! goes to [`passthrough`], the rest is HTTP/JSON to transcode.
//!
//! A JSON call runs: match the route → exchange the API key → read the body →
//! build the request message → call upstream → write the response JSON. The
//! key is checked before the body is read, so an unauthenticated caller
//! cannot make the edge buffer a body.
//!
//! The body is parsed as JSON whatever its `Content-Type`: `curl -d` sends
//! `application/x-www-form-urlencoded` by default, and refusing that would
//! only trip people up; a body that is not JSON fails with a 400 that says so.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderValue, StatusCode, header, request::Parts};
use prost::Message;
use tonic::Code;

use crate::auth::{self, Credential, Eviction};
use crate::edge::Shared;
use crate::errors::ApiError;
use crate::layers::body_limit::is_over_limit;
use crate::layers::metrics::with_route_label;
use crate::layers::request_id::context_of;
use crate::metrics::UNMATCHED_ROUTE;
use crate::passthrough;
use crate::routes::{BodyBinding, RouteMatch};
use crate::transcode;
use crate::upstream::{self, CallContext};

pub(crate) async fn dispatch(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    if passthrough::is_grpc(request.headers()) {
        return passthrough::forward(&shared, request).await;
    }
    serve_json(&shared, request).await
}

/// What the edge forwards for this request: its id, trace context and the
/// deadline the layers fixed.
pub(crate) fn call_context(request: &Request, shared: &Shared) -> CallContext {
    let context = context_of(request);
    let deadline = context.deadline.unwrap_or_else(|| {
        Instant::now() + Duration::from_millis(shared.config.request_timeout_ms)
    });
    CallContext {
        request_id: context.request_id,
        traceparent: context.traceparent,
        deadline,
        idempotency_key: crate::upstream::idempotency_key(request.headers()),
    }
}

/// The principal token for the caller's credential, and a way to forget it
/// if the service says the token is no longer good.
pub(crate) async fn authenticate(
    shared: &Shared,
    headers: &http::HeaderMap,
    context: &CallContext,
) -> Result<(Option<Arc<str>>, Option<Eviction>), ApiError> {
    match auth::credential(headers)? {
        Credential::Anonymous => Ok((None, None)),
        Credential::ApiKey(api_key) => {
            let token = shared
                .authenticator
                .principal_token(&api_key, context)
                .await?;
            Ok((Some(token), Some(shared.authenticator.eviction(&api_key))))
        }
    }
}

async fn serve_json(shared: &Shared, request: Request) -> Response {
    let context = call_context(&request, shared);
    let (parts, body) = request.into_parts();
    let matched = match shared.routes.lookup(&parts.method, parts.uri.path()) {
        Ok(matched) => matched,
        Err(error) => {
            return with_route_label(
                error.into_json_response(&context.request_id),
                Arc::from(UNMATCHED_ROUTE),
            );
        }
    };
    let label = Arc::clone(&matched.route.label);
    let response = match transcoded_call(shared, &parts, body, &matched, &context).await {
        Ok(json) => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            json,
        )
            .into_response(),
        Err(error) => {
            if error.status().is_server_error() {
                tracing::warn!(route = %label, message = error.message(), "request failed");
            }
            error.into_json_response(&context.request_id)
        }
    };
    with_route_label(response, label)
}

async fn transcoded_call(
    shared: &Shared,
    parts: &Parts,
    body: Body,
    matched: &RouteMatch,
    context: &CallContext,
) -> Result<Vec<u8>, ApiError> {
    let route = &matched.route;
    let (principal_token, eviction) = authenticate(shared, &parts.headers, context).await?;
    let body = match route.body {
        BodyBinding::None => Bytes::new(),
        BodyBinding::Whole | BodyBinding::Field(_) => {
            read_body(body, shared.config.max_body_bytes).await?
        }
    };
    let message = transcode::request_message(matched, parts.uri.query(), &body)?;
    let channel = shared
        .channels
        .get(&route.service)
        .cloned()
        .ok_or_else(|| {
            // Routes are built from the same services as the channels.
            ApiError::new(Code::Internal, "no upstream for this route")
        })?;
    let reply = upstream::unary(
        channel,
        route.grpc_path.clone(),
        Bytes::from(message.encode_to_vec()),
        context,
        principal_token.as_deref(),
        shared.config.max_grpc_message_bytes,
    )
    .await;
    match reply {
        Ok(payload) => transcode::response_json(route, &payload, &shared.serialize_options),
        Err(status) => {
            if status.code() == Code::Unauthenticated
                && let Some(eviction) = eviction
            {
                eviction.evict();
            }
            Err(ApiError::from_status(&status))
        }
    }
}

pub(crate) async fn read_body(body: Body, limit: usize) -> Result<Bytes, ApiError> {
    // The body limit layer already caps the body; the cap here keeps the
    // handler safe on its own.
    axum::body::to_bytes(body, limit).await.map_err(|error| {
        if is_over_limit(&error) {
            ApiError::payload_too_large(limit)
        } else {
            ApiError::invalid_argument("the request body could not be read")
        }
    })
}
