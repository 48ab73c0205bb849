//! Runs the conformance suite against the in-process breakers always, and
//! against Redis when `TYBOO_TEST_REDIS_URL` is set. Each Redis test gets a
//! key prefix of its own and removes its keys afterwards.

mod conformance;

use std::sync::Arc;

use tyboo_breaker::{BreakerConfig, InProcessBreakers, ManualClock, RedisBreakers};
use tyboo_redis::testing::delete_keys;
use uuid::Uuid;

use crate::conformance::Subject;

const REDIS_URL_VARIABLE: &str = "TYBOO_TEST_REDIS_URL";

fn test_config() -> BreakerConfig {
    BreakerConfig {
        key_prefix: format!("tyboo-test-{}", Uuid::now_v7().simple()),
        command_timeout_ms: 2_000,
        ..BreakerConfig::default()
    }
}

fn redis_url() -> Option<String> {
    std::env::var(REDIS_URL_VARIABLE)
        .ok()
        .filter(|url| !url.is_empty())
}

fn in_process() -> Subject {
    let config = test_config();
    let clock = ManualClock::new(conformance::start());
    let breakers = InProcessBreakers::new(&config, Arc::new(clock.clone())).expect("valid config");
    Subject {
        breakers: Arc::new(breakers),
        clock,
        config,
    }
}

async fn redis(url: &str) -> Subject {
    let config = test_config();
    let clock = ManualClock::new(conformance::start());
    let breakers = RedisBreakers::connect(url, &config, Arc::new(clock.clone()))
        .await
        .expect("connect to redis");
    Subject {
        breakers: Arc::new(breakers),
        clock,
        config,
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
                let subject = super::redis(&url).await;
                let prefix = subject.config.key_prefix.clone();
                conformance::$case(subject).await;
                delete_keys(&url, &prefix).await;
            }
        }
    };
}

conformance!(stays_closed_under_minimum_calls);
conformance!(opens_at_the_threshold_once_minimum_calls_reached);
conformance!(rejects_while_open_until_the_cool_down_ends);
conformance!(half_open_admits_exactly_the_configured_probes_concurrently);
conformance!(lost_probes_are_given_out_again_after_the_probe_timeout);
conformance!(probe_successes_close);
conformance!(probe_failure_reopens_with_a_doubled_cool_down_up_to_the_cap);
conformance!(old_calls_slide_out_of_the_window);
conformance!(forced_states_override_and_reset_clears);
conformance!(keys_are_isolated);
conformance!(list_shows_known_keys);
conformance!(invalid_keys_are_refused);
