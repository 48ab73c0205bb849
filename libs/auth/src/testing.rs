//! Signing for test suites: a fresh key whose signer mints the suite's
//! tokens, and a key source that verifies them without asking tenancy.
//!
//! Compiled into every build, like `tyboo_store::testing`: a test-only
//! feature would make `cargo test` rebuild the crates above it.

use std::sync::Arc;

use async_trait::async_trait;

use crate::{AuthError, KeySource, PublicKey, TokenSigner, generate_signing_key};

/// Keys that sign the suite's tokens.
pub struct FixedKeys(pub Vec<PublicKey>);

#[async_trait]
impl KeySource for FixedKeys {
    async fn public_keys(&self) -> Result<Vec<PublicKey>, AuthError> {
        Ok(self.0.clone())
    }
}

/// A new signing key: the signer of the suite's tokens, and the key source
/// that verifies them.
pub fn signing_keys() -> (TokenSigner, Arc<FixedKeys>) {
    let key = generate_signing_key();
    let keys = Arc::new(FixedKeys(vec![PublicKey {
        kid: key.kid.clone(),
        public: key.public,
    }]));
    let signer = TokenSigner::new(key.kid, key.secret).expect("a generated key signs");
    (signer, keys)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::{Principal, TokenVerifier};

    #[tokio::test]
    async fn the_key_source_verifies_what_the_signer_signs() {
        let (signer, keys) = signing_keys();
        let principal = Principal::service("executor");
        let (token, _) = signer.sign(&principal, Duration::from_secs(60)).unwrap();
        let verified = TokenVerifier::new(keys).verify(&token).await.unwrap();
        assert_eq!(verified, principal);
    }
}
