//! Database errors that callers answer differently from a plain failure.

use sea_orm::{DbErr, SqlErr};

/// Whether `error` is a unique-index violation, which some writes turn into
/// a domain answer ("already exists") rather than a failure.
pub fn is_unique_violation(error: &DbErr) -> bool {
    matches!(error.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
}

/// Whether `error` means the database could not be reached or the pool had
/// no connection to give in time: a condition worth retrying later, unlike a
/// statement that failed.
pub fn is_unavailable(error: &DbErr) -> bool {
    matches!(error, DbErr::ConnectionAcquire(_) | DbErr::Conn(_))
}

#[cfg(test)]
mod tests {
    use sea_orm::{ConnAcquireErr, RuntimeErr};

    use super::*;

    #[test]
    fn pool_and_connection_failures_are_unavailable() {
        assert!(is_unavailable(&DbErr::ConnectionAcquire(
            ConnAcquireErr::Timeout
        )));
        assert!(is_unavailable(&DbErr::ConnectionAcquire(
            ConnAcquireErr::ConnectionClosed
        )));
        assert!(is_unavailable(&DbErr::Conn(RuntimeErr::Internal(
            "connection refused".to_owned()
        ))));
    }

    #[test]
    fn failed_statements_are_not_unavailable() {
        assert!(!is_unavailable(&DbErr::Custom("secret detail".to_owned())));
        assert!(!is_unavailable(&DbErr::Query(RuntimeErr::Internal(
            "syntax error".to_owned()
        ))));
        assert!(!is_unavailable(&DbErr::RecordNotFound("row".to_owned())));
    }

    #[test]
    fn errors_without_a_sql_cause_are_not_unique_violations() {
        assert!(!is_unique_violation(&DbErr::Custom(
            "duplicate key".to_owned()
        )));
        assert!(!is_unique_violation(&DbErr::ConnectionAcquire(
            ConnAcquireErr::Timeout
        )));
    }
}
