//! Verifying tokens against tenancy's published key set. Keys are fetched
//! once, cached, and fetched again when a token names a key not seen yet
//! (a rotation), at most once per refresh interval so forged key ids cannot
//! turn into a flood of fetches.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use tokio::sync::{Mutex, RwLock};
use uuid::Uuid;

use crate::tokens::{AUDIENCE, Claims, ISSUER};
use crate::{AuthError, Principal, Role, Subject};

/// A published verification key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicKey {
    pub kid: String,
    pub public: [u8; 32],
}

/// Where verification keys come from: tenancy's own store inside tenancy,
/// its `AuthService/GetSigningKeys` everywhere else.
#[async_trait]
pub trait KeySource: Send + Sync + 'static {
    async fn public_keys(&self) -> Result<Vec<PublicKey>, AuthError>;
}

/// Fetches keys from tenancy over gRPC.
#[derive(Clone, Debug)]
pub struct GrpcKeySource {
    channel: tonic::transport::Channel,
}

impl GrpcKeySource {
    pub fn new(channel: tonic::transport::Channel) -> Self {
        Self { channel }
    }
}

#[async_trait]
impl KeySource for GrpcKeySource {
    async fn public_keys(&self) -> Result<Vec<PublicKey>, AuthError> {
        use tyboo_proto::tenancy::GetSigningKeysRequest;
        use tyboo_proto::tenancy::auth_service_client::AuthServiceClient;
        let mut client = AuthServiceClient::new(self.channel.clone());
        let mut request = tonic::Request::new(GetSigningKeysRequest {});
        request.set_timeout(Duration::from_secs(5));
        let response = client
            .get_signing_keys(request)
            .await
            .map_err(|status| AuthError::KeySource(status.message().to_owned()))?;
        response
            .into_inner()
            .keys
            .into_iter()
            .map(|key| {
                let public: [u8; 32] = key.public_key.as_slice().try_into().map_err(|_| {
                    AuthError::KeySource(format!("key {} is not 32 bytes", key.kid))
                })?;
                Ok(PublicKey {
                    kid: key.kid,
                    public,
                })
            })
            .collect()
    }
}

struct KeyCache {
    keys: HashMap<String, DecodingKey>,
    fetched_at: Option<Instant>,
}

/// Verifies principal and service tokens.
#[derive(Clone)]
pub struct TokenVerifier {
    source: Arc<dyn KeySource>,
    cache: Arc<RwLock<KeyCache>>,
    refresh_lock: Arc<Mutex<()>>,
    /// Least time between two fetches triggered by unknown key ids.
    min_refresh_interval: Duration,
    /// Keys are fetched again after this long even when all are known, so
    /// retired keys stop verifying.
    max_key_age: Duration,
}

impl std::fmt::Debug for TokenVerifier {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("TokenVerifier")
            .finish_non_exhaustive()
    }
}

impl TokenVerifier {
    pub fn new(source: Arc<dyn KeySource>) -> Self {
        Self {
            source,
            cache: Arc::new(RwLock::new(KeyCache {
                keys: HashMap::new(),
                fetched_at: None,
            })),
            refresh_lock: Arc::new(Mutex::new(())),
            min_refresh_interval: Duration::from_secs(2),
            max_key_age: Duration::from_secs(300),
        }
    }

    /// Verifies signature, issuer, audience and expiry, and returns the
    /// principal the token speaks for.
    pub async fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|error| AuthError::InvalidToken(error.to_string()))?;
        if header.alg != Algorithm::EdDSA {
            return Err(AuthError::InvalidToken("unexpected algorithm".to_owned()));
        }
        let kid = header
            .kid
            .ok_or_else(|| AuthError::InvalidToken("token names no key".to_owned()))?;
        let key = self.key_for(&kid).await?;

        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "sub", "iss", "aud"]);
        validation.leeway = 5;
        let data =
            jsonwebtoken::decode::<Claims>(token, &key, &validation).map_err(
                |error| match error.kind() {
                    jsonwebtoken::errors::ErrorKind::ExpiredSignature => AuthError::Expired,
                    _ => AuthError::InvalidToken(error.to_string()),
                },
            )?;
        principal_from_claims(data.claims)
    }

    async fn key_for(&self, kid: &str) -> Result<DecodingKey, AuthError> {
        {
            let cache = self.cache.read().await;
            let fresh = cache
                .fetched_at
                .is_some_and(|at| at.elapsed() < self.max_key_age);
            if let (true, Some(key)) = (fresh, cache.keys.get(kid)) {
                return Ok(key.clone());
            }
        }
        // One fetch at a time; whoever waited re-checks what it brought.
        let _guard = self.refresh_lock.lock().await;
        {
            let cache = self.cache.read().await;
            let recently = cache
                .fetched_at
                .is_some_and(|at| at.elapsed() < self.min_refresh_interval);
            if let Some(key) = cache.keys.get(kid)
                && cache
                    .fetched_at
                    .is_some_and(|at| at.elapsed() < self.max_key_age)
            {
                return Ok(key.clone());
            }
            if recently {
                return Err(AuthError::InvalidToken(format!("unknown key {kid}")));
            }
        }
        let fetched = self.source.public_keys().await?;
        let keys: HashMap<String, DecodingKey> = fetched
            .into_iter()
            .map(|key| (key.kid, DecodingKey::from_ed_der(&key.public)))
            .collect();
        let mut cache = self.cache.write().await;
        cache.keys = keys;
        cache.fetched_at = Some(Instant::now());
        cache
            .keys
            .get(kid)
            .cloned()
            .ok_or_else(|| AuthError::InvalidToken(format!("unknown key {kid}")))
    }
}

fn principal_from_claims(claims: Claims) -> Result<Principal, AuthError> {
    let invalid = |what: &str| AuthError::InvalidToken(format!("malformed claim {what}"));
    let subject = Subject::parse(&claims.sub).ok_or_else(|| invalid("sub"))?;
    let parse_id = |value: Option<String>, what: &str| -> Result<Option<Uuid>, AuthError> {
        value
            .map(|text| Uuid::parse_str(&text).map_err(|_| invalid(what)))
            .transpose()
    };
    let role = claims
        .role
        .map(|text| Role::parse(&text).ok_or_else(|| invalid("role")))
        .transpose()?;
    Ok(Principal {
        subject,
        workspace_id: parse_id(claims.ws, "ws")?,
        organization_id: parse_id(claims.org, "org")?,
        role,
        api_key_id: parse_id(claims.akid, "akid")?,
        api_key_version: claims.akv,
    })
}

/// The bearer credential of a call, from `authorization: Bearer …`.
pub fn bearer_token(metadata: &tonic::metadata::MetadataMap) -> Option<&str> {
    let value = metadata.get("authorization")?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|token| !token.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{TokenSigner, generate_signing_key};

    struct FixedKeys(std::sync::Mutex<Vec<PublicKey>>);

    #[async_trait]
    impl KeySource for FixedKeys {
        async fn public_keys(&self) -> Result<Vec<PublicKey>, AuthError> {
            Ok(self.0.lock().unwrap().clone())
        }
    }

    fn user_principal() -> Principal {
        Principal {
            subject: Subject::User(Uuid::now_v7()),
            workspace_id: Some(Uuid::now_v7()),
            organization_id: Some(Uuid::now_v7()),
            role: Some(Role::Editor),
            api_key_id: Some(Uuid::now_v7()),
            api_key_version: Some(1_764_000_000_000_000),
        }
    }

    #[tokio::test]
    async fn signed_tokens_verify_and_survive_rotation() {
        let first = generate_signing_key();
        let source = Arc::new(FixedKeys(std::sync::Mutex::new(vec![PublicKey {
            kid: first.kid.clone(),
            public: first.public,
        }])));
        let verifier = TokenVerifier::new(source.clone());
        let principal = user_principal();
        let signer = TokenSigner::new(first.kid.clone(), first.secret).unwrap();
        let (token, _) = signer.sign(&principal, Duration::from_secs(60)).unwrap();
        assert_eq!(verifier.verify(&token).await.unwrap(), principal);

        // A new key is published; a token naming it is accepted after a refetch.
        let second = generate_signing_key();
        source.0.lock().unwrap().push(PublicKey {
            kid: second.kid.clone(),
            public: second.public,
        });
        tokio::time::sleep(Duration::from_millis(2100)).await;
        let signer = TokenSigner::new(second.kid.clone(), second.secret).unwrap();
        let (token, _) = signer.sign(&principal, Duration::from_secs(60)).unwrap();
        assert_eq!(verifier.verify(&token).await.unwrap(), principal);
    }

    #[tokio::test]
    async fn tampered_and_foreign_tokens_are_rejected() {
        let key = generate_signing_key();
        let source = Arc::new(FixedKeys(std::sync::Mutex::new(vec![PublicKey {
            kid: key.kid.clone(),
            public: key.public,
        }])));
        let verifier = TokenVerifier::new(source);
        let signer = TokenSigner::new(key.kid.clone(), key.secret).unwrap();
        let (token, _) = signer
            .sign(&user_principal(), Duration::from_secs(60))
            .unwrap();
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        parts[1] = parts[1].chars().rev().collect();
        assert!(verifier.verify(&parts.join(".")).await.is_err());

        // Same kid, different secret: the signature does not hold.
        let impostor = generate_signing_key();
        let forged = TokenSigner::new(key.kid.clone(), impostor.secret).unwrap();
        let (token, _) = forged
            .sign(&user_principal(), Duration::from_secs(60))
            .unwrap();
        assert!(matches!(
            verifier.verify(&token).await,
            Err(AuthError::InvalidToken(_))
        ));
        assert!(verifier.verify("not-a-token").await.is_err());
    }

    #[test]
    fn bearer_is_read_case_insensitively() {
        let mut metadata = tonic::metadata::MetadataMap::new();
        metadata.insert("authorization", "bearer abc".parse().unwrap());
        assert_eq!(bearer_token(&metadata), Some("abc"));
        metadata.insert("authorization", "Basic abc".parse().unwrap());
        assert_eq!(bearer_token(&metadata), None);
    }
}
