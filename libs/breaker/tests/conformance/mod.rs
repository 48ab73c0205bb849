//! The behaviour every `CircuitBreakers` implementation owes its callers.
//! Each case takes the breakers under test with the manual clock they read,
//! and runs unchanged against every backend. The configuration is the
//! default one: 60 s window in 5 s buckets, 10 minimum calls, 50 %, cool-down
//! 5 s doubling up to 5 min, 3 probes, 3 successes to close.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tyboo_breaker::{
    Admission, BreakerConfig, BreakerError, BreakerKey, CircuitBreakers, CircuitState, Clock,
    ManualClock, Outcome,
};

pub struct Subject {
    pub breakers: Arc<dyn CircuitBreakers>,
    pub clock: ManualClock,
    pub config: BreakerConfig,
}

/// A time on a bucket boundary, so window arithmetic in the cases is exact.
pub fn start() -> DateTime<Utc> {
    DateTime::from_timestamp_millis(1_893_456_000_000).expect("valid time")
}

fn key(host: &str) -> BreakerKey {
    BreakerKey::new("http", host)
}

fn millis(value: u64) -> Duration {
    Duration::from_millis(value)
}

fn after(at: DateTime<Utc>, by_ms: u64) -> DateTime<Utc> {
    at + chrono::Duration::milliseconds(i64::try_from(by_ms).expect("small duration"))
}

async fn record_many(subject: &Subject, key: &BreakerKey, outcome: Outcome, count: usize) {
    for _ in 0..count {
        subject.breakers.record(key, outcome).await.expect("record");
    }
}

async fn admit(subject: &Subject, key: &BreakerKey) -> Admission {
    subject.breakers.admit(key).await.expect("admit")
}

async fn state(subject: &Subject, key: &BreakerKey) -> CircuitState {
    subject.breakers.get(key).await.expect("get").state
}

/// Opens the breaker of `key` with the minimum calls, all failures.
async fn trip(subject: &Subject, key: &BreakerKey) {
    let minimum = usize::try_from(subject.config.minimum_calls).expect("small count");
    record_many(subject, key, Outcome::Failure, minimum).await;
    assert!(
        matches!(state(subject, key).await, CircuitState::Open { .. }),
        "the breaker should have opened"
    );
}

/// Passes the cool-down and takes every probe slot.
async fn take_probes(subject: &Subject, key: &BreakerKey, cool_down_ms: u64) {
    subject.clock.advance(millis(cool_down_ms));
    for _ in 0..subject.config.half_open_probes {
        assert_eq!(admit(subject, key).await, Admission::Probe);
    }
}

pub async fn stays_closed_under_minimum_calls(subject: Subject) {
    let target = key("flaky.example");
    record_many(&subject, &target, Outcome::Failure, 9).await;
    let breaker = subject.breakers.get(&target).await.expect("get");
    assert_eq!(breaker.state, CircuitState::Closed);
    assert_eq!(
        (breaker.calls_in_window, breaker.failures_in_window),
        (9, 9)
    );
    assert_eq!(
        breaker.failure_rate_percent, None,
        "no rate below the minimum calls"
    );
    assert_eq!(breaker.trips, 0);
    assert_eq!(admit(&subject, &target).await, Admission::Allowed);
}

pub async fn opens_at_the_threshold_once_minimum_calls_reached(subject: Subject) {
    let target = key("flaky.example");
    record_many(&subject, &target, Outcome::Success, 6).await;
    record_many(&subject, &target, Outcome::Failure, 5).await;
    let below = subject.breakers.get(&target).await.expect("get");
    assert_eq!(below.state, CircuitState::Closed, "5 of 11 is under 50 %");
    let rate = below.failure_rate_percent.expect("minimum calls reached");
    assert!((rate - 500.0 / 11.0).abs() < 1e-9, "{rate}");

    subject.clock.advance(millis(1_234));
    let tripped_at = subject.clock.now();
    record_many(&subject, &target, Outcome::Failure, 1).await;
    let open = subject.breakers.get(&target).await.expect("get");
    let until = after(tripped_at, 5_000);
    assert_eq!(open.state, CircuitState::Open { until }, "6 of 12 is 50 %");
    assert_eq!(open.trips, 1);
    assert_eq!(open.opened_at, Some(tripped_at));
    assert_eq!(open.retry_at, Some(until));
    assert_eq!(
        (open.calls_in_window, open.failures_in_window),
        (0, 0),
        "opening starts a fresh window"
    );
}

pub async fn rejects_while_open_until_the_cool_down_ends(subject: Subject) {
    let target = key("down.example");
    let tripped_at = subject.clock.now();
    trip(&subject, &target).await;
    let retry_at = after(tripped_at, 5_000);
    assert_eq!(
        admit(&subject, &target).await,
        Admission::Rejected { retry_at }
    );
    subject.clock.advance(millis(4_999));
    assert_eq!(
        admit(&subject, &target).await,
        Admission::Rejected { retry_at }
    );
    record_many(&subject, &target, Outcome::Failure, 3).await;
    let open = subject.breakers.get(&target).await.expect("get");
    assert_eq!(
        open.calls_in_window, 0,
        "results of calls admitted before the trip are ignored"
    );
    assert_eq!(open.trips, 1);

    subject.clock.advance(millis(1));
    assert_eq!(state(&subject, &target).await, CircuitState::HalfOpen);
    assert_eq!(admit(&subject, &target).await, Admission::Probe);
}

pub async fn half_open_admits_exactly_the_configured_probes_concurrently(subject: Subject) {
    let target = key("recovering.example");
    trip(&subject, &target).await;
    subject.clock.advance(millis(5_000));
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let breakers = subject.breakers.clone();
            let target = target.clone();
            tokio::spawn(async move { breakers.admit(&target).await.expect("admit") })
        })
        .collect();
    let mut admissions = Vec::new();
    for task in tasks {
        admissions.push(task.await.expect("task"));
    }
    let probes = admissions
        .iter()
        .filter(|admission| **admission == Admission::Probe)
        .count();
    assert_eq!(probes, 3, "{admissions:?}");
    let retry_at = after(subject.clock.now(), 5_000);
    let rejected = admissions
        .iter()
        .filter(|admission| **admission == Admission::Rejected { retry_at })
        .count();
    assert_eq!(rejected, 47, "{admissions:?}");
    assert_eq!(state(&subject, &target).await, CircuitState::HalfOpen);
}

pub async fn lost_probes_are_given_out_again_after_the_probe_timeout(subject: Subject) {
    let target = key("recovering.example");
    trip(&subject, &target).await;
    take_probes(&subject, &target, 5_000).await;
    subject
        .clock
        .advance(millis(subject.config.probe_timeout_ms - 1));
    assert!(matches!(
        admit(&subject, &target).await,
        Admission::Rejected { .. }
    ));
    subject.clock.advance(millis(1));
    for _ in 0..3 {
        assert_eq!(admit(&subject, &target).await, Admission::Probe);
    }
    assert!(matches!(
        admit(&subject, &target).await,
        Admission::Rejected { .. }
    ));
}

pub async fn probe_successes_close(subject: Subject) {
    let target = key("recovering.example");
    trip(&subject, &target).await;
    take_probes(&subject, &target, 5_000).await;
    record_many(&subject, &target, Outcome::Success, 2).await;
    assert_eq!(state(&subject, &target).await, CircuitState::HalfOpen);
    record_many(&subject, &target, Outcome::Success, 1).await;
    let closed = subject.breakers.get(&target).await.expect("get");
    assert_eq!(closed.state, CircuitState::Closed);
    assert_eq!(closed.trips, 0, "closing forgets the consecutive trips");
    assert_eq!(closed.calls_in_window, 0);
    assert_eq!(admit(&subject, &target).await, Admission::Allowed);

    let tripped_again_at = subject.clock.now();
    trip(&subject, &target).await;
    assert_eq!(
        state(&subject, &target).await,
        CircuitState::Open {
            until: after(tripped_again_at, 5_000)
        },
        "the next trip starts from the base cool-down"
    );
}

pub async fn probe_failure_reopens_with_a_doubled_cool_down_up_to_the_cap(subject: Subject) {
    let target = key("down.example");
    trip(&subject, &target).await;
    let mut cool_down_ms = 5_000;
    for (trips, expected_next_ms) in
        (2..).zip([10_000, 20_000, 40_000, 80_000, 160_000, 300_000, 300_000])
    {
        subject.clock.advance(millis(cool_down_ms));
        assert_eq!(admit(&subject, &target).await, Admission::Probe);
        let failed_at = subject.clock.now();
        record_many(&subject, &target, Outcome::Failure, 1).await;
        let open = subject.breakers.get(&target).await.expect("get");
        let until = after(failed_at, expected_next_ms);
        assert_eq!(open.state, CircuitState::Open { until }, "trip {trips}");
        assert_eq!(open.trips, trips);
        assert_eq!(open.opened_at, Some(failed_at));
        subject.clock.advance(millis(expected_next_ms - 1));
        assert_eq!(
            admit(&subject, &target).await,
            Admission::Rejected { retry_at: until }
        );
        cool_down_ms = 1;
    }
}

pub async fn old_calls_slide_out_of_the_window(subject: Subject) {
    let kept = key("kept.example");
    let slid = key("slid.example");
    record_many(&subject, &kept, Outcome::Failure, 9).await;
    record_many(&subject, &slid, Outcome::Failure, 9).await;

    // The window is the current 5 s bucket and the 11 before it.
    subject.clock.advance(millis(59_999));
    assert_eq!(
        subject
            .breakers
            .get(&kept)
            .await
            .expect("get")
            .calls_in_window,
        9
    );
    record_many(&subject, &kept, Outcome::Failure, 1).await;
    assert!(matches!(
        state(&subject, &kept).await,
        CircuitState::Open { .. }
    ));

    subject.clock.advance(millis(1));
    let slid_state = subject.breakers.get(&slid).await.expect("get");
    assert_eq!(
        (slid_state.calls_in_window, slid_state.failures_in_window),
        (0, 0)
    );
    record_many(&subject, &slid, Outcome::Failure, 1).await;
    let after_one = subject.breakers.get(&slid).await.expect("get");
    assert_eq!(after_one.state, CircuitState::Closed);
    assert_eq!(after_one.calls_in_window, 1);
}

pub async fn forced_states_override_and_reset_clears(subject: Subject) {
    let target = key("operated.example");
    subject
        .breakers
        .force_open(&target)
        .await
        .expect("force open");
    assert_eq!(state(&subject, &target).await, CircuitState::ForcedOpen);
    subject.clock.advance(millis(600_000));
    let retry_at = after(subject.clock.now(), 5_000);
    assert_eq!(
        admit(&subject, &target).await,
        Admission::Rejected { retry_at },
        "forced open outlasts any cool-down"
    );
    record_many(&subject, &target, Outcome::Success, 5).await;
    assert_eq!(state(&subject, &target).await, CircuitState::ForcedOpen);

    trip(&subject, &BreakerKey::new("http", "tripped.example")).await;
    let tripped = key("tripped.example");
    subject
        .breakers
        .force_closed(&tripped)
        .await
        .expect("force closed");
    assert_eq!(admit(&subject, &tripped).await, Admission::Allowed);
    record_many(&subject, &tripped, Outcome::Failure, 50).await;
    let forced_closed = subject.breakers.get(&tripped).await.expect("get");
    assert_eq!(forced_closed.state, CircuitState::ForcedClosed);
    assert_eq!(forced_closed.calls_in_window, 0);

    for reset_key in [&target, &tripped] {
        subject.breakers.reset(reset_key).await.expect("reset");
        let reset = subject.breakers.get(reset_key).await.expect("get");
        assert_eq!(reset.state, CircuitState::Closed);
        assert_eq!((reset.trips, reset.calls_in_window), (0, 0));
        assert_eq!((reset.opened_at, reset.retry_at), (None, None));
        assert_eq!(admit(&subject, reset_key).await, Admission::Allowed);
    }
    subject
        .breakers
        .reset(&key("never.example"))
        .await
        .expect("resetting an unknown key is a no-op");
}

pub async fn keys_are_isolated(subject: Subject) {
    let tripped = BreakerKey::new("http", "shared.example");
    trip(&subject, &tripped).await;
    for other in [
        BreakerKey::new("http", "other.example"),
        BreakerKey::new("grpc", "shared.example"),
        BreakerKey::new("http", "shared.example:8443"),
    ] {
        assert_eq!(admit(&subject, &other).await, Admission::Allowed, "{other}");
        assert_eq!(
            state(&subject, &other).await,
            CircuitState::Closed,
            "{other}"
        );
    }
    assert!(matches!(
        admit(&subject, &tripped).await,
        Admission::Rejected { .. }
    ));
}

pub async fn list_shows_known_keys(subject: Subject) {
    assert!(subject.breakers.list().await.expect("list").is_empty());
    let alpha = key("alpha.example");
    let beta = BreakerKey::new("grpc", "beta.example");
    let gamma = key("gamma.example");
    record_many(&subject, &gamma, Outcome::Success, 1).await;
    trip(&subject, &alpha).await;
    subject.breakers.force_open(&beta).await.expect("force");
    subject
        .breakers
        .get(&key("only-read.example"))
        .await
        .expect("get");
    admit(&subject, &key("only-admitted.example")).await;

    let listed = subject.breakers.list().await.expect("list");
    let summary: Vec<(&BreakerKey, &'static str, u64)> = listed
        .iter()
        .map(|breaker| (&breaker.key, breaker.state.name(), breaker.calls_in_window))
        .collect();
    assert_eq!(
        summary,
        [
            (&beta, "forced_open", 0),
            (&alpha, "open", 0),
            (&gamma, "closed", 1)
        ]
    );

    subject.breakers.reset(&alpha).await.expect("reset");
    let keys: Vec<BreakerKey> = subject
        .breakers
        .list()
        .await
        .expect("list")
        .into_iter()
        .map(|breaker| breaker.key)
        .collect();
    assert_eq!(keys, [beta, gamma], "a reset breaker is forgotten");
}

pub async fn invalid_keys_are_refused(subject: Subject) {
    let invalid = [
        BreakerKey::new("", "example.com"),
        BreakerKey::new("http", "a b"),
    ];
    for bad in &invalid {
        let admitted = subject.breakers.admit(bad).await;
        assert!(
            matches!(admitted, Err(BreakerError::InvalidKey(_))),
            "{admitted:?}"
        );
        let recorded = subject.breakers.record(bad, Outcome::Failure).await;
        assert!(
            matches!(recorded, Err(BreakerError::InvalidKey(_))),
            "{recorded:?}"
        );
        assert!(subject.breakers.get(bad).await.is_err());
        assert!(subject.breakers.reset(bad).await.is_err());
        assert!(subject.breakers.force_open(bad).await.is_err());
        assert!(subject.breakers.force_closed(bad).await.is_err());
    }
}
