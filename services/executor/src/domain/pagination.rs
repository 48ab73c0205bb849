//! Page tokens. Ids are UUIDv7 and sort by creation time, so "newest first"
//! pages by id alone and a token is the last id seen.

pub use tyboo_runtime::pagination::{decode_id_token, decode_version_token, next_token};

use crate::error::ExecutorResult;

/// The page size to use: the default for 0, at most the maximum.
pub fn page_size(requested: i32, default: u32, max: u32) -> ExecutorResult<u64> {
    Ok(u64::from(tyboo_runtime::pagination::page_size(
        requested, default, max,
    )?))
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
