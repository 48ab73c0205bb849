//! The middleware stack around every edge route.
//!
//! Outermost first, and why each sits where it does:
//! 1. [`metrics`] — outside everything, so a request rejected by any layer
//!    below (413, 504, a CORS preflight) is still counted and timed.
//! 2. [`request_id`] — before anything that can answer, so every answer,
//!    error or not, carries the `x-request-id` the caller can quote.
//! 3. [`in_flight`] — load shedding: past the cap a request is refused
//!    before any work is spent on it, still counted and with its id.
//! 4. CORS (tower-http, only when origins are configured) — before the
//!    deadline and the body limit, so a preflight is answered without them
//!    and the errors those layers produce still carry the CORS headers a
//!    browser needs to read them.
//! 5. [`deadline`] — bounds everything below it (key exchange, reading the
//!    body, the upstream call) and fixes the deadline sent upstream.
//! 6. [`body_limit`] — innermost, next to the handler that reads the body.
//!
//! Each is a [`middleware::Middleware`]: what it does to one request, and
//! nothing of tower's plumbing, which [`middleware`] holds once for all.
//!
//! [`normalize_path`] is not in this stack: the stack runs after routing,
//! and the path must be normalized before it. [`crate::edge::Edge::router`]
//! puts it in front of the router.

pub(crate) mod body_limit;
pub(crate) mod deadline;
pub(crate) mod in_flight;
pub(crate) mod metrics;
pub(crate) mod middleware;
pub(crate) mod normalize_path;
pub(crate) mod request_id;

use std::time::Duration;

use axum::Router;
use http::{HeaderName, HeaderValue, Method, header};
use tower::ServiceBuilder;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tyboo_runtime::context::{REQUEST_ID_HEADER, TRACEPARENT_HEADER};

use crate::config::EdgeConfig;

/// How long a browser may reuse a preflight answer.
const CORS_MAX_AGE: Duration = Duration::from_secs(600);

/// Wraps every route of `router` (and its fallback) in the edge's stack.
pub(crate) fn apply(router: Router, config: &EdgeConfig) -> Router {
    router.layer(
        ServiceBuilder::new()
            .layer(metrics::MetricsLayer::new())
            .layer(request_id::RequestIdLayer::new())
            .layer(in_flight::InFlightLayer::new(config.max_in_flight_requests))
            .option_layer(cors(&config.cors_allowed_origins))
            .layer(deadline::DeadlineLayer::new(Duration::from_millis(
                config.request_timeout_ms,
            )))
            .layer(body_limit::BodyLimitLayer::new(config.max_body_bytes)),
    )
}

fn cors(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let allow_origin = if origins.iter().any(|origin| origin == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(
            origins
                .iter()
                .filter_map(|origin| HeaderValue::from_str(origin).ok()),
        )
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow_origin)
            .allow_methods([
                Method::GET,
                Method::POST,
                Method::PUT,
                Method::PATCH,
                Method::DELETE,
            ])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                HeaderName::from_static(REQUEST_ID_HEADER),
                HeaderName::from_static(TRACEPARENT_HEADER),
            ])
            .expose_headers([HeaderName::from_static(REQUEST_ID_HEADER)])
            .max_age(CORS_MAX_AGE),
    )
}
