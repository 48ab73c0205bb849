//! API key → principal token, with a bounded cache.
//!
//! The public presents API keys; services accept only signed principal
//! tokens. The edge exchanges a key with tenancy's `AuthService` once and
//! reuses the token until the earlier of its expiry (minus a margin, so a
//! token never expires in flight) and the configured cap. The cache is keyed
//! by the SHA-256 of the key, so the edge never holds a key longer than one
//! exchange. Concurrent misses for one key share one exchange. An upstream
//! `UNAUTHENTICATED` evicts the entry, so a revoked key stops at once wherever
//! a service checks its token against tenancy. Tenancy's access changes
//! (`access_watch`) evict the tokens of a demoted or removed member and of a
//! revoked or rotated key within a poll, for the services that trust a token
//! until it expires.

mod cache;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use http::HeaderMap;
use sha2::{Digest, Sha256};
use tonic::Code;
use tonic::transport::Channel;
use tyboo_proto::common::Principal;
use tyboo_proto::tenancy::auth_service_client::AuthServiceClient;
use tyboo_proto::tenancy::{AccessChange, AuthenticateRequest};

pub(crate) use self::cache::TokenSubject;
use self::cache::{CachedToken, KeyDigest, TokenCache};
use crate::errors::ApiError;
use crate::metrics::{
    AUTH_CACHE_EVICTIONS_TOTAL, AUTH_CACHE_LOOKUPS_TOTAL, REASON_LABEL, RESULT_LABEL,
};
use crate::upstream::CallContext;

/// The only credential the edge accepts from the public.
pub(crate) const API_KEY_PREFIX: &str = "tyb_";

/// A token is dropped from the cache this long before it expires.
const EXPIRY_MARGIN: Duration = Duration::from_secs(30);

type Exchange = Shared<BoxFuture<'static, Result<Authenticated, AuthFailure>>>;

/// A principal token and whom it speaks for: what the rate limits key on.
#[derive(Clone, Debug)]
pub(crate) struct Authenticated {
    pub(crate) token: Arc<str>,
    pub(crate) subject: Arc<TokenSubject>,
}

/// What the caller presented.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Credential {
    /// No `Authorization`: the call goes on with no principal and the
    /// service decides (accepting an invitation needs none).
    Anonymous,
    ApiKey(String),
}

/// Reads the credential from `Authorization` (HTTP header or gRPC metadata,
/// which are the same thing).
pub(crate) fn credential(headers: &HeaderMap) -> Result<Credential, ApiError> {
    let Some(value) = headers.get(http::header::AUTHORIZATION) else {
        return Ok(Credential::Anonymous);
    };
    let text = value
        .to_str()
        .map_err(|_| ApiError::unauthenticated("the Authorization header is not readable"))?;
    let (scheme, token) = text.split_once(' ').unwrap_or((text, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(ApiError::unauthenticated(
            "use `Authorization: Bearer <API key>`",
        ));
    }
    let token = token.trim();
    if !token.starts_with(API_KEY_PREFIX) || token.len() == API_KEY_PREFIX.len() {
        return Err(ApiError::unauthenticated(
            "only API keys (tyb_…) are accepted here",
        ));
    }
    Ok(Credential::ApiKey(token.to_owned()))
}

/// Why a key could not be exchanged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum AuthFailure {
    InvalidKey,
    /// Tenancy could not answer; the code tells the caller whether to retry.
    Upstream(Code),
}

impl From<AuthFailure> for ApiError {
    fn from(failure: AuthFailure) -> Self {
        match failure {
            AuthFailure::InvalidKey => ApiError::unauthenticated("invalid API key"),
            AuthFailure::Upstream(code) => {
                ApiError::new(code, "the API key cannot be checked right now")
            }
        }
    }
}

struct Inner {
    client: AuthServiceClient<Channel>,
    ttl_cap: Duration,
    max_entries: usize,
    cache: Mutex<TokenCache>,
    in_flight: Mutex<HashMap<KeyDigest, Exchange>>,
}

/// Cheap to clone; every clone shares one cache.
#[derive(Clone)]
pub(crate) struct Authenticator {
    inner: Arc<Inner>,
}

/// Evicts one key's cached token later, without keeping the key itself.
#[derive(Clone)]
pub(crate) struct Eviction {
    inner: Arc<Inner>,
    digest: KeyDigest,
}

impl Eviction {
    pub(crate) fn evict(&self) {
        if lock(&self.inner.cache).remove(&self.digest) {
            metrics::counter!(AUTH_CACHE_EVICTIONS_TOTAL, REASON_LABEL => "unauthenticated")
                .increment(1);
        }
    }
}

impl Authenticator {
    pub(crate) fn new(channel: Channel, ttl_cap: Duration, max_entries: usize) -> Self {
        Self {
            inner: Arc::new(Inner {
                client: AuthServiceClient::new(channel),
                ttl_cap,
                max_entries,
                cache: Mutex::new(TokenCache::default()),
                in_flight: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The principal token for `api_key` from the cache, without asking
    /// tenancy.
    pub(crate) fn cached(&self, api_key: &str) -> Option<Authenticated> {
        let found = self.inner.cached(&digest(api_key));
        let result = if found.is_some() { "hit" } else { "miss" };
        metrics::counter!(AUTH_CACHE_LOOKUPS_TOTAL, RESULT_LABEL => result).increment(1);
        found
    }

    /// The principal token for `api_key` from one exchange with tenancy
    /// (shared with every concurrent caller for the same key); call after
    /// [`Authenticator::cached`] missed.
    pub(crate) async fn exchange(
        &self,
        api_key: &str,
        context: &CallContext,
    ) -> Result<Authenticated, AuthFailure> {
        let digest = digest(api_key);
        let exchange = lock(&self.inner.in_flight)
            .entry(digest)
            .or_insert_with(|| self.start_exchange(digest, api_key, context))
            .clone();
        exchange.await
    }

    /// Runs one exchange on its own task, so it finishes (and leaves the
    /// in-flight map, dropping the key) even if every caller waiting on it
    /// goes away.
    fn start_exchange(&self, digest: KeyDigest, api_key: &str, context: &CallContext) -> Exchange {
        let inner = Arc::clone(&self.inner);
        let api_key = api_key.to_owned();
        let context = context.clone();
        let task = tokio::spawn(async move {
            let deadline = tokio::time::Instant::from_std(context.deadline);
            let result =
                tokio::time::timeout_at(deadline, inner.exchange(digest, api_key, &context))
                    .await
                    .unwrap_or(Err(AuthFailure::Upstream(Code::DeadlineExceeded)));
            // The map's lock is held while this task is created, so the entry
            // removed here is always the one this task was stored under.
            lock(&inner.in_flight).remove(&digest);
            result
        });
        async move {
            task.await.unwrap_or_else(|join_error| {
                tracing::error!(error = %join_error, "API key exchange task failed");
                Err(AuthFailure::Upstream(Code::Internal))
            })
        }
        .boxed()
        .shared()
    }

    pub(crate) fn eviction(&self, api_key: &str) -> Eviction {
        Eviction {
            inner: Arc::clone(&self.inner),
            digest: digest(api_key),
        }
    }

    /// The channel to tenancy's `AuthService`, shared with the access watch.
    pub(crate) fn client(&self) -> AuthServiceClient<Channel> {
        self.inner.client.clone()
    }

    /// Drops every cached token that `changes` make stale; returns how many.
    pub(crate) fn evict_changed(&self, changes: &[AccessChange]) -> usize {
        let evicted = lock(&self.inner.cache).evict_changed(changes);
        count_evictions("access_change", evicted);
        evicted
    }

    /// Drops every cached token, when the edge can no longer tell which are
    /// stale; returns how many.
    pub(crate) fn evict_all(&self, reason: &'static str) -> usize {
        let evicted = lock(&self.inner.cache).evict_all();
        count_evictions(reason, evicted);
        evicted
    }

    #[cfg(test)]
    fn cached_entries(&self) -> usize {
        lock(&self.inner.cache).len()
    }
}

fn count_evictions(reason: &'static str, evicted: usize) {
    if evicted > 0 {
        metrics::counter!(AUTH_CACHE_EVICTIONS_TOTAL, REASON_LABEL => reason)
            .increment(u64::try_from(evicted).unwrap_or(u64::MAX));
    }
}

/// Whom a token speaks for, from the principal tenancy sent with it.
fn subject_of(principal: Option<&Principal>) -> TokenSubject {
    principal.map_or_else(TokenSubject::default, |principal| TokenSubject {
        workspace_id: principal.workspace_id.clone(),
        user_id: principal.user_id.clone(),
        api_key_id: principal.api_key_id.clone(),
    })
}

impl Inner {
    fn cached(&self, digest: &KeyDigest) -> Option<Authenticated> {
        lock(&self.cache).get(digest, Instant::now())
    }

    async fn exchange(
        &self,
        digest: KeyDigest,
        api_key: String,
        context: &CallContext,
    ) -> Result<Authenticated, AuthFailure> {
        // Taken before tenancy is asked: see `TokenCache::generation`.
        let generation = lock(&self.cache).generation();
        let mut request = tonic::Request::new(AuthenticateRequest { api_key });
        context.apply(&mut request, None);
        let mut client = self.client.clone();
        let response = match client.authenticate(request).await {
            Ok(response) => response.into_inner(),
            Err(status) => return Err(failure_of(&status)),
        };
        if response.token.is_empty() {
            tracing::error!("AuthService answered without a token");
            return Err(AuthFailure::Upstream(Code::Internal));
        }
        let subject = Arc::new(subject_of(response.principal.as_ref()));
        let token: Arc<str> = Arc::from(response.token);
        let lifetime = response
            .expire_time
            .and_then(|expire| remaining_lifetime(&expire, SystemTime::now()))
            .map_or(self.ttl_cap, |lifetime| lifetime.min(self.ttl_cap));
        self.insert(
            digest,
            Arc::clone(&token),
            lifetime,
            Arc::clone(&subject),
            generation,
        );
        Ok(Authenticated { token, subject })
    }

    /// Caches a token from an exchange that started at `generation`, unless
    /// access changes were applied since (the token may predate them).
    fn insert(
        &self,
        digest: KeyDigest,
        token: Arc<str>,
        lifetime: Duration,
        subject: Arc<TokenSubject>,
        generation: u64,
    ) {
        if self.max_entries == 0 || lifetime.is_zero() {
            return;
        }
        let now = Instant::now();
        let mut cache = lock(&self.cache);
        if cache.generation() != generation {
            return;
        }
        if cache.len() >= self.max_entries && !cache.contains(&digest) {
            cache.remove_expired(now);
        }
        if cache.len() >= self.max_entries
            && !cache.contains(&digest)
            && let Some(soonest) = cache.soonest()
        {
            // Full of live tokens: drop the one that would expire first.
            cache.remove(&soonest);
        }
        cache.insert(
            digest,
            CachedToken {
                token,
                valid_until: now + lifetime,
                subject,
            },
        );
    }
}

/// How long a token expiring at `expire` may still be reused; `None` when
/// the time is unreadable, zero when already too close to expiry.
fn remaining_lifetime(expire: &prost_types::Timestamp, now: SystemTime) -> Option<Duration> {
    let expire = SystemTime::try_from(*expire).ok()?;
    Some(
        expire
            .duration_since(now)
            .unwrap_or_default()
            .saturating_sub(EXPIRY_MARGIN),
    )
}

fn failure_of(status: &tonic::Status) -> AuthFailure {
    match status.code() {
        Code::Unauthenticated | Code::InvalidArgument | Code::NotFound | Code::PermissionDenied => {
            AuthFailure::InvalidKey
        }
        code => {
            tracing::warn!(code = ?code, message = status.message(), "API key exchange failed");
            AuthFailure::Upstream(match code {
                Code::Unknown | Code::Internal | Code::DataLoss => Code::Unavailable,
                other => other,
            })
        }
    }
}

fn digest(api_key: &str) -> KeyDigest {
    Sha256::digest(api_key.as_bytes()).into()
}

/// A panic while holding the lock leaves the map itself intact.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(authorization: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::AUTHORIZATION,
            HeaderValue::from_str(authorization).expect("header"),
        );
        headers
    }

    #[test]
    fn only_bearer_api_keys_are_accepted() {
        assert_eq!(
            credential(&HeaderMap::new()).unwrap(),
            Credential::Anonymous
        );
        assert_eq!(
            credential(&headers("Bearer tyb_abc")).unwrap(),
            Credential::ApiKey("tyb_abc".into())
        );
        assert_eq!(
            credential(&headers("bearer tyb_abc")).unwrap(),
            Credential::ApiKey("tyb_abc".into())
        );
        for rejected in [
            "Bearer eyJhbGciOi.x.y",
            "Basic dXNlcjpwYXNz",
            "Bearer tyb_",
            "tyb_abc",
        ] {
            let error = credential(&headers(rejected)).unwrap_err();
            assert_eq!(error.status(), http::StatusCode::UNAUTHORIZED, "{rejected}");
        }
    }

    #[test]
    fn lifetime_stops_a_margin_before_expiry() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let in_ten_minutes = prost_types::Timestamp {
            seconds: 1_600,
            nanos: 0,
        };
        assert_eq!(
            remaining_lifetime(&in_ten_minutes, now),
            Some(Duration::from_secs(570))
        );
        let in_ten_seconds = prost_types::Timestamp {
            seconds: 1_010,
            nanos: 0,
        };
        assert_eq!(
            remaining_lifetime(&in_ten_seconds, now),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn bad_keys_and_outages_are_told_apart() {
        assert_eq!(
            failure_of(&tonic::Status::unauthenticated("revoked")),
            AuthFailure::InvalidKey
        );
        assert_eq!(
            failure_of(&tonic::Status::internal("db down")),
            AuthFailure::Upstream(Code::Unavailable)
        );
        let error: ApiError = AuthFailure::InvalidKey.into();
        assert_eq!(error.status(), http::StatusCode::UNAUTHORIZED);
    }

    #[tokio::test]
    async fn the_cache_is_bounded_and_evicts_the_soonest_expiry() {
        let channel = tonic::transport::Endpoint::from_static("http://127.0.0.1:9").connect_lazy();
        let authenticator = Authenticator::new(channel, Duration::from_secs(30), 2);
        let inner = &authenticator.inner;
        let insert = |key: &str, lifetime: Duration| {
            inner.insert(
                digest(key),
                Arc::from(&key[4..]),
                lifetime,
                Arc::new(TokenSubject::default()),
                0,
            );
        };
        insert("tyb_a", Duration::from_secs(5));
        insert("tyb_b", Duration::from_secs(20));
        insert("tyb_c", Duration::from_secs(20));
        assert_eq!(authenticator.cached_entries(), 2);
        assert!(inner.cached(&digest("tyb_a")).is_none());
        assert_eq!(
            inner
                .cached(&digest("tyb_b"))
                .map(|found| found.token)
                .as_deref(),
            Some("b")
        );
        authenticator.eviction("tyb_b").evict();
        assert!(inner.cached(&digest("tyb_b")).is_none());
        insert("tyb_d", Duration::ZERO);
        assert!(inner.cached(&digest("tyb_d")).is_none());
    }

    #[tokio::test]
    async fn an_exchange_overtaken_by_an_access_change_is_not_cached() {
        let channel = tonic::transport::Endpoint::from_static("http://127.0.0.1:9").connect_lazy();
        let authenticator = Authenticator::new(channel, Duration::from_secs(30), 10);
        let inner = &authenticator.inner;
        let ada = TokenSubject {
            workspace_id: "ws1".into(),
            user_id: "ada".into(),
            api_key_id: "key-a".into(),
        };
        // An exchange starts, Ada is demoted and the change applied, then
        // tenancy's answer (which may predate the demotion) arrives.
        let started = lock(&inner.cache).generation();
        let demoted = AccessChange {
            workspace_id: "ws1".into(),
            user_id: "ada".into(),
            ..AccessChange::default()
        };
        assert_eq!(
            authenticator.evict_changed(std::slice::from_ref(&demoted)),
            0
        );
        let lifetime = Duration::from_secs(20);
        inner.insert(
            digest("tyb_a"),
            Arc::from("old"),
            lifetime,
            Arc::new(ada.clone()),
            started,
        );
        assert!(inner.cached(&digest("tyb_a")).is_none());
        // The next exchange starts after the change and is cached, and the
        // index finds it for the next change.
        let started = lock(&inner.cache).generation();
        inner.insert(
            digest("tyb_a"),
            Arc::from("new"),
            lifetime,
            Arc::new(ada),
            started,
        );
        assert_eq!(
            inner
                .cached(&digest("tyb_a"))
                .map(|found| found.token)
                .as_deref(),
            Some("new")
        );
        assert_eq!(
            authenticator.evict_changed(std::slice::from_ref(&demoted)),
            1
        );
        assert!(inner.cached(&digest("tyb_a")).is_none());
    }
}
