//! Page sizes and id or version page tokens, read the same way by every
//! listing. A value that does not fit is a [`PageError`], which each
//! service's error (see [`service_error!`](crate::service_error)) takes as
//! INVALID_ARGUMENT with the same message.

use uuid::Uuid;

/// A `page_size` or `page_token` that no page can be read with.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct PageError {
    pub field: &'static str,
    pub message: &'static str,
}

fn foreign_token() -> PageError {
    PageError {
        field: "page_token",
        message: "is not a token this service issued",
    }
}

/// The page size to use: the default for 0, at most the maximum.
pub fn page_size(requested: i32, default: u32, max: u32) -> Result<u32, PageError> {
    match u32::try_from(requested) {
        Err(_) => Err(PageError {
            field: "page_size",
            message: "must not be negative",
        }),
        Ok(0) => Ok(default),
        Ok(size) => Ok(size.min(max)),
    }
}

/// The id a page token continues after; `None` for the first page.
pub fn decode_id_token(token: &str) -> Result<Option<Uuid>, PageError> {
    if token.is_empty() {
        return Ok(None);
    }
    Uuid::parse_str(token)
        .map(Some)
        .map_err(|_| foreign_token())
}

/// The version a page token continues after; `None` for the first page.
pub fn decode_version_token(token: &str) -> Result<Option<i64>, PageError> {
    if token.is_empty() {
        return Ok(None);
    }
    token.parse::<i64>().map(Some).map_err(|_| foreign_token())
}

/// The token for the page after `rows`, empty when this page was not full.
pub fn next_token<T>(rows: &[T], limit: u64, key: impl Fn(&T) -> String) -> String {
    if (rows.len() as u64) < limit {
        return String::new();
    }
    rows.last().map(key).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_bounded_and_tokens_checked() {
        assert_eq!(page_size(0, 50, 500), Ok(50));
        assert_eq!(page_size(9000, 50, 500), Ok(500));
        assert_eq!(
            page_size(-1, 50, 500).unwrap_err().to_string(),
            "page_size: must not be negative"
        );
        assert_eq!(
            decode_id_token("nope").unwrap_err().to_string(),
            "page_token: is not a token this service issued"
        );
        assert_eq!(decode_id_token("").unwrap(), None);
        assert!(decode_version_token("v2").is_err());
        assert_eq!(decode_version_token("7").unwrap(), Some(7));
        assert_eq!(next_token(&[1, 2], 3, |n| n.to_string()), "");
        assert_eq!(next_token(&[1, 2, 3], 3, |n| n.to_string()), "3");
    }
}
