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

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderValue, StatusCode, header, request::Parts};
use prost::Message;
use tonic::Code;

use crate::errors::ApiError;
use crate::layers::metrics::with_route_label;
use crate::metrics::UNMATCHED_ROUTE;
use crate::passthrough;
use crate::protocol::is_grpc;
use crate::rate_limits::Allowance;
use crate::request::{ACCEPT_INVITATION, authenticate, call_context, client_address, read_body};
use crate::routes::{BodyBinding, RouteMatch};
use crate::state::Shared;
use crate::transcode;
use crate::upstream::{self, CallContext};

pub(crate) async fn dispatch(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    if is_grpc(request.headers()) {
        return passthrough::forward(&shared, request).await;
    }
    serve_json(&shared, request).await
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
        Ok((json, allowance)) => {
            let mut response = (
                StatusCode::OK,
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                )],
                json,
            )
                .into_response();
            if let Some(allowance) = allowance {
                response.headers_mut().extend(allowance.headers());
            }
            response
        }
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
) -> Result<(Vec<u8>, Option<Allowance>), ApiError> {
    let route = &matched.route;
    let address = client_address(&parts.extensions);
    if route.grpc_path.path() == ACCEPT_INVITATION {
        shared.rate_limits().invitation(address).await?;
    }
    let caller = authenticate(shared, &parts.headers, address, context).await?;
    let body = match route.body {
        BodyBinding::None => Bytes::new(),
        BodyBinding::Whole | BodyBinding::Field(_) => read_body(shared, body).await?,
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
        caller.token.as_deref(),
        shared.config.max_grpc_message_bytes,
    )
    .await;
    match reply {
        Ok(payload) => transcode::response_json(route, &payload, &shared.serialize_options)
            .map(|json| (json, caller.allowance)),
        Err(status) => {
            if status.code() == Code::Unauthenticated
                && let Some(eviction) = caller.eviction
            {
                eviction.evict();
            }
            Err(ApiError::from_status(&status))
        }
    }
}
