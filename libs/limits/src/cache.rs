//! A workspace's limits kept for a short time, refreshed behind the caller.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;
use uuid::Uuid;

use crate::{Limits, LimitsConfig, LimitsError, LimitsSource};

/// Keeps each workspace's limits for `ttl`. Past it, the next caller gets
/// the kept value at once while one refresh runs behind it, so a change at
/// the source is in force within `ttl` plus one round trip, and a hot path
/// never waits for the source after the first call. A source that fails
/// leaves the last value in force (or the defaults, for a workspace never
/// read), logged and counted, and is asked again after `ttl`.
#[derive(Clone)]
pub struct CachedLimits {
    inner: Arc<Inner>,
}

struct Inner {
    source: Arc<dyn LimitsSource>,
    defaults: Limits,
    ttl: Duration,
    max_entries: usize,
    entries: Mutex<HashMap<Uuid, Entry>>,
}

struct Entry {
    limits: Limits,
    fetched_at: Instant,
    refreshing: bool,
}

impl std::fmt::Debug for CachedLimits {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("CachedLimits")
            .field("ttl", &self.inner.ttl)
            .finish_non_exhaustive()
    }
}

impl CachedLimits {
    pub fn new(source: Arc<dyn LimitsSource>, config: &LimitsConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                source,
                defaults: config.defaults.clone(),
                ttl: config.cache_ttl(),
                max_entries: config.cache_max_entries,
                entries: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The limits of `workspace_id`; never fails.
    pub async fn get(&self, workspace_id: Uuid) -> Limits {
        let now = Instant::now();
        {
            let mut entries = self.inner.entries.lock().expect("limits cache lock");
            if let Some(entry) = entries.get_mut(&workspace_id) {
                if now.duration_since(entry.fetched_at) < self.inner.ttl || entry.refreshing {
                    return entry.limits.clone();
                }
                entry.refreshing = true;
                let stale = entry.limits.clone();
                drop(entries);
                let inner = self.inner.clone();
                tokio::spawn(async move {
                    let fresh = inner.fetch(workspace_id).await;
                    inner.store(workspace_id, fresh);
                });
                return stale;
            }
        }
        let fetched = self.inner.fetch(workspace_id).await;
        let limits = fetched
            .clone()
            .unwrap_or_else(|| self.inner.defaults.clone());
        self.inner.store(workspace_id, fetched);
        limits
    }
}

impl Inner {
    /// The source's answer; `None` when it has none to give (a failure, or
    /// a workspace it does not know).
    async fn fetch(&self, workspace_id: Uuid) -> Option<Limits> {
        match self.source.limits(workspace_id).await {
            Ok(limits) => Some(limits),
            Err(LimitsError::NotFound) => None,
            Err(LimitsError::Unavailable(error)) => {
                metrics::counter!("tyboo_limits_source_failures_total").increment(1);
                tracing::warn!(%workspace_id, %error, "limits source unavailable; keeping the last limits");
                None
            }
        }
    }

    fn store(&self, workspace_id: Uuid, fetched: Option<Limits>) {
        let now = Instant::now();
        let mut entries = self.entries.lock().expect("limits cache lock");
        if !entries.contains_key(&workspace_id) && entries.len() >= self.max_entries {
            entries.retain(|_, entry| now.duration_since(entry.fetched_at) < self.ttl);
            if entries.len() >= self.max_entries {
                entries.clear();
            }
        }
        let limits = match (fetched, entries.get(&workspace_id)) {
            (Some(limits), _) => limits,
            (None, Some(kept)) => kept.limits.clone(),
            (None, None) => self.defaults.clone(),
        };
        entries.insert(
            workspace_id,
            Entry {
                limits,
                fetched_at: now,
                refreshing: false,
            },
        );
    }
}

#[async_trait]
impl LimitsSource for CachedLimits {
    async fn limits(&self, workspace_id: Uuid) -> Result<Limits, LimitsError> {
        Ok(self.get(workspace_id).await)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

    use super::*;

    /// A source whose answer a test changes, counting its calls.
    #[derive(Default)]
    struct Changing {
        running: AtomicU32,
        calls: AtomicU32,
        down: AtomicBool,
    }

    #[async_trait]
    impl LimitsSource for Changing {
        async fn limits(&self, _workspace_id: Uuid) -> Result<Limits, LimitsError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            if self.down.load(Ordering::SeqCst) {
                return Err(LimitsError::Unavailable("connection refused".into()));
            }
            Ok(Limits {
                running_executions_per_workspace: self.running.load(Ordering::SeqCst),
                ..Limits::default()
            })
        }
    }

    fn cache(source: Arc<Changing>, ttl_ms: u64, max_entries: usize) -> CachedLimits {
        let config = LimitsConfig {
            cache_ttl_ms: ttl_ms,
            cache_max_entries: max_entries,
            ..LimitsConfig::default()
        };
        CachedLimits::new(source, &config)
    }

    /// Until the refresh behind a caller has stored its answer.
    async fn settle(limits: &CachedLimits, workspace: Uuid) {
        for _ in 0..200 {
            let refreshing = limits.inner.entries.lock().unwrap()[&workspace].refreshing;
            if !refreshing {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("the refresh never finished");
    }

    #[tokio::test]
    async fn a_change_is_in_force_within_the_ttl() {
        let source = Arc::new(Changing::default());
        source.running.store(5, Ordering::SeqCst);
        let limits = cache(source.clone(), 1_000, 10);
        let workspace = Uuid::now_v7();
        assert_eq!(
            limits.get(workspace).await.running_executions_per_workspace,
            5
        );
        source.running.store(2, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(
            limits.get(workspace).await.running_executions_per_workspace,
            5
        );
        assert_eq!(
            source.calls.load(Ordering::SeqCst),
            1,
            "kept within the ttl"
        );
        tokio::time::sleep(Duration::from_millis(1_000)).await;
        // Past the ttl the caller is not held: it gets the kept value while
        // the refresh runs, and the next caller sees the change.
        assert_eq!(
            limits.get(workspace).await.running_executions_per_workspace,
            5
        );
        settle(&limits, workspace).await;
        assert_eq!(
            limits.get(workspace).await.running_executions_per_workspace,
            2
        );
        assert_eq!(source.calls.load(Ordering::SeqCst), 2, "one refresh");
    }

    #[tokio::test]
    async fn an_unreachable_source_keeps_the_last_limits_or_the_defaults() {
        let source = Arc::new(Changing::default());
        source.running.store(3, Ordering::SeqCst);
        source.down.store(true, Ordering::SeqCst);
        let limits = cache(source.clone(), 300, 10);
        let never_read = Uuid::now_v7();
        assert_eq!(limits.get(never_read).await, Limits::default());
        // The failure is kept for the ttl too: an outage adds no call per request.
        assert_eq!(limits.get(never_read).await, Limits::default());
        assert_eq!(source.calls.load(Ordering::SeqCst), 1);

        source.down.store(false, Ordering::SeqCst);
        let read = Uuid::now_v7();
        assert_eq!(limits.get(read).await.running_executions_per_workspace, 3);
        source.down.store(true, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(300)).await;
        limits.get(read).await;
        settle(&limits, read).await;
        assert_eq!(
            source.calls.load(Ordering::SeqCst),
            3,
            "refreshed and failed"
        );
        assert_eq!(limits.get(read).await.running_executions_per_workspace, 3);
    }

    #[tokio::test]
    async fn the_cache_holds_at_most_its_entries() {
        let source = Arc::new(Changing::default());
        source.running.store(1, Ordering::SeqCst);
        let limits = cache(source.clone(), 1_000, 3);
        for _ in 0..10 {
            limits.get(Uuid::now_v7()).await;
        }
        assert!(limits.inner.entries.lock().unwrap().len() <= 3);
    }
}
