//! Signing principal and service tokens: compact JWTs (RFC 7519) signed with
//! Ed25519 (`alg: EdDSA`, RFC 8037), naming their key in `kid` so verifiers
//! can pick the right one across rotations.

use std::time::Duration;

use chrono::{DateTime, Utc};
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};

use crate::{AuthError, Principal};

pub(crate) const ISSUER: &str = "tyboo-tenancy";
pub(crate) const AUDIENCE: &str = "tyboo";

/// The claims of every token the mesh issues.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Claims {
    pub iss: String,
    pub aud: String,
    pub sub: String,
    pub iat: i64,
    pub exp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ws: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub akid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub akv: Option<i64>,
}

/// A fresh Ed25519 key pair with its id.
pub struct SigningKeyMaterial {
    pub kid: String,
    pub secret: [u8; 32],
    pub public: [u8; 32],
}

impl std::fmt::Debug for SigningKeyMaterial {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("SigningKeyMaterial")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

pub fn generate_signing_key() -> SigningKeyMaterial {
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).expect("the operating system's random source works");
    let public = SigningKey::from_bytes(&secret).verifying_key().to_bytes();
    SigningKeyMaterial {
        kid: uuid::Uuid::now_v7().to_string(),
        secret,
        public,
    }
}

/// Signs tokens with one key.
#[derive(Clone)]
pub struct TokenSigner {
    kid: String,
    encoding_key: EncodingKey,
}

impl std::fmt::Debug for TokenSigner {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("TokenSigner")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl TokenSigner {
    pub fn new(kid: String, secret: [u8; 32]) -> Result<Self, AuthError> {
        let pkcs8 = SigningKey::from_bytes(&secret)
            .to_pkcs8_der()
            .map_err(|error| AuthError::Internal(format!("encoding signing key: {error}")))?;
        Ok(Self {
            kid,
            encoding_key: EncodingKey::from_ed_der(pkcs8.as_bytes()),
        })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// A token for `principal`, valid for `ttl`; returns it with its expiry.
    pub fn sign(
        &self,
        principal: &Principal,
        ttl: Duration,
    ) -> Result<(String, DateTime<Utc>), AuthError> {
        let now = Utc::now();
        let ttl = chrono::Duration::from_std(ttl)
            .map_err(|_| AuthError::Internal("token lifetime out of range".to_owned()))?;
        let expires_at = now + ttl;
        let claims = Claims {
            iss: ISSUER.to_owned(),
            aud: AUDIENCE.to_owned(),
            sub: principal.subject.as_string(),
            iat: now.timestamp(),
            exp: expires_at.timestamp(),
            ws: principal.workspace_id.map(|id| id.to_string()),
            org: principal.organization_id.map(|id| id.to_string()),
            role: principal.role.map(|role| role.as_str().to_owned()),
            akid: principal.api_key_id.map(|id| id.to_string()),
            akv: principal.api_key_version,
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        let token = jsonwebtoken::encode(&header, &claims, &self.encoding_key)
            .map_err(|error| AuthError::Internal(format!("signing token: {error}")))?;
        // Expiry is whole seconds in the token; report what the token says.
        let expires_at = DateTime::from_timestamp(claims.exp, 0).unwrap_or(expires_at);
        Ok((token, expires_at))
    }
}
