//! Which failures may count against a shared breaker. A breaker is shared by
//! every tenant calling a target, so only failures that say the target itself
//! is unhealthy count; a failure the tenant caused (bad credentials, a bad
//! request) says nothing about the target and must never open its breaker.

/// How an outbound call failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureKind {
    /// No answer could be had: refused, reset, DNS or TLS failure.
    Connection,
    /// The target did not answer in time.
    Timeout,
    /// The target answered with this HTTP status.
    HttpStatus(u16),
    /// The request could not be made from the tenant's input (invalid URL,
    /// body that does not encode): the target was never asked.
    InvalidRequest,
}

/// True when `kind` says the target is unhealthy: connection errors,
/// timeouts, 5xx and 429. A call that failed otherwise (any other status,
/// including every other 4xx) reached a healthy target and is recorded as
/// [`crate::Outcome::Success`].
pub fn counts_against_target(kind: FailureKind) -> bool {
    match kind {
        FailureKind::Connection | FailureKind::Timeout => true,
        FailureKind::HttpStatus(status) => status == 429 || (500..600).contains(&status),
        FailureKind::InvalidRequest => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreachable_or_slow_target_counts() {
        assert!(counts_against_target(FailureKind::Connection));
        assert!(counts_against_target(FailureKind::Timeout));
    }

    #[test]
    fn server_errors_and_throttling_count() {
        for status in [500, 502, 503, 504, 599, 429] {
            assert!(
                counts_against_target(FailureKind::HttpStatus(status)),
                "{status}"
            );
        }
    }

    #[test]
    fn a_tenants_own_client_errors_never_count() {
        for status in [400, 401, 403, 404, 408, 409, 422, 428, 430, 499] {
            assert!(
                !counts_against_target(FailureKind::HttpStatus(status)),
                "{status}"
            );
        }
        assert!(!counts_against_target(FailureKind::InvalidRequest));
    }

    #[test]
    fn answers_outside_the_error_ranges_never_count() {
        for status in [100, 200, 204, 301, 304, 600] {
            assert!(
                !counts_against_target(FailureKind::HttpStatus(status)),
                "{status}"
            );
        }
    }
}
