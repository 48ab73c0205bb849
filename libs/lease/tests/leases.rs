//! Runs the conformance suite against the in-process leases always, and
//! against Redis when `TYBOO_TEST_REDIS_URL` is set. Each Redis test gets a
//! key prefix of its own and removes its keys afterwards.

mod conformance;

use std::sync::Arc;
use std::time::Duration;

use fred::prelude::{Builder, ClientLike, Config, KeysInterface};
use tyboo_lease::{ConcurrencyLeases, InProcessLeases, LeaseConfig, ManualClock, RedisLeases};
use tyboo_redis::testing::delete_keys;
use uuid::Uuid;

use crate::conformance::Subject;

const REDIS_URL_VARIABLE: &str = "TYBOO_TEST_REDIS_URL";

fn test_config() -> LeaseConfig {
    LeaseConfig {
        key_prefix: format!("tyboo-test-{}", Uuid::now_v7().simple()),
        command_connections: 4,
        command_timeout_ms: 2_000,
        ..LeaseConfig::default()
    }
}

fn redis_url() -> Option<String> {
    std::env::var(REDIS_URL_VARIABLE)
        .ok()
        .filter(|url| !url.is_empty())
}

fn in_process() -> Subject {
    let clock = ManualClock::new(conformance::start());
    let leases: Arc<dyn ConcurrencyLeases> = Arc::new(
        InProcessLeases::new(&test_config(), Arc::new(clock.clone())).expect("valid config"),
    );
    Subject {
        other_process: leases.clone(),
        leases,
        clock,
    }
}

async fn redis(url: &str, config: &LeaseConfig) -> Subject {
    let clock = ManualClock::new(conformance::start());
    let connect = || async {
        let leases = RedisLeases::connect(url, config, Arc::new(clock.clone()))
            .await
            .expect("connect to redis");
        Arc::new(leases) as Arc<dyn ConcurrencyLeases>
    };
    Subject {
        leases: connect().await,
        other_process: connect().await,
        clock: clock.clone(),
    }
}

/// Generates one in-process and one Redis test for a case.
macro_rules! conformance {
    ($case:ident) => {
        mod $case {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn in_process() {
                conformance::$case(super::in_process()).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn redis() {
                let Some(url) = redis_url() else {
                    eprintln!("{REDIS_URL_VARIABLE} is not set; skipping");
                    return;
                };
                let config = test_config();
                conformance::$case(super::redis(&url, &config).await).await;
                delete_keys(&url, &config.key_prefix).await;
            }
        }
    };
}

conformance!(limit_is_respected_exactly);
conformance!(concurrent_acquirers_get_exactly_the_limit);
conformance!(reacquire_renews_without_double_counting);
conformance!(expiry_frees_the_slot_at_exactly_its_ttl);
conformance!(renew_extends_and_fails_after_expiry);
conformance!(release_is_idempotent);
conformance!(acquire_all_is_all_or_nothing);
conformance!(keys_are_isolated);
conformance!(holders_lists_only_live_ones);
conformance!(invalid_requests_are_refused);

/// A key whose holders all vanish must not stay in Redis forever: its set
/// expires with its last lease.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_sets_expire_with_their_last_lease() {
    let Some(url) = redis_url() else {
        eprintln!("{REDIS_URL_VARIABLE} is not set; skipping");
        return;
    };
    let config = test_config();
    let subject = redis(&url, &config).await;
    let client = Builder::from_config(Config::from_url(&url).expect("redis url"))
        .build()
        .expect("redis client");
    client.init().await.expect("connect to redis");
    let set_key = format!("{}:lease:ws", config.key_prefix);
    let second = Duration::from_secs(1);
    let time_to_live = || async { client.pttl::<i64, _>(&set_key).await.expect("pttl") };

    subject
        .leases
        .acquire("ws", "short", 2, second)
        .await
        .expect("acquire");
    let first = time_to_live().await;
    assert!((1..=1_000).contains(&first), "pttl {first}");
    subject
        .leases
        .acquire("ws", "long", 2, second * 3)
        .await
        .expect("acquire");
    let longest = time_to_live().await;
    assert!((2_001..=3_000).contains(&longest), "pttl {longest}");
    subject.clock.advance(second);
    assert!(
        subject
            .leases
            .renew("ws", "long", second)
            .await
            .expect("renew")
    );
    let renewed = time_to_live().await;
    assert!(
        (1..=1_000).contains(&renewed),
        "the set lasts as long as its last live lease: pttl {renewed}"
    );
    subject.leases.release("ws", "long").await.expect("release");
    assert_eq!(
        client.exists::<i64, _>(&set_key).await.expect("exists"),
        0,
        "an empty set is gone"
    );
    client.quit().await.expect("quit");
    delete_keys(&url, &config.key_prefix).await;
}
