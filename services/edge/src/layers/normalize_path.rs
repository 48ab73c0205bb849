//! Removes dot segments from the request path before anything routes on it.
//!
//! `/v1/../metrics` and `/v1/%2e%2e/metrics` name `/metrics` to every URL
//! resolver (RFC 3986 §5.2.4); routing them as written would let a path
//! reach a route its prefix does not belong to, or slip past a rule that
//! looks at the prefix. The edge rewrites such a path the way a resolver
//! would, as Envoy's `normalize_path` does, and leaves every other path
//! byte for byte as it came (no slash merging, no other decoding).

use axum::extract::Request;
use http::Uri;
use http::uri::PathAndQuery;

/// Rewrites the request's path when it has dot segments.
pub(crate) fn normalize_request(mut request: Request) -> Request {
    let Some(path) = remove_dot_segments(request.uri().path()) else {
        return request;
    };
    let rewritten = match request.uri().query() {
        Some(query) => format!("{path}?{query}"),
        None => path,
    };
    let mut parts = request.uri().clone().into_parts();
    if let Ok(path_and_query) = PathAndQuery::try_from(rewritten) {
        parts.path_and_query = Some(path_and_query);
        if let Ok(uri) = Uri::from_parts(parts) {
            *request.uri_mut() = uri;
        }
    }
    request
}

/// A segment that a resolver reads as `.` or `..`, with dots percent-encoded
/// or not.
fn dot_segment(segment: &str) -> Option<usize> {
    let mut dots = 0;
    let mut rest = segment;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('.') {
            rest = after;
        } else if rest.len() >= 3 && rest[..3].eq_ignore_ascii_case("%2e") {
            rest = &rest[3..];
        } else {
            return None;
        }
        dots += 1;
    }
    (dots == 1 || dots == 2).then_some(dots)
}

/// The path with its dot segments resolved, or `None` when it has none.
/// A `..` above the root stays at the root.
fn remove_dot_segments(path: &str) -> Option<String> {
    let segments: Vec<&str> = path.strip_prefix('/')?.split('/').collect();
    if !segments
        .iter()
        .any(|segment| dot_segment(segment).is_some())
    {
        return None;
    }
    let mut kept: Vec<&str> = Vec::with_capacity(segments.len());
    let mut trailing_slash = false;
    for segment in segments {
        trailing_slash = false;
        match dot_segment(segment) {
            Some(1) => trailing_slash = true,
            Some(_) => {
                kept.pop();
                trailing_slash = true;
            }
            None => kept.push(segment),
        }
    }
    let mut normalized = format!("/{}", kept.join("/"));
    if trailing_slash && !normalized.ends_with('/') {
        normalized.push('/');
    }
    Some(normalized)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_segments_are_resolved() {
        let cases = [
            ("/v1/../metrics", "/metrics"),
            ("/v1/%2e%2e/metrics", "/metrics"),
            ("/v1/%2E%2e/metrics", "/metrics"),
            ("/v1/.%2e/metrics", "/metrics"),
            ("/../../metrics", "/metrics"),
            ("/v1/./me", "/v1/me"),
            ("/v1/%2e/me", "/v1/me"),
            ("/v1/workspaces/..", "/v1/"),
            ("/v1/me/.", "/v1/me/"),
            ("/a/b/../../c", "/c"),
        ];
        for (path, expected) in cases {
            assert_eq!(
                remove_dot_segments(path).as_deref(),
                Some(expected),
                "{path}"
            );
        }
    }

    #[test]
    fn other_paths_are_left_as_they_came() {
        for path in [
            "/v1/me",
            "/v1//me",
            "/",
            "/tyboo.tenancy.v1.TenancyService/GetMe",
            "/v1/workflows/a.b",
            "/v1/...",
            "/v1/%2e%2e%2e",
            "/v1/..%2fmetrics",
            "/hooks/ws/.hidden",
        ] {
            assert_eq!(remove_dot_segments(path), None, "{path}");
        }
    }

    #[test]
    fn the_query_survives_the_rewrite() {
        let request = Request::builder()
            .uri("/v1/../v1/me?pageSize=2")
            .body(axum::body::Body::empty())
            .unwrap();
        let request = normalize_request(request);
        assert_eq!(request.uri().path(), "/v1/me");
        assert_eq!(request.uri().query(), Some("pageSize=2"));
    }
}
