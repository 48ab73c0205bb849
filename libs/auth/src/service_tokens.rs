//! Service tokens for calls between mesh services: exchanged at tenancy for
//! the shared service secret, cached, and refreshed before they expire.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::sync::Mutex;
use tonic::Status;
use tonic::metadata::MetadataValue;

/// How long a request for a token may take before the caller gets
/// Unavailable instead of waiting on a tenancy that does not answer.
const ISSUE_TIMEOUT: Duration = Duration::from_secs(5);

/// A token as tenancy issued it.
#[derive(Clone)]
struct Issued {
    token: String,
    issued_at: DateTime<Utc>,
    expire_time: DateTime<Utc>,
}

impl Issued {
    /// Refreshed once four fifths of its life have passed (and never later
    /// than ten seconds before expiry), so a token handed out now still has
    /// time left when the call carrying it arrives.
    fn fresh(&self, now: DateTime<Utc>) -> bool {
        let lifetime = self.expire_time - self.issued_at;
        let refresh_at = self.issued_at + lifetime * 4 / 5;
        let latest = self.expire_time - chrono::Duration::seconds(10);
        now < refresh_at.min(latest)
    }
}

/// Where tokens come from; tenancy over gRPC outside of tests.
#[async_trait]
trait Issuer: Send + Sync + 'static {
    async fn issue(&self, service: &str, secret: &str) -> Result<(String, DateTime<Utc>), Status>;
}

struct GrpcIssuer {
    channel: tonic::transport::Channel,
}

#[async_trait]
impl Issuer for GrpcIssuer {
    async fn issue(&self, service: &str, secret: &str) -> Result<(String, DateTime<Utc>), Status> {
        use tyboo_proto::tenancy::IssueServiceTokenRequest;
        use tyboo_proto::tenancy::auth_service_client::AuthServiceClient;
        let mut client = AuthServiceClient::new(self.channel.clone());
        let mut request = tonic::Request::new(IssueServiceTokenRequest {
            service: service.to_owned(),
            secret: secret.to_owned(),
        });
        request.set_timeout(ISSUE_TIMEOUT);
        let response = client.issue_service_token(request).await?.into_inner();
        let expire_time = response
            .expire_time
            .as_ref()
            .and_then(tyboo_proto::convert::datetime_lenient)
            .ok_or_else(|| Status::internal("tenancy issued a token without an expiry"))?;
        Ok((response.token, expire_time))
    }
}

/// The service token of one mesh service: a cheap `Clone` handle sharing
/// one cache, so a process asks tenancy once per refresh whatever its
/// number of concurrent callers.
#[derive(Clone)]
pub struct ServiceTokenSource {
    inner: Arc<Inner>,
}

struct Inner {
    issuer: Box<dyn Issuer>,
    service: String,
    secret: String,
    /// Held across the exchange, so concurrent callers wait for one
    /// request instead of each sending their own (single flight).
    current: Mutex<Option<Issued>>,
}

impl std::fmt::Debug for ServiceTokenSource {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("ServiceTokenSource")
            .field("service", &self.inner.service)
            .finish_non_exhaustive()
    }
}

impl ServiceTokenSource {
    /// Tokens for `service`, from tenancy at `tenancy`, for the mesh's
    /// shared `secret`. Nothing is requested until the first `token()`.
    pub fn new(
        tenancy: tonic::transport::Channel,
        service: impl Into<String>,
        secret: impl Into<String>,
    ) -> Self {
        Self::with_issuer(
            Box::new(GrpcIssuer { channel: tenancy }),
            service.into(),
            secret.into(),
        )
    }

    fn with_issuer(issuer: Box<dyn Issuer>, service: String, secret: String) -> Self {
        Self {
            inner: Arc::new(Inner {
                issuer,
                service,
                secret,
                current: Mutex::new(None),
            }),
        }
    }

    pub fn service(&self) -> &str {
        &self.inner.service
    }

    /// A token with time left on it. Unavailable when tenancy cannot be
    /// reached; Internal when it refuses (a misconfigured secret is the
    /// mesh's fault, never the end caller's).
    pub async fn token(&self) -> Result<String, Status> {
        let mut current = self.inner.current.lock().await;
        if let Some(issued) = current.as_ref()
            && issued.fresh(Utc::now())
        {
            return Ok(issued.token.clone());
        }
        let issued_at = Utc::now();
        let (token, expire_time) = self
            .inner
            .issuer
            .issue(&self.inner.service, &self.inner.secret)
            .await
            .map_err(|status| {
                let service = &self.inner.service;
                match status.code() {
                    tonic::Code::Unavailable | tonic::Code::DeadlineExceeded => {
                        tracing::warn!(%service, message = status.message(), "tenancy unreachable for a service token");
                        Status::unavailable("cannot obtain a service token right now")
                    }
                    code => {
                        tracing::error!(%service, ?code, message = status.message(), "tenancy refused a service token");
                        Status::internal("internal error")
                    }
                }
            })?;
        *current = Some(Issued {
            token: token.clone(),
            issued_at,
            expire_time,
        });
        Ok(token)
    }

    /// Puts a current token on `request` as `authorization: Bearer …`.
    pub async fn authorize<T>(&self, request: &mut tonic::Request<T>) -> Result<(), Status> {
        let token = self.token().await?;
        let value = MetadataValue::try_from(format!("Bearer {token}"))
            .map_err(|_| Status::internal("a service token is not a valid header value"))?;
        request.metadata_mut().insert("authorization", value);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// Issues numbered tokens living `lifetime`, slowly enough that
    /// concurrent callers overlap.
    struct Counting {
        issued: Arc<AtomicUsize>,
        lifetime: chrono::Duration,
        refuse: bool,
    }

    #[async_trait]
    impl Issuer for Counting {
        async fn issue(
            &self,
            service: &str,
            secret: &str,
        ) -> Result<(String, DateTime<Utc>), Status> {
            if self.refuse {
                return Err(Status::unauthenticated("invalid service secret"));
            }
            assert_eq!((service, secret), ("executor", "shared"));
            tokio::time::sleep(Duration::from_millis(50)).await;
            let number = self.issued.fetch_add(1, Ordering::SeqCst) + 1;
            Ok((format!("token-{number}"), Utc::now() + self.lifetime))
        }
    }

    fn source(lifetime: chrono::Duration, refuse: bool) -> (ServiceTokenSource, Arc<AtomicUsize>) {
        let issued = Arc::new(AtomicUsize::new(0));
        let issuer = Counting {
            issued: issued.clone(),
            lifetime,
            refuse,
        };
        let source = ServiceTokenSource::with_issuer(
            Box::new(issuer),
            "executor".to_owned(),
            "shared".to_owned(),
        );
        (source, issued)
    }

    #[tokio::test]
    async fn concurrent_callers_share_one_request_and_the_cache() {
        let (source, issued) = source(chrono::Duration::minutes(15), false);
        let tokens = futures_join_all(&source, 8).await;
        assert!(tokens.iter().all(|token| token == "token-1"), "{tokens:?}");
        assert_eq!(source.token().await.unwrap(), "token-1");
        assert_eq!(issued.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_token_near_expiry_is_replaced() {
        // Ten seconds of life is inside the refresh margin from the start.
        let (source, issued) = source(chrono::Duration::seconds(10), false);
        assert_eq!(source.token().await.unwrap(), "token-1");
        assert_eq!(source.token().await.unwrap(), "token-2");
        assert_eq!(issued.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_refusal_is_internal_and_the_token_goes_on_requests() {
        let (refused, _) = source(chrono::Duration::minutes(15), true);
        assert_eq!(
            refused.token().await.unwrap_err().code(),
            tonic::Code::Internal
        );
        let (source, _) = source(chrono::Duration::minutes(15), false);
        let mut request = tonic::Request::new(());
        source.authorize(&mut request).await.unwrap();
        assert_eq!(crate::bearer_token(request.metadata()), Some("token-1"));
    }

    async fn futures_join_all(source: &ServiceTokenSource, callers: usize) -> Vec<String> {
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..callers {
            let source = source.clone();
            tasks.spawn(async move { source.token().await.unwrap() });
        }
        let mut tokens = Vec::new();
        while let Some(token) = tasks.join_next().await {
            tokens.push(token.unwrap());
        }
        tokens
    }
}
