//! Follows tenancy's log of access changes and drops the cached principal
//! tokens they make stale.
//!
//! Tenancy re-reads roles and keys on each of its own calls, but the
//! executor and the vault trust what a token says until it expires; without
//! this, a demoted or removed member, or a revoked or rotated key, would keep
//! its old access through the edge for as long as the token stays cached.
//!
//! The watch starts at the log's head (a start needs no history: its cache
//! is empty) and then asks for what came after its cursor every
//! `auth_changes_poll_ms`. Whenever it cannot tell what it missed — at the
//! start, and when tenancy says the cursor has expired — it drops the whole
//! cache after learning the head, so nothing cached before that moment
//! survives it. When tenancy cannot be reached it keeps its cursor, backs
//! off, and resumes where it stopped.

use std::future::Future;
use std::time::Duration;

use tokio::task::JoinHandle;
use tonic::Status;
use tonic::transport::Channel;
use tyboo_auth::ServiceTokenSource;
use tyboo_proto::tenancy::ListAccessChangesRequest;
use tyboo_proto::tenancy::auth_service_client::AuthServiceClient;

use crate::auth::Authenticator;

/// Longest a single `ListAccessChanges` call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest wait between attempts while tenancy does not answer.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Pages read in one poll before the next poll carries on; a poll is then
/// bounded however far behind the edge fell.
const MAX_PAGES_PER_POLL: usize = 20;

/// The watch's view of the log.
struct Watch {
    authenticator: Authenticator,
    client: AuthServiceClient<Channel>,
    tokens: ServiceTokenSource,
    /// The last change applied; `None` until the head is known.
    cursor: Option<i64>,
}

/// Runs the watch on its own task until `stop` completes.
pub(crate) fn spawn(
    authenticator: Authenticator,
    tokens: ServiceTokenSource,
    every: Duration,
    stop: impl Future<Output = ()> + Send + 'static,
) -> JoinHandle<()> {
    let mut watch = Watch {
        client: authenticator.client(),
        authenticator,
        tokens,
        cursor: None,
    };
    tokio::spawn(async move {
        tokio::pin!(stop);
        let mut failures: u32 = 0;
        loop {
            match watch.poll().await {
                Ok(()) => {
                    if failures > 0 {
                        tracing::info!(failures, "access changes reach the edge again");
                    }
                    failures = 0;
                }
                Err(status) => {
                    failures = failures.saturating_add(1);
                    tracing::warn!(
                        code = ?status.code(),
                        message = status.message(),
                        failures,
                        "cannot read access changes from tenancy; cached tokens may \
                         keep a changed role until they expire"
                    );
                }
            }
            tokio::select! {
                () = tokio::time::sleep(delay(every, failures)) => {}
                () = &mut stop => break,
            }
        }
    })
}

/// The wait before the next poll: the interval, doubled for each failure in
/// a row up to [`MAX_BACKOFF`] (never below the interval itself).
fn delay(every: Duration, failures: u32) -> Duration {
    let doubled = every.saturating_mul(2u32.saturating_pow(failures.min(16)));
    doubled.min(MAX_BACKOFF.max(every))
}

impl Watch {
    /// Learns the head if needed, then applies every change after the
    /// cursor, a page at a time.
    async fn poll(&mut self) -> Result<(), Status> {
        let Some(mut cursor) = self.cursor else {
            let head = self.call(0, true).await?.next_cursor;
            self.resume_from(head, "watch_started");
            return Ok(());
        };
        for _ in 0..MAX_PAGES_PER_POLL {
            let page = self.call(cursor, false).await?;
            if page.cursor_expired {
                self.resume_from(page.next_cursor, "cursor_expired");
                return Ok(());
            }
            if page.changes.is_empty() {
                break;
            }
            let evicted = self.authenticator.evict_changed(&page.changes);
            tracing::debug!(
                changes = page.changes.len(),
                evicted,
                cursor = page.next_cursor,
                "access changes applied"
            );
            cursor = page.next_cursor;
            self.cursor = Some(cursor);
        }
        Ok(())
    }

    /// Starts over from `head`: anything cached until now may predate a
    /// change this watch will never see, so all of it goes.
    fn resume_from(&mut self, head: i64, reason: &'static str) {
        let evicted = self.authenticator.evict_all(reason);
        tracing::info!(cursor = head, evicted, reason, "following access changes");
        self.cursor = Some(head);
    }

    async fn call(
        &self,
        after: i64,
        head_only: bool,
    ) -> Result<tyboo_proto::tenancy::ListAccessChangesResponse, Status> {
        let mut request = tonic::Request::new(ListAccessChangesRequest {
            after,
            page_size: 0,
            head_only,
        });
        request.set_timeout(CALL_TIMEOUT);
        self.tokens.authorize(&mut request).await?;
        let mut client = self.client.clone();
        Ok(client.list_access_changes(request).await?.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_back_off_up_to_a_cap() {
        let second = Duration::from_secs(1);
        assert_eq!(delay(second, 0), second);
        assert_eq!(delay(second, 1), Duration::from_secs(2));
        assert_eq!(delay(second, 4), Duration::from_secs(16));
        assert_eq!(delay(second, 5), MAX_BACKOFF);
        assert_eq!(delay(second, u32::MAX), MAX_BACKOFF);
        // An interval longer than the cap is never shortened.
        let minute = Duration::from_secs(60);
        assert_eq!(delay(minute, 3), minute);
    }
}
