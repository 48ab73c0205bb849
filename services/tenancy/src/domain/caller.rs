//! Who is calling: a principal token verified against the service's own
//! keys, plus the checks only tenancy can make because it owns the keys.

use tyboo_auth::{Principal, TokenVerifier};
use tyboo_store::Scope;

use super::Domain;
use super::secrets::API_KEY_PREFIX;
use crate::error::{TenancyError, TenancyResult};
use crate::storage::{self, api_keys};

impl Domain {
    /// Verifies the bearer token of a call. Beyond signature and expiry, a
    /// token issued for an API key stops working here the moment that key is
    /// revoked, expires or is rotated, rather than when the token expires.
    pub async fn verify_caller(&self, bearer: Option<&str>) -> TenancyResult<Principal> {
        let token = bearer.ok_or_else(|| {
            TenancyError::Unauthenticated(
                "missing credentials: send `authorization: Bearer <token>`".to_owned(),
            )
        })?;
        if token.starts_with(API_KEY_PREFIX) {
            return Err(TenancyError::Unauthenticated(
                "an API key is not accepted here: exchange it for a principal token with \
                 tyboo.tenancy.v1.AuthService/Authenticate"
                    .to_owned(),
            ));
        }
        let principal = self.verifier().verify(token).await?;
        if let Some(api_key_id) = principal.api_key_id {
            let no_longer_valid = || {
                TenancyError::Unauthenticated(
                    "the API key behind this token is no longer valid".to_owned(),
                )
            };
            // A token for a key always names the key's workspace.
            let workspace_id = principal.workspace_id.ok_or_else(no_longer_valid)?;
            let key = api_keys::find(
                &self.store().read(Scope::Workspace(workspace_id)),
                api_key_id,
            )
            .await?
            .ok_or_else(no_longer_valid)?;
            let now = storage::now();
            let expired = key.expire_time.is_some_and(|expiry| expiry <= now);
            // Every rotation gives the key a new secret version; a token
            // minted for an earlier secret is dead from that moment.
            let rotated_since_issue =
                principal.api_key_version != Some(super::api_keys::secret_version(&key));
            let belongs = Some(key.workspace_id) == principal.workspace_id
                && Some(key.user_id) == principal.user_id();
            if key.revoke_time.is_some() || expired || rotated_since_issue || !belongs {
                return Err(no_longer_valid());
            }
        }
        Ok(principal)
    }

    pub(crate) fn verifier(&self) -> TokenVerifier {
        self.inner
            .verifier
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Forgets cached public keys, after this process published a new one.
    pub(crate) fn reset_verifier(&self) {
        let fresh = TokenVerifier::new(self.key_source());
        *self
            .inner
            .verifier
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = fresh;
    }
}
