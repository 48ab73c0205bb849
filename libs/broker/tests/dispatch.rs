//! Runs the conformance suite against the in-process queue always, and
//! against Redis when `TYBOO_TEST_REDIS_URL` is set. Each Redis test gets a
//! key prefix of its own and removes its keys afterwards.

mod conformance;

use std::sync::Arc;
use std::time::Duration;

use tyboo_broker::{BrokerConfig, Dispatch, InProcessQueue, RedisQueue};
use tyboo_redis::testing::delete_keys;
use uuid::Uuid;

const REDIS_URL_VARIABLE: &str = "TYBOO_TEST_REDIS_URL";

fn test_config(visibility: Duration) -> BrokerConfig {
    BrokerConfig {
        visibility_timeout_ms: u64::try_from(visibility.as_millis()).expect("small timeout"),
        key_prefix: format!("tyboo-test-{}", Uuid::now_v7().simple()),
        block_ms: 50,
        reclaim_interval_ms: 50,
        blocking_connections: 8,
        command_timeout_ms: 2_000,
        ..BrokerConfig::default()
    }
}

fn redis_url() -> Option<String> {
    std::env::var(REDIS_URL_VARIABLE)
        .ok()
        .filter(|url| !url.is_empty())
}

async fn in_process(visibility: Duration) -> Arc<dyn Dispatch> {
    Arc::new(InProcessQueue::new(&test_config(visibility)))
}

async fn redis(url: &str, config: &BrokerConfig) -> Arc<dyn Dispatch> {
    Arc::new(
        RedisQueue::connect(url, config)
            .await
            .expect("connect to redis"),
    )
}

/// Generates one in-process and one Redis test for a case that takes a queue.
macro_rules! conformance {
    ($case:ident) => {
        conformance!($case, conformance::VISIBILITY);
    };
    ($case:ident, $visibility:expr) => {
        mod $case {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn in_process() {
                conformance::$case(super::in_process($visibility).await).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn redis() {
                let Some(url) = redis_url() else {
                    eprintln!("{REDIS_URL_VARIABLE} is not set; skipping");
                    return;
                };
                let config = test_config($visibility);
                conformance::$case(super::redis(&url, &config).await).await;
                delete_keys(&url, &config.key_prefix).await;
            }
        }
    };
}

conformance!(delivers_in_order_and_ack_removes);
conformance!(serves_pools_fairly);
conformance!(delivers_only_requested_pools);
conformance!(delayed_job_waits_for_its_time);
conformance!(unacked_delivery_comes_back);
conformance!(ack_is_idempotent);
conformance!(release_now_and_later);
conformance!(stats_count_each_state);
conformance!(receive_waits_then_returns_empty);
conformance!(
    concurrent_consumers_share_without_duplicates,
    Duration::from_secs(60)
);
conformance!(invalid_jobs_are_refused);

mod dead_consumers_jobs_are_reclaimed {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn in_process() {
        let queue = super::in_process(conformance::VISIBILITY).await;
        conformance::dead_consumers_jobs_are_reclaimed(queue.clone(), queue).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn redis() {
        let Some(url) = redis_url() else {
            eprintln!("{REDIS_URL_VARIABLE} is not set; skipping");
            return;
        };
        let config = test_config(conformance::VISIBILITY);
        let dead_worker = super::redis(&url, &config).await;
        let surviving_worker = super::redis(&url, &config).await;
        conformance::dead_consumers_jobs_are_reclaimed(dead_worker, surviving_worker).await;
        delete_keys(&url, &config.key_prefix).await;
    }
}

/// Redis restarted without persistence loses streams, groups and the delayed
/// set; a queue that knew the old groups must carry on with new ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_queue_recovers_when_its_keys_vanish() {
    let Some(url) = redis_url() else {
        eprintln!("{REDIS_URL_VARIABLE} is not set; skipping");
        return;
    };
    let config = test_config(conformance::VISIBILITY);
    let queue = redis(&url, &config).await;
    let pools = vec!["default".to_owned()];
    let wait = Duration::from_secs(1);
    queue
        .enqueue(conformance::job("default", "before"), None)
        .await
        .expect("enqueue");
    let before = queue.receive(&pools, "c1", 1, wait).await.expect("receive");
    assert_eq!(before.len(), 1);

    delete_keys(&url, &config.key_prefix).await;

    queue
        .enqueue(conformance::job("default", "after"), None)
        .await
        .expect("enqueue");
    let after = queue
        .receive(&pools, "c1", 5, wait)
        .await
        .expect("receive after loss");
    let node_ids: Vec<&str> = after
        .iter()
        .map(|delivery| delivery.job.node_id.as_str())
        .collect();
    assert_eq!(
        node_ids,
        ["after"],
        "the lost message is the reconciler's to re-dispatch"
    );
    queue
        .ack(&before[0])
        .await
        .expect("acking a lost delivery is a no-op");
    queue
        .release(&before[0], None)
        .await
        .expect("releasing a lost delivery is a no-op");
    queue.ack(&after[0]).await.expect("ack");
    let stats = queue.stats("default").await.expect("stats");
    assert_eq!((stats.ready, stats.in_flight), (0, 0));
    delete_keys(&url, &config.key_prefix).await;
}

conformance!(a_flooding_workspace_does_not_delay_another);
conformance!(workspaces_take_turns_in_order);
conformance!(late_jobs_of_a_quiet_workspace_wait_one_turn);
