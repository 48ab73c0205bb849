//! Random credentials and how they are stored. API keys and invitation
//! tokens carry 256 bits of entropy, so one round of SHA-256 is the right
//! storage hash: a slow password hash would add latency and no security.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use crate::error::{TenancyError, TenancyResult};

/// Every API key starts with this, so scanners and people recognise one.
pub const API_KEY_PREFIX: &str = "tyb_";
pub const INVITATION_TOKEN_PREFIX: &str = "tyi_";
/// Characters of a key shown in lists: the marker and 8 random characters.
const DISPLAY_PREFIX_LENGTH: usize = 12;

/// A fresh secret with what may be stored of it.
pub struct GeneratedSecret {
    pub secret: String,
    pub hash: String,
    pub display_prefix: String,
}

impl std::fmt::Debug for GeneratedSecret {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("GeneratedSecret")
            .field("display_prefix", &self.display_prefix)
            .finish_non_exhaustive()
    }
}

pub fn new_api_key() -> TenancyResult<GeneratedSecret> {
    generate(API_KEY_PREFIX)
}

pub fn new_invitation_token() -> TenancyResult<GeneratedSecret> {
    generate(INVITATION_TOKEN_PREFIX)
}

fn generate(marker: &str) -> TenancyResult<GeneratedSecret> {
    let mut random = [0u8; 32];
    getrandom::fill(&mut random)
        .map_err(|error| TenancyError::Internal(format!("random source failed: {error}")))?;
    let secret = format!("{marker}{}", URL_SAFE_NO_PAD.encode(random));
    let display_prefix = secret.chars().take(DISPLAY_PREFIX_LENGTH).collect();
    Ok(GeneratedSecret {
        hash: hash_secret(&secret),
        secret,
        display_prefix,
    })
}

/// Hex SHA-256, the only form in which secrets are stored.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Compares two secrets in time independent of where they differ. Hashing
/// first makes both sides the same length, so length leaks nothing either.
pub fn secrets_equal(left: &str, right: &str) -> bool {
    let left = Sha256::digest(left.as_bytes());
    let right = Sha256::digest(right.as_bytes());
    left.iter()
        .zip(right.iter())
        .fold(0u8, |difference, (a, b)| difference | (a ^ b))
        == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_keys_are_marked_random_and_hashed() {
        let first = new_api_key().unwrap();
        let second = new_api_key().unwrap();
        assert!(first.secret.starts_with("tyb_"));
        // 32 random bytes in unpadded base64url are 43 characters.
        assert_eq!(first.secret.len(), 4 + 43);
        assert_ne!(first.secret, second.secret);
        assert_eq!(first.display_prefix.len(), 12);
        assert!(first.secret.starts_with(&first.display_prefix));
        assert_eq!(first.hash, hash_secret(&first.secret));
        assert_eq!(first.hash.len(), 64);
        assert!(!format!("{first:?}").contains(&first.secret));
    }

    #[test]
    fn invitation_tokens_have_their_own_marker() {
        assert!(new_invitation_token().unwrap().secret.starts_with("tyi_"));
    }

    #[test]
    fn secrets_compare_by_content() {
        assert!(secrets_equal("abc", "abc"));
        assert!(!secrets_equal("abc", "abd"));
        assert!(!secrets_equal("abc", "abcd"));
        assert!(!secrets_equal("", "x"));
    }
}
