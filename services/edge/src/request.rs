//! What every handler does with a request before its own work: fix the
//! context sent upstream, exchange the caller's API key, and read the body.
//!
//! The JSON dispatcher, the gRPC passthrough and the webhooks all use these
//! and none of them owns them, so they sit here, below all three.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::Request;
use bytes::Bytes;
use http::HeaderMap;
use http_body_util::BodyExt;

use crate::auth::{self, Credential, Eviction};
use crate::errors::ApiError;
use crate::layers::body_limit::is_over_limit;
use crate::layers::request_id::context_of;
use crate::state::Shared;
use crate::upstream::{self, CallContext};

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
        idempotency_key: upstream::idempotency_key(request.headers()),
    }
}

/// The principal token for the caller's credential, and a way to forget it
/// if the service says the token is no longer good.
pub(crate) async fn authenticate(
    shared: &Shared,
    headers: &HeaderMap,
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

/// The whole body. Its size is the body limit layer's to check (every route
/// of [`crate::Edge::router`] runs behind it): reading stops where that
/// layer's cap does, and the 413 says which limit it was.
pub(crate) async fn read_body(shared: &Shared, body: Body) -> Result<Bytes, ApiError> {
    match body.collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if is_over_limit(&error) => {
            Err(ApiError::payload_too_large(shared.config.max_body_bytes))
        }
        Err(_) => Err(ApiError::invalid_argument(
            "the request body could not be read",
        )),
    }
}
