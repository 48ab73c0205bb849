//! Page tokens. Ids are UUIDv7 and sort by creation time, so "newest first"
//! pages by id alone and a token is the last id seen.

use uuid::Uuid;

use crate::error::{ExecutorError, ExecutorResult};

/// The page size to use: the default for 0, at most the maximum.
pub fn page_size(requested: i32, default: u32, max: u32) -> ExecutorResult<u64> {
    if requested < 0 {
        return Err(ExecutorError::invalid("page_size", "must not be negative"));
    }
    let size = if requested == 0 {
        default
    } else {
        requested as u32
    };
    Ok(u64::from(size.min(max)))
}

pub fn decode_id_token(token: &str) -> ExecutorResult<Option<Uuid>> {
    if token.is_empty() {
        return Ok(None);
    }
    Uuid::parse_str(token)
        .map(Some)
        .map_err(|_| ExecutorError::invalid("page_token", "is not a token this service issued"))
}

pub fn decode_version_token(token: &str) -> ExecutorResult<Option<i64>> {
    if token.is_empty() {
        return Ok(None);
    }
    token
        .parse::<i64>()
        .map(Some)
        .map_err(|_| ExecutorError::invalid("page_token", "is not a token this service issued"))
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
        assert_eq!(page_size(0, 50, 500).unwrap(), 50);
        assert_eq!(page_size(9000, 50, 500).unwrap(), 500);
        assert!(page_size(-1, 50, 500).is_err());
        assert!(decode_id_token("nope").is_err());
        assert_eq!(decode_id_token("").unwrap(), None);
        assert_eq!(next_token(&[1, 2], 3, |n| n.to_string()), "");
        assert_eq!(next_token(&[1, 2, 3], 3, |n| n.to_string()), "3");
    }
}
