//! Which protocol a request speaks, told from its headers alone.
//!
//! The layers (the deadline answers a gRPC caller in trailers, the body limit
//! leaves gRPC streams alone) and the dispatcher (gRPC is passed through,
//! the rest transcoded) all ask the same question, so it is answered here,
//! below all of them.

use http::{HeaderMap, header};

/// Whether a request speaks native gRPC (gRPC-Web is another protocol and is
/// not passed through).
pub(crate) fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|content_type| {
            let content_type = content_type.trim();
            let Some(rest) = content_type
                .get(..16)
                .filter(|prefix| prefix.eq_ignore_ascii_case("application/grpc"))
                .map(|_| &content_type[16..])
            else {
                return false;
            };
            rest.is_empty() || rest.starts_with('+') || rest.starts_with(';')
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn content_type(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn grpc_is_told_from_json_and_grpc_web() {
        assert!(is_grpc(&content_type("application/grpc")));
        assert!(is_grpc(&content_type("application/grpc+proto")));
        assert!(is_grpc(&content_type("Application/GRPC; charset=utf-8")));
        assert!(!is_grpc(&content_type("application/grpc-web")));
        assert!(!is_grpc(&content_type("application/grpc-web+proto")));
        assert!(!is_grpc(&content_type("application/json")));
        assert!(!is_grpc(&HeaderMap::new()));
    }
}
