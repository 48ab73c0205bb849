//! The one error-code table: every gRPC code with its HTTP status and name.
//! Services return `tonic::Status`; the edge turns the same code into the same
//! HTTP status, so a client sees one meaning whichever protocol it speaks.
//! It also holds the one way a service's error becomes that status.

use std::fmt::Display;

use http::StatusCode;
use tonic::{Code, Status};

/// The HTTP status that stands for a gRPC code (as in google.rpc.Code).
pub fn http_status(code: Code) -> StatusCode {
    match code {
        Code::Ok => StatusCode::OK,
        Code::Cancelled => StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
        Code::Unknown => StatusCode::INTERNAL_SERVER_ERROR,
        Code::InvalidArgument => StatusCode::BAD_REQUEST,
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::AlreadyExists => StatusCode::CONFLICT,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        Code::FailedPrecondition => StatusCode::BAD_REQUEST,
        Code::Aborted => StatusCode::CONFLICT,
        Code::OutOfRange => StatusCode::BAD_REQUEST,
        Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        Code::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Code::DataLoss => StatusCode::INTERNAL_SERVER_ERROR,
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
    }
}

/// The canonical upper-case name of a gRPC code, used as `code` in JSON errors.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// An error of the edge itself that has no gRPC code of its own: a body over
/// the limit. It is reported with this name and HTTP 413, and as
/// `RESOURCE_EXHAUSTED` to gRPC clients.
pub const PAYLOAD_TOO_LARGE: &str = "PAYLOAD_TOO_LARGE";

/// The status a service's error becomes, given the error's code. A caller's
/// fault keeps its message. A fault of ours (`Internal`) is logged and shown
/// only as "internal error". A backend that is down (`Unavailable`) is logged
/// as a warning and shown as "<backend> unavailable, retry later".
///
/// `service` names the service in the logs, e.g. "tenancy"; `backend` names
/// what is down, e.g. "database".
pub fn service_status(service: &str, backend: &str, code: Code, error: &dyn Display) -> Status {
    match code {
        Code::Internal => internal_status(service, error),
        Code::Unavailable => unavailable_status(service, backend, error),
        _ => Status::new(code, bounded_message(&error.to_string())),
    }
}

/// The longest message a status carries, in bytes. Messages echo what the
/// caller sent (a field's path, a node id); unbounded, a 100 KB node id
/// would travel back in the trailers, past the HTTP/2 header limits of the
/// hops on the way, and take their shared connection down with it.
pub const MAX_STATUS_MESSAGE_BYTES: usize = 1024;

/// `message` cut at a character boundary to at most
/// [`MAX_STATUS_MESSAGE_BYTES`], ending in "…" when cut.
pub fn bounded_message(message: &str) -> String {
    if message.len() <= MAX_STATUS_MESSAGE_BYTES {
        return message.to_owned();
    }
    let ellipsis = "…";
    let mut end = MAX_STATUS_MESSAGE_BYTES - ellipsis.len();
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{ellipsis}", &message[..end])
}

/// A fault of ours: the error is logged, the caller sees only "internal error".
pub fn internal_status(service: &str, error: &dyn Display) -> Status {
    tracing::error!(error = %error, "{service} request failed");
    Status::internal("internal error")
}

/// A backend that is down: the error is logged as a warning, the caller is
/// told to retry later and sees nothing of the error itself.
pub fn unavailable_status(service: &str, backend: &str, error: &dyn Display) -> Status {
    tracing::warn!(error = %error, "{service} {backend} unavailable");
    Status::unavailable(format!("{backend} unavailable, retry later"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_messages_are_cut_at_a_character_boundary() {
        assert_eq!(bounded_message("short"), "short");
        let exact = "a".repeat(MAX_STATUS_MESSAGE_BYTES);
        assert_eq!(bounded_message(&exact), exact);
        for filler in ["a", "é", "界", "🦀"] {
            let long = format!("nodes[{}]: must be an identifier", filler.repeat(100_000));
            let cut = bounded_message(&long);
            assert!(cut.len() <= MAX_STATUS_MESSAGE_BYTES, "{}", cut.len());
            assert!(cut.ends_with('…'));
            assert!(cut.starts_with("nodes["));
        }
        let status = service_status(
            "executor",
            "database",
            Code::InvalidArgument,
            &format!("nodes[{}]: bad", "x".repeat(100_000)),
        );
        assert!(status.message().len() <= MAX_STATUS_MESSAGE_BYTES);
    }

    #[test]
    fn client_errors_map_to_4xx_and_server_errors_to_5xx() {
        assert_eq!(http_status(Code::InvalidArgument), StatusCode::BAD_REQUEST);
        assert_eq!(http_status(Code::Unauthenticated), StatusCode::UNAUTHORIZED);
        assert_eq!(http_status(Code::PermissionDenied), StatusCode::FORBIDDEN);
        assert_eq!(http_status(Code::NotFound), StatusCode::NOT_FOUND);
        assert_eq!(
            http_status(Code::Unavailable),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(code_name(Code::FailedPrecondition), "FAILED_PRECONDITION");
    }

    #[test]
    fn a_callers_fault_keeps_its_code_and_message() {
        for code in [
            Code::InvalidArgument,
            Code::Unauthenticated,
            Code::PermissionDenied,
            Code::NotFound,
            Code::AlreadyExists,
            Code::FailedPrecondition,
            Code::Aborted,
            Code::ResourceExhausted,
            Code::DataLoss,
        ] {
            let status = service_status("tenancy", "database", code, &"email: must be set");
            assert_eq!(status.code(), code);
            assert_eq!(status.message(), "email: must be set");
        }
    }

    #[test]
    fn an_internal_fault_hides_its_message() {
        let secret = "relation audit_events: secret detail";
        let status = service_status("tenancy", "database", Code::Internal, &secret);
        assert_eq!(status.code(), Code::Internal);
        assert_eq!(status.message(), "internal error");

        let status = internal_status("vault", &secret);
        assert_eq!(status.code(), Code::Internal);
        assert_eq!(status.message(), "internal error");
    }

    #[test]
    fn an_unavailable_backend_asks_for_a_retry_and_hides_the_cause() {
        let cause = "connection refused by 10.0.0.7:5432";
        let status = service_status("tenancy", "database", Code::Unavailable, &cause);
        assert_eq!(status.code(), Code::Unavailable);
        assert_eq!(status.message(), "database unavailable, retry later");

        let status = unavailable_status("executor", "backend", &cause);
        assert_eq!(status.code(), Code::Unavailable);
        assert_eq!(status.message(), "backend unavailable, retry later");
    }
}
