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

use crate::auth::{self, AuthFailure, Credential, Eviction};
use crate::errors::ApiError;
use crate::layers::body_limit::is_over_limit;
use crate::layers::request_id::context_of;
use crate::rate_limits::{Allowance, ClientAddress};
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

/// The gRPC path of the one public call that is rate limited per client
/// address whatever its credential: guessing invitation tokens.
pub(crate) const ACCEPT_INVITATION: &str = "/tyboo.tenancy.v1.TenancyService/AcceptInvitation";

/// The connection's peer, as [`crate::server::serve`] recorded it.
pub(crate) fn client_address(extensions: &http::Extensions) -> Option<ClientAddress> {
    extensions.get::<ClientAddress>().copied()
}

/// Who calls, as far as the edge forwards it.
#[derive(Default)]
pub(crate) struct Caller {
    /// The principal token for the caller's API key; none for anonymous.
    pub(crate) token: Option<Arc<str>>,
    /// Forgets the token if the service says it is no longer good.
    pub(crate) eviction: Option<Eviction>,
    /// The rate limit state to show on the answer.
    pub(crate) allowance: Option<Allowance>,
}

/// The caller's credential exchanged for a principal token, under the rate
/// limits: an address that has spent its failed-authentication budget is
/// refused before its key is exchanged, each invalid key spends one unit of
/// it, and every authenticated request spends from its API key's and its
/// workspace's quotas.
pub(crate) async fn authenticate(
    shared: &Shared,
    headers: &HeaderMap,
    address: Option<ClientAddress>,
    context: &CallContext,
) -> Result<Caller, ApiError> {
    let api_key = match auth::credential(headers)? {
        Credential::Anonymous => return Ok(Caller::default()),
        Credential::ApiKey(api_key) => api_key,
    };
    let limits = shared.rate_limits();
    let authenticated = match shared.authenticator.cached(&api_key) {
        Some(authenticated) => authenticated,
        None => {
            limits.before_exchange(address).await?;
            match shared.authenticator.exchange(&api_key, context).await {
                Ok(authenticated) => authenticated,
                Err(AuthFailure::InvalidKey) => {
                    limits.failed_exchange(address).await?;
                    return Err(AuthFailure::InvalidKey.into());
                }
                Err(failure) => return Err(failure.into()),
            }
        }
    };
    let allowance = limits
        .authenticated(&authenticated.subject, &api_key)
        .await?;
    Ok(Caller {
        token: Some(authenticated.token),
        eviction: Some(shared.authenticator.eviction(&api_key)),
        allowance,
    })
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
