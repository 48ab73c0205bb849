//! Page tokens. Credentials list by name, unique in a workspace, so a token
//! is the last name seen, encoded so it stays opaque and URL-safe. Page
//! sizes are read as every service reads them.

use base64::Engine as _;
use base64::alphabet;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

use crate::error::{VaultError, VaultResult};

/// The page size to use: the default for 0, at most the maximum.
pub fn page_size(requested: i32, default: u32, max: u32) -> VaultResult<u64> {
    Ok(u64::from(tyboo_runtime::pagination::page_size(
        requested, default, max,
    )?))
}

pub fn decode_name_token(token: &str) -> VaultResult<Option<String>> {
    if token.is_empty() {
        return Ok(None);
    }
    // Any unpadded base64url text is a token, as the contract says
    // (`ListCredentialsRequest.page_token`): the page starts after the name
    // it spells, whether or not such a credential exists.
    TOKEN_ENGINE
        .decode(token)
        .map(|bytes| Some(String::from_utf8_lossy(&bytes).into_owned()))
        .map_err(|_| VaultError::invalid("page_token", "is not a token this service issued"))
}

const TOKEN_ENGINE: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::RequireNone)
        .with_decode_allow_trailing_bits(true),
);

pub fn encode_name_token(name: &str) -> String {
    URL_SAFE_NO_PAD.encode(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_bounded_and_tokens_round_trip() {
        assert_eq!(page_size(0, 50, 500).unwrap(), 50);
        assert_eq!(page_size(9000, 50, 500).unwrap(), 500);
        assert!(page_size(-1, 50, 500).is_err());
        assert_eq!(decode_name_token("").unwrap(), None);
        assert!(decode_name_token("!!").is_err());
        let token = encode_name_token("Slack / prod");
        assert_eq!(
            decode_name_token(&token).unwrap().as_deref(),
            Some("Slack / prod")
        );
    }
}
