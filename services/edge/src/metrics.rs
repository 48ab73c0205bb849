//! The edge's metric names, with their units, and their descriptions.
//!
//! Label values are bounded: `route` is a route template (or `/service/Method`
//! for gRPC, or one of a few fixed names), never a raw path or a user id.

use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};

/// Requests answered, by `route`, `method` and HTTP `status`.
pub const REQUESTS_TOTAL: &str = "tyboo_edge_requests_total";
/// Time from request to response head, by `route` and `method`.
pub const REQUEST_DURATION_SECONDS: &str = "tyboo_edge_request_duration_seconds";
/// Requests being served right now.
pub const REQUESTS_IN_FLIGHT: &str = "tyboo_edge_requests_in_flight";
/// Principal token cache lookups, by `result` (`hit` or `miss`).
pub const AUTH_CACHE_LOOKUPS_TOTAL: &str = "tyboo_edge_auth_cache_lookups_total";
/// Principal tokens dropped from the cache before their time, by `reason`:
/// `access_change` (tenancy reported a role change, removal, revoked or
/// rotated key), `cursor_expired` or `watch_started` (the edge could not
/// tell which tokens were stale, so dropped all), `unauthenticated` (a
/// service refused the token).
pub const AUTH_CACHE_EVICTIONS_TOTAL: &str = "tyboo_edge_auth_cache_evictions_total";

/// Requests refused by a limit, by `kind`: `api_key`, `workspace`,
/// `failed_auth`, `invitation`, `webhook` (rate limits, 429) or
/// `in_flight` (load shedding, 503).
pub const RATE_LIMITED_TOTAL: &str = "tyboo_edge_rate_limited_total";

pub const ROUTE_LABEL: &str = "route";
pub const METHOD_LABEL: &str = "method";
pub const STATUS_LABEL: &str = "status";
pub const RESULT_LABEL: &str = "result";
pub const REASON_LABEL: &str = "reason";
pub const KIND_LABEL: &str = "kind";

/// The `route` of a request that matched nothing.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// Describes every edge metric to the installed recorder; call once at start.
pub fn describe() {
    describe_counter!(
        REQUESTS_TOTAL,
        Unit::Count,
        "Requests answered by the edge, by route template, method and HTTP status"
    );
    describe_histogram!(
        REQUEST_DURATION_SECONDS,
        Unit::Seconds,
        "Time from request to response head at the edge"
    );
    describe_gauge!(
        REQUESTS_IN_FLIGHT,
        Unit::Count,
        "Requests the edge is serving now"
    );
    describe_counter!(
        AUTH_CACHE_LOOKUPS_TOTAL,
        Unit::Count,
        "Principal token cache lookups by result (hit or miss)"
    );
    describe_counter!(
        RATE_LIMITED_TOTAL,
        Unit::Count,
        "Requests refused by a rate limit (429) or the in-flight cap (503), by kind"
    );
    tyboo_ratelimit::metrics::describe();
    describe_counter!(
        AUTH_CACHE_EVICTIONS_TOTAL,
        Unit::Count,
        "Principal tokens dropped from the cache before their time, by reason"
    );
}
